#!/usr/bin/env bash
# Builds gitops-diff (Argo CD's diff as a command: main.go) and prints the binary's path.
#
#   e2e/gitops-diff/build.sh      -> ~/.cache/switchboard/tools/gitops-diff-<hash>/gitops-diff
#
# <hash> covers go.mod, go.sum, the sources, this recipe and the Go version, so any change builds
# anew and an unchanged tree builds nothing; older builds are removed. The build writes only
# outside the clone (the tool folder, Go's module and build caches).
#
# Environment:
#   SWITCHBOARD_TOOLS        tool cache (default ~/.cache/switchboard/tools)
#   SWITCHBOARD_E2E_BUILD_P  `go build -p` (default 2)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tools=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}
log() { printf '[gitops-diff] %s\n' "$*" >&2; }

command -v go >/dev/null || { log "go is not installed"; exit 1; }

build() { # OUT
    (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -p "${SWITCHBOARD_E2E_BUILD_P:-2}" \
        -trimpath -ldflags "-s -w" -o "$1" .)
}

hash=$({
    cat "$here/go.mod" "$here/go.sum" "$here"/*.go
    declare -f build
    go env GOVERSION GOOS GOARCH
} | sha256sum | cut -c1-16)
out=$tools/gitops-diff-$hash

if [[ ! -x $out/gitops-diff ]]; then
    mkdir -p "$out"
    start=$SECONDS
    log "building into $out (first time: a few minutes, Kubernetes modules included)"
    build "$out/.gitops-diff.$$"
    mv -f "$out/.gitops-diff.$$" "$out/gitops-diff"
    log "built in $((SECONDS - start))s"
    for old in "$tools"/gitops-diff-*; do
        [[ $old == "$out" ]] || rm -rf "$old"
    done
fi
echo "$out/gitops-diff"
