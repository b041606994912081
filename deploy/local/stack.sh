#!/usr/bin/env bash
# The local lake stack: PostgreSQL + Ceph (S3), then Trino.
# Usage: stack.sh preflight|install|up|down|status|reset [--all]
#   preflight  in a second, without installing: a Java 24+ JDK, free disk, and (not root) the Debian
#            packages; exit 1 with one sentence saying what is missing
#   install  install what is missing (Debian packages, the Trino tarball); starts nothing
#   up       install if needed, start (or restart dead daemons), wait until every service is ready;
#            a quick no-op when all are healthy. When a service fails to start, every service of
#            the stack is stopped again and exit 1's last line names the cause (with its log above).
#   down     stop all (Trino, then Ceph and PostgreSQL) by PID; data stays
#   status   one line per service; exit 0 only when all are healthy
#   reset    down, then delete the service data (PostgreSQL, Ceph, Trino state); `--all` also
#            deletes $MESH_SERVICES_DIR. Downloads stay in the per-user cache $MESH_CACHE_DIR
#            (default ${XDG_CACHE_HOME:-~/.cache}/mesh, shared by every clone): delete it by hand.
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=stack
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

HERE="$MESH_LOCAL_DIR"
# Each service script appends the message it dies with here (lib.sh die), so that the last line of
# a failed `up` names the real cause, not just the service.
export MESH_LAKE_ERROR_FILE="$MESH_SERVICES_DIR/last-error"

run_service() { # SERVICE ACTION [ARG]: run it, report a failure
    local svc="$1" action="$2" rc=0
    shift 2
    "$HERE/$svc.sh" "$action" "$@" || rc=$?
    if ((rc != 0)); then
        log "FAILED: $svc $action (exit $rc); see the log above and $MESH_SERVICES_DIR/$svc/log/"
    fi
    return "$rc"
}

# first_error: the first message a service died with during this command (or nothing).
first_error() { head -n1 "$MESH_LAKE_ERROR_FILE" 2>/dev/null || true; }

# cause SERVICE RC: why SERVICE's up failed: the first recorded error, else its exit code.
cause() {
    local e
    e="$(first_error)"
    echo "${e:-$1 up exited $2}"
}

