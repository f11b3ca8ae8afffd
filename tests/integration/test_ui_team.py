"""The team through the Flask test client, on SQLite and PostgreSQL: roles enforced on every
POST route of the web app, the Team page, invitations by one-time link, one's own password
change and API keys made and revoked in the web app."""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import create_engine, select, text, update

from linkgen.services.accounts import create_user, hash_key
from linkgen.storage.db import make_engine
from linkgen.storage.migrate import downgrade, upgrade
from linkgen.storage.models import ApiKey, Invitation, User
from linkgen.storage.types import utcnow
from linkgen.web.ui.roles import EDITOR_CHANGES, SELF_SERVICE
from tests.conftest import PG_URL, _pg_schema_url, require_postgres

PASSWORD = "a long enough password"
ADMIN = "admin@example.com"
EDITOR = "editor@example.com"
VIEWER = "viewer@example.com"
TOKEN_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
INVITE_RE = re.compile(r"http://localhost/invite/([A-Za-z0-9_-]+)")
KEY_RE = re.compile(r"\blg_[A-Za-z0-9_-]{40,}")


def _db(app: Flask) -> Any:
    return app.extensions["linkgen"].db


def _token(client: FlaskClient, path: str = "/login") -> str:
    match = TOKEN_RE.search(client.get(path).get_data(as_text=True))
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def _make(app: Flask, email: str, role: str) -> int:
    with _db(app).session() as db:
        return create_user(db, email, PASSWORD, role=role).id


def _log_in(app: Flask, email: str, password: str = PASSWORD) -> FlaskClient:
    client = app.test_client()
    answer = client.post(
        "/login", data={"csrf_token": _token(client), "email": email, "password": password}
    )
    assert answer.status_code == 302, answer.get_data(as_text=True)
    return client


def _post(client: FlaskClient, path: str, **data: Any) -> Any:
    return client.post(path, data={"csrf_token": _token(client, "/links"), **data})


@pytest.fixture
def admin(app: Flask) -> FlaskClient:
    _make(app, ADMIN, "admin")
    return _log_in(app, ADMIN)


def _ui_post_rules(app: Flask) -> list[tuple[str, str]]:
    """Every POST route of the web app as (endpoint, a URL that reaches it)."""
    routes = []
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("ui.") or "POST" not in (rule.methods or ()):
            continue
        url = rule.build({name: "1" for name in rule.arguments}, append_unknown=False)
        assert url is not None
        routes.append((rule.endpoint, url[1]))
    return sorted(routes)


# --------------------------------------------------------------------------- roles enforced


def test_only_own_session_and_account_routes_are_open_to_a_viewer(app: Flask) -> None:
    posts = {endpoint for endpoint, _ in _ui_post_rules(app)}
    assert posts & SELF_SERVICE == {
        "ui.login",
        "ui.logout",
        "ui.setup",
        "ui.invite_accept",
        "ui.account_password",
    }
    assert posts >= EDITOR_CHANGES, "a role table entry names a route that does not exist"


def test_a_viewer_is_refused_on_every_post_route_of_the_ui(app: Flask, admin: FlaskClient) -> None:
    _make(app, VIEWER, "viewer")
    viewer = _log_in(app, VIEWER)
    routes = [(e, url) for e, url in _ui_post_rules(app) if e not in SELF_SERVICE]
    assert len(routes) >= 20
    for endpoint, url in routes:
        answer = _post(viewer, url)
        assert answer.status_code == 403, f"{endpoint} ({url}) answered {answer.status_code}"
        page = answer.get_data(as_text=True)
        assert "Not allowed" in page and "viewer" in page, endpoint
    # JSON-driven forms (the builder's preview, the import chunks) are refused the same way.
    answer = viewer.post(
        "/links/preview",
        json={},
        headers={"X-CSRFToken": _token(viewer, "/links"), "X-Requested-With": "fetch"},
    )
    assert answer.status_code == 403


def test_an_editor_may_change_links_templates_and_apps_but_not_admin_things(
    app: Flask, admin: FlaskClient
) -> None:
    _make(app, EDITOR, "editor")
    editor = _log_in(app, EDITOR)
    for endpoint, url in _ui_post_rules(app):
        if endpoint in SELF_SERVICE:
            continue
        status = _post(editor, url).status_code
        if endpoint in EDITOR_CHANGES:
            assert status != 403, f"{endpoint} refused an editor"
        else:
            assert status == 403, f"{endpoint} ({url}) let an editor through: {status}"
    answer = _post(editor, "/apps", app_id="com.example.editor", name="Editor's app")
    assert answer.status_code == 201
    for page in ("/team", "/api-keys"):
        assert editor.get(page).status_code == 403
    links = editor.get("/links").get_data(as_text=True)
    assert "/team" not in links and "/api-keys" not in links
    assert "New link" in links


