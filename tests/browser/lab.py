"""A real JupyterLab server for browser tests: the ``jupyter-lab`` binary on 127.0.0.1 with a known token, a
temporary root folder, and its own settings and workspaces (no news, no restored tabs from other runs).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from browser.conftest import free_port, wait_until_serving

SERVER_START_SECONDS = 60.0
_LOG_TAIL = 8000
# JupyterLab asks on first start whether to fetch news and check for updates: a toast over the page, and a
# request to the internet; the user settings answer no
_QUIET_SETTINGS = {"@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False}}


class LabServer:
    """``jupyter-lab`` serving `root`, in a process group of its own.

    Args:
        root: the server's root folder (the file browser's top).
        state: a folder for its user settings, workspaces and runtime files.
        env: extra environment for the server and its kernels (and Voila's).
        log_path: where the server's output goes.
    """

    def __init__(self, root: Path, state: Path, env: dict[str, str], log_path: Path):
        self.root = Path(root)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        settings = state / "settings"
        for name, values in _QUIET_SETTINGS.items():
            plugin, _, section = name.rpartition("/")
            folder = settings / plugin
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{section}.jupyterlab-settings").write_text(json.dumps(values))
        lab = shutil.which("jupyter-lab") or str(Path(sys.executable).with_name("jupyter-lab"))
        command = [
            lab,  # the server itself (not the `jupyter` wrapper), so its pid is the server's
            "--no-browser",
            "--allow-root",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root}",
            f"--IdentityProvider.token={self.token}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={state / 'workspaces'}",
        ]
        full_env = {
            **os.environ,
            "JUPYTER_RUNTIME_DIR": str(state / "runtime"),
            "TF_USE_LEGACY_KERAS": "1",
            "TF_CPP_MIN_LOG_LEVEL": "2",
            **env,
        }
        self._log = open(log_path, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=self.root, env=full_env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_ready()

    def _wait_ready(self) -> None:
        wait_until_serving(self, "jupyter-lab", self.url("api/status"))

    def url(self, path: str = "lab") -> str:
        """`path` on the server, with the token (a browser keeps the login cookie after the first page)."""
        separator = "&" if "?" in path else "?"
        return f"{self.base}/{path}{separator}token={self.token}"

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        """Call the server's REST API: the status code and the JSON answer (errors too)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.base}/{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                return reply.status, json.loads(reply.read() or b"{}")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"{}")

    def log(self) -> str:
        """The end of the server's output (kernel and Voila tracebacks land here too)."""
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")[-_LOG_TAIL:]

    def stop(self) -> None:
        """End the server: SIGTERM lets it shut its kernels down (they run in sessions of their own), then
        SIGKILL to its process group if it hangs."""
        if self.process.poll() is None:
            try:
                self.process.terminate()
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self._log.close()
