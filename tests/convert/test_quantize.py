"""Post-training quantization of model files: per-tensor files really hold one scale per weight tensor (read
back with LiteRT), int8 models agree with the float model, ONNX QDQ runs in ONNX Runtime, equalization keeps
the function, and what cannot be quantized is refused with the reason."""

from __future__ import annotations

import json

import numpy as np
import pytest
from train.conftest import digits_template  # noqa: F401  (pytest finds fixtures by name; tests/ is on sys.path)

from convert.tiny_sources import run_tflite
from eiq_lab.cli.main import main
from eiq_lab.convert.quantize import equalize_model, quantize_model
from eiq_lab.convert.tflite import quantize_concrete, weight_scales
from eiq_lab.errors import InputError
from eiq_lab.project import open_project

NUM_SAMPLES = 30


def project_arrays(path, group):
    """A project's images of a group, decoded with PIL (another route than the code under test), x/127.5-1,
    with class indices in sorted label order."""
    with open_project(path) as project:
        names = sorted({str(a.label) for a in project.annotations()})
        xs, ys = [], []
        for image in project.iter_images(group=group):
            xs.append(np.asarray(project.image(image.id).pil().convert("RGB"), np.float32) / 127.5 - 1.0)
            ys.append(names.index(str(project.annotations(image=image.id)[0].label)))
    return np.stack(xs), np.asarray(ys), names


def train_tiny_cnn(project_path):
    """A tiny CNN (conv-BN-ReLU, pooling, convs, dense) trained briefly on the digits project: it learns, so
    calibration and accuracy comparisons mean something (a random model outputs near constants)."""
    from eiq_lab import framework

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    x, y, _ = project_arrays(project_path, "train")
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            layers.Conv2D(8, 3, padding="same", use_bias=False, name="conv1"),
            layers.BatchNormalization(momentum=0.8, name="bn1"),  # settles within a short fit
            layers.ReLU(name="relu1"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv2"),
            layers.MaxPooling2D(),
            layers.Conv2D(16, 3, padding="same", activation="relu", name="conv3"),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3, activation="softmax", name="classes"),
        ],
        name="tiny",
    )
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x, y, epochs=20, batch_size=16, verbose=0)
    return model


@pytest.fixture(scope="session")
def trained(digits_template, tmp_path_factory):  # noqa: F811
    """(project path, .h5 path, Keras model, test images, test classes) of the tiny CNN trained on digits."""
    folder = tmp_path_factory.mktemp("quantize")
    model = train_tiny_cnn(digits_template)
    path = folder / "tiny.h5"
    model.save(path)
    x, y, _ = project_arrays(digits_template, "test")
    assert np.mean(model.predict(x, verbose=0).argmax(1) == y) >= 0.9  # it learned
    return digits_template, path, model, x, y


def litert(path, allocate=True):
    """A LiteRT interpreter; unallocated it shows the tensors as the file holds them (allocation lets
    XNNPACK repeat a per-tensor dense scale per output channel in memory)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    if allocate:
        interpreter.allocate_tensors()
    return interpreter


def litert_predict(path, x):
    """Top-1 classes of a TFLite model on float inputs x (int I/O quantized), and its input and output types."""
    details = litert(path)
    return (
        run_tflite(path, x).argmax(1),
        details.get_input_details()[0]["dtype"],
        details.get_output_details()[0]["dtype"],
    )


def kernel_scales(path):
    """LiteRT's view: scales of every int8 4-D weight tensor (kernels; activations have batch 1)."""
    details = litert(path, allocate=False).get_tensor_details()
    return {
        t["name"]: len(t["quantization_parameters"]["scales"])
        for t in details
        if t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] != 1
    }