def test_a_viewer_sees_the_pages_without_the_buttons_that_change_things(
    app: Flask, admin: FlaskClient
) -> None:
    _post(admin, "/apps", app_id="com.example.shop", name="Shop")
    _make(app, VIEWER, "viewer")
    viewer = _log_in(app, VIEWER)
    for page in ("/links", "/apps", "/apps/com.example.shop", "/templates", "/domains"):
        answer = viewer.get(page)
        assert answer.status_code == 200, page
        body = answer.get_data(as_text=True)
        assert 'type="submit">Add' not in body and ">Save<" not in body, page
        assert "New link" not in body and "Make a new SDK key" not in body, page
    assert "Read only" in viewer.get("/apps/com.example.shop").get_data(as_text=True)
    for page in ("/links/new", "/import", "/team", "/api-keys"):
        assert viewer.get(page).status_code == 403, page
    assert viewer.get("/account").status_code == 200


def test_a_role_change_applies_at_the_next_request(app: Flask, admin: FlaskClient) -> None:
    user_id = _make(app, EDITOR, "editor")
    editor = _log_in(app, EDITOR)
    assert _post(editor, "/apps", app_id="com.example.a", name="A").status_code == 201
    assert _post(admin, "/team/role", user_id=user_id, role="viewer").status_code == 302
    assert _post(editor, "/apps", app_id="com.example.b", name="B").status_code == 403


# --------------------------------------------------------------------------- the team page


def test_team_page_lists_users_with_role_and_created_date(app: Flask, admin: FlaskClient) -> None:
    _make(app, VIEWER, "viewer")
    page = admin.get("/team").get_data(as_text=True)
    assert ADMIN in page and VIEWER in page
    assert 'value="viewer" selected' in page and 'value="admin" selected' in page
    assert utcnow().strftime("%Y-%m-%d") in page
    assert 'href="/team"' in page and 'href="/api-keys"' in page


def test_the_last_admin_can_be_neither_demoted_nor_removed(app: Flask, admin: FlaskClient) -> None:
    with _db(app).session() as db:
        admin_id = db.scalar(select(User.id).where(User.email == ADMIN))
    answer = _post(admin, "/team/role", user_id=admin_id, role="editor")
    assert answer.status_code == 409
    assert "last admin" in answer.get_data(as_text=True)
    answer = _post(admin, "/team/remove", user_id=admin_id)
    assert answer.status_code == 409
    assert "last admin" in answer.get_data(as_text=True)
    with _db(app).session() as db:
        assert db.scalar(select(User.role).where(User.id == admin_id)) == "admin"
    # With a second admin, the first may step down.
    _make(app, "second@example.com", "admin")
    answer = _post(admin, "/team/role", user_id=admin_id, role="editor")
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/links")
    assert admin.get("/team").status_code == 403  # no longer an admin, at once


def test_removing_a_user_ends_their_sessions(app: Flask, admin: FlaskClient) -> None:
    user_id = _make(app, EDITOR, "editor")
    editor = _log_in(app, EDITOR)
    assert editor.get("/links").status_code == 200
    answer = _post(admin, "/team/remove", user_id=user_id)
    assert answer.status_code == 302
    assert "removed" in admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert editor.get("/links").status_code == 302  # to the login page
    # SQLite gives the next user the removed one's id: the old cookie still logs nobody in.
    _make(app, "newcomer@example.com", "editor")
    assert editor.get("/links").status_code == 302


def test_bad_team_input_names_the_field_and_changes_nothing(app: Flask, admin: FlaskClient) -> None:
    user_id = _make(app, EDITOR, "editor")
    answer = _post(admin, "/team/role", user_id=user_id, role="owner")
    assert answer.status_code == 400
    assert "role must be one of" in answer.get_data(as_text=True)
    assert _post(admin, "/team/role", user_id="x", role="viewer").status_code == 400
    assert _post(admin, "/team/remove", user_id="999999").status_code == 404
    with _db(app).session() as db:
        assert db.scalar(select(User.role).where(User.id == user_id)) == "editor"


