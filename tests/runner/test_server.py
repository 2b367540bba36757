"""The ModelRunner server over real HTTP on loopback: the guide's curl lines, the three response types, block
and labels uploads, tensor runs checked against LiteRT and ONNX Runtime run directly, every refused request
(with the model still working after it), size caps, the token, concurrent clients and the `eiq-runner` script."""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import requests

from .conftest import LABELS, litert_run, pixels

TENSOR = "application/vnd.deepview.tensor.float32"


def _softmax_reference(path, image) -> np.ndarray:
    return litert_run(path, pixels(image) / 127.5 - 1)[0]


def _curl(*args: str) -> tuple[dict[str, str], str]:
    done = subprocess.run(["curl", "-s", *args], capture_output=True, text=True, timeout=30, check=True)
    head, _, body = done.stdout.replace("\r\n", "\n").partition("\n\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in head.splitlines()[1:])}
    headers["status"] = head.splitlines()[0].split()[1]
    return headers, body


def _post_tensors(url, tensors: dict[str, np.ndarray], **kwargs) -> requests.Response:
    files = {name: (",".join(map(str, value.shape)), value.tobytes(), TENSOR) for name, value in tensors.items()}
    return requests.post(url, files=files, timeout=30, **kwargs)


def _decode(output: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(output["data"]), output["datatype"].lower()).reshape(output["shape"])


def _working(url, image, label: str) -> None:
    """The loaded model still answers a run."""
    reply = requests.post(url, data=image.read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=30)
    assert reply.status_code == 200 and reply.json()["label"] == label


def test_the_guides_three_curl_lines_answer_label_headers_and_output(runner, models, images):
    server = runner(models["float"])
    url = server.url.replace("127.0.0.1", "localhost") + "?run=1"
    expected = _softmax_reference(models["float"], images[0])
    label = LABELS[int(np.argmax(expected))]

    headers, body = _curl("-D", "-", "-XPOST", "-H", "Accept: text/plain", "-H", "Content-Type: image/*",
                          "--data-binary", f"@{images[0]}", url)  # fmt: skip
    assert headers["status"] == "200" and body == label
    assert float(headers["x-softmax"]) == pytest.approx(float(expected.max()), abs=1e-4)
    assert int(headers["x-model-timing"]) > 0

    headers, body = _curl("-D", "-", "-XPOST", "-H", "Content-Type: image/*", "--data-binary", f"@{images[0]}", url)
    reply = json.loads(body)
    assert headers["content-type"].startswith("application/json")
    assert reply["label"] == label and reply["softmax"] == pytest.approx(float(expected.max()), abs=1e-4)
    assert reply["engine"] == "tflite" and reply["timing"] > 0

    headers, body = _curl("-D", "-", "-XPOST", "-H", "Content-Type: image/*", "--data-binary", f"@{images[0]}",
                          url + "&output=output")  # fmt: skip
    (output,) = json.loads(body)["outputs"]
    np.testing.assert_allclose(_decode(output)[0], expected, atol=1e-5)


def test_info_and_model_description(runner, models, images):
    server = runner(models["float"])
    info = requests.get(server.url, timeout=10).json()
    assert info["engine"] == "tflite" and info["version"]
    assert set(info["model_limits"]) >= {"block_size", "max_layers", "max_input_size", "max_model_size"}
    assert info["model"]["labels"] == LABELS
    assert requests.get(server.url.removesuffix("/v1") + "/", timeout=10).json()["engine"] == "tflite"

    model = requests.get(server.url + "/model", timeout=10).json()
    assert model["model_name"] == "cnn.tflite"
    (spec,) = model["inputs"]
    assert spec["shape"] == [1, 32, 32, 3] and spec["datatype"] == "FLOAT32" and spec["scale"] == 0
    assert model["outputs"][0]["index"] == 0 and model["outputs"][0]["shape"] == [1, 4]
    types = [layer["type"] for layer in model["layers"]]
    assert types[0] == "input" and {"CONV_2D", "MAX_POOL_2D", "MEAN", "FULLY_CONNECTED", "SOFTMAX"} <= set(types)
    assert model["layer_count"] == len(model["layers"])
    assert set(model["timings"]) == {"decode", "input", "output"}

    raw = requests.get(server.url + "/model", headers={"Accept": "application/octet-stream"}, timeout=10)
    assert raw.headers["Content-Type"] == "application/octet-stream"
    assert raw.content == models["float"].read_bytes()


def test_text_and_tensor_responses(runner, models, images):
    server = runner(models["float"])
    expected = _softmax_reference(models["float"], images[1])
    name = requests.get(server.url + "/model", timeout=10).json()["outputs"][0]["name"]
    body = images[1].read_bytes()
    headers = {"Content-Type": "image/png", "Accept": "application/vnd.deepview.tensor"}
    reply = requests.post(server.url, params={"run": 3, "output": name}, data=body, headers=headers, timeout=30)
    assert reply.status_code == 200
    assert reply.headers["X-Tensor-Type"] == "FLOAT32" and reply.headers["X-Tensor-Shape"] == "1 4"
    np.testing.assert_allclose(np.frombuffer(reply.content, np.float32), expected, atol=1e-5)
    assert int(reply.headers["X-Model-Timing"]) > 0

    reply = requests.post(server.url, data=body, headers={"Content-Type": "image/jpg", "Accept": "text/plain"})
    assert reply.text == LABELS[int(np.argmax(expected))]

    # no body: the same inputs run again
    again = requests.post(server.url, params={"run": 2, "id": "tag-7"}, timeout=30).json()
    assert again["label"] == LABELS[int(np.argmax(expected))] and again["id"] == "tag-7"


def test_float_tensor_run_matches_litert(runner, models):
    server = runner(models["float"])
    spec = requests.get(server.url + "/model", timeout=10).json()["inputs"][0]
    value = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    reply = _post_tensors(server.url, {spec["name"]: value}, params={"output": "output"})
    assert reply.status_code == 200, reply.text
    np.testing.assert_allclose(_decode(reply.json()["outputs"][0]), litert_run(models["float"], value), atol=1e-6)


def test_int8_model_tensor_and_image_runs(runner, models, images):
    server = runner(models["int8"])
    model = requests.get(server.url + "/model", timeout=10).json()
    spec, out = model["inputs"][0], model["outputs"][0]
    assert spec["datatype"] == "INT8" and spec["scale"] > 0 and out["datatype"] == "INT8"
    value = np.random.default_rng(2).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    reply = _post_tensors(server.url, {spec["name"]: value}, headers={"Accept": "application/vnd.deepview.tensor"},
                          params={"output": out["name"]})  # fmt: skip
    assert reply.headers["X-Tensor-Type"] == "INT8"
    np.testing.assert_array_equal(
        np.frombuffer(reply.content, np.int8).reshape(1, 4), litert_run(models["int8"], value)
    )

    # an image, signed-normalized then quantized with the input's own scale and zero point
    quantized = np.clip(np.round((pixels(images[2]) / 127.5 - 1) / spec["scale"] + spec["zero_point"]), -128, 127)
    expected = litert_run(models["int8"], quantized.astype(np.int8))
    reply = requests.post(server.url, params={"imgproc": "signed_normalize", "output": out["name"]},
                          data=images[2].read_bytes(), headers={"Content-Type": "image/jpeg"}, timeout=30)  # fmt: skip
    np.testing.assert_array_equal(_decode(reply.json()["outputs"][0]), expected)
    # no labels in the file: the text answer is the class index until labels are uploaded
    reply = requests.post(server.url, headers={"Accept": "text/plain"}, timeout=30)
    assert reply.text == str(int(np.argmax(expected)))
    uploaded = requests.post(server.url, data="\n".join(LABELS), headers={"Content-Type": "labels/txt"}, timeout=10)
    assert uploaded.text == "Success" and uploaded.headers["Content-Type"].startswith("text/plain")
    assert requests.get(server.url, timeout=10).json()["model"]["labels"] == LABELS
    reply = requests.post(server.url, headers={"Accept": "text/plain"}, timeout=30)
    assert reply.text == LABELS[int(np.argmax(expected))]


def test_onnx_model_runs_like_onnx_runtime(runner, models, images):
    import onnxruntime as ort

    server = runner(models["onnx"])
    info = requests.get(server.url, timeout=10).json()
    assert info["engine"] == "onnx" and info["model"]["labels"] == LABELS
    value = np.random.default_rng(3).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    session = ort.InferenceSession(str(models["onnx"]), providers=["CPUExecutionProvider"])
    expected = session.run(None, {"input": value})[0]
    reply = _post_tensors(server.url, {"input": value}, params={"output": session.get_outputs()[0].name})
    np.testing.assert_allclose(_decode(reply.json()["outputs"][0]), expected, atol=1e-5)
    # an image: no normalization recorded in this file and no imgproc, so raw 0..255 pixels go in
    expected = session.run(None, {"input": pixels(images[3])})[0][0]
    reply = requests.post(server.url, data=images[3].read_bytes(), headers={"Content-Type": "image/*"}, timeout=30)
    assert reply.json()["label"] == LABELS[int(np.argmax(expected))]
    layers = requests.get(server.url + "/model", timeout=10).json()["layers"]
    assert {"Conv", "MaxPool", "Softmax"} <= {layer["type"] for layer in layers}


def test_block_upload_with_restart_then_run(runner, models, images):
    from eiq_lab.runner.server import Limits

    server = runner(limits=Limits(block_size=4096))
    assert requests.get(server.url + "/model", timeout=10).status_code == 404  # nothing loaded yet
    data = models["float"].read_bytes()
    blocks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    assert len(blocks) >= 3

    def put(name, content):
        return requests.put(server.url, files={name: ("blob", content)}, timeout=30)

    assert put("block_count", str(len(blocks)).encode()).json() == {"reply": "success"}
    assert put("block_content", blocks[0]).json() == {"block": 1}
    # a new block_count restarts the upload
    assert put("block_count", str(len(blocks)).encode()).json() == {"reply": "success"}
    for n, block in enumerate(blocks[:-1], start=1):
        assert put("block_content", block).json() == {"block": n}
    assert put("block_content", blocks[-1]).json() == {"reply": "success"}
    assert requests.get(server.url + "/model", timeout=10).json()["model_name"] == "model.tflite"
    expected = _softmax_reference(models["float"], images[4])
    _working(server.url, images[4], LABELS[int(np.argmax(expected))])

    # a block count that does not match the blocks sent, and a file that is no model: refused, model kept
    assert put("block_count", b"3").json() == {"reply": "success"}
    assert put("block_content", b"x" * 100).json() == {"block": 1}
    refused = put("block_content", b"x" * 100)
    assert refused.status_code == 400 and "block_size" in refused.json()["error"]
    assert put("block_count", b"1").status_code == 200
    refused = put("block_content", b"this is not a model at all")
    assert refused.status_code == 400 and "not a model" in refused.json()["error"]
    assert put("block_content", b"1").status_code == 400  # no upload in progress
    _working(server.url, images[4], LABELS[int(np.argmax(expected))])


@pytest.mark.parametrize(
    "request_args, status, words",
    [
        ({"params": {"output": ["a", "b", "c", "d", "e"]}}, 400, "at most 4"),
        ({"params": {"output": "no_such_tensor"}}, 404, "not found"),
        ({"params": {"imgproc": "sharpen"}, "image": True}, 404, "imgproc"),
        ({"params": {"run": "zero"}}, 400, "run must be"),
        ({"data": b"\xff\xd8not really a jpeg", "headers": {"Content-Type": "image/jpeg"}}, 415, "not an image"),
        ({"data": b"{}", "headers": {"Content-Type": "application/json"}}, 415, "Content-Type"),
        ({"image": True, "headers": {"Accept": "application/vnd.deepview.tensor"}}, 400, "exactly one"),
        ({"data": b"--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nabc",
          "headers": {"Content-Type": "multipart/form-data; boundary=x"}}, 400, ""),
    ],
)  # fmt: skip
def test_refused_runs_are_json_errors_and_the_model_keeps_working(runner, models, images, request_args, status, words):
    server = runner(models["float"])
    args = dict(request_args)
    if args.pop("image", False):
        args["data"] = images[5].read_bytes()
        args["headers"] = {"Content-Type": "image/jpeg", **args.get("headers", {})}
    reply = requests.post(server.url, timeout=30, **args)
    assert reply.status_code == status and words in reply.json()["error"]
    expected = _softmax_reference(models["float"], images[5])
    _working(server.url, images[5], LABELS[int(np.argmax(expected))])


def test_tensor_byte_count_and_shape_mismatches_are_400(runner, models, images):
    server = runner(models["float"])
    name = requests.get(server.url + "/model", timeout=10).json()["inputs"][0]["name"]
    as_float64 = np.zeros((1, 32, 32, 3), np.float64)  # the wrong dtype: twice the bytes
    reply = _post_tensors(server.url, {name: as_float64})
    assert reply.status_code == 400 and "bytes" in reply.json()["error"]
    reply = _post_tensors(server.url, {name: np.zeros((1, 16, 16, 3), np.float32)})
    assert reply.status_code == 400 and "shape" in reply.json()["error"]
    reply = _post_tensors(server.url, {"nope": np.zeros((1, 32, 32, 3), np.float32)})
    assert reply.status_code == 400 and name in reply.json()["error"]
    fresh = runner(models["float"])
    reply = requests.post(fresh.url, timeout=10)  # a re-run before any input was sent
    assert reply.status_code == 400 and "none were sent" in reply.json()["error"]
    expected = _softmax_reference(models["float"], images[0])
    _working(server.url, images[0], LABELS[int(np.argmax(expected))])


def test_size_caps_answer_413(runner, models, images):
    from eiq_lab.runner.server import Limits

    server = runner(models["float"], limits=Limits(block_size=4096, max_model_size=8192, max_input_size=3000))
    info = requests.get(server.url, timeout=10).json()["model_limits"]
    assert info == {"block_size": 4096, "max_model_size": 8192, "max_input_size": 3000, "max_layers": 100000}
    reply = requests.post(server.url, data=b"\0" * 4000, headers={"Content-Type": "image/png"}, timeout=10)
    assert reply.status_code == 413 and "max_input_size" in reply.json()["error"]
    count = math.ceil(models["float"].stat().st_size / 4096)  # this model is larger than 8192 bytes
    reply = requests.put(server.url, files={"block_count": ("n", str(count).encode())}, timeout=10)
    assert reply.status_code == 413 and "max_model_size" in reply.json()["error"]
    reply = requests.put(server.url, files={"block_content": ("b", b"\0" * 8000)}, timeout=10)
    assert reply.status_code == 413
    expected = _softmax_reference(models["float"], images[6])
    small = images[6].read_bytes()
    assert len(small) < 3000, "the test image must fit the cap"
    reply = requests.post(server.url, data=small, headers={"Content-Type": "image/jpeg"}, timeout=10)
    assert reply.json()["label"] == LABELS[int(np.argmax(expected))]


def test_token_is_required_when_set(runner, models):
    server = runner(models["float"], token="s3cret")
    reply = requests.get(server.url, timeout=10)
    assert reply.status_code == 401 and "token" in reply.json()["error"]
    assert requests.get(server.url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
    reply = requests.get(server.url, headers={"Authorization": "Bearer s3cret"}, timeout=10)
    assert reply.status_code == 200 and reply.json()["engine"] == "tflite"


def test_concurrent_clients_each_get_their_own_answer(runner, models, images):
    server = runner(models["float"])
    name = requests.get(server.url + "/model", timeout=10).json()["inputs"][0]["name"]
    rng = np.random.default_rng(4)
    values = [rng.uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32) for _ in range(8)]
    expected = [litert_run(models["float"], value) for value in values]

    def client(n: int) -> list[bool]:
        with requests.Session() as session:
            ok = []
            for _ in range(6):
                files = {name: ("1,32,32,3", values[n].tobytes(), TENSOR)}
                reply = session.post(server.url, files=files, params={"output": "output"}, timeout=60)
                ok.append(np.allclose(_decode(reply.json()["outputs"][0]), expected[n], atol=1e-6))
            return ok

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(client, range(8)))
    assert all(all(ok) for ok in results) and sum(len(ok) for ok in results) == 48


