"""The app association files on the link domain, per Host."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import Api
from tests.integration.clicksetup import ANDROID_APP, HOST, TEMPLATE, make_setup

FINGERPRINT = ":".join(["AB"] * 32)


def test_apple_app_site_association_lists_universal_link_templates(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    make_setup(app, client, api)
    for path in ("/.well-known/apple-app-site-association", "/apple-app-site-association"):
        resp = client.get(path, headers={"Host": HOST})
        assert resp.status_code == 200 and resp.mimetype == "application/json"
        assert resp.get_json() == {
            "applinks": {
                "details": [
                    {
                        "appIDs": ["ABCDE12345.com.example.shop"],
                        "components": [{"/": f"/{TEMPLATE}/*"}, {"/": f"/{TEMPLATE}"}],
                    }
                ]
            }
        }


def test_assetlinks_lists_app_link_templates(app: Flask, client: FlaskClient, api: Api) -> None:
    make_setup(app, client, api)
    resp = client.get("/.well-known/assetlinks.json", headers={"Host": f"{HOST}:443"})
    assert resp.status_code == 200
    assert resp.get_json() == [
        {
            "relation": ["delegate_permission/common.handle_all_urls"],
            "target": {
                "namespace": "android_app",
                "package_name": ANDROID_APP,
                "sha256_cert_fingerprints": [FINGERPRINT],
            },
        }
    ]


def test_other_hosts_get_empty_files(app: Flask, client: FlaskClient, api: Api) -> None:
    make_setup(app, client, api)
    headers = {"Host": "other.example.net"}
    aasa = client.get("/.well-known/apple-app-site-association", headers=headers)
    assert aasa.get_json() == {"applinks": {"details": []}}
    assert client.get("/.well-known/assetlinks.json", headers=headers).get_json() == []


def test_templates_without_universal_or_app_links_are_left_out(
    app: Flask, client: FlaskClient, api: Api
) -> None:
    make_setup(app, client, api, universal_links=False, app_links=False)
    headers = {"Host": HOST}
    aasa = client.get("/.well-known/apple-app-site-association", headers=headers)
    assert aasa.get_json() == {"applinks": {"details": []}}
    assert client.get("/.well-known/assetlinks.json", headers=headers).get_json() == []


def test_an_edit_shows_in_the_files(app: Flask, client: FlaskClient, api: Api) -> None:
    make_setup(app, client, api)
    r = api.patch(f"/api/v1/templates/{TEMPLATE}", {"app_links": False})
    assert r.status_code == 200
    assert client.get("/.well-known/assetlinks.json", headers={"Host": HOST}).get_json() == []
