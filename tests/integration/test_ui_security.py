"""The web UI's guards, through the Flask test client on SQLite and PostgreSQL: CSRF on every
form, escaping of link values, login throttling, the login gate and the first-run page."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from flask import Flask, session
from flask.sessions import NullSession
from flask.testing import FlaskClient
from sqlalchemy import func, select

from linkgen.services import catalog
from linkgen.services.accounts import create_user
from linkgen.services.links import create_link
from linkgen.storage.models import LoginAttempt, User
from tests.conftest import Api

EMAIL = "manager@example.com"
PASSWORD = "a long enough password"
SCRIPT = "<script>alert('x')</script>"
ESCAPED = "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client: FlaskClient, path: str = "/login") -> str:
    page = client.get(path)
    match = TOKEN_RE.search(page.get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _make_user(app: Flask) -> None:
    with app.extensions["linkgen"].db.session() as db:
        create_user(db, EMAIL, PASSWORD)


def _log_in(client: FlaskClient, **environ: Any) -> Any:
    token = _token(client)
    return client.post(
        "/login",
        data={"csrf_token": token, "email": EMAIL, "password": PASSWORD},
        environ_base=environ,
    )


@pytest.fixture
def user_client(app: Flask, client: FlaskClient) -> FlaskClient:
    _make_user(app)
    assert _log_in(client).status_code == 302
    return client


@pytest.fixture
def script_link(app: Flask) -> str:
    """A link whose campaign and params hold a <script> tag."""
    rt = app.extensions["linkgen"]
    with rt.db.session() as db:
        catalog.create_template_record(
            db, {"template_id": "Shop", "domain": "go.example.com"}, rt.settings.link_domains
        )
        link = create_link(
            db,
            {
                "template_id": "Shop",
                "channel": "email",
                "campaign": SCRIPT,
                "params": {"deep_link_value": SCRIPT, "af_sub1": SCRIPT},
            },
            scheme_for=rt.settings.scheme_for,
        )
    link_id: str = link["id"]
    return link_id


def test_form_post_without_csrf_token_is_refused(app: Flask, client: FlaskClient) -> None:
    _make_user(app)
    resp = client.post("/login", data={"email": EMAIL, "password": PASSWORD})
    assert resp.status_code == 400
    assert "CSRF" in resp.get_data(as_text=True)
    assert _log_in(client).status_code == 302
    for path, data in [
        ("/links/new", {"template_id": "Shop", "channel": "email"}),
        ("/apps", {"app_id": "com.example.app", "name": "x"}),
        ("/logout", {}),
        ("/import/parse", {}),
    ]:
        resp = client.post(path, data=data)
        assert resp.status_code == 400, path
    # Still logged in: the refused logout did nothing.
    assert client.get("/links").status_code == 200
    with app.extensions["linkgen"].db.session() as db:
        assert catalog.list_apps(db, after=None, limit=10)[0] == []


def test_fetch_endpoints_take_the_token_from_a_header(user_client: FlaskClient) -> None:
    token = _token(user_client, "/links/new")
    no_token = user_client.post("/links/preview", data={"channel": "email"})
    assert no_token.status_code == 400
    resp = user_client.post(
        "/links/preview", data={"channel": "email"}, headers={"X-CSRFToken": token}
    )
    assert resp.status_code == 200
    assert resp.get_json()["error"]["field"] == "template_id"


def test_the_json_api_needs_no_csrf_token(api: Api) -> None:
    resp = api.post("/api/v1/apps", {"app_id": "com.example.app", "name": "Shop"})
    assert resp.status_code == 201


def test_script_in_a_link_is_text_on_list_detail_and_builder(
    user_client: FlaskClient, script_link: str
) -> None:
    for path in ["/links", f"/links/{script_link}", f"/links/{script_link}/edit"]:
        body = user_client.get(path).get_data(as_text=True)
        assert SCRIPT not in body, path
        assert ESCAPED in body, path
    search = user_client.get("/links", query_string={"q": SCRIPT}).get_data(as_text=True)
    assert SCRIPT not in search and ESCAPED in search


def test_script_in_a_preview_comes_back_as_json_data(user_client: FlaskClient) -> None:
    token = _token(user_client, "/links/new")
    resp = user_client.post(
        "/links/preview",
        data={"template_id": "none", "channel": "email", "campaign": SCRIPT},
        headers={"X-CSRFToken": token},
    )
    assert resp.mimetype == "application/json"


def test_failed_logins_are_throttled_per_email_and_address(app: Flask, client: FlaskClient) -> None:
    _make_user(app)
    for _ in range(5):
        token = _token(client)
        resp = client.post(
            "/login", data={"csrf_token": token, "email": EMAIL, "password": "wrong password"}
        )
        assert resp.status_code == 401
        assert "not right" in resp.get_data(as_text=True)
    refused = _log_in(client)
    assert refused.status_code == 429
    assert "Too many failed logins" in refused.get_data(as_text=True)
    # Another client address is not locked out, and its success clears its own count only.
    assert _log_in(client, REMOTE_ADDR="10.0.0.9").status_code == 302
    with app.extensions["linkgen"].db.session() as db:
        assert db.scalar(select(func.count(LoginAttempt.id))) == 5


def test_pages_need_a_login(app: Flask, client: FlaskClient) -> None:
    _make_user(app)
    for path in ["/links", "/links/new", "/import", "/apps", "/templates", "/postbacks"]:
        resp = client.get(path)
        assert resp.status_code == 302, path
        assert resp.location == f"/login?next={path}"
    resp = client.get("/apps?x=1")
    assert resp.location == "/login?next=/apps?x%3D1"
    fetch = client.post("/links/preview", headers={"X-Requested-With": "fetch"})
    assert fetch.status_code in (400, 401)  # no session: no CSRF token either


def test_login_goes_back_to_the_page_asked_for_but_never_off_site(
    app: Flask, client: FlaskClient
) -> None:
    _make_user(app)
    for target, expected in [
        ("/postbacks", "/postbacks"),
        ("/links?q=spring%20sale", "/links?q=spring%20sale"),
        ("//evil.example", "/links"),
        ("/\t/evil.example", "/links"),
        ("/\n/x", "/links"),
        ("/\r/x", "/links"),
        ("/\\evil.example", "/links"),
        ("/%09/evil.example", "/links"),
        ("/%2F/evil.example", "/links"),
        ("https://evil.example/", "/links"),
        ("javascript:alert(1)", "/links"),
    ]:
        client = app.test_client()
        token = _token(client)
        resp = client.post(
            "/login",
            data={"csrf_token": token, "email": EMAIL, "password": PASSWORD, "next": target},
        )
        assert resp.status_code == 302 and resp.location == expected, target
        # Logged in, GET /login?next= goes to the same place (and is never a 500).
        again = client.get("/login", query_string={"next": target})
        assert again.status_code == 302 and again.location == expected, target


def test_unknown_and_known_emails_cost_the_same_password_check(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from linkgen.services import accounts

    _make_user(app)
    calls: list[str] = []
    real_check, real_make = accounts.check_password_hash, accounts.generate_password_hash
    monkeypatch.setattr(
        accounts, "check_password_hash", lambda h, p: calls.append("check") or real_check(h, p)
    )
    monkeypatch.setattr(
        accounts, "generate_password_hash", lambda p: calls.append("make") or real_make(p)
    )
    accounts._dummy_password_hash.cache_clear()
    with app.extensions["linkgen"].db.session() as db:
        assert accounts.authenticate_user(db, "nobody@example.com", "guess") is None  # warm-up
        for email in ("nobody@example.com", EMAIL):
            calls.clear()
            assert accounts.authenticate_user(db, email, "wrong password") is None
            assert calls == ["check"], email  # one check, nothing hashed afresh


def test_first_run_page_only_while_there_is_no_user(app: Flask, client: FlaskClient) -> None:
    assert client.get("/").location == "/login?next=/"
    assert client.get("/login").location == "/setup"
    token = _token(client, "/setup")
    mismatch = client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": EMAIL,
            "password": PASSWORD,
            "password_confirm": "other",
        },
    )
    assert mismatch.status_code == 400
    assert "not the same" in mismatch.get_data(as_text=True)
    made = client.post(
        "/setup",
        data={
            "csrf_token": token,
            "email": EMAIL,
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert made.location == "/links"
    assert client.get("/links").status_code == 200  # logged in straight away

    other = app.test_client()
    assert other.get("/setup").location == "/login"
    late = other.post(
        "/setup",
        data={
            "csrf_token": _token(other),
            "email": "intruder@example.com",
            "password": PASSWORD,
            "password_confirm": PASSWORD,
        },
    )
    assert late.location == "/login"
    with app.extensions["linkgen"].db.session() as db:
        assert db.scalar(select(func.count(User.id))) == 1


def test_session_cookie_is_secure_over_https(app: Flask) -> None:
    _make_user(app)
    plain = app.test_client()
    resp = _log_in(plain)
    assert "Secure" not in resp.headers["Set-Cookie"]
    assert "HttpOnly" in resp.headers["Set-Cookie"]

    tls = app.test_client()
    page = tls.get("/login", base_url="https://localhost")
    token = TOKEN_RE.search(page.get_data(as_text=True))
    assert token
    resp = tls.post(
        "/login",
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
        data={"csrf_token": token.group(1), "email": EMAIL, "password": PASSWORD},
    )
    assert resp.status_code == 302
    assert "; Secure" in resp.headers["Set-Cookie"]


def test_clevertap_secret_is_never_sent_back(user_client: FlaskClient, app: Flask) -> None:
    with app.extensions["linkgen"].db.session() as db:
        catalog.create_app_record(db, {"app_id": "com.example.shop", "name": "Shop"})
    token = _token(user_client, "/apps/com.example.shop/clevertap")
    resp = user_client.post(
        "/apps/com.example.shop/clevertap",
        data={
            "csrf_token": token,
            "active": "on",
            "account_id": "W6K-556-4K6Z",
            "account_passcode": "TOPSECRET-PASS-987",
            "region": "in1",
            "default_postbacks": "all_sources",
            "install_event_name": "App Install Attributed",
            "reengagement_event_name": "App Re-engagement Attributed",
            "identity_field": "objectId",
            "restricted_media_source": ["snapchat_int"],
            "restricted_policy": ["drop"],
        },
    )
    assert resp.status_code == 302
    page = user_client.get(resp.location).get_data(as_text=True)
    assert "TOPSECRET-PASS-987" not in page
    assert "*****987" in page
    assert "Region &#34;in1&#34;" in page or 'Region "in1"' in page
    # An empty passcode field keeps the stored value.
    token = _token(user_client, "/apps/com.example.shop/clevertap")
    user_client.post(
        "/apps/com.example.shop/clevertap",
        data={"csrf_token": token, "active": "on", "region": "IN1", "account_passcode": ""},
    )
    page = user_client.get("/apps/com.example.shop/clevertap").get_data(as_text=True)
    assert "*****987" in page and "Region &#34;in1&#34;" not in page


def test_bad_clevertap_value_is_shown_next_to_its_row(user_client: FlaskClient, app: Flask) -> None:
    with app.extensions["linkgen"].db.session() as db:
        catalog.create_app_record(db, {"app_id": "com.example.shop", "name": "Shop"})
    token = _token(user_client, "/apps/com.example.shop/clevertap")
    resp = user_client.post(
        "/apps/com.example.shop/clevertap",
        data={
            "csrf_token": token,
            "region": "EU1",
            "map_sdk_event": ["af_purchase", "af_purchase"],
            "map_partner_event": ["Charged", "Charged again"],
            "map_sending_option": ["this_partner", "all_sources"],
            "map_send_revenue": ["values", "none"],
        },
    )
    assert resp.status_code == 400
    assert "mapped twice" in resp.get_data(as_text=True)


def test_a_logged_in_browser_gets_nothing_from_the_api_by_its_cookie(
    app: Flask, user_client: FlaskClient
) -> None:
    # The UI's session cookie works on pages...
    assert user_client.get("/links").status_code == 200
    # ...but the API authenticates with headers only: the cookie is neither read nor renewed.
    resp = user_client.get("/api/v1/apps")
    assert resp.status_code == 401
    assert "Set-Cookie" not in resp.headers
    assert (
        user_client.post("/api/v1/apps", json={"app_id": "com.x", "name": "X"}).status_code == 401
    )
    # The API never opens the cookie session at all (a null session: nothing to read or write).
    with app.test_request_context("/api/v1/links"):
        assert isinstance(session, NullSession)
    with app.test_request_context("/links"):
        assert not isinstance(session, NullSession)


def test_the_sample_csv_imports_as_it_is(user_client: FlaskClient, app: Flask) -> None:
    from linkgen.domain.bulk import parse_links_csv_with_lines

    with app.extensions["linkgen"].db.session() as session:
        from linkgen.services import catalog

        catalog.create_template_record(
            session,
            {"template_id": "Smpl", "domain": "go.example.com"},
            app.extensions["linkgen"].settings.link_domains,
        )
    resp = user_client.get("/import/sample.csv")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert "attachment" in resp.headers["Content-Disposition"]
    rows = parse_links_csv_with_lines(resp.get_data(as_text=True))
    assert [body["template_id"] for _, body in rows] == ["Smpl"] * 3
    assert [body.get("tags") for _, body in rows] == [
        ["spring", "shoes"],
        ["spring", "sms"],
        ["print"],
    ]
    token = _token(user_client, "/import")
    data = {"csrf_token": token, "file": (io.BytesIO(resp.get_data()), "sample.csv")}
    page = user_client.post("/import", data=data, content_type="multipart/form-data")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "3 links created, 0 rows with errors." in html
    assert html.count('data-copy-target="cp-import-') == 3  # each created link, with a copy button


def test_app_page_tells_where_the_sdk_key_goes(user_client: FlaskClient, app: Flask) -> None:
    with app.extensions["linkgen"].db.session() as db:
        catalog.create_app_record(db, {"app_id": "com.example.shop", "name": "Shop"})
    page = user_client.get("/apps/com.example.shop").get_data(as_text=True)
    assert "init({sdkKey})" in page and "X-SDK-Key" in page
    assert "docs/integrate/" in page


def _session_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def _with_cookie(app: Flask, value: str) -> FlaskClient:
    other = app.test_client()
    other.set_cookie("session", value, domain="localhost")
    return other


def test_logout_ends_the_session_everywhere(app: Flask, client: FlaskClient) -> None:
    _make_user(app)
    assert _log_in(client).status_code == 302
    copied = _session_cookie(client)
    second = app.test_client()  # the same user on another device
    assert _log_in(second).status_code == 302
    assert _with_cookie(app, copied).get("/links").status_code == 200
    token = _token(client, "/links")
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/links").status_code == 302  # logged out here
    stolen = _with_cookie(app, copied).get("/links")
    assert stolen.status_code == 302 and stolen.location.startswith("/login")
    assert second.get("/links").status_code == 302  # and on the other device
    assert _log_in(client).status_code == 302 and client.get("/links").status_code == 200


def test_a_new_password_or_removing_the_user_ends_their_sessions(
    app: Flask, client: FlaskClient, runner: Any
) -> None:
    _make_user(app)
    assert _log_in(client).status_code == 302
    copied = _session_cookie(client)
    result = runner.invoke(
        args=["reset-password", EMAIL, "--password-stdin"], input="new long password\n"
    )
    assert result.exit_code == 0, result.output
    assert "sessions were ended" in result.output
    assert _with_cookie(app, copied).get("/links").status_code == 302
    assert client.get("/links").status_code == 302
    token = _token(client)
    ok = client.post(
        "/login", data={"csrf_token": token, "email": EMAIL, "password": "new long password"}
    )
    assert ok.status_code == 302 and client.get("/links").status_code == 200
    # The last admin cannot be removed (the team must stay manageable): another admin first.
    last = runner.invoke(args=["delete-user", EMAIL])
    assert last.exit_code != 0 and "last admin" in last.output
    with app.extensions["linkgen"].db.session() as db:
        create_user(db, "second-admin@example.com", PASSWORD)
    result = runner.invoke(args=["delete-user", EMAIL])
    assert result.exit_code == 0, result.output
    assert client.get("/links").status_code == 302
    assert runner.invoke(args=["delete-user", EMAIL]).exit_code != 0  # says there is none


def test_reset_password_refuses_a_short_password(app: Flask, runner: Any) -> None:
    _make_user(app)
    result = runner.invoke(args=["reset-password", EMAIL, "--password-stdin"], input="short\n")
    assert result.exit_code != 0 and "at least 8 characters" in result.output
