#!/usr/bin/env bash
# `make bench`: wrk load against the fake upstream directly, through a bare nginx reverse proxy,
# through the gateway and through LiteLLM's proxy, in one run (docs/benchmarks.md).
#
# `gateway` runs with everything on: the request log, and OpenTelemetry traces sampled at 1.0 and
# exported over OTLP/gRPC with zstd to a real collector on loopback (scripts/otelcol.sh, nop exporter);
# `gateway-bare` is a second gateway with both off, for what observability costs; `gateway-policy` is
# gateway-bare with a Rego policy (bench/policy.rego) on the bench tenant, for what a policy costs;
# `gateway-jwt` is gateway-bare with callers presenting an RS256 JWT of an issuer the bench tenant
# trusts (bench/jwt.py, its JWKS served on loopback) instead of the API key, for what a token costs.
#
# Builds release binaries, starts fake-upstream (--no-record), the gateway (bench/config: rate limits
# and a hard budget that never trigger, SQLite ledger in a temporary directory) and LiteLLM's proxy
# (bench/litellm.yaml, from the venv of bench/litellm-venv.sh, 2 workers) on free loopback ports, checks
# one request and one stream through each target, warms up, then runs wrk for each mode (JSON and SSE
# stream), target and concurrency, reads every server's peak RSS from /proc, and prints a markdown
# table with the ratios against direct, the nginx hop and LiteLLM. nginx (one worker, upstream
# keepalive, no buffering, no access log) is the floor of one proxy hop on this machine. The
# gateway's CPU time (utime + stime from /proc) is read around each of its runs: CPU us per request.
#
# Knobs (environment):
#   BENCH_DURATION=10s           per wrk run
#   BENCH_CONCURRENCY="1 16 64"  connections per run
#   BENCH_MODES="json sse"       non-streaming and/or streaming requests
#   BENCH_TARGETS="direct nginx gateway gateway-bare gateway-policy gateway-jwt litellm"  add gateway-mock for the gateway's built-in mock provider
#                                (no upstream hop); leave out litellm to skip its venv and startup
#   BENCH_GATEWAY_ARGS="..."     extra gateway flags (e.g. --request-log=false, to measure what the log costs)
#   BENCH_BUILD=0                use the release binaries already in $CARGO_TARGET_DIR, no cargo build
#   BENCH_KEEP=1                 keep the work directory (logs, raw wrk output)
#   BENCH_PROFILE=1              record the gateway with perf during each of its runs and draw a
#                                flamegraph per run into the kept work directory (bench/inferno.sh)
#   SWITCHBOARD_BENCH_VENV       LiteLLM's venv (default ~/.cache/switchboard/bench-venv)
#
# Everything runs on this machine's two cores: wrk, the fake and the target compete for them, so the
# numbers compare the targets with each other, not with a production deployment.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
duration=${BENCH_DURATION:-10s}
concurrency=${BENCH_CONCURRENCY:-1 16 64}
modes=${BENCH_MODES:-json sse}
targets=${BENCH_TARGETS:-direct nginx gateway gateway-bare gateway-policy gateway-jwt litellm}
key=sk-switchboard-bench
has_target() { [[ " $targets " == *" $1 "* ]]; }

die() { echo "bench: $*" >&2; exit 1; }
log() { echo "bench: $*" >&2; }

# wrk, nginx and curl come from Debian, installed here if missing, as `make test` does for its servers.
scripts/system-packages.sh >&2 || die "cannot install the system packages (scripts/system-packages.sh)"
command -v wrk >/dev/null 2>&1 || die "wrk not found: apt-get install wrk"
command -v curl >/dev/null 2>&1 || die "curl not found: apt-get install curl"
nginx=$(PATH=$PATH:/usr/sbin command -v nginx || true)
if has_target nginx && [[ -z $nginx ]]; then die "nginx not found: scripts/system-packages.sh (nginx-light)"; fi
profile=${BENCH_PROFILE:-}
if [[ -n $profile ]]; then
    command -v perf >/dev/null 2>&1 || die "BENCH_PROFILE needs perf: apt-get install linux-perf"
    inferno=$(bench/inferno.sh) || die "cannot install inferno (bench/inferno.sh)"
    BENCH_KEEP=1
