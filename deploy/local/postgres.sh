#!/usr/bin/env bash
# PostgreSQL (Debian's server packages) as a private cluster on $MESH_HOST:$MESH_PORT_POSTGRES.
# Usage: postgres.sh install|up|down [--purge]|status
# Data and socket: $PG_ROOT/{data,run} (see "Where the cluster lives" below); logs and our pid file:
# $MESH_SERVICES_DIR/postgres/{log,run}.
# Provides role $MESH_PG_USER (scram password from the secrets; it may create roles: the domains'
# catalog roles come from `mesh access provision`, which stack.sh runs) and the databases
# $MESH_PG_CATALOG_DB (Iceberg JDBC catalog, shared by pyiceberg and Trino) and $MESH_PG_DAGSTER_DB.
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=postgres
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

D="$MESH_SERVICES_DIR/postgres"
LOGFILE="$D/log/postgres.log"
PIDFILE="$D/run/mesh-postgres.pid" # our record; postmaster.pid stays authoritative
LOCATION="$D/location"             # the recorded $PG_ROOT of this checkout
TIMEOUT="${MESH_PG_TIMEOUT:-60}"

# Where the cluster lives.
# As root, the server runs as the `postgres` OS user (PostgreSQL refuses to run as root), and that
# user must traverse every directory from / to its data and socket directories. A checkout may sit
# under a 0700 directory (/root, `mktemp -d`): opening those (chmod o+x on somebody's home) would
# change permissions outside our tree, so instead, as root, the two directories the server itself
# opens live in a per-checkout folder under a root-owned, world-traversable root:
# $MESH_PG_STATE_ROOT (default /var/lib/mesh/postgres)/<hash of $MESH_SERVICES_DIR>, owned by
# postgres, mode 0700, with a `checkout` file naming the services dir it belongs to. /var/lib, not
# /tmp: the catalog must survive a reboot. Everything the server does not open itself (logs, our pid
# file) stays in the checkout: root writes it. The folder is recorded in $D/location on the first
# `up`, so `down`, `status` and `reset` find it even if the rule changes; a cluster made before this
# rule (in $D/data) keeps being used where it is. Not root: everything stays in $D (we own the path).
pg_root_default() {
    if [[ -f "$D/data/PG_VERSION" ]]; then
        echo "$D" # made by an older version of this script: keep it
    elif is_root; then
        local hash
        hash="$(printf '%s' "$MESH_SERVICES_DIR" | sha256sum | cut -c1-12)"
        echo "${MESH_PG_STATE_ROOT:-/var/lib/mesh/postgres}/$hash"
    else
        echo "$D"
    fi
}
if [[ -s "$LOCATION" ]]; then
    PG_ROOT="$(head -n1 "$LOCATION")"
else
    PG_ROOT="$(pg_root_default)"
fi
PGDATA="$PG_ROOT/data"
SOCKDIR="$PG_ROOT/run"

pg_bindir() {
    if [[ -n "${MESH_PG_BINDIR:-}" ]]; then
        echo "$MESH_PG_BINDIR"
        return
    fi
    local dir
    dir="$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n1)"
    [[ -n "$dir" && -x "$dir/postgres" ]] || return 1
    echo "$dir"
}

# Run as the owner of the cluster: `postgres` when we are root, else ourselves.
if is_root; then
    PG_OWNER=postgres
    as_owner() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }
else
    PG_OWNER="$(id -un)"
    as_owner() { "$@"; }
fi

