#!/usr/bin/env bash
# The run behind `make e2e`: end-to-end tests against a real kube-apiserver + etcd (e2e/tests).
#
#   scripts/e2e.sh [PYTEST_ARGS...]        e.g. scripts/e2e.sh -k restart -x
#
# 1. builds the cargo binaries (switchboard-operator, switchboard-gateway, ...) and the control plane
#    binaries (e2e/controlplane.sh build: cached in ~/.cache/switchboard/e2e-bin, ~7 min the first time),
# 2. ensures the Python venv with the real OpenAI SDK and pytest (scripts/venv.sh), finds helm for
#    the chart RBAC test (installs it from the Go module proxy if it is nowhere) and builds gitops-diff,
#    Argo CD's diff for test_gitops.py (e2e/gitops-diff/build.sh: cached in ~/.cache/switchboard/tools)
#    the OpenTelemetry Collector for test_operator_traces.py (scripts/otelcol.sh, cached there too)
#    and Ory Hydra for test_sign_in_rbac.py (scripts/hydra.sh, likewise),
# 3. starts a control plane in a fresh directory (e2e/controlplane.sh start DIR),
# 4. runs pytest on e2e/tests, bounded by SWITCHBOARD_E2E_TIMEOUT seconds,
# 5. always (success, failure, timeout, Ctrl-C) stops what it started: the operator and gateway
#    processes the tests recorded in DIR/pids (by PID, only if the PID still runs that binary), then
#    the control plane (controlplane.sh stop DIR). DIR is removed on success and kept on failure
#    (process logs in DIR/logs, kube-apiserver.log, etcd.log).
#
# Environment:
#   SWITCHBOARD_E2E_TIMEOUT   bound of the pytest run, seconds (default 600)
#   SWITCHBOARD_E2E_KEEP=1    keep DIR even on success
#   SWITCHBOARD_E2E_HELM      helm binary to use
#   CARGO_TARGET_DIR          cargo output (default ~/.cache/switchboard/target)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}
cargo=${CARGO:-cargo}
cp=$root/e2e/controlplane.sh
timeout_s=${SWITCHBOARD_E2E_TIMEOUT:-600}
# The helm release scripts/chart-lint.sh pins; used only if no helm is installed at all.
helm_version=v3.22.0

start=$SECONDS
log() { printf '[e2e %4ss] %s\n' "$((SECONDS - start))" "$*" >&2; }

dir=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
stop_recorded_processes() {
    local f pid exe pids=()
    [[ -d $dir/pids ]] || return 0
    for f in "$dir"/pids/*; do
        [[ -f $f ]] || continue
        read -r pid exe <"$f" || true
        if [[ $pid =~ ^[0-9]+$ ]] && [[ $(readlink -f "/proc/$pid/exe" 2>/dev/null) == "$(readlink -f "$exe")" ]]; then
            log "stopping leftover ${f##*/} (pid $pid)"
            kill -TERM "$pid" 2>/dev/null || true
            pids+=("$pid")
        fi
        rm -f "$f"
    done
    local deadline=$((SECONDS + 15))
    for pid in "${pids[@]}"; do
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "pid $pid still running, SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
}

test_pid=""
# shellcheck disable=SC2317 # invoked by the EXIT trap
cleanup() {
    local status=$?
    if [[ -n $test_pid ]] && kill -0 "$test_pid" 2>/dev/null; then
        # Interrupted: `timeout` passes the signal on to pytest and its process group.
        log "stopping pytest"
        kill -TERM "$test_pid" 2>/dev/null || true
        local deadline=$((SECONDS + 30))
        while kill -0 "$test_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        kill -KILL "$test_pid" 2>/dev/null || true
    fi
    [[ -n $dir ]] || return 0
    stop_recorded_processes
    "$cp" stop "$dir" >/dev/null 2>&1 || "$cp" stop "$dir" || true
    if [[ $status == 0 && ${SWITCHBOARD_E2E_KEEP:-0} != 1 ]]; then
        rm -rf "$dir"
    else
        # etcd's data is of no use without etcd; the logs are what a failure needs.
        rm -rf "$dir/etcd"
        log "kept $dir (logs/: operator and gateway logs per test module; kube-apiserver.log, etcd.log)"
    fi
    log "done, exit $status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log "building the cargo binaries"
"$cargo" build --workspace --bins

log "building the control plane binaries (cached)"
"$cp" build

venv=$("$root/scripts/venv.sh")

find_helm() {
    local tools=${SWITCHBOARD_TOOLS:-$HOME/.cache/switchboard/tools} candidate
    if [[ -n ${SWITCHBOARD_E2E_HELM:-} ]]; then echo "$SWITCHBOARD_E2E_HELM"; return; fi
    for candidate in "$tools/helm-$helm_version/helm" "$HOME/.cache/switchboard/e2e-tools/helm-$helm_version/helm"; do
        if [[ -x $candidate ]]; then echo "$candidate"; return; fi
    done
    command -v helm 2>/dev/null || true
}
helm=$(find_helm)
if [[ -z $helm ]]; then
    # Not in scripts/chart-lint.sh's folder: that script stamps versions into its build and must not
    # find this plain one. The test passes --kube-version, so the stamps do not matter here.
    log "installing helm $helm_version (go install) into ~/.cache/switchboard/e2e-tools"
    command -v go >/dev/null || { log "helm is missing and go is not installed"; exit 1; }
    gobin=$HOME/.cache/switchboard/e2e-tools/helm-$helm_version
    GOBIN=$gobin.tmp CGO_ENABLED=0 go install -trimpath "helm.sh/helm/v3/cmd/helm@$helm_version"
    rm -rf "$gobin" && mv "$gobin.tmp" "$gobin"
    helm=$gobin/helm
fi
export SWITCHBOARD_E2E_HELM=$helm
log "helm: $helm"

log "building gitops-diff (cached)"
SWITCHBOARD_E2E_GITOPS_DIFF=$("$root/e2e/gitops-diff/build.sh")
export SWITCHBOARD_E2E_GITOPS_DIFF
log "gitops-diff: $SWITCHBOARD_E2E_GITOPS_DIFF"

log "building the OpenTelemetry Collector (cached)"
"$root/scripts/otelcol.sh" build
"$root/scripts/hydra.sh" >/dev/null

dir=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-e2e.XXXXXX")
log "starting the control plane in $dir"
# In its own session: a terminal's Ctrl-C must not kill etcd and kube-apiserver before the
# operator and gateway had a chance to stop; cleanup stops them last, by PID.
setsid --wait "$cp" start "$dir"
export SWITCHBOARD_E2E_DIR=$dir

log "pytest e2e/tests (bounded to ${timeout_s}s)"
# In the background, and waited for: `wait` returns at once on Ctrl-C/SIGTERM so the traps run
# (`timeout` puts pytest in its own process group, which a terminal's Ctrl-C does not reach).
timeout --signal=TERM --kill-after=20 "$timeout_s" \
    "$venv/bin/python" -m pytest -c "$root/e2e/tests/pytest.ini" --rootdir "$root/e2e/tests" "$root/e2e/tests" "$@" &
test_pid=$!
rc=0
wait "$test_pid" || rc=$?
test_pid=""
if [[ $rc == 124 || $rc == 137 ]]; then
    log "pytest did not finish within ${timeout_s}s (SWITCHBOARD_E2E_TIMEOUT)"
fi
exit "$rc"
