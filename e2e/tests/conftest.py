"""Fixtures of the end-to-end tests: one control plane per session, a fresh namespace per module,
and the operator and gateway as local processes.

Run them with `make e2e` (scripts/e2e.sh builds everything, starts the control plane, runs pytest and
tears everything down). Running pytest directly also works once the binaries are built: without
SWITCHBOARD_E2E_DIR, the session starts (and stops) its own control plane.

Environment:
  SWITCHBOARD_E2E_DIR     a control plane already started with `e2e/controlplane.sh start DIR` (used,
                          not stopped); otherwise one is started in a temporary directory
  SWITCHBOARD_E2E_HELM    the helm binary for the chart RBAC test (default: the one scripts/chart-lint.sh
                          installs, ~/.cache/switchboard/tools/helm-*/helm, or helm on PATH)
  CARGO_TARGET_DIR        where the cargo binaries are (default ~/.cache/switchboard/target)
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Iterator

import pytest

from e2e_harness import (
    CONFIGMAP,
    CONTROLPLANE,
    CRDS,
    KINDS,
    Cluster,
    Gateway,
    Kubectl,
    Operator,
    TIMINGS,
    binary,
    free_port,
    run,
    start_listening,

)

def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    if TIMINGS:
        terminalreporter.section("e2e timings")
        for what, value in TIMINGS:
            terminalreporter.write_line(f"{what}: {value}")


@pytest.fixture(autouse=True, scope="session")
def _clean_sdk_environment() -> None:
    """Keeps the SDK from picking up a developer's real endpoints or keys."""
    for name in list(os.environ):
        if name.startswith(("OPENAI_", "ANTHROPIC_")):
            del os.environ[name]


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest) -> Iterator[Cluster]:
    bin_dir = Path(run([str(CONTROLPLANE), "bin"], timeout=10).stdout.strip())
    given = os.environ.get("SWITCHBOARD_E2E_DIR")
    if given:
        directory = Path(given)
        run([str(CONTROLPLANE), "status", str(directory)], timeout=30)
        yield Cluster(directory, bin_dir)
        return
    directory = Path(tempfile.mkdtemp(prefix="switchboard-e2e."))
    try:
        run([str(CONTROLPLANE), "start", str(directory)], timeout=300)
        yield Cluster(directory, bin_dir)
    finally:
        subprocess.run([str(CONTROLPLANE), "stop", str(directory)], timeout=60, check=False)
        if request.session.testsfailed:
            shutil.rmtree(directory / "etcd", ignore_errors=True)
            print(f"\ne2e: logs kept in {directory}")
        else:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def kubectl(cluster: Cluster) -> Kubectl:
    """kubectl as the cluster admin."""
    return cluster.kubectl()


@pytest.fixture(scope="session")
def crds(kubectl: Kubectl) -> list[str]:
    """Installs the chart's CRDs with `kubectl apply` and waits until they are Established."""
    kubectl("apply", "-f", str(CRDS))
    names = [f"crd/{kind}.switchboard.dev" for kind in KINDS]
    kubectl("wait", "--for=condition=Established", "--timeout=60s", *names, timeout=90)
    return names


@pytest.fixture(scope="module")
def namespace(kubectl: Kubectl, crds: list[str], request: pytest.FixtureRequest) -> str:
    """A fresh namespace per test module. Never deleted: without a namespace controller it would
    stay Terminating; the whole control plane goes away at the end of the session."""
    stem = request.module.__name__.removeprefix("test_").replace("_", "-")[:40]
    name = f"{stem}-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="module")
def logs(tmp_path_factory: pytest.TempPathFactory, cluster: Cluster, request: pytest.FixtureRequest) -> Path:
    """Where a module's process logs go: inside the control plane's directory, so they survive a failure."""
    path = cluster.dir / "logs" / request.module.__name__
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module")
def start_operator(cluster: Cluster, logs: Path) -> Iterator[Callable[..., Operator]]:
    """Factory: start_operator(namespace, identity=..., kubeconfig=..., args=[...], env={...}) -> a ready Operator.

    Ready means /readyz answers 200 (its watches synced). Every operator still running at the end of
    the module is stopped with SIGTERM.
    """
    path = binary("switchboard-operator")
    started: list[Operator] = []

    def start(
        namespace: str,
        identity: str | None = None,
        kubeconfig: Path | None = None,
        args: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> Operator:
        identity = identity or f"operator-{len(started)}"
        extra = args if args is not None else ["--configmap", CONFIGMAP]
        process, port = start_listening(
            f"operator-{identity}",
            lambda port: [
                str(path),
                "--namespace",
                namespace,
                *extra,
                "--metrics-listen",
                f"127.0.0.1:{port}",
                "--identity",
                identity,
            ],
            "/readyz",
            logs / f"operator-{identity}.log",
            cluster.pid_dir,
            env={"KUBECONFIG": str(kubeconfig or cluster.kubeconfig), **(env or {})},
        )
        operator = Operator(process, port, namespace, identity)
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.process.terminate()


@pytest.fixture(scope="module")
def start_gateway(cluster: Cluster, logs: Path) -> Iterator[Callable[..., Gateway]]:
    """Factory: start_gateway(namespace, kubeconfig=..., args=[...]) -> a Gateway whose /readyz is 200,
    i.e. it loaded the operator's ConfigMap. In-cluster mode: no --config-dir."""
    path = binary("switchboard-gateway")
    started: list[Gateway] = []

    def start(
        namespace: str, kubeconfig: Path | None = None, args: list[str] | None = None, admin: bool = False
    ) -> Gateway:
        index = len(started)
        extra = args if args is not None else ["--configmap", CONFIGMAP]
        admin_port = free_port() if admin else None
        database = logs / f"ledger-{index}.db"
        process, port = start_listening(
            f"gateway-{index}",
            lambda port: [
                str(path),
                "--namespace",
                namespace,
                *extra,
                "--listen",
                f"127.0.0.1:{port}",
                # The admin API, on a port of its own when the test uses it.
                "--admin-listen",
                f"127.0.0.1:{admin_port or 0}",
                "--database-url",
                f"sqlite://{database}?mode=rwc",
                # Status (Budget spend, Tenant usage) every second instead of every 10.
                "--status-interval-seconds",
                "1",
                "--identity",
                f"gateway-{index}",
            ],
            "/readyz",
            logs / f"gateway-{index}.log",
            cluster.pid_dir,
            env={"KUBECONFIG": str(kubeconfig or cluster.kubeconfig)},
        )
        gateway = Gateway(process, port, namespace, admin_port)
        started.append(gateway)
        return gateway

    yield start
    for gateway in started:
        gateway.process.terminate()


def find_helm() -> str | None:
    given = os.environ.get("SWITCHBOARD_E2E_HELM")
    if given:
        return given
    tools = Path(os.environ.get("SWITCHBOARD_TOOLS") or Path.home() / ".cache" / "switchboard" / "tools")
    candidates = sorted(tools.glob("helm-*/helm"), reverse=True)
    if candidates:
        return str(candidates[0])
    return shutil.which("helm")


@pytest.fixture(scope="session")
def helm() -> str:
    path = find_helm()
    if not path:
        pytest.fail(
            "helm not found: the chart RBAC test renders the chart's RBAC with `helm template`. "
            "Run `make chart-lint` once (it installs helm into ~/.cache/switchboard/tools) or set SWITCHBOARD_E2E_HELM.",
            pytrace=False,
        )
    return path