cmd_install() {
    if pg_bindir >/dev/null; then
        return 0
    fi
    if is_root && [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        # we run our own cluster: keep the package from creating (and starting) the default one
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    fi
    apt_install postgresql
    pg_bindir >/dev/null || die "no PostgreSQL server under /usr/lib/postgresql/*/bin after install"
}

# Create $PG_ROOT (owned by the server's user) and check that user can reach it: the message names
# the directory that actually blocks, not the one we wanted to reach.
prepare_root() {
    if [[ "$PG_ROOT" != "$D" ]]; then
        local parent
        parent="$(dirname "$PG_ROOT")"
        # world-traversable whatever the caller's umask (the server's user must pass through it)
        [[ -d "$parent" ]] || (umask 022 && mkdir -p "$parent")
    fi
    mkdir -p "$PG_ROOT" "$SOCKDIR"
    if is_root; then
        local blocked
        blocked="$(first_blocking_dir "$PG_OWNER" "$PG_ROOT")"
        [[ -z "$blocked" ]] \
            || die "the $PG_OWNER user cannot enter $blocked (mode $(stat -c %a "$blocked")), so it cannot reach $PGDATA: chmod o+x $blocked, or set MESH_PG_STATE_ROOT to a directory it can reach"
        [[ "$PG_ROOT" == "$D" ]] || printf '%s\n' "$MESH_SERVICES_DIR" >"$PG_ROOT/checkout"
        chown "$PG_OWNER" "$PG_ROOT" "$SOCKDIR"
    fi
    chmod 700 "$PG_ROOT" "$SOCKDIR"
    [[ -s "$LOCATION" ]] || printf '%s\n' "$PG_ROOT" >"$LOCATION"
}

# A checkout deleted and cloned again at the same path (what CI does on every run) finds the cluster
# of the deleted checkout under the same hash, yet has no $LOCATION of its own. That cluster's
# catalog lists tables whose files went with the deleted checkout (Ceph keeps its data in the
# checkout), so every read or write of them would fail on a missing metadata file: start afresh.
forget_orphan_cluster() {
    [[ "$PG_ROOT" != "$D" && ! -s "$LOCATION" && -e "$PG_ROOT" ]] || return 0
    no_cluster_procs \
        || die "a server of an earlier checkout at this path still runs on $PGDATA (pids $(cluster_procs | tr '\n' ' ')): stop it, or delete $PG_ROOT"
    log "removing $PG_ROOT: the catalog cluster of an earlier checkout at this path, whose warehouse is gone"
    rm -rf "$PG_ROOT"
}

postmaster_pid() {
    local pid
    [[ -f "$PGDATA/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$PGDATA/postmaster.pid" | tr -dc '0-9')"
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$PGDATA" || return 1
    echo "$pid"
}

psql_admin() { # SQL on stdin, as the superuser over the private socket
    as_owner env -i PATH="$SAFE_PATH" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$MESH_PORT_POSTGRES" \
        -U "$PG_OWNER" "$@"
}

# can the mesh role log in over TCP with the current password? (password via env, never argv)
mesh_login_ok() {
    env -i PATH="$SAFE_PATH" PGPASSWORD="$MESH_PG_PASSWORD" PGCONNECT_TIMEOUT=5 "$BIN/psql" -X -q -w -At \
        -h "$MESH_HOST" -p "$MESH_PORT_POSTGRES" -U "$MESH_PG_USER" -d "$MESH_PG_CATALOG_DB" \
        -c 'SELECT 1' 2>/dev/null | grep -qx 1
}

# live (non-zombie) processes whose working directory is the data dir: every postgres process chdirs there
cluster_procs() {
    local p cwd
    for p in /proc/[0-9]*; do
        cwd="$(readlink "$p/cwd" 2>/dev/null)" || continue
        [[ "$cwd" == "$PGDATA" ]] && pid_alive "${p#/proc/}" && echo "${p#/proc/}"
    done
    return 0
}

no_cluster_procs() { [[ -z "$(cluster_procs)" ]]; }

# After a crash (e.g. SIGKILL) the old postmaster may linger as a zombie, which postgres takes for a
# running server ("lock file postmaster.pid already exists"), and its backends need a moment to exit.
clear_stale_lock() {
    local sock_lock="$SOCKDIR/.s.PGSQL.$MESH_PORT_POSTGRES.lock"
    [[ -f "$PGDATA/postmaster.pid" || -f "$sock_lock" ]] || return 0
    wait_until 30 "backends of the previous postmaster to exit" no_cluster_procs \
        || die "processes of a previous server still use $PGDATA: $(cluster_procs | tr '\n' ' ')" "$LOGFILE"
    log "removing the lock files of a server that is gone"
    rm -f "$PGDATA/postmaster.pid" "$sock_lock"
}

ready() { "$BIN/pg_isready" -q -h "$MESH_HOST" -p "$MESH_PORT_POSTGRES" -t 2; }

initdb_cluster() {
    log "initdb $PGDATA"
    rm -rf "$PGDATA"
    mkdir -p "$PGDATA"
    chown "$PG_OWNER" "$PGDATA"
    chmod 700 "$PGDATA"
    as_owner env -i PATH="$SAFE_PATH" LANG=C "$BIN/initdb" -D "$PGDATA" -U "$PG_OWNER" --no-locale -E UTF8 \
        --auth-local=peer --auth-host=scram-sha-256 >>"$D/log/initdb.log" 2>&1 \
        || die "initdb failed" "$D/log/initdb.log"
}

write_hba() {
    # local socket: the OS superuser only (socket dir is private); TCP: scram passwords only
    as_owner tee "$PGDATA/pg_hba.conf" >/dev/null <<EOF
# Generated by deploy/local/postgres.sh: edits are overwritten on every \`up\`.
local   all   $PG_OWNER                      peer
host    all   all         $MESH_HOST/32     scram-sha-256
EOF
}

server_args() {
    printf '%s\n' -D "$PGDATA" \
        -c "listen_addresses=$MESH_HOST" -c "port=$MESH_PORT_POSTGRES" \
        -c "unix_socket_directories=$SOCKDIR" -c "unix_socket_permissions=0700" \
        -c "password_encryption=scram-sha-256" -c "max_connections=${MESH_PG_MAX_CONNECTIONS:-200}" \
        -c "shared_buffers=128MB" -c "logging_collector=off" -c "log_min_messages=warning" \
        -c "log_line_prefix=%m [%p] %q%u@%d " -c "ssl=off" \
        -c "log_connections=on" # who connected as which role: each domain's runs use its own
}

provision() {
    local pw_sql
    pw_sql="${MESH_PG_PASSWORD//\'/\'\'}"
    if ! mesh_login_ok; then
        log "setting up role $MESH_PG_USER and databases $MESH_PG_CATALOG_DB, $MESH_PG_DAGSTER_DB"
        # the password goes on stdin (not argv); statement logging is off
        psql_admin -d postgres -v user="$MESH_PG_USER" >/dev/null 2>>"$LOGFILE" <<EOF || die "could not create role $MESH_PG_USER" "$LOGFILE"
SELECT format('CREATE ROLE %I LOGIN', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
ALTER ROLE "${MESH_PG_USER//\"/\"\"}" LOGIN PASSWORD '$pw_sql';
EOF
    fi
    psql_admin -d postgres -v user="$MESH_PG_USER" -v cat="$MESH_PG_CATALOG_DB" -v dag="$MESH_PG_DAGSTER_DB" \
        >/dev/null 2>>"$LOGFILE" <<'EOF' || die "could not create the databases" "$LOGFILE"
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'cat', :'user', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'cat') \gexec
SELECT format('CREATE DATABASE %I OWNER %I ENCODING %L TEMPLATE template0', :'dag', :'user', 'UTF8')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'dag') \gexec
-- the platform's role creates each domain's catalog role (mesh access provision; not a superuser)
ALTER ROLE :"user" CREATEROLE;
EOF
    # Iceberg JDBC catalog tables in the "V1" layout (with iceberg_type) that Iceberg Java (Trino,
    # iceberg.jdbc-catalog.schema-version=V1) and pyiceberg >= 0.10 (SqlCatalog) both use. Made here
    # so the layout does not depend on which client connects first; a V0 table gets the column added.
    psql_admin -d "$MESH_PG_CATALOG_DB" -v user="$MESH_PG_USER" >/dev/null 2>>"$LOGFILE" <<'EOF' \
        || die "could not create the Iceberg catalog tables" "$LOGFILE"
SET ROLE :"user";
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);
ALTER TABLE iceberg_tables ADD COLUMN IF NOT EXISTS iceberg_type VARCHAR(5);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000),
    PRIMARY KEY (catalog_name, namespace, property_key)
);
EOF
    mesh_login_ok || die "role $MESH_PG_USER cannot log in over TCP after provisioning" "$LOGFILE"
}

