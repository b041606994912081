#!/usr/bin/env bash
# A local Apache Airflow (2.11.x or 3.x) for the mesh's Airflow bridging, on loopback, SQLite.
# Usage: airflow.sh install|up|down [--purge]|status
#
# Airflow's pins conflict with the project's (2.11 needs SQLAlchemy < 2), so each version lives in
# its own virtual environment, created with uv under a per-user cache outside the checkout:
#   ${XDG_CACHE_HOME:-$HOME/.cache}/mesh/airflow-<version>/venv   (MESH_AIRFLOW_CACHE overrides the root)
# with apache-airflow==<version> and dagster-airlift[in-airflow] (the proxy operator the DAGs use).
# Requirement pins: airflow/requirements-<major>.txt.
#
# State (AIRFLOW_HOME: SQLite database, logs, generated config) is under
# $MESH_SERVICES_DIR/airflow-<version>. Credentials are generated on first `up` like the other
# secrets: user $MESH_AIRFLOW_USER (default "mesh"), password in $MESH_SECRETS_DIR/airflow_password
# (mode 0600; or MESH_AIRFLOW_PASSWORD), never printed; the webserver/JWT signing keys likewise.
#
# Variables (all optional):
#   MESH_AIRFLOW_VERSION    2.11.2 (default) or a 3.x such as 3.3.2
#   MESH_PORT_AIRFLOW       loopback port of the webserver / api-server (mesh_assets/settings.py)
#   MESH_AIRFLOW_DAGS_DIR   the DAGs folder (default: the repo's airflow/dags)
#   MESH_AIRFLOW_DATA_DIR   where the legacy DAGs publish for the mesh (Airflow variable
#                           mesh_raw_dir; default: MESH_RAW_DIR, else the repo's data/raw)
#   MESH_AIRFLOW_DAGSTER_URL  the Dagster webserver the proxy operator calls (DAGSTER_URL)
#   MESH_AIRFLOW_TIMEOUT    seconds to wait for the API (default 300)
#   MESH_AIRFLOW_PARALLELISM  executor parallelism (default 2: a small machine)
# shellcheck source-path=SCRIPTDIR disable=SC2034
SERVICE=airflow
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
load_env

VERSION="${MESH_AIRFLOW_VERSION:-2.11.2}"
MAJOR="${VERSION%%.*}"
[[ "$MAJOR" == 2 || "$MAJOR" == 3 ]] || die "MESH_AIRFLOW_VERSION=$VERSION: the mesh supports Airflow 2.x and 3.x"
PORT="${MESH_PORT_AIRFLOW:-8089}"
[[ "$PORT" != 8080 ]] || die "MESH_PORT_AIRFLOW=8080 is reserved: pick another loopback port"
AIRLIFT_VERSION="${MESH_AIRLIFT_VERSION:-0.29.27}"
CACHE_ROOT="${MESH_AIRFLOW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/mesh}"
VENV="$CACHE_ROOT/airflow-$VERSION/venv"
REQUIREMENTS="$MESH_LOCAL_REPO/airflow/requirements-$MAJOR.txt"
DAGS_DIR="${MESH_AIRFLOW_DAGS_DIR:-$MESH_LOCAL_REPO/airflow/dags}"
DATA_DIR="${MESH_AIRFLOW_DATA_DIR:-${MESH_RAW_DIR:-$MESH_LOCAL_REPO/data/raw}}"
DAGSTER_URL="${MESH_AIRFLOW_DAGSTER_URL:-http://$MESH_HOST:${MESH_PORT_DAGSTER_WEBSERVER:-3070}}"
TIMEOUT="${MESH_AIRFLOW_TIMEOUT:-300}"
PARALLELISM="${MESH_AIRFLOW_PARALLELISM:-2}"
USER_NAME="${MESH_AIRFLOW_USER:-mesh}"

D="$MESH_SERVICES_DIR/airflow-$VERSION"
RUN="$D/run"
LOGS="$D/log"
if [[ "$MAJOR" == 2 ]]; then
    COMPONENTS=(webserver scheduler)
    HEALTH_PATH=/api/v1/health
else
    COMPONENTS=(api-server scheduler dag-processor)
    HEALTH_PATH=/api/v2/monitor/health
fi

