"""Helpers for the end-to-end tests: the control plane, kubectl, local processes, bounded waits.

The control plane is `e2e/controlplane.sh` (etcd + kube-apiserver on loopback). The operator and the
gateway run as local processes with a kubeconfig. Nothing here sleeps as synchronisation: every wait
polls a condition until a deadline and fails with the last thing it saw.

Every process started here is recorded as `DIR/pids/<name>.<pid>` (the PID and the binary's path) so
that `scripts/e2e.sh` can stop it by PID even if pytest itself is killed.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

ROOT = Path(__file__).resolve().parents[2]
CONTROLPLANE = ROOT / "e2e" / "controlplane.sh"
CRDS = ROOT / "charts" / "switchboard" / "templates" / "crds"
CHART = ROOT / "charts" / "switchboard"
SAMPLES = ROOT / "config" / "samples"
# The Kubernetes version of the e2e control plane (e2e/controlplane/go.mod), for `helm template`.
KUBE_VERSION = "1.35.4"
TARGET_DIR = Path(os.environ.get("CARGO_TARGET_DIR") or Path.home() / ".cache" / "switchboard" / "target")
PROFILE = os.environ.get("SWITCHBOARD_TEST_PROFILE", "debug")

GROUP = "switchboard.dev"
API_VERSION = f"{GROUP}/v1alpha1"
KINDS = ("tenants", "personas", "providerroutes", "budgets")
DEMO_KEY = "sk-switchboard-demo"
CONFIGMAP = "switchboard-gateway-config"
VERSION_ANNOTATION = "switchboard.dev/config-version"
MANAGED_BY = "app.kubernetes.io/managed-by=switchboard-operator"
FINALIZER = "switchboard.dev/revoke-access"
OPERATOR_LEASE = "switchboard-operator"

# Bounds of the waits (seconds). Generous for a loaded 2-core machine; a healthy run is far quicker.
KUBECTL_TIMEOUT = 60.0
CONVERGE_TIMEOUT = 60.0
READY_TIMEOUT = 60.0
STOP_TIMEOUT = 20.0
# How long the operator's Lease lasts without renewal (controller.rs: duration 15 s, grace 5 s).
LEASE_TAKEOVER_TIMEOUT = 60.0

T = TypeVar("T")

# Timings printed at the end of the run (conftest.py), e.g. how long a new key took to work.
TIMINGS: list[tuple[str, str]] = []


def report_timing(what: str, seconds: float) -> None:
    report(what, f"{seconds:.2f}s")


def report(what: str, value: str) -> None:
    TIMINGS.append((what, value))
    print(f"report: {what}: {value}")


class WaitTimeout(AssertionError):
    pass


class Fatal(AssertionError):
    """Raised by a wait_until check when waiting longer cannot help (e.g. the process died)."""


def wait_until(
    check: Callable[[], T], timeout: float, what: str, interval: float = 0.1, describe: Callable[[], str] | None = None
) -> T:
    """Calls `check` until it returns something truthy (returned) or `timeout` passes (AssertionError).

    Exceptions from `check` count as "not yet" (kept as the last observation), so a check may assert.
    """
    deadline = time.monotonic() + timeout
    last: object = "never checked"
    while True:
        try:
            value = check()
            if value:
                return value
            last = value
        except Fatal:
            raise
        except Exception as error:  # noqa: BLE001 - any failure is "not yet"; reported on timeout
            last = f"{type(error).__name__}: {error}"
        if time.monotonic() >= deadline:
            extra = f"\n{describe()}" if describe else ""
            raise WaitTimeout(f"timed out after {timeout:.0f}s waiting for {what}; last: {last}{extra}")
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def binary(name: str) -> Path:
    path = TARGET_DIR / PROFILE / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} does not exist: run `make e2e` (it builds the binaries) or `cargo build --workspace --bins`"
        )
    return path


def http_get(url: str, timeout: float = 2.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(errors="replace")


def b64decode(text: str) -> str:
    return base64.b64decode(text).decode(errors="replace")


# ---------------------------------------------------------------------------------------------------
# control plane and kubectl


class KubectlError(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess[str]):
        self.result = result
        self.stderr = result.stderr
        super().__init__(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")


@dataclass
class Cluster:
    """A running control plane: its directory (from `controlplane.sh start DIR`) and its binaries."""

    dir: Path
    bin_dir: Path

    @property
    def kubeconfig(self) -> Path:
        return self.dir / "kubeconfig"

    @property
    def pid_dir(self) -> Path:
        path = self.dir / "pids"
        path.mkdir(exist_ok=True)
        return path

    def kubectl(self, kubeconfig: Path | None = None) -> "Kubectl":
        return Kubectl(self.bin_dir / "kubectl", kubeconfig or self.kubeconfig)

    def serviceaccount_kubeconfig(self, namespace: str, name: str, out: Path) -> Path:
        """A kubeconfig authenticating as the ServiceAccount (a TokenRequest token), via controlplane.sh."""
        run([str(CONTROLPLANE), "kubeconfig-sa", str(self.dir), namespace, name, str(out)], timeout=KUBECTL_TIMEOUT)
        return out


def run(argv: list[str], timeout: float, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


class Kubectl:
    """The real kubectl, as users run it, with one kubeconfig."""

    def __init__(self, path: Path, kubeconfig: Path):
        self.path = path
        self.kubeconfig = kubeconfig

    def run(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = KUBECTL_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        argv = [str(self.path), "--kubeconfig", str(self.kubeconfig), *args]
        result = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise KubectlError(list(args), result)
        return result

    def __call__(self, *args: str, input: str | None = None, timeout: float = KUBECTL_TIMEOUT) -> str:
        return self.run(*args, input=input, timeout=timeout).stdout

    def apply(self, namespace: str, *objects: dict[str, Any]) -> str:
        return self("apply", "-n", namespace, "-f", "-", input=as_list(objects))

    def create(self, namespace: str, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        """`kubectl create` of one object, returning the result whatever it is (tests of rejections
        look at stderr). One object, not a List: kubectl validates a List on the client side, and
        these tests are about what the API server says."""
        return self.run("create", "-n", namespace, "-f", "-", input=json.dumps(obj), check=False)

    def get(self, namespace: str | None, what: str, *names: str) -> dict[str, Any]:
        ns = ["-n", namespace] if namespace else []
        return json.loads(self("get", *ns, what, *names, "-o", "json"))

    def get_or_none(self, namespace: str, what: str, name: str) -> dict[str, Any] | None:
        result = self.run("get", "-n", namespace, what, name, "-o", "json", "--ignore-not-found", check=False)
        if result.returncode != 0:
            raise KubectlError(["get", what, name], result)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def items(self, namespace: str | None, what: str, selector: str | None = None) -> list[dict[str, Any]]:
        extra = ["-l", selector] if selector else []
        return self.get(namespace, what, *extra)["items"]

    def to_json(self, manifest_yaml: str) -> list[dict[str, Any]]:
        """Parses YAML manifests with kubectl itself (client-side dry run), so no YAML library is needed."""
        out = self("create", "--dry-run=client", "-o", "json", "-f", "-", input=manifest_yaml)
        # One JSON document per object, concatenated.
        decoder, objects, at = json.JSONDecoder(), [], 0
        while at < len(out.rstrip()):
            doc, end = decoder.raw_decode(out, at)
            objects.extend(doc["items"] if doc.get("kind") == "List" else [doc])
            at = end
            while at < len(out) and out[at].isspace():
                at += 1
        return objects


class Watch:
    """`kubectl get KIND -w --output-watch-events`, one "TYPE NAME" line per event, read with deadlines.

    The first events are ADDED for the objects that exist: wait for a known one before changing
    anything, then every later change is seen (a watch started without that could miss them).
    """

    def __init__(self, kubectl: Kubectl, namespace: str, what: str, pid_dir: Path, selector: str | None = None):
        argv = [str(kubectl.path), "--kubeconfig", str(kubectl.kubeconfig), "get", "-n", namespace, what, "-w"]
        argv += ["--output-watch-events", "-o", "jsonpath={.type} {.object.metadata.name}{\"\\n\"}"]
        if selector:
            argv += ["-l", selector]
        self.popen = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1)
        self.pid_file = pid_dir / f"kubectl-watch.{self.popen.pid}"
        self.pid_file.write_text(f"{self.popen.pid} {kubectl.path}\n")
        self.events: "queue.Queue[tuple[str, str] | None]" = queue.Queue()
        self.seen: list[tuple[str, str]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.popen.stdout
        for line in self.popen.stdout:
            parts = line.split()
            if len(parts) == 2:
                self.events.put((parts[0], parts[1]))
        self.events.put(None)

    def wait_for(self, match: Callable[[str, str], bool], timeout: float, what: str) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(f"no watch event {what} within {timeout:.0f}s; seen: {self.seen}")
            try:
                event = self.events.get(timeout=remaining)
            except queue.Empty:
                continue
            if event is None:
                stderr = self.popen.stderr.read() if self.popen.stderr else ""
                raise AssertionError(f"kubectl watch ended: {stderr}")
            self.seen.append(event)
            if match(*event):
                return event

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self.pid_file.unlink(missing_ok=True)


def as_list(objects: Iterable[dict[str, Any]]) -> str:
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)})


# ---------------------------------------------------------------------------------------------------
# manifests


def secret(name: str, value: str, key: str = "key") -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": {key: value}}


def tenant(
    name: str, secret_name: str, namespaces: list[str] | None = None, key: str = "key", display: str | None = None
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "displayName": display or f"Tenant {name}",
        "apiKeys": [{"name": "default", "secretRef": {"name": secret_name, "key": key}}],
    }
    if namespaces:
        spec["namespaces"] = namespaces
    return {"apiVersion": API_VERSION, "kind": "Tenant", "metadata": {"name": name}, "spec": spec}


def budget(name: str, tenant_name: str, limit_usd: str = "10") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "Budget",
        "metadata": {"name": name},
        "spec": {"scope": {"kind": "Tenant", "tenant": tenant_name}, "limitUsd": limit_usd, "period": "Monthly"},
    }


def published_config(kubectl: "Kubectl", namespace: str, name: str = CONFIGMAP) -> dict[str, Any]:
    """The config the operator published, as the gateway assembles it: the head ConfigMap `name`
    names its shards `<name>-<id>`; each shard's SHA-256 must start with its id."""
    head = json.loads(kubectl.get(namespace, f"configmap/{name}")["data"]["head.json"])
    config: dict[str, Any] = {"version": head["version"], "tenants": {}, "routes": {}, "personas": {}, "budgets": []}
    for shard_id in head["shards"]:
        text = kubectl.get(namespace, f"configmap/{name}-{shard_id}")["data"]["shard.json"]
        assert hashlib.sha256(text.encode()).hexdigest().startswith(shard_id), f"shard {shard_id} does not match its id"
        part = json.loads(text)
        for section in ("tenants", "routes", "personas"):
            duplicated = config[section].keys() & part.get(section, {}).keys()
            assert not duplicated, f"{section} {duplicated} in more than one shard"
            config[section].update(part.get(section, {}))
        config["budgets"].extend(part.get("budgets", []))
    config["budgets"].sort(key=lambda b: (b["namespace"], b["name"]))
    return config