cmd_up() {
    cmd_install
    BIN="$(pg_bindir)"
    load_secrets
    mkdir -p "$D/log"
    local fp pid
    fp="$(server_args | sha256sum | cut -c1-16)"
    if pid="$(postmaster_pid)"; then
        if [[ "$(cat "$D/run/args.sha" 2>/dev/null)" == "$fp" ]] && ready && mesh_login_ok; then
            log "already running and healthy (pid $pid, $MESH_HOST:$MESH_PORT_POSTGRES)"
            return 0
        fi
        if [[ "$(cat "$D/run/args.sha" 2>/dev/null)" != "$fp" ]]; then
            log "settings changed: restarting"
            stop_server
        fi
    fi
    mkdir -p "$D/run"
    forget_orphan_cluster
    prepare_root
    [[ -f "$PGDATA/PG_VERSION" ]] || initdb_cluster
    chown -R "$PG_OWNER" "$PGDATA"
    write_hba
    if ! pid="$(postmaster_pid)"; then
        clear_stale_lock
        port_free_or_die "$MESH_HOST" "$MESH_PORT_POSTGRES" "postgres"
        log "starting postgres on $MESH_HOST:$MESH_PORT_POSTGRES"
        touch "$LOGFILE"
        chown "$PG_OWNER" "$LOGFILE"
        local args
        mapfile -t args < <(server_args)
        local drop=()
        is_root && drop=(setpriv --reuid=postgres --regid=postgres --init-groups --)
        start_daemon "$PIDFILE" "$LOGFILE" "${drop[@]}" env -i PATH="$SAFE_PATH" LANG=C "$BIN/postgres" "${args[@]}"
        echo "$fp" >"$D/run/args.sha"
    else
        # running with the right settings but not usable: reload pg_hba and re-provision below
        kill -HUP "$pid" 2>/dev/null || true
    fi
    WAIT_PIDFILE="$PIDFILE" WAIT_PATTERN="$PGDATA" wait_until "$TIMEOUT" "postgres accepting connections" ready \
        || die "postgres did not start" "$LOGFILE"
    provision
    log "ready: postgresql://$MESH_PG_USER@$MESH_HOST:$MESH_PORT_POSTGRES/{$MESH_PG_CATALOG_DB,$MESH_PG_DAGSTER_DB}"
}

