"""The runner's engines: chosen by name or by the file, compute options (threads, XNNPACK off, providers),
clear refusals (the guide's board-only engines, bad compute, files that are no model), image preprocessing
(imgproc, the model's metadata, quantization) and layers; loading a model never imports TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from eiq_lab.errors import InputError
from eiq_lab.runner.engines import decode_image, image_input, open_engine

from .conftest import LABELS, litert_run, pixels


def test_engine_by_file_content_with_io_and_labels(models):
    tflite = open_engine(models["float"])
    assert (tflite.name, tflite.model_name, tflite.labels) == ("tflite", "cnn.tflite", LABELS)
    assert tflite.inputs[0]["shape"] == [1, 32, 32, 3] and tflite.inputs[0]["datatype"] == "FLOAT32"
    assert tflite.metadata["normalization"] == "signed" and tflite.is_classifier
    onnx = open_engine(models["onnx"].read_bytes())
    assert (onnx.name, onnx.model_name, onnx.labels) == ("onnx", "model.onnx", LABELS)
    int8 = open_engine(models["int8"], "tflite")
    assert int8.inputs[0]["datatype"] == "INT8" and int8.inputs[0]["scale"] > 0 and int8.labels == []


def test_run_returns_raw_tensors_like_litert(models):
    engine = open_engine(models["int8"])
    value = np.random.default_rng(0).integers(-128, 128, (1, 32, 32, 3)).astype(np.int8)
    (result,) = engine.run({engine.inputs[0]["name"]: value}).values()
    assert result.dtype == np.int8
    np.testing.assert_array_equal(result, litert_run(models["int8"], value))
    assert engine.last_timing_ns > 0


def test_compute_threads_and_xnnpack_off_give_the_same_answer(models):
    value = np.random.default_rng(1).uniform(-1, 1, (1, 32, 32, 3)).astype(np.float32)
    expected = litert_run(models["float"], value)
    for compute in ("threads=2", "xnnpack=off", "threads=1,xnnpack=off", "0", "cpu"):
        engine = open_engine(models["float"], compute=compute)
        (result,) = engine.run({engine.inputs[0]["name"]: value}).values()
        np.testing.assert_allclose(result, expected, atol=1e-5, err_msg=compute)
    onnx = open_engine(models["onnx"], compute="threads=1,providers=CPUExecutionProvider")
    assert onnx.run({"input": value})


def test_a_pool_of_interpreters_runs_requests_side_by_side_with_the_right_answers(models):
    engine = open_engine(models["int8"], compute="pool=3")
    assert engine.concurrency == 3
    assert open_engine(models["float"], compute="threads=1").concurrency == max(1, min(4, os.cpu_count() or 1))
    assert open_engine(models["onnx"]).concurrency == 1  # ONNX Runtime spreads one run over the cores itself
    name = engine.inputs[0]["name"]
    rng = np.random.default_rng(5)
    values = [rng.integers(-128, 128, (1, 32, 32, 3)).astype(np.int8) for _ in range(12)]
    with ThreadPoolExecutor(6) as threads:
        answers = list(threads.map(lambda value: engine.run_timed({name: value}), values))
    for value, (outputs, spent) in zip(values, answers):
        np.testing.assert_array_equal(next(iter(outputs.values())), litert_run(models["int8"], value))
        assert spent > 0


@pytest.mark.parametrize(
    "engine, compute, words",
    [
        ("rt", None, "DeepViewRT"),
        ("tf-lite-vx", None, "this host has: tflite (LiteRT"),
        ("armnn", None, "not on this host"),
        ("ovx", None, "onnx (ONNX Runtime"),
        ("tensorrt", None, "must be one of tflite, onnx, vela"),
        ("tflite", "1", "not available for engine tflite"),
        ("tflite", "threads=many", "whole number"),
        ("tflite", "xnnpack=maybe", "on or off"),
        ("tflite", "gpu_delegate=1", "does not know compute option"),
        ("tflite", "pool=0", "compute pool"),
        ("onnx", "providers=CUDAExecutionProvider", "CPUExecutionProvider"),
        ("vela", None, "runs .tflite files"),
    ],
)
def test_refused_engines_and_compute_say_what_this_host_has(models, engine, compute, words):
    model = models["onnx"] if engine in ("onnx", "vela") else models["float"]
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        open_engine(model, engine, compute)


def test_files_that_are_no_model_are_refused(tmp_path, models):
    text = tmp_path / "notes.tflite"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a model the runner can run"):
        open_engine(text)
    with pytest.raises(InputError, match="does not exist"):
        open_engine(tmp_path / "missing.tflite")
    truncated = models["float"].read_bytes()[:2000]
    with pytest.raises(InputError, match="cannot be loaded by LiteRT"):
        open_engine(truncated)


def test_image_preprocessing_by_metadata_imgproc_and_quantization(models, images):
    image = decode_image(images[0].read_bytes())
    reference = pixels(images[0])
    engine = open_engine(models["float"])  # its metadata says signed normalization
    (value,) = image_input(engine, image).values()
    np.testing.assert_allclose(value, reference / 127.5 - 1, atol=1e-5)
    (value,) = image_input(engine, image, "normalize").values()
    np.testing.assert_allclose(value, reference / 255, atol=1e-6)
    (value,) = image_input(engine, image, "none").values()
    np.testing.assert_allclose(value, reference)
    (value,) = image_input(engine, image, "whitening").values()
    assert abs(float(value.mean())) < 1e-4 and float(value.std()) == pytest.approx(1, abs=1e-3)

    int8 = open_engine(models["int8"])  # no metadata: raw pixels, shifted into int8
    spec = int8.inputs[0]
    (value,) = image_input(int8, image).values()
    assert value.dtype == np.int8
    np.testing.assert_array_equal(value, (reference - 128).astype(np.int8))
    (value,) = image_input(int8, image, "signed_normalize").values()
    expected = np.clip(np.round((reference / 127.5 - 1) / spec["scale"] + spec["zero_point"]), -128, 127)
    np.testing.assert_array_equal(value, expected.astype(np.int8))
    with pytest.raises(InputError, match="imgproc must be one of"):
        image_input(int8, image, "sharpen")
    with pytest.raises(InputError, match="not an image"):
        decode_image(b"GIF89a broken")


def test_layers_name_operators_and_their_inputs(models):
    layers = open_engine(models["float"]).layers()
    assert layers[0]["type"] == "input" and layers[0]["inputs"] == []
    operators = layers[1:]
    assert [layer["type"] for layer in operators] == ["CONV_2D", "MAX_POOL_2D", "CONV_2D", "MEAN", "FULLY_CONNECTED",
                                                      "SOFTMAX"]  # fmt: skip
    for before, layer in zip(layers, operators):
        assert layer["inputs"] == [before["name"]]  # a chain: each operator reads the previous one's output
    assert operators[-1]["tensor"] == {"shape": [1, 4], "datatype": "FLOAT32"}


def test_loading_a_tflite_model_imports_neither_tensorflow_nor_the_web_stack(models):
    code = (
        "import sys, eiq_lab.runner\n"
        "assert 'aiohttp' not in sys.modules and 'requests' not in sys.modules\n"
        "from eiq_lab.runner.engines import open_engine\n"
        f"engine = open_engine({str(models['float'])!r})\n"
        "assert engine.labels and 'tensorflow' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
