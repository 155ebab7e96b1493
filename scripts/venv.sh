#!/usr/bin/env bash
# Creates or updates the Python venv for the SDK tests (tests/sdk) and the e2e harness.
#
#   scripts/venv.sh          ensure the venv matches tests/sdk/requirements.txt; prints its path
#
# Location: ${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv} (outside the clone, kept between runs).
# Fast when nothing changed: a stamp holds the hash of the requirements the venv was built from.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv=${SWITCHBOARD_VENV:-$HOME/.cache/switchboard/venv}
requirements="$root/tests/sdk/requirements.txt"
python=${PYTHON:-python3}
stamp="$venv/.switchboard-requirements.sha256"

command -v "$python" >/dev/null 2>&1 || { echo "venv.sh: $python not found" >&2; exit 1; }
want=$( (cat "$requirements"; "$python" --version) | sha256sum | cut -d' ' -f1)

if [[ -x "$venv/bin/python" && -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
    echo "$venv"
    exit 0
fi

if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c 'import sys' >/dev/null 2>&1; then
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    "$python" -m venv "$venv" || {
        echo "venv.sh: '$python -m venv' failed (on Debian's own python3: apt-get install python3-venv)" >&2
        exit 1
    }
fi
echo "venv.sh: installing $requirements into $venv" >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip >&2
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements" >&2
echo "$want" >"$stamp"
echo "$venv"