def test_per_tensor_has_one_scale_per_weight_tensor_and_per_channel_one_per_filter(trained, tmp_path):
    project, h5, _model, _, _ = trained
    pc = quantize_model(h5, tmp_path / "pc.tflite", samples=project, num_samples=NUM_SAMPLES)
    pt = quantize_model(h5, tmp_path / "pt.tflite", per_channel=False, samples=project, num_samples=NUM_SAMPLES)
    # LiteRT, an independent reader: conv kernels hold one scale per output channel, or exactly one
    channel_kernels, tensor_kernels = kernel_scales(pc.path), kernel_scales(pt.path)
    assert len(channel_kernels) == 3 and len(tensor_kernels) == 3  # conv1, conv2, conv3
    assert sorted(channel_kernels.values()) == [8, 16, 16]
    assert set(tensor_kernels.values()) == {1}
    details = {t["name"]: t for t in litert(pt.path, allocate=False).get_tensor_details()}
    for name, count in pt.weight_scales.items():  # what weight_scales reports is what the file holds
        assert count == 1 == len(details[name]["quantization_parameters"]["scales"])
    assert len(pt.weight_scales) == 4  # three kernels and the dense weights
    pc_details = {t["name"]: t for t in litert(pc.path, allocate=False).get_tensor_details()}
    for name, count in pc.weight_scales.items():
        assert count == len(pc_details[name]["quantization_parameters"]["scales"])
    assert pt.granularity == "per-tensor" and pc.granularity == "per-channel"
    assert pc.samples.startswith(f"{NUM_SAMPLES} train images")


def test_int8_models_agree_with_float_and_take_int8_or_uint8(trained, tmp_path):
    project, h5, model, x, _y = trained
    expected = model.predict(x, verbose=0).argmax(1)
    for per_channel, io in ((True, "int8"), (False, "int8"), (True, "uint8")):
        out = tmp_path / f"m_{per_channel}_{io}.tflite"
        quantize_model(
            h5, out, per_channel=per_channel, input_type=io, output_type=io, samples=project, num_samples=NUM_SAMPLES
        )
        got, in_type, out_type = litert_predict(out, x)
        assert in_type == out_type == np.dtype(io).type
        assert np.mean(got == expected) >= 0.9, (per_channel, io)


def test_a_keras_saved_model_and_a_plain_saved_model_quantize(trained, tmp_path):
    from eiq_lab import framework

    tf = framework.tf()
    project, _, model, x, _ = trained
    expected = model.predict(x, verbose=0).argmax(1)
    model.save(tmp_path / "keras_sm")  # tf_keras writes a SavedModel with keras_metadata.pb
    module = tf.Module()
    module.model = model
    module.serve = tf.function(lambda t: {"scores": model(t, training=False)}, [tf.TensorSpec([1, 32, 32, 3])])
    tf.saved_model.save(module, str(tmp_path / "plain_sm"), signatures={"serving_default": module.serve})
    concrete = quantize_concrete(
        module.serve.get_concrete_function(), lambda: iter(x[:10]), per_channel=False, trackable=module
    )
    (tmp_path / "concrete.tflite").write_bytes(concrete)
    assert set(weight_scales(concrete).values()) == {1}
    assert np.mean(litert_predict(tmp_path / "concrete.tflite", x)[0] == expected) >= 0.9
    for name in ("keras_sm", "plain_sm"):
        result = quantize_model(tmp_path / name, tmp_path / f"{name}.tflite", samples=project, num_samples=20)
        got, _, _ = litert_predict(result.path, x)
        assert result.source_type == "savedmodel" and np.mean(got == expected) >= 0.9, name
        assert max(result.weight_scales.values()) > 1


