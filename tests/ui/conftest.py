"""The Dagster UI in a real browser: Dagster's services on an isolated instance, and headless Chromium.

* ``dagster_ui``: ``DagsterServices`` (one code server per domain of ``workspace.yaml``, the
  webserver; no daemon, so nothing runs that the test did not launch) on a fresh local-profile
  ``MESH_HOME`` (catalog, warehouse and Dagster instance in a temporary folder) and a free port.
* ``browser`` / ``page``: Debian's Chromium (``/usr/bin/chromium``, or ``MESH_CHROMIUM``) driven by
  Playwright's sync API, with a trace recorded for the whole module.
* ``shots``: screenshots for a reviewer, numbered in the order they are taken, under
  ``.mesh/test-artifacts/ui/`` (or ``MESH_UI_ARTIFACTS``), emptied when the session starts; the
  Playwright trace (``trace.zip``, open with ``playwright show-trace``) lands there too.

Without Chromium (or the playwright package) the tests skip locally and FAIL under ``CI=true``:
``deploy/local/chromium.sh`` installs it.
"""

from __future__ import annotations

import os
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mesh_assets.settings import REPO_ROOT

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = Path(os.environ.get("MESH_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("MESH_UI_ARTIFACTS", REPO_ROOT / ".mesh" / "test-artifacts" / "ui"))
# The community sign-up dialog the UI opens on a fresh browser profile covers the page: dismissed.
NO_NUX = "window.localStorage.setItem('communityNux', JSON.stringify('1'));"
VIEWPORT = {"width": 1600, "height": 1000}


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason}: the UI tests cannot be skipped under CI=true (run deploy/local/chromium.sh)")
    pytest.skip(f"{reason} (deploy/local/chromium.sh installs Chromium)")


@pytest.fixture(scope="session")
def chromium() -> Path:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}")
    return CHROMIUM


class Shots:
    """Numbered screenshots in the artifacts folder; each path is printed for the reviewer."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0

    def take(self, page, name: str, *, height: int | None = None, locator=None) -> Path:
        """Screenshot the viewport (the UI scrolls inside its own panes, so a "full page" shot shows
        no more), or ``locator``; ``height`` enlarges the window for this one shot."""
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        size = page.viewport_size
        if height:
            page.set_viewport_size({"width": size["width"], "height": height})
            page.wait_for_timeout(500)
        try:
            if locator is not None:
                locator.screenshot(path=str(path))
            else:
                page.screenshot(path=str(path))
        finally:
            if height:
                page.set_viewport_size(size)
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="session")
def artifacts() -> Path:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    print(f"\nUI test artifacts (screenshots, trace): {ARTIFACTS}")
    return ARTIFACTS


@pytest.fixture(scope="session")
def shots(artifacts: Path) -> Shots:
    return Shots(artifacts)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_ui(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """Code servers and webserver on workspace.yaml and a fresh local-profile instance."""
    from mesh_assets.orchestration.services import DagsterServices

    mesh_home = tmp_path_factory.mktemp("ui-mesh")
    started = time.monotonic()
    from mesh_assets.settings import MeshSettings

    settings = MeshSettings.from_env("local").replace(home=mesh_home)
    with DagsterServices(settings, daemon=False, webserver_port=_free_port()) as svc:
        print(f"\nDagster UI {svc.url} up in {time.monotonic() - started:.0f}s (logs {svc.log_dir})")
        yield svc


@pytest.fixture(scope="module")
def browser(chromium: Path, artifacts: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """A browser context (one per module) with a Playwright trace saved when the module ends."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), headless=True, args=["--no-sandbox"])
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.add_init_script(NO_NUX)
        context.set_default_timeout(60_000)
        context.tracing.start(screenshots=True, snapshots=True)
        try:
            yield context
        finally:
            trace = artifacts / f"trace-{request.module.__name__.rsplit('.', 1)[-1]}.zip"
            context.tracing.stop(path=str(trace))
            print(f"\nPlaywright trace: {trace} (.venv/bin/playwright show-trace {trace})")
            context.close()
            browser.close()


@pytest.fixture
def page(browser) -> Iterator[object]:
    page = browser.new_page()
    try:
        yield page
    finally:
        page.close()
