#!/usr/bin/env bash
# The official OpenAI and Anthropic Node SDKs for tests/sdk/test_node_sdk.py: installs, once per
# lock file, tests/sdk/node/package-lock.json (npm ci) into ~/.cache/switchboard/node-sdk, outside
# the clone, and links tests/sdk/node/node_modules to it. Needs npm and Node.js 18 or later.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}/node-sdk
node=$root/tests/sdk/node

command -v npm >/dev/null || { echo "node-sdk.sh: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
want=$(cat "$node/package.json" "$node/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp=$cache/.switchboard-lock.sha256
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    echo "node-sdk.sh: installing tests/sdk/node/package-lock.json into $cache" >&2
    rm -rf "$cache"
    mkdir -p "$cache"
    cp "$node/package.json" "$node/package-lock.json" "$cache/"
    timeout 600 npm ci --prefix "$cache" --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$want" >"$stamp"
fi
ln -sfn "$cache/node_modules" "$node/node_modules"