def condition(obj: dict[str, Any] | None, type_: str) -> dict[str, Any] | None:
    if not obj:
        return None
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return c
    return None


def is_ready(obj: dict[str, Any] | None) -> bool:
    """Ready=True for the object's current generation."""
    ready = condition(obj, "Ready")
    return bool(
        obj
        and ready
        and ready["status"] == "True"
        and ready.get("observedGeneration") == obj["metadata"].get("generation")
    )


def summary(objs: Iterable[dict[str, Any]]) -> str:
    """One line per object: kind/name and its conditions, for failure messages."""
    lines = []
    for o in objs:
        conds = ", ".join(
            f"{c['type']}={c['status']}({c.get('reason')}, gen {c.get('observedGeneration')})"
            for c in (o.get("status") or {}).get("conditions") or []
        )
        lines.append(f"  {o['kind']}/{o['metadata']['name']} gen {o['metadata'].get('generation')}: {conds or '-'}")
    return "\n".join(lines)


def parse_tables(text: str) -> list[list[dict[str, str]]]:
    """Parses `kubectl get a,b,c` output: tables separated by blank lines, cells by the header's columns.

    kubectl left-aligns every column at the offset of its header, and empty cells are blank, so the
    cells are cut at the header words' offsets rather than split on whitespace.
    """
    tables = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line for line in block.splitlines() if line.strip()]
        if not lines:
            continue
        header = lines[0]
        starts = [m.start() for m in re.finditer(r"\S+", header)]
        names = header.split()
        rows = []
        for line in lines[1:]:
            cells = {}
            for i, name in enumerate(names):
                end = starts[i + 1] if i + 1 < len(starts) else None
                cells[name] = line[starts[i] : end].strip()
            rows.append(cells)
        tables.append([{"__header__": " ".join(names)}, *rows])
    return tables