def test_a_lone_client_runs_on_the_event_loop_and_concurrent_ones_on_workers_alike(runner, models, monkeypatch):
    import threading

    from eiq_lab.runner import server as module

    ran_on = []

    def run(*args):
        ran_on.append(threading.current_thread().name)
        return original(*args)

    original = module._run
    monkeypatch.setattr(module, "_run", run)
    monkeypatch.setattr(module, "ALONE_NS", 0)  # a client is alone from its second request on
    monkeypatch.setattr(module, "INLINE_NS", 0)  # no run is too short for a worker thread
    server = runner(models["int8"])
    name = requests.get(server.url + "/model", timeout=10).json()["inputs"][0]["name"]
    rng = np.random.default_rng(6)
    values = [rng.integers(-128, 128, (1, 32, 32, 3)).astype(np.int8) for _ in range(6)]

    def client(value: np.ndarray) -> bool:
        with requests.Session() as session:
            ok = True
            for _ in range(3):
                files = {name: ("1,32,32,3", value.tobytes(), TENSOR)}
                reply = session.post(server.url, files=files, params={"output": "output"}, timeout=60)
                ok &= np.array_equal(_decode(reply.json()["outputs"][0]), litert_run(models["int8"], value))
            return ok

    assert all(client(value) for value in values[:2])  # one after the other: each alone
    assert ran_on.count("eiq-runner") >= 2, ran_on  # the server's event loop thread ran them
    ran_on.clear()
    with ThreadPoolExecutor(6) as pool:
        assert all(pool.map(client, values))
    assert any(thread != "eiq-runner" for thread in ran_on), ran_on  # several clients: worker threads


