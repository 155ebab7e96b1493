#!/usr/bin/env bash
# Fuzzes the gateway's HTTP API from its OpenAPI document (docs/openapi.yaml) with Schemathesis
# (pinned in tests/schemathesis/requirements.txt): no answer may be a 5xx, and every answer must
# match the document (status, content type, headers, body schema; Anthropic and OpenAI error
# shapes; each Server-Sent Event of a stream).
#
#   scripts/schemathesis.sh
#
# Builds nothing: it runs $CARGO_TARGET_DIR/debug/switchboard-gateway (cargo build -p
# switchboard-gateway), on a free loopback port with tests/schemathesis/config (a tenant without
# limits, the mock-served `demo-echo` model, the persona `ada`), an admin token and a throwaway
# SQLite ledger. The document is validated against the OpenAPI 3.1 schema first. Bounded: at most
# SCHEMATHESIS_MAX_EXAMPLES cases per operation and phase (default 100) and SCHEMATHESIS_TIMEOUT
# seconds for the fuzzing (default 170); about 25 s on 2 cores. Exit code: non-zero on any failure.
#
# Installs, once, outside the clone (skipped while the requirements are unchanged): a venv at
# ${SWITCHBOARD_SCHEMATHESIS_VENV:-~/.cache/switchboard/schemathesis-venv}. Needs python3 (with
# venv) and curl.
#
# SCHEMATHESIS_DATABASE_URL=postgres://... runs the gateway on that database instead (for example
# one from scripts/postgres.sh); its persona memories and ledger rows are left there.
# SCHEMATHESIS_RESULTS=DIR writes the JUnit report, the NDJSON event log, a VCR cassette of every
# request and the gateway's log to DIR. SCHEMATHESIS_SEED=N repeats a run's generated cases.
# Extra arguments go to `schemathesis run` (for example --include-path /v1/messages).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
venv=${SWITCHBOARD_SCHEMATHESIS_VENV:-$HOME/.cache/switchboard/schemathesis-venv}
requirements=$root/tests/schemathesis/requirements.txt
python=${PYTHON:-python3}
gateway=$CARGO_TARGET_DIR/debug/switchboard-gateway
document=$root/docs/openapi.yaml
max_examples=${SCHEMATHESIS_MAX_EXAMPLES:-100}
run_timeout_s=${SCHEMATHESIS_TIMEOUT:-170}
# What every answer is checked for; the other checks of `schemathesis run --help` judge semantics
# this API does not have (a DELETE that leaves an empty export, fields passed on unvalidated).
checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,missing_required_header,unsupported_method,ignored_auth
export SWITCHBOARD_SCHEMATHESIS_KEY=sk-switchboard-schemathesis
export SWITCHBOARD_SCHEMATHESIS_ADMIN_TOKEN=sk-switchboard-schemathesis-admin

say() { echo "schemathesis: $*"; }
die() { echo "schemathesis: $*" >&2; exit 1; }

[[ -x $gateway ]] || die "$gateway not found: build it first (cargo build -p switchboard-gateway --bin switchboard-gateway)"
command -v "$python" >/dev/null || die "$python is needed"
command -v curl >/dev/null || die "curl is needed"

want=$( (cat "$requirements"; "$python" --version) | sha256sum | cut -d' ' -f1)
stamp=$venv/.switchboard-requirements.sha256
if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    say "venv present in $venv"
else
    say "installing $requirements into $venv"
    if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
        rm -rf "$venv"
        mkdir -p "$(dirname "$venv")"
        "$python" -m venv "$venv" || die "'$python -m venv' failed (on Debian's own python3: apt-get install python3-venv)"
    fi
    timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
    timeout 600 "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$stamp"
fi
say "$("$venv/bin/schemathesis" --version)"

