#!/usr/bin/env bash
# A Kubernetes API server on loopback, for the Helm chart of deploy/k8s and K8sRunLauncher's Jobs.
# Usage: k8s.sh install|up|down [--purge]|status
#
# There is no container runtime here, so no kubelet and no pods: what runs is the control plane a
# chart talks to (etcd + kube-apiserver), which stores and validates every object, runs admission,
# RBAC and server-side dry-run, and is what `helm install` and dagster-k8s's K8sRunLauncher call.
#
#   etcd            Debian's etcd-server, on $MESH_HOST:$MESH_PORT_ETCD (client) / +1 (peer)
#   kube-apiserver  built from the Go module proxy (`go install` refuses k8s.io/kubernetes for its
#                   replace directives: a wrapper module requires it and replaces each staging module
#                   with the published one of the same version); about 15 CPU-minutes once, then
#                   cached per user in $MESH_CACHE_DIR/k8s-<version>/bin with helm (`go install`)
#
# Auth: a static token file (one admin user, in group system:masters) and RBAC; the token is a
# generated secret ($MESH_SECRETS_DIR/k8s_token, mode 0600, or MESH_K8S_TOKEN), never printed.
# `up` writes $MESH_SERVICES_DIR/k8s/kubeconfig (0600) for helm, kubectl, dagster-k8s and the tests.
# Versions: MESH_K8S_VERSION (default 1.37.2), MESH_HELM_VERSION (default 3.22.0).
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=k8s
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

K8S_VERSION="${MESH_K8S_VERSION:-1.37.2}"
HELM_VERSION="${MESH_HELM_VERSION:-3.22.0}"
PORT="$MESH_PORT_K8S" # mesh_assets/settings.py: the one table of ports
ETCD_PORT="$MESH_PORT_ETCD"
BIN_DIR="$CACHE_DIR/k8s-$K8S_VERSION/bin"
APISERVER="$BIN_DIR/kube-apiserver"
HELM="$BIN_DIR/helm-$HELM_VERSION"
D="$MESH_SERVICES_DIR/k8s"
KUBECONFIG_FILE="$D/kubeconfig"
ETCD_PID="$D/run/etcd.pid"
API_PID="$D/run/kube-apiserver.pid"
TIMEOUT="${MESH_K8S_TIMEOUT:-120}"

go_bin() {
    local go
    go="$(command -v go || true)"
    [[ -n "$go" ]] || go=/usr/local/go/bin/go
    [[ -x "$go" ]] || die "building kube-apiserver and helm needs Go (https://go.dev/dl; /usr/local/go/bin/go)"
    echo "$go"
}

# The 33-odd staging modules of k8s.io/kubernetes are `replace`d to ./staging in its go.mod; the
# published module of each has the same content at v0.<minor>.<patch>. Read the list from the go.mod
# itself, so a new version's list is right without editing this script.
build_apiserver() {
    local go work staging
    go="$(go_bin)"
    work="$(mktemp -d "$CACHE_DIR/k8s-build.XXXXXX")"
    log "building kube-apiserver v$K8S_VERSION (about 15 CPU-minutes, once per user; log: $work/build.log)"
    export GOFLAGS=-mod=mod GOTOOLCHAIN=local
    (
        cd "$work"
        "$go" mod init mesh.local/kube-apiserver >build.log 2>&1
        "$go" mod download -json "k8s.io/kubernetes@v$K8S_VERSION" >download.json 2>>build.log
        local gomod
        gomod="$("$MESH_PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["GoMod"])' download.json)"
        staging="$(sed -nE 's#^[[:space:]]*(k8s\.io/[^[:space:]]+) => \./staging/.*#\1#p' "$gomod" | sort -u)"
        [[ -n "$staging" ]] || { echo "no staging replaces found in $gomod" >>build.log; exit 1; }
        printf 'package tools\n\nimport _ "k8s.io/kubernetes/cmd/kube-apiserver"\n' >tools.go
        "$go" mod edit -require="k8s.io/kubernetes@v$K8S_VERSION"
        local m
        for m in $staging; do
            "$go" mod edit -replace="$m=$m@v0.${K8S_VERSION#*.}"
        done
        "$go" mod tidy >>build.log 2>&1
        local v="v$K8S_VERSION" minor="${K8S_VERSION#*.}"
        minor="${minor%%.*}"
        local pkg=k8s.io/component-base/version
        "$go" build -trimpath -o kube-apiserver -ldflags "-s -w -X $pkg.gitVersion=$v -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z" \
            k8s.io/kubernetes/cmd/kube-apiserver >>build.log 2>&1
    ) || die "building kube-apiserver v$K8S_VERSION failed" "$work/build.log"
    mkdir -p "$BIN_DIR"
    mv "$work/kube-apiserver" "$APISERVER"
    rm -rf "$work"
}

