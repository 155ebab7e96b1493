#!/usr/bin/env python3
"""The resilience suite: the gateway binary against fake-upstream's faults, measured from outside.

Each fault is driven through the gateway as a client would; for each, the suite records what the
client saw, the gateway's resident memory (peak while the fault ran and after it), whether a
ledger row was written, and whether a secret reached the reply or the log. Then a slowloris, a
graceful stop with streams that outlast it, and a kill -9 under load. Prints a Markdown table
(docs/reliability.md keeps one) and exits non-zero if a bound is broken: a secret anywhere, a
5xx missing, memory past its bound, a missing ledger row, a slowloris that stops normal traffic.

Standard library only. Usage: tests/resilience/run.py [--target-dir DIR] [--out FILE]
"""

import argparse
import glob
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

TEAM_KEY = "sk-resilience-team"
PROVIDER_KEY = "prov-resilience-0123456789abcdef"
ADMIN_TOKEN = "resilience-admin-token"
MIB = 1024 * 1024

CONFIG = """
apiVersion: v1
kind: Secret
metadata: {{name: team-key}}
stringData: {{key: {team_key}}}
---
apiVersion: v1
kind: Secret
metadata: {{name: provider-key}}
stringData: {{key: {provider_key}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: team}}
spec:
  apiKeys: [{{name: ci, secretRef: {{name: team-key, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {{name: team-cap}}
spec: {{scope: {{kind: Tenant, tenant: team}}, limitUsd: "1000", period: Monthly, enforcement: Hard}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: faulty}}
spec:
  models:
{models}
  backends:
    - {{name: faulty, provider: openai, baseUrl: "{upstream}/v1", apiKeySecretRef: {{name: provider-key, key: key}}}}
  retries: {{attempts: 0}}
---
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {{name: echo}}
spec:
  models: [{{name: demo-echo, pricing: {{inputPerMillion: "1", outputPerMillion: "2"}}}}]
  backends: [{{name: mock, provider: mock}}]
"""

# (fault, streamed, what the client must get: an HTTP status, or "error-event" for a stream that
# ends with an error event, or "200" for a served reply)
FAULTS = [
    ("leak-key-first", True, 502),
    ("leak-key-mid", True, "error-event"),
    ("leak-key-long", False, 401),
    ("usage-max", False, 200),
    ("usage-negative", True, 200),
    ("sse-no-blank", True, 502),
    ("long-line-50", True, 502),
    ("big-body-1024", False, 502),
    ("big-error-512", False, 502),
]

# Memory a fault may add to the gateway's resident set at its peak, and keep after it.
PEAK_BOUND = 160 * MIB
AFTER_BOUND = 48 * MIB


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Sampler:
    """The peak resident set of a process while a block runs, sampled every 5 ms."""

    def __init__(self, pid):
        self.pid, self.peak, self.running = pid, 0, False

    def __enter__(self):
        self.peak, self.running = rss(self.pid), True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self):
        while self.running:
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.005)

    def __exit__(self, *_):
        self.running = False
        self.thread.join()


