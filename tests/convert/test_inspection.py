"""Model inspection: layers, tensors, quantization and weights of TFLite, ONNX and Keras files, checked against
the Keras model's own weights (TFLite stores convolution kernels OHWI, ONNX OIHW, Keras HWIO)."""

import numpy as np
import pytest

from convert.tiny_sources import sources  # noqa: F401  (pytest finds fixtures by name)
from eiq_lab.convert.inspection import inspect_model
from eiq_lab.convert.registry import convert
from eiq_lab.errors import InputError


@pytest.fixture(scope="module")
def files(sources, tmp_path_factory):  # noqa: F811
    root = tmp_path_factory.mktemp("inspect")
    out = {"float": root / "tiny.tflite", "int8": root / "tiny_int8.tflite", "onnx": root / "tiny.onnx"}
    convert(sources.h5, out["float"], {"labels": str(sources.labels)})
    convert(sources.h5, out["int8"], {"quantize": True, "samples": str(sources.calibration), "num_samples": 16})
    convert(sources.h5, out["onnx"], {})
    return out


@pytest.fixture(scope="module")
def keras_kernel(sources):  # noqa: F811
    import h5py

    with h5py.File(sources.h5, "r") as f:
        return np.asarray(f["model_weights/conv1/conv1/kernel:0"])  # HWIO, as Keras saved it


def test_keras_file_lists_layers_with_weights_and_stats(sources, keras_kernel):  # noqa: F811
    info = inspect_model(sources.h5)
    assert [layer.name for layer in info.layers] == ["image", "conv1", "pool", "conv2", "gap", "scores"]
    conv1 = info.layer("conv1")
    assert conv1.type == "Conv2D" and conv1.outputs[0].shape == [-1, 30, 30, 8]
    assert conv1.params == 3 * 3 * 3 * 8 + 8
    assert conv1.stats.count == conv1.params
    values = info.weight_values("conv1")
    np.testing.assert_allclose(np.sort(values[: keras_kernel.size]), np.sort(keras_kernel.ravel()), rtol=1e-6)
    counts, edges = info.histogram("conv1", bins=10)
    assert counts.sum() == conv1.params and len(edges) == 11
    assert info.params == sum(np.prod(w.shape) for layer in info.layers for w in layer.weights)
    assert not info.quantized


def test_int8_tflite_shows_per_channel_scales_and_dequantized_weights(files, keras_kernel):
    info = inspect_model(files["int8"])
    assert info.format == "tflite" and info.quantized
    convs = [layer for layer in info.layers if layer.type == "CONV_2D"]
    assert len(convs) == 2
    kernel = next(t for t in convs[0].weights if len(t.shape) == 4)
    assert kernel.dtype == "int8" and kernel.shape == [8, 3, 3, 3]
    assert kernel.quantization == "per-channel (axis 0, 8 channels)"
    assert len(kernel.zero_points) == 8 and set(kernel.zero_points) == {0}
    dequantized = info._values[kernel.name]
    expected = keras_kernel.transpose(3, 0, 1, 2)  # HWIO -> OHWI
    step = np.asarray(kernel.scales).reshape(-1, 1, 1, 1)
    assert np.all(np.abs(dequantized - expected) <= step / 2 + 1e-7)
    table = info.rows()
    assert any(row["type"] == "CONV_2D" and row["quantization"].startswith("per-channel") for row in table)
    assert info.inputs[0].shape[1:] == [32, 32, 3]


def test_float_tflite_carries_labels_and_float_weights(files, keras_kernel):
    info = inspect_model(files["float"])
    assert not info.quantized
    assert info.metadata.get("labels") == ["red", "green", "blue", "yellow"]
    conv = next(layer for layer in info.layers if layer.type == "CONV_2D")
    kernel = next(t for t in conv.weights if len(t.shape) == 4)
    np.testing.assert_allclose(info._values[kernel.name], keras_kernel.transpose(3, 0, 1, 2), rtol=1e-6)


def test_onnx_nodes_with_initializer_weights(files, keras_kernel):
    info = inspect_model(files["onnx"])
    assert info.format == "onnx"
    convs = [layer for layer in info.layers if layer.type == "Conv"]
    assert len(convs) == 2
    kernel = next(t for t in convs[0].weights if len(t.shape) == 4)
    np.testing.assert_allclose(info._values[kernel.name], keras_kernel.transpose(3, 2, 0, 1), rtol=1e-6)
    assert info.outputs and info.outputs[0].shape[-1] == 4


def test_bad_files_are_refused_with_the_reason(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        inspect_model(tmp_path / "missing.tflite")
    text = tmp_path / "notes.tflite"
    text.write_text("not a model")
    with pytest.raises(InputError):
        inspect_model(text)
    relu = inspect_model(_tiny_tflite(tmp_path))
    assert [(layer.type, layer.name) for layer in relu.layers] == [("RELU", "y")]
    with pytest.raises(InputError, match="has no layer 'nope'; layers include y"):
        relu.layer("nope")


def _tiny_tflite(tmp_path):
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    tensor_in, tensor_out = schema.TensorT(), schema.TensorT()
    for tensor, name in ((tensor_in, "x"), (tensor_out, "y")):
        tensor.shape, tensor.type, tensor.buffer, tensor.name = [1, 4], schema.TensorType.FLOAT32, 0, name
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor_in, tensor_out], [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
    builder = flatbuffers.Builder(0)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "relu.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path
