"""The guide's Table 5.1, cell by cell, through the built-in plugins: every Y cell converts and the converted
model (run in LiteRT or ONNX Runtime) gives the source's outputs on the same inputs; every N and N/A cell
fails with its reason. ONNX -> TFLite (onnx2tf) and RTM outputs are the out-of-process plugins' tests; a Keras 3
.keras source is test_graphs'."""

from __future__ import annotations

import numpy as np
import pytest

from convert.tiny_sources import run_onnx, run_tflite, sources  # noqa: F401  (pytest finds fixtures by name)
from eiq_lab.convert.onnx import read_metadata as onnx_metadata
from eiq_lab.convert.plugins import onnx as onnx_plugin
from eiq_lab.convert.plugins import tensorflow as tf_plugin
from eiq_lab.convert.tflite import read_metadata as tflite_metadata
from eiq_lab.convert.tflite import weight_scales

SOURCES = ("pb", "savedmodel", "tar", "h5", "keras2")
OUTPUTS = ("tflite", "tflite_q", "onnx", "onnx_q")
#: float: the converted graph computes the same function; int8: within 5% of the softmax output range
FLOAT_ATOL, INT8_ATOL = 1e-4, 0.05


def _source(sources, name):  # noqa: F811
    return {"pb": sources.pb, "savedmodel": sources.savedmodel, "tar": sources.tar, "h5": sources.h5,
            "keras2": sources.keras2}[name]  # fmt: skip


def _params(sources, quantize):  # noqa: F811
    params = {"labels": str(sources.labels), "metadata": ["author=eiq-lab tests", "task=classification"]}
    if quantize:
        params.update(quantize=True, samples=str(sources.calibration), num_samples=16)
    return params


def _check(out, expected, x, quantized):
    run = run_tflite if out.suffix == ".tflite" else run_onnx
    got = run(out, x)
    if quantized:
        assert np.abs(got - expected).max() <= INT8_ATOL * (expected.max() - expected.min())
        assert (got.argmax(1) == expected.argmax(1)).mean() >= 0.9
    else:
        np.testing.assert_allclose(got, expected, atol=FLOAT_ATOL)


def _is_int8(out):
    if out.suffix == ".tflite":
        return bool(weight_scales(out.read_bytes()))
    import onnx

    return any(n.op_type == "QuantizeLinear" for n in onnx.load(out).graph.node)


@pytest.mark.parametrize("output", OUTPUTS)
@pytest.mark.parametrize("source", SOURCES)
def test_tensorflow_sources_convert(sources, tmp_path, source, output):  # noqa: F811
    quantized = output.endswith("_q")
    out = tmp_path / f"model.{output.removesuffix('_q')}"
    result = tf_plugin.convert(str(_source(sources, source)), str(out), _params(sources, quantized))
    assert result["success"] == "yes", result["message"]
    assert _is_int8(out) == quantized
    _check(out, sources.expected, sources.x, quantized)
    metadata = tflite_metadata(out.read_bytes()) if out.suffix == ".tflite" else onnx_metadata(out.read_bytes())
    labels = metadata["labels"].decode() if isinstance(metadata["labels"], bytes) else metadata["labels"]
    assert labels.split() == ["red", "green", "blue", "yellow"]
    author = metadata["author"].decode() if isinstance(metadata["author"], bytes) else metadata["author"]
    assert author == "eiq-lab tests"


@pytest.fixture(scope="module")
def tflite_models(sources, tmp_path_factory):  # noqa: F811
    """The tiny model as float TFLite and as int8 TFLite (int8 input and output, per-tensor)."""
    root = tmp_path_factory.mktemp("tflite_sources")
    float_path, int8_path = root / "float.tflite", root / "int8.tflite"
    assert tf_plugin.convert(str(sources.h5), str(float_path), {})["success"] == "yes"
    params = {**_params(sources, True), "input_type": "int8", "output_type": "int8", "quant_channel": False}
    result = tf_plugin.convert(str(sources.h5), str(int8_path), params)
    assert result["success"] == "yes", result["message"]
    return float_path, int8_path


def test_int8_io_and_per_tensor_are_what_the_file_holds(tflite_models):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tflite_models[1]))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8
    scales = weight_scales(tflite_models[1].read_bytes())
    assert scales and set(scales.values()) == {1}


@pytest.mark.parametrize(("model", "quantize"), [("float", False), ("float", True), ("int8", False)])
def test_tflite_sources_convert_to_onnx(sources, tflite_models, tmp_path, model, quantize):  # noqa: F811
    src = tflite_models[0] if model == "float" else tflite_models[1]
    out = tmp_path / "from_tflite.onnx"
    result = tf_plugin.convert(str(src), str(out), _params(sources, quantize))
    assert result["success"] == "yes", result["message"]
    if model == "float":
        _check(out, sources.expected, sources.x, quantized=quantize)
        return
    # the int8 model keeps its int8 input and output in ONNX: (de)quantize with the TFLite file's parameters
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(src))
    (in_scale, in_zero), (out_scale, out_zero) = (
        interpreter.get_input_details()[0]["quantization"], interpreter.get_output_details()[0]["quantization"]
    )  # fmt: skip
    x = np.clip(np.round(sources.x / in_scale + in_zero), -128, 127).astype(np.int8)
    got = (run_onnx(out, x).astype(np.float32) - out_zero) * out_scale
    np.testing.assert_allclose(got, run_tflite(src, sources.x), atol=out_scale * 1.01)  # the same int8 arithmetic
    assert (got.argmax(1) == sources.expected.argmax(1)).mean() >= 0.9