def post(port, path, body, timeout=60, key=TEAM_KEY):
    """POSTs JSON; returns (status, body text). Reads a stream to its end."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, json.dumps(body),
                           {"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        connection.close()


def chat(model, stream):
    return {"model": model, "stream": stream, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def wait_ready(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit(f"{what} did not become ready")


class Gateway:
    def __init__(self, binary, config_dir, database, log_path, grace=30, database_url=None):
        self.port = free_port()
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(
            [binary, "--config-dir", config_dir, "--listen", f"127.0.0.1:{self.port}", "--admin-listen", "127.0.0.1:0",
             "--database-url", database_url or f"sqlite://{database}?mode=rwc", "--admin-token", ADMIN_TOKEN,
             "--log-format", "json", "--shutdown-grace-seconds", str(grace)],
            stdout=self.log, stderr=self.log, env={**os.environ, "RUST_LOG": "info"})
        wait_ready(self.port, self.proc, "the gateway")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=timeout)
        self.log.close()


def rows(database, model=None):
    with sqlite3.connect(database) as db:
        query = "SELECT model, status, error_code, output_tokens, cost_nanos FROM usage_ledger"
        args = ()
        if model:
            query, args = query + " WHERE model = ?", (model,)
        return db.execute(query, args).fetchall()


def run_faults(binary, work, upstream_port, out):
    config_dir = os.path.join(work, "config")
    database = os.path.join(work, "faults.db")
    log_path = os.path.join(work, "gateway.log")
    gateway = Gateway(binary, config_dir, database, log_path)
    failures = []
    try:
        post(gateway.port, "/v1/chat/completions", chat("demo-echo", False))  # warm up
        time.sleep(0.5)
        for fault, stream, expected in FAULTS:
            before = rss(gateway.proc.pid)
            with Sampler(gateway.proc.pid) as sampler:
                status, body = post(gateway.port, "/v1/chat/completions", chat(fault, stream))
            # Allocators hand freed memory back to the system lazily, on later allocations: the
            # figure that matters is after the next ordinary request.
            time.sleep(1)
            post(gateway.port, "/v1/chat/completions", chat("demo-echo", False))
            time.sleep(1)
            after = rss(gateway.proc.pid)
            sees = client_view(status, body)
            secret = PROVIDER_KEY[:12] in body
            ok = (expected == "error-event" and sees.startswith("200, error event")) or sees.startswith(str(expected))
            peak_growth, after_growth = sampler.peak - before, max(after - before, 0)
            if not ok:
                failures.append(f"{fault}: expected {expected}, got {sees}")
            if secret:
                failures.append(f"{fault}: the provider key reached the client")
            if peak_growth > PEAK_BOUND or after_growth > AFTER_BOUND:
                failures.append(f"{fault}: memory grew {peak_growth // MIB} MiB at peak, kept {after_growth // MIB} MiB")
            out.append((fault, "stream" if stream else "complete", sees, before, sampler.peak, after, secret))
    finally:
        gateway.stop()
    ledger = {model: (status, code) for model, status, code, _, _ in rows(database)}
    for fault, _, _ in FAULTS:
        if fault not in ledger:
            failures.append(f"{fault}: no ledger row")
    with open(log_path, "rb") as log:
        logged = log.read().decode("utf-8", "replace")
    if PROVIDER_KEY[:12] in logged or TEAM_KEY in logged:
        failures.append("a secret reached the gateway's log")
    return failures, ledger, logged.count(PROVIDER_KEY[:12]) + logged.count(TEAM_KEY)


def client_view(status, body):
    """What the client saw, in a few words."""
    if status == 200 and "data:" in body:
        frames = [line[6:] for line in body.splitlines() if line.startswith("data: ") and line != "data: [DONE]"]
        last = json.loads(frames[-1]) if frames else {}
        if "error" in last:
            return f"200, error event: {last['error'].get('code')}"
        return "200, stream completed"
    try:
        error = json.loads(body).get("error")
    except ValueError:
        return f"{status}, not JSON"
    if error:
        return f"{status} {error.get('code')}: {error.get('message', '')[:60]}"
    return f"{status}"


def slowloris(binary, work):
    """600 idle connections and 600 with half a header; then a normal request."""
    gateway = Gateway(binary, os.path.join(work, "config"), os.path.join(work, "slow.db"),
                      os.path.join(work, "slow.log"))
    sockets = []
    try:
        for i in range(1200):
            s = socket.create_connection(("127.0.0.1", gateway.port))
            if i % 2:
                s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            sockets.append(s)
        started = time.monotonic()
        status, _ = post(gateway.port, "/v1/chat/completions", chat("demo-echo", False), timeout=60)
        waited = time.monotonic() - started
        return status, waited, len(sockets)
    finally:
        for s in sockets:
            s.close()
        gateway.stop()


def graceful_stop(binary, work):
    """Streams that outlast the grace period: each client gets an error event, each a row."""
    database = os.path.join(work, "stop.db")
    gateway = Gateway(binary, os.path.join(work, "config"), database, os.path.join(work, "stop.log"), grace=3)
    with ThreadPoolExecutor(8) as pool:
        # No max_tokens: under the hard budget a stream past it would be ended by the gateway.
        endless = {"model": "drip-100", "stream": True, "messages": [{"role": "user", "content": "hi"}]}
        futures = [pool.submit(post, gateway.port, "/v1/chat/completions", endless) for _ in range(8)]
        time.sleep(1)
        gateway.stop()
        results = [f.result() for f in futures]
    errored = sum(1 for status, body in results if client_view(status, body).startswith("200, error event"))
    return errored, len(rows(database, "drip-100"))


def load(port, stop_at, answered, errors):
    """One client sending chat completions on one connection until `stop_at`: appends the time of
    each 200 to `answered`, counts other answers in `errors[0]`; stops when the connection fails
    (the gateway was killed), which counts as an error too."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    body = json.dumps(chat("demo-echo", False))
    headers = {"Authorization": f"Bearer {TEAM_KEY}", "Content-Type": "application/json"}
    while time.monotonic() < stop_at:
        try:
            connection.request("POST", "/v1/chat/completions", body, headers)
            response = connection.getresponse()
            response.read()
        except OSError:
            errors[0] += 1
            return
        if response.status == 200:
            answered.append(time.monotonic())
        else:
            errors[0] += 1