fi

if [[ ${BENCH_BUILD:-1} != 0 ]]; then
    log "building release binaries"
    cargo build --release -p switchboard-gateway -p switchboard-fake-upstream
fi
bin="$CARGO_TARGET_DIR/release"
[[ -x "$bin/switchboard-gateway" && -x "$bin/fake-upstream" ]] || die "no release binaries in $bin"
if has_target litellm; then
    # Before anything starts: the first run installs LiteLLM (a minute or two).
    litellm_venv=$(bench/litellm-venv.sh) || die "cannot set up LiteLLM's venv (bench/litellm-venv.sh)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-bench.XXXXXX")
pids=()
litellm_pid=
litellm_version=
cleanup() {
    local pid i
    if [[ -n $litellm_pid ]]; then
        # LiteLLM runs in its own process group (setsid): its supervisor and the uvicorn workers.
        # A few seconds for a graceful stop, then SIGKILL for whatever is left of the group.
        kill -TERM -- "-$litellm_pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do
            ps -e -o pgid=,stat= | awk -v g="$litellm_pid" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }' \
                || break
            sleep 0.1
        done
        kill -KILL -- "-$litellm_pid" 2>/dev/null || true
        wait "$litellm_pid" 2>/dev/null || true
    fi
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    [[ -f $work/otelcol/otelcol.pid ]] && scripts/otelcol.sh stop "$work/otelcol" 2>/dev/null
    if [[ -n "${BENCH_KEEP:-}" ]]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# wait_ok URL PID NAME [SECONDS]: polls URL until 200, for at most SECONDS (30), failing early if PID died.
