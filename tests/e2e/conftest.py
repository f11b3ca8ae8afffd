"""Browser tests: a live linkgen server in a thread and Debian's Chromium driven by Playwright.

One server (a migrated SQLite file) serves the whole e2e session; each test gets a fresh browser
context (its own cookies) and fails if the page logged any console error or uncaught exception.
Without /usr/bin/chromium the tests are skipped with a message, unless
LINKGEN_TEST_REQUIRE_BROWSER=1, which turns the skip into a failure. No browser is downloaded.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import WSGIRequestHandler, make_server

from linkgen.config import Settings
from linkgen.factory import create_app
from linkgen.storage.migrate import upgrade

CHROMIUM = Path("/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("LINKGEN_TEST_REQUIRE_BROWSER", "") in ("1", "true", "yes")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
# Screenshots go to tests/e2e/artifacts/ (ignored by git), so a test run leaves the checkout as
# it found it; LINKGEN_UPDATE_SCREENSHOTS=1 writes them to docs/screenshots/ instead, to refresh
# the pictures README links.
_REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = (
    _REPO / "docs" / "screenshots"
    if os.environ.get("LINKGEN_UPDATE_SCREENSHOTS", "") in ("1", "true", "yes")
    else _REPO / "tests" / "e2e" / "artifacts" / "screenshots"
)
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
EMAIL = "manager@example.com"
PASSWORD = "correct horse battery"
IOS_APP = "id123456789"
ANDROID_APP = "com.example.shop"
QUIET_APP = "com.example.quiet"  # no CleverTap integration: its postbacks are skipped
WAIT_MS = 30_000  # any wait for the page: generous, since a busy machine is slow, not wrong


def pytest_configure(config: pytest.Config) -> None:
    """Playwright's assertions wait 5 s by default; on a busy machine that is a flake, not a
    finding. Every wait here has the same generous bound as the contexts' actions."""
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    message = f"browser tests skipped: {CHROMIUM} is missing (apt-get install chromium)"
    if REQUIRE_BROWSER:
        pytest.fail(message + " and LINKGEN_TEST_REQUIRE_BROWSER is set")
    pytest.skip(message)


@dataclass
class Site:
    """The running server and what the tests seeded."""

    base_url: str
    app: Any
    template_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base_url + path

    def db(self) -> Any:
        return self.app.extensions["linkgen"].db


class _QuietHandler(WSGIRequestHandler):
    """No access log lines in the test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Dispatch:
    """The WSGI app the server calls; the real app is attached once the port is known.

    It reads the app's whole answer and closes it before handing the bytes to the server.
    Werkzeug's development server calls the answer's `close()` only after it has drained the
    request socket, and when the browser has reset the connection meanwhile (a favicon or a
    page it no longer wants) that read raises, `close()` is skipped and the open static file
    is left to the garbage collector: a ResourceWarning that `filterwarnings = error` turned
    into a failure of whichever test was running then. No page here streams, so buffering
    costs nothing.
    """

    def __init__(self) -> None:
        self.app: Any = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        answer = self.app(environ, start_response)
        try:
            return [b"".join(answer)]
        finally:
            if hasattr(answer, "close"):
                answer.close()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """linkgen on 127.0.0.1:<free port> with a freshly migrated SQLite database."""
    _require_chromium()
    root = tmp_path_factory.mktemp("e2e")
    url = f"sqlite:///{root / 'linkgen.db'}"
    upgrade(url)
    dispatch = _Dispatch()
    server = make_server("127.0.0.1", 0, dispatch, threaded=True, request_handler=_QuietHandler)
    host = f"127.0.0.1:{server.server_port}"
    settings = Settings(
        database_url=url,
        secret_key="e2e-secret-key",
        link_domains=(host, "go.example.com"),
        instance_path=root / "instance",
        testing=True,
        run_worker=False,
    )
    app = create_app(settings)
    dispatch.app = app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(base_url=f"http://{host}", app=app)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        app.extensions["linkgen"].close()


@pytest.fixture(scope="session")
def browser(live_server: Site) -> Iterator[Any]:
    """Debian's Chromium, headless."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


