#!/usr/bin/env bash
# Builds a Go tool the tests need from the Go module proxy, once, and prints its path.
#
#   scripts/go-tool.sh NAME MODULE_DIR PACKAGE [GO_BUILD_ARGS...]
#
# The binary is ${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}/NAME, outside the clone and
# kept between runs; it is rebuilt only when it is missing or what determines it changed (the
# module's go.mod, go.sum and sources in MODULE_DIR, the package, the build arguments, the Go
# version). One build at a time per tool (parallel CI jobs, two checkouts). Parallelism of
# `go build -p`: SWITCHBOARD_GO_BUILD_P (default 2).
set -euo pipefail

name=${1:?usage: $0 NAME MODULE_DIR PACKAGE [GO_BUILD_ARGS...]}
mod_dir=$(cd "${2:?module dir}" && pwd)
package=${3:?package}
shift 3
tools=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}
bin=$tools/$name

log() { printf '[go-tool %s] %s\n' "$name" "$*" >&2; }
command -v go >/dev/null || { log "error: go is required to build $name"; exit 1; }

mkdir -p "$tools"
exec 9>"$tools/.$name.lock"
flock 9
want=$({
    cat "$mod_dir/go.mod" "$mod_dir/go.sum"
    find "$mod_dir" -maxdepth 1 -name '*.go' -print0 | sort -z | xargs -0r cat
    echo "$package $*"
    go env GOVERSION GOOS GOARCH CGO_ENABLED
} | sha256sum | cut -d' ' -f1)
have=""
[[ -f $tools/.$name.build-hash ]] && have=$(<"$tools/.$name.build-hash")
if [[ ! -x $bin || $want != "$have" ]]; then
    rm -f "$tools/.$name.build-hash"
    start=$SECONDS
    log "building $bin from $mod_dir ..."
    (cd "$mod_dir" && go build -mod=readonly -p "${SWITCHBOARD_GO_BUILD_P:-2}" -trimpath -ldflags '-s -w' \
        "$@" -o "$bin.tmp" "$package") >&2
    mv -f "$bin.tmp" "$bin"
    echo "$want" >"$tools/.$name.build-hash"
    log "built in $((SECONDS - start))s"
fi
echo "$bin"
