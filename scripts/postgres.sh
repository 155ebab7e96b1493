#!/usr/bin/env bash
# A throwaway PostgreSQL server for tests, in a directory of your choice, on a free loopback port.
#
#   scripts/postgres.sh start DIR   initialise (first time) and start; prints DATABASE_URL=... (also in DIR/url);
#                                   started again in the same DIR, it takes the same port if it is free
#   scripts/postgres.sh stop DIR    stop the server started in DIR (by its PID, via pg_ctl)
#   scripts/postgres.sh url DIR     print the URL of the running server
#
# Uses the Debian package `postgresql` (binaries under /usr/lib/postgresql/*/bin; override with PG_BIN).
# initdb refuses to run as root, so as root the server runs as the `postgres` OS user and DIR is
# chowned to it. Authentication is `trust` on 127.0.0.1 only: this is a test server, never expose it.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

usage() { die "usage: $0 start|stop|url DIR"; }

[[ $# -eq 2 ]] || usage
cmd=$1
dir=$2
[[ -n "$dir" ]] || usage

find_bin() {
    if [[ -n "${PG_BIN:-}" ]]; then
        [[ -x "$PG_BIN/initdb" ]] || die "PG_BIN=$PG_BIN has no initdb"
        echo "$PG_BIN"; return
    fi
    local candidate
    candidate=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n "$candidate" && -x "$candidate/initdb" ]]; then
        echo "$candidate"; return
    fi
    if command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"; return
    fi
    die "PostgreSQL server binaries not found: install them with 'apt-get install postgresql' (or set PG_BIN)"
}

# Runs a command as the server's OS user: `postgres` when we are root, ourselves otherwise.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs the 'postgres' OS user (apt-get install postgresql creates it)"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# A directory given as relative path must still work after we cd nowhere: make it absolute.
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
data="$dir/data"
log="$dir/postgres.log"

running() {
    [[ -f "$data/postmaster.pid" ]] && as_pg "$PG" status -D "$data" >/dev/null 2>&1
}

print_url() {
    [[ -f "$dir/url" ]] || die "no URL recorded in $dir/url"
    echo "DATABASE_URL=$(cat "$dir/url")"
}

start() {
    if running; then
        echo "postgres.sh: already running in $dir" >&2
        print_url
        return
    fi
    if [[ $(id -u) -eq 0 ]]; then
        chown -R postgres: "$dir"
        runuser -u postgres -- test -w "$dir" \
            || die "the postgres OS user cannot write $dir: a parent directory is private to root (mktemp -d makes mode 700 directories: pass the mktemp directory itself, not a subdirectory of it)"
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        as_pg "$BIN/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C.UTF-8 --no-sync \
            >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
        # Speed over durability: the data is thrown away after the tests.
        cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
CONF
    fi
    local port attempt previous
    # A restart keeps the URL it had (the chaos tests stop and start the server under load).
    previous=$(sed -n 's|.*127.0.0.1:\([0-9]*\)/.*|\1|p' "$dir/url" 2>/dev/null || true)
    for attempt in 1 2 3; do
        port=$(free_port)
        if [[ $attempt -eq 1 && -n "$previous" ]]; then port=$previous; fi
        if as_pg "$PG" start -D "$data" -l "$log" -w -t 30 -o "-p $port" >/dev/null 2>&1; then
            break
        fi
        port=""
        echo "postgres.sh: start attempt $attempt failed; log tail:" >&2
        tail -n 5 "$log" >&2 || true
    done
    [[ -n "$port" ]] || die "could not start PostgreSQL in $dir (see $log)"
    local psql=("$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres)
    if ! as_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_roles WHERE rolname = 'switchboard'" | grep -q 1; then
        as_pg "${psql[@]}" -c "CREATE ROLE switchboard LOGIN CREATEDB PASSWORD 'switchboard'"
    fi
    if ! as_pg "${psql[@]}" -tAc "SELECT 1 FROM pg_database WHERE datname = 'switchboard'" | grep -q 1; then
        as_pg "${psql[@]}" -c "CREATE DATABASE switchboard OWNER switchboard"
    fi
    echo "postgres://switchboard:switchboard@127.0.0.1:$port/switchboard" >"$dir/url"
    print_url
}

stop() {
    if ! running; then
        echo "postgres.sh: not running in $dir" >&2
        return
    fi
    # pg_ctl stops the postmaster whose PID is in postmaster.pid: never anything else.
    as_pg "$PG" stop -D "$data" -m fast -w -t 30 >/dev/null \
        || die "pg_ctl stop failed for $dir (see $log)"
    echo "postgres.sh: stopped $dir" >&2
}

BIN=$(find_bin)
PG="$BIN/pg_ctl"

case "$cmd" in
    start) start ;;
    stop) stop ;;
    url) running || die "not running in $dir"; print_url ;;
    *) usage ;;
esac
