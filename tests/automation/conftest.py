"""Daemon-driven tests: the real workspace served by DagsterServices on an isolated instance."""

import importlib.util
from pathlib import Path

_LAKE = Path(__file__).resolve().parents[1] / "lake" / "conftest.py"
_spec = importlib.util.spec_from_file_location("mesh_tests_lake_conftest", _LAKE)
_lake = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lake)

# the lake stack fixture (fails under CI=true when the stack cannot start; never skips there)
lake_stack = _lake.lake_stack
