"""Running the dbt CLI: one way for build time (``mesh dbt prepare``, docs) and run time.

dbt runs as a subprocess with an explicit environment built from the settings (never this
process's environment as it happens to be), JSON log lines written to a log file, not to the
terminal: a ``mesh demo`` stays one line per run, and the run's own log in the UI gets the
warnings, errors and a summary (``mesh_assets.dbt.runtime``). dagster-dbt's ``DbtCliResource``
is not used for this: it always hands dbt the whole ``os.environ`` and echoes every dbt line to
the step's stdout (decision 0004).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mesh_assets.dbt.manifest import PROFILES_DIR


def dbt_executable() -> Path:
    """The dbt of this environment, whatever the PATH of the code server or CLI."""
    return Path(sys.executable).parent / "dbt"


@dataclass
class DbtInvocation:
    """A finished dbt command: its exit code, JSON log events and where its artifacts are."""

    command: list[str]
    returncode: int
    target_path: Path
    log_path: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    text: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def messages(self, *levels: str) -> Iterator[str]:
        for event in self.events:
            info = event.get("info", {})
            if info.get("level") in levels and info.get("msg"):
                yield str(info["msg"])

    def artifact(self, name: str) -> dict[str, Any] | None:
        path = self.target_path / name
        return json.loads(path.read_text()) if path.is_file() else None

    def error(self) -> str:
        """The dbt errors (or the tail of its output) in a few lines, for an exception message."""
        errors = list(self.messages("error"))
        return "\n".join(errors[-5:]) if errors else self.text[-2000:].strip()


def run_dbt(
    project_dir: Path,
    args: Sequence[str],
    *,
    target: str,
    env: Mapping[str, str],
    target_path: Path,
    log_path: Path,
) -> DbtInvocation:
    """Run ``dbt <args>`` on ``project_dir`` with ``env``; JSON lines go to ``log_path``."""
    target_path.mkdir(parents=True, exist_ok=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        str(dbt_executable()),
        "--log-format",
        "json",
        "--no-use-colors",
        "--no-send-anonymous-usage-stats",
        *args,
        "--project-dir",
        str(project_dir),
        "--profiles-dir",
        str(PROFILES_DIR),
        "--target",
        target,
        "--target-path",
        str(target_path),
    ]
    full_env = {
        **env,
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "DBT_LOG_PATH": str(log_path.parent),
        "PYTHONUNBUFFERED": "1",
    }
    done = subprocess.run(command, env=full_env, cwd=project_dir, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    with log_path.open("a") as log:
        log.write(f"$ {' '.join(command)}\n{output}\n")
    events = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return DbtInvocation(command, done.returncode, target_path, log_path, events, output)