wait_ok() {
    local url=$1 pid=$2 name=$3 seconds=${4:-30} i
    for ((i = 0; i < seconds * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { tail -n 20 "$work/$name.log" >&2; die "$name exited during startup"; }
        if curl -fsS -o /dev/null --max-time 1 "$url" 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    tail -n 20 "$work/$name.log" >&2
    die "$name not ready at $url after ${seconds}s"
}

fake_port=$(free_port)
"$bin/fake-upstream" --listen "127.0.0.1:$fake_port" --no-record >"$work/fake-upstream.log" 2>&1 &
pids+=($!)
wait_ok "http://127.0.0.1:$fake_port/healthz" "$!" fake-upstream

# The proxy-hop floor: one nginx worker in front of the fake, keepalive to it, streaming through.
if has_target nginx; then
    nginx_port=$(free_port)
    mkdir -p "$work/nginx"
    cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $work/nginx/body;
    proxy_temp_path $work/nginx/proxy;
    fastcgi_temp_path $work/nginx/fastcgi;
    uwsgi_temp_path $work/nginx/uwsgi;
    scgi_temp_path $work/nginx/scgi;
    upstream fake { server 127.0.0.1:$fake_port; keepalive 64; }
    server {
        listen 127.0.0.1:$nginx_port;
        location / {
            proxy_pass http://fake;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }
    }
}
EOF
    "$nginx" -p "$work/nginx" -c "$work/nginx/nginx.conf" >"$work/nginx.log" 2>&1 &
    nginx_pid=$!
    pids+=("$nginx_pid")
    wait_ok "http://127.0.0.1:$nginx_port/healthz" "$nginx_pid" nginx
fi

# LiteLLM first: it takes 10-20 s to import and start its workers, while the gateway starts.
if has_target litellm; then
    litellm_port=$(free_port)
    sed -e "s|{FAKE_BASE_URL}|http://127.0.0.1:$fake_port/v1|g" -e "s|{MASTER_KEY}|$key|g" \
        bench/litellm.yaml >"$work/litellm.yaml"
    # setsid: its own process group, so that cleanup stops the workers too. No DATABASE_URL (a
    # database would turn on spend tracking), quiet logs, no telemetry, the bundled model cost map.
    env -u DATABASE_URL -u LITELLM_MASTER_KEY LITELLM_LOG=ERROR LITELLM_LOCAL_MODEL_COST_MAP=True \
        setsid "$litellm_venv/bin/litellm" --config "$work/litellm.yaml" --host 127.0.0.1 --port "$litellm_port" \
        --num_workers 2 --telemetry False >"$work/litellm.log" 2>&1 &
    litellm_pid=$!
fi

mkdir -p "$work/config" "$work/config-policy" "$work/config-jwt" "$work/idp"
sed "s|{FAKE_BASE_URL}|http://127.0.0.1:$fake_port/v1|g" bench/config/bench.yaml >"$work/config/bench.yaml"
# The same config with bench/policy.rego as the bench tenant's `spec.policy`.
python3 - "$work/config/bench.yaml" bench/policy.rego >"$work/config-policy/bench.yaml" <<'PY'
import sys
config, rego = open(sys.argv[1]).read(), open(sys.argv[2]).read()
anchor = "  displayName: Benchmark\n"
assert anchor in config, "bench/config/bench.yaml: the bench tenant moved"
block = "  policy:\n    rego: |\n" + "".join("      " + line if line.strip() else "\n" for line in rego.splitlines(True))
print(config.replace(anchor, anchor + block, 1), end="")
PY
jwt_token=
if has_target gateway-jwt; then
    # The identity provider: its JWKS from a static server; the bench tenant trusts its issuer.
    idp_port=$(free_port)
    issuer="http://127.0.0.1:$idp_port"
    jwt_token=$(python3 bench/jwt.py "$work/idp" "$issuer") || die "cannot mint the bench token (bench/jwt.py)"
    python3 -m http.server "$idp_port" --bind 127.0.0.1 --directory "$work/idp" >"$work/idp.log" 2>&1 &
    idp_pid=$!
    pids+=("$idp_pid")
    wait_ok "$issuer/jwks.json" "$idp_pid" "the identity provider"
    anchor="  displayName: Benchmark"
    grep -q "^$anchor\$" "$work/config/bench.yaml" || die "bench/config/bench.yaml: the bench tenant moved"
    sed "s|^$anchor\$|$anchor\n  jwtIssuers: [{name: bench-workloads, issuer: \"$issuer\", audiences: [switchboard-bench], jwksUri: \"$issuer/jwks.json\"}]|" \
        "$work/config/bench.yaml" >"$work/config-jwt/bench.yaml"
fi
mkdir -p "$work/otelcol"
otlp_grpc=$(scripts/otelcol.sh start "$work/otelcol" nop | sed -n 's/^OTLP_GRPC=//p')
[[ -n $otlp_grpc ]] || die "the OpenTelemetry Collector did not start (scripts/otelcol.sh)"
read -r -a gateway_args <<<"${BENCH_GATEWAY_ARGS:-}"
# start_gateway NAME DB CONFIG ARGS...: a gateway on $work/CONFIG; sets gateway_port/gateway_pid.
start_gateway() {
    local name=$1 db=$2 config=$3
    shift 3
    gateway_port=$(free_port)
    RUST_LOG=${RUST_LOG:-warn} "$bin/switchboard-gateway" \
        --config-dir "$work/$config" \
        --listen "127.0.0.1:$gateway_port" --admin-listen 127.0.0.1:0 \
        --database-url "sqlite://$work/$db?mode=rwc" \
        --admin-token sk-switchboard-bench-admin "$@" "${gateway_args[@]}" >"$work/$name.log" 2>&1 &
    gateway_pid=$!
    pids+=("$gateway_pid")
    wait_ok "http://127.0.0.1:$gateway_port/readyz" "$gateway_pid" "$name"
}
start_gateway gateway-bare bare.db config --request-log=false
bare_port=$gateway_port bare_pid=$gateway_pid
policy_port= policy_pid=
if has_target gateway-policy; then
    start_gateway gateway-policy policy.db config-policy --request-log=false
    policy_port=$gateway_port policy_pid=$gateway_pid
fi
jwt_port= jwt_pid=
if has_target gateway-jwt; then
    start_gateway gateway-jwt jwt.db config-jwt --request-log=false
    jwt_port=$gateway_port jwt_pid=$gateway_pid
fi
# zstd, as the chart's monitoring.tracing exports by default: the least CPU on both sides.
OTEL_EXPORTER_OTLP_COMPRESSION=zstd start_gateway gateway ledger.db config --otlp-endpoint "$otlp_grpc" --otlp-protocol grpc --trace-sampling-ratio 1
if [[ -n $litellm_pid ]]; then
    wait_ok "http://127.0.0.1:$litellm_port/health/liveliness" "$litellm_pid" litellm 180
    litellm_version=$("$litellm_venv/bin/python" -c 'import importlib.metadata as m; print(m.version("litellm"))')
    log "LiteLLM $litellm_version ready"
fi

# target name -> "URL MODEL"; bench/report.py prints every target's ratios against `direct`.
target_spec() {
    case $1 in
        direct) echo "http://127.0.0.1:$fake_port/v1/chat/completions bench-model" ;;
        nginx) echo "http://127.0.0.1:$nginx_port/v1/chat/completions bench-model" ;;
        gateway) echo "http://127.0.0.1:$gateway_port/v1/chat/completions bench-model" ;;
        gateway-mock) echo "http://127.0.0.1:$gateway_port/v1/chat/completions bench-mock" ;;
        gateway-bare) echo "http://127.0.0.1:$bare_port/v1/chat/completions bench-model" ;;
        gateway-policy) echo "http://127.0.0.1:$policy_port/v1/chat/completions bench-model" ;;
        gateway-jwt) echo "http://127.0.0.1:$jwt_port/v1/chat/completions bench-model" ;;
        litellm) echo "http://127.0.0.1:$litellm_port/v1/chat/completions bench-model" ;;
        *) die "unknown target $1" ;;
    esac
}

