"""Ory Hydra, a real OpenID Connect provider, for the identity tests: built from the Go module proxy
by scripts/hydra.sh (the module in tests/oidc), run with an in-memory store; OAuth clients,
client-credentials tokens, key rotation, and the login and consent steps of a person signing in,
which a login app would do (Hydra has none of its own)."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from harness import ROOT, Process, free_port, http

HYDRA_BUILD = [str(ROOT / "scripts" / "hydra.sh")]
# Hydra's own secret for encrypting its in-memory store: a test value, not a credential of anything.
HYDRA_SYSTEM_SECRET = "switchboard-test-hydra-system-secret"


@dataclass
class OAuthClient:
    client_id: str
    secret: str


@dataclass
class Hydra:
    process: Process
    public: str
    admin: str

    @property
    def issuer(self) -> str:
        return self.public

    def client(self, audience: str) -> OAuthClient:
        """A client for the client-credentials grant, allowed `audience`."""
        return self.register({"grant_types": ["client_credentials"], "audience": [audience]})

    def register(self, body: dict) -> OAuthClient:
        body = {**body, "token_endpoint_auth_method": "client_secret_basic"}
        status, _, raw = http("POST", f"{self.admin}/admin/clients", body, {"content-type": "application/json"})
        assert status == 201, raw
        created = json.loads(raw)
        return OAuthClient(created["client_id"], created["client_secret"])

    def token(self, client: OAuthClient, audience: str) -> str:
        basic = base64.b64encode(f"{client.client_id}:{client.secret}".encode()).decode()
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "audience": audience}).encode()
        headers = {"authorization": f"Basic {basic}", "content-type": "application/x-www-form-urlencoded"}
        status, _, raw = http("POST", f"{self.public}/oauth2/token", form, headers)
        assert status == 200, raw
        return json.loads(raw)["access_token"]

    def web_client(self) -> OAuthClient:
        """A client for the authorization code flow (its redirect URI is set later, `redirect_to`)."""
        return self.register({
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "scope": "openid email profile",
            "redirect_uris": ["http://127.0.0.1:9/unset"],
        })

    def redirect_to(self, client: OAuthClient, uri: str) -> None:
        patch = [{"op": "replace", "path": "/redirect_uris", "value": [uri]}]
        status, _, raw = http("PATCH", f"{self.admin}/admin/clients/{client.client_id}", patch,
                              {"content-type": "application/json"})  # fmt: skip
        assert status == 200, raw

    def log_in(self, browser, start: str, subject: str, email: str, groups: list[str]):
        """Follows a sign-in from `start` (the relying party's login URL) through Hydra's login and
        consent as `subject`, whose ID token gets `email` and `groups`; returns the relying party's
        answer to the callback. `browser` is an httpx client that keeps cookies and does not follow
        redirects."""
        response = browser.get(start)
        assert response.status_code in (302, 303), response.text
        response = browser.get(response.headers["location"])
        login = challenge(response, "login_challenge")
        accepted = self.accept(f"login/accept?login_challenge={login}", {"subject": subject})
        response = browser.get(accepted)
        consent = challenge(response, "consent_challenge")
        status, _, raw = http("GET", f"{self.admin}/admin/oauth2/auth/requests/consent?consent_challenge={consent}")
        assert status == 200, raw
        asked = json.loads(raw)
        accepted = self.accept(
            f"consent/accept?consent_challenge={consent}",
            {
                "grant_scope": asked["requested_scope"],
                "grant_access_token_audience": asked["requested_access_token_audience"],
                "session": {"id_token": {"email": email, "groups": groups}},
            },
        )
        response = browser.get(accepted)
        assert response.status_code in (302, 303), response.text
        return browser.get(response.headers["location"])

    def accept(self, what: str, body: dict) -> str:
        url = f"{self.admin}/admin/oauth2/auth/requests/{what}"
        status, _, raw = http("PUT", url, body, {"content-type": "application/json"})
        assert status == 200, raw
        return json.loads(raw)["redirect_to"]

    def rotate(self, kid: str) -> None:
        """Adds a signing key to the access-token key set; Hydra signs new tokens with it at once."""
        body = {"alg": "RS256", "use": "sig", "kid": kid}
        url = f"{self.admin}/admin/keys/hydra.jwt.access-token"
        status, _, raw = http("POST", url, body, {"content-type": "application/json"})
        assert status == 201, raw


def challenge(response, name: str) -> str:
    """The login or consent challenge Hydra redirects a browser with."""
    assert response.status_code in (302, 303), response.text
    query = urllib.parse.urlparse(response.headers["location"]).query
    return urllib.parse.parse_qs(query)[name][0]


def kid_of(token: str) -> str:
    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def start_hydra(directory: Path, login_app: str = "http://127.0.0.1:9") -> Hydra:
    """Hydra with an in-memory store; it sends people to log in and consent at `login_app`
    (`/login`, `/consent`): by default nothing listens there, and the tests take the challenge
    from the redirect (`Hydra.log_in`)."""
    built = subprocess.run(HYDRA_BUILD, capture_output=True, text=True, timeout=1200)
    assert built.returncode == 0, f"cannot build Hydra:\n{built.stderr}"
    binary = built.stdout.strip()
    public, admin = free_port(), free_port()
    env = {
        "DSN": "memory",
        "SECRETS_SYSTEM": HYDRA_SYSTEM_SECRET,
        "URLS_SELF_ISSUER": f"http://127.0.0.1:{public}",
        "STRATEGIES_ACCESS_TOKEN": "jwt",
        "SERVE_PUBLIC_HOST": "127.0.0.1",
        "SERVE_PUBLIC_PORT": str(public),
        "SERVE_ADMIN_HOST": "127.0.0.1",
        "SERVE_ADMIN_PORT": str(admin),
        "LOG_LEVEL": "warn",
        # Where Hydra sends a person to log in and consent, the login app's job.
        "URLS_LOGIN": f"{login_app}/login",
        "URLS_CONSENT": f"{login_app}/consent",
    }
    process = Process("hydra", [binary, "serve", "all", "--dev", "--sqa-opt-out"], directory / "hydra.log", env)
    process.wait_ready(f"http://127.0.0.1:{admin}/health/ready")
    process.wait_ready(f"http://127.0.0.1:{public}/health/ready")
    return Hydra(process, f"http://127.0.0.1:{public}", f"http://127.0.0.1:{admin}")


@pytest.fixture
def hydra(tmp_path: Path) -> Iterator[Hydra]:
    provider = start_hydra(tmp_path)
    yield provider
    provider.process.terminate(timeout=10)