def kill_under_load(binary, work, clients=64, seconds=3):
    """kill -9 under load: answered requests without a ledger row, and the time they cover."""
    database = os.path.join(work, "kill.db")
    gateway = Gateway(binary, os.path.join(work, "config"), database, os.path.join(work, "kill.log"))
    answered = []
    stop_at = time.monotonic() + seconds
    threads = [threading.Thread(target=load, args=(gateway.port, stop_at, answered, [0])) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(seconds - 0.5)
    gateway.stop(signal.SIGKILL)
    killed_at = time.monotonic()
    for t in threads:
        t.join()
    written = len(rows(database, "demo-echo"))
    lost = max(len(answered) - written, 0)
    window_ms = 0.0
    if lost:
        ordered = sorted(t for t in answered if t <= killed_at)
        window_ms = (killed_at - ordered[-lost]) * 1000 if len(ordered) >= lost else float("nan")
    return len(answered), written, lost, window_ms


class Postgres:
    """A throwaway PostgreSQL of scripts/postgres.sh, in its own directory."""

    def __init__(self, work):
        self.script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts", "postgres.sh")
        self.dir = tempfile.mkdtemp(prefix="switchboard-resilience-pg-")
        output = subprocess.run([self.script, "start", self.dir], check=True, capture_output=True, text=True).stdout
        self.url = next(line.split("=", 1)[1] for line in output.splitlines() if line.startswith("DATABASE_URL="))

    def query(self, sql):
        psql = next((p for p in sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"))[-1:]), "psql")
        out = subprocess.run([psql, self.url, "-tAc", sql], check=True, capture_output=True, text=True).stdout
        return int(out.strip() or 0)

    def stop(self):
        subprocess.run([self.script, "stop", self.dir], capture_output=True)


def kill_one_of_two(binary, work, clients=64, seconds=3):
    """Two replicas sharing PostgreSQL (ledger and budget counters), one killed with -9 under load:
    the other keeps serving, and only the killed one's last answers lose their rows."""
    postgres = Postgres(work)
    try:
        replicas = [Gateway(binary, os.path.join(work, "config"), None, os.path.join(work, f"replica{i}.log"),
                            database_url=postgres.url) for i in range(2)]
        answered = {0: [], 1: []}
        errors = {0: [0], 1: [0]}
        stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=load, args=(replicas[i % 2].port, stop_at, answered[i % 2], errors[i % 2]))
                   for i in range(clients)]
        for t in threads:
            t.start()
        time.sleep(seconds - 1)
        replicas[0].stop(signal.SIGKILL)
        killed_at = time.monotonic()
        for t in threads:
            t.join()
        replicas[1].stop()
        after_kill = sum(1 for t in answered[1] if t > killed_at)
        written = postgres.query("SELECT COUNT(*) FROM usage_ledger")
        lost = max(len(answered[0]) + len(answered[1]) - written, 0)
        ordered = sorted(answered[0])
        window_ms = (killed_at - ordered[-lost]) * 1000 if 0 < lost <= len(ordered) else 0.0
        holds = postgres.query("SELECT COUNT(*) FROM budget_holds")
        return len(answered[0]), len(answered[1]), after_kill, errors[1][0], written, lost, window_ms, holds
    finally:
        postgres.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target-dir", default=os.environ.get(
        "CARGO_TARGET_DIR", os.path.expanduser("~/.cache/switchboard/target")) + "/debug")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    binary = os.path.join(args.target_dir, "switchboard-gateway")
    fake = os.path.join(args.target_dir, "fake-upstream")
    for path in (binary, fake):
        if not os.access(path, os.X_OK):
            raise SystemExit(f"{path} is missing: build the workspace's binaries first (cargo build --workspace --bins)")
    work = tempfile.mkdtemp(prefix="switchboard-resilience-")
    upstream_port = free_port()
    fake_log = open(os.path.join(work, "fake.log"), "wb")
    upstream = subprocess.Popen([fake, "--listen", f"127.0.0.1:{upstream_port}", "--no-record"],
                                stdout=fake_log, stderr=fake_log)
    try:
        wait_ready(upstream_port, upstream, "fake-upstream")
        models = "\n".join(
            f"    - {{name: {name}, upstreamModel: {name}, pricing: {{inputPerMillion: \"1\", outputPerMillion: \"2\"}}}}"
            for name in [f for f, _, _ in FAULTS] + ["drip-100"])
        os.makedirs(os.path.join(work, "config"))
        with open(os.path.join(work, "config", "all.yaml"), "w") as f:
            f.write(CONFIG.format(team_key=TEAM_KEY, provider_key=PROVIDER_KEY, models=models,
                                  upstream=f"http://127.0.0.1:{upstream_port}"))
        table = []
        started = time.monotonic()
        failures, ledger, secrets_logged = run_faults(binary, work, upstream_port, table)
        lines = ["| fault | reply | the client sees | gateway RSS before / peak / after | ledger row | secrets in reply or log |",
                 "|---|---|---|---|---|---|"]
        for fault, kind, sees, before, peak, after, secret in table:
            row = ledger.get(fault)
            row_text = f"{row[0]} {row[1] or ''}".strip() if row else "missing"
            lines.append(f"| `{fault}` | {kind} | {sees} | {before // MIB} / {peak // MIB} / {after // MIB} MiB "
                         f"| {row_text} | {'yes' if secret else 0} |")
        status, waited, held = slowloris(binary, work)
        lines.append("")
        lines.append(f"Slowloris: {held} connections held open (half idle, half with half a header); a normal "
                     f"request meanwhile: {status} in {waited:.2f} s.")
        if status != 200:
            failures.append(f"slowloris: the normal request got {status}")
        errored, stop_rows = graceful_stop(binary, work)
        lines.append(f"SIGTERM with 8 streams outlasting a 3 s grace period: {errored} of 8 clients got an "
                     f"error event, {stop_rows} of 8 ledger rows written.")
        if errored != 8 or stop_rows != 8:
            failures.append(f"graceful stop: {errored} error events, {stop_rows} rows of 8")
        answered, written, lost, window_ms = kill_under_load(binary, work)
        lines.append(f"kill -9 under 64 clients: {answered} requests answered, {written} ledger rows, "
                     f"{lost} lost (the last {window_ms:.0f} ms of answers).")
        a, b, after_kill, b_errors, written, lost, window_ms, holds = kill_one_of_two(binary, work)
        lines.append(f"kill -9 of one of two replicas sharing PostgreSQL, under 64 clients: {a} + {b} requests "
                     f"answered ({after_kill} by the survivor after the kill, {b_errors} errors from it), {written} "
                     f"ledger rows, {lost} lost (the killed replica's last {window_ms:.0f} ms); budget holds left "
                     f"by it: {holds} (they count until they expire, a minute later).")
        if b_errors or after_kill == 0:
            failures.append(f"two replicas: the survivor had {b_errors} errors and served {after_kill} after the kill")
        lines.append(f"Secrets found in the gateway's logs: {secrets_logged}. Suite time: {time.monotonic() - started:.0f} s.")
        text = "\n".join(lines)
        print(text)
        if args.out:
            with open(args.out, "w") as f:
                f.write(text + "\n")
    finally:
        upstream.terminate()
        upstream.wait(timeout=10)
        fake_log.close()
    if failures:
        print("\nFAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