def test_onnx_to_onnx_quantized(sources, tmp_path):  # noqa: F811
    float_onnx, int8_onnx = tmp_path / "float.onnx", tmp_path / "int8.onnx"
    assert tf_plugin.convert(str(sources.h5), str(float_onnx), {})["success"] == "yes"
    result = onnx_plugin.convert(str(float_onnx), str(int8_onnx), _params(sources, True))
    assert result["success"] == "yes", result["message"]
    assert _is_int8(int8_onnx)
    _check(int8_onnx, sources.expected, sources.x, quantized=True)
    again = onnx_plugin.convert(str(int8_onnx), str(tmp_path / "again.onnx"), _params(sources, True))
    assert again["success"] == "no" and "already quantized" in again["message"]


@pytest.mark.parametrize(
    ("cell", "quantize", "why"),
    [
        ("tflite->tflite", False, "already a TFLite model"),
        ("tflite->tflite", True, "a float TFLite model cannot be quantized"),
        ("tflite_q->tflite", True, "an int8 TFLite model cannot be re-quantized: convert from the float source"),
        ("tflite_q->onnx", True, "cannot be re-quantized: drop --quantize"),
        ("rtm->tflite", False, "an RTM model cannot be converted"),
        ("rtm->onnx", True, "an RTM model cannot be converted"),
    ],
)  # fmt: skip
def test_cells_marked_n_fail_with_the_reason(sources, tflite_models, tmp_path, cell, quantize, why):  # noqa: F811
    src_name, dst_type = cell.split("->")
    if src_name == "rtm":
        src = tmp_path / "model.rtm"
        src.write_bytes(b"RTM\x00" + bytes(60))
    else:
        src = tflite_models[1] if src_name == "tflite_q" else tflite_models[0]
    out = tmp_path / f"out.{dst_type}"
    result = tf_plugin.convert(str(src), str(out), _params(sources, quantize))
    assert result["success"] == "no"
    assert why in result["message"]
    assert not out.exists()


def test_bad_input_is_reported_not_raised(sources, tmp_path):  # noqa: F811
    text = tmp_path / "notes.h5"
    text.write_text("not a model at all\n")
    result = tf_plugin.convert(str(text), str(tmp_path / "x.tflite"), {})
    assert result == {"success": "no", "message": f"{text} is not a model: it holds text; give a .tflite, .onnx, "
                      ".h5, .keras, .pb file or a SavedModel folder/tar"}  # fmt: skip
    missing = tf_plugin.convert(str(sources.h5), str(tmp_path / "x.tflite"), {"labels": str(tmp_path / "none.txt")})
    assert missing["success"] == "no" and "labels file" in missing["message"]
    int8_float = tf_plugin.convert(str(sources.h5), str(tmp_path / "x.tflite"), {"input_type": "int8"})
    assert int8_float["success"] == "no" and "needs a quantized model" in int8_float["message"]
    no_samples = tf_plugin.convert(str(sources.h5), str(tmp_path / "x.tflite"), {"quantize": True})
    assert no_samples["success"] == "no" and "calibration samples" in no_samples["message"]
    empty = tmp_path / "empty"
    empty.mkdir()
    params = {"quantize": True, "samples": str(empty)}
    no_images = tf_plugin.convert(str(sources.h5), str(tmp_path / "x.tflite"), params)
    assert no_images["success"] == "no" and "empty" in no_images["message"]
    assert not (tmp_path / "x.tflite").exists()


def test_onnx_op_missing_from_the_target_opset_is_named(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Gelu", ["x"], ["y"])], "gelu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    src = tmp_path / "gelu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)]), src)
    result = onnx_plugin.convert(str(src), str(tmp_path / "old.onnx"), {"onnx_opset": 13})
    assert result["success"] == "no"
    assert "uses Gelu, which ONNX opset 13 does not define" in result["message"]


def test_query_convert_describes_formats_and_parameters():
    listing = tf_plugin.query_convert(None, None)
    assert {"ext": "h5", "name": "Keras HDF5"} in listing["supported_inputs"]
    assert [o["ext"] for o in listing["supported_outputs"]] == ["tflite", "onnx"]
    schema = tf_plugin.query_convert("h5", "tflite")
    for key in ("quantize", "quant_channel", "input_names", "labels", "samples", "num_samples", "tflite_converter"):
        assert {"type", "default", "choices", "group", "public", "help"} <= set(schema[key])
    assert schema["num_samples"]["default"] == 10 and schema["quant_channel"]["default"] is True
    assert "onnx_opset" in tf_plugin.query_convert("pb", "onnx")
    assert tf_plugin.query_convert("onnx", "tflite") is None
    assert onnx_plugin.query_convert("onnx", "onnx")["onnx_opset"]["type"] == "int"
    assert onnx_plugin.query_convert("h5", "onnx") is None


def test_onnx_opset_and_quantize_format_are_applied(sources, tmp_path):  # noqa: F811
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "opset11.onnx"
    assert tf_plugin.convert(str(sources.pb), str(out), {"onnx-opset": "11"})["success"] == "yes"
    assert [o.version for o in onnx.load(out).opset_import if o.domain in ("", "ai.onnx")] == [11]
    _check(out, sources.expected, sources.x, quantized=False)
    uint8 = tmp_path / "uint8.tflite"
    params = {**_params(sources, True), "quantize_format": "uint8"}
    result = tf_plugin.convert(str(sources.savedmodel), str(uint8), params)
    assert result["success"] == "yes", result["message"]
    interpreter = Interpreter(model_path=str(uint8))
    assert interpreter.get_input_details()[0]["dtype"] == np.uint8
    _check(uint8, sources.expected, sources.x, quantized=True)
    toco = tf_plugin.convert(str(sources.h5), str(tmp_path / "t.tflite"), {"tflite_converter": "toco"})
    assert toco["success"] == "no" and "TOCO" in toco["message"]
