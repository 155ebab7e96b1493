#!/usr/bin/env bash
# A real OpenTelemetry Collector on loopback, for the gateway's tracing tests and benchmarks.
#
#   scripts/otelcol.sh build                  build/cache the collector binary (prints nothing)
#   scripts/otelcol.sh path                   build if needed, print the binary's path
#   scripts/otelcol.sh start DIR [file|nop]   start a collector; print OTLP_GRPC=... and OTLP_HTTP=...
#   scripts/otelcol.sh stop DIR               stop exactly the collector `start DIR` started
#
# The binary is built from the Go module proxy by the module in tests/otelcol/ (otlp receiver,
# batch processor, file and nop exporters) and cached in
# ${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}/otelcol; it is rebuilt only when it is
# missing or the module (go.mod, go.sum, sources) or this build recipe changed.
#
# `start DIR` writes DIR/config.yaml and runs the collector with its log in DIR/otelcol.log and its
# PID in DIR/otelcol.pid. It listens for OTLP on two free loopback ports (gRPC and HTTP). With the
# `file` exporter (the default) received data is written as OTLP JSON, one export request per line,
# to DIR/spans.json (traces), DIR/metrics.json and DIR/logs.json, flushed every 100ms; with `nop` it
# is dropped (benchmarks). The collector's own metrics are off (nothing listens on :8888).
# DIR/otelcol.env holds the same OTLP_GRPC=/OTLP_HTTP= lines as stdout.
#
# Environment:
#   SWITCHBOARD_TOOLS                  binary cache directory
#   SWITCHBOARD_OTELCOL_BUILD_P        parallelism of `go build -p` (default: 2)
#   SWITCHBOARD_OTELCOL_START_TIMEOUT  seconds to wait for the collector to be ready (default: 30)
#   SWITCHBOARD_OTELCOL_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default: 10)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOD_DIR=$(cd "$HERE/../tests/otelcol" && pwd)
TOOLS_DIR=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}
BIN=$TOOLS_DIR/otelcol

