"""Browser test harness: one headless Debian Chromium per session (Playwright), real Voila servers on loopback,
and a screenshot helper that saves PNGs under the test run's folder (or $EIQ_SCREENSHOTS).

Fixtures:
    browser: a Chromium per test module (fake camera and microphone, so the curator's capture works headless).
    page: a fresh page in its own context (camera granted); its console errors are shown if the test fails.
    screenshot: ``screenshot(page_or_locator, name) -> Path``, a PNG in `screenshots_dir`.
    voila: ``voila(root=NOTEBOOKS, env=None) -> VoilaServer``, started once per (root, env) for the session.
    voila_server: the Voila server for the repository's ``notebooks/`` with ``EIQ_WORKSPACE`` (a temp folder)
        and ``EIQ_HOME`` (a temp folder, so targets and recent projects never touch the user's own).

Example:
    >>> def test_home(voila_server, page, screenshot):  # doctest: +SKIP
    ...     page.goto(voila_server.url("portal.ipynb"))
    ...     wait_for_panel(page, ".eiq-portal")
    ...     screenshot(page, "portal")
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    # the curator's "capture from camera": a fake device and no permission prompt
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
]
#: how long a Voila page may take to start its kernel and show the first widgets (ms)
PAGE_TIMEOUT_MS = 60_000
#: how long an `expect(...)` waits for the page to show a kernel's answer (ms)
EXPECT_TIMEOUT_MS = 20_000
SERVER_START_SECONDS = 60.0
_LOG_TAIL = 8000


def answers(url: str) -> bool:
    """Whether `url` answers 200 now (a refused or failed connection: not yet)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_until_serving(server, name: str, url: str, seconds: float = SERVER_START_SECONDS) -> None:
    """Wait for a server process (`server.process`, `.log()`, `.stop()`) to answer on `url`; raise with its log
    if it exits or stays silent."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {server.process.returncode}:\n{server.log()}")
        if answers(url):
            return
        time.sleep(0.2)  # polling a port: there is no event to wait on
    server.stop()
    raise RuntimeError(f"{name} did not answer on {url} within {seconds} s:\n{server.log()}")


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VoilaServer:
    """A real ``voila`` process serving a folder of notebooks on 127.0.0.1 (its own process group).

    Args:
        root: the folder served (tree mode: every notebook in it at ``url(name)``).
        env: extra environment for the server and its kernels.
        log_path: where the server's output goes.
    """

    def __init__(self, root: Path, env: dict[str, str], log_path: Path):
        self.root = Path(root)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        voila = shutil.which("voila")
        command = [voila] if voila else [sys.executable, "-m", "voila"]
        command += [
            str(self.root),
            "--no-browser",
            f"--port={self.port}",
            "--Voila.ip=127.0.0.1",
            "--Voila.port_retries=0",
            "--show_tracebacks=True",
            "--token=",
        ]
        # the kernels import this checkout's eiq_lab, whatever copy is installed
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        full_env = {**os.environ, "PYTHONPATH": path, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", **env}
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command,
            cwd=self.root,
            env=full_env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its kernels share its process group: stop() ends them all
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        wait_until_serving(self, "voila", self.base + "/")

    def url(self, notebook: str) -> str:
        """The page that renders `notebook` (a path relative to the served folder)."""
        return f"{self.base}/voila/render/{notebook}"

    def log(self) -> str:
        """The end of the server's output (kernel tracebacks land here too)."""
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return text[-_LOG_TAIL:]

    def stop(self) -> None:
        """End the server and its kernels (SIGTERM to its process group, then SIGKILL if needed)."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
            except ProcessLookupError:  # it ended on its own meanwhile: nothing left to stop
                self.process.wait(5)
        self._log.close()


_SERVERS: list[VoilaServer] = []
_PAGE_ERRORS: dict[str, list[str]] = {}


@pytest.fixture(scope="session")
def screenshots_dir(tmp_path_factory) -> Path:
    """Where screenshots go: $EIQ_SCREENSHOTS, else ``<pytest basetemp>/screenshots``."""
    folder = Path(os.environ.get("EIQ_SCREENSHOTS") or tmp_path_factory.getbasetemp() / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def screenshot(screenshots_dir):
    """``screenshot(page_or_locator, name)``: save ``<name>.png`` and return its path.

    A page is captured whole (``full_page``). A locator (``page.locator(".eiq-portal")``) is captured at its full
    size: Voila's document scrolls inside its own container, which paints only what the viewport shows, so the
    viewport is made as tall as the element for the shot, then put back.
    """

    def save(target, name: str) -> Path:
        path = screenshots_dir / f"{name}.png"
        if hasattr(target, "goto"):
            target.screenshot(path=str(path), full_page=True)
            return path
        page = target.page
        size = page.viewport_size
        box = target.bounding_box()
        needed = int(box["height"] + 100) if box else size["height"]
        if needed > size["height"]:
            page.set_viewport_size({"width": size["width"], "height": needed})
        try:
            target.screenshot(path=str(path))
        finally:
            if needed > size["height"]:
                page.set_viewport_size(size)
        return path

    return save


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (Debian's, never a downloaded one) for one test module: Playwright's sync API keeps an
    event loop running in this thread while it is started, so it stops after each module (later tests use
    asyncio.run)."""
    from playwright.sync_api import expect, sync_playwright

    # the machine is shared: a kernel answers a click in well under a second, but give expect() room
    expect.set_options(timeout=EXPECT_TIMEOUT_MS)
    playwright = sync_playwright().start()
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()
    playwright.stop()


