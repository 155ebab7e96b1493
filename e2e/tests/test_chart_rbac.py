"""The operator and the gateway run under exactly the chart's RBAC, not as cluster-admin, and still
converge: each authenticates with a ServiceAccount token (TokenRequest API) bound only to the roles
`helm template` renders from charts/switchboard, and runs with the arguments of the chart's Deployment.

Nothing here copies RBAC rules: they come from the chart, so a rule the code needs and the chart
lacks fails this test (as a Forbidden error in a log, or as a resource that never converges). The
other way round, `kubectl auth can-i` tables say what each ServiceAccount must not be able to do
(least privilege: a namespaced Role by default, the gateway reading only the provider-keys Secret).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import openai
import pytest

from e2e_harness import (
    API_VERSION,
    CONVERGE_TIMEOUT,
    DEMO_KEY,
    FINALIZER,
    MANAGED_BY,
    OPERATOR_LEASE,
    SAMPLES,
    VERSION_ANNOTATION,
    Cluster,
    Gateway,
    Kubectl,
    Operator,
    helm_template,
    is_ready,
    published_config,
    secret,
    summary,
    tenant,
    wait_until,
)

SAMPLE_RESOURCES = ["tenant/demo", "persona/ada", "providerroute/demo-echo", "providerroute/local-model", "budget/demo-monthly"]
RBAC_TEMPLATES = [
    "templates/operator/serviceaccount.yaml",
    "templates/operator/rbac.yaml",
    "templates/gateway/serviceaccount.yaml",
    "templates/gateway/rbac.yaml",
]


@dataclass
class Release:
    name: str
    namespace: str
    objects: list[dict[str, Any]]
    operator_sa: str
    gateway_sa: str
    operator_args: list[str]
    gateway_args: list[str]

    @property
    def configmap(self) -> str:
        return f"{self.name}-gateway-config"


def container_args(kubectl: Kubectl, helm: str, release: str, namespace: str, template: str) -> list[str]:
    (deployment,) = kubectl.to_json(helm_template(helm, release, namespace, [template]))
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    return [str(a) for a in container["args"]]


def without(args: list[str], *flags: str) -> list[str]:
    """The args minus `--flag value` pairs for the given flags (those the test sets itself)."""
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg in flags:
            skip = True
        elif arg.split("=", 1)[0] in flags:
            pass
        else:
            out.append(arg)
    return out


def flag(args: list[str], name: str) -> str:
    """The value of `--name value` or `--name=value`."""
    for i, arg in enumerate(args):
        if arg == name:
            return args[i + 1]
        if arg.startswith(f"{name}="):
            return arg.split("=", 1)[1]
    raise AssertionError(f"no {name} in {args}")


def binding_of(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    """The (Cluster)RoleBinding of one component, found by the chart's component label."""
    (binding,) = [
        o
        for o in objects
        if o["kind"].endswith("RoleBinding") and o["metadata"]["labels"]["app.kubernetes.io/component"] == component
    ]
    return binding


@pytest.fixture(scope="module")
def release(kubectl: Kubectl, helm: str, namespace: str) -> Release:
    name = f"sb{uuid.uuid4().hex[:6]}"
    objects = kubectl.to_json(helm_template(helm, name, namespace, RBAC_TEMPLATES))
    for obj in objects:
        for rule in obj.get("rules", []):
            for field in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule.get(field, []), f"{obj['kind']}/{obj['metadata']['name']}: wildcard in {rule}"
    # Applied as the admin, as `helm install` would.
    kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
    operator_args = container_args(kubectl, helm, name, namespace, "templates/operator/deployment.yaml")
    gateway_args = container_args(kubectl, helm, name, namespace, "templates/gateway/deployment.yaml")
    assert flag(operator_args, "--namespace") == namespace and flag(gateway_args, "--namespace") == namespace
    assert flag(operator_args, "--configmap") == flag(gateway_args, "--configmap") == f"{name}-gateway-config"
    return Release(
        name=name,
        namespace=namespace,
        objects=objects,
        operator_sa=binding_of(objects, "operator")["subjects"][0]["name"],
        gateway_sa=binding_of(objects, "gateway")["subjects"][0]["name"],
        # The test sets the listen addresses (free loopback ports), the namespace and the identity.
        operator_args=without(operator_args, "--namespace", "--metrics-listen", "--identity"),
        gateway_args=without(gateway_args, "--namespace", "--listen", "--admin-listen", "--database-url", "--identity"),
    )


