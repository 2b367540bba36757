"""One tiny, briefly trained tf_keras CNN (32x32x3, 4 classes) saved in every source format the converter
reads: .h5, Keras 2 .keras, SavedModel folder and tar, TF1 frozen .pb, and a Keras 3 .keras made in a child
Python without TF_USE_LEGACY_KERAS; with test images and calibration images on disk.

Test modules import the `sources` fixture from here (pytest finds fixtures by name).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

SIZE = (32, 32, 3)
CLASSES = 4
_TINTS = np.array([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0], [1.0, 1.0, -1.0]], np.float32)

# Runs in a child Python with Keras 3: a small model with fixed weights, saved as .keras, and its outputs
# on the given inputs saved beside it (the reference the converted model must match).
_KERAS3 = """
import sys
import numpy as np
import keras
keras.utils.set_random_seed(3)
inputs = keras.Input((32, 32, 3), name="pixels")
x = keras.layers.Conv2D(6, 3, activation="relu")(inputs)
x = keras.layers.GlobalAveragePooling2D()(x)
outputs = keras.layers.Dense(4, activation="softmax", name="scores")(x)
model = keras.Model(inputs, outputs, name="k3tiny")
model.save(sys.argv[1])
x = np.load(sys.argv[2])
np.save(sys.argv[3], model.predict(x, verbose=0))
"""


def images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs in [-1, 1] whose class is the colour tint of the image, with noise; and their classes."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, CLASSES, count)
    noise = rng.uniform(-0.6, 0.6, (count, *SIZE)).astype(np.float32)
    x = np.clip(0.5 * _TINTS[labels][:, None, None, :] + noise, -1.0, 1.0).astype(np.float32)
    return x, labels


@dataclass
class Sources:
    """Paths of the tiny model in each format, its test inputs and the Keras outputs on them."""

    root: Path
    h5: Path
    keras2: Path
    savedmodel: Path
    tar: Path
    pb: Path
    keras3: Path
    keras3_expected: np.ndarray
    calibration: Path
    x: np.ndarray
    expected: np.ndarray
    labels: Path
    inner: str  # a tensor inside the frozen graph (the Relu after the first convolution)
    inner_values: np.ndarray


def _model():
    from eiq_lab import framework

    keras = framework.keras()
    framework.tf().random.set_seed(1)
    inputs = keras.Input(SIZE, name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv1")(inputs)
    x = keras.layers.MaxPooling2D(name="pool")(x)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    outputs = keras.layers.Dense(CLASSES, activation="softmax", name="scores")(x)
    model = keras.Model(inputs, outputs, name="tiny")
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="sparse_categorical_crossentropy")
    x, y = images(256, seed=0)
    model.fit(x, y, epochs=4, batch_size=32, verbose=0)
    return model


def _frozen_pb(model, path: Path) -> str:
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    from eiq_lab import framework

    tf = framework.tf()
    spec = tf.TensorSpec([None, *SIZE], tf.float32, name="image")
    concrete = tf.function(lambda image: model(image, training=False)).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(concrete).graph.as_graph_def()
    path.write_bytes(graph_def.SerializeToString())
    return next(n.name for n in graph_def.node if n.op == "Relu")


def _save_images(folder: Path, x: np.ndarray) -> None:
    from PIL import Image

    folder.mkdir()
    for i, image in enumerate(x):
        pixels = np.round((image + 1.0) * 127.5).clip(0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"sample_{i:02d}.png")


_built: Sources | None = None


@pytest.fixture(scope="session")
def sources(tmp_path_factory) -> Sources:
    """The tiny model in every source format (see the module docstring).

    Each test module importing this fixture gets its own copy of the definition, so the files are built once
    per session here, not once per module.
    """
    global _built
    if _built is None:
        _built = _build(tmp_path_factory)
    return _built


def _build(tmp_path_factory) -> Sources:
    from eiq_lab import framework

    root = tmp_path_factory.mktemp("sources")
    model = _model()
    h5, keras2 = root / "tiny.h5", root / "tiny.keras"
    model.save(h5)
    model.save(keras2)
    savedmodel = root / "tiny_savedmodel"
    model.save(savedmodel, save_format="tf")
    tar = root / "tiny_savedmodel.tar.gz"
    with tarfile.open(tar, "w:gz") as archive:
        archive.add(savedmodel, arcname="tiny_savedmodel")
    pb = root / "tiny_frozen.pb"
    inner = _frozen_pb(model, pb)
    # calibration images stored as PNG: the test inputs are the same images read back, so both agree
    calibration = root / "calibration"
    _save_images(calibration, images(16, seed=5)[0])
    test_folder = root / "test_images"
    _save_images(test_folder, images(12, seed=9)[0])
    from PIL import Image

    x = np.stack([np.asarray(Image.open(p), np.float32) / 127.5 - 1.0 for p in sorted(test_folder.iterdir())])
    expected = model.predict(x, verbose=0)
    inner_values = framework.keras().Model(model.inputs, model.get_layer("conv1").output).predict(x, verbose=0)
    labels = root / "labels.txt"
    labels.write_text("red\ngreen\nblue\nyellow\n")
    keras3 = root / "tiny3.keras"
    np.save(root / "x.npy", x)
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["KERAS_BACKEND"] = "tensorflow"
    done = subprocess.run(
        [sys.executable, "-c", _KERAS3, str(keras3), str(root / "x.npy"), str(root / "k3.npy")],
        env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return Sources(
        root, h5, keras2, savedmodel, tar, pb, keras3, np.load(root / "k3.npy"), calibration, x, expected, labels,
        inner, inner_values,
    )  # fmt: skip


def run_tflite(path, x: np.ndarray) -> np.ndarray:
    """A TFLite model's first output on each input of `x` (one at a time), in float (int8 I/O (de)quantized)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        value = image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        result = interpreter.get_tensor(out["index"])[0]
        if out["dtype"] != np.float32:
            scale, zero = out["quantization"]
            result = (result.astype(np.float32) - zero) * scale
        results.append(result)
    return np.stack(results)


def run_onnx(path, x: np.ndarray) -> np.ndarray:
    """An ONNX model's first output on each input of `x`, with ONNX Runtime."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: image[None]})[0] for image in x])