# The credential each target's clients present.
target_key() {
    if [[ $1 == gateway-jwt ]]; then echo "$jwt_token"; else echo "$key"; fi
}

# run_wrk OUT MODE TARGET CONNECTIONS DURATION
run_wrk() {
    local out=$1 mode=$2 target=$3 connections=$4 time=$5 url model threads
    read -r url model <<<"$(target_spec "$target")"
    threads=$((connections < 2 ? connections : 2))
    BENCH_MODEL=$model BENCH_KEY=$(target_key "$target") BENCH_STREAM=$([[ $mode == sse ]] && echo 1 || echo 0) \
        wrk --latency -t "$threads" -c "$connections" -d "$time" --timeout 10s -s bench/chat.lua "$url" >"$out" 2>&1 \
        || { cat "$out" >&2; die "wrk failed for $mode $target c=$connections"; }
}

# A request and a stream through each target first: a broken setup fails here, not after minutes of
# load. The stream must end with its usage chunk and [DONE], as chat.lua asks for.
for target in $targets; do
    read -r url model <<<"$(target_spec "$target")"
    curl -fsS --max-time 10 -o /dev/null -D "$work/headers-$target.txt" -H "Authorization: Bearer $(target_key "$target")" \
        -H 'Content-Type: application/json' \
        -d "{\"model\":\"$model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" "$url" \
        || die "a request to $target ($url) failed"
    # "Everything on": the gateway's answer must show the bench tenant's rate limits.
    if [[ $target == gateway* ]] && ! grep -qi '^x-ratelimit-limit-requests:' "$work/headers-$target.txt"; then
        die "the gateway sent no x-ratelimit-* headers: the bench tenant's rate limits are off (bench/config/bench.yaml)"
    fi
    stream=$(curl -fsSN --max-time 10 -H "Authorization: Bearer $(target_key "$target")" -H 'Content-Type: application/json' \
        -d "{\"model\":\"$model\",\"stream\":true,\"stream_options\":{\"include_usage\":true},\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}" \
        "$url") || die "a stream from $target ($url) failed"
    [[ $stream == *'"usage":'*'data: [DONE]'* ]] || die "the stream from $target has no usage chunk or no [DONE]: $stream"
done

log "warming up"
for target in $targets; do
    run_wrk "$work/warmup-$target.txt" json "$target" 8 2s
done

# The process serving a gateway target, for its CPU time.
target_pid() {
    case $1 in
        gateway-bare) echo "$bare_pid" ;;
        gateway-policy) echo "$policy_pid" ;;
        gateway-jwt) echo "$jwt_pid" ;;
        *) echo "$gateway_pid" ;;
    esac
}

