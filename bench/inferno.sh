#!/usr/bin/env bash
# Installs inferno (the Rust port of Brendan Gregg's flamegraph scripts) for `BENCH_PROFILE=1 make
# bench`; prints the directory with its binaries.
#
# Location: ${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}/bin, outside the clone and kept between
# runs. The first install compiles it from crates.io (a minute or two); later calls return at once.
set -euo pipefail

INFERNO_VERSION=${INFERNO_VERSION:-0.12.8}
root=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools}

installed() {
    [[ -x "$root/bin/inferno-flamegraph" ]] \
        && cargo install --list --root "$root" 2>/dev/null | grep -qxF "inferno v$INFERNO_VERSION:"
}

if ! installed; then
    echo "inferno.sh: installing inferno $INFERNO_VERSION into $root" >&2
    cargo install --quiet --locked --root "$root" --version "$INFERNO_VERSION" inferno >&2
    installed || { echo "inferno.sh: inferno $INFERNO_VERSION is not in $root after the install" >&2; exit 1; }
fi
echo "$root/bin"
