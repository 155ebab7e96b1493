"""The console's views at scale (issue 16): `make bench-console` or
`~/.cache/switchboard/venv/bin/python bench/console.py [--tenants N] [--no-build]`.

Starts the release gateway on a generated config folder of N tenants (default 10,000), each with
an API key and a monthly budget, sends requests from a few of them, then loads each view of the
console in headless Chromium (Debian's `chromium`, driven by Playwright from the SDK venv) and
prints, per view, the time from the start of a full page load to the view's content on screen:
the best and the worst of five loads. Everything runs on loopback; the gateway, its SQLite ledger
and the config live in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[1]
ADMIN_TOKEN = "sk-switchboard-bench-admin"
LOADS = 5
# Each view, and what shows that it rendered its data.
VIEWS = {
    "dashboard": ("#/", "[data-tile=requests]"),
    "gateway": ("#/gateway", "article.route"),
    "traces": ("#/requests", "table tbody tr"),
    # The budgets' burn-down is the last part of Costs to arrive.
    "costs": ("#/costs", "figure.chart:has-text('Burn-down') canvas"),
    "tenants": ("#/tenants", "table tbody tr"),
    "settings": ("#/settings", "[data-field=config]:not(:has-text('…'))"),
}


def config(tenants: int) -> str:
    """A route on the built-in mock, and `tenants` tenants with a key and a budget each."""
    docs = [
        """apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: bench-echo}
spec:
  models: [{name: bench-echo, pricing: {inputPerMillion: "0.15", outputPerMillion: "0.60"}}]
  backends: [{name: mock, provider: mock}]"""
    ]
    for i in range(tenants):
        docs.append(f"""apiVersion: v1
kind: Secret
metadata: {{name: key-{i}}}
stringData: {{key: sk-bench-tenant-{i:05d}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: tenant-{i:05d}}}
spec:
  displayName: Team {i}
  apiKeys: [{{name: main, secretRef: {{name: key-{i}, key: key}}}}]
---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {{name: budget-{i:05d}}}
spec: {{scope: {{kind: Tenant, tenant: tenant-{i:05d}}}, limitUsd: "100", period: Monthly, enforcement: Hard}}""")
    return "\n---\n".join(docs) + "\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, timeout: float = 300) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if process.poll() is not None:
            sys.exit(f"bench/console: the gateway exited ({process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"bench/console: {url} not ready after {timeout} s")


def chat(port: int, key: str) -> None:
    body = json.dumps({"model": "bench-echo", "messages": [{"role": "user", "content": "hello console"}]}).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/chat/completions", body,
                                     {"authorization": f"Bearer {key}", "content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 200


def logged(admin: int, count: int, timeout: float = 30) -> None:
    """Waits until the request log holds `count` rows (the ledger's writer batches them)."""
    request = urllib.request.Request(f"http://127.0.0.1:{admin}/admin/v1/requests?limit=200",
                                     headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        with urllib.request.urlopen(request, timeout=10) as answer:
            if len(json.load(answer)["data"]) >= min(count, 200):
                return
        time.sleep(0.1)
    sys.exit(f"bench/console: {count} requests not in the request log after {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tenants", type=int, default=10_000)
    parser.add_argument("--no-build", action="store_true", help="use the release binary already built")
    args = parser.parse_args()
    target = Path(os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache/switchboard/target"))
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-p", "switchboard-gateway"], cwd=ROOT, check=True)
    gateway = target / "release" / "switchboard-gateway"
    chromium = shutil.which("chromium") or "/usr/bin/chromium"

    work = Path(tempfile.mkdtemp(prefix="switchboard-bench-console."))
    process = None
    try:
        (work / "config").mkdir()
        (work / "config" / "bench.yaml").write_text(config(args.tenants))
        port, admin = free_port(), free_port()
        process = subprocess.Popen(
            [str(gateway), "--config-dir", str(work / "config"), "--listen", f"127.0.0.1:{port}",
             "--admin-listen", f"127.0.0.1:{admin}", "--database-url", f"sqlite://{work}/ledger.db?mode=rwc",
             "--admin-token", ADMIN_TOKEN],
            stdout=open(work / "gateway.log", "w"), stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"},
        )  # fmt: skip
        ready = wait_ready(f"http://127.0.0.1:{port}/readyz", process)
        sent = 0
        for i in range(0, args.tenants, max(1, args.tenants // 50)):
            for _ in range(3):
                chat(port, f"sk-bench-tenant-{i:05d}")
                sent += 1
        logged(admin, sent)

        times: dict[str, list[float]] = {}
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(30_000)
            page.goto(f"http://127.0.0.1:{admin}/console/")
            page.get_by_label("or the admin token").fill(ADMIN_TOKEN)
            page.keyboard.press("Enter")
            page.locator("[data-tile=requests]").wait_for()
            for name, (route, shown) in VIEWS.items():
                for load in range(LOADS):
                    started = time.perf_counter()
                    page.goto(f"http://127.0.0.1:{admin}/console/?load={load}{route}")
                    page.locator(shown).first.wait_for()
                    times.setdefault(name, []).append(time.perf_counter() - started)
            browser.close()
    finally:
        if process:
            process.terminate()
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)

    print(f"Console views with {args.tenants:,} tenants (each with a key and a budget), "
          f"the gateway ready {ready:.1f} s after start; {LOADS} full page loads each, "
          "from navigation to the view's content on screen:\n")  # fmt: skip
    print("| view | best | worst |")
    print("|---|---:|---:|")
    for name, samples in times.items():
        print(f"| {name} | {min(samples) * 1000:.0f} ms | {max(samples) * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
