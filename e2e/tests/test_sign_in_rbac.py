"""People signed in to the admin API of the in-cluster gateway get what the cluster's RBAC grants them:
the gateway asks the real API server (SubjectAccessReview) for each person and question. Three people
sign in through a real OpenID Connect provider (Ory Hydra, built by scripts/hydra.sh): alice may
update Tenant demo, bob may only read it, carol nothing until a RoleBinding to her group lets her list
tenants. No roles file: Kubernetes RBAC is the one place access is granted."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import httpx2
import pytest

from e2e_harness import CONFIGMAP, CONVERGE_TIMEOUT, SAMPLES, Gateway, Kubectl, wait_until

# The Hydra helpers the SDK tests use (tests/sdk/hydra.py).
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "sdk"))
from hydra import Hydra, start_hydra  # noqa: E402

RBAC = "rbac.authorization.k8s.io"


def role(name: str, verbs: list[str], resource_names: list[str] | None = None) -> dict:
    rule = {"apiGroups": ["switchboard.dev"], "resources": ["tenants"], "verbs": verbs}
    if resource_names:
        rule["resourceNames"] = resource_names
    return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": {"name": name}, "rules": [rule]}


def binding(name: str, role_name: str, kind: str, subject: str) -> dict:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": role_name},
        "subjects": [{"apiGroup": RBAC, "kind": kind, "name": subject}],
    }


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hydra]:
    hydra = start_hydra(tmp_path_factory.mktemp("hydra"))
    yield hydra
    hydra.process.terminate(timeout=10)


@pytest.fixture(scope="module")
def gateway(kubectl: Kubectl, namespace: str, start_operator, start_gateway, provider: Hydra) -> Gateway:  # noqa: ANN001
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    kubectl.apply(
        namespace,
        role("demo-editor", ["get", "update"], ["demo"]),
        role("demo-reader", ["get"], ["demo"]),
        role("tenant-lister", ["list"]),
        binding("alice-edits-demo", "demo-editor", "User", "alice@example.com"),
        binding("bob-reads-demo", "demo-reader", "User", "bob@example.com"),
    )
    start_operator(namespace)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", timeout=90)
    client = provider.web_client()
    args = ["--configmap", CONFIGMAP, "--oidc-issuer", provider.issuer, "--oidc-client-id", client.client_id,
            "--oidc-client-secret", client.secret]  # fmt: skip
    started = start_gateway(namespace, args=args, admin=True)
    provider.redirect_to(client, f"http://127.0.0.1:{started.admin_port}/auth/callback")
    return started


def sign_in(gateway: Gateway, provider: Hydra, name: str, groups: list[str]) -> httpx2.Client:
    browser = httpx2.Client(follow_redirects=False, timeout=15)
    start = f"http://127.0.0.1:{gateway.admin_port}/auth/login"
    answer = provider.log_in(browser, start, f"sub-{name}", f"{name}@example.com", groups)
    assert answer.status_code == 303, answer.text
    return browser


def test_rbac_decides_what_each_person_may_read_and_change(kubectl: Kubectl, namespace: str, gateway: Gateway,
                                                          provider: Hydra) -> None:  # fmt: skip
    admin = f"http://127.0.0.1:{gateway.admin_port}"
    people = {name: sign_in(gateway, provider, name, groups)
              for name, groups in (("alice", []), ("bob", []), ("carol", ["sre"]))}  # fmt: skip

    def access(name: str) -> tuple[bool, bool]:
        answer = people[name].get(f"{admin}/auth/access?tenant=demo")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body["read"], body["update"]

    assert access("alice") == (True, True)
    assert access("bob") == (True, False)
    assert access("carol") == (False, False)
    assert people["alice"].get(f"{admin}/admin/v1/tenants/demo").status_code == 200
    assert people["bob"].get(f"{admin}/admin/v1/tenants/demo").status_code == 200
    refused = people["carol"].get(f"{admin}/admin/v1/tenants/demo")
    assert refused.status_code == 403, refused.text
    # Listing every tenant needs `list`, which neither alice nor bob has.
    assert people["alice"].get(f"{admin}/admin/v1/tenants").status_code == 403

    # RBAC changes reach the gateway: carol's group may now list tenants.
    kubectl.apply(namespace, binding("sre-lists-tenants", "tenant-lister", "Group", "sre"))
    wait_until(lambda: people["carol"].get(f"{admin}/admin/v1/tenants").status_code == 200, CONVERGE_TIMEOUT,
               "carol's group to list tenants")  # fmt: skip
