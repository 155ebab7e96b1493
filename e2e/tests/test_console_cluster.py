"""The console's changes in a cluster are made through the Kubernetes API as the signed-in person.

The gateway runs under exactly the chart's RBAC with sign-in on (`helm template` of its Role and
ClusterRole): it may impersonate people, but may not itself create a Tenant or a Secret. People sign in
through a real OpenID Connect provider (Ory Hydra) in real headless Chromium: alice, whom a Role lets
create and update Tenants and their Secrets, creates a tenant and a key from the console; the key works
on the chat API; bob, who may only read Tenants, is refused by the API server in its own words; a Tenant
Argo CD keeps in Git is read-only."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Iterator

import openai
import pytest

from e2e_harness import (
    CONFIGMAP,
    CONVERGE_TIMEOUT,
    SAMPLES,
    Cluster,
    Gateway,
    Kubectl,
    condition,
    helm_template,
    secret,
    tenant,
    wait_until,
)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "sdk"))
from browser import LoginApp, chromium, serving_login_app, sign_in_through  # noqa: E402
from playwright.sync_api import expect  # noqa: E402

RBAC = "rbac.authorization.k8s.io"
RELEASE = "console"
# A write waits for the operator's reconcile and the ConfigMap watch: well within this.
WRITE_TIMEOUT_MS = 45_000
ARGO_TRACKING = "argocd.argoproj.io/tracking-id"


def role(name: str, rules: list[tuple[str, str, list[str]]]) -> dict:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "Role",
        "metadata": {"name": name},
        "rules": [{"apiGroups": [group], "resources": [resource], "verbs": verbs} for group, resource, verbs in rules],
    }


def binding(name: str, role_name: str, user: str) -> dict:
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "RoleBinding",
        "metadata": {"name": name},
        "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": role_name},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": user}],
    }


@pytest.fixture(scope="module")
def login_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoginApp]:
    with serving_login_app(tmp_path_factory.mktemp("hydra")) as app:
        yield app


@pytest.fixture(scope="module")
def gateway(cluster: Cluster, kubectl: Kubectl, helm: str, namespace: str, start_operator, start_gateway,  # noqa: ANN001
            login_app: LoginApp, tmp_path_factory: pytest.TempPathFactory) -> tuple[Gateway, str]:  # fmt: skip
    """The gateway, and the ServiceAccount it runs as."""
    hydra = login_app.hydra
    # The chart's RBAC for a gateway with sign-in, and no more.
    rendered = helm_template(helm, RELEASE, namespace,
                             ["templates/gateway/serviceaccount.yaml", "templates/gateway/rbac.yaml"],
                             "--set", f"gateway.signIn.issuer={hydra.issuer}", "--set", "gateway.signIn.clientId=switchboard",
                             "--set", "gateway.signIn.clientSecret.existingSecret=switchboard-oidc")  # fmt: skip
    objects = kubectl.to_json(rendered)
    kubectl.apply(namespace, *objects)
    (account,) = [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"]
    (gateway_role,) = [o for o in objects if o["kind"] == "Role"]
    (provider_keys,) = [r["resourceNames"][0] for r in gateway_role["rules"] if r["resources"] == ["secrets"]]
    kubeconfig = cluster.serviceaccount_kubeconfig(namespace, account, tmp_path_factory.mktemp("sa") / "gateway")

    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    argo = tenant("gitops", "gitops-key")
    argo["metadata"]["annotations"] = {ARGO_TRACKING: f"platform:switchboard.dev/Tenant:{namespace}/gitops"}
    kubectl.apply(
        namespace,
        secret("gitops-key", "sk-kept-in-git-0123456789"),
        argo,
        role("tenant-author", [("switchboard.dev", "tenants", ["get", "list", "create", "update"]),
                               ("switchboard.dev", "budgets", ["get", "create", "update", "delete"]),
                               ("", "secrets", ["get", "create", "delete"])]),  # fmt: skip
        role("tenant-reader", [("switchboard.dev", "tenants", ["get", "list"])]),
        binding("alice-authors-tenants", "tenant-author", "alice@example.com"),
        binding("bob-reads-tenants", "tenant-reader", "bob@example.com"),
        role("rbac-reader", [(RBAC, "roles", ["list"]), (RBAC, "rolebindings", ["list"])]),
        binding("alice-reads-rbac", "rbac-reader", "alice@example.com"),
    )
    # Reading who has access needs the cluster-wide bindings too.
    cluster_wide = f"{namespace}-alice-reads-cluster-rbac"
    kubectl.apply(namespace, {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": {"name": cluster_wide},
        "rules": [{"apiGroups": [RBAC], "resources": ["clusterroles", "clusterrolebindings"], "verbs": ["list"]}],
    }, {
        "apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": cluster_wide},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": cluster_wide},
        "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "alice@example.com"}],
    })  # fmt: skip
    keys = ["--configmap", CONFIGMAP, "--provider-keys-secret", provider_keys]
    start_operator(namespace, args=keys)
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", "tenant/gitops", timeout=90)
    client = hydra.web_client()
    oidc = ["--oidc-issuer", hydra.issuer, "--oidc-client-id", client.client_id, "--oidc-client-secret", client.secret]
    started = start_gateway(namespace, kubeconfig=kubeconfig, args=keys + oidc, admin=True)
    hydra.redirect_to(client, f"http://127.0.0.1:{started.admin_port}/auth/callback")
    return started, f"system:serviceaccount:{namespace}:{account}"


def test_changes_are_made_as_the_signed_in_person_and_rbac_decides(
    kubectl: Kubectl, namespace: str, gateway: tuple[Gateway, str], login_app: LoginApp
) -> None:
    gateway, account = gateway
    admin_url = f"http://127.0.0.1:{gateway.admin_port}"
    for verb, resource in (("create", "tenants.switchboard.dev"), ("create", "secrets"), ("update", "tenants.switchboard.dev")):
        can = kubectl.run("auth", "can-i", verb, resource, "-n", namespace, f"--as={account}", check=False)
        assert can.stdout.strip() == "no", f"the gateway itself may not {verb} {resource}: {can.stdout}"

    with chromium() as browser:
        alice = browser.new_page(viewport={"width": 1280, "height": 900})
        alice.set_default_timeout(WRITE_TIMEOUT_MS)
        sign_in_through(alice, login_app, admin_url, "alice", [])
        alice.goto(f"{admin_url}/console/#/tenants")
        alice.get_by_role("textbox", name="New tenant").fill("payments")
        alice.get_by_label("display name").fill("Payments team")
        alice.get_by_role("button", name="Create tenant").click()
        alice.get_by_role("heading", name="Tenant payments (Payments team)").wait_for()
        created = kubectl.get(namespace, "tenant", "payments")
        assert created["metadata"]["annotations"]["switchboard.dev/created-by"] == "alice@example.com"

        alice.get_by_role("textbox", name="New key named").fill("ci")
        alice.get_by_role("button", name="Add key").click()
        key = alice.locator("[data-field=new-key]").inner_text()
        assert key.startswith("sk-sb-"), key
        secret = kubectl.get(namespace, "secret", "console-key.payments.ci")
        assert [o["name"] for o in secret["metadata"]["ownerReferences"]] == ["payments"]
        assert key not in str(kubectl.get(namespace, "tenant", "payments")), "the Tenant names the Secret only"
        reply = gateway.client(key).chat.completions.create(
            model="demo-echo", messages=[{"role": "user", "content": "from a key made in the console"}]
        )
        assert reply.choices[0].message.content.endswith("from a key made in the console")

        # A default budget, written into the Tenant as alice.
        alice.get_by_label("Default budget, USD").fill("40")
        alice.get_by_role("button", name="Set budget").click()
        expect(alice.get_by_role("table", name="Budgets")).to_contain_text("payments/default")
        spec = kubectl.get(namespace, "tenant", "payments")["spec"]
        assert spec["defaultBudget"] == {"limitUsd": "40", "period": "Monthly", "enforcement": "Hard"}, spec

        # Who has access, from RBAC as alice reads it: her binding and bob's.
        members = alice.get_by_role("table", name="Members of payments (from the cluster's RBAC)")
        expect(members).to_contain_text("changeUseralice@example.comRoleBinding alice-authors-tenants (Role tenant-author)")
        expect(members).to_contain_text("readUserbob@example.comRoleBinding bob-reads-tenants (Role tenant-reader)")

        # A Budget object for the tenant, created as alice and removed again.
        cap = {"scope": {"kind": "Tenant", "tenant": "payments"}, "limitUsd": "75", "period": "Weekly"}
        made = alice.request.put(f"{admin_url}/admin/v1/budgets/payments-weekly", data=cap)
        assert made.status in (200, 202), made.text()
        budget = kubectl.get(namespace, "budget", "payments-weekly")
        assert budget["metadata"]["annotations"]["switchboard.dev/created-by"] == "alice@example.com"
        assert budget["spec"]["limitUsd"] == "75" and budget["spec"]["period"] == "Weekly", budget["spec"]
        gone = alice.request.delete(f"{admin_url}/admin/v1/budgets/payments-weekly")
        assert gone.status in (202, 204), gone.text()
        assert kubectl.get_or_none(namespace, "budget", "payments-weekly") is None

        # Kept in Git by Argo CD: read-only here, and the API refuses to change it.
        alice.locator("button[data-tenant='gitops']").click()
        expect(alice.locator("[data-field=read-only]")).to_contain_text("Managed by Argo CD: change it in Git")
        assert alice.get_by_role("form", name="New key").count() == 0
        refused = alice.request.post(f"{admin_url}/admin/v1/tenants/gitops/keys", data={"name": "ci"})
        assert refused.status == 409 and "Argo CD" in refused.text(), refused.text()

        # bob may only read: no form, and the API server's refusal names him.
        bob = browser.new_page(viewport={"width": 1280, "height": 900})
        bob.set_default_timeout(WRITE_TIMEOUT_MS)
        sign_in_through(bob, login_app, admin_url, "bob", [])
        bob.goto(f"{admin_url}/console/#/tenants")
        expect(bob.get_by_role("table", name="Tenants")).to_be_visible()
        assert bob.get_by_role("form", name="New tenant").count() == 0
        bob.locator("button[data-tenant='payments']").click()
        expect(bob.locator("[data-field=members-note]")).to_contain_text("cannot be read as you")
        refused = bob.request.post(f"{admin_url}/admin/v1/tenants", data={"name": "by-bob"})
        assert refused.status == 403, refused.text()
        message = refused.json()["error"]["message"]
        assert 'User "bob@example.com" cannot create resource "tenants"' in message, message
        assert kubectl.get_or_none(namespace, "tenant", "by-bob") is None
        refused = bob.request.put(f"{admin_url}/admin/v1/budgets/by-bob", data=cap)
        assert refused.status == 403, refused.text()
        assert 'User "bob@example.com" cannot get resource "budgets"' in refused.json()["error"]["message"]

        # alice revokes the key: its Secret goes, and the key stops working.
        alice.locator("button[data-tenant='payments']").click()
        alice.get_by_role("button", name="Revoke ci").click()
        expect(alice.locator("[data-revoke]")).to_have_count(0)
        wait_until(lambda: kubectl.get_or_none(namespace, "secret", "console-key.payments.ci") is None,
                   CONVERGE_TIMEOUT, "the key's Secret deleted")  # fmt: skip

        def refused_now() -> bool:
            try:
                gateway.client(key).models.list()
            except openai.AuthenticationError:
                return True
            return False

        wait_until(refused_now, CONVERGE_TIMEOUT, "the revoked key refused")

        # The operator's conditions as kubectl shows them: on a tenant's page, and in the Gateway view.
        alice.locator("button[data-tenant='demo']").click()
        ready = condition(kubectl.get(namespace, "tenant", "demo"), "Ready")
        assert ready and ready["status"] == "True", ready
        expect(alice.get_by_role("table", name="Conditions of Tenant demo")).to_contain_text(f"ReadyTrue{ready['reason']}")
        alice.goto(f"{admin_url}/console/#/gateway")
        route = condition(kubectl.get(namespace, "providerroute", "demo-echo"), "Ready")
        expect(alice.get_by_role("table", name="Conditions of ProviderRoute demo-echo")).to_contain_text(f"ReadyTrue{route['reason']}")
        expect(alice.get_by_role("table", name="Personas")).to_contain_text("ada")
