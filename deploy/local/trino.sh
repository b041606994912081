#!/usr/bin/env bash
# Trino (single node: coordinator + worker) on $MESH_HOST:$MESH_PORT_TRINO with one Iceberg catalog
# ($MESH_TRINO_CATALOG) on the PostgreSQL JDBC catalog and the Ceph S3 warehouse.
# Usage: trino.sh install|up|down [--purge]|status
# Server: io.trino:trino-server (tar.gz) fetched once with Maven into the per-user cache $MESH_CACHE_DIR
# (default ${XDG_CACHE_HOME:-~/.cache}/mesh, shared by every clone), unpacked there with only the
# plugins we use. State: $MESH_SERVICES_DIR/trino. Java: a 24+ JDK found by find_java (lib.sh).
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=trino
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

# Plugins kept from the tarball (each plugin loaded costs startup time and memory).
TRINO_PLUGINS="${MESH_TRINO_PLUGINS:-iceberg}"
JAVA_MIN="$(trino_java_min)"
TRINO_JAVA_HOME="" # set by resolve_java
HEAP="${MESH_TRINO_HEAP:-2G}"
TIMEOUT="${MESH_TRINO_TIMEOUT:-300}"
# iceberg.jdbc-catalog.catalog-name: must equal MeshSettings.catalog_name (pyiceberg SqlCatalog name)
CATALOG_NAME="${MESH_CATALOG_NAME:-mesh}"
MIN_RETENTION="${MESH_TRINO_MIN_RETENTION:-0s}"

D="$MESH_SERVICES_DIR/trino"
# one unpacked server per version and plugin set (clones with other plugins share the tarball only)
SERVER_HOME="$CACHE_DIR/trino-server-$TRINO_VERSION-${TRINO_PLUGINS// /+}"
M2="$CACHE_DIR/m2"
TARBALL="$M2/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz"
ETC="$D/etc"
DATA="$D/data"
LOGFILE="$D/log/server.log"
PIDFILE="$D/run/trino.pid"
PATTERN="io.trino.server.TrinoServer"

resolve_java() {
    [[ -n "$TRINO_JAVA_HOME" ]] && return 0
    TRINO_JAVA_HOME="$(find_java "$JAVA_MIN")" || exit 1
}

cmd_install() {
    resolve_java
    [[ -f "$SERVER_HOME/.mesh-installed" ]] && return 0
    with_cache_lock install_server
}

install_server() {
    [[ -f "$SERVER_HOME/.mesh-installed" ]] && return 0 # another clone filled the cache meanwhile
    local old="$MESH_SERVICES_DIR/cache/m2/io/trino/trino-server/$TRINO_VERSION/trino-server-$TRINO_VERSION.tar.gz"
    if [[ ! -s "$TARBALL" && -s "$old" ]]; then
        log "moving the tarball from the checkout's old cache ($old) to $M2"
        mkdir -p "$(dirname "$TARBALL")"
        mv "$old" "$TARBALL"
    fi
    if [[ ! -s "$TARBALL" ]]; then
        command -v mvn >/dev/null || apt_install maven
        log "downloading io.trino:trino-server:$TRINO_VERSION:tar.gz with Maven (about 820 MB)"
        mvn -B -q -C -Dmaven.repo.local="$M2" dependency:get \
            -Dartifact="io.trino:trino-server:$TRINO_VERSION:tar.gz" -Dtransitive=false \
            >"$CACHE_DIR/mvn.log" 2>&1 || die "mvn dependency:get io.trino:trino-server:$TRINO_VERSION failed" "$CACHE_DIR/mvn.log"
        [[ -s "$TARBALL" ]] || die "Maven finished but $TARBALL is missing" "$CACHE_DIR/mvn.log"
    fi
    log "unpacking trino-server-$TRINO_VERSION (plugins: $TRINO_PLUGINS)"
    local tmp="$CACHE_DIR/.unpack-$$"
    rm -rf "$tmp" "$SERVER_HOME"
    mkdir -p "$tmp"
    # the tarball hard-links jars across plugins: unpack it whole, then drop the plugins we do not use
    tar -xzf "$TARBALL" -C "$tmp" || die "could not unpack $TARBALL (delete it to download again)"
    local p keep
    for p in "$tmp/trino-server-$TRINO_VERSION/plugin"/*; do
        keep=0
        for k in $TRINO_PLUGINS; do [[ "${p##*/}" == "$k" ]] && keep=1; done
        ((keep)) || rm -rf "$p"
    done
    for k in $TRINO_PLUGINS; do
        [[ -d "$tmp/trino-server-$TRINO_VERSION/plugin/$k" ]] || die "plugin $k is not in trino-server-$TRINO_VERSION"
    done
    mv "$tmp/trino-server-$TRINO_VERSION" "$SERVER_HOME"
    rmdir "$tmp"
    touch "$SERVER_HOME/.mesh-installed"
    log "installed $SERVER_HOME ($(du -sh "$SERVER_HOME" | cut -f1))"
}

