# shellcheck shell=bash
# Shared helpers for the local lake stack scripts (sourced, never executed).
#
# Every port, path and name comes from `python -m mesh_assets.settings env` (loaded here when
# MESH_SERVICES_DIR is unset); secrets come from MESH_<NAME> or $MESH_SECRETS_DIR/<name> and are
# never printed. Logging goes to stderr; stdout is reserved for `status` lines.

set -Eeuo pipefail

MESH_LOCAL_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
MESH_LOCAL_REPO="$(cd "$MESH_LOCAL_DIR/../.." && pwd)"
MESH_PYTHON="${MESH_PYTHON:-$MESH_LOCAL_REPO/.venv/bin/python}"
LAKECTL=("$MESH_PYTHON" "$MESH_LOCAL_DIR/lakectl.py")

# A small, fixed PATH for everything we start (daemons get nothing else from our environment).
# shellcheck disable=SC2034 # used by the service scripts
SAFE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

SERVICE="${SERVICE:-stack}"

log() { printf '%s [%s] %s\n' "$(date +%H:%M:%S)" "$SERVICE" "$*" >&2; }
warn() { log "WARNING: $*"; }

# die MESSAGE [LOGFILE]: print MESSAGE (and the tail of LOGFILE) to stderr, exit 1.
# When MESH_LAKE_ERROR_FILE is set (stack.sh sets it), the message is also appended there, so that
# stack.sh can repeat the real cause in its last line instead of "postgres failed".
die() {
    log "ERROR: $1"
    if [[ -n "${MESH_LAKE_ERROR_FILE:-}" ]]; then
        printf '%s: %s\n' "$SERVICE" "$1" >>"$MESH_LAKE_ERROR_FILE" 2>/dev/null || true
    fi
    if [[ -n "${2:-}" && -f "$2" ]]; then
        printf -- '----- last 30 lines of %s -----\n' "$2" >&2
        tail -n 30 "$2" >&2 || true
        printf -- '----- end of %s -----\n' "$2" >&2
    fi
    exit 1
}

load_env() {
    if [[ -z "${MESH_SERVICES_DIR:-}" ]]; then
        [[ -x "$MESH_PYTHON" ]] || die "no Python at $MESH_PYTHON (set MESH_PYTHON or create the venv)"
        local out
        # settings.py needs only the standard library: run the file itself, which takes 0.1 s,
        # where `-m mesh_assets.settings` imports the package and with it Dagster (seconds)
        out="$(cd "$MESH_LOCAL_REPO" && "$MESH_PYTHON" -c 'import runpy, sys
sys.argv = ["mesh_assets/settings.py", "env"]
runpy.run_path(sys.argv[0], run_name="__main__")' 2>/dev/null)" \
            || out="$(cd "$MESH_LOCAL_REPO" && "$MESH_PYTHON" -m mesh_assets.settings env)" \
            || die "python -m mesh_assets.settings env failed"
        eval "$out"
    fi
    local v
    for v in MESH_HOME MESH_SERVICES_DIR MESH_SECRETS_DIR MESH_HOST MESH_PORT_S3 MESH_PORT_POSTGRES \
        MESH_PORT_TRINO MESH_PORT_CEPH_MON MESH_PORT_CEPH_MON_V1 MESH_S3_BUCKET MESH_S3_REGION MESH_PG_USER \
        MESH_PG_CATALOG_DB MESH_PG_DAGSTER_DB MESH_TRINO_CATALOG; do
        [[ -n "${!v:-}" ]] || die "$v is not set (expected from python -m mesh_assets.settings env)"
    done
    export MESH_HOME MESH_SERVICES_DIR MESH_SECRETS_DIR MESH_HOST MESH_PORT_S3 MESH_PORT_POSTGRES \
        MESH_PORT_TRINO MESH_PORT_CEPH_MON MESH_PORT_CEPH_MON_V1 MESH_S3_BUCKET MESH_S3_REGION MESH_PG_USER \
        MESH_PG_CATALOG_DB MESH_PG_DAGSTER_DB MESH_TRINO_CATALOG
    # Every S3 client we run talks to RGW, which rejects the streaming checksums of recent AWS SDKs.
    export AWS_REQUEST_CHECKSUM_CALCULATION=WHEN_REQUIRED AWS_RESPONSE_CHECKSUM_VALIDATION=WHEN_REQUIRED
    # Downloads and builds (the 820 MB Trino tarball, Maven's repository, the unpacked server) are
    # shared by every clone of this user on this machine: a fresh clone (CI) must not fetch them again.
    # They live outside the checkout, in the XDG cache, and never hold state or secrets.
    CACHE_DIR="${MESH_CACHE_DIR:-${XDG_CACHE_HOME:-$(user_home)/.cache}/mesh}"
    export MESH_CACHE_DIR="$CACHE_DIR"
    mkdir -p "$MESH_SERVICES_DIR" "$CACHE_DIR"
}

