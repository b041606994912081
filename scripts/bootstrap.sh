#!/usr/bin/env bash
# Install the project environment (.venv, with the `mesh` command) from uv.lock. Idempotent.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export UV_PYTHON_DOWNLOADS=never  # use the machine's Python 3.11; never fetch an interpreter

if python3 -m uv --version >/dev/null 2>&1; then
  uv=(python3 -m uv)
elif command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  echo "bootstrap: installing uv from PyPI" >&2
  python3 -m pip install --quiet "uv==0.13.8"
  uv=(python3 -m uv)
fi
# Compile every module to bytecode now, at install: where PYTHONDONTWRITEBYTECODE=1 is set (container
# images, CI), Python never writes .pyc files itself, and every process would compile Dagster and the
# platform from source on every start (`import dagster` about 5 s instead of 1.5 s on 2 cores).
# uv compiles what it installs into .venv; the project itself is an editable install, so its
# packages are compiled here too (.pyc files are git-ignored; a file edited later is recompiled).
# --all-packages: the platform and every domain package of the uv workspace (one lock)
"${uv[@]}" sync --frozen --all-packages --quiet --compile-bytecode
packages=()
for d in mesh_assets domains bench; do [[ -d "$d" ]] && packages+=("$d"); done
# an optimisation only: a module that does not compile fails with a better message when imported
.venv/bin/python -m compileall -q -j 0 "${packages[@]}" >/dev/null \
  || echo "bootstrap: some project modules did not compile to bytecode (see: python -m compileall mesh_assets domains)" >&2
# The dbt manifests are built here, at build time: code locations read them and never parse dbt.
.venv/bin/mesh dbt prepare
echo "bootstrap: environment ready ($(.venv/bin/python --version), mesh at .venv/bin/mesh)" >&2