cmd_install() {
    if [[ -x "$VENV/bin/airflow" && -f "$VENV/.mesh-installed" ]]; then
        return 0
    fi
    local start=$SECONDS uv=(python3 -m uv)
    command -v uv >/dev/null && uv=(uv)
    "${uv[@]}" --version >/dev/null 2>&1 || die "uv is needed to install Airflow (bootstrap.sh installs it)"
    mkdir -p "$(dirname "$VENV")"
    local pins=("apache-airflow==$VERSION" "dagster-airlift[in-airflow]==$AIRLIFT_VERSION")
    [[ -f "$REQUIREMENTS" ]] && pins+=(-r "$REQUIREMENTS")
    log "installing apache-airflow==$VERSION into $VENV"
    local ilog="$CACHE_ROOT/airflow-$VERSION/install.log"
    rm -rf "$VENV"
    "${uv[@]}" venv --python "$(command -v python3)" "$VENV" >"$ilog" 2>&1 || die "uv venv failed" "$ilog"
    "${uv[@]}" pip install --python "$VENV/bin/python" "${pins[@]}" >>"$ilog" 2>&1 \
        || die "installing apache-airflow==$VERSION failed" "$ilog"
    "$VENV/bin/airflow" version >>"$ilog" 2>&1 || die "airflow $VERSION does not start after install" "$ilog"
    touch "$VENV/.mesh-installed"
    log "installed airflow $VERSION in $((SECONDS - start))s ($(du -sh "$VENV" | cut -f1))"
}

token() { "$VENV/bin/python" -c "import secrets; print(secrets.token_urlsafe($1))"; }

# airflow_env: the environment of every Airflow process (secrets included: never print it).
airflow_env() {
    local password="$1"
    ENVV=(
        "PATH=$VENV/bin:$SAFE_PATH"
        "HOME=$D"
        "LANG=C.UTF-8"
        "AIRFLOW_HOME=$D"
        "AIRFLOW__CORE__DAGS_FOLDER=$DAGS_DIR"
        "AIRFLOW__CORE__LOAD_EXAMPLES=False"
        "AIRFLOW__CORE__PARALLELISM=$PARALLELISM"
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG=$PARALLELISM"
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=False"
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT=120"
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=sqlite:///$D/airflow.db"
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER=$LOGS/tasks"
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL=5"
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL=10"
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC=2"
        "AIRFLOW__SCHEDULER__PARSING_PROCESSES=1"
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL=5"
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL=10"
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=1"
        "AIRFLOW_VAR_MESH_RAW_DIR=$DATA_DIR"
        "DAGSTER_URL=$DAGSTER_URL"
        "NO_PROXY=*"
    )
    if [[ "$MAJOR" == 2 ]]; then
        ENVV+=(
            "AIRFLOW__CORE__EXECUTOR=SequentialExecutor"
            "AIRFLOW__WEBSERVER__WEB_SERVER_HOST=$MESH_HOST"
            "AIRFLOW__WEBSERVER__WEB_SERVER_PORT=$PORT"
            "AIRFLOW__WEBSERVER__WORKERS=1"
            "AIRFLOW__WEBSERVER__SECRET_KEY=$(read_secret airflow_secret_key)"
            "AIRFLOW__API__AUTH_BACKENDS=airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session"
        )
    else
        ENVV+=(
            "AIRFLOW__CORE__EXECUTOR=LocalExecutor"
            "AIRFLOW__CORE__AUTH_MANAGER=airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS=$USER_NAME:admin"
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE=$D/passwords.json"
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://$MESH_HOST:$PORT/execution/"
            "AIRFLOW__API__HOST=$MESH_HOST"
            "AIRFLOW__API__PORT=$PORT"
            "AIRFLOW__API__WORKERS=1"
            "AIRFLOW__API__BASE_URL=http://$MESH_HOST:$PORT"
            "AIRFLOW__API__SECRET_KEY=$(read_secret airflow_secret_key)"
            "AIRFLOW__API_AUTH__JWT_SECRET=$(read_secret airflow_jwt_secret)"
        )
    fi
}

healthy() { curl -fsS --max-time 5 "http://$MESH_HOST:$PORT$HEALTH_PATH" >/dev/null 2>&1; }

# the api-server renames its process ("airflow api_server -- host:..."): match the first word only
component_pattern() { echo "airflow ${1%%-*}"; }