# with_cache_lock CMD...: run CMD holding $CACHE_DIR/.lock (clones share the cache; one fills it).
with_cache_lock() {
    local fd
    exec {fd}>"$CACHE_DIR/.lock"
    flock -w "${MESH_LAKE_LOCK_TIMEOUT:-1800}" "$fd" || die "another clone holds $CACHE_DIR/.lock (still downloading?)"
    "$@"
    local rc=$?
    exec {fd}>&-
    return "$rc"
}

ensure_secrets() {
    local name var missing=0
    for name in pg_password s3_access_key s3_secret_key; do
        var="MESH_$(tr '[:lower:]' '[:upper:]' <<<"$name")"
        [[ -n "${!var:-}" || -s "$MESH_SECRETS_DIR/$name" ]] || missing=1
    done
    ((missing)) || return 0
    (cd "$MESH_LOCAL_REPO" && "$MESH_PYTHON" -c \
        'from mesh_assets.settings import get_settings; get_settings().ensure_secrets()') \
        || die "could not create the secrets under $MESH_SECRETS_DIR"
}

# read_secret NAME: MESH_<NAME> if set, else the file $MESH_SECRETS_DIR/<name> (printed on stdout:
# only ever use it in a command substitution that goes to a variable).
read_secret() {
    local name="$1" var
    var="MESH_$(tr '[:lower:]' '[:upper:]' <<<"$name")"
    if [[ -n "${!var:-}" ]]; then
        printf '%s' "${!var}"
    elif [[ -f "$MESH_SECRETS_DIR/$name" ]]; then
        tr -d '\n' <"$MESH_SECRETS_DIR/$name"
    else
        die "secret $name is not set: export $var or create $MESH_SECRETS_DIR/$name"
    fi
}

# load_secrets: export MESH_PG_PASSWORD / MESH_S3_ACCESS_KEY / MESH_S3_SECRET_KEY for child processes.
load_secrets() {
    ensure_secrets
    MESH_PG_PASSWORD="$(read_secret pg_password)"
    MESH_S3_ACCESS_KEY="$(read_secret s3_access_key)"
    MESH_S3_SECRET_KEY="$(read_secret s3_secret_key)"
    export MESH_PG_PASSWORD MESH_S3_ACCESS_KEY MESH_S3_SECRET_KEY
}

# secret_file NAME CMD...: create $MESH_SECRETS_DIR/NAME (0600) from CMD's output unless it exists
# (generated credentials: made once, never printed).
secret_file() {
    local name="$1" path="$MESH_SECRETS_DIR/$1"
    shift
    mkdir -p "$MESH_SECRETS_DIR"
    chmod 700 "$MESH_SECRETS_DIR"
    if [[ ! -s "$path" ]]; then
        (umask 077 && "$@" >"$path") || die "could not create $path"
    fi
    chmod 600 "$path"
}

is_root() { [[ "$(id -u)" == 0 ]]; }

user_home() { echo "${HOME:-$(getent passwd "$(id -u)" | cut -d: -f6)}"; }

# first_blocking_dir USER PATH: print the first directory from / down to PATH that USER cannot
# traverse (search permission), nothing when USER can reach PATH. Root only (runs `test` as USER).
first_blocking_dir() {
    local user="$1" path="$2" dir="" part
    local -a parts
    IFS=/ read -r -a parts <<<"${path#/}"
    for part in "${parts[@]}"; do
        [[ -n "$part" ]] || continue
        dir="$dir/$part"
        [[ -e "$dir" ]] || return 0 # does not exist yet: created by us with the right owner
        if ! setpriv --reuid="$user" --regid="$user" --init-groups -- test -x "$dir" 2>/dev/null; then
            echo "$dir"
            return 0
        fi
    done
}

# The newest trino-server that the Maven repository serves (477 and later are not published there).
TRINO_VERSION="${MESH_TRINO_VERSION:-476}"
# The Java feature release that TRINO_VERSION needs (476: 24; 479 and later: 25).
trino_java_min() { if ((TRINO_VERSION >= 479)); then echo 25; else echo 24; fi; }

# ---- Java -----------------------------------------------------------------------------------

