#!/usr/bin/env bash
# The local lake stack: PostgreSQL + Ceph (S3), then Trino.
# Usage: stack.sh install|up|down|status|reset [--all]
#   install  install what is missing (Debian packages, the Trino tarball); starts nothing
#   up       install if needed, start (or restart dead daemons), wait until every service is ready;
#            a quick no-op when all are healthy. Exit 1 names the failing service and shows its log.
#   down     stop all (Trino, then Ceph and PostgreSQL) by PID; data stays
#   status   one line per service; exit 0 only when all are healthy
#   reset    down, then delete the service data (PostgreSQL, Ceph, Trino state); `--all` also
#            deletes $MESH_SERVICES_DIR/cache (the Trino download)
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=stack
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

HERE="$MESH_LOCAL_DIR"

run_service() { # SERVICE ACTION [ARG]: run it, report a failure
    local svc="$1" action="$2" rc=0
    shift 2
    "$HERE/$svc.sh" "$action" "$@" || rc=$?
    if ((rc != 0)); then
        log "FAILED: $svc $action (exit $rc); see the log above and $MESH_SERVICES_DIR/$svc/log/"
    fi
    return "$rc"
}

cmd_install() {
    # the Trino download runs beside the Debian installs (which must run one after the other)
    local trino_pid rc=0
    run_service trino install &
    trino_pid=$!
    run_service postgres install || die "postgres install failed"
    run_service ceph install || die "ceph install failed"
    wait "$trino_pid" || rc=$?
    ((rc == 0)) || die "trino install failed"
}

cmd_up() {
    local start=$SECONDS
    cmd_install
    # PostgreSQL and Ceph do not depend on each other: start them side by side
    local pg_pid ceph_pid rc_pg=0 rc_ceph=0
    run_service postgres up &
    pg_pid=$!
    run_service ceph up &
    ceph_pid=$!
    wait "$pg_pid" || rc_pg=$?
    wait "$ceph_pid" || rc_ceph=$?
    local failed=()
    ((rc_pg == 0)) || failed+=(postgres)
    ((rc_ceph == 0)) || failed+=(ceph)
    ((${#failed[@]} == 0)) || die "lake stack did not start: ${failed[*]} failed (trino not started)"
    run_service trino up || die "lake stack did not start: trino failed"
    log "lake stack ready in $((SECONDS - start))s: PostgreSQL $MESH_HOST:$MESH_PORT_POSTGRES, S3 http://$MESH_HOST:$MESH_PORT_S3, Trino http://$MESH_HOST:$MESH_PORT_TRINO"
}

cmd_down() {
    local rc=0
    run_service trino down "$@" || rc=1
    run_service ceph down "$@" || rc=1
    run_service postgres down "$@" || rc=1
    return "$rc"
}

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
        log "deleting $MESH_SERVICES_DIR"
        rm -rf "$MESH_SERVICES_DIR"
    fi
}

case "${1:-}" in
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