# --------------------------------------------------------------------------- invitations


def _invite(admin: FlaskClient, email: str, role: str) -> str:
    answer = _post(admin, "/team/invitations", email=email, role=role)
    assert answer.status_code == 201, answer.get_data(as_text=True)
    match = INVITE_RE.search(answer.get_data(as_text=True))
    assert match
    return match.group(1)


def _accept(app: Flask, token: str, password: str = PASSWORD, confirm: str | None = None) -> Any:
    client = app.test_client()
    answer = client.post(
        f"/invite/{token}",
        data={
            "csrf_token": _token(client),
            "password": password,
            "password_confirm": password if confirm is None else confirm,
        },
    )
    return client, answer


def test_an_invitation_makes_a_user_with_its_role_once(app: Flask, admin: FlaskClient) -> None:
    token = _invite(admin, "New.Editor@Example.com", "editor")
    with _db(app).session() as db:
        invitation = db.scalar(select(Invitation))
        assert invitation.token_hash == hash_key(token) and token not in invitation.token_hash
        assert invitation.expires_at - utcnow() > timedelta(days=6, hours=23)
    listed = admin.get("/team").get_data(as_text=True)
    assert "new.editor@example.com" in listed and token not in listed  # shown once only

    page = app.test_client().get(f"/invite/{token}").get_data(as_text=True)
    assert "new.editor@example.com" in page and "Editor" in page
    client, answer = _accept(app, token)
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/links")
    assert client.get("/links").status_code == 200  # logged in
    with _db(app).session() as db:
        user = db.scalar(select(User).where(User.email == "new.editor@example.com"))
        assert user is not None and user.role == "editor"
    assert _log_in(app, "new.editor@example.com").get("/links").status_code == 200

    again = app.test_client().get(f"/invite/{token}")
    assert again.status_code == 410
    assert "already been used" in again.get_data(as_text=True)
    _, second = _accept(app, token, "another long password")
    assert second.status_code == 410


