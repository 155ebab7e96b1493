#!/usr/bin/env bash
# The test run behind `make test` and `make sdk-test`.
#
#   scripts/test.sh all [PYTEST_ARGS...]   cargo test --workspace (every test binary, failing or not), the MCP conformance suite
#                                          (scripts/mcp-conformance.sh), the resilience suite
#                                          (tests/resilience/run.py), schemathesis against the OpenAPI
#                                          document (scripts/schemathesis.sh), then the SDK tests
#   scripts/test.sh sdk [PYTEST_ARGS...]   the SDK tests only
#
# Starts a throwaway PostgreSQL (scripts/postgres.sh) and Redis (scripts/redis.sh) in temporary
# directories, exports their URLs as SWITCHBOARD_TEST_POSTGRES_URL and SWITCHBOARD_TEST_REDIS_URL for
# the cargo and pytest tests, and stops them on exit, failure included.
# Every suite runs even if an earlier one fails; the exit code is non-zero if any did.
set -euo pipefail

mode=${1:-all}
shift || true
case "$mode" in all | sdk) ;; *) echo "usage: $0 all|sdk [PYTEST_ARGS...]" >&2; exit 2 ;; esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
cargo=${CARGO:-cargo}

pgdir=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-pg.XXXXXX")
redisdir=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-redis.XXXXXX")
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    "$root/scripts/postgres.sh" stop "$pgdir" >/dev/null 2>&1 || true
    "$root/scripts/redis.sh" stop "$redisdir" >/dev/null 2>&1 || true
    rm -rf "$pgdir" "$redisdir"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A fresh machine gets PostgreSQL, Redis and the rest here, as in CI: `make test` needs no other step.
"$root/scripts/system-packages.sh" >&2
venv=$("$root/scripts/venv.sh")
url=$("$root/scripts/postgres.sh" start "$pgdir" | sed -n 's/^DATABASE_URL=//p')
[[ -n "$url" ]] || { echo "test.sh: PostgreSQL did not start" >&2; exit 1; }
export SWITCHBOARD_TEST_POSTGRES_URL=$url
echo "test.sh: PostgreSQL for tests at $url"
redis_url=$("$root/scripts/redis.sh" start "$redisdir" | sed -n 's/^REDIS_URL=//p')
[[ -n "$redis_url" ]] || { echo "test.sh: Redis did not start" >&2; exit 1; }
export SWITCHBOARD_TEST_REDIS_URL=$redis_url
echo "test.sh: Redis for tests at $redis_url"

# The console's browser tests need axe-core and the committed bundle to be current (the gateway
# embeds it): the console's pinned packages, installed once, and the same check as `make lint`.
"$root/scripts/console.sh" check
# The SDK tests run the binaries; build them first (they find them in $CARGO_TARGET_DIR/debug).
"$cargo" build --workspace --bins
# The tracing tests export to a real OpenTelemetry Collector, built from the Go module proxy once.
"$root/scripts/otelcol.sh" build
# The identity tests sign in with a real OpenID Connect provider (Ory Hydra), built the same way.
"$root/scripts/hydra.sh" >/dev/null

status=0
if [[ $mode == all ]]; then
    "$cargo" test --workspace --no-fail-fast || status=$?
    "$root/scripts/mcp-conformance.sh" || status=$?
    "$venv/bin/python" "$root/tests/resilience/run.py" || status=$?
    # On PostgreSQL, which refuses what SQLite stores (NUL in text).
    SCHEMATHESIS_DATABASE_URL=$url "$root/scripts/schemathesis.sh" || status=$?
fi
"$venv/bin/python" -m pytest tests/sdk "$@" || status=$?
exit "$status"
