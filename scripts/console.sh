#!/usr/bin/env bash
# The console (console/, docs/console.md): a TypeScript app bundled by esbuild into console/dist,
# which is committed and embedded in the gateway binary, so that `cargo build` and `make run` need
# no Node.js. This script rebuilds it, or checks that the committed bundle is what the sources
# build to.
#
#   scripts/console.sh build   type-check (tsc) and bundle (esbuild) into console/dist
#   scripts/console.sh check   the same into a temporary folder; fails if console/dist differs
#
# Installs, once per lock file, the pinned packages (npm ci from console/package-lock.json) into
# ~/.cache/switchboard/console-npm, outside the clone, and links console/node_modules to them.
# Needs npm and Node.js 18 or later (Debian's).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mode=${1:-}
case "$mode" in build | check) ;; *) echo "usage: $0 build|check" >&2; exit 2 ;; esac
cache=${SWITCHBOARD_CACHE:-$HOME/.cache/switchboard}/console-npm
console=$root/console

command -v npm >/dev/null || { echo "console.sh: npm is needed (Debian: apt-get install npm)" >&2; exit 1; }
want=$(cat "$console/package.json" "$console/package-lock.json" | sha256sum | cut -d' ' -f1)
stamp=$cache/.switchboard-lock.sha256
if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
    echo "console.sh: installing console/package-lock.json into $cache" >&2
    rm -rf "$cache"
    mkdir -p "$cache"
    cp "$console/package.json" "$console/package-lock.json" "$cache/"
    timeout 600 npm ci --prefix "$cache" --no-audit --no-fund --ignore-scripts --loglevel=error
    echo "$want" >"$stamp"
fi
ln -sfn "$cache/node_modules" "$console/node_modules"

out=$console/dist
if [[ $mode == check ]]; then
    out=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-console.XXXXXX")
    trap 'rm -rf "$out"' EXIT
fi
cd "$console"
node node_modules/typescript/bin/tsc --noEmit
node node_modules/esbuild/bin/esbuild src/main.ts --bundle --minify --format=esm --target=es2022 \
    --legal-comments=none --log-level=warning --outfile="$out/console.js"
cp src/index.html src/console.css "$out/"
cp node_modules/uplot/dist/uPlot.min.css "$out/uplot.css"
if [[ $mode == check ]]; then
    diff -r "$out" "$console/dist" >&2 || {
        echo "console.sh: console/dist is not what console/src builds to: run \`make console\` and commit console/dist" >&2
        exit 1
    }
    echo "console: console/dist is up to date"
fi