@pytest.fixture(scope="module")
def sa_kubeconfigs(cluster: Cluster, release: Release, logs: Path) -> dict[str, Path]:
    return {
        "operator": cluster.serviceaccount_kubeconfig(release.namespace, release.operator_sa, logs / "operator.kubeconfig"),
        "gateway": cluster.serviceaccount_kubeconfig(release.namespace, release.gateway_sa, logs / "gateway.kubeconfig"),
    }


def test_service_accounts_are_not_admin(cluster: Cluster, release: Release, sa_kubeconfigs: dict[str, Path]) -> None:
    for component, sa in (("operator", release.operator_sa), ("gateway", release.gateway_sa)):
        as_sa = cluster.kubectl(sa_kubeconfigs[component])
        who = json.loads(as_sa("auth", "whoami", "-o", "json"))["status"]["userInfo"]
        assert who["username"] == f"system:serviceaccount:{release.namespace}:{sa}", who
        assert "system:masters" not in who.get("groups", []), who
        result = as_sa.run("auth", "can-i", "*", "*", "--all-namespaces", check=False)
        assert result.stdout.strip() == "no", f"{component} is cluster-admin"


# What each ServiceAccount may and may not do: (expected, verb, resource, where). `where` is "ns"
# (the release namespace), "other" (kube-system) or "cluster" (no namespace). `{keys}` is the
# provider-keys Secret the chart passes to both binaries; `demo-key` stands for a tenant key Secret.
OPERATOR_CAN = [
    (True, "watch", "tenants.switchboard.dev", "ns"),
    (True, "list", "budgets.switchboard.dev", "ns"),
    (True, "patch", "tenants.switchboard.dev", "ns"),
    (False, "update", "tenants.switchboard.dev", "ns"),
    (False, "create", "tenants.switchboard.dev", "ns"),
    (False, "delete", "tenants.switchboard.dev", "ns"),
    (True, "patch", "tenants.switchboard.dev/status", "ns"),
    (True, "patch", "budgets.switchboard.dev/status", "ns"),
    (False, "update", "personas.switchboard.dev/status", "ns"),
    (True, "update", "tenants.switchboard.dev/finalizers", "ns"),
    (True, "watch", "secrets", "ns"),
    (True, "create", "secrets", "ns"),
    (True, "patch", "secrets/{keys}", "ns"),
    (False, "patch", "secrets/demo-key", "ns"),
    (False, "update", "secrets/{keys}", "ns"),
    (False, "delete", "secrets", "ns"),
    (False, "get", "secrets", "other"),
    (False, "list", "secrets", "cluster"),
    (True, "create", "configmaps", "ns"),
    (True, "patch", "configmaps", "ns"),
    (True, "delete", "configmaps", "ns"),
    (False, "update", "configmaps", "ns"),
    (False, "delete", "configmaps", "other"),
    (True, "create", "networkpolicies.networking.k8s.io", "ns"),
    (True, "delete", "networkpolicies.networking.k8s.io", "ns"),
    (False, "update", "networkpolicies.networking.k8s.io", "ns"),
    (False, "create", "networkpolicies.networking.k8s.io", "other"),
    (True, "create", "events.events.k8s.io", "ns"),
    (False, "create", "events.events.k8s.io", "other"),
    (True, "create", "leases.coordination.k8s.io", "ns"),
    (True, "patch", "leases.coordination.k8s.io/switchboard-operator", "ns"),
    (False, "patch", "leases.coordination.k8s.io/switchboard-gateway-status", "ns"),
    (False, "delete", "leases.coordination.k8s.io", "ns"),
    (False, "list", "namespaces", "cluster"),
    (False, "create", "pods", "ns"),
    (False, "create", "clusterrolebindings", "cluster"),
]
GATEWAY_CAN = [
    (True, "watch", "configmaps", "ns"),
    (False, "create", "configmaps", "ns"),
    (False, "patch", "configmaps", "ns"),
    (True, "get", "secrets/{keys}", "ns"),
    (True, "list", "secrets/{keys}", "ns"),
    (True, "watch", "secrets/{keys}", "ns"),
    (False, "get", "secrets/demo-key", "ns"),
    (False, "list", "secrets", "ns"),
    (False, "watch", "secrets", "ns"),
    (False, "get", "secrets/{keys}", "other"),
    (False, "patch", "secrets/{keys}", "ns"),
    (True, "patch", "budgets.switchboard.dev/status", "ns"),
    (True, "patch", "tenants.switchboard.dev/status", "ns"),
    (True, "list", "providerroutes.switchboard.dev", "ns"),
    (True, "get", "tenants.switchboard.dev", "ns"),
    (False, "patch", "budgets.switchboard.dev", "ns"),
    (False, "update", "tenants.switchboard.dev", "ns"),
    (False, "create", "tenants.switchboard.dev", "ns"),
    (False, "delete", "tenants.switchboard.dev", "ns"),
    (False, "impersonate", "users", "cluster"),
    (True, "create", "events.events.k8s.io", "ns"),
    (True, "create", "leases.coordination.k8s.io", "ns"),
    (True, "patch", "leases.coordination.k8s.io/switchboard-gateway-status", "ns"),
    (False, "patch", "leases.coordination.k8s.io/switchboard-operator", "ns"),
    (False, "create", "networkpolicies.networking.k8s.io", "ns"),
    (False, "list", "namespaces", "cluster"),
    (False, "create", "clusterrolebindings", "cluster"),
]


