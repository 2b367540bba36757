"""Per-layer profiling (`profile_model`, `eiq profile`): every operator of a model timed once, the layer times
add up to the same order as the whole model, layers map to the original model's layers or nodes, operator
slices compute what the operator computes inside the whole model, and Vela's rows come through unchanged.
Timings are never asserted beyond "positive" and "the same order of magnitude"."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiq_lab.cli.main import main
from eiq_lab.errors import InputError
from eiq_lab.runner.profiling import profile_model, slice_operators


def _cnn(keras):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = layers.Conv2D(8, 3, padding="same", activation="relu", name="stem")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    shortcut = x
    x = layers.Conv2D(8, 1, name="pw")(x)
    x = layers.Add(name="residual")([x, shortcut])
    x = layers.MaxPooling2D(name="pool")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(4, name="head")(x)
    x = layers.Softmax(name="probs")(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def cnn(tmp_path_factory):
    """A tiny CNN as int8 TFLite, float TFLite and ONNX, and the names of its Keras layers."""
    from eiq_lab import framework
    from eiq_lab.convert.onnx import to_onnx
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    model = _cnn(keras)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)
    folder = tmp_path_factory.mktemp("profile_models")
    paths = {"int8": folder / "cnn_int8.tflite", "float": folder / "cnn.tflite", "onnx": folder / "cnn.onnx"}
    int8 = dict(quantize=True, samples=lambda: iter(calibration), input_type="int8", output_type="int8")
    paths["int8"].write_bytes(to_tflite(model, **int8))
    paths["float"].write_bytes(to_tflite(model))
    paths["onnx"].write_bytes(to_onnx(model))
    return paths, {layer.name for layer in model.layers}


def _litert_ops(path):
    """The model's operators as LiteRT lists them: (first output tensor name, op name)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    tensors = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    return [(tensors[int(op["outputs"][0])], op["op_name"]) for op in interpreter._get_ops_details()]


@pytest.mark.parametrize("kind", ["int8", "float"])
@pytest.mark.parametrize("xnnpack", [True, False])
def test_tflite_every_operator_once_with_a_positive_time(cnn, kind, xnnpack):
    paths, _ = cnn
    profile = profile_model(paths[kind], runs=5, xnnpack=xnnpack)
    assert profile.engine == "tflite"
    assert [(layer.name, layer.type) for layer in profile.layers] == _litert_ops(paths[kind])
    assert all(layer.avg_ns > 0 and 1 <= layer.count <= 5 for layer in profile.layers)
    assert all(layer.total_ns == pytest.approx(layer.avg_ns * layer.count) for layer in profile.layers)
    # the slices' sum is a measurement of the same work: the same order of magnitude as the whole model
    assert profile.total_ns > 0  # (how close the layers' sum comes is measured in benchmarks, never asserted)
    assert profile.settings["xnnpack"] is xnnpack


def test_layers_map_to_the_keras_layers(cnn):
    paths, keras_names = cnn
    profile = profile_model(paths["int8"], runs=2)
    mapped = {name for layer in profile.layers for name in layer.original}
    assert mapped <= keras_names
    assert {"stem", "dw", "pw", "residual", "pool", "head"} <= mapped
    first = profile.layers[0]
    assert (first.type, first.shape, first.datatype) == ("CONV_2D", [1, 32, 32, 8], "INT8")


def test_by_op_type_adds_up_to_the_layers(cnn):
    paths, _ = cnn
    profile = profile_model(paths["int8"], runs=3)
    summary = profile.by_op_type()
    assert sum(count for _, _, count in summary.values()) == len(profile.layers)
    assert sum(total for _, total, _ in summary.values()) == pytest.approx(profile.layers_ns)
    for kind, (avg, total, count) in summary.items():
        times = [layer.avg_ns for layer in profile.layers if layer.type == kind]
        assert (total, count) == (pytest.approx(sum(times)), len(times))
        assert avg == pytest.approx(total / count)
    assert summary["CONV_2D"][2] == 2


@pytest.mark.parametrize("kind", ["int8", "float"])
def test_a_slice_computes_what_its_operator_computes_in_the_whole_model(cnn, kind):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    paths, _ = cnn
    whole = Interpreter(
        model_path=str(paths[kind]), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )  # fmt: skip
    whole.allocate_tensors()
    detail = whole.get_input_details()[0]
    rng = np.random.default_rng(1)
    if detail["dtype"] == np.int8:
        image = rng.integers(-128, 128, detail["shape"]).astype(np.int8)
    else:
        image = rng.uniform(-1, 1, detail["shape"]).astype(np.float32)
    whole.set_tensor(detail["index"], image)
    whole.invoke()
    tensors = {t["name"]: whole.get_tensor(t["index"]) for t in whole.get_tensor_details() if t["name"]}
    slices = slice_operators(paths[kind].read_bytes())
    assert len(slices) == len(_litert_ops(paths[kind]))
    for part in slices:
        single = Interpreter(
            model_content=part["model"], experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        )
        single.allocate_tensors()
        assert len(single._get_ops_details()) == 1
        for item in single.get_input_details():
            single.set_tensor(item["index"], tensors[item["name"]])
        single.invoke()
        for item in single.get_output_details():
            np.testing.assert_allclose(single.get_tensor(item["index"]), tensors[item["name"]], rtol=1e-5, atol=1e-6)