build_helm() {
    local go
    go="$(go_bin)"
    log "building helm v$HELM_VERSION (go install, once per user)"
    local gobin
    gobin="$(mktemp -d "$CACHE_DIR/helm-build.XXXXXX")"
    GOBIN="$gobin" GOTOOLCHAIN=local "$go" install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" \
        >"$gobin/build.log" 2>&1 || die "go install helm v$HELM_VERSION failed" "$gobin/build.log"
    mkdir -p "$BIN_DIR"
    mv "$gobin/helm" "$HELM"
    rm -rf "$gobin"
}

ensure_built() { [[ -x "$1" ]] || "$2"; }

cmd_install() {
    apt_install etcd-server
    # clones share the cache: one builds, the others wait for it (and then find the binary)
    [[ -x "$APISERVER" ]] || with_cache_lock ensure_built "$APISERVER" build_apiserver
    [[ -x "$HELM" ]] || with_cache_lock ensure_built "$HELM" build_helm
    # the same helm for every caller: $MESH_SERVICES_DIR/k8s/bin/helm
    mkdir -p "$D/bin"
    ln -sfn "$HELM" "$D/bin/helm"
}

PKI="$D/pki"
TOKENS="$D/tokens.csv"
ETCD_PEER_PORT="$MESH_PORT_ETCD_PEER"
SERVER="https://$MESH_HOST:$PORT"

k8s_token() { read_secret k8s_token; }

# serving certificate (self-signed, for $MESH_HOST and localhost) and the service account keys
make_pki() {
    mkdir -p "$PKI"
    chmod 700 "$PKI"
    [[ -s "$PKI/serving.key" && -s "$PKI/serving.crt" && -s "$PKI/sa.key" ]] && return 0
    log "generating the serving certificate and the service account keys ($PKI)"
    (
        umask 077
        openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=mesh-kube-apiserver" \
            -addext "subjectAltName=IP:$MESH_HOST,DNS:localhost" \
            -keyout "$PKI/serving.key" -out "$PKI/serving.crt" 2>>"$D/log/pki.log"
        openssl genrsa -out "$PKI/sa.key" 2048 2>>"$D/log/pki.log"
        openssl rsa -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub" 2>>"$D/log/pki.log"
    ) || die "openssl could not make the certificates" "$D/log/pki.log"
}

write_kubeconfig() {
    local token
    token="$(k8s_token)"
    (
        umask 077
        cat >"$KUBECONFIG_FILE.tmp" <<EOF
# Generated by deploy/local/k8s.sh: the admin of the local API server (holds a token: mode 0600).
apiVersion: v1
kind: Config
clusters:
  - name: mesh-local
    cluster:
      server: $SERVER
      certificate-authority: $PKI/serving.crt
users:
  - name: mesh-admin
    user:
      token: $token
contexts:
  - name: mesh-local
    context:
      cluster: mesh-local
      user: mesh-admin
      namespace: default
current-context: mesh-local
EOF
    )
    mv "$KUBECONFIG_FILE.tmp" "$KUBECONFIG_FILE"
}

# /readyz with the admin token (on stdin, never on the command line)
ready() {
    printf 'Authorization: Bearer %s\n' "$(k8s_token)" \
        | curl -fsS --max-time 5 --cacert "$PKI/serving.crt" -H @- "$SERVER/readyz" 2>/dev/null | grep -qx ok
}

etcd_ready() { curl -fsS --max-time 3 "http://$MESH_HOST:$ETCD_PORT/health" 2>/dev/null | grep -q '"health":"true"'; }