stop_server() {
    local pid
    if pid="$(postmaster_pid)"; then
        # SIGINT = "fast" shutdown (SIGTERM would wait for every client, e.g. pooled connections)
        stop_pid "$pid" postgres "${MESH_PG_STOP_TIMEOUT:-30}" INT
    fi
    rm -f "$PIDFILE"
}

cmd_down() {
    stop_server
    if [[ "${1:-}" == "--purge" ]]; then
        if [[ "$PG_ROOT" != "$D" && -d "$PG_ROOT" ]]; then
            log "deleting $PG_ROOT"
            rm -rf "$PG_ROOT"
        fi
        log "deleting $D"
        rm -rf "$D"
    fi
}

cmd_status() {
    local pid state=stopped rss=0
    BIN="$(pg_bindir 2>/dev/null || true)"
    if pid="$(postmaster_pid)"; then
        state=unhealthy
        rss="$(rss_mb "$pid")"
        if [[ -n "$BIN" ]] && ready && load_secrets 2>/dev/null && mesh_login_ok; then
            state=healthy
        fi
    fi
    echo "postgres: $state (postgresql://$MESH_PG_USER@$MESH_HOST:$MESH_PORT_POSTGRES, dbs $MESH_PG_CATALOG_DB $MESH_PG_DAGSTER_DB, rss ${rss} MB)"
    [[ $state == healthy ]]
}

service_main "$@"
