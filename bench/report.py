#!/usr/bin/env python3
"""Prints the benchmark table from wrk outputs named MODE,TARGET,CONNECTIONS.txt (see bench/run.sh).

Each non-direct target is compared with `direct` (the upstream without the gateway) at the same mode
and concurrency: throughput ratio and added p50/p99 latency.
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import sys
from pathlib import Path

RESULT = re.compile(r"^BENCH_RESULT (.*)$", re.MULTILINE)


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("results", type=Path)
    parser.add_argument("--ledger", type=Path)
    parser.add_argument("--duration", default="?")
    args = parser.parse_args()

    runs: dict[tuple[str, str, int], dict[str, float]] = {}
    for path in args.results.glob("*.txt"):
        mode, target, connections = path.stem.split(",")
        runs[(mode, target, int(connections))] = parse(path)
    if not runs:
        sys.exit("report: no results")

    mode_order = {"json": 0, "sse": 1}
    target_order = {"direct": 0, "gateway": 1}
    keys = sorted(runs, key=lambda k: (mode_order.get(k[0], 9), k[2], target_order.get(k[1], 9), k[1]))

    header = ["mode", "target", "conc", "req/s", "p50 ms", "p99 ms", "errors", "req/s vs direct", "+p50 ms", "+p99 ms"]
    rows = []
    for mode, target, connections in keys:
        r = runs[(mode, target, connections)]
        base = runs.get((mode, "direct", connections))
        if target != "direct" and base:
            ratio = f"{r['rps'] / base['rps']:.2f}x" if base["rps"] else "-"
            added = [f"{r['p50'] - base['p50']:+.2f}", f"{r['p99'] - base['p99']:+.2f}"]
        else:
            ratio, added = "", ["", ""]
        rows.append(
            [mode, target, str(connections), f"{r['rps']:.0f}", f"{r['p50']:.2f}", f"{r['p99']:.2f}",
             f"{r['errors']:.0f}", ratio, *added]
        )  # fmt: skip

    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))) + " |"

    print()
    print(f"Switchboard benchmark: wrk, {args.duration} per run; json = non-streaming, sse = stream with usage")
    print(line(header))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print(line(row))
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