def provider_keys_secret(release: Release) -> str:
    """The Secret both Deployments are told to use; the operator and the gateway must agree on it."""
    operator = flag(release.operator_args, "--provider-keys-secret")
    gateway = flag(release.gateway_args, "--provider-keys-secret")
    assert operator == gateway, (operator, gateway)
    return operator


def wrong_answers(kubectl: Kubectl, release: Release, sa: str, table: list[tuple[bool, str, str, str]]) -> list[str]:
    """`kubectl auth can-i` as the ServiceAccount for each row; the rows answered otherwise."""
    try:
        keys = provider_keys_secret(release)
    except AssertionError as error:
        keys = f"{release.name}-gateway-provider-keys"
        wrong = [f"provider-keys Secret: {error}"]
    else:
        wrong = []
    user = f"system:serviceaccount:{release.namespace}:{sa}"
    for expected, verb, resource, where in table:
        resource = resource.format(keys=keys)
        # can-i takes a subresource as a flag: `patch tenants.switchboard.dev --subresource=status`.
        kind, _, rest = resource.partition("/")
        name_or_sub = ["--subresource", rest] if rest in ("status", "finalizers") else []
        target = kind if name_or_sub else resource
        scope = {"ns": ["-n", release.namespace], "other": ["-n", "kube-system"], "cluster": ["--all-namespaces"]}[where]
        result = kubectl.run("auth", "can-i", verb, target, *name_or_sub, *scope, f"--as={user}", check=False)
        answer = result.stdout.strip()
        if answer not in ("yes", "no"):
            raise AssertionError(f"kubectl auth can-i {verb} {resource}: {result.stdout} {result.stderr}")
        if (answer == "yes") != expected:
            wrong.append(f"{'can' if answer == 'yes' else 'cannot'} {verb} {resource} in {where}")
    return wrong


def test_operator_has_least_privilege(kubectl: Kubectl, release: Release) -> None:
    wrong = wrong_answers(kubectl, release, release.operator_sa, OPERATOR_CAN)
    assert not wrong, "operator ServiceAccount:\n  " + "\n  ".join(wrong)


def test_gateway_reads_only_the_provider_keys_secret(kubectl: Kubectl, release: Release) -> None:
    wrong = wrong_answers(kubectl, release, release.gateway_sa, GATEWAY_CAN)
    assert not wrong, "gateway ServiceAccount:\n  " + "\n  ".join(wrong)
    # The gateway's own request shape: a watch list narrowed by a metadata.name field selector is
    # authorized against resourceNames; the same list without it is Forbidden.
    user = f"--as=system:serviceaccount:{release.namespace}:{release.gateway_sa}"
    keys = provider_keys_secret(release)
    kubectl("get", "secrets", "-n", release.namespace, "--field-selector", f"metadata.name={keys}", user)
    refused = kubectl.run("get", "secrets", "-n", release.namespace, user, check=False)
    assert refused.returncode != 0 and "forbidden" in refused.stderr.lower(), refused.stderr


