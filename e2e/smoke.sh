#!/usr/bin/env bash
# Smoke test of the test control plane and Switchboard's CRDs against a real kube-apiserver + etcd:
# build (if needed), start, install the CRDs, apply config/samples, check that invalid resources are
# rejected by the apiserver with a clear message, check RBAC with a ServiceAccount token, stop.
#
#   e2e/smoke.sh            uses a fresh temporary directory, removed on success
#   E2E_DIR=/path e2e/smoke.sh   keeps the control plane's files (certs, logs, kubeconfig) there
#   E2E_KEEP=1 e2e/smoke.sh      leave the control plane running at the end (stop it with
#                                e2e/controlplane.sh stop DIR)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
CP=$HERE/controlplane.sh
CRDS=$ROOT/charts/switchboard/templates/crds
SAMPLES=$ROOT/config/samples

step() { printf '\n=== %s\n' "$*"; }
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  FAILED=1
}
FAILED=0

"$CP" build

DIR=${E2E_DIR:-$(mktemp -d /tmp/switchboard-e2e.XXXXXX)}
cleanup() {
  local rc=$?
  if [[ ${E2E_KEEP:-0} == 1 ]]; then
    echo "control plane left running: source $DIR/env; stop with: $CP stop $DIR"
    return
  fi
  "$CP" stop "$DIR" || true
  if [[ $rc != 0 || $FAILED != 0 ]]; then
    echo "logs kept in $DIR (etcd.log, kube-apiserver.log)" >&2
  elif [[ -z ${E2E_DIR:-} ]]; then
    rm -rf "$DIR"
  fi
}
trap cleanup EXIT

step "start control plane in $DIR"
"$CP" start "$DIR"
# shellcheck source=/dev/null
source "$DIR/env"
kubectl version
kubectl get --raw /readyz; echo

step "install CRDs"
kubectl apply -f "$CRDS"
kubectl wait --for=condition=Established --timeout=60s \
  crd/tenants.switchboard.dev crd/personas.switchboard.dev \
  crd/providerroutes.switchboard.dev crd/budgets.switchboard.dev

step "apply samples"
kubectl apply -f "$SAMPLES"
kubectl get tenants,personas,providerroutes,budgets

step "invalid resources are rejected"
# expect_rejected NAME EXPECTED_SUBSTRING (manifest on stdin): the apiserver must refuse the object
# and its message must contain EXPECTED_SUBSTRING.
expect_rejected() {
  local name=$1 want=$2 out
  if out=$(kubectl create -f - 2>&1); then
    fail "$name: accepted, expected rejection ($out)"
    kubectl delete -f - <<<"$out" >/dev/null 2>&1 || true
    return
  fi
  printf -- '--- %s\n%s\n' "$name" "$out"
  if [[ $out != *"$want"* ]]; then
    fail "$name: rejected, but the message does not contain: $want"
  fi
}

expect_rejected "Budget with negative limitUsd" 'spec.limitUsd' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: bad-negative}
spec:
  scope: {kind: Tenant, tenant: demo}
  limitUsd: "-5"
  period: Monthly
EOF

expect_rejected "Budget with zero limitUsd" 'limitUsd must be greater than zero' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: bad-zero}
spec:
  scope: {kind: Tenant, tenant: demo}
  limitUsd: "0.00"
  period: Monthly
EOF

expect_rejected "Budget with scope kind Persona and no persona" \
  'scope.persona is required when kind is Persona' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: bad-persona-scope}
spec:
  scope: {kind: Persona, tenant: demo}
  limitUsd: "5"
  period: Monthly
EOF

expect_rejected "Budget with an unknown period" 'spec.period: Unsupported value: "Yearly"' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {name: bad-period}
spec:
  scope: {kind: Tenant, tenant: demo}
  limitUsd: "5"
  period: Yearly
EOF

expect_rejected "Persona without systemPrompt" 'spec.systemPrompt: Required value' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: Persona
metadata: {name: bad-no-prompt}
spec:
  tenant: demo
  displayName: Nobody
  model: demo-echo
EOF

expect_rejected "ProviderRoute with duplicate backend names" 'backend names must be unique' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: bad-dup-backends}
spec:
  models:
    - name: m
      pricing: {inputPerMillion: "1", outputPerMillion: "1"}
  backends:
    - {name: a, provider: mock}
    - {name: a, provider: mock}
EOF

expect_rejected "ProviderRoute openai backend without baseUrl" 'baseUrl is required unless provider is mock' <<'EOF'
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: bad-no-baseurl}
spec:
  models:
    - name: m
      pricing: {inputPerMillion: "1", outputPerMillion: "1"}
  backends:
    - {name: a, provider: openai}
EOF

step "RBAC: a ServiceAccount token is authenticated and authorized by RBAC, not as admin"
kubectl create serviceaccount smoke
"$CP" kubeconfig-sa "$DIR" default smoke "$DIR/kubeconfig-smoke"
kubectl --kubeconfig "$DIR/kubeconfig-smoke" auth whoami
if out=$(kubectl --kubeconfig "$DIR/kubeconfig-smoke" get tenants 2>&1); then
  fail "ServiceAccount without RBAC could list tenants: $out"
else
  echo "without a Role: $out"
fi
kubectl create role tenant-reader --verb=get,list,watch --resource=tenants.switchboard.dev
kubectl create rolebinding smoke-tenant-reader --role=tenant-reader --serviceaccount=default:smoke
kubectl --kubeconfig "$DIR/kubeconfig-smoke" get tenants ||
  fail "ServiceAccount with a Role could not list tenants"
if kubectl --kubeconfig "$DIR/kubeconfig-smoke" auth can-i delete tenants >/dev/null 2>&1; then
  fail "ServiceAccount may delete tenants without a grant"
else
  echo "can-i delete tenants: no (as expected)"
fi

step "stop"
if [[ $FAILED != 0 ]]; then
  echo "SMOKE TEST FAILED"
  exit 1
fi
echo "SMOKE TEST PASSED"
