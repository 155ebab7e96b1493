"""A steady light load on the gateway (chat completions from a few client processes) and key checks.

Each client is its own process (no GIL shared with the watches), with one keep-alive connection,
sending one request every `interval` seconds (or back to back when slower), recording the wall
time it started, its latency and its HTTP status.
"""

from __future__ import annotations

import http.client
import json
import multiprocessing as mp
import threading
import time

Sample = tuple[float, float, int]  # start (wall clock, s), latency (s), HTTP status (0: no answer)


def _client(port: int, key: str, model: str, interval: float, stop, out) -> None:  # noqa: ANN001
    body = json.dumps({"model": model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 16}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples: list[Sample] = []
    next_at = time.monotonic()
    while not stop.is_set():
        started, t0 = time.time(), time.perf_counter()
        try:
            conn.request("POST", "/v1/chat/completions", body, headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (http.client.HTTPException, OSError):
            status = 0
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        samples.append((started, time.perf_counter() - t0, status))
        next_at += interval
        pause = next_at - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            next_at = time.monotonic()
    out.put(samples)


class Load:
    def __init__(self, port: int, key: str, model: str, clients: int, interval: float):
        ctx = mp.get_context("spawn")
        self.stop_event = ctx.Event()
        self.out = ctx.Queue()
        self.procs = [
            ctx.Process(target=_client, args=(port, key, model, interval, self.stop_event, self.out), daemon=True)
            for _ in range(clients)
        ]
        self.samples: list[Sample] = []

    def start(self) -> "Load":
        for p in self.procs:
            p.start()
        return self

    def stop(self, timeout: float = 60.0) -> list[Sample]:
        self.stop_event.set()
        deadline = time.monotonic() + timeout
        for p in self.procs:
            if p.pid is None:
                continue
            try:
                self.samples.extend(self.out.get(timeout=max(0.1, deadline - time.monotonic())))
            except Exception:  # noqa: BLE001 - a client that did not answer is stopped below
                pass
        for p in self.procs:
            if p.pid is not None:
                p.join(max(0.1, deadline - time.monotonic()))
                if p.is_alive():
                    p.kill()
                    p.join(5)
        self.samples.sort()
        return self.samples


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def models_status(port: int, key: str, conn_holder: threading.local | None = None) -> int:
    """HTTP status of GET /v1/models with `key` (0 when the gateway did not answer)."""
    holder = conn_holder if conn_holder is not None else threading.local()
    for _ in range(2):
        conn = getattr(holder, "conn", None) or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        holder.conn = conn
        try:
            conn.request("GET", "/v1/models", headers={"Authorization": f"Bearer {key}"})
            response = conn.getresponse()
            response.read()
            return response.status
        except (http.client.HTTPException, OSError):
            conn.close()
            holder.conn = None
    return 0
