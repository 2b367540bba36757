"""Loading TensorFlow sources for conversion: trimming to inner tensors gives their values, wrong names list the
names that exist, dynamic inputs take a default shape, renames show in the converted files, and a Keras 3
.keras file loads through a child Python."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from convert.tiny_sources import run_onnx, run_tflite, sources  # noqa: F401  (pytest finds fixtures by name)
from eiq_lab.convert.graphs import fixed_shape, load_graph, parse_name
from eiq_lab.convert.plugins import onnx as onnx_plugin
from eiq_lab.convert.plugins import tensorflow as tf_plugin
from eiq_lab.errors import EiqError, InputError


def _call(graph, x):
    return np.concatenate([graph.run(image[None])[0] for image in x])


def test_name_syntax():
    assert parse_name("Preprocessor/sub") == ("Preprocessor/sub", None)
    assert parse_name("Preprocessor/sub:input") == ("Preprocessor/sub", "input")
    assert parse_name("concat:1") == ("concat:1", None)
    assert parse_name("concat:1:scores") == ("concat:1", "scores")
    with pytest.raises(InputError, match="NAME:INDEX:NEWNAME"):
        parse_name("a:b:c")


def test_trimming_a_pb_to_an_inner_tensor_gives_its_values(sources, tmp_path):  # noqa: F811
    graph = load_graph(sources.pb, "pb", output_names=[sources.inner], workdir=tmp_path)
    np.testing.assert_allclose(_call(graph, sources.x), sources.inner_values, atol=1e-5)
    # and the same cut written as files, with the output renamed
    params = {"output_names": f"{sources.inner}:features"}
    for suffix, run in ((".tflite", run_tflite), (".onnx", run_onnx)):
        out = tmp_path / f"cut{suffix}"
        result = tf_plugin.convert(str(sources.pb), str(out), params)
        assert result["success"] == "yes", result["message"]
        np.testing.assert_allclose(run(out, sources.x), sources.inner_values, atol=1e-4)


def test_an_inner_input_cuts_the_front_of_the_graph(sources, tmp_path):  # noqa: F811
    # feed conv1's output and read the scores: the rest of the network run on the given features
    from eiq_lab import framework

    model = framework.keras().models.load_model(sources.h5, compile=False)
    rest = framework.keras().Sequential([model.get_layer(n) for n in ("pool", "conv2", "gap", "scores")])
    expected = rest.predict(sources.inner_values, verbose=0)
    graph = load_graph(sources.pb, "pb", input_names=[f"{sources.inner}:features"], workdir=tmp_path)
    assert [t.name for t in graph.inputs] == ["features"] and graph.inputs[0].shape == [1, 30, 30, 8]
    np.testing.assert_allclose(_call(graph, sources.inner_values), expected, atol=1e-5)


def test_wrong_names_list_the_available_ones(sources, tmp_path):  # noqa: F811
    with pytest.raises(InputError) as info:
        load_graph(sources.pb, "pb", output_names=["logits"], workdir=tmp_path)
    message = str(info.value)
    assert "output name 'logits' is not in tiny_frozen.pb" in message
    assert "its inputs: image" in message and sources.inner in message
    assert "ReadVariableOp" not in message  # frozen-variable plumbing is not offered
    with pytest.raises(InputError, match=r"input name 'pixels' is not in tiny_savedmodel; its inputs: image"):
        load_graph(sources.savedmodel, "savedmodel", input_names=["pixels"], workdir=tmp_path)


def test_long_name_lists_are_cut_at_thirty(tmp_path):
    from eiq_lab import framework

    tf = framework.tf()

    def chain(x):
        for i in range(40):
            x = tf.nn.relu(x + float(i), name=f"step{i}")
        return x

    graph_def = tf.function(chain).get_concrete_function(tf.TensorSpec([1, 4], tf.float32, name="x")).graph
    path = tmp_path / "chain.pb"
    path.write_bytes(graph_def.as_graph_def().SerializeToString())
    with pytest.raises(InputError, match=r"and \d+ more$"):
        load_graph(path, "pb", output_names=["nothing"], workdir=tmp_path)


@pytest.fixture(scope="module")
def dynamic_pb(tmp_path_factory):
    """A fully convolutional frozen graph with input [?, ?, ?, 3], and the function it was made from."""
    from eiq_lab import framework

    tf = framework.tf()
    kernel = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 3, 2)).astype(np.float32))
    function = tf.function(lambda x: tf.nn.relu(tf.nn.conv2d(x, kernel, 1, "SAME"), name="features"))
    concrete = function.get_concrete_function(tf.TensorSpec([None, None, None, 3], tf.float32, name="x"))
    path = tmp_path_factory.mktemp("dynamic") / "dynamic.pb"
    path.write_bytes(concrete.graph.as_graph_def().SerializeToString())
    return path, function


def test_a_dynamic_input_needs_a_default_shape(dynamic_pb, tmp_path):
    path, function = dynamic_pb
    with pytest.raises(InputError, match=r"input 'x' has a dynamic shape \[\?, \?, \?, 3\]: give a default shape"):
        load_graph(path, "pb", workdir=tmp_path)
    out = tmp_path / "fixed.tflite"
    result = tf_plugin.convert(str(path), str(out), {"default_shape": "1,40,48,3"})
    assert result["success"] == "yes", result["message"]
    x = np.random.default_rng(1).normal(size=(1, 40, 48, 3)).astype(np.float32)
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(out))
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 40, 48, 3]
    np.testing.assert_allclose(run_tflite(out, x), function(x).numpy()[0:1], atol=1e-4)


def test_default_shapes_must_fit():
    assert fixed_shape("x", [None, 32, 32, 3], None) == [1, 32, 32, 3]
    assert fixed_shape("x", None, [1, 8, 8, 3]) == [1, 8, 8, 3]
    with pytest.raises(InputError, match="does not fit input 'x'"):
        fixed_shape("x", [None, 32, 32, 3], [1, 64, 64, 3])
    with pytest.raises(InputError, match="dynamic shape unknown"):
        fixed_shape("x", None, None)


def test_renaming_shows_in_the_converted_files(sources, tmp_path):  # noqa: F811
    import onnx
    from ai_edge_litert.interpreter import Interpreter

    params = {"input_names": "image:pixels", "output_names": "scores:probabilities", "model_name": "shapes"}
    tfl, onx = tmp_path / "renamed.tflite", tmp_path / "renamed.onnx"
    for out in (tfl, onx):
        result = tf_plugin.convert(str(sources.h5), str(out), params)
        assert result["success"] == "yes", result["message"]
    interpreter = Interpreter(model_path=str(tfl))
    assert interpreter.get_input_details()[0]["name"] == "pixels"
    assert interpreter.get_output_details()[0]["name"] == "probabilities"
    model = onnx.load(onx)
    assert [i.name for i in model.graph.input] == ["pixels"]
    assert [o.name for o in model.graph.output] == ["probabilities"]
    np.testing.assert_allclose(run_onnx(onx, sources.x), sources.expected, atol=1e-4)


def test_model_name_is_written(sources, tmp_path):  # noqa: F811
    import onnx

    out = tmp_path / "named.onnx"
    assert tf_plugin.convert(str(sources.pb), str(out), {"name": "shapes_net"})["success"] == "yes"
    assert onnx.load(out).graph.name == "shapes_net"
    tfl = tmp_path / "named.tflite"
    assert tf_plugin.convert(str(sources.pb), str(tfl), {"name": "shapes_net"})["success"] == "yes"
    from tensorflow.lite.python import schema_py_generated as schema

    assert schema.Model.GetRootAs(tfl.read_bytes(), 0).Subgraphs(0).Name() == b"shapes_net"


def test_onnx_trimming_renaming_and_dynamic_shapes(sources, tmp_path):  # noqa: F811
    import onnx

    full = tmp_path / "full.onnx"
    assert tf_plugin.convert(str(sources.h5), str(full), {})["success"] == "yes"
    model = onnx.load(full)
    relu = next(n.output[0] for n in model.graph.node if n.op_type == "Relu")
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"  # a dynamic batch, as exporters write
    onnx.save(model, full)
    cut = tmp_path / "cut.onnx"
    result = onnx_plugin.convert(str(full), str(cut), {"output_names": f"{relu}:features", "input_names": "image:x"})
    assert result["success"] == "yes", result["message"]
    trimmed = onnx.load(cut)
    assert [o.name for o in trimmed.graph.output] == ["features"] and trimmed.graph.input[0].name == "x"
    assert [d.dim_value for d in trimmed.graph.input[0].type.tensor_type.shape.dim] == [1, 32, 32, 3]
    # tf2onnx computes convolutions channels-first: the inner value is conv1's output transposed to NCHW
    np.testing.assert_allclose(run_onnx(cut, sources.x), sources.inner_values.transpose(0, 3, 1, 2), atol=1e-4)
    wrong = onnx_plugin.convert(str(full), str(tmp_path / "no.onnx"), {"output_names": "logits"})
    assert wrong["success"] == "no"
    assert "output name 'logits' is not in full.onnx" in wrong["message"] and relu in wrong["message"]
    assert not (tmp_path / "no.onnx").exists()


def test_keras3_file_loads_through_a_child_python_and_converts(sources, tmp_path):  # noqa: F811
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "k3.tflite"
    result = tf_plugin.convert(str(sources.keras3), str(out), {})
    assert result["success"] == "yes", result["message"]
    assert Interpreter(model_path=str(out)).get_input_details()[0]["name"] == "pixels"
    np.testing.assert_allclose(run_tflite(out, sources.x), sources.keras3_expected, atol=1e-4)


def test_keras3_errors_come_back_as_a_message(tmp_path):
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("metadata.json", '{"keras_version": "3.15.1"}')
        archive.writestr("config.json", '{"class_name": "NoSuchLayer", "config": {}}')
    with pytest.raises(EiqError, match=r"Keras 3 could not load and export .*broken.keras: \w+"):
        load_graph(broken, "keras", workdir=tmp_path)


def test_two_outputs_keep_their_names_and_values(sources, tmp_path):  # noqa: F811
    from ai_edge_litert.interpreter import Interpreter

    out = tmp_path / "two.tflite"
    params = {"output_names": f"Identity:probs,{sources.inner}:features"}
    result = tf_plugin.convert(str(sources.pb), str(out), params)
    assert result["success"] == "yes", result["message"]
    interpreter = Interpreter(model_path=str(out))
    interpreter.allocate_tensors()
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], sources.x[:1])
    interpreter.invoke()
    got = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()}
    assert set(got) == {"probs", "features"}
    np.testing.assert_allclose(got["probs"], sources.expected[:1], atol=1e-4)
    np.testing.assert_allclose(got["features"], sources.inner_values[:1], atol=1e-4)