cmd_up() {
    cmd_install
    mkdir -p "$D/log" "$D/run"
    secret_file k8s_token "$MESH_PYTHON" -c "import secrets; print(secrets.token_urlsafe(32))"
    make_pki
    if pidfile_alive "$ETCD_PID" "$D/etcd" >/dev/null && pidfile_alive "$API_PID" kube-apiserver >/dev/null && ready; then
        write_kubeconfig
        log "already running and healthy ($SERVER)"
        return 0
    fi
    if ! pidfile_alive "$ETCD_PID" "$D/etcd" >/dev/null; then
        port_free_or_die "$MESH_HOST" "$ETCD_PORT" etcd
        port_free_or_die "$MESH_HOST" "$ETCD_PEER_PORT" "etcd peer"
        log "starting etcd on $MESH_HOST:$ETCD_PORT"
        start_daemon "$ETCD_PID" "$D/log/etcd.log" env -i PATH="$SAFE_PATH" \
            /usr/bin/etcd --name mesh --data-dir "$D/etcd" \
            --listen-client-urls "http://$MESH_HOST:$ETCD_PORT" --advertise-client-urls "http://$MESH_HOST:$ETCD_PORT" \
            --listen-peer-urls "http://$MESH_HOST:$ETCD_PEER_PORT" \
            --initial-advertise-peer-urls "http://$MESH_HOST:$ETCD_PEER_PORT" \
            --initial-cluster "mesh=http://$MESH_HOST:$ETCD_PEER_PORT" --log-level warn
        WAIT_PIDFILE="$ETCD_PID" WAIT_PATTERN="$D/etcd" wait_until "$TIMEOUT" "etcd" etcd_ready \
            || { cmd_down; die "etcd did not become healthy" "$D/log/etcd.log"; }
    fi
    if ! pidfile_alive "$API_PID" kube-apiserver >/dev/null; then
        port_free_or_die "$MESH_HOST" "$PORT" kube-apiserver
        # token,user,uid,"groups": the one admin; RBAC for everything else (the chart's own Roles)
        (umask 077 && printf '%s,mesh-admin,mesh-admin,"system:masters"\n' "$(k8s_token)" >"$TOKENS")
        log "starting kube-apiserver v$K8S_VERSION on $SERVER"
        # No controller manager runs: --endpoint-reconciler-type=none (no master Endpoints lease);
        # Jobs and Deployments are stored and validated, nothing acts on them (no pods here).
        start_daemon "$API_PID" "$D/log/kube-apiserver.log" env -i PATH="$SAFE_PATH" "$APISERVER" \
            --etcd-servers "http://$MESH_HOST:$ETCD_PORT" \
            --bind-address "$MESH_HOST" --advertise-address "$MESH_HOST" --secure-port "$PORT" \
            --tls-cert-file "$PKI/serving.crt" --tls-private-key-file "$PKI/serving.key" \
            --token-auth-file "$TOKENS" --anonymous-auth=false --authorization-mode RBAC \
            --service-account-issuer https://kubernetes.default.svc \
            --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
            --service-cluster-ip-range 10.96.0.0/16 --endpoint-reconciler-type none \
            --allow-privileged=false --profiling=false --cert-dir "$PKI/generated" -v 1
        WAIT_PIDFILE="$API_PID" WAIT_PATTERN=kube-apiserver wait_until "$TIMEOUT" "kube-apiserver /readyz" ready \
            || { cmd_down; die "kube-apiserver did not become ready" "$D/log/kube-apiserver.log"; }
    fi
    write_kubeconfig
    log "ready: $SERVER (kubeconfig $KUBECONFIG_FILE)"
}

cmd_down() {
    local pid
    if pid="$(pidfile_alive "$API_PID" kube-apiserver)"; then
        stop_pid "$pid" kube-apiserver 30 TERM
    fi
    if pid="$(pidfile_alive "$ETCD_PID" "$D/etcd")"; then
        stop_pid "$pid" etcd 30 TERM
    fi
    rm -f "$API_PID" "$ETCD_PID" "$TOKENS"
    if [[ "${1:-}" == "--purge" ]]; then
        log "deleting $D"
        rm -rf "$D"
    fi
}

cmd_status() {
    local state=stopped
    if pidfile_alive "$API_PID" kube-apiserver >/dev/null; then
        state=unhealthy
        ready && state=healthy
    elif pidfile_alive "$ETCD_PID" "$D/etcd" >/dev/null; then
        state="unhealthy (etcd only)"
    fi
    echo "k8s: $state ($SERVER, kube-apiserver v$K8S_VERSION, helm v$HELM_VERSION)"
    [[ $state == healthy ]]
}

service_main "$@"