def test_expired_revoked_and_unknown_invitations_give_a_clear_page(
    app: Flask, admin: FlaskClient
) -> None:
    expired = _invite(admin, "late@example.com", "viewer")
    with _db(app).session() as db:
        db.execute(update(Invitation).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = app.test_client().get(f"/invite/{expired}")
    assert answer.status_code == 410 and "expired" in answer.get_data(as_text=True)
    _, answer = _accept(app, expired)  # the form was opened before it expired
    assert answer.status_code == 410

    revoked = _invite(admin, "gone@example.com", "viewer")
    with _db(app).session() as db:
        invitation_id = db.scalar(
            select(Invitation.id).where(Invitation.email == "gone@example.com")
        )
    assert "gone@example.com" in admin.get("/team").get_data(as_text=True)
    assert _post(admin, "/team/invitations/revoke", invitation_id=invitation_id).status_code == 302
    assert "gone@example.com" not in admin.get("/team").get_data(as_text=True)
    answer = app.test_client().get(f"/invite/{revoked}")
    assert answer.status_code == 410 and "not valid" in answer.get_data(as_text=True)

    for token in ("nope", "x" * 500, "%00", "..%2F..%2Fetc"):
        answer = app.test_client().get(f"/invite/{token}")
        assert answer.status_code in (404, 410), token
    with _db(app).session() as db:
        assert db.scalar(select(User.id).where(User.email == "gone@example.com")) is None


def test_an_invitee_password_must_follow_the_rules_and_the_link_keeps_working(
    app: Flask, admin: FlaskClient
) -> None:
    token = _invite(admin, "careful@example.com", "viewer")
    _, answer = _accept(app, token, "short")
    assert answer.status_code == 400
    assert "at least 8 characters" in answer.get_data(as_text=True)
    _, answer = _accept(app, token, PASSWORD, confirm="something else entirely")
    assert answer.status_code == 400
    assert "not the same" in answer.get_data(as_text=True)
    _, answer = _accept(app, token)
    assert answer.status_code == 302


def test_an_invitation_for_an_email_that_got_a_login_meanwhile_says_so(
    app: Flask, admin: FlaskClient
) -> None:
    token = _invite(admin, "both@example.com", "editor")
    _make(app, "both@example.com", "viewer")  # e.g. with linkgen create-user
    _, answer = _accept(app, token)
    assert answer.status_code == 409
    assert "already exists" in answer.get_data(as_text=True)
    with _db(app).session() as db:
        assert db.scalar(select(User.role).where(User.email == "both@example.com")) == "viewer"
        assert db.scalar(select(Invitation.used_at)) is None  # nothing half-done


def test_bad_invitations_name_the_field(app: Flask, admin: FlaskClient) -> None:
    answer = _post(admin, "/team/invitations", email="not-an-email", role="editor")
    assert answer.status_code == 400 and "email must be" in answer.get_data(as_text=True)
    answer = _post(admin, "/team/invitations", email="x@example.com", role="root")
    assert answer.status_code == 400 and "role must be" in answer.get_data(as_text=True)
    answer = _post(admin, "/team/invitations", email=ADMIN, role="viewer")
    assert answer.status_code == 409 and "already has a login" in answer.get_data(as_text=True)
    with _db(app).session() as db:
        assert db.scalar(select(Invitation.id)) is None


def test_a_new_invitation_replaces_the_pending_one_for_that_email(
    app: Flask, admin: FlaskClient
) -> None:
    first = _invite(admin, "twice@example.com", "viewer")
    second = _invite(admin, "twice@example.com", "editor")
    assert app.test_client().get(f"/invite/{first}").status_code == 410
    _, answer = _accept(app, second)
    assert answer.status_code == 302


# --------------------------------------------------------------------------- own password


def test_password_change_ends_other_sessions_and_keeps_this_one(
    app: Flask, admin: FlaskClient
) -> None:
    other = _log_in(app, ADMIN)
    new = "a brand new password"
    answer = _post(
        admin,
        "/account/password",
        current_password=PASSWORD,
        password=new,
        password_confirm=new,
    )
    assert answer.status_code == 302
    assert "Password changed" in admin.get(answer.headers["Location"]).get_data(as_text=True)
    assert admin.get("/links").status_code == 200
    assert other.get("/links").status_code == 302
    assert _log_in(app, ADMIN, new).get("/links").status_code == 200
    client = app.test_client()
    stale = client.post(
        "/login", data={"csrf_token": _token(client), "email": ADMIN, "password": PASSWORD}
    )
    assert stale.status_code == 401


def test_password_change_errors_name_the_field(app: Flask) -> None:
    _make(app, VIEWER, "viewer")
    viewer = _log_in(app, VIEWER)  # a viewer may change their own password
    cases = [
        ({"current_password": "wrong one!", "password": "x" * 9}, "current_password"),
        ({"current_password": PASSWORD, "password": "short"}, "password"),
    ]
    for data, field in cases:
        answer = _post(viewer, "/account/password", password_confirm=data["password"], **data)
        assert answer.status_code == 400
        assert f'data-error-for="{field}" >' in answer.get_data(as_text=True)  # shown
    answer = _post(
        viewer,
        "/account/password",
        current_password=PASSWORD,
        password="one long password",
        password_confirm="another long password",
    )
    assert answer.status_code == 400 and "not the same" in answer.get_data(as_text=True)
    assert _log_in(app, VIEWER).get("/links").status_code == 200  # unchanged


def test_guessing_the_current_password_is_throttled(app: Flask, admin: FlaskClient) -> None:
    for _ in range(5):
        guess = {"current_password": "guess", "password": "x" * 9, "password_confirm": "x" * 9}
        answer = _post(admin, "/account/password", **guess)
        assert answer.status_code == 400
    answer = _post(
        admin,
        "/account/password",
        current_password=PASSWORD,
        password="x" * 9,
        password_confirm="x" * 9,
    )
    assert answer.status_code == 429


# --------------------------------------------------------------------------- API keys


def test_api_key_made_shown_once_used_and_revoked(app: Flask, admin: FlaskClient) -> None:
    answer = _post(admin, "/api-keys", name="crm-sync", scope="read")
    assert answer.status_code == 201
    match = KEY_RE.search(answer.get_data(as_text=True))
    assert match
    raw = match.group(0)
    headers = {"Authorization": f"Bearer {raw}"}
    client = app.test_client()
    assert client.get("/api/v1/apps", headers=headers).status_code == 200
    assert client.post("/api/v1/apps", headers=headers, json={}).status_code == 403  # read

    listed = admin.get("/api-keys").get_data(as_text=True)
    assert "crm-sync" in listed and raw[:7] in listed and raw not in listed
    assert "Read only" in listed
    with _db(app).session() as db:
        key = db.scalar(select(ApiKey).where(ApiKey.name == "crm-sync"))
        assert key.key_hash == hash_key(raw)
        key_id = key.id
    answer = _post(admin, "/api-keys/revoke", key_id=key_id)
    assert answer.status_code == 302
    assert client.get("/api/v1/apps", headers=headers).status_code == 401
    assert 'data-key="crm-sync"' not in admin.get("/api-keys").get_data(as_text=True)
    assert _post(admin, "/api-keys/revoke", key_id=key_id).status_code == 404


def test_revoking_one_key_leaves_another_of_the_same_name(app: Flask, admin: FlaskClient) -> None:
    raws = []
    for _ in range(2):
        page = _post(admin, "/api-keys", name="twin", scope="admin").get_data(as_text=True)
        match = KEY_RE.search(page)
        assert match
        raws.append(match.group(0))
    with _db(app).session() as db:
        first_id = db.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_key(raws[0])))
    _post(admin, "/api-keys/revoke", key_id=first_id)
    client = app.test_client()
    assert (
        client.get("/api/v1/apps", headers={"Authorization": f"Bearer {raws[0]}"}).status_code
        == 401
    )
    assert (
        client.get("/api/v1/apps", headers={"Authorization": f"Bearer {raws[1]}"}).status_code
        == 200
    )