write_config() {
    mkdir -p "$ETC/catalog" "$DATA" "$D/log" "$D/run"
    chmod 700 "$D"
    [[ -s "$D/node.id" ]] || cat /proc/sys/kernel/random/uuid >"$D/node.id"
    local fs_flag=fs.native-s3.enabled
    ((TRINO_VERSION >= 481)) && fs_flag=fs.s3.enabled
    cat >"$ETC/node.properties" <<EOF
node.environment=mesh
node.id=$(cat "$D/node.id")
node.data-dir=$DATA
node.bind-ip=$MESH_HOST
node.internal-address=$MESH_HOST
EOF
    cat >"$ETC/config.properties" <<EOF
coordinator=true
node-scheduler.include-coordinator=true
http-server.http.port=$MESH_PORT_TRINO
discovery.uri=http://$MESH_HOST:$MESH_PORT_TRINO
query.max-memory=${MESH_TRINO_QUERY_MEMORY:-1GB}
query.max-memory-per-node=${MESH_TRINO_QUERY_MEMORY:-1GB}
task.concurrency=2
access-control.config-files=$ETC/access-control.properties
EOF
    # Access control from the contracts (docs/access.md): the rules are generated at every start
    # and Trino re-reads them every few seconds, so a contract change applies without a restart
    # (they are not part of the configuration fingerprint below). The platform's service user is
    # admin until runs act as their domain's principal; the health check may only list.
    (cd "$MESH_LOCAL_REPO" && "$MESH_PYTHON" -c 'from mesh_assets.cli.main import main; main()' \
        access trino-rules --profile lake --admin mesh --monitor mesh-healthcheck --out "$ETC/rules.json") >/dev/null \
        || die "could not generate Trino's access rules from the contracts (mesh access trino-rules)"
    cat >"$ETC/access-control.properties" <<EOF
access-control.name=file
security.config-file=$ETC/rules.json
security.refresh-period=${MESH_TRINO_RULES_REFRESH:-5s}
EOF
    cat >"$ETC/jvm.config" <<EOF
-server
-Xmx$HEAP
-Xms512M
-XX:+UseG1GC
-XX:G1HeapRegionSize=32M
-XX:+ExplicitGCInvokesConcurrent
-XX:+ExitOnOutOfMemoryError
-XX:-OmitStackTraceInFastThrow
-XX:ReservedCodeCacheSize=256M
-XX:PerMethodRecompilationCutoff=10000
-XX:PerBytecodeRecompilationCutoff=10000
-XX:+UnlockDiagnosticVMOptions
-Djdk.attach.allowAttachSelf=true
-Djdk.nio.maxCachedBufferSize=2000000
-Dfile.encoding=UTF-8
-XX:+EnableDynamicAgentLoading
-Djava.io.tmpdir=$DATA/tmp
EOF
    mkdir -p "$DATA/tmp"
    cat >"$ETC/log.properties" <<EOF
io.trino=INFO
# the startup dump of every property would print the S3 access key id
Bootstrap=WARN
EOF
    # secrets stay out of the file: Trino substitutes them from its environment at startup
    cat >"$ETC/catalog/$MESH_TRINO_CATALOG.properties" <<EOF
connector.name=iceberg
iceberg.catalog.type=jdbc
iceberg.jdbc-catalog.catalog-name=$CATALOG_NAME
iceberg.jdbc-catalog.driver-class=org.postgresql.Driver
iceberg.jdbc-catalog.connection-url=jdbc:postgresql://$MESH_HOST:$MESH_PORT_POSTGRES/$MESH_PG_CATALOG_DB
iceberg.jdbc-catalog.connection-user=$MESH_PG_USER
iceberg.jdbc-catalog.connection-password=\${ENV:MESH_PG_PASSWORD}
iceberg.jdbc-catalog.schema-version=V1
# reconnect instead of failing the first query after a PostgreSQL restart (57P01 admin_shutdown, ...)
iceberg.jdbc-catalog.retryable-status-codes=57P01,57P02,57P03,08000,08003,08006
iceberg.jdbc-catalog.default-warehouse-dir=s3://$MESH_S3_BUCKET/iceberg
iceberg.file-format=PARQUET
iceberg.register-table-procedure.enabled=true
# lowest retention_threshold that expire_snapshots / remove_orphan_files accept (Trino default 7d);
# the local stack allows any, so maintenance jobs must pass their own threshold
iceberg.expire-snapshots.min-retention=$MIN_RETENTION
iceberg.remove-orphan-files.min-retention=$MIN_RETENTION
$fs_flag=true
s3.endpoint=http://$MESH_HOST:$MESH_PORT_S3
s3.region=$MESH_S3_REGION
s3.path-style-access=true
s3.aws-access-key=\${ENV:MESH_S3_ACCESS_KEY}
s3.aws-secret-key=\${ENV:MESH_S3_SECRET_KEY}
EOF
}