# java_major JAVA_HOME: the feature version (17, 21, 25, ...) of the JDK there, or nothing. Reads the
# JDK's `release` file (instant); starts the JVM only when there is none.
java_major() {
    [[ -x "$1/bin/java" ]] || return 1
    local v=""
    [[ -f "$1/release" ]] && v="$(sed -n 's/^JAVA_VERSION="\([0-9.]*\).*/\1/p' "$1/release" | head -n1)"
    [[ -n "$v" ]] || v="$("$1/bin/java" -XshowSettings:properties -version 2>&1 \
        | sed -n 's/^ *java.specification.version = \([0-9.]*\).*/\1/p' | head -n1)"
    v="${v#1.}" # 1.8 -> 8
    [[ -n "$v" ]] && echo "${v%%.*}"
}

# find_java MIN: print the JAVA_HOME of a JDK >= MIN. Order: MESH_TRINO_JAVA_HOME (must fit, else an
# error), JAVA_HOME (skipped with a note when older), then the usual install locations, newest first.
# Otherwise dies with one sentence saying what is missing and how to provide it. Use it as
# `home="$(find_java 24)" || exit 1` (die in the command substitution has already said why).
find_java() {
    local min="$1" major cand best="" best_major=0
    if [[ -n "${MESH_TRINO_JAVA_HOME:-}" ]]; then
        major="$(java_major "$MESH_TRINO_JAVA_HOME" 2>/dev/null || true)"
        if [[ -n "$major" ]] && ((major >= min)); then
            echo "$MESH_TRINO_JAVA_HOME"
            return 0
        fi
        die "MESH_TRINO_JAVA_HOME=$MESH_TRINO_JAVA_HOME is ${major:+Java $major, }not a Java $min+ JDK: point it at one (a directory with bin/java), or unset it to search the usual locations"
    fi
    if [[ -n "${JAVA_HOME:-}" ]]; then
        major="$(java_major "$JAVA_HOME" 2>/dev/null || true)"
        if [[ -n "$major" ]] && ((major >= min)); then
            echo "$JAVA_HOME"
            return 0
        fi
        log "JAVA_HOME=$JAVA_HOME is ${major:+Java $major, }not Java $min+: looking elsewhere"
    fi
    local home
    home="$(user_home)"
    local -a candidates=(/usr/lib/jvm/* /usr/java/* /opt/java/* /opt/*jdk* /opt/jdk/* /usr/local/*jdk*
        /usr/local/lib/jvm/* /usr/local/java/* "$home"/.sdkman/candidates/java/* "$home"/.jdks/*)
    # a java on PATH (e.g. /usr/bin/java -> /etc/alternatives -> a JDK) counts too
    if command -v java >/dev/null; then
        candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")")
    fi
    for cand in "${candidates[@]}"; do
        [[ -x "$cand/bin/java" ]] || continue
        major="$(java_major "$cand" 2>/dev/null || true)"
        [[ -n "$major" ]] || continue
        if ((major >= min && major > best_major)); then
            best="$cand"
            best_major="$major"
        fi
    done
    if [[ -n "$best" ]]; then
        echo "$best"
        return 0
    fi
    die "Trino needs a Java $min+ JDK and none was found (MESH_TRINO_JAVA_HOME, JAVA_HOME, /usr/lib/jvm, /opt, /usr/local, ~/.sdkman, ~/.jdks; Debian 12 ships only Java 17): install one, e.g. Eclipse Temurin 25 from https://adoptium.net, and set MESH_TRINO_JAVA_HOME to its directory"
}

# apt_install PKG...: install Debian packages that are missing (root only).
apt_install() {
    local missing=() p
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    is_root || die "missing Debian packages (${missing[*]}): run as root or install them first"
    log "apt-get install ${missing[*]}"
    local aptlog="$MESH_SERVICES_DIR/apt.log"
    # the services install side by side (stack.sh): wait for dpkg's lock instead of failing on it
    local apt=(apt-get -o DPkg::Lock::Timeout=900 -y --no-install-recommends)
    if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >>"$aptlog" 2>&1; then
        log "apt-get install failed, running apt-get update and retrying"
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" update >>"$aptlog" 2>&1 || true
        DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >>"$aptlog" 2>&1 \
            || die "apt-get install ${missing[*]} failed" "$aptlog"
    fi
}

# ---- processes ------------------------------------------------------------------------------

# pid_alive PID: true if PID runs and is not a zombie. A multi-threaded daemon whose main thread has
# exited shows as a zombie while its other threads still shut down (and hold its ports): alive.
pid_alive() {
    local pid="$1" state threads
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [[ -r "/proc/$pid/stat" ]] || return 1
    state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$pid/stat" 2>/dev/null)" || return 1
    [[ -n "$state" ]] || return 1
    if [[ "$state" == Z || "$state" == X ]]; then
        threads="$(sed -n 's/^Threads:[[:space:]]*//p' "/proc/$pid/status" 2>/dev/null)"
        [[ "${threads:-1}" -gt 1 ]]
        return
    fi
    return 0
}

# pidfile_alive FILE PATTERN: true if FILE holds the pid of a live process whose command line
# contains PATTERN (protects against pid reuse). Echoes the pid.
pidfile_alive() {
    local file="$1" pattern="$2" pid
    [[ -f "$file" ]] || return 1
    pid="$(head -n1 "$file" 2>/dev/null | tr -dc '0-9')"
    pid_alive "$pid" || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$pattern" || return 1
    echo "$pid"
}

# start_daemon PIDFILE LOGFILE CMD...: run CMD in its own session, detached from our stdio,
# and record its pid. CMD must stay in the foreground (exec chains keep the pid).
start_daemon() {
    local pidfile="$1" logfile="$2"
    shift 2
    mkdir -p "$(dirname "$pidfile")" "$(dirname "$logfile")"
    printf '\n===== %s start: %s\n' "$(date -Is)" "$1" >>"$logfile"
    (
        # close every inherited descriptor above stderr (our lock, callers' pipes): a daemon
        # holding them would keep the lock taken and a caller's output pipe open forever
        local fd
        for fd in /proc/self/fd/*; do
            fd="${fd##*/}"
            ((fd > 2)) && eval "exec $fd>&-" 2>/dev/null
        done
        exec setsid "$@" >>"$logfile" 2>&1 </dev/null
    ) &
    echo $! >"$pidfile"
}

