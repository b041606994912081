#!/usr/bin/env bash
# The ITR tool (OS-Climate `itr` 1.1.10) in a virtualenv of its own, used by tests/oracle as a reference.
#
# Usage: itr_oracle.sh build|path|run [ARGS...]
#   build  create (or reuse) the venv; idempotent: a stamp file records the exact pins installed
#   path   print the venv's python (build first)
#   run    run tools/itr_oracle/run_itr.py inside the venv with ARGS (builds first)
#
# Why a separate venv: itr pins numpy 1.26, pandas 2.2, pytest 8.1 and friends, which clash with the
# project's own lock. The pins below are the ones that work on Python 3.11 (its pdm.lock at v1.1.10).
# `itr` is installed without its declared dependencies: most of them (sphinx, trino, tables, pygithub, ...)
# are for its docs, data vault or CI and are never imported by the scoring code we drive.
# The venv lives outside the checkout, per user: ${XDG_CACHE_HOME:-$HOME/.cache}/mesh/itr-1.1.10
set -Eeuo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
VENV="${MESH_ITR_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/mesh/itr-1.1.10}"
PYTHON_BIN="${MESH_ITR_PYTHON:-python3.11}"

PINS=(
    "itr==1.1.10"
    "numpy==1.26.2"
    "pandas==2.2.3"
    "Pint==0.24.4"
    "Pint-Pandas==0.6"
    "openscm-units==0.6.1"
    "pydantic==2.10.6"
    "pydantic_core==2.27.2"
    "openpyxl==3.1.2"
    "xlrd==2.0.1"
    "globalwarmingpotentials==0.11.1"
    "packaging==24.2"
)

log() { printf '%s [itr-oracle] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

stamp_text() { printf '%s\n' "${PINS[@]}"; }

build() {
    local stamp="$VENV/.mesh-pins"
    if [[ -x "$VENV/bin/python" && -f "$stamp" ]] && [[ "$(cat "$stamp")" == "$(stamp_text)" ]]; then
        log "up to date: $VENV"
        return 0
    fi
    command -v "$PYTHON_BIN" >/dev/null || die "no $PYTHON_BIN on PATH (set MESH_ITR_PYTHON to a Python 3.11)"
    mkdir -p "$(dirname "$VENV")"
    local tmp="$VENV.tmp.$$"
    rm -rf "$tmp"
    trap 'rm -rf "$tmp"' EXIT
    log "creating $VENV with $PYTHON_BIN"
    # Built aside and moved into place, so an interrupted build never leaves a half venv that looks done.
    "$PYTHON_BIN" -m venv "$tmp"
    local deps=("${PINS[@]:1}")
    "$tmp/bin/python" -m pip install --quiet "${deps[@]}" >&2 || die "pip could not install the pins: ${deps[*]}"
    "$tmp/bin/python" -m pip install --quiet --no-deps "${PINS[0]}" >&2 ||
        die "pip could not install ${PINS[0]}"
    "$tmp/bin/python" -c "import ITR.temperature_score, ITR.portfolio_aggregation" >&2 ||
        die "the venv was built but 'import ITR' fails"
    stamp_text >"$tmp/.mesh-pins"
    rm -rf "$VENV"
    mv "$tmp" "$VENV"
    trap - EXIT
    log "built $VENV"
}

case "${1:-}" in
build) build ;;
path)
    [[ -x "$VENV/bin/python" ]] || die "no venv at $VENV: run $0 build"
    echo "$VENV/bin/python"
    ;;
run)
    shift
    build
    exec "$VENV/bin/python" "$REPO/tools/itr_oracle/run_itr.py" "$@"
    ;;
*) die "usage: $0 build|path|run [ARGS...]" ;;
esac
