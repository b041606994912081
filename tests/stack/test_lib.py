"""deploy/local/lib.sh's wait for a daemon: a daemon still starting is waited for, a dead one ends the wait.

Just after `start_daemon` the recorded pid is the subshell that closes its descriptors and then
execs the daemon; its command line is not the daemon's yet. The wait used to match the command
line and called such a daemon dead (kube-apiserver "did not become ready" on a busy machine).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from mesh_assets.settings import REPO_ROOT


def _bash(script: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f"source deploy/local/lib.sh\n{script}"],
        cwd=REPO_ROOT,
        env={"PATH": "/usr/bin:/bin", "MESH_HOME": str(home), "HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_daemon_whose_command_line_is_not_yet_its_own_is_waited_for(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    script = f"""
sleep 60 & echo $! > {tmp_path}/daemon.pid   # alive, but not (yet) "the-daemon"
( sleep 2; touch {ready} ) &                  # it becomes ready a little later
WAIT_PIDFILE={tmp_path}/daemon.pid WAIT_PATTERN=the-daemon wait_until 60 "the daemon" test -f {ready}
echo "waited: $?"
kill %1
"""
    result = _bash(script, tmp_path)
    assert "waited: 0" in result.stdout, result.stderr


def test_a_daemon_that_died_ends_the_wait_at_once(tmp_path: Path) -> None:
    script = f"""
true & echo $! > {tmp_path}/daemon.pid; wait
WAIT_PIDFILE={tmp_path}/daemon.pid WAIT_PATTERN=the-daemon wait_until 60 "the daemon" false || echo "gave up: $?"
"""
    started = time.monotonic()
    result = _bash(script, tmp_path)
    assert "gave up: 1" in result.stdout, result.stderr
    assert "died while waiting" in result.stderr
    assert time.monotonic() - started < 50, "the wait ran to its timeout instead of seeing the daemon die"
