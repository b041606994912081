#!/usr/bin/env bash
# Debian's Chromium for the browser tests (tests/ui): installed when missing, then checked and its
# version printed. Idempotent; root (or passwordless sudo) is needed only to install.
# Usage: chromium.sh
# MESH_CHROMIUM: the browser the tests launch (default /usr/bin/chromium, Debian's package
# `chromium`); Playwright's own browser downloads are not used.
# Exit 1, with the reason, when Chromium is missing and cannot be installed, or does not start.
set -Eeuo pipefail

CHROMIUM="${MESH_CHROMIUM:-/usr/bin/chromium}"

log() { printf '%s [chromium] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() {
    log "ERROR: $1"
    if [[ -n "${2:-}" && -f "$2" ]]; then
        tail -n 30 "$2" >&2 || true
    fi
    exit 1
}

install_chromium() {
    [[ "$CHROMIUM" == /usr/bin/chromium ]] \
        || die "MESH_CHROMIUM=$CHROMIUM is not an executable file (unset it to use Debian's chromium)"
    command -v apt-get >/dev/null \
        || die "no $CHROMIUM and no apt-get here: install Chromium and set MESH_CHROMIUM to it"
    local sudo=()
    if [[ "$(id -u)" != 0 ]]; then
        command -v sudo >/dev/null && sudo -n true 2>/dev/null \
            || die "no $CHROMIUM: run this script as root (or with sudo) to apt-get install chromium"
        sudo=(sudo -n)
    fi
    local aptlog
    aptlog="$(mktemp -t mesh-chromium-apt.XXXXXX)"
    log "apt-get install chromium (log $aptlog)"
    if ! "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y --no-install-recommends chromium >"$aptlog" 2>&1; then
        log "apt-get install failed: apt-get update, then retrying"
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update >>"$aptlog" 2>&1 || true
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends chromium >>"$aptlog" 2>&1 \
            || die "apt-get install chromium failed" "$aptlog"
    fi
    [[ -x "$CHROMIUM" ]] || die "the chromium package is installed but $CHROMIUM is missing" "$aptlog"
}

[[ -x "$CHROMIUM" && -f "$CHROMIUM" ]] || install_chromium

# Debian's wrapper script prints a harmless shell warning on stderr: only stdout is the version.
version="$("$CHROMIUM" --version 2>/dev/null)" || die "$CHROMIUM --version failed"
[[ "$version" == *Chromium* || "$version" == *Chrome* ]] || die "$CHROMIUM --version printed '$version'"

# It must start headless, as the tests start it (as root, only without the sandbox).
dom="$(timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --dump-dom \
    'data:text/html,<p>mesh</p>' 2>/dev/null)" || die "$CHROMIUM does not start headless"
[[ "$dom" == *"<p>mesh</p>"* ]] || die "$CHROMIUM started headless but rendered nothing"

echo "chromium: $version ($CHROMIUM, headless ok)"