def test_bad_api_key_input_names_the_field(app: Flask, admin: FlaskClient) -> None:
    answer = _post(admin, "/api-keys", name="", scope="read")
    assert answer.status_code == 400 and "name must be" in answer.get_data(as_text=True)
    answer = _post(admin, "/api-keys", name="ok", scope="write")
    assert answer.status_code == 400 and "scope must be" in answer.get_data(as_text=True)
    assert _post(admin, "/api-keys/revoke", key_id="abc").status_code == 400
    with _db(app).session() as db:
        assert db.scalar(select(ApiKey.id)) is None


# --------------------------------------------------------------------------- secrets, setup, CLI


def test_invitation_tokens_and_new_keys_are_never_logged(
    app: Flask, admin: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = _invite(admin, "quiet@example.com", "editor")
    app.test_client().get(f"/invite/{token}")
    _accept(app, token)
    page = _post(admin, "/api-keys", name="quiet", scope="read").get_data(as_text=True)
    match = KEY_RE.search(page)
    assert match
    logged = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "/invite/<token>" in logged
    assert token not in logged and match.group(0) not in logged and PASSWORD not in logged


def test_the_first_user_made_by_setup_is_an_admin(app: Flask) -> None:
    client = app.test_client()
    token = _token(client, "/setup")
    data = {"csrf_token": token, "email": ADMIN, "password": PASSWORD}
    answer = client.post("/setup", data={**data, "password_confirm": PASSWORD})
    assert answer.status_code == 302
    with _db(app).session() as db:
        assert db.scalar(select(User.role)) == "admin"
    assert client.get("/team").status_code == 200


def test_create_user_takes_a_role_and_defaults_to_admin(app: Flask) -> None:
    runner = app.test_cli_runner()
    for args, role in (
        (["v@example.com", "--role", "viewer"], "viewer"),
        (["a@example.com"], "admin"),
    ):
        result = runner.invoke(args=["create-user", *args, "--password-stdin"], input=PASSWORD)
        assert result.exit_code == 0, result.output
        assert f"({role})" in result.output
    result = runner.invoke(
        args=["create-user", "x@example.com", "--role", "owner", "--password-stdin"],
        input=PASSWORD,
    )
    assert result.exit_code != 0 and "--role" in result.output
    with _db(app).session() as db:
        roles = dict(db.execute(select(User.email, User.role)).all())
    assert roles == {"v@example.com": "viewer", "a@example.com": "admin"}


def _old_users_become_admins(url: str) -> None:
    upgrade(url, "0007_session_generation")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO users (email, password_hash, created_at, session_generation)"
                " VALUES ('old@example.com', 'x', :at, 0)"
            ),
            {"at": utcnow()},
        )
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT role FROM users")).scalar_one() == "admin"
    engine.dispose()
    downgrade(url, "0007_session_generation")


def test_users_from_before_roles_become_admins_on_sqlite(tmp_path: Path) -> None:
    _old_users_become_admins(f"sqlite:///{tmp_path / 'roles.db'}")


def test_users_from_before_roles_become_admins_on_postgres() -> None:
    require_postgres()
    schema = f"lgtest_roles_{os.getpid()}"
    admin = create_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        _old_users_become_admins(_pg_schema_url(schema))
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()