# stop_pid PID NAME [TIMEOUT] [SIGNAL]: SIGNAL (default TERM), wait TIMEOUT s, then SIGKILL.
stop_pid() {
    local pid="$1" name="$2" timeout="${3:-30}" sig="${4:-TERM}" i
    pid_alive "$pid" || return 0
    log "stopping $name (pid $pid, SIG$sig)"
    kill -s "$sig" "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 5; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.2
    done
    warn "$name (pid $pid) still running after ${timeout}s: SIGKILL"
    kill -s KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        pid_alive "$pid" || return 0
        sleep 0.2
    done
    die "$name (pid $pid) survived SIGKILL"
}

# wait_until TIMEOUT DESCRIPTION CMD...: retry CMD every second until it succeeds or TIMEOUT s pass.
# If WAIT_PIDFILE/WAIT_PATTERN are set, fail early when that daemon dies.
wait_until() {
    local timeout="$1" what="$2" start=$SECONDS
    shift 2
    while true; do
        if "$@" >/dev/null 2>&1; then
            return 0
        fi
        # the pid alone: just after start_daemon the process may still be the subshell that execs
        # the daemon (its command line is not the daemon's yet), which a pattern would call dead
        if [[ -n "${WAIT_PIDFILE:-}" ]] && ! pid_alive "$(head -n1 "$WAIT_PIDFILE" 2>/dev/null | tr -dc '0-9')"; then
            log "the process behind $WAIT_PIDFILE died while waiting for: $what"
            return 1
        fi
        if ((SECONDS - start >= timeout)); then
            log "timed out after ${timeout}s waiting for: $what"
            return 1
        fi
        sleep 1
    done
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# port_free_or_die HOST PORT WHAT: fail with a clear message if someone else listens there.
port_free_or_die() {
    if port_open "$1" "$2"; then
        die "$1:$2, the $3 port, is already in use by another process (set MESH_PORT_* to move it)"
    fi
}

# with_lock CMD...: run CMD holding $MESH_SERVICES_DIR/.lock (nested calls do not re-lock).
with_lock() {
    if [[ -n "${MESH_LAKE_LOCKED:-}" ]]; then
        "$@"
        return
    fi
    mkdir -p "$MESH_SERVICES_DIR"
    exec {lockfd}>"$MESH_SERVICES_DIR/.lock"
    if ! flock -w "${MESH_LAKE_LOCK_TIMEOUT:-900}" "$lockfd"; then
        die "another deploy/local script holds $MESH_SERVICES_DIR/.lock"
    fi
    export MESH_LAKE_LOCKED=1
    "$@"
}

# fingerprint FILE...: a short hash of the given files (config change detection).
fingerprint() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }

rss_mb() { "${LAKECTL[@]}" rss "$@" 2>/dev/null || echo "?"; }

# service_main ARGS: the subcommands every service script offers (install|up|down [--purge]|status).
# The script defines cmd_install, cmd_up, cmd_down and cmd_status before calling it.
service_main() {
    case "${1:-}" in
        install) with_lock cmd_install ;;
        up) with_lock cmd_up ;;
        down) with_lock cmd_down "${2:-}" ;;
        status) cmd_status ;;
        *)
            echo "usage: $0 install|up|down [--purge]|status" >&2
            exit 2
            ;;
    esac
}