@pytest.fixture
def page(browser, request):
    """A fresh page (own context, 1280x900, camera allowed); console errors are kept for the failure report."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["camera"])
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    errors = _PAGE_ERRORS.setdefault(request.node.nodeid, [])
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    yield page
    context.close()


@pytest.fixture(scope="session")
def voila(tmp_path_factory):
    """``voila(root=NOTEBOOKS, env=None)``: a running Voila server for that folder and environment.

    Servers are started once per (root, env) and stopped at the end of the session.
    """
    started: dict[tuple, VoilaServer] = {}
    logs = tmp_path_factory.mktemp("voila-logs")

    def get(root: Path | str = NOTEBOOKS, env: dict[str, str] | None = None) -> VoilaServer:
        env = dict(env or {})
        key = (str(root), tuple(sorted(env.items())))
        if key not in started:
            server = VoilaServer(Path(root), env, logs / f"voila-{len(started)}.log")
            started[key] = server
            _SERVERS.append(server)
        return started[key]

    yield get
    for server in started.values():
        server.stop()
        if server in _SERVERS:
            _SERVERS.remove(server)


@pytest.fixture(scope="session")
def eiq_workspace(tmp_path_factory) -> Path:
    """The folder the Portal works in (``EIQ_WORKSPACE`` of the Voila server)."""
    return tmp_path_factory.mktemp("workspace")


@pytest.fixture(scope="session")
def eiq_home(tmp_path_factory) -> Path:
    """The Voila kernels' user config folder (``EIQ_HOME``): targets and recent projects."""
    return tmp_path_factory.mktemp("eiq-home")


@pytest.fixture(scope="session")
def voila_server(voila, eiq_workspace, eiq_home) -> VoilaServer:
    """Voila serving the repository's ``notebooks/`` in a temporary workspace and user config."""
    return voila(NOTEBOOKS, {"EIQ_WORKSPACE": str(eiq_workspace), "EIQ_HOME": str(eiq_home)})


def wait_for_panel(page, selector: str, timeout_ms: int = PAGE_TIMEOUT_MS):
    """Wait until a panel (its CSS class, e.g. ``.eiq-portal``) is visible on a Voila page; return its locator."""
    locator = page.locator(selector).first
    locator.wait_for(state="visible", timeout=timeout_ms)
    return locator


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failing browser test, add the Voila servers' logs and the page's console errors to the report."""
    report = yield
    if report.when == "call" and report.failed:
        for server in _SERVERS:
            report.sections.append((f"voila log ({server.base}, {server.root})", server.log()))
        errors = _PAGE_ERRORS.get(item.nodeid)
        if errors:
            report.sections.append(("browser console", "\n".join(errors[-50:])))
    return report