def test_onnx_layers_are_named_after_the_original_nodes(cnn):
    import onnx

    paths, _ = cnn
    profile = profile_model(paths["onnx"], runs=5)
    assert profile.engine == "onnx"
    nodes = {node.name for node in onnx.load(str(paths["onnx"])).graph.node}
    mapped = [name for layer in profile.layers for name in layer.original]
    assert set(mapped) <= nodes
    assert set(mapped) == nodes  # every original node is computed by some runtime node
    assert all(layer.avg_ns > 0 and layer.count == 5 for layer in profile.layers)
    assert profile.total_ns > 0  # (how close the layers' sum comes is measured in benchmarks, never asserted)
    # per original node (the runner's layer names), the runtime nodes' times; reorders inserted by the runtime
    # belong to no original node
    timings = profile.layer_timings()
    assert set(timings) <= nodes
    inserted = sum(layer.avg_ns for layer in profile.layers if not layer.original)
    assert sum(timings.values()) == pytest.approx(profile.layers_ns - inserted)


def test_vela_rows_are_velas(cnn, tmp_path):
    from eiq_lab.convert.vela import compile_for_ethos_u

    paths, _ = cnn
    profile = profile_model(paths["int8"], "vela")
    report = compile_for_ethos_u(paths["int8"], tmp_path / "vela")
    assert [layer.name for layer in profile.layers] == [row.name for row in report.layers]
    for layer, row in zip(profile.layers, report.layers, strict=True):
        assert layer.avg_ns == pytest.approx(row.cycles / report.clock_hz * 1e9)
        assert layer.type.startswith(row.operator)
    assert profile.total_ns == pytest.approx(report.inference_time_s * 1e9)
    assert profile.settings["cycles"] == report.cycles


def test_bad_arguments_are_refused(cnn, tmp_path):
    paths, _ = cnn
    with pytest.raises(InputError, match="runs must be at least 1"):
        profile_model(paths["int8"], runs=0)
    with pytest.raises(InputError, match="engine must be one of"):
        profile_model(paths["int8"], "armnn")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(InputError, match="neither a TFLite nor an ONNX"):
        profile_model(junk)
    with pytest.raises(InputError, match="not found"):
        profile_model(tmp_path / "missing.tflite")


def test_cli_prints_the_table_and_the_summary(cnn, capsys):
    paths, _ = cnn
    assert main(["profile", str(paths["int8"]), "--runs", "3", "--xnnpack", "off"]) == 0
    out = capsys.readouterr().out
    assert "CONV_2D" in out and "DEPTHWISE_CONV_2D" in out
    assert "(stem" in out  # the original Keras layer beside the runtime layer
    assert "per inference" in out and "layers sum" in out


def test_cli_json(cnn, capsys):
    paths, _ = cnn
    assert main(["profile", str(paths["onnx"]), "--runs", "3", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["engine"] == "onnx" and data["settings"]["runs"] == 3
    assert data["total_ns"] > 0 and len(data["layers"]) > 0
    assert sum(row[1] for row in data["by_op_type"].values()) == pytest.approx(data["layers_ns"])


def test_cli_errors(cnn, tmp_path, capsys):
    paths, _ = cnn
    assert main(["profile", str(tmp_path / "missing.tflite")]) == 1
    assert "not found" in capsys.readouterr().err
    assert main(["profile", str(paths["int8"]), "--engine", "armnn"]) == 2


def test_cli_profiles_on_a_remote_runner(cnn, runner, capsys):
    """`--uri`: the model is uploaded to a runner in profiling mode and its per-layer timings are shown."""
    paths, _ = cnn
    server = runner(profile=True)
    assert main(["profile", str(paths["int8"]), "--uri", server.url, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["engine"] == "remote" and data["settings"]["uri"] == server.url
    names = [layer["name"] for layer in data["layers"]]
    assert names == [name for name, _ in _litert_ops(paths["int8"])]
    assert all(layer["avg_ns"] > 0 for layer in data["layers"])
    assert sum(row[2] for row in data["by_op_type"].values()) == len(names)


def test_cli_remote_runner_without_profiling_says_how_to_start_it(cnn, runner, capsys):
    paths, _ = cnn
    server = runner()
    assert main(["profile", str(paths["int8"]), "--uri", server.url]) == 1
    assert "eiq-runner -d prof" in capsys.readouterr().err
