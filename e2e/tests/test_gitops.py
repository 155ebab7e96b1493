"""GitOps without drift: files applied twice change nothing, with client-side apply, server-side apply
and a second field manager (Argo CD's), and Argo CD's own diff (gitops-engine, e2e/gitops-diff) finds
nothing between the files and the live objects; every enum value documented in docs/resources.md is
accepted by the apiserver. No operator runs here: this is about the CRDs."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest

from e2e_harness import KUBECTL_TIMEOUT, ROOT, SAMPLES, Kubectl, run

REFERENCE = ROOT / "docs" / "resources.md"
GITOPS_DIFF_BUILD = ROOT / "e2e" / "gitops-diff" / "build.sh"
# The manager Argo CD applies as with ServerSideApply=true.
ARGOCD_MANAGER = "argocd-controller"

# Every file of config/samples, the Secret included (written with `data`: `stringData` is write-only,
# the apiserver moves it into `data`, so a Secret written that way is never a no-op).
SAMPLE_FILES = sorted(SAMPLES.glob("*.yaml"))


def files_args() -> list[str]:
    return [arg for path in SAMPLE_FILES for arg in ("-f", str(path))]


def fresh_namespace(kubectl: Kubectl, stem: str) -> str:
    name = f"gitops-{stem}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    return name


def resource_versions(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    live = json.loads(kubectl("get", "-n", namespace, *files_args(), "-o", "json"))
    return {f"{o['kind']}/{o['metadata']['name']}": o["metadata"]["resourceVersion"] for o in live["items"]}


def objects_in(output: str) -> dict[str, str]:
    """`kind.group/name verb` lines of `kubectl apply` -> {kind.group/name: verb}."""
    lines = [line.split() for line in output.splitlines() if line.strip()]
    return {words[0]: " ".join(words[1:]) for words in lines}


# ---------------------------------------------------------------------------------------------------
# every documented enum value


def documented_enums() -> list[tuple[str, str, str]]:
    """(kind, field path, value) for every `one of` in docs/resources.md, spec fields only."""
    found, kind = [], None
    for line in REFERENCE.read_text().splitlines():
        if line.startswith("## "):
            kind = line[3:].strip()
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if kind is None or len(cells) < 4 or not cells[0].startswith("`spec."):
            continue
        path = cells[0].split("`")[1]
        rules = cells[-1]
        match = re.search(r"one of ((?:`[^`]*`(?:, )?)+)", rules)
        if match:
            for value in re.findall(r"`([^`]*)`", match.group(1)):
                found.append((kind, path, value))
    return found


# Objects an enum value needs besides the field itself: the CRDs' own rules demand them.
COMPANIONS: dict[tuple[str, str], dict[str, Any]] = {
    ("spec.scope.kind", "Persona"): {"spec.scope.persona": "ada"},
    ("spec.scope.kind", "ApiKey"): {"spec.scope.apiKey": "default"},
    ("spec.memory.sharing.scope", "Personas"): {"spec.memory.sharing.personas": ["ada"]},
}
# Required fields of an object that the base sample lacks, when the enum sits inside it.
PARENTS: dict[str, dict[str, Any]] = {"spec.defaultBudget": {"limitUsd": "10", "period": "Monthly"}}
BASES = {
    "Tenant": "tenant-demo.yaml",
    "Persona": "persona-ada.yaml",
    "ProviderRoute": "route-local-model.yaml",
    "Budget": "budget-demo.yaml",
}


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    node: Any = obj
    parts = path.split(".")
    for depth, part in enumerate(parts[:-1]):
        key, is_list = part.removesuffix("[]"), part.endswith("[]")
        if key not in node:
            prefix = ".".join(parts[: depth + 1])
            node[key] = copy.deepcopy(PARENTS.get(prefix, {}))
        node = node[key][0] if is_list else node[key]
    node[parts[-1]] = value


def get_path(obj: dict[str, Any], path: str) -> Any:
    node: Any = obj
    for part in path.split("."):
        key = part.removesuffix("[]")
        node = node[key][0] if part.endswith("[]") else node[key]
    return node


def test_every_documented_enum_value_is_accepted(kubectl: Kubectl, crds: list[str]) -> None:
    enums = documented_enums()
    fields = {(kind, path) for kind, path, _ in enums}
    # The parser found the enums it must (a change of the table's layout must not pass silently).
    for expected in [("Persona", "spec.memory.extraction"), ("ProviderRoute", "spec.backends[].provider"), ("Budget", "spec.period")]:
        assert expected in fields, f"{expected} not found in {REFERENCE}: {sorted(fields)}"
    assert len(enums) >= 20, enums
    namespace = fresh_namespace(kubectl, "enums")
    bases = {kind: kubectl.to_json((SAMPLES / file).read_text())[0] for kind, file in BASES.items()}
    refused = []
    for kind, path, value in enums:
        obj = copy.deepcopy(bases[kind])
        obj["metadata"] = {"name": re.sub(r"[^a-z0-9]+", "-", f"{path}-{value}".lower()).strip("-")[:63]}
        set_path(obj, path, value)
        for extra_path, extra in COMPANIONS.get((path, value), {}).items():
            set_path(obj, extra_path, extra)
        result = kubectl.run("create", "--dry-run=server", "-o", "json", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)
        if result.returncode != 0:
            refused.append(f"{kind} {path}={value}: {result.stderr.strip()}")
            continue
        stored = get_path(json.loads(result.stdout), path)
        if stored != value:
            refused.append(f"{kind} {path}={value}: the apiserver kept {stored!r}")
    assert not refused, "documented enum values the apiserver refuses:\n" + "\n".join(refused)


# ---------------------------------------------------------------------------------------------------
# applying twice


def test_client_side_apply_twice_says_unchanged(kubectl: Kubectl, crds: list[str], gitops_diff: Path) -> None:
    namespace = fresh_namespace(kubectl, "csa")
    first = objects_in(kubectl("apply", "-n", namespace, *files_args()))
    assert len(first) == len(SAMPLE_FILES) and all(verb == "created" for verb in first.values()), first
    before = resource_versions(kubectl, namespace)
    second = objects_in(kubectl("apply", "-n", namespace, *files_args()))
    assert second == {name: "unchanged" for name in first}, second
    assert resource_versions(kubectl, namespace) == before
    # Argo CD's default diff (three-way, with kubectl's last-applied annotation) sees nothing either.
    diff = run_gitops_diff(gitops_diff, kubectl, namespace)
    assert diff.returncode == 0, diff.stdout + diff.stderr


def test_server_side_apply_twice_and_a_second_manager_change_nothing(kubectl: Kubectl, crds: list[str]) -> None:
    namespace = fresh_namespace(kubectl, "ssa")
    kubectl("apply", "--server-side", "-n", namespace, *files_args())
    before = resource_versions(kubectl, namespace)
    assert len(before) == len(SAMPLE_FILES), before
    # kubectl prints "serverside-applied" whatever happened: the resourceVersions tell.
    kubectl("apply", "--server-side", "-n", namespace, *files_args())
    assert resource_versions(kubectl, namespace) == before, "a second server-side apply wrote"

    # Argo CD with ServerSideApply=true: its own manager applies the identical files. No conflict;
    # it becomes co-owner (a managedFields write), and its next syncs write nothing at all.
    argocd = kubectl.run(
        "apply", "--server-side", f"--field-manager={ARGOCD_MANAGER}", "-n", namespace, *files_args(), check=False
    )
    assert argocd.returncode == 0, argocd.stderr
    live = json.loads(kubectl("get", "-n", namespace, *files_args(), "-o", "json", "--show-managed-fields"))["items"]
    for obj in live:
        # Secrets have no generation; their data is compared by the diff test.
        assert obj["metadata"].get("generation", 1) == 1, f"{obj['kind']}/{obj['metadata']['name']}: spec changed"
        managers = {entry["manager"] for entry in obj["metadata"]["managedFields"]}
        assert {"kubectl", ARGOCD_MANAGER} <= managers, managers
    co_owned = resource_versions(kubectl, namespace)
    kubectl("apply", "--server-side", f"--field-manager={ARGOCD_MANAGER}", "-n", namespace, *files_args())
    kubectl("apply", "--server-side", "-n", namespace, *files_args())
    assert resource_versions(kubectl, namespace) == co_owned, "re-syncs by either manager wrote"


# ---------------------------------------------------------------------------------------------------
# Argo CD's diff


def test_argocd_diff_of_files_and_live_objects_is_empty(kubectl: Kubectl, crds: list[str], gitops_diff: Path) -> None:
    """What Argo CD shows for objects applied server-side from the files: its diff for applications
    synced with ServerSideApply=true when ServerSideDiff is off (structured merge diff as its own
    manager), and its default diff. Both must be empty, and must see a real change."""
    namespace = fresh_namespace(kubectl, "diff")
    kubectl("apply", "--server-side", "-n", namespace, *files_args())
    for structured in (True, False):
        diff = run_gitops_diff(gitops_diff, kubectl, namespace, structured=structured)
        assert diff.returncode == 0, f"structured={structured}:\n{diff.stdout}{diff.stderr}"

    # A field the files set, changed by someone else: both diffs show it.
    kubectl(
        "patch", "-n", namespace, "providerroute/local-model", "--type=json",
        "-p", '[{"op": "replace", "path": "/spec/backends/0/requestTimeoutSeconds", "value": 99}]',
    )
    for structured in (True, False):
        diff = run_gitops_diff(gitops_diff, kubectl, namespace, structured=structured)
        assert diff.returncode == 1, diff.stdout + diff.stderr
        assert "ProviderRoute" in diff.stdout and "requestTimeoutSeconds: 99" in diff.stdout, diff.stdout
        assert "1 out of sync" in diff.stdout, diff.stdout


@pytest.fixture(scope="module")
def gitops_diff() -> Path:
    """The gitops-diff command: from scripts/e2e.sh (SWITCHBOARD_E2E_GITOPS_DIFF), else built (cached)."""
    given = os.environ.get("SWITCHBOARD_E2E_GITOPS_DIFF")
    if given:
        return Path(given)
    return Path(run([str(GITOPS_DIFF_BUILD)], timeout=900).stdout.strip())


def run_gitops_diff(
    tool: Path, kubectl: Kubectl, namespace: str, structured: bool = False
) -> subprocess.CompletedProcess[str]:
    live = kubectl("get", "-n", namespace, *files_args(), "-o", "json")
    argv = [str(tool), "-namespace", namespace, "-live", "-"]
    if structured:
        argv += ["-structured-merge", "-kubeconfig", str(kubectl.kubeconfig)]
    argv += [str(p) for p in SAMPLE_FILES]
    result = subprocess.run(argv, input=live, capture_output=True, text=True, timeout=KUBECTL_TIMEOUT)
    assert result.returncode in (0, 1), f"gitops-diff failed ({result.returncode}): {result.stderr}"
    return result