class ConsoleWatch:
    """Console errors and uncaught exceptions of one page."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def attach(self, page: Any) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url')})")


@pytest.fixture
def new_page(browser: Any, live_server: Site) -> Iterator[Callable[..., Any]]:
    """Open pages in fresh contexts; every page must finish without a console error."""
    contexts: list[Any] = []
    watch = ConsoleWatch()

    def _open(viewport: dict[str, int] | None = None, **options: Any) -> Any:
        context = browser.new_context(
            **options,
            viewport=viewport or DESKTOP,
            base_url=live_server.base_url,
            accept_downloads=True,
            permissions=["clipboard-read", "clipboard-write"],
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        page = context.new_page()
        watch.attach(page)
        return page

    yield _open
    for context in contexts:
        context.close()
    assert watch.errors == [], "the pages logged errors:\n" + "\n".join(watch.errors)


@pytest.fixture(scope="session")
def seeded(live_server: Site, browser: Any) -> Site:
    """First run through the browser (the setup page creates the first user), then apps,
    templates and a link through the services."""
    from linkgen.services import catalog
    from linkgen.services.links import create_link

    context = browser.new_context(viewport=DESKTOP, base_url=live_server.base_url)
    page = context.new_page()
    page.goto("/")
    assert page.url.endswith("/setup")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "setup-desktop.png"))
    page.get_by_label("Email", exact=True).fill(EMAIL)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create user and log in").click()
    page.wait_for_url("**/links")
    context.close()

    rt = live_server.app.extensions["linkgen"]
    host = live_server.base_url.removeprefix("http://")
    with rt.db.session() as db:
        catalog.create_app_record(db, {"app_id": IOS_APP, "name": "Shop for iPhone"})
        _, android_key = catalog.create_app_record(
            db, {"app_id": ANDROID_APP, "name": "Shop for Android"}
        )
        live_server.extra["android_sdk_key"] = android_key
        catalog.create_app_record(db, {"app_id": QUIET_APP, "name": "Quiet app"})
        t = catalog.create_template_record(
            db,
            {
                "template_id": "Shop",
                "domain": host,
                "ios_app_id": IOS_APP,
                "android_app_id": ANDROID_APP,
                "web_fallback_url": "https://example.com/shop",
                "redirect_allowlist": ["example.com"],
            },
            rt.settings.link_domains,
        )
        live_server.template_id = t.template_id
        link = create_link(
            db,
            {
                "template_id": t.template_id,
                "channel": "email",
                "campaign": "spring_sale",
                "title": "Spring sale newsletter: shoes",
                "tags": ["spring", "newsletter"],
                "notes": "The main button of the spring newsletter.",
                "params": {"deep_link_value": "shoes", "af_sub5": "{{Profile.objectId}}"},
                "short": True,
            },
            scheme_for=rt.settings.scheme_for,
            created_by=f"user:{EMAIL}",
        )
        live_server.extra["link_id"] = link["id"]
    return live_server


AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"


def assert_accessible(page: Any, name: str) -> None:
    """Run axe-core (vendored) in the page; fail on any serious or critical violation."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE.read_text())  # through the DevTools protocol: the page's CSP allows it
    result = page.evaluate(
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
        " nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    bad = [v for v in result if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: accessibility violations:\n" + "\n".join(
        f"  {v['impact']} {v['id']}: {v['help']} at {v['nodes']}" for v in bad
    )


def assert_no_horizontal_scroll(page: Any, name: str) -> None:
    """The page is no wider than the window (nothing to scroll sideways)."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{name} overflows horizontally by {overflow}px"


def log_in(page: Any, email: str = EMAIL, password: str = PASSWORD) -> None:
    """Log in through the form and land on the links list."""
    page.goto("/login")
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/links")


def open_account_menu(page: Any) -> Any:
    """Open the top bar's account menu (Team, API keys, Account, Log out); returns its panel."""
    menu = page.locator("details.account-menu")
    if menu.get_attribute("open") is None:
        menu.locator("summary").click()
    panel = menu.locator(".menu-panel")
    panel.wait_for(state="visible")
    return panel