# CPU seconds (utime + stime) a process has used so far, for CPU time per request.
cpu_seconds() {
    python3 -c 'import os, sys; f = open(f"/proc/{sys.argv[1]}/stat").read().rsplit(")", 1)[1].split(); print((int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK"))' "$1"
}

mkdir -p "$work/results" "$work/cpu"
runs=0
for mode in $modes; do for target in $targets; do for c in $concurrency; do runs=$((runs + 1)); done; done; done
log "$runs runs of $duration each"
for mode in $modes; do
    for target in $targets; do
        for c in $concurrency; do
            log "$mode $target c=$c"
            if [[ -n $profile && $target == gateway* ]]; then
                perf record -q -e cpu-clock -F 199 --call-graph dwarf,16384 -p "$(target_pid "$target")" \
                    -o "$work/perf-$mode-$target-c$c.data" >/dev/null 2>&1 &
                perf_pid=$!
            fi
            [[ $target == gateway* ]] && cpu_before=$(cpu_seconds "$(target_pid "$target")")
            run_wrk "$work/results/$mode,$target,$c.txt" "$mode" "$target" "$c" "$duration"
            [[ $target == gateway* ]] && echo "$cpu_before $(cpu_seconds "$(target_pid "$target")")" >"$work/cpu/$mode,$target,$c.txt"
            if [[ -n $profile && $target == gateway* ]]; then
                kill -INT "$perf_pid"
                wait "$perf_pid" || true
            fi
        done
    done
done

# Memory at the end of the load: peak (VmHWM) and current RSS of each server's process tree.
procs=("fake-upstream=${pids[0]}" "gateway=$gateway_pid" "gateway-bare=$bare_pid" "otelcol=$(cat "$work/otelcol/otelcol.pid")")
has_target nginx && procs+=("nginx=$nginx_pid")
[[ -n $policy_pid ]] && procs+=("gateway-policy=$policy_pid")
[[ -n $jwt_pid ]] && procs+=("gateway-jwt=$jwt_pid")
[[ -n $litellm_pid ]] && procs+=("litellm=$litellm_pid")
python3 bench/rss.py "${procs[@]}" >"$work/rss.tsv"

# Stop the gateway gracefully (flushes the ledger) to report how many rows the load left.
kill -TERM "$gateway_pid"
wait "$gateway_pid" || log "the gateway exited with $? after SIGTERM"
if [[ -n $profile ]]; then
    log "drawing flamegraphs"
    for data in "$work"/perf-*.data; do
        perf script -i "$data" 2>/dev/null | "$inferno/inferno-collapse-perf" >"${data%.data}.folded"
        "$inferno/inferno-flamegraph" --title "$(basename "${data%.data}")" <"${data%.data}.folded" >"${data%.data}.svg"
        log "flamegraph: ${data%.data}.svg"
    done
fi
# Start-up as a newcomer meets it: the gateway on config/samples, time to ready and RSS when idle.
samples_port=$(free_port)
started_ns=$(date +%s%N)
"$bin/switchboard-gateway" --config-dir config/samples --listen "127.0.0.1:$samples_port" --admin-listen 127.0.0.1:0 \
    --database-url "sqlite://$work/samples.db?mode=rwc" --admin-token sk-switchboard-bench-admin \
    >"$work/gateway-samples.log" 2>&1 &
samples_pid=$!
pids+=("$samples_pid")
wait_ok "http://127.0.0.1:$samples_port/readyz" "$samples_pid" gateway-samples
ready_ms=$((($(date +%s%N) - started_ns) / 1000000))
sleep 2
echo "$ready_ms $(awk '/^VmRSS:/ { print $2 }' "/proc/$samples_pid/status")" >"$work/startup.txt"

python3 bench/report.py "$work/results" --cpu "$work/cpu" --startup "$work/startup.txt" --ledger "$work/ledger.db" --rss "$work/rss.tsv" --duration "$duration" \
    ${litellm_version:+--litellm-version "$litellm_version"}