def test_profiling_mode_fills_layer_timings(runner, models, images):
    server = runner(models["float"], profile=True)
    before = requests.get(server.url + "/model", timeout=10).json()["layers"]
    assert not any("timing" in layer["tensor"] for layer in before)  # nothing ran yet
    _working(server.url, images[0], LABELS[int(np.argmax(_softmax_reference(models["float"], images[0])))])
    layers = requests.get(server.url + "/model", timeout=60).json()["layers"]
    timed = [layer for layer in layers if "timing" in layer["tensor"]]
    assert {layer["type"] for layer in timed} >= {"CONV_2D", "FULLY_CONNECTED"}
    assert all(layer["tensor"]["timing"] > 0 for layer in timed)
    assert not any("timing" in layer["tensor"] for layer in layers if layer["type"] == "input")


def test_vela_engine_answers_outputs_with_the_npu_estimate(runner, models):
    server = runner(models["int8"], engine="vela")
    info = requests.get(server.url, timeout=10).json()
    assert info["engine"] == "vela"
    spec = requests.get(server.url + "/model", timeout=10).json()["inputs"][0]
    value = np.random.default_rng(5).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    reply = _post_tensors(server.url, {spec["name"]: value}, params={"output": "output"})
    np.testing.assert_array_equal(_decode(reply.json()["outputs"][0]), litert_run(models["int8"], value))
    again = _post_tensors(server.url, {spec["name"]: value}, params={"output": "output"}).json()
    assert reply.json()["timing"] == again["timing"] > 0  # the estimate: the same every run


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_eiq_runner_script_serves_and_stops_on_sigterm(models, tmp_path):
    port = _free_port()
    script = os.path.join(os.path.dirname(sys.executable), "eiq-runner")
    command = [script] if os.path.exists(script) else [sys.executable, "-m", "eiq_lab.cli.runner"]
    process = subprocess.Popen([*command, "-H", str(port), "-c", "threads=1,xnnpack=off", str(models["float"])],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        line = process.stdout.readline()
        assert f"http://127.0.0.1:{port}/v1" in line
        deadline = time.monotonic() + 30
        while True:
            try:
                info = requests.get(f"http://127.0.0.1:{port}/v1", timeout=5).json()
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline, "the runner did not answer within 30 s"
                time.sleep(0.2)
        assert info["engine"] == "tflite" and info["model"]["labels"] == LABELS
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_eiq_runner_refuses_board_engines_and_warns_off_loopback(models, capsys):
    from eiq_lab.cli.runner import exposure_warning, main

    assert main(["-e", "armnn", "-H", "10818", str(models["float"])]) == 1
    assert "this host has: tflite (LiteRT" in capsys.readouterr().err
    assert main(["-H", "10818", "-c", "xnnpack=maybe", str(models["float"])]) == 1
    assert main(["-H", "10818", "--no-such-flag"]) == 2
    assert exposure_warning("127.0.0.1", None) is None and exposure_warning("::1", None) is None
    assert "no --token" in exposure_warning("0.0.0.0", None)
    assert "no --token" not in exposure_warning("192.168.1.10", "t")


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def test_soak_eight_clients_no_errors_and_bounded_memory(runner, models, images):
    server = runner(models["float"])
    bodies = [path.read_bytes() for path in images]
    labels = [LABELS[int(np.argmax(_softmax_reference(models["float"], path)))] for path in images]

    def client(n: int, count: int) -> int:
        wrong = 0
        with requests.Session() as session:
            for i in range(count):
                k = (n + i) % len(bodies)
                reply = session.post(server.url, data=bodies[k], headers={"Content-Type": "image/jpeg"}, timeout=60)
                wrong += reply.status_code != 200 or reply.json()["label"] != labels[k]
        return wrong

    with ThreadPoolExecutor(8) as pool:  # warm-up: thread pools, allocator arenas, connection pools
        assert sum(pool.map(client, range(8), [10] * 8)) == 0
    before = _rss_kib()
    with ThreadPoolExecutor(8) as pool:
        assert sum(pool.map(client, range(8), [40] * 8)) == 0
    growth = (_rss_kib() - before) / before
    assert growth < 0.05, f"resident memory grew {growth:.1%} over 320 requests"
