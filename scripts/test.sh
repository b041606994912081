#!/usr/bin/env bash
# The whole test suite: installs the environment, lints, starts the local lake stack
# (Ceph RADOS Gateway, PostgreSQL, Trino), runs every test against it, and stops it again.
# Extra arguments go to pytest. MESH_SKIP_LAKE=1 skips the stack (not allowed under CI=true).
#
# Everything that can be missing is checked (and installed when it can be: Debian packages as root,
# the Trino download into the per-user cache) before the long steps start; what cannot be provided
# here (e.g. a Java 24+ JDK) stops the run at once with one sentence saying what to do.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
started=$(date +%s)
in_ci=0
[[ "${CI:-}" == "true" ]] && in_ci=1
lake=1
[[ "${MESH_SKIP_LAKE:-0}" == "1" && $in_ci == 0 ]] && lake=0

fail() {
  echo "test: $*" >&2
  exit 1
}

if ((lake)); then
  # In a second, before anything long: what no step of ours can install (a Java 24+ JDK, disk space,
  # Debian packages when we are not root). settings.py needs only the standard library.
  echo "== lake stack preflight (Java 24+, disk, Debian packages)"
  MESH_PYTHON="$(command -v python3)" bash deploy/local/stack.sh preflight \
    || fail "the lake stack cannot run here: see the ERROR line above"
fi

echo "== environment (uv sync, bytecode, dbt manifests)"
bash scripts/bootstrap.sh

if ((lake)); then
  echo "== lake stack requirements (Debian packages, the Trino server; cached after the first run)"
  bash deploy/local/stack.sh install || fail "the lake stack cannot be installed here: see the ERROR line above"
fi

echo "== chromium (the browser tests in tests/ui)"
if ! bash deploy/local/chromium.sh; then
  ((in_ci == 0)) || fail "Chromium is required under CI=true (see the line above)"
  echo "== no Chromium: the UI tests will be skipped"
fi

echo "== Kubernetes API server and helm (tests/k8s; built from the Go module proxy once per user, then cached)"
if ! bash deploy/local/k8s.sh install; then
  ((in_ci == 0)) || fail "kube-apiserver and helm are required under CI=true (see the line above)"
  echo "== no Kubernetes API server: the tests in tests/k8s will be skipped"
fi

echo "== lint (ruff check, ruff format --check, import contracts, pyright)"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
# the layering of docs/architecture.md: domains independent, platform below domains, no cycles
.venv/bin/lint-imports
# types of the platform library (pyproject [tool.pyright])
.venv/bin/pyright --warnings mesh_assets

echo "== contracts (mesh validate)"
.venv/bin/mesh validate

if ((lake)); then
  echo "== lake stack up"
  # The trap comes first: when `up` fails halfway (or we are interrupted), whatever it started is
  # stopped; stack.sh up does that itself too, the trap also covers the tests' own failures.
  trap 'echo "== lake stack down"; .venv/bin/mesh infra down || true' EXIT
  .venv/bin/mesh infra up
else
  echo "== lake stack skipped (MESH_SKIP_LAKE=1): lake tests will be skipped"
fi

echo "== tests"
set +e
.venv/bin/pytest "$@"
code=$?
set -e
if [[ $code -eq 5 ]]; then
  echo "test: pytest collected no tests: failing" >&2
  code=1
fi
echo "== finished in $(($(date +%s) - started))s with exit code $code"
exit $code
