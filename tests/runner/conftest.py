"""Runner fixtures: a tiny 32x32 classifier as float and int8 TFLite and as ONNX (made here once), test
images, and `runner`, which starts real ModelRunner servers on 127.0.0.1 ephemeral ports."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

LABELS = ["cat", "dog", "bird", "fish"]


def _cnn(keras):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(len(LABELS))(x)
    return keras.Model(inputs, layers.Softmax()(x))


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Paths of the same CNN as ``float`` TFLite (labels and signed normalization embedded), ``int8`` TFLite
    (int8 input and output, nothing embedded) and ``onnx`` (labels embedded)."""
    from eiq_lab import framework
    from eiq_lab.convert.onnx import to_onnx
    from eiq_lab.convert.tflite import to_tflite, with_metadata

    keras = framework.keras()
    keras.utils.set_random_seed(3)
    model = _cnn(keras)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    folder = tmp_path_factory.mktemp("runner_models")
    metadata = {"eiq_metadata": json.dumps({"normalization": "signed"}).encode(), "labels": "\n".join(LABELS).encode()}
    paths = {"float": folder / "cnn.tflite", "int8": folder / "cnn_int8.tflite", "onnx": folder / "cnn.onnx"}
    paths["float"].write_bytes(with_metadata(to_tflite(model), metadata))
    int8 = to_tflite(model, quantize=True, samples=lambda: iter(calibration), input_type="int8", output_type="int8")
    paths["int8"].write_bytes(int8)
    paths["onnx"].write_bytes(to_onnx(model, {"labels": "\n".join(LABELS)}))
    return paths


def _jpeg(seed: int, size=(48, 40)) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(seed)
    # smooth gradients plus noise: a picture whose class scores differ from image to image
    base = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3)
    pixels = np.clip(np.roll(base, seed * 37) * rng.uniform(0.2, 1.0, 3) + rng.normal(0, 40, base.shape), 0, 255)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def images(tmp_path_factory):
    """Eight small JPEG files (48x40, not the model's 32x32: the runner resizes)."""
    folder = tmp_path_factory.mktemp("runner_images")
    paths = []
    for seed in range(8):
        path = folder / f"img{seed}.jpg"
        path.write_bytes(_jpeg(seed))
        paths.append(path)
    return paths


def pixels(path, size=(32, 32)) -> np.ndarray:
    """An image file as the test computes the model's input: RGB, bilinear resize, float 0..255, [1, H, W, 3]."""
    from PIL import Image

    image = Image.open(path).convert("RGB").resize(size, Image.BILINEAR)
    return np.asarray(image, np.float32)[None]


def litert_run(path, value: np.ndarray) -> np.ndarray:
    """The model's first output from LiteRT directly (the reference the runner's answers are checked against)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], value)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.fixture
def runner():
    """Start runners: ``runner(model=None, **create_app kwargs)`` -> a started `BackgroundServer` (``.url`` is
    ``http://127.0.0.1:PORT/v1``); all are stopped after the test."""
    from eiq_lab.runner.background import BackgroundServer
    from eiq_lab.runner.server import create_app

    started = []

    def start(model=None, **kwargs):
        server = BackgroundServer(create_app(model, **kwargs)).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
