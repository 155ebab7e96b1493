#!/usr/bin/env python3
"""Prints the benchmark report as markdown from wrk outputs named MODE,TARGET,CONNECTIONS.txt (see
bench/run.sh and docs/benchmarks.md).

Each non-direct target is compared with `direct` (the upstream without a proxy) at the same mode and
concurrency: throughput ratio and added p50/p99 latency; the gateway's rows also carry its throughput
ratio against the bare nginx hop and against LiteLLM, and its CPU time per request (--cpu). Then the
peak memory of each server (--rss, from bench/rss.py), the gateway's start-up (--startup), the targets
with whether this run met them, and the ledger's row count.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

RESULT = re.compile(r"^BENCH_RESULT (.*)$", re.MULTILINE)

# The targets for the gateway (docs/benchmarks.md).
NGINX_RATIO_MIN = 0.6  # gateway req/s over the nginx hop's at c=64
P50_OVER_NGINX_MAX = 2.0  # gateway's added p50 over direct at c=1, in multiples of nginx's
P99_ADDED_MAX_MS = 1.0  # added p99 over direct at c=16
LITELLM_RATIO_MIN = 150.0  # gateway req/s over LiteLLM req/s at c=64
OBSERVED_RATIO_MIN = 0.9  # gateway (request log + traces) req/s over gateway-bare's at c=16
POLICY_RATIO_MIN = 0.9  # gateway-policy (a Rego policy on every request) req/s over gateway-bare's at c=16
JWT_RATIO_MIN = 0.9  # gateway-jwt (an RS256 JWT instead of an API key) req/s over gateway-bare's at c=16

# Which targets each server process serves, for the memory table.
SERVES = {"fake-upstream": "direct (and the upstream of all)", "nginx": "nginx", "gateway": "gateway",
          "gateway-bare": "gateway-bare", "gateway-policy": "gateway-policy", "gateway-jwt": "gateway-jwt", "otelcol": "gateway's traces",
          "litellm": "litellm"}


def parse(path: Path) -> dict[str, float]:
    match = RESULT.search(path.read_text())
    if not match:
        sys.exit(f"report: no BENCH_RESULT line in {path}:\n{path.read_text()}")
    fields = {k: float(v) for k, v in (item.split("=") for item in match.group(1).split())}
    seconds = fields["duration_us"] / 1e6
    return {
        "rps": fields["requests"] / seconds if seconds else 0.0,
        "p50": fields["p50_us"] / 1000,
        "p90": fields["p90_us"] / 1000,
        "p99": fields["p99_us"] / 1000,
        "errors": fields["non2xx"] + fields["socket_errors"],
        "requests": fields["requests"],
    }


def cpu_us_per_request(cpu_dir: Path | None, key: str, requests: float) -> str:
    """The gateway's CPU time (user + system) over one run, per request, from run.sh's before/after file."""
    path = cpu_dir / f"{key}.txt" if cpu_dir else None
    if not path or not path.exists() or not requests:
        return ""
    before, after = (float(x) for x in path.read_text().split())
    return f"{(after - before) * 1e6 / requests:.0f}"


def times(ratio: float) -> str:
    """A ratio as `0.18x` or `38.2x`; small ones (LiteLLM against direct) with more digits."""
    if ratio >= 10:
        return f"{ratio:.1f}x"
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.4f}x"


def table(header: list[str], rows: list[list[str]], left: int) -> list[str]:
    """A markdown table padded to line up in a terminal; the first `left` columns are left-aligned."""
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    rule = "|" + "|".join(("-" * (w + 2)) if i < left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)) + "|"
    return [line(header), rule, *(line(row) for row in rows)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--ledger", type=Path)
    parser.add_argument("--cpu", type=Path, help="run.sh's CPU seconds before and after each gateway run")
    parser.add_argument("--startup", type=Path, help="run.sh's gateway start-up with the samples: ms to ready, idle RSS KiB")
    parser.add_argument("--rss", type=Path, help="bench/rss.py output: name, processes, VmHWM KiB, VmRSS KiB")
    parser.add_argument("--duration", default="?")
    parser.add_argument("--litellm-version")
    args = parser.parse_args()

    runs: dict[tuple[str, str, int], dict[str, float]] = {}
    for path in args.results.glob("*.txt"):
        mode, target, connections = path.stem.split(",")
        runs[(mode, target, int(connections))] = parse(path)
    if not runs:
        sys.exit("report: no results")

    mode_order = {"json": 0, "sse": 1}
    target_order = {"direct": 0, "nginx": 1, "gateway": 2, "gateway-bare": 3, "gateway-policy": 4, "gateway-jwt": 5,
                    "gateway-mock": 6, "litellm": 7}
    keys = sorted(runs, key=lambda k: (mode_order.get(k[0], 9), k[2], target_order.get(k[1], 9), k[1]))

    header = ["mode", "conc", "target", "req/s", "p50 ms", "p99 ms", "errors",
              "req/s vs direct", "+p50 ms", "+p99 ms", "vs nginx req/s", "vs litellm req/s", "CPU us/req"]  # fmt: skip
    rows = []
    for mode, target, connections in keys:
        r = runs[(mode, target, connections)]
        base = runs.get((mode, "direct", connections))
        if target != "direct" and base:
            ratio = times(r["rps"] / base["rps"]) if base["rps"] else "-"
            added = [f"{r['p50'] - base['p50']:+.2f}", f"{r['p99'] - base['p99']:+.2f}"]
        else:
            ratio, added = "", ["", ""]
        versus = []
        for other in ("nginx", "litellm"):
            o = runs.get((mode, other, connections))
            shown = target.startswith("gateway") and o
            versus.append((times(r["rps"] / o["rps"]) if o["rps"] else "-") if shown else "")
        cpu = cpu_us_per_request(args.cpu, f"{mode},{target},{connections}", r["requests"])
        rows.append(
            [mode, str(connections), target, f"{r['rps']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             f"{r['errors']:.0f}", ratio, *added, *versus, cpu]
        )  # fmt: skip

    print()
    version = f" (LiteLLM {args.litellm_version})" if args.litellm_version else ""
    print(f"Switchboard benchmark{version}: wrk, {args.duration} per run; "
          "json = non-streaming, sse = stream with usage; latencies in ms.")  # fmt: skip
    print()
    print("\n".join(table(header, rows, left=3)))

    if args.rss and args.rss.exists():
        mem_rows = []
        for line in args.rss.read_text().splitlines():
            name, count, hwm_kb, rss_kb = line.split("\t")
            mem_rows.append(
                [name, SERVES.get(name, ""), count, f"{int(hwm_kb) / 1024:.1f}", f"{int(rss_kb) / 1024:.1f}"]
            )
        print()
        print("Memory at the end of the load, summed over each server's process tree (peak = VmHWM):")
        print()
        print("\n".join(table(["process", "serves", "processes", "peak RSS MiB", "RSS at end MiB"], mem_rows, left=2)))

    if args.startup and args.startup.exists():
        ready_ms, idle_kb = args.startup.read_text().split()
        print()
        print(f"Gateway with config/samples: ready {float(ready_ms):.0f} ms after start, idle RSS "
              f"{int(idle_kb) / 1024:.1f} MiB.")  # fmt: skip

    goals = []
    for mode in sorted({k[0] for k in runs}, key=lambda m: mode_order.get(m, 9)):
        by = lambda name: {c: r for (m, t, c), r in runs.items() if m == mode and t == name}  # noqa: E731
        gateway, direct, nginx, litellm = by("gateway"), by("direct"), by("nginx"), by("litellm")
        bare = by("gateway-bare")
        # The hot-path targets (issue 13) are for auth, rate limits, a hard budget and the ledger:
        # `gateway-bare`; the request log and traces have their own target below (issue 14).
        core = bare or gateway
        if 64 in core and 64 in nginx and nginx[64]["rps"]:
            ratio = core[64]["rps"] / nginx[64]["rps"]
            goals.append([mode, "req/s vs the nginx hop at c=64", f"{ratio:.2f}x", f">= {NGINX_RATIO_MIN}x",
                          ratio >= NGINX_RATIO_MIN])  # fmt: skip
        if 1 in core and 1 in direct and 1 in nginx:
            added = core[1]["p50"] - direct[1]["p50"]
            floor = nginx[1]["p50"] - direct[1]["p50"]
            goals.append([mode, "added p50 at c=1", f"{added:+.3f} ms (nginx {floor:+.3f})",
                          f"<= {P50_OVER_NGINX_MAX:.0f}x nginx's", added <= P50_OVER_NGINX_MAX * max(floor, 0.0)])  # fmt: skip
        if 16 in core and 16 in direct:
            added = core[16]["p99"] - direct[16]["p99"]
            goals.append([mode, "added p99 at c=16", f"{added:+.3f} ms", f"< {P99_ADDED_MAX_MS} ms",
                          added < P99_ADDED_MAX_MS])  # fmt: skip
        if 16 in gateway and 16 in bare and bare[16]["rps"]:
            ratio = gateway[16]["rps"] / bare[16]["rps"]
            goals.append([mode, "request log + traces on vs off at c=16", f"{ratio:.3f}x",
                          f">= {OBSERVED_RATIO_MIN}x", ratio >= OBSERVED_RATIO_MIN])  # fmt: skip
        policy = by("gateway-policy")
        if 16 in policy and 16 in bare and bare[16]["rps"]:
            ratio = policy[16]["rps"] / bare[16]["rps"]
            goals.append([mode, "a Rego policy on every request vs none at c=16", f"{ratio:.3f}x",
                          f">= {POLICY_RATIO_MIN}x", ratio >= POLICY_RATIO_MIN])  # fmt: skip
        jwt = by("gateway-jwt")
        if 16 in jwt and 16 in bare and bare[16]["rps"]:
            ratio = jwt[16]["rps"] / bare[16]["rps"]
            goals.append([mode, "an RS256 JWT on every request vs an API key at c=16", f"{ratio:.3f}x",
                          f">= {JWT_RATIO_MIN}x", ratio >= JWT_RATIO_MIN])  # fmt: skip
        if 64 in core and 64 in litellm and litellm[64]["rps"]:
            ratio = core[64]["rps"] / litellm[64]["rps"]
            goals.append([mode, "req/s vs LiteLLM at c=64", f"{ratio:.1f}x", f">= {LITELLM_RATIO_MIN:.0f}x",
                          ratio >= LITELLM_RATIO_MIN])  # fmt: skip
    if goals:
        print()
        print("The issues' targets (the hot path on gateway-bare, observability on gateway against it):")
        print()
        goal_rows = [[m, what, got, want, "yes" if ok else "**no**"] for m, what, got, want, ok in goals]
        print("\n".join(table(["mode", "target", "measured", "goal", "met"], goal_rows, left=2)))

    errors = sum(r["errors"] for r in runs.values())
    if errors:
        print(f"\nWARNING: {errors:.0f} failed requests (non-2xx or socket errors): the numbers above include them.")
    if args.ledger and args.ledger.exists():
        with sqlite3.connect(args.ledger) as db:
            count, failed = db.execute(
                "SELECT COUNT(*), COALESCE(SUM(status <> 200), 0) FROM usage_ledger"
            ).fetchone()
        print(f"\nledger: {count} rows written by the gateway during the run ({failed} with a non-200 status)")


if __name__ == "__main__":
    main()
