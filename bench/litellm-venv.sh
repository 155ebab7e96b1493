#!/usr/bin/env bash
# Creates the Python venv with LiteLLM's proxy for the `litellm` target of `make bench`; prints its path.
#
#   bench/litellm-venv.sh    install the pinned litellm[proxy] unless the venv already has it
#
# Location: ${SWITCHBOARD_BENCH_VENV:-$HOME/.cache/switchboard/bench-venv} (outside the clone, kept
# between runs, separate from the SDK tests' venv so that LiteLLM's many dependencies stay out of it).
# Idempotent and fast when the pinned version is already installed. The install itself takes a
# minute or two on a fresh machine (it downloads about 150 MB of wheels from PyPI).
set -euo pipefail

# LiteLLM's proxy, pinned. Not 1.107.0 (a compromised release, removed from PyPI).
LITELLM_VERSION=${LITELLM_VERSION:-1.103.5}
venv=${SWITCHBOARD_BENCH_VENV:-$HOME/.cache/switchboard/bench-venv}
python=${PYTHON:-python3}

command -v "$python" >/dev/null 2>&1 || { echo "litellm-venv.sh: $python not found" >&2; exit 1; }

installed() {
    [[ -x "$venv/bin/litellm" ]] \
        && "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("litellm") != sys.argv[1])' \
            "$LITELLM_VERSION" >/dev/null 2>&1
}

if installed; then
    echo "$venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" || {
        echo "litellm-venv.sh: '$python -m venv' failed (on Debian's own python3: apt-get install python3-venv)" >&2
        exit 1
    }
fi
echo "litellm-venv.sh: installing litellm[proxy]==$LITELLM_VERSION into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "litellm[proxy]==$LITELLM_VERSION" >&2
installed || { echo "litellm-venv.sh: litellm $LITELLM_VERSION is not in $venv after the install" >&2; exit 1; }
echo "$venv"
