"""The browser side of the console tests, shared by the SDK tests (tests/sdk/test_console.py) and
the cluster's (e2e/tests/test_console_cluster.py): real headless Chromium (Debian's package, driven
by Playwright), and a login app for Ory Hydra that signs in whoever a test names, so a browser goes
through the whole OpenID Connect sign-in."""

from __future__ import annotations

import json
import os
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from harness import http
from hydra import Hydra, start_hydra
from playwright.sync_api import expect, sync_playwright

CHROMIUM = os.environ.get("SWITCHBOARD_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Bounds for the page: a view renders well within these on this machine.
TIMEOUT_MS = 15_000


@contextmanager
def chromium() -> Iterator:
    """A headless Chromium (Playwright's Browser)."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"no Chromium at {CHROMIUM}: scripts/system-packages.sh installs Debian's", pytrace=False)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


class LoginApp(ThreadingHTTPServer):
    """The login and consent app Hydra sends a browser to: it signs in whoever `person` names
    (name and groups) at once, accepting through Hydra's admin API as a real login app would."""

    hydra: Hydra
    person: tuple[str, list[str]] = ("nobody", [])

    def __init__(self) -> None:
        app = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the standard library's name)
                query = parse_qs(urlparse(self.path).query)
                self.send_response(302)
                self.send_header("location", app.accept(query))
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def accept(self, query: dict[str, list[str]]) -> str:
        name, groups = self.person
        if "login_challenge" in query:
            challenge = query["login_challenge"][0]
            return self.hydra.accept(f"login/accept?login_challenge={challenge}", {"subject": f"sub-{name}"})
        challenge = query["consent_challenge"][0]
        _, _, raw = http("GET", f"{self.hydra.admin}/admin/oauth2/auth/requests/consent?consent_challenge={challenge}")
        asked = json.loads(raw)
        return self.hydra.accept(
            f"consent/accept?consent_challenge={challenge}",
            {
                "grant_scope": asked["requested_scope"],
                "grant_access_token_audience": asked["requested_access_token_audience"],
                "session": {"id_token": {"email": f"{name}@example.com", "groups": groups}},
            },
        )


@contextmanager
def serving_login_app(directory: Path) -> Iterator[LoginApp]:
    """Hydra (its files in `directory`) with a login app of its own."""
    app = LoginApp()
    threading.Thread(target=app.serve_forever, daemon=True).start()
    app.hydra = start_hydra(directory, f"http://127.0.0.1:{app.server_address[1]}")
    try:
        yield app
    finally:
        app.hydra.process.terminate(timeout=10)
        app.shutdown()


def sign_in_through(page, app: LoginApp, admin_url: str, name: str, groups: list[str]) -> None:
    """Signs `name` in from the console's link, through Hydra and the login app."""
    app.person = (name, groups)
    page.goto(f"{admin_url}/console/")
    page.get_by_role("link", name="Sign in with your identity provider").click()
    expect(page.locator("[data-field=who]")).to_have_text(f"{name}@example.com")
