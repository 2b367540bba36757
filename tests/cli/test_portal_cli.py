"""`eiq portal` and `eiq model-tool`: Voila serves the Portal (or the Model Tool) on loopback from a workspace."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from eiq_lab.cli.main import main


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_portal_serves_the_portal_notebook_on_loopback(tmp_path):
    port = _free_port()
    command = [sys.executable, "-m", "eiq_lab.cli.main", "portal", str(tmp_path), "--port", str(port)]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        page = ""
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not page:
            try:
                page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
            except OSError:
                time.sleep(0.3)  # polling a port: there is no event to wait on
        assert "voila" in page.lower(), server.stdout.read1(4000) if server.poll() is not None else "no page"
        notebook = json.loads((tmp_path / "eIQ Portal.ipynb").read_text())
        assert "Portal(workspace=" in "".join(notebook["cells"][-1]["source"])
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def test_bad_workspace_or_model_is_refused(tmp_path, capsys):
    assert main(["portal", str(tmp_path / "missing")]) != 0
    assert "is not a folder" in capsys.readouterr().err
    assert main(["model-tool", str(tmp_path / "gone.tflite")]) != 0
    assert "does not exist" in capsys.readouterr().err
