"""`eiq-runner --workers N` as a real process tree: connections spread over the workers, and what one
request leaves for the next (an upload, labels, the last inputs) holds whichever worker serves it; a killed
worker comes back with the uploaded model; SIGTERM stops every process and removes the shared state."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import requests

from .conftest import LABELS, litert_run
from .test_server import _decode

STARTUP_SECONDS = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def _workers(pid: int) -> list[int]:
    """The runner's worker processes (not multiprocessing's resource tracker)."""
    return [child for child in _children(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


@pytest.fixture
def start_runner(tmp_path):
    """``start_runner(*args)`` -> (process, url): `eiq-runner` with ``args``, started and serving; stopped after."""
    processes = []

    def start(*args: str):
        port = _free_port()
        env = {**os.environ, "TMPDIR": str(tmp_path)}  # the shared state's folder lands here
        command = [sys.executable, "-m", "eiq_lab.cli.runner", "-H", str(port), "-c", "threads=1", *args]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        processes.append(process)
        line = process.stdout.readline()  # printed once every worker is ready
        assert f"http://127.0.0.1:{port}/v1" in line, process.stderr.read()
        return process, f"http://127.0.0.1:{port}/v1"

    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_share_uploads_labels_and_last_inputs(start_runner, models, tmp_path):
    process, url = start_runner("--workers", "2", str(models["float"]))
    first, second = requests.Session(), requests.Session()  # one keep-alive connection each
    info = [session.get(url, timeout=30).json() for session in (first, second)]
    assert [i["workers"] for i in info] == [{"count": 2, "index": 0}, {"count": 2, "index": 1}]
    assert info[1]["model"]["labels"] == LABELS

    # labels sent to one worker are the other's
    first.post(url, data="a\nb\nc\nd\n", headers={"Content-Type": "labels/txt"}, timeout=30).raise_for_status()
    assert second.get(url, timeout=30).json()["model"]["labels"] == ["a", "b", "c", "d"]

    # a run without a body on one worker re-runs the inputs the other worker received
    value = np.random.default_rng(7).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    name = first.get(f"{url}/model", timeout=30).json()["inputs"][0]["name"]
    sent = first.post(url, files={name: ("1,32,32,3", value.tobytes())}, params={"output": "output"}, timeout=30)
    again = second.post(url, params={"output": "output"}, timeout=30)
    assert again.status_code == 200, again.text
    np.testing.assert_allclose(_decode(again.json()["outputs"][0]), litert_run(models["float"], value), atol=1e-5)
    np.testing.assert_array_equal(_decode(again.json()["outputs"][0]), _decode(sent.json()["outputs"][0]))

    # an upload begun on one worker and finished on the other: both then run the new model
    content = models["int8"].read_bytes()
    first.put(url, files={"block_count": (None, "1")}, timeout=30).raise_for_status()
    done = second.put(url, files={"block_content": ("blob", content)}, timeout=60)
    assert done.json() == {"reply": "success"}, done.text
    stale = first.post(url, timeout=30)  # the float inputs belonged to the old model: not re-run on the new one
    assert stale.status_code == 400 and "none were sent yet" in stale.json()["error"]
    int8 = np.random.default_rng(8).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    expected = litert_run(models["int8"], int8)
    for session in (first, second):
        described = session.get(f"{url}/model", timeout=30).json()
        assert described["inputs"][0]["datatype"] == "INT8"
        reply = session.post(url, files={described["inputs"][0]["name"]: ("1,32,32,3", int8.tobytes())},
                             params={"output": "output"}, timeout=30)  # fmt: skip
        np.testing.assert_array_equal(_decode(reply.json()["outputs"][0]), expected)

    # four clients at once, each answered with its own outputs
    def client(seed: int) -> bool:
        with requests.Session() as session:
            for n in range(15):
                mine = np.random.default_rng(seed * 100 + n).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
                reply = session.post(url, files={described["inputs"][0]["name"]: ("1,32,32,3", mine.tobytes())},
                                     params={"output": "output"}, timeout=30)  # fmt: skip
                if not np.array_equal(_decode(reply.json()["outputs"][0]), litert_run(models["int8"], mine)):
                    return False
        return True

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(client, range(4)))

    # a worker killed mid-life comes back, with the uploaded model
    workers = _workers(process.pid)
    assert len(workers) == 2
    second.close()
    first_index = first.get(url, timeout=30).json()["workers"]["index"]
    victim = workers[1 - first_index]  # workers start in index order
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not (victim not in (alive := _workers(process.pid)) and len(alive) == 2):  # a new one started
        assert time.monotonic() < deadline, "the killed worker was not started again"
        time.sleep(0.1)  # waiting on another process's children: nothing to wait on but the listing
    with requests.Session() as probe:  # goes to the new worker, the least busy, once it is ready
        assert probe.get(url, timeout=60).json()["workers"]["index"] == 1 - first_index
        assert probe.get(f"{url}/model", timeout=30).json()["inputs"][0]["datatype"] == "INT8"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 0
    assert "exited" in process.stderr.read()
    assert not list(tmp_path.glob("eiq-runner-*")), "the shared state was left behind"
    alive = [pid for pid in [*workers, *_workers(process.pid)] if Path(f"/proc/{pid}").exists()]
    assert not alive


def test_workers_refuse_profiling_and_report_a_model_that_does_not_load(models, tmp_path, capsys):
    from eiq_lab.cli.runner import main

    assert main(["-H", str(_free_port()), "--workers", "2", "-d", "prof", str(models["float"])]) == 1
    assert "--workers 1" in capsys.readouterr().err
    assert main(["-H", "10818", "--workers", "none", str(models["float"])]) == 1
    assert "--workers must be a whole number" in capsys.readouterr().err
    broken = tmp_path / "broken.tflite"
    broken.write_bytes(b"not a model at all" * 10)
    assert main(["-H", str(_free_port()), "--workers", "2", str(broken)]) == 1
    assert "not a model the runner can run" in capsys.readouterr().err
