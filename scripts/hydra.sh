#!/usr/bin/env bash
# Builds Ory Hydra, the real OpenID Connect provider of the identity tests (tests/sdk/test_oidc.py),
# from the Go module proxy (the module in tests/oidc) once, and prints its path. SQLite support is
# compiled in for its in-memory store (`DSN=memory`): cgo, so a C compiler is needed. Cold, the
# build takes about a minute and a half on two cores; later calls return at once.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CGO_ENABLED=1 exec "$here/go-tool.sh" hydra "$here/../tests/oidc" github.com/ory/hydra/v2 \
    -tags sqlite,sqlite_omit_load_extension
