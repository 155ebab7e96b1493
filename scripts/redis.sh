#!/usr/bin/env bash
# A throwaway Redis server for tests, in a directory of your choice, on a free loopback port.
#
#   scripts/redis.sh start DIR   start; prints REDIS_URL=... (also in DIR/url); started again in the
#                                same DIR, it takes the same port if it is free
#   scripts/redis.sh stop DIR    stop the server started in DIR (by the PID in DIR/redis.pid)
#   scripts/redis.sh url DIR     print the URL of the running server
#
# Uses the Debian package `redis-server`, run as our own process: never the package's system
# service. No persistence (nothing is written but the log and pidfile), no password, 127.0.0.1
# only: this is a test server, never expose it.
set -euo pipefail

die() { echo "redis.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|url DIR"; }

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
[[ -n "$dir" ]] || usage

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
pidfile="$dir/redis.pid"
log="$dir/redis.log"

pid() { [[ -f "$pidfile" ]] && cat "$pidfile"; }

# Running means: the pidfile's process is alive and is a redis-server.
running() {
    local p
    p=$(pid) || return 1
    [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && grep -q redis-server "/proc/$p/cmdline" 2>/dev/null
}

print_url() {
    [[ -f "$dir/url" ]] || die "no URL recorded in $dir/url"
    echo "REDIS_URL=$(cat "$dir/url")"
}

ping() { redis-cli -h 127.0.0.1 -p "$1" ping 2>/dev/null | grep -q PONG; }

start() {
    command -v redis-server >/dev/null 2>&1 \
        || die "redis-server not found: install it with 'apt-get install redis-server'"
    if running; then
        echo "redis.sh: already running in $dir" >&2
        print_url
        return
    fi
    rm -f "$pidfile"
    local port attempt previous
    # A restart keeps the URL it had (the chaos tests stop and start the server under load).
    previous=$(sed -n 's|.*127.0.0.1:\([0-9]*\)/.*|\1|p' "$dir/url" 2>/dev/null || true)
    for attempt in 1 2 3; do
        port=$(free_port)
        if [[ $attempt -eq 1 && -n "$previous" ]]; then port=$previous; fi
        redis-server --bind 127.0.0.1 --port "$port" --daemonize yes --pidfile "$pidfile" \
            --logfile "$log" --dir "$dir" --save '' --appendonly no >/dev/null || true
        for _ in $(seq 1 50); do
            ping "$port" && break
            sleep 0.1
        done
        if ping "$port"; then
            break
        fi
        port=""
        echo "redis.sh: start attempt $attempt failed; log tail:" >&2
        tail -n 5 "$log" >&2 || true
        if running; then kill "$(pid)"; fi
        rm -f "$pidfile"
    done
    [[ -n "$port" ]] || die "could not start Redis in $dir (see $log)"
    echo "redis://127.0.0.1:$port/" >"$dir/url"
    print_url
}

stop() {
    if ! running; then
        echo "redis.sh: not running in $dir" >&2
        return
    fi
    local p
    p=$(pid)
    # Only the process whose PID redis-server wrote to DIR: never anything else.
    kill "$p"
    for _ in $(seq 1 50); do
        kill -0 "$p" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$p" 2>/dev/null && die "Redis (PID $p) did not stop within 5 s"
    rm -f "$pidfile"
    echo "redis.sh: stopped $dir" >&2
}

case "$cmd" in
    start) start ;;
    stop) stop ;;
    url) running || die "not running in $dir"; print_url ;;
    *) usage ;;
esac