log() { printf '[otelcol] %s\n' "$*" >&2; }
die() { printf '[otelcol] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# build

cmd_build() {
  CGO_ENABLED=0 SWITCHBOARD_GO_BUILD_P=${SWITCHBOARD_OTELCOL_BUILD_P:-2} "$HERE/go-tool.sh" otelcol "$MOD_DIR" . >/dev/null
}

# ---------------------------------------------------------------------------------------------------
# start / stop

# Prints N distinct free TCP ports on 127.0.0.1 (bound to port 0 by the kernel, then released).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# A process that exited but is not reaped yet (a zombie) is not alive: once `start` has returned,
# the collector's parent is PID 1, which may take a second or two to reap it.
pid_alive() {
  [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null || return 1
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# The PID in DIR/otelcol.pid if that process is still our collector binary (guards against PID
# reuse; a rebuild while it runs leaves its exe link as "PATH (deleted)").
our_pid() { # DIR
  local f=$1/otelcol.pid pid exe
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" || return 1
  exe=$(readlink "/proc/$pid/exe" 2>/dev/null) || return 1
  [[ $exe == "$BIN" || $exe == "$BIN (deleted)" ]] || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

write_config() { # DIR EXPORTER GRPC_PORT HTTP_PORT
  local dir=$1 exporter=$2 grpc=$3 http=$4 traces metrics logs
  if [[ $exporter == nop ]]; then
    traces=nop metrics=nop logs=nop
  else
    traces=file metrics=file/metrics logs=file/logs
  fi
  cat >"$dir/config.yaml" <<EOF
# Written by scripts/otelcol.sh start; exporter: $exporter.
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:$grpc
      http:
        endpoint: 127.0.0.1:$http

exporters:
  # OTLP JSON, one export request per line; rewritten (truncated) on start.
  file:
    path: $dir/spans.json
    format: json
    flush_interval: 100ms
  file/metrics:
    path: $dir/metrics.json
    format: json
    flush_interval: 100ms
  file/logs:
    path: $dir/logs.json
    format: json
    flush_interval: 100ms
  nop:

service:
  telemetry:
    # No internal metrics: nothing binds the default Prometheus endpoint localhost:8888.
    metrics:
      level: none
    logs:
      level: info
  # No processors (the batch processor is built in but unused): data reaches the exporter at once.
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [$traces]
    metrics:
      receivers: [otlp]
      exporters: [$metrics]
    logs:
      receivers: [otlp]
      exporters: [$logs]
EOF
}

# Waits until the collector logged that it is ready and both ports accept connections; fails early
# (2) if it exits. Bounded by SWITCHBOARD_OTELCOL_START_TIMEOUT.
wait_ready() { # PID LOG GRPC_PORT HTTP_PORT
  local pid=$1 logf=$2 grpc=$3 http=$4
  local timeout=${SWITCHBOARD_OTELCOL_START_TIMEOUT:-30} start=$SECONDS
  while ((SECONDS - start < timeout)); do
    if ! pid_alive "$pid"; then
      log "collector (pid $pid) exited during startup; last lines of $logf:"
      tail -n 30 "$logf" >&2 || true
      return 2
    fi
    if grep -q 'Everything is ready' "$logf" 2>/dev/null && port_open "$grpc" && port_open "$http"; then
      log "collector ready after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.1
  done
  log "collector not ready after ${timeout}s; last lines of $logf:"
  tail -n 30 "$logf" >&2 || true
  return 1
}

cmd_start() { # DIR [EXPORTER]
  local dir=${1:?usage: $0 start DIR [file|nop]} exporter=${2:-file}
  [[ $exporter == file || $exporter == nop ]] || die "unknown exporter '$exporter' (file or nop)"
  cmd_build
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if our_pid "$dir" >/dev/null; then
    die "a collector is already running in $dir (run '$0 stop $dir' first)"
  fi
  rm -f "$dir/otelcol.pid" "$dir/otelcol.env" "$dir/spans.json" "$dir/metrics.json" "$dir/logs.json"
  local attempt rc grpc http pid
  # A free port can be taken between probing and binding; retry a few times on startup failure.
  for attempt in 1 2 3; do
    read -r grpc http <<<"$(free_ports 2)"
    write_config "$dir" "$exporter" "$grpc" "$http"
    "$BIN" --config "file:$dir/config.yaml" </dev/null >"$dir/otelcol.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/otelcol.pid"
    rc=0
    wait_ready "$pid" "$dir/otelcol.log" "$grpc" "$http" || rc=$?
    [[ $rc == 0 ]] && break
    cmd_stop "$dir"
    if [[ $rc == 2 && $attempt -lt 3 ]] && grep -qs 'address already in use' "$dir/otelcol.log"; then
      log "port collision, retrying ($attempt/3)"
      continue
    fi
    die "collector failed to start (config $dir/config.yaml, log $dir/otelcol.log)"
  done
  printf 'OTLP_GRPC=http://127.0.0.1:%s\nOTLP_HTTP=http://127.0.0.1:%s\n' "$grpc" "$http" \
    | tee "$dir/otelcol.env"
  log "collector (pid $pid, exporter $exporter) at grpc 127.0.0.1:$grpc, http 127.0.0.1:$http"
}

cmd_stop() { # DIR
  local dir=${1:?usage: $0 stop DIR} pid timeout=${SWITCHBOARD_OTELCOL_STOP_TIMEOUT:-10} start
  [[ -d $dir ]] || return 0
  if pid=$(our_pid "$dir"); then
    kill -TERM "$pid" 2>/dev/null || true
    start=$SECONDS
    while pid_alive "$pid" && ((SECONDS - start < timeout)); do sleep 0.1; done
    if pid_alive "$pid"; then
      log "collector (pid $pid) still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while pid_alive "$pid"; do sleep 0.1; done
    fi
    log "stopped collector (pid $pid)"
  fi
  rm -f "$dir/otelcol.pid"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    build) cmd_build ;;
    path) cmd_build && echo "$BIN" ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    *)
      sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"
