#!/usr/bin/env bash
# Installs the Debian packages the tests need, if any is missing: PostgreSQL and Redis (started as
# throwaway servers by scripts/postgres.sh and scripts/redis.sh), wrk and nginx (make bench; nginx also ends
# TLS in the SDK proxy tests), tinyproxy (the SDK proxy tests' HTTP proxy), curl, npm (the MCP conformance
# suite's Node 22 comes from npm; the console's TypeScript build), chromium (the console's browser tests,
# driven by Playwright), openssl (e2e and SDK test certificates) and python3-venv.
#
#   scripts/system-packages.sh        install what is missing (apt-get, as root or through sudo)
#
# Called by `make test` (scripts/test.sh) and by .ci/run, so a fresh Debian machine needs no other
# step. Checks first: a machine that has everything goes on at once, without root.
set -euo pipefail

missing=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
# nginx-light: the bare proxy hop `make bench` measures the gateway against, and the TLS terminator in
# front of the fake upstream in tests/sdk/test_upstream_proxy.py (neither is started here).
[[ -x /usr/sbin/nginx ]] || command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
# tinyproxy-bin: the HTTP proxy (forward and CONNECT) tests/sdk/test_upstream_proxy.py starts. The binary
# alone: the `tinyproxy` package adds a system service on port 8888 that nothing here wants.
[[ -x /usr/bin/tinyproxy ]] || command -v tinyproxy >/dev/null 2>&1 || missing+=(tinyproxy-bin)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v npm >/dev/null 2>&1 || missing+=(npm)
# chromium: Debian's, for tests/sdk/test_console.py (Playwright drives it; its own browsers are not downloaded).
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# Debian's own python3 needs python3-venv for `python3 -m venv`; pyenv/other builds bring ensurepip.
python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
if [[ ${#missing[@]} -eq 0 ]]; then
    echo "system packages: all present"
    exit 0
fi

as_root() {
    if [[ $(id -u) -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "system-packages.sh: ${missing[*]} missing and neither root nor sudo to install them" >&2
        exit 1
    fi
}

command -v apt-get >/dev/null 2>&1 || {
    echo "system-packages.sh: ${missing[*]} missing; install them with your package manager" >&2
    exit 1
}
# Debian starts a freshly installed nginx as a service on port 80; the bench runs its own, so that
# start is refused (policy-rc.d exit 101) unless the machine already has a policy.
policy=/usr/sbin/policy-rc.d
if [[ " ${missing[*]} " == *" nginx-light "* && ! -e $policy ]]; then
    as_root sh -c "printf '#!/bin/sh\\nexit 101\\n' >$policy && chmod 755 $policy"
    trap 'as_root rm -f "$policy"' EXIT
fi
echo "system packages: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
as_root apt-get update -q
as_root apt-get install -y -q --no-install-recommends "${missing[@]}"