cmd_up() {
    cmd_install
    mkdir -p "$D" "$RUN" "$LOGS" "$DATA_DIR"
    chmod 700 "$D"
    secret_file airflow_password token 18
    secret_file airflow_secret_key token 32
    secret_file airflow_jwt_secret token 32
    local password running=0 c
    password="$(read_secret airflow_password)"
    for c in "${COMPONENTS[@]}"; do
        pidfile_alive "$RUN/$c.pid" "$(component_pattern "$c")" >/dev/null && running=$((running + 1))
    done
    if ((running == ${#COMPONENTS[@]})) && healthy; then
        log "airflow $VERSION already running on http://$MESH_HOST:$PORT"
        return 0
    fi
    ((running == 0)) || cmd_down
    port_free_or_die "$MESH_HOST" "$PORT" "airflow $VERSION"
    airflow_env "$password"
    local start=$SECONDS
    if [[ "$MAJOR" == 3 ]]; then
        # the simple auth manager's users file: {"user": "password"}, readable by us only
        (umask 077 && USER_NAME="$USER_NAME" PW="$password" "$VENV/bin/python" -c \
            'import json, os; print(json.dumps({os.environ["USER_NAME"]: os.environ["PW"]}))' >"$D/passwords.json")
    fi
    log "airflow $VERSION: db migrate"
    env -i "${ENVV[@]}" "$VENV/bin/airflow" db migrate >"$LOGS/db-migrate.log" 2>&1 \
        || die "airflow db migrate failed" "$LOGS/db-migrate.log"
    if [[ "$MAJOR" == 2 ]]; then
        if ! env -i "${ENVV[@]}" "$VENV/bin/airflow" users list -o plain 2>/dev/null | grep -qw "$USER_NAME"; then
            # the password goes through stdin (getpass), never on a command line
            printf '%s\n%s\n' "$password" "$password" | env -i "${ENVV[@]}" "$VENV/bin/airflow" users create \
                --username "$USER_NAME" --firstname Mesh --lastname Platform --role Admin \
                --email "$USER_NAME@localhost" >"$LOGS/users-create.log" 2>&1 \
                || die "airflow users create failed" "$LOGS/users-create.log"
        fi
    fi
    for c in "${COMPONENTS[@]}"; do
        local args=("$c")
        [[ "$c" == api-server ]] && args+=(--host "$MESH_HOST" --port "$PORT")
        [[ "$c" == webserver ]] && args+=(--hostname "$MESH_HOST" --port "$PORT")
        (cd "$D" && start_daemon "$RUN/$c.pid" "$LOGS/$c.log" env -i "${ENVV[@]}" "$VENV/bin/airflow" "${args[@]}")
    done
    WAIT_PIDFILE="$RUN/${COMPONENTS[0]}.pid" WAIT_PATTERN="$(component_pattern "${COMPONENTS[0]}")" \
        wait_until "$TIMEOUT" "airflow $VERSION API on $MESH_HOST:$PORT" healthy \
        || die "airflow $VERSION did not answer http://$MESH_HOST:$PORT$HEALTH_PATH" "$LOGS/${COMPONENTS[0]}.log"
    log "airflow $VERSION ready on http://$MESH_HOST:$PORT in $((SECONDS - start))s ($(rss_mb $(group_pids)) MB)"
}

group_pids() {
    local c pid out=()
    for c in "${COMPONENTS[@]}"; do
        pid="$(head -n1 "$RUN/$c.pid" 2>/dev/null | tr -dc '0-9')" || true
        [[ -n "$pid" ]] && out+=("$pid")
    done
    echo "${out[@]:-}"
}

# stop_group PID NAME: TERM the process group (the component and its workers), then KILL.
stop_group() {
    local pid="$1" name="$2" i
    pid_alive "$pid" || return 0
    log "stopping $name (process group $pid)"
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 75; i++)); do
        pid_alive "$pid" || break
        sleep 0.2
    done
    kill -KILL -- "-$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.2
    done
    die "$name (pid $pid) survived SIGKILL"
}

cmd_down() {
    local c pid
    for c in "${COMPONENTS[@]}"; do
        pid="$(pidfile_alive "$RUN/$c.pid" "$(component_pattern "$c")")" && stop_group "$pid" "airflow $c"
        rm -f "$RUN/$c.pid"
    done
    if [[ "${1:-}" == --purge ]]; then
        log "removing $D"
        rm -rf "$D"
    fi
}

cmd_status() {
    local c ok=1
    for c in "${COMPONENTS[@]}"; do
        pidfile_alive "$RUN/$c.pid" "$(component_pattern "$c")" >/dev/null || ok=0
    done
    if ((ok)) && healthy; then
        echo "airflow $VERSION: up on http://$MESH_HOST:$PORT ($(rss_mb $(group_pids)) MB)"
        return 0
    fi
    echo "airflow $VERSION: down"
    return 1
}

service_main "$@"