def test_a_keras3_file_is_quantized_through_a_saved_model(tmp_path):
    import os
    import subprocess
    import sys

    # Keras 3 writes the file in a child Python (this process runs Keras 2, which cannot read it)
    script = (
        "import keras, sys; m = keras.Sequential([keras.Input((16, 16, 3)), keras.layers.Conv2D(4, 3), "
        "keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]); m.save(sys.argv[1])"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "k3.keras")], env=env, check=True)
    result = quantize_model(tmp_path / "k3.keras", tmp_path / "k3.tflite", per_channel=False, samples=4)
    assert result.source_type == "keras" and set(result.weight_scales.values()) == {1}
    assert len(result.weight_scales) == 2 and litert_predict(result.path, np.zeros((1, 16, 16, 3), np.float32))[
        0
    ].shape == (1,)
    with pytest.raises(InputError, match="Keras 3 file"):
        quantize_model(tmp_path / "k3.keras", tmp_path / "k3.onnx", samples=4)


def _onnx_weight_scales(path):
    """Scale sizes of DequantizeLinear nodes fed by int8 initializers, read with onnx's numpy_helper."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    values = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
    return {
        n.input[0]: values[n.input[1]].size
        for n in proto.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in values and values[n.input[0]].dtype == np.int8
    }


def test_onnx_qdq_per_tensor_and_per_channel_run_in_onnxruntime(trained, tmp_path):
    import onnxruntime

    from eiq_lab.convert.onnx import to_onnx

    project, _, model, x, _ = trained
    expected = model.predict(x, verbose=0).argmax(1)
    source = tmp_path / "float.onnx"
    source.write_bytes(to_onnx(model))
    for per_channel in (False, True):
        out = tmp_path / f"q_{per_channel}.onnx"
        result = quantize_model(source, out, per_channel=per_channel, samples=project, num_samples=NUM_SAMPLES)
        session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
        ops = {node.op_type for node in __import__("onnx").load(str(out)).graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        assert session.get_inputs()[0].type == "tensor(float)"  # ONNX I/O stays float32
        name = session.get_inputs()[0].name
        got = np.concatenate([session.run(None, {name: image[None]})[0] for image in x]).argmax(1)
        assert np.mean(got == expected) >= 0.9, per_channel
        scales = _onnx_weight_scales(out)
        assert scales == result.weight_scales and len(scales) == 4
        if per_channel:
            assert sorted(scales.values()) == [3, 8, 16, 16]  # one per output channel (dense: 3 classes)
        else:
            assert set(scales.values()) == {1}
    # a Keras source can go straight to QDQ ONNX too
    direct = quantize_model(trained[1], tmp_path / "direct.onnx", per_channel=False, samples=4)
    assert direct.format == "onnx" and set(direct.weight_scales.values()) == {1}


def test_equalization_keeps_the_function_and_evens_out_channel_ranges(trained, tmp_path):
    project, h5, model, x, _y = trained
    equalized, pairs = equalize_model(model)
    assert ("conv1", "conv2") in pairs and ("conv2", "conv3") in pairs and ("conv3", "classes") in pairs
    np.testing.assert_allclose(equalized.predict(x, verbose=0), model.predict(x, verbose=0), atol=1e-4)

    def spread(m):  # ratio of the largest to the smallest per-channel range of conv2's kernel
        r = np.abs(m.get_layer("conv2").get_weights()[0]).max(axis=(0, 1, 2))
        return r.max() / r.min()

    assert spread(equalized) < spread(model)
    result = quantize_model(h5, tmp_path / "eq.tflite", per_channel=False, samples=project, equalize=True)
    got, _, _ = litert_predict(result.path, x)
    assert result.equalized == pairs and np.mean(got == model.predict(x, verbose=0).argmax(1)) >= 0.9


def test_bias_correction_removes_the_mean_shift_of_per_tensor_weights():
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab import framework
    from eiq_lab.convert.quantize import correct_bias
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    inputs = keras.Input((4,))
    dense = keras.layers.Dense(2, name="d")
    model = keras.Model(inputs, dense(inputs))
    # per tensor, the scale is 0.5 / 127: the small weights (0.0015) round to 0, so output 1 (0.006 x ~ 0.06)
    # comes out 0 for inputs near 10, a shift bias correction moves into the bias (+0.06)
    dense.set_weights([np.array([[0.5, 0.0015]] * 4, np.float32), np.array([-20.0, 0.0], np.float32)])
    x = (10 + np.random.default_rng(0).uniform(-0.5, 0.5, (32, 4))).astype(np.float32)
    corrected, names = correct_bias(model, lambda: iter(x), per_channel=False)
    assert names == ["d"] and corrected.get_layer("d").get_weights()[1][1] == pytest.approx(0.06, abs=2e-3)
    reference = model.predict(x, verbose=0)

    def int8_error(m):
        interpreter = Interpreter(model_content=to_tflite(m, quantize=True, samples=lambda: iter(x), per_channel=False))
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]
        got = []
        for row in x:
            interpreter.set_tensor(inp, row[None])
            interpreter.invoke()
            got.append(interpreter.get_tensor(out)[0].copy())
        return np.abs(np.array(got) - reference)[:, 1].mean()

    assert int8_error(model) > 0.05 and int8_error(corrected) < 0.01


def test_what_cannot_be_quantized_is_refused_with_the_reason(trained, tmp_path):
    _project, h5, _, _, _ = trained
    text = tmp_path / "notes.h5"
    text.write_text("not a model")
    with pytest.raises(InputError, match=r"notes\.h5 is not a model: it holds text"):
        quantize_model(text, tmp_path / "x.tflite", samples=4)
    int8 = quantize_model(h5, tmp_path / "int8.tflite", samples=4)
    with pytest.raises(InputError, match="already quantized"):
        quantize_model(int8.path, tmp_path / "again.tflite", samples=4)
    qdq = quantize_model(h5, tmp_path / "qdq.onnx", samples=4)
    with pytest.raises(InputError, match="already quantized"):
        quantize_model(qdq.path, tmp_path / "again.onnx", samples=4)
    with pytest.raises(InputError, match="ONNX conversions must be of the float32 type"):
        quantize_model(h5, tmp_path / "io.onnx", input_type="int8", samples=4)
    with pytest.raises(InputError, match=r"\.tflite \(TFLite\) or \.onnx"):
        quantize_model(h5, tmp_path / "out.h5", samples=4)
    with pytest.raises(InputError, match="TOCO converter is gone"):
        quantize_model(h5, tmp_path / "toco.tflite", samples=4, converter="toco")
    with pytest.raises(InputError, match="needs calibration samples"):
        quantize_model(h5, tmp_path / "none.tflite")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=f"samples folder {empty} holds no image"):
        quantize_model(h5, tmp_path / "e.tflite", samples=empty)
    for name in ("io.onnx", "out.h5", "toco.tflite", "none.tflite", "e.tflite"):
        assert not (tmp_path / name).exists()  # nothing half-written


def test_eiq_quantize_writes_per_tensor_int8_and_reports_errors_in_one_line(trained, tmp_path, capsys):
    project, h5, _, _, _ = trained
    out = tmp_path / "cli" / "m_int8.tflite"
    argv = ["quantize", str(h5), str(out), "--per-tensor", "--input", "int8", "--output", "int8"]
    assert main([*argv, "--samples", str(project), "--num_samples", "20", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)["quantized"]
    assert printed["granularity"] == "per-tensor" and printed["input_type"] == "int8"
    assert set(kernel_scales(out).values()) == {1}
    argv = ["quantize", str(h5), str(tmp_path / "m.tflite"), "--samples", str(project), "--num-samples", "8"]
    assert main([*argv, "--equalize", "--bias-correction"]) == 0
    text = capsys.readouterr().out
    assert "int8 per-channel" in text and "calibrated on 8 train images" in text
    assert "equalized 3 layer pair(s)" in text and "bias corrected in 4 layer(s)" in text
    assert main(["quantize", str(h5), str(tmp_path / "m.onnx"), "--input-type", "int8", "--samples", "4"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("eiq: error:") and "float32" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "m.onnx").exists()
