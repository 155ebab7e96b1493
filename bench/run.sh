#!/usr/bin/env bash
# `make bench`: wrk load against the fake upstream directly and through the gateway, in one run.
#
# Builds release binaries, starts fake-upstream (--no-record) and the gateway (bench/config, SQLite
# ledger in a temporary directory) on free loopback ports, warms up, then runs wrk for each mode
# (JSON and SSE stream), target and concurrency, and prints a table with gateway/direct ratios.
#
# Knobs (environment):
#   BENCH_DURATION=10s           per wrk run
#   BENCH_CONCURRENCY="1 16 64"  connections per run
#   BENCH_MODES="json sse"       non-streaming and/or streaming requests
#   BENCH_TARGETS="direct gateway"  add gateway-mock for the gateway's built-in mock provider (no upstream hop)
#   BENCH_KEEP=1                 keep the work directory (logs, raw wrk output)
#
# Everything runs on this machine's two cores: wrk, the fake and the gateway compete for them, so the
# numbers compare the targets with each other, not with a production deployment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
duration=${BENCH_DURATION:-10s}
concurrency=${BENCH_CONCURRENCY:-1 16 64}
modes=${BENCH_MODES:-json sse}
targets=${BENCH_TARGETS:-direct gateway}
key=sk-switchboard-bench

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

command -v wrk >/dev/null 2>&1 || die "wrk not found: apt-get install wrk"
command -v curl >/dev/null 2>&1 || die "curl not found: apt-get install curl"

log "building release binaries"
cargo build --release -p switchboard-gateway -p switchboard-fake-upstream
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    if [[ -n "${BENCH_KEEP:-}" ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_ok URL PID NAME: polls URL until 200, for at most 30 s, failing early if PID died.
wait_ok() {
    local url=$1 pid=$2 name=$3 i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$work/$name.log" >&2; die "$name exited during startup"; }
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    tail -n 20 "$work/$name.log" >&2
    die "$name not ready at $url after 30s"
}

fake_port=$(free_port)
"$bin/fake-upstream" --listen "127.0.0.1:$fake_port" --no-record >"$work/fake-upstream.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$fake_port/healthz" "$!" fake-upstream

mkdir -p "$work/config"
sed "s|{FAKE_BASE_URL}|http://127.0.0.1:$fake_port/v1|g" bench/config/bench.yaml >"$work/config/bench.yaml"
gateway_port=$(free_port)
RUST_LOG=${RUST_LOG:-warn} "$bin/switchboard-gateway" \
    --config-dir "$work/config" \
    --listen "127.0.0.1:$gateway_port" \
    --database-url "sqlite://$work/ledger.db?mode=rwc" \
    --admin-token sk-switchboard-bench-admin >"$work/gateway.log" 2>&1 &
gateway_pid=$!
pids+=("$gateway_pid")
wait_ok "http://127.0.0.1:$gateway_port/readyz" "$gateway_pid" gateway

# target name -> "URL MODEL". A new target (LiteLLM, issue 4) is one more line here plus its startup
# above: start `litellm --config ...` from the venv with a model pointing at the fake upstream, wait for
# it, and add  litellm) echo "http://127.0.0.1:$litellm_port/v1/chat/completions bench-model" ;;
# bench/report.py prints every target's ratios against `direct` without changes.
target_spec() {
    case $1 in
        direct) echo "http://127.0.0.1:$fake_port/v1/chat/completions bench-model" ;;
        gateway) echo "http://127.0.0.1:$gateway_port/v1/chat/completions bench-model" ;;
        gateway-mock) echo "http://127.0.0.1:$gateway_port/v1/chat/completions bench-mock" ;;
        *) die "unknown target $1" ;;
    esac
}

# run_wrk OUT MODE TARGET CONNECTIONS DURATION
run_wrk() {
    local out=$1 mode=$2 target=$3 connections=$4 time=$5 url model threads
    read -r url model <<<"$(target_spec "$target")"
    threads=$((connections < 2 ? connections : 2))
    BENCH_MODEL=$model BENCH_KEY=$key BENCH_STREAM=$([[ $mode == sse ]] && echo 1 || echo 0) \
        wrk --latency -t "$threads" -c "$connections" -d "$time" --timeout 10s -s bench/chat.lua "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed for $mode $target c=$connections"; }
}

# A request through each target first: a broken setup fails here, not after minutes of load.
for target in $targets; do
    read -r url model <<<"$(target_spec "$target")"
    curl -fsS --max-time 10 -o /dev/null -H "Authorization: Bearer $key" -H 'Content-Type: application/json' \
        -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" "$url" \
        || die "a request to $target ($url) failed"
done

log "warming up"
for target in $targets; do
    run_wrk "$work/warmup-$target.txt" json "$target" 8 2s
done

mkdir -p "$work/results"
runs=0
for mode in $modes; do for target in $targets; do for c in $concurrency; do runs=$((runs + 1)); done; done; done
log "$runs runs of $duration each"
for mode in $modes; do
    for target in $targets; do
        for c in $concurrency; do
            log "$mode $target c=$c"
            run_wrk "$work/results/$mode,$target,$c.txt" "$mode" "$target" "$c" "$duration"
        done
    done
done

# Stop the gateway gracefully (flushes the ledger) to report how many rows the load left.
kill -TERM "$gateway_pid"
wait "$gateway_pid" || log "the gateway exited with $? after SIGTERM"
python3 bench/report.py "$work/results" --ledger "$work/ledger.db" --duration "$duration"
