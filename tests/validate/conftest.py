"""Validator fixtures: a tiny 32x32 classifier as Keras, float TFLite, int8 TFLite (int8 I/O), ONNX and a
perturbed TFLite (made once), a three-class model for the digits project, and the runner fixtures."""

from __future__ import annotations

import numpy as np
import pytest
from runner.conftest import runner  # noqa: F401  (pytest finds fixtures by name; tests/ is on sys.path)
from train.conftest import digits_path, digits_template  # noqa: F401

LABELS = ["apple", "banana", "cherry", "date", "elder"]


def _cnn(keras, classes: int):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), batch_size=1, name="input")
    x = layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inputs)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(classes, name="logits")(x)
    model = keras.Model(inputs, layers.Softmax(name="probs")(x))
    kernel, bias = model.get_layer("logits").get_weights()
    # a wide spread of logits: top-1 decided by clear margins, so an int8 copy keeps the same class
    model.get_layer("logits").set_weights([kernel * 8, bias])
    return model


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Paths: ``keras`` (.keras, tf_keras), ``float`` / ``int8`` (int8 input and output) / ``perturbed`` TFLite,
    ``onnx``, and ``digits`` (a 3-class float TFLite for the digits project)."""
    from eiq_lab import framework
    from eiq_lab.convert.onnx import to_onnx
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    keras.utils.set_random_seed(7)
    model = _cnn(keras, len(LABELS))
    folder = tmp_path_factory.mktemp("validate_models")
    paths = {name: folder / f"m_{name}.tflite" for name in ("float", "int8", "perturbed", "digits")}
    paths["keras"] = folder / "m.keras"
    paths["onnx"] = folder / "m.onnx"
    model.save(paths["keras"])
    paths["float"].write_bytes(to_tflite(model))
    calibration = np.random.default_rng(1).uniform(-1, 1, (16, 32, 32, 3)).astype(np.float32)
    int8 = to_tflite(model, quantize=True, samples=lambda: iter(calibration), input_type="int8", output_type="int8")
    paths["int8"].write_bytes(int8)
    paths["onnx"].write_bytes(to_onnx(model))
    kernel, bias = model.get_layer("logits").get_weights()
    model.get_layer("logits").set_weights([kernel, bias + np.array([6.0, 0, 0, 0, 0], np.float32)])
    paths["perturbed"].write_bytes(to_tflite(model))
    paths["digits"].write_bytes(to_tflite(_cnn(keras, 3)))
    return paths


def litert_outputs(path, value: np.ndarray) -> np.ndarray:
    """The first output of a float TFLite model run directly in LiteRT."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], value.astype(np.float32))
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
