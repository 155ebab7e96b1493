"""People signing in to the admin API with a real OpenID Connect provider (Ory Hydra, tests/sdk/hydra.py):
the authorization code flow with PKCE through Hydra's login and consent, a session cookie, roles from
--roles-file (a platform admin, a tenant admin by group, a viewer, someone with no role), logout, a
forged callback refused, and each sign-in and admin request in the audit trail under the person's name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx2
import pytest

from harness import ADMIN_TOKEN, Gateway, http
from hydra import Hydra, hydra  # noqa: F401 (the fixture)

ROLES = """
platformAdmins: {users: [ada@example.com]}
viewers: {groups: [sre]}
tenantAdmins:
  demo: {groups: [demo-leads]}
"""


@pytest.fixture
def signed_in_gateway(start_gateway, hydra: Hydra, tmp_path: Path) -> tuple[Gateway, Hydra]:
    client = hydra.web_client()
    roles = tmp_path / "roles.yaml"
    roles.write_text(ROLES)
    gateway = start_gateway(
        args=[
            "--oidc-issuer", hydra.issuer,
            "--oidc-client-id", client.client_id,
            "--roles-file", str(roles),
        ],
        env={"SWITCHBOARD_OIDC_CLIENT_SECRET": client.secret},
    )  # fmt: skip
    hydra.redirect_to(client, f"{gateway.admin_url}/auth/callback")
    return gateway, hydra


def sign_in(gateway: Gateway, hydra: Hydra, name: str, groups: list[str]) -> httpx2.Client:
    browser = httpx2.Client(follow_redirects=False, timeout=15)
    answer = hydra.log_in(browser, f"{gateway.admin_url}/auth/login?return_to=/auth/me", f"sub-{name}",
                          f"{name}@example.com", groups)  # fmt: skip
    assert answer.status_code == 303, answer.text
    assert answer.headers["location"] == "/auth/me"
    cookie = answer.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie, cookie
    return browser


def status(browser: httpx2.Client, gateway: Gateway, path: str) -> int:
    return browser.get(f"{gateway.admin_url}{path}").status_code


def test_people_sign_in_and_their_roles_decide_what_they_read(signed_in_gateway) -> None:
    gateway, hydra = signed_in_gateway
    ada = sign_in(gateway, hydra, "ada", [])
    me = ada.get(f"{gateway.admin_url}/auth/me").json()
    assert (me["email"], me["issuer"]) == ("ada@example.com", hydra.issuer)
    assert me["roles"] == {"platform_admin": True, "viewer": False, "tenant_admin": []}
    assert status(ada, gateway, "/admin/v1/audit") == 200

    bob = sign_in(gateway, hydra, "bob", ["demo-leads", "staff"])
    assert bob.get(f"{gateway.admin_url}/auth/me").json()["roles"]["tenant_admin"] == ["demo"]
    assert status(bob, gateway, "/admin/v1/tenants/demo") == 200
    assert status(bob, gateway, "/admin/v1/requests?tenant=demo") == 200
    refused = bob.get(f"{gateway.admin_url}/admin/v1/usage")
    assert refused.status_code == 403 and "no role" in refused.json()["error"]["message"]
    assert status(bob, gateway, "/admin/v1/requests") == 403
    assert status(bob, gateway, "/admin/v1/audit") == 403

    sam = sign_in(gateway, hydra, "sam", ["sre"])
    assert status(sam, gateway, "/admin/v1/usage") == 200
    assert status(sam, gateway, "/admin/v1/tenants/demo") == 200
    assert status(sam, gateway, "/admin/v1/audit") == 403

    eve = sign_in(gateway, hydra, "eve", ["demo"])
    assert eve.get(f"{gateway.admin_url}/auth/me").json()["roles"] == {
        "platform_admin": False, "viewer": False, "tenant_admin": []}  # fmt: skip
    assert status(eve, gateway, "/admin/v1/tenants") == 403

    # Logged out, the cookie signs no one in.
    assert ada.post(f"{gateway.admin_url}/auth/logout").status_code == 204
    assert status(ada, gateway, "/auth/me") == 401
    assert status(ada, gateway, "/admin/v1/audit") == 401

    # A callback no sign-in began is refused.
    forged = httpx2.get(f"{gateway.admin_url}/auth/callback?code=stolen&state=0123456789abcdef", timeout=10)
    assert forged.status_code == 400 and forged.json()["error"]["code"] == "sign_in_failed"

    # The audit trail names the people: their sign-ins, what they read, what they were refused
    # (written off the request path: the last rows may take a moment).
    deadline = time.monotonic() + 10
    while True:
        status_code, _, raw = http("GET", f"{gateway.admin_url}/admin/v1/audit?limit=500",
                                   headers={"authorization": f"Bearer {ADMIN_TOKEN}"})  # fmt: skip
        assert status_code == 200, raw
        events = json.loads(raw)["data"]
        if any(e["action"] == "auth.sign_in" and e["outcome"] == "denied" for e in events) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    sign_ins = sorted((e["actor"], e["outcome"]) for e in events if e["action"] == "auth.sign_in")
    assert sign_ins == [("ada@example.com", "allowed"), ("bob@example.com", "allowed"), ("eve@example.com", "allowed"),
                        ("sam@example.com", "allowed"), ("unknown", "denied")], sign_ins  # fmt: skip
    bob_reads = {(e["target"], e["outcome"]) for e in events if e["actor"] == "bob@example.com" and e["action"] == "admin.request"}
    assert ("GET /admin/v1/tenants/demo", "200") in bob_reads and ("GET /admin/v1/usage", "denied") in bob_reads, bob_reads
    assert all(e["identity_provider"] == hydra.issuer for e in events if e["actor"] == "bob@example.com")