def rbac_kinds(kubectl: Kubectl, helm: str, *values: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for obj in kubectl.to_json(helm_template(helm, "sb", "sb", ["templates/operator/rbac.yaml"], *values)):
        out.setdefault(obj["kind"], []).append(obj)
    return out


def test_cluster_wide_is_opt_in_with_the_same_rules(kubectl: Kubectl, helm: str) -> None:
    default = rbac_kinds(kubectl, helm)
    assert sorted(default) == ["Role", "RoleBinding"], sorted(default)
    assert default["Role"][0]["metadata"]["namespace"] == "sb"
    wide = rbac_kinds(kubectl, helm, "--set", "operator.rbac.clusterWide=true")
    assert sorted(wide) == ["ClusterRole", "ClusterRoleBinding"], sorted(wide)
    assert wide["ClusterRole"][0]["rules"] == default["Role"][0]["rules"]
    for rule in default["Role"][0]["rules"]:
        assert "namespaces" not in rule["resources"], rule


@pytest.fixture(scope="module")
def running(
    kubectl: Kubectl, release: Release, sa_kubeconfigs: dict[str, Path], start_operator, start_gateway  # noqa: ANN001
) -> tuple[Operator, Gateway]:
    namespace = release.namespace
    kubectl("apply", "-n", namespace, "-f", str(SAMPLES))
    operator = start_operator(
        namespace, identity="chart-operator-0", kubeconfig=sa_kubeconfigs["operator"], args=release.operator_args
    )
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/demo", timeout=90)
    gateway = start_gateway(namespace, kubeconfig=sa_kubeconfigs["gateway"], args=release.gateway_args)
    return operator, gateway


def forbidden_lines(text: str) -> list[str]:
    """Kubernetes API authorization failures, as client errors print them."""
    pattern = r"forbidden|system:serviceaccount:\S+ cannot|Unauthorized"
    return [line for line in text.splitlines() if re.search(pattern, line, re.I)]


def test_operator_converges_under_chart_rbac(kubectl: Kubectl, release: Release, running: tuple[Operator, Gateway]) -> None:
    operator, _ = running
    namespace = release.namespace
    for resource in SAMPLE_RESOURCES:
        kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", resource, timeout=90)
    objects = [kubectl.get(namespace, r) for r in SAMPLE_RESOURCES]
    assert all(is_ready(o) for o in objects), summary(objects)

    cm = kubectl.get(namespace, f"configmap/{release.configmap}")
    config = published_config(kubectl, namespace, release.configmap)
    assert cm["metadata"]["annotations"][VERSION_ANNOTATION] == config["version"]
    assert set(config["tenants"]) == {"demo"} and {"demo-echo", "local-model"} <= set(config["routes"])
    assert DEMO_KEY not in json.dumps(kubectl.items(namespace, "configmaps", f"switchboard.dev/config={release.configmap}"))

    # NetworkPolicies select the chart's gateway pods (the chart's --gateway-selector).
    selector = dict(pair.split("=", 1) for pair in flag(release.operator_args, "--gateway-selector").split(","))
    policies = {p["metadata"]["name"]: p for p in kubectl.items(namespace, "networkpolicies", MANAGED_BY)}
    assert set(policies) == {"switchboard-tenant-demo", "switchboard-gateway-deny-ingress", "switchboard-gateway-egress"}, set(policies)
    for policy in policies.values():
        assert policy["spec"]["podSelector"]["matchLabels"] == selector, policy["spec"]["podSelector"]

    lease = kubectl.get(namespace, f"lease/{OPERATOR_LEASE}")
    assert lease["spec"]["holderIdentity"] == operator.identity, lease["spec"]
    # Events could be written (a missing RBAC rule there is only a log line in the operator).
    def published() -> set[str]:
        events = kubectl.items(namespace, "events.v1.events.k8s.io")
        return {e["regarding"]["name"] for e in events if e.get("reason") == "Published"}

    wanted = {"demo", "ada", "demo-echo", "local-model", "demo-monthly"}
    wait_until(lambda: published() >= wanted, CONVERGE_TIMEOUT, f"Published Events about {sorted(wanted)}")
    assert 'switchboard_operator_leader 1' in operator.metrics()


def test_secret_reference_and_tenant_lifecycle_under_chart_rbac(
    kubectl: Kubectl, release: Release, running: tuple[Operator, Gateway]
) -> None:
    _, gateway = running
    namespace = release.namespace
    key = "sk-e2e-rbac-team-2b7d"
    kubectl.apply(namespace, tenant("rbac-team", "rbac-team-key", namespaces=["rbac-apps"]))

    def resolved_refs() -> dict[str, Any] | None:
        obj = kubectl.get(namespace, "tenant/rbac-team")
        for c in (obj.get("status") or {}).get("conditions", []):
            if c["type"] == "ResolvedRefs" and c["status"] == "False" and c["reason"] == "SecretNotFound":
                return obj
        return None

    wait_until(resolved_refs, CONVERGE_TIMEOUT, "ResolvedRefs=False SecretNotFound")
    kubectl.apply(namespace, secret("rbac-team-key", key))
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "--timeout=60s", "tenant/rbac-team", timeout=90)
    assert kubectl.get(namespace, "tenant/rbac-team")["metadata"]["finalizers"] == [FINALIZER]
    wait_until(
        lambda: kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-rbac-team"),
        CONVERGE_TIMEOUT,
        "the tenant's NetworkPolicy",
    )

    # The gateway (under its own Role) picks the key up, and drops it when the Tenant goes.
    def works() -> bool:
        try:
            gateway.client(key).models.list()
            return True
        except openai.AuthenticationError:
            return False

    wait_until(works, CONVERGE_TIMEOUT, "the new key to work")
    kubectl("delete", "-n", namespace, "tenant/rbac-team", "--wait=false")
    wait_until(lambda: not works(), CONVERGE_TIMEOUT, "the key to be revoked")
    wait_until(
        lambda: kubectl.get_or_none(namespace, "tenant", "rbac-team") is None,
        CONVERGE_TIMEOUT,
        "the Tenant to be gone (finalizer removed by the operator)",
    )
    assert kubectl.get_or_none(namespace, "networkpolicy", "switchboard-tenant-rbac-team") is None