say "validating $document (OpenAPI 3.1)"
"$venv/bin/openapi-spec-validator" "$document" >/dev/null || die "docs/openapi.yaml is not a valid OpenAPI document"

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-schemathesis.XXXXXX")
results=${SCHEMATHESIS_RESULTS:-}
reports=()
if [[ -n $results ]]; then
    mkdir -p "$results"
    results=$(cd "$results" && pwd)
    reports=(--report "junit,ndjson,vcr" --report-dir "$results")
fi
gateway_pid=
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    if [[ -n $gateway_pid ]]; then
        kill "$gateway_pid" 2>/dev/null || true
        wait "$gateway_pid" 2>/dev/null || true
    fi
    if [[ -n $results ]]; then
        cp "$work/gateway.log" "$results/" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/common.sh
source "$root/scripts/common.sh"

database_url=${SCHEMATHESIS_DATABASE_URL:-sqlite://$work/ledger.db?mode=rwc}

port=$(free_port)
admin_port=$(free_port)
base=http://127.0.0.1:$port
admin_base=http://127.0.0.1:$admin_port
say "starting the gateway on 127.0.0.1:$port (admin $admin_port), database ${database_url%%://*} (log: $work/gateway.log)"
# A copy of the config: the admin API's changes (new tenants and keys) are written to the folder.
cp -r "$root/tests/schemathesis/config" "$work/config"
RUST_LOG=${RUST_LOG:-warn} "$gateway" --config-dir "$work/config" --listen "127.0.0.1:$port" \
    --admin-listen "127.0.0.1:$admin_port" \
    --database-url "$database_url" --admin-token "$SWITCHBOARD_SCHEMATHESIS_ADMIN_TOKEN" \
    >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for "$base/readyz" "$gateway_pid" || {
    tail -n 40 "$work/gateway.log" >&2
    die "the gateway did not get ready"
}

seed=()
if [[ -n ${SCHEMATHESIS_SEED:-} ]]; then
    seed=(--seed "$SCHEMATHESIS_SEED")
fi
say "fuzzing from docs/openapi.yaml: at most $max_examples cases per operation and phase, ${run_timeout_s}s in all"
started=$SECONDS
code=0
# The admin API (and sign-in) is served on its own listener: its paths are fuzzed there, the others on --listen.
for run in "tenant $base --exclude-path-regex" "admin $admin_base --include-path-regex"; do
    read -r name url filter <<<"$run"
    say "$name API at $url"
    run_reports=("${reports[@]}")
    [[ ${#reports[@]} -gt 0 ]] && run_reports=(--report "junit,ndjson,vcr" --report-dir "$results/$name")
    left=$((run_timeout_s - (SECONDS - started)))
    set +e
    # From $work, so that nothing (hypothesis' database, reports) lands in the clone.
    (cd "$work" && timeout --kill-after=10 "$((left > 1 ? left : 1))" "$venv/bin/schemathesis" \
        --config-file "$root/tests/schemathesis/schemathesis.toml" \
        run "$document" --url "$url" \
        "$filter" '^/(admin|auth)/' \
        --checks "$checks" \
        --phases examples,coverage,fuzzing \
        --max-examples "$max_examples" \
        --generation-database none \
        --no-color \
        "${run_reports[@]}" "${seed[@]}" "$@")
    run_code=$?
    set -e
    [[ $run_code -ne 0 ]] && code=$run_code
done
elapsed=$((SECONDS - started))

if ! kill -0 "$gateway_pid" 2>/dev/null; then
    tail -n 40 "$work/gateway.log" >&2
    say "the gateway died during the run"
    code=1
fi
if grep -q 'panicked' "$work/gateway.log"; then
    grep -m 5 'panicked' "$work/gateway.log" >&2
    say "the gateway panicked during the run"
    code=1
fi
say "schemathesis took ${elapsed}s"
if [[ $code -eq 124 || $code -eq 137 ]]; then
    die "timed out after ${run_timeout_s}s"
fi
if [[ $code -ne 0 ]]; then
    die "FAILED (exit $code)${results:+; reports and the gateway log in $results}"
fi
say "ok: no server error, every answer as documented"
