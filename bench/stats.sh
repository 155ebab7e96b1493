#!/usr/bin/env bash
# `make bench-stats`: the statistics and cost queries at scale (docs/benchmarks.md), on SQLite and on
# a throwaway PostgreSQL (scripts/postgres.sh). Fills each database with BENCH_STATS_ROWS synthetic
# requests (default 10 million) through the ledger's write path, then times the queries
# (gateway/examples/stats_at_scale.rs). BENCH_STATS_DATABASES="sqlite postgres" picks the databases.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
rows=${BENCH_STATS_ROWS:-10000000}
databases=${BENCH_STATS_DATABASES:-sqlite postgres}

cargo build --release -p switchboard-gateway --example stats_at_scale
bench="$CARGO_TARGET_DIR/release/examples/stats_at_scale"
work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench-stats.XXXXXX")
cleanup() {
    scripts/postgres.sh stop "$work/pg" >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for database in $databases; do
    case $database in
        sqlite) url="sqlite://$work/stats.db?mode=rwc" ;;
        postgres)
            scripts/system-packages.sh >&2
            url=$(scripts/postgres.sh start "$work/pg" | sed -n 's/^DATABASE_URL=//p')
            [[ -n $url ]] || { echo "bench-stats: PostgreSQL did not start" >&2; exit 1; }
            ;;
        *) echo "bench-stats: unknown database $database" >&2; exit 2 ;;
    esac
    echo
    echo "### $database, $rows requests"
    echo
    "$bench" "$url" "$rows"
    [[ $database == sqlite ]] && echo && echo "SQLite file: $(du -h "$work/stats.db" | cut -f1)"
done
