"""Creating (and deleting) many objects fast: concurrent POSTs straight to the API server, or
parallel `kubectl apply --server-side` of large List files."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from kube import Kube, collection

# Answers worth retrying (throttled, apiserver/etcd busy), with a growing pause.
RETRY = {429, 500, 502, 503, 504}
ATTEMPTS = 6


@dataclass
class Result:
    ok: int = 0
    seconds: float = 0.0
    retries: int = 0
    failures: Counter = field(default_factory=Counter)
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def _pool(items: list, worker, concurrency: int, result: Result) -> None:
    lock = threading.Lock()
    it = iter(items)

    def loop() -> None:
        while True:
            with lock:
                item = next(it, None)
            if item is None:
                return
            worker(item)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(max(1, min(concurrency, len(items))))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _send(kube: Kube, method: str, path: str, body: bytes | None, ok: set[int], result: Result, lock: threading.Lock):
    for attempt in range(ATTEMPTS):
        try:
            status, data = kube.request(method, path, body)
        except OSError as error:
            status, data = 0, str(error).encode()
        if status in ok:
            with lock:
                result.ok += 1
            return
        if status in RETRY or status == 0:
            with lock:
                result.retries += 1
            time.sleep(0.05 * 2**attempt)
            continue
        break
    with lock:
        result.failures[status] += 1
        if not result.first_error:
            result.first_error = f"{method} {path}: HTTP {status}: {data[:300].decode(errors='replace')}"


def create_http(kube: Kube, namespace: str, kind: str, bodies: list[tuple[str, bytes]], concurrency: int) -> Result:
    """POSTs every body to the collection, `concurrency` at a time. 409 (already exists, e.g. after
    a retried timeout) counts as created."""
    result, lock, path = Result(), threading.Lock(), collection(namespace, kind)
    started = time.monotonic()
    _pool(bodies, lambda nb: _send(kube, "POST", path, nb[1], {201, 409}, result, lock), concurrency, result)
    result.seconds = time.monotonic() - started
    return result


def delete_http(kube: Kube, namespace: str, kind: str, names: list[str], concurrency: int) -> Result:
    result, lock, path = Result(), threading.Lock(), collection(namespace, kind)
    started = time.monotonic()
    _pool(names, lambda n: _send(kube, "DELETE", f"{path}/{n}", None, {200, 202, 404}, result, lock), concurrency, result)
    result.seconds = time.monotonic() - started
    return result


def create_kubectl(
    kubectl: Path, kubeconfig: Path, namespace: str, bodies: list[tuple[str, bytes]], parallel: int, work: Path
) -> Result:
    """Splits the objects into `parallel` List files and runs one `kubectl apply --server-side` per
    file, all at once."""
    result = Result()
    parts = max(1, min(parallel, len(bodies)))
    files = []
    for n in range(parts):
        chunk = bodies[n::parts]
        path = work / f"apply-{namespace}-{n}.json"
        items = b",".join(body for _, body in chunk)
        path.write_bytes(b'{"apiVersion":"v1","kind":"List","items":[' + items + b"]}")
        files.append((path, len(chunk)))
    started = time.monotonic()
    procs = [
        (subprocess.Popen(
            [str(kubectl), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "--field-manager=scale-bench",
             "-n", namespace, "-f", str(path)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        ), count)
        for path, count in files
    ]
    for proc, count in procs:
        _, err = proc.communicate(timeout=1800)
        if proc.returncode == 0:
            result.ok += count
        else:
            result.failures[f"kubectl exit {proc.returncode}"] += count
            result.first_error = result.first_error or err.strip()[:300]
    result.seconds = time.monotonic() - started
    for path, _ in files:
        path.unlink(missing_ok=True)
    return result


def compare(
    kube: Kube, kubectl: Path, kubeconfig: Path, count: int, concurrency: int, parallel: int, work: Path
) -> dict[str, Result]:
    """Creates `count` Secrets-and-Tenants (3:1, the benchmark's mix) both ways, each into its own
    fresh namespace that no operator watches; returns objects per second by method."""
    from objects import secret, tenant  # noqa: PLC0415

    tenants = max(1, count // 4)
    results = {}
    for method in ("http", "kubectl"):
        namespace = f"scale-compare-{method}-{int(time.time())}"
        kube.json("POST", "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        secrets_ = [(f"c{i}-k{j}", json.dumps(secret(f"c{i}-k{j}", f"sk-compare-{i}-{j}")).encode())
                    for i in range(tenants) for j in range(3)]
        tenants_ = [(f"c{i}", json.dumps(tenant(f"c{i}", [f"c{i}-k{j}" for j in range(3)], 1, i)).encode())
                    for i in range(tenants)]
        total = Result()
        for kind, bodies in (("secrets", secrets_), ("tenants", tenants_)):
            if method == "http":
                part = create_http(kube, namespace, kind, bodies, concurrency)
            else:
                part = create_kubectl(kubectl, kubeconfig, namespace, bodies, parallel, work)
            total.ok += part.ok
            total.seconds += part.seconds
            total.retries += part.retries
            total.failures.update(part.failures)
            total.first_error = total.first_error or part.first_error
        results[method] = total
    return results
