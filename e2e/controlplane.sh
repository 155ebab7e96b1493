#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver) on loopback, without Docker.
#
#   e2e/controlplane.sh build                      build/cache etcd, kube-apiserver, kubectl
#   e2e/controlplane.sh start DIR                  certs, token file, etcd + kube-apiserver, DIR/kubeconfig
#   e2e/controlplane.sh stop DIR                   stop exactly the processes `start DIR` started
#   e2e/controlplane.sh restart-apiserver DIR SECS stop kube-apiserver, wait SECS, start it again on its port
#   e2e/controlplane.sh status DIR                 exit 0 if both processes run and /readyz is ok
#   e2e/controlplane.sh token DIR NS SA            print a ServiceAccount token (TokenRequest API)
#   e2e/controlplane.sh kubeconfig-sa DIR NS SA OUT   write a kubeconfig that authenticates as NS/SA
#   e2e/controlplane.sh kubectl DIR ARGS...        run the built kubectl as the admin of DIR
#   e2e/controlplane.sh bin                        print the directory holding the binaries
#
# Binaries are built from the Go module proxy by the wrapper module in e2e/controlplane/ and cached in
# ${SWITCHBOARD_E2E_BIN:-$HOME/.cache/switchboard/e2e-bin}; they are rebuilt only when a binary is
# missing or the module (go.mod, go.sum, sources) changed. See e2e/README.md.
#
# Environment:
#   SWITCHBOARD_E2E_BIN            binary cache directory
#   SWITCHBOARD_E2E_BUILD_P        parallelism of `go build -p` (default: 2)
#   SWITCHBOARD_E2E_START_TIMEOUT  seconds to wait for etcd, then kube-apiserver, to be ready (default: 90)
#   SWITCHBOARD_E2E_STOP_TIMEOUT   seconds to wait after SIGTERM before SIGKILL (default: 15)
#   SWITCHBOARD_E2E_TOKEN_DURATION duration of minted ServiceAccount tokens (default: 2h)
#   SWITCHBOARD_E2E_APISERVER_ARGS extra kube-apiserver flags (word-split)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MOD_DIR=$HERE/controlplane
BIN_DIR=${SWITCHBOARD_E2E_BIN:-$HOME/.cache/switchboard/e2e-bin}
# The Kubernetes version is the one go.mod requires (e2e/controlplane/update.sh changes it).
K8S_VERSION=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v1\./ {print $2; exit}' "$MOD_DIR/go.mod")
BINARIES=(kube-apiserver etcd kubectl)

log() { printf '[controlplane] %s\n' "$*" >&2; }
die() { printf '[controlplane] error: %s\n' "$*" >&2; exit 1; }

# ---------------------------------------------------------------------------------------------------
# build

# Hash of everything that determines the binaries: the module, its sources and the build recipe.
build_hash() {
  {
    cat "$MOD_DIR/go.mod" "$MOD_DIR/go.sum" "$MOD_DIR/tools.go" "$MOD_DIR/cmd/etcd/main.go"
    declare -f build_one
    go env GOVERSION GOOS GOARCH
  } | sha256sum | cut -d' ' -f1
}