# the java command line (what bin/launcher would run), one word a line
java_command() {
    printf '%s\n' "$TRINO_JAVA_HOME/bin/java"
    grep -v '^\s*\(#\|$\)' "$ETC/jvm.config"
    # like bin/launcher: node.properties become system properties
    grep -v '^\s*\(#\|$\)' "$ETC/node.properties" | sed 's/^/-D/'
    printf '%s\n' -cp "$SERVER_HOME/lib/*" "-Dconfig=$ETC/config.properties" \
        "-Dlog.levels-file=$ETC/log.properties" "-Dcatalog.config-dir=$ETC/catalog" \
        "-Dplugin.dir=$SERVER_HOME/plugin" "$PATTERN"
}

check() { "${LAKECTL[@]}" trino-check; }

cmd_up() {
    cmd_install
    load_secrets
    write_config
    local fp pid
    fp="$({ cat "$ETC"/*.properties "$ETC/jvm.config" "$ETC/catalog"/*.properties; java_command; } | sha256sum | cut -c1-16)"
    if pid="$(pidfile_alive "$PIDFILE" "$PATTERN")"; then
        if [[ "$(cat "$D/run/config.sha" 2>/dev/null)" == "$fp" ]]; then
            if check >/dev/null 2>&1; then
                log "already running and healthy (pid $pid, http://$MESH_HOST:$MESH_PORT_TRINO)"
                return 0
            fi
            log "running (pid $pid) but not answering yet: waiting"
        else
            log "configuration changed: restarting"
            stop_pid "$pid" trino 60 TERM
        fi
    fi
    if ! pid="$(pidfile_alive "$PIDFILE" "$PATTERN")"; then
        port_free_or_die "$MESH_HOST" "$MESH_PORT_TRINO" "trino"
        log "starting Trino $TRINO_VERSION on http://$MESH_HOST:$MESH_PORT_TRINO (heap $HEAP, Java $(java_major "$TRINO_JAVA_HOME") at $TRINO_JAVA_HOME)"
        local cmd
        mapfile -t cmd < <(java_command)
        # only the variables Trino needs: the catalog reads the secrets with ${ENV:...}
        cd "$DATA" || die "cannot cd to $DATA"
        start_daemon "$PIDFILE" "$LOGFILE" env -i PATH="$SAFE_PATH" HOME="$D" LANG=C.UTF-8 JAVA_HOME="$TRINO_JAVA_HOME" \
            MESH_PG_PASSWORD="$MESH_PG_PASSWORD" MESH_S3_ACCESS_KEY="$MESH_S3_ACCESS_KEY" \
            MESH_S3_SECRET_KEY="$MESH_S3_SECRET_KEY" AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED \
            AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED "${cmd[@]}"
        echo "$fp" >"$D/run/config.sha"
    fi
    WAIT_PIDFILE="$PIDFILE" WAIT_PATTERN="$PATTERN" wait_until "$TIMEOUT" "Trino answers SELECT 1 and SHOW SCHEMAS FROM $MESH_TRINO_CATALOG" check \
        || die "trino did not become ready" "$LOGFILE"
    log "ready: http://$MESH_HOST:$MESH_PORT_TRINO (catalog $MESH_TRINO_CATALOG)"
}

cmd_down() {
    local pid
    if pid="$(pidfile_alive "$PIDFILE" "$PATTERN")"; then
        stop_pid "$pid" trino "${MESH_TRINO_STOP_TIMEOUT:-60}" TERM
    fi
    rm -f "$PIDFILE"
    if [[ "${1:-}" == "--purge" ]]; then
        log "deleting $D"
        rm -rf "$D"
    fi
}

cmd_status() {
    local pid state=stopped rss=0
    if pid="$(pidfile_alive "$PIDFILE" "$PATTERN")"; then
        state=unhealthy
        rss="$(rss_mb "$pid")"
        check >/dev/null 2>&1 && state=healthy
    fi
    echo "trino: $state (http://$MESH_HOST:$MESH_PORT_TRINO, version $TRINO_VERSION, catalog $MESH_TRINO_CATALOG, rss ${rss} MB)"
    [[ $state == healthy ]]
}

service_main "$@"