# preflight: what no install step can provide, checked in seconds before the long steps start.
preflight() {
    find_java "$(trino_java_min)" >/dev/null || exit 1
    need_disk "$MESH_SERVICES_DIR" 2 "the services' data (Ceph, PostgreSQL, Trino)"
    local plugins="${MESH_TRINO_PLUGINS:-iceberg}" cached=1
    if [[ ! -f "$CACHE_DIR/trino-server-$TRINO_VERSION-${plugins// /+}/.mesh-installed" ]]; then
        cached=0
        need_disk "$CACHE_DIR" 2 "the Trino download (0.8 GB) and the unpacked server (0.5 GB)"
    fi
    is_root && return 0
    # not root: apt-get is not ours to run, so what is missing must be installed first
    local missing=() c
    compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null || missing+=(postgresql)
    for c in ceph-mon ceph-mgr ceph-osd radosgw ceph:ceph-common; do # command[:package]
        command -v "${c%%:*}" >/dev/null || missing+=("${c##*:}")
    done
    ((cached)) || command -v mvn >/dev/null || missing+=(maven)
    ((${#missing[@]} == 0)) \
        || die "missing Debian packages for the lake stack (${missing[*]}): run this once as root, or apt-get install them"
}

need_disk() { # DIR GB WHAT: die unless DIR's file system has GB free
    local avail
    avail="$(df -P -BG "$1" 2>/dev/null | awk 'NR == 2 { sub("G", "", $4); print $4 }')"
    if [[ -n "$avail" ]] && ((avail < $2)); then
        die "only $avail GB free on the disk of $1, and $3 need about $2 GB: free some space there"
    fi
}

cmd_install() {
    : >"$MESH_LAKE_ERROR_FILE"
    preflight
    # the Trino download runs beside the Debian installs (apt_install waits for dpkg's lock)
    local trino_pid rc=0
    "$HERE/trino.sh" install &
    trino_pid=$!
    if ! run_service postgres install || ! run_service ceph install; then
        kill -TERM "$trino_pid" 2>/dev/null || true
        wait "$trino_pid" 2>/dev/null || true
        die "install failed: $(first_error)"
    fi
    wait "$trino_pid" || rc=$?
    ((rc == 0)) || die "install failed: $(first_error || echo "trino install exited $rc")"
}

# helper_tree PID: PID's descendants, except daemons (session leaders, see start_daemon) and theirs.
helper_tree() {
    local root="$1" f stat pid ppid sid cur k
    local -A kids=()
    for f in /proc/[0-9]*/stat; do
        stat="$(cat "$f" 2>/dev/null)" || continue
        pid="${f#/proc/}"
        pid="${pid%/stat}"
        read -r _ ppid _ sid _ <<<"${stat##*) }"
        [[ "$sid" != "$pid" ]] || continue
        kids[$ppid]+=" $pid"
    done
    local -a queue=("$root")
    while ((${#queue[@]})); do
        cur="${queue[0]}"
        queue=("${queue[@]:1}")
        for k in ${kids[$cur]:-}; do
            echo "$k"
            queue+=("$k")
        done
    done
}

# Service scripts running in the background during `up` (pid -> name), to stop them on a failure.
declare -A STARTING=()

# abort_up CAUSE: a start failed (or we were interrupted). Stop the service scripts still starting,
# then every daemon of the stack, so nothing half-started keeps ports, memory or locks; exit 1
# with CAUSE in the last line.
abort_up() {
    trap - INT TERM
    local cause="$1" pid p
    local -a helpers=()
    for pid in "${!STARTING[@]}"; do
        if kill -0 "$pid" 2>/dev/null; then
            log "stopping ${STARTING[$pid]} up (pid $pid): the stack is not starting"
            # the script and the commands it runs (ceph CLI calls under `timeout`, which moves them
            # to their own process group); its daemons are stopped by stop_all below
            mapfile -t -O "${#helpers[@]}" helpers < <(echo "$pid"; helper_tree "$pid")
        fi
    done
    for p in "${helpers[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for pid in "${!STARTING[@]}"; do wait "$pid" 2>/dev/null || true; done
    for p in "${helpers[@]}"; do (MESH_LAKE_ERROR_FILE="" stop_pid "$p" "helper process $p" 10 TERM) >/dev/null 2>&1 || true; done
    STARTING=()
    log "stopping every service of the stack that had started"
    stop_all >&2 || true
    die "lake stack did not start: $cause; every service of this stack was stopped again (logs: $MESH_SERVICES_DIR/*/log/)"
}

cmd_up() {
    local start=$SECONDS
    cmd_install
    : >"$MESH_LAKE_ERROR_FILE"
    trap 'abort_up "interrupted"' INT TERM
    # PostgreSQL and Ceph do not depend on each other: start them side by side; the first failure
    # stops the other one at once (no need to wait minutes for a Ceph bootstrap that is useless now)
    local pid rc svc
    "$HERE/postgres.sh" up &
    STARTING[$!]=postgres
    "$HERE/ceph.sh" up &
    STARTING[$!]=ceph
    while ((${#STARTING[@]})); do
        rc=0
        unset pid
        wait -n -p pid "${!STARTING[@]}" || rc=$?
        [[ -n "${pid:-}" ]] || continue # a trapped signal interrupted the wait
        svc="${STARTING[$pid]}"
        unset 'STARTING[$pid]'
        ((rc == 0)) || abort_up "$(cause "$svc" "$rc")"
    done
    # each domain's own catalog role, password file and the catalog's row-level rules
    # (mesh_assets/lakehouse/principals.py): runs connect as their domain from here on
    (cd "$MESH_LOCAL_REPO" && "$MESH_PYTHON" -c 'from mesh_assets.cli.main import main; main()' \
        access provision) >/dev/null 2>"$MESH_SERVICES_DIR/postgres/log/provision.err" \
        || abort_up "mesh access provision failed: $(tail -n1 "$MESH_SERVICES_DIR/postgres/log/provision.err")"
    rc=0
    "$HERE/trino.sh" up || rc=$?
    ((rc == 0)) || abort_up "$(cause trino "$rc")"
    trap - INT TERM
    log "lake stack ready in $((SECONDS - start))s: PostgreSQL $MESH_HOST:$MESH_PORT_POSTGRES, S3 http://$MESH_HOST:$MESH_PORT_S3, Trino http://$MESH_HOST:$MESH_PORT_TRINO"
}

# Processes of this stack that no pid file knows (a script killed between starting a daemon and
# recording its pid): every daemon names a path of this stack on its command line.
stray_pids() {
    local p cmd pg_root=""
    [[ -s "$MESH_SERVICES_DIR/postgres/location" ]] && pg_root="$(head -n1 "$MESH_SERVICES_DIR/postgres/location")"
    for p in /proc/[0-9]*; do
        [[ "${p#/proc/}" != "$$" ]] || continue
        cmd="$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" 2>/dev/null || continue
        case "$cmd" in
            *ceph-mon\ *"$MESH_SERVICES_DIR/"* | *ceph-mgr\ *"$MESH_SERVICES_DIR/"* | *ceph-osd\ *"$MESH_SERVICES_DIR/"* \
                | *radosgw\ *"$MESH_SERVICES_DIR/"* | *TrinoServer* | *postgres\ -D\ *)
                if [[ "$cmd" == *"$MESH_SERVICES_DIR/"* || (-n "$pg_root" && "$cmd" == *"$pg_root/data"*) ]]; then
                    pid_alive "${p#/proc/}" && echo "${p#/proc/}"
                fi
                ;;
        esac
    done
    return 0
}

stop_all() {
    local rc=0 pid
    run_service trino down "$@" || rc=1
    run_service ceph down "$@" || rc=1
    run_service postgres down "$@" || rc=1
    for pid in $(stray_pids); do
        stop_pid "$pid" "a stray process of this stack ($( (tr '\0' ' ' <"/proc/$pid/cmdline") 2>/dev/null | cut -c1-80))" 30 TERM || rc=1
    done
    return "$rc"
}

cmd_down() { stop_all "$@"; }

cmd_status() {
    local rc=0 svc
    for svc in postgres ceph trino; do
        "$HERE/$svc.sh" status || rc=1
    done
    return "$rc"
}

cmd_reset() {
    cmd_down --purge
    if [[ "${1:-}" == "--all" ]]; then
        log "deleting $MESH_SERVICES_DIR (the download cache $CACHE_DIR is shared by all clones: kept)"
        rm -rf "$MESH_SERVICES_DIR"
    fi
}

case "${1:-}" in
    preflight) preflight ;;
    install) with_lock cmd_install ;;
    up) with_lock cmd_up ;;
    down) with_lock cmd_down ;;
    status) cmd_status ;;
    reset) with_lock cmd_reset "${2:-}" ;;
    *)
        sed -n '2,/^[^#]/p' "${BASH_SOURCE[0]}" | grep '^#' | grep -v 'shellcheck ' | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