def test_gateway_serves_and_writes_status_under_chart_rbac(
    kubectl: Kubectl, release: Release, running: tuple[Operator, Gateway]
) -> None:
    _, gateway = running
    namespace = release.namespace
    completion = gateway.client(DEMO_KEY).chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "under the chart's Role"}]
    )
    assert "under the chart's Role" in completion.choices[0].message.content
    # The gateway's status writer may patch Budget status (budgets/status in the chart's Role).
    wait_until(
        lambda: Decimal((kubectl.get(namespace, "budget/demo-monthly").get("status") or {}).get("spentUsd") or "0") > 0,
        CONVERGE_TIMEOUT,
        "Budget spend written by the gateway",
        describe=lambda: json.dumps(kubectl.get(namespace, "budget/demo-monthly").get("status")),
    )


def test_a_pod_calls_with_its_service_account_token(
    kubectl: Kubectl, release: Release, running: tuple[Operator, Gateway]
) -> None:
    """A workload needs no API key: its ServiceAccount token, minted by this API server for the
    audience the chart sets, is checked with the cluster's own keys (OIDC discovery, read under the
    chart's RBAC) and identifies the Tenant that lists its namespace. A namespace no Tenant lists, and
    a token for another audience, are refused with the reason."""
    _, gateway = running
    apps, elsewhere = f"{release.name}-apps", f"{release.name}-elsewhere"
    for namespace in (apps, elsewhere):
        kubectl("create", "namespace", namespace)
        kubectl("create", "serviceaccount", "runner", "-n", namespace)
    workloads = {
        "apiVersion": API_VERSION,
        "kind": "Tenant",
        "metadata": {"name": "workloads"},
        "spec": {"displayName": "Batch jobs", "namespaces": [apps]},
    }
    kubectl.apply(release.namespace, workloads)
    kubectl("wait", "-n", release.namespace, "--for=condition=Ready", "--timeout=60s", "tenant/workloads", timeout=90)

    def token(namespace: str, audience: str = "switchboard") -> str:
        return kubectl("create", "token", "runner", "-n", namespace, "--audience", audience, "--duration", "10m").strip()

    runner = gateway.client(token(apps))
    # The Tenant reaches the gateway through the operator's ConfigMap within seconds.
    wait_until(lambda: runner.models.list().data, CONVERGE_TIMEOUT, "the ServiceAccount token to be accepted")
    completion = runner.chat.completions.create(
        model="demo-echo", messages=[{"role": "user", "content": "from a pod, no key"}]
    )
    assert "from a pod, no key" in completion.choices[0].message.content
    status, body = http_get_with_token(f"http://127.0.0.1:{gateway.port}/v1/usage/tenant", token(apps))
    assert status == 200 and json.loads(body)["name"] == "workloads", body

    with pytest.raises(openai.AuthenticationError) as refused:
        gateway.client(token(elsewhere)).models.list()
    assert elsewhere in refused.value.message and "not one of" in refused.value.message, refused.value.message
    with pytest.raises(openai.AuthenticationError) as refused:
        gateway.client(token(apps, audience="another-api")).models.list()
    assert "audience" in refused.value.message, refused.value.message


def http_get_with_token(url: str, token: str) -> tuple[int, str]:
    request = urllib.request.Request(url, headers={"authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_no_permission_errors_in_logs(running: tuple[Operator, Gateway]) -> None:
    """Some writes (Events, status) only log their failure; a Forbidden anywhere is a missing rule."""
    for process in (running[0].process, running[1].process):
        lines = forbidden_lines(process.log())
        assert not lines, f"{process.name}:\n" + "\n".join(lines[:20])