# ---------------------------------------------------------------------------------------------------
# processes


class Process:
    """A process we started: output in a log file, PID recorded for scripts/e2e.sh, stopped by PID."""

    def __init__(self, name: str, argv: list[str], log_path: Path, pid_dir: Path, env: dict[str, str] | None = None):
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self._log = open(log_path, "ab")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "ANTHROPIC_"))}
        full_env.setdefault("RUST_LOG", "info")
        full_env.setdefault("NO_COLOR", "1")
        full_env.update(env or {})
        self._log.write(f"\n=== {' '.join(argv)}\n".encode())
        self._log.flush()
        self.popen = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=full_env
        )
        self.pid_file = pid_dir / f"{name}.{self.popen.pid}"
        self.pid_file.write_text(f"{self.popen.pid} {argv[0]}\n")

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log().splitlines()[-lines:]) or "(empty log)"

    def wait_http_ok(self, url: str, timeout: float = READY_TIMEOUT) -> None:
        def check() -> bool:
            if not self.alive():
                raise ProcessExited(f"{self.name} exited with {self.popen.returncode}")
            status, body = http_get(url, timeout=1.0)
            if status != 200:
                raise AssertionError(f"HTTP {status}: {body[:200]}")
            return True

        try:
            wait_until(check, timeout, f"{self.name} at {url}", interval=0.1)
        except WaitTimeout as error:
            raise WaitTimeout(f"{error}\n--- {self.name} log:\n{self.log_tail()}") from None

    def _finish(self) -> None:
        self._log.close()
        self.pid_file.unlink(missing_ok=True)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time (returns None then)."""
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        self._finish()
        return self.popen.returncode

    def kill(self) -> None:
        """SIGKILL: a crash, no cleanup in the process."""
        if self.alive():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(10)
        self._finish()


class ProcessExited(Fatal):
    pass


def start_listening(
    name: str,
    make_argv: Callable[[int], list[str]],
    ready_path: str,
    log_path: Path,
    pid_dir: Path,
    env: dict[str, str] | None = None,
    timeout: float = READY_TIMEOUT,
) -> tuple[Process, int]:
    """Starts a server on a free loopback port and waits until `ready_path` answers 200.

    A free port can be taken between probing and binding, so a start that fails is retried with a
    new port (twice at most).
    """
    for attempt in range(3):
        port = free_port()
        process = Process(name, make_argv(port), log_path, pid_dir, env)
        try:
            process.wait_http_ok(f"http://127.0.0.1:{port}{ready_path}", timeout=timeout)
            return process, port
        except (ProcessExited, WaitTimeout) as error:
            in_use = "in use" in process.log_tail().lower()
            process.kill()
            if not in_use or attempt == 2:
                raise AssertionError(f"{name} did not start: {error}\n--- log:\n{process.log_tail()}") from None
    raise AssertionError("unreachable")


@dataclass
class Operator:
    process: Process
    metrics_port: int
    namespace: str
    identity: str

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")[1]


@dataclass
class Gateway:
    process: Process
    port: int
    namespace: str
    # The admin listener's port, when the test asked for it (start_gateway(admin=True)).
    admin_port: int | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def client(self, key: str):  # -> openai.OpenAI
        import openai

        # No retries: a failure must show as itself, not be hidden by the SDK's retry loop.
        return openai.OpenAI(base_url=self.base_url, api_key=key, max_retries=0, timeout=30.0)

    def key_works(self, key: str) -> bool:
        """True if a chat completion on the samples' demo-echo with `key` succeeds; False on 401;
        anything else raises."""
        import openai

        try:
            self.client(key).chat.completions.create(
                model="demo-echo", messages=[{"role": "user", "content": "ping"}], max_tokens=8
            )
            return True
        except openai.AuthenticationError:
            return False


def helm_template(helm: str, release: str, namespace: str, templates: list[str], *values: str) -> str:
    """The chart's `templates`, rendered as `helm install` would with `values` (`--set a=b`, ...)."""
    for template in templates:
        assert (CHART / template).is_file(), f"the chart has no {template}"
    argv = [helm, "template", release, str(CHART), "--namespace", namespace, "--kube-version", KUBE_VERSION, *values]
    for template in templates:
        argv += ["--show-only", template]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, f"{' '.join(argv)}:\n{result.stderr}"
    return result.stdout