build_one() { # NAME PACKAGE
  local name=$1 pkg=$2 start end
  local vpkgs=(k8s.io/component-base/version k8s.io/client-go/pkg/version)
  local minor=${K8S_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w" p
  for p in "${vpkgs[@]}"; do
    ldflags+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=1 -X $p.gitMinor=$minor"
    ldflags+=" -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  start=$(date +%s)
  log "building $name ($pkg) ..."
  (cd "$MOD_DIR" && CGO_ENABLED=0 GOFLAGS=-mod=mod go build -p "${SWITCHBOARD_E2E_BUILD_P:-2}" \
    -trimpath -ldflags "$ldflags" -o "$BIN_DIR/.$name.tmp" "$pkg")
  mv -f "$BIN_DIR/.$name.tmp" "$BIN_DIR/$name"
  end=$(date +%s)
  log "built $name in $((end - start))s"
}

cmd_build() {
  command -v go >/dev/null || die "go is required to build the control plane binaries"
  mkdir -p "$BIN_DIR"
  # One build at a time per cache directory (parallel CI jobs, two checkouts).
  exec 9>"$BIN_DIR/.lock"
  flock 9
  local want have="" b missing=0
  want=$(build_hash)
  [[ -f $BIN_DIR/.build-hash ]] && have=$(<"$BIN_DIR/.build-hash")
  for b in "${BINARIES[@]}"; do [[ -x $BIN_DIR/$b ]] || missing=1; done
  if [[ $missing == 0 && $want == "$have" ]]; then
    log "binaries up to date in $BIN_DIR"
  else
    rm -f "$BIN_DIR/.build-hash"
    build_one kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
    build_one etcd ./cmd/etcd
    build_one kubectl k8s.io/kubernetes/cmd/kubectl
    echo "$want" >"$BIN_DIR/.build-hash"
  fi
  flock -u 9
  exec 9>&-
}

need_binaries() {
  local b
  for b in "${BINARIES[@]}"; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing: run '$0 build' first"
  done
}

# ---------------------------------------------------------------------------------------------------
# start / stop

# Prints N distinct free TCP ports on 127.0.0.1 (bound to port 0 by the kernel, then released).
free_ports() {
  python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

gen_pki() { # DIR
  local dir=$1 pki=$1/pki
  mkdir -p "$pki"
  chmod 700 "$pki"
  # CA and serving certificate (SANs 127.0.0.1, localhost), ECDSA P-256.
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$pki/ca.key" -out "$pki/ca.crt" -days 30 -subj "/CN=switchboard-e2e-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:P-256 \
    -keyout "$pki/apiserver.key" -out "$pki/apiserver.csr" -subj "/CN=kube-apiserver" 2>/dev/null
  cat >"$pki/apiserver.ext" <<'EOF'
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=IP:127.0.0.1,DNS:localhost
EOF
  openssl x509 -req -in "$pki/apiserver.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" \
    -CAcreateserial -out "$pki/apiserver.crt" -days 30 -extfile "$pki/apiserver.ext" 2>/dev/null
  # ServiceAccount token signing key pair (RS256).
  openssl genrsa -out "$pki/sa.key" 2048 2>/dev/null
  openssl rsa -in "$pki/sa.key" -pubout -out "$pki/sa.pub" 2>/dev/null
  # Static token file: token,user,uid,"groups".
  openssl rand -hex 32 >"$pki/admin.token"
  printf '%s,switchboard-e2e-admin,switchboard-e2e-admin,"system:masters"\n' \
    "$(<"$pki/admin.token")" >"$pki/tokens.csv"
  chmod 600 "$pki"/*.key "$pki/tokens.csv" "$pki/admin.token"
}

write_kubeconfig() { # OUT SERVER CA_FILE USER TOKEN
  local out=$1 server=$2 ca=$3 user=$4 token=$5
  umask 077
  cat >"$out.tmp" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: switchboard-e2e
  cluster:
    server: $server
    certificate-authority-data: $(base64 -w0 <"$ca")
users:
- name: $user
  user:
    token: $token
contexts:
- name: $user@switchboard-e2e
  context:
    cluster: switchboard-e2e
    user: $user
    namespace: default
current-context: $user@switchboard-e2e
EOF
  mv -f "$out.tmp" "$out"
}

pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

# The PID in DIR/NAME.pid if that process is still the binary we started (guards against PID reuse).
our_pid() { # DIR NAME
  local f=$1/$2.pid pid
  [[ -f $f ]] || return 1
  pid=$(<"$f")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  pid_alive "$pid" || return 1
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == "$BIN_DIR/$2" ]] || return 1
  echo "$pid"
}

# Waits until CHECK succeeds; fails early if PID exits. Bounded by SWITCHBOARD_E2E_START_TIMEOUT.
wait_ready() { # NAME PID LOG CHECK...
  local name=$1 pid=$2 logf=$3
  shift 3
  local timeout=${SWITCHBOARD_E2E_START_TIMEOUT:-90} start=$SECONDS
  while ((SECONDS - start < timeout)); do
    if ! pid_alive "$pid"; then
      log "$name (pid $pid) exited during startup; last lines of $logf:"
      tail -n 30 "$logf" >&2 || true
      return 2
    fi
    if "$@" >/dev/null 2>&1; then
      log "$name ready after $((SECONDS - start))s"
      return 0
    fi
    sleep 0.5
  done
  log "$name not ready after ${timeout}s; last lines of $logf:"
  tail -n 30 "$logf" >&2 || true
  return 1
}

start_etcd() { # DIR -> sets ETCD_URL
  local dir=$1 cport pport
  read -r cport pport <<<"$(free_ports 2)"
  ETCD_URL=http://127.0.0.1:$cport
  local peer=http://127.0.0.1:$pport
  rm -rf "$dir/etcd"
  mkdir -p "$dir/etcd"
  chmod 700 "$dir/etcd"
  # Flags as in controller-runtime envtest (pkg/internal/testing/controlplane/etcd.go).
  "$BIN_DIR/etcd" \
    --name=switchboard-e2e \
    --data-dir="$dir/etcd" \
    --listen-client-urls="$ETCD_URL" \
    --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="$peer" \
    --initial-advertise-peer-urls="$peer" \
    --initial-cluster="switchboard-e2e=$peer" \
    --initial-cluster-state=new \
    --unsafe-no-fsync=true \
    --log-level=warn \
    </dev/null >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_ready etcd "$!" "$dir/etcd.log" \
    bash -c "curl -fsS --max-time 2 '$ETCD_URL/health' | grep -q '\"health\":\"true\"'"
}

start_apiserver() { # DIR [PORT] -> sets APISERVER_URL
  local dir=$1 pki=$1/pki port=${2:-}
  [[ -n $port ]] || port=$(free_ports 1)
  APISERVER_URL=https://127.0.0.1:$port
  local extra=()
  # shellcheck disable=SC2206 # word splitting is the documented behaviour
  [[ -n ${SWITCHBOARD_E2E_APISERVER_ARGS:-} ]] && extra=($SWITCHBOARD_E2E_APISERVER_ARGS)
  # Flags modelled on controller-runtime envtest (pkg/internal/testing/controlplane/apiserver.go),
  # with a static token file instead of envtest's client-certificate admin user.
  "$BIN_DIR/kube-apiserver" \
    --advertise-address=127.0.0.1 \
    --bind-address=127.0.0.1 \
    --secure-port="$port" \
    --cert-dir="$pki" \
    --tls-cert-file="$pki/apiserver.crt" \
    --tls-private-key-file="$pki/apiserver.key" \
    --client-ca-file="$pki/ca.crt" \
    --etcd-servers="$ETCD_URL" \
    --service-cluster-ip-range=10.0.0.0/24 \
    --allow-privileged=true \
    --disable-admission-plugins=ServiceAccount \
    --authorization-mode=RBAC \
    --token-auth-file="$pki/tokens.csv" \
    --service-account-issuer="$APISERVER_URL" \
    --service-account-key-file="$pki/sa.pub" \
    --service-account-signing-key-file="$pki/sa.key" \
    "${extra[@]}" \
    </dev/null >"$dir/kube-apiserver.log" 2>&1 &
  echo $! >"$dir/kube-apiserver.pid"
  wait_ready kube-apiserver "$!" "$dir/kube-apiserver.log" \
    curl -fsS --max-time 5 --cacert "$pki/ca.crt" \
    -H "Authorization: Bearer $(<"$pki/admin.token")" "$APISERVER_URL/readyz"
}

cmd_start() { # DIR
  local dir=${1:?usage: $0 start DIR}
  need_binaries
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if our_pid "$dir" etcd >/dev/null || our_pid "$dir" kube-apiserver >/dev/null; then
    die "a control plane is already running in $dir (run '$0 stop $dir' first)"
  fi
  rm -f "$dir"/*.pid
  gen_pki "$dir"
  local attempt rc
  # A free port can be taken between probing and binding; retry a few times on startup failure.
  for attempt in 1 2 3; do
    rc=0
    start_etcd "$dir" || rc=$?
    if [[ $rc == 0 ]]; then
      start_apiserver "$dir" || rc=$?
    fi
    [[ $rc == 0 ]] && break
    cmd_stop "$dir"
    if [[ $rc == 2 && $attempt -lt 3 ]] && grep -qs 'address already in use' "$dir"/*.log; then
      log "port collision, retrying ($attempt/3)"
      continue
    fi
    die "control plane failed to start (logs in $dir)"
  done
  write_kubeconfig "$dir/kubeconfig" "$APISERVER_URL" "$dir/pki/ca.crt" \
    switchboard-e2e-admin "$(<"$dir/pki/admin.token")"
  cat >"$dir/env" <<EOF
# source this file: the admin kubeconfig and endpoints of the control plane in $dir
export KUBECONFIG=$dir/kubeconfig
export SWITCHBOARD_E2E_APISERVER=$APISERVER_URL
export SWITCHBOARD_E2E_ETCD=$ETCD_URL
export SWITCHBOARD_E2E_CA=$dir/pki/ca.crt
export PATH=$BIN_DIR:\$PATH
EOF
  log "kube-apiserver at $APISERVER_URL (etcd $ETCD_URL)"
  log "admin kubeconfig: $dir/kubeconfig (or: source $dir/env)"
}

stop_one() { # DIR NAME
  local dir=$1 name=$2 pid timeout=${SWITCHBOARD_E2E_STOP_TIMEOUT:-15} start
  if pid=$(our_pid "$dir" "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    start=$SECONDS
    while pid_alive "$pid" && ((SECONDS - start < timeout)); do sleep 0.2; done
    if pid_alive "$pid"; then
      log "$name (pid $pid) still running after ${timeout}s, sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while pid_alive "$pid"; do sleep 0.1; done
    fi
    log "stopped $name (pid $pid)"
  fi
  rm -f "$dir/$name.pid"
}

cmd_stop() { # DIR
  local dir=${1:?usage: $0 stop DIR}
  [[ -d $dir ]] || return 0
  stop_one "$dir" kube-apiserver
  stop_one "$dir" etcd
}

# An API server outage, for tests of what watches do meanwhile and after: etcd and the data stay.
cmd_restart_apiserver() { # DIR SECONDS
  local dir=${1:?usage: $0 restart-apiserver DIR SECONDS} down=${2:?usage: $0 restart-apiserver DIR SECONDS}
  need_binaries
  dir=$(cd "$dir" && pwd)
  our_pid "$dir" kube-apiserver >/dev/null || die "kube-apiserver is not running in $dir"
  # shellcheck source=/dev/null
  source "$dir/env"
  ETCD_URL=$SWITCHBOARD_E2E_ETCD
  stop_one "$dir" kube-apiserver
  sleep "$down"
  start_apiserver "$dir" "${SWITCHBOARD_E2E_APISERVER##*:}" || die "kube-apiserver did not come back (log: $dir/kube-apiserver.log)"
  log "kube-apiserver back at $APISERVER_URL after ${down}s down"
}

cmd_status() { # DIR
  local dir=${1:?usage: $0 status DIR} server
  our_pid "$dir" etcd >/dev/null || die "etcd is not running in $dir"
  our_pid "$dir" kube-apiserver >/dev/null || die "kube-apiserver is not running in $dir"
  server=$(awk '/server:/ {print $2; exit}' "$dir/kubeconfig")
  curl -fsS --max-time 5 --cacert "$dir/pki/ca.crt" \
    -H "Authorization: Bearer $(<"$dir/pki/admin.token")" "$server/readyz" >/dev/null \
    || die "kube-apiserver at $server is not ready"
  echo "running: $server"
}

# ---------------------------------------------------------------------------------------------------
# ServiceAccount credentials (for RBAC tests)

cmd_token() { # DIR NS SA
  local dir=${1:?usage: $0 token DIR NAMESPACE SA} ns=${2:?namespace} sa=${3:?serviceaccount}
  need_binaries
  "$BIN_DIR/kubectl" --kubeconfig "$dir/kubeconfig" -n "$ns" create token "$sa" \
    --duration "${SWITCHBOARD_E2E_TOKEN_DURATION:-2h}"
}

cmd_kubeconfig_sa() { # DIR NS SA OUT
  local dir=${1:?usage: $0 kubeconfig-sa DIR NAMESPACE SA OUT} ns=${2:?namespace} sa=${3:?serviceaccount}
  local out=${4:?output file} token server
  token=$(cmd_token "$dir" "$ns" "$sa")
  server=$(awk '/server:/ {print $2; exit}' "$dir/kubeconfig")
  write_kubeconfig "$out" "$server" "$dir/pki/ca.crt" "system:serviceaccount:$ns:$sa" "$token"
  # Default the namespace of the kubeconfig to the ServiceAccount's.
  sed -i "s/^    namespace: default$/    namespace: $ns/" "$out"
  log "wrote $out (system:serviceaccount:$ns:$sa)"
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
    build) cmd_build ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart-apiserver) cmd_restart_apiserver "$@" ;;
    status) cmd_status "$@" ;;
    token) cmd_token "$@" ;;
    kubeconfig-sa) cmd_kubeconfig_sa "$@" ;;
    kubectl)
      local dir=${1:?usage: $0 kubectl DIR ARGS...}
      shift
      need_binaries
      exec "$BIN_DIR/kubectl" --kubeconfig "$dir/kubeconfig" "$@"
      ;;
    bin) echo "$BIN_DIR" ;;
    *)
      sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
      exit 2
      ;;
  esac
}

main "$@"; exit $?
