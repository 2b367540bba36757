"""ModelClient against a real runner on loopback: block uploads with progress and stopping, runs on tensors
(equal to LiteRT run here), images and re-runs, output selection, the model's layers, labels, quantization
and timings, the runner's errors carried with their status, tokens; and RemoteExecutor evaluating a project
on the runner exactly as LiteRT does here."""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest
import requests
from train.conftest import digits_path, digits_template, tiny_plugin, tiny_settings  # noqa: F401

from eiq_lab.errors import EiqError, InputError, Stopped
from eiq_lab.runner import ModelClient
from eiq_lab.runner.client import RunnerError, UploadProgress
from eiq_lab.runner.server import Limits

from .conftest import LABELS, litert_run, pixels

SMALL_BLOCKS = Limits(block_size=1024)


def _local(path, value):
    """Every output of a TFLite model run in LiteRT here: {name: array}."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], value)
    interpreter.invoke()
    return {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}


@pytest.fixture(scope="module")
def five_outputs(tmp_path_factory):
    """A float CNN with five outputs (more than one request may ask for)."""
    from eiq_lab import framework
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    keras.utils.set_random_seed(5)
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    heads = [keras.layers.Dense(k + 2)(x) for k in range(5)]
    path = tmp_path_factory.mktemp("client_models") / "five.tflite"
    path.write_bytes(to_tflite(keras.Model(inputs, heads)))
    return path


def _input_name(client):
    return next(iter(client.get_io_quantization()["inputs"]))


def test_upload_in_blocks_reports_progress(runner, models):
    server = runner(limits=SMALL_BLOCKS)
    data = models["float"].read_bytes()
    events = []
    client = ModelClient(server.url, models["float"], callback=events.append)
    count = -(-len(data) // 1024)
    assert count > 3
    assert [(e.block, e.count) for e in events] == [(n, count) for n in range(1, count + 1)]
    assert [e.sent for e in events] == [min(n * 1024, len(data)) for n in range(1, count + 1)]
    assert all(isinstance(e, UploadProgress) for e in events)
    assert events[0] == f"model upload: block 1/{count} (1024/{len(data)} bytes)"
    # the runner holds exactly the file (read back by another route than the client)
    stored = requests.get(server.url + "/model", headers={"Accept": "application/octet-stream"}, timeout=10)
    assert stored.content == data
    assert client.get_labels() == LABELS and client.get_timing_info()[0] > 0
    # upload_here=False waits for upload_model(); bytes upload as files do
    later = ModelClient(server.url, data, callback=None, upload_here=False)
    later.upload_model()
    assert later.get_labels() == LABELS


def test_stop_uploading_from_another_thread_keeps_the_previous_model(runner, models, five_outputs):
    server = runner(models["float"], limits=SMALL_BLOCKS)
    client = ModelClient(server.url)
    events = []

    def progress(event):
        events.append(event)
        if event.block == 2:  # another thread asks to stop while the upload waits here, between blocks
            stopper = threading.Thread(target=client.stop_uploading)
            stopper.start()
            stopper.join()

    with pytest.raises(Stopped, match="stopped after 2 of"):
        client.load_model(five_outputs, callback=progress)
    assert [e.block for e in events] == [1, 2]
    assert len(client.get_io_quantization()["outputs"]) == 1  # the float classifier still serves
    assert client.get_labels() == LABELS
    client.load_model(five_outputs, callback=None)  # a new upload starts afresh
    assert len(client.get_io_quantization()["outputs"]) == 5


def test_tensor_runs_equal_litert_here_with_reruns_and_output_selection(runner, five_outputs):
    client = ModelClient(runner(five_outputs).url, callback=None)
    x = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    expected = _local(five_outputs, x)
    results = client.run({_input_name(client): x})  # five outputs: more than one request carries
    assert sorted(results) == sorted(expected)
    for name, value in expected.items():
        assert results[name].dtype == np.float32
        np.testing.assert_allclose(results[name], value, rtol=1e-5, atol=1e-6)
    names = sorted(expected)
    again = client.run(None, [names[3], names[0]], params={"run": 3})  # re-run on the inputs already set
    assert sorted(again) == [names[0], names[3]]
    np.testing.assert_allclose(again[names[3]], expected[names[3]], rtol=1e-5, atol=1e-6)
    single = client.run(None, names[2])
    assert list(single) == [names[2]]
    _, post, evaluation = client.get_timing_info()
    assert post > 0 and evaluation > 0


def test_int8_tensors_go_in_their_own_dtype(runner, models):
    client = ModelClient(runner(models["int8"]).url, callback=None)
    quantization = client.get_io_quantization()
    (name, spec), (out, out_spec) = (
        next(iter(quantization["inputs"].items())),
        next(iter(quantization["outputs"].items())),
    )
    assert spec["datatype"] == "INT8" and spec["scale"] > 0 and out_spec["datatype"] == "INT8"
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(models["int8"]))
    detail = interpreter.get_input_details()[0]
    assert (spec["scale"], spec["zero_point"]) == pytest.approx(detail["quantization"])
    x = np.random.default_rng(2).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    result = client.run({name: x})[out]
    assert result.dtype == np.int8
    np.testing.assert_array_equal(result, litert_run(models["int8"], x))


def test_an_image_path_is_decoded_and_preprocessed_by_the_runner(runner, models, images):
    client = ModelClient(runner(models["float"]).url, callback=None)
    out = next(iter(client.get_io_quantization()["outputs"]))
    for path in images[:2]:
        result = client.run(str(path), params={"imgproc": "signed_normalize"})[out]
        expected = litert_run(models["float"], pixels(path) / 127.5 - 1.0)
        np.testing.assert_allclose(result, expected, atol=2e-3)
    rerun = client.run()  # None: the last image again
    np.testing.assert_allclose(rerun[out], result, rtol=1e-6)
    decode, prepare, output = client.get_runner_timings()
    assert decode >= 0 and prepare >= 0 and output > 0


def test_layers_op_timings_and_labels_of_a_profiling_runner(runner, models):
    client = ModelClient(runner(models["float"], profile=True).url, callback=None)
    assert client.get_model_name()
    x = np.zeros((1, 32, 32, 3), np.float32)
    client.run({_input_name(client): x})
    layers = client.get_layers()
    assert layers and all(set(layer) == {"inputs", "type", "shape", "datatype", "timing"} for layer in layers.values())
    timed = client.get_layer_timing_info()
    assert timed and all(ns > 0 for ns in timed.values())
    assert all(layers[name]["type"] not in ("input", "constant") for name in timed)
    ops = client.get_op_timing_info()
    assert sum(count for _, _, count in ops.values()) == len(timed)
    assert sum(total for _, total, _ in ops.values()) == sum(timed.values())
    for op_type, (average, total, count) in ops.items():
        assert average == pytest.approx(total / count)
        assert count == sum(1 for name in timed if layers[name]["type"] == op_type)
    assert all(v > 0 for v in client.get_timing_info()[1:])
    client.upload_labels(["a", "b", "c", "d"])
    assert client.get_labels() == ["a", "b", "c", "d"]


def test_the_runners_errors_keep_its_message_and_status(runner, models, images, tmp_path):
    client = ModelClient(runner(models["float"]).url, callback=None)
    name = _input_name(client)
    cases = [
        (lambda: client.run({name: np.zeros((1, 16, 16, 3), np.float32)}), 400, "has shape"),
        (lambda: client.run({name: np.zeros((1, 32, 32, 3), np.float64)}), 400, "bytes"),
        (lambda: client.run(images[0], ["nope"]), 404, "'nope' not found"),
        (lambda: client.run(images[0], params={"imgproc": "sepia"}), 404, "sepia"),
    ]
    not_image = tmp_path / "broken.png"
    not_image.write_bytes(b"no picture here")
    cases.append((lambda: client.run(not_image), 415, "not an image"))
    cases.append((lambda: client.load_model(b"not a model at all", callback=None), 400, "previous model stays"))
    for call, status, text in cases:
        with pytest.raises(RunnerError, match=text) as info:
            call()
        assert info.value.status == status and client.uri in str(info.value)
    small = ModelClient(runner(limits=Limits(block_size=1024, max_model_size=4096)).url, callback=None)
    with pytest.raises(RunnerError, match="max_model_size") as info:
        small.load_model(models["float"], callback=None)
    assert info.value.status == 413
    # after all that the model still answers
    assert client.run({name: np.zeros((1, 32, 32, 3), np.float32)})
    with pytest.raises(InputError, match=r"missing\.png"):
        client.run(tmp_path / "missing.png")


def test_connection_refused_names_the_uri_and_how_to_start_a_runner():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(EiqError, match=rf"http://127.0.0.1:{port}/v1 \(connection refused\).*eiq-runner -H"):
        ModelClient(f"127.0.0.1:{port}", b"model", callback=None)


def test_uri_completion_and_tokens(runner, models, monkeypatch):
    server = runner(models["float"], token="s3cret")
    bare = server.url.removeprefix("http://").removesuffix("/v1")
    monkeypatch.delenv("EIQ_RUNNER_TOKEN", raising=False)
    client = ModelClient(bare)
    assert client.uri == server.url
    client.uri = "localhost:10818"
    assert client.uri == "http://localhost:10818/v1"
    client.uri = bare + "/v1/"
    with pytest.raises(RunnerError, match="token") as info:
        client.get_labels()
    assert info.value.status == 401
    assert ModelClient(bare, token="s3cret").get_labels() == LABELS
    with pytest.raises(RunnerError):
        ModelClient(bare, token="wrong").get_labels()
    monkeypatch.setenv("EIQ_RUNNER_TOKEN", "s3cret")
    assert ModelClient(bare).get_labels() == LABELS


def test_remote_evaluation_equals_local_litert(runner, digits_path, tiny_plugin, tmp_path, capsys):  # noqa: F811
    from eiq_lab.convert import export_run
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.project import open_project
    from eiq_lab.runner.remote import RemoteExecutor
    from eiq_lab.train import Trainer

    model = tmp_path / "m_int8.tflite"
    with open_project(digits_path) as project:
        Trainer(project, tiny_settings(epochs=8)).fit()
        export_run(project, output=model, quantize=True, input_type="int8", output_type="int8", num_samples=20,
                   parity_images=0)  # fmt: skip
        server = runner()
        remote = RemoteExecutor(server.url, model)
        assert remote.kind == "remote" and remote.input_shape == (32, 32, 3) and remote.labels == ["0", "1", "7"]
        local = evaluate_run(project, "last", model=model)
        on_runner = evaluate_run(project, "last", executor=remote)
        # the model the runner already holds, evaluated on its own metadata (read back from the runner)
        alone = evaluate_run(project, None, model=RemoteExecutor(server.url))
    np.testing.assert_array_equal(on_runner.confusion, local.confusion)
    np.testing.assert_allclose(on_runner.scores, local.scores, atol=1e-6)
    np.testing.assert_array_equal(alone.confusion, local.confusion)
    assert local.accuracy > 0.5 and on_runner.accuracy == local.accuracy
    # eiq evaluate --uri: the same matrix, from the command line; an unreachable runner is one clear line
    from eiq_lab.cli.main import main

    assert main(["evaluate", str(digits_path), "--model", str(model), "--uri", server.url, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["confusion"] == local.confusion.tolist() and printed["accuracy"] == local.accuracy
    assert main(["evaluate", str(digits_path), "--uri", "127.0.0.1:9"]) == 1
    assert "eiq-runner -H" in capsys.readouterr().err
