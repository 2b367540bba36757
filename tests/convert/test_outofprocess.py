"""Out-of-process plugins: managed environments, the JSON call protocol (values, failures, crashes,
timeouts), a third-party plugin installed isolated in a real venv, the real onnx2tf cell (ONNX -> TFLite,
float and int8, compared with ONNX Runtime) and the RTM licence gate."""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import pytest

from convert.plugin_fixtures import PLUGIN, eiq_home, plugin_wheel  # noqa: F401  (pytest finds fixtures by name)
from eiq_lab.cli.converter import main
from eiq_lab.convert import environments, registry
from eiq_lab.convert.outofprocess import call
from eiq_lab.errors import EiqError


def test_call_returns_values_and_reports_failures_crashes_and_timeouts(tmp_path):
    assert call(sys.executable, "json", "dumps", [[1, 2]]).value == "[1, 2]"
    assert call(sys.executable, "os.path", "join", ["a", "b"]).value == "a/b"
    with pytest.raises(EiqError, match=r"json.loads failed: JSONDecodeError"):
        call(sys.executable, "json", "loads", ["{not json"])
    with pytest.raises(EiqError, match=r"crashed \(exit code 7\).*last output: bye"):
        call(sys.executable, "builtins", "exec", ["import os, sys; print('bye'); sys.stdout.flush(); os._exit(7)"])
    started = time.monotonic()
    with pytest.raises(EiqError, match="did not finish within 1 s and was stopped"):
        call(sys.executable, "time", "sleep", [30], timeout=1)
    assert time.monotonic() - started < 20


def test_a_failed_setup_leaves_no_environment(eiq_home, tmp_path):  # noqa: F811
    with pytest.raises(EiqError, match=r"installing .*missing.whl"):
        environments.create("half", [str(tmp_path / "missing.whl")], pip_args=["--no-index"])
    assert not environments.environment("half").path.exists()
    assert environments.environments() == []


@pytest.fixture
def isolated_plugin(plugin_wheel, eiq_home):  # noqa: F811
    """The fixture plugin installed into a managed environment of its own (offline)."""
    registry.install(plugin_wheel, isolated=True, pip_args=["--no-index", "--no-deps"])
    return environments.environment(PLUGIN)


def test_an_isolated_plugin_converts_in_its_own_environment(isolated_plugin, tmp_path):
    env = isolated_plugin
    assert env.ready and env.path.parent == environments.root()
    info = registry.get(PLUGIN)
    assert info.origin == f"environment {env.path}" and info.status == "ready" and info.version == "1.2.0"
    assert info.icon.name == "image.svg" and info.icon.is_file() and info.info_page.is_file()
    assert [i["ext"] for i in info.inputs] == ["txt"]

    src = tmp_path / "m.txt"
    src.write_text("tiny")
    result = registry.convert(src, tmp_path / "o.txt", {"name": "n"})
    text, extra = (tmp_path / "o.txt").read_text().split("\n")
    assert text == "TINY" and result.plugin == PLUGIN
    report = json.loads(extra)
    assert report["python"] == str(env.python)  # it ran in the plugin's environment, not here
    assert report["params"] == {"name": "n", "input-model-type": "txt", "output_model_type": "txt"}

    for content, expected in (
        ("fail", "asks to fail"),
        ("raise", f"plugin {PLUGIN} failed: ValueError"),
        ("crash", rf"plugin {PLUGIN} crashed \(exit code 3\)"),
    ):
        src.write_text(content)
        with pytest.raises(EiqError, match=expected):
            registry.convert(src, tmp_path / f"{content}.txt")
        assert not (tmp_path / f"{content}.txt").exists()

    assert registry.uninstall(PLUGIN).name == PLUGIN
    assert not env.path.exists()
    assert PLUGIN not in {i.name for i in registry.plugins()}


def test_rtm_setup_shows_the_licence_and_installs_nothing_without_acceptance(eiq_home, capsys):  # noqa: F811
    code = main(["--setup", "rtm"])  # no terminal to answer on, no --accept-license
    out, err = capsys.readouterr()
    assert code == 1
    assert "End-User License Agreement" in out  # the vendor's text, from its wheel
    assert "not accepted, so nothing was installed" in err and "--accept-license" in err
    assert len(err.strip().splitlines()) == 1
    assert not environments.environment("rtm").path.exists()
    assert registry.get("rtm").status == "needs setup"


def _tiny_cnn():
    """A small tf_keras CNN (NHWC input "image") with non-zero biases: TFLite drops all-zero biases, which
    the vendor's RTM reader cannot follow."""
    from eiq_lab import framework

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((32, 32, 3), batch_size=1, name="image")
    x = keras.layers.Conv2D(8, 3, activation="relu")(inputs)
    x = keras.layers.DepthwiseConv2D(3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(4, activation="softmax")(x))
    for layer in model.layers:
        weights = layer.get_weights()
        if len(weights) == 2:
            layer.set_weights([weights[0], np.linspace(-0.1, 0.1, weights[1].size, dtype=np.float32)])
    return model


def _tiny_onnx(path):
    """The small CNN converted by tf2onnx."""
    import tf2onnx

    from eiq_lab import framework

    tf = framework.tf()
    spec = (tf.TensorSpec([1, 32, 32, 3], tf.float32, name="image"),)
    proto, _ = tf2onnx.convert.from_keras(_tiny_cnn(), input_signature=spec, opset=13)
    path.write_bytes(proto.SerializeToString())
    return path


def test_onnx_to_tflite_through_a_real_onnx2tf_environment(eiq_home, tmp_path, capsys):  # noqa: F811
    import onnxruntime
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab.convert.tflite import read_metadata, weight_scales

    assert main(["--setup", "onnx2tf"]) == 0  # pip installs onnx2tf (--no-deps) from the package index
    assert "onnx2tf is set up in" in capsys.readouterr().out
    assert registry.get("onnx2tf").status == "ready"
    model = _tiny_onnx(tmp_path / "cnn.onnx")
    labels = tmp_path / "labels.txt"
    labels.write_text("a\nb\nc\nd\n")
    out = tmp_path / "cnn.tflite"
    assert main(["--labels", str(labels), "-model-name", "tiny", str(model), str(out)]) == 0

    x = np.random.default_rng(1).uniform(-1, 1, (3, 1, 32, 32, 3)).astype(np.float32)
    session = onnxruntime.InferenceSession(str(model))
    expected = np.concatenate([session.run(None, {"image": xi})[0] for xi in x])
    interpreter = Interpreter(str(out))
    interpreter.allocate_tensors()
    given, wanted = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert given["name"] == "image" and list(given["shape"]) == [1, 32, 32, 3]  # NHWC kept, ONNX names
    got = []
    for xi in x:
        interpreter.set_tensor(given["index"], xi)
        interpreter.invoke()
        got.append(interpreter.get_tensor(wanted["index"]))
    np.testing.assert_allclose(np.concatenate(got), expected, atol=1e-5)
    assert read_metadata(out.read_bytes())["labels"] == b"a\nb\nc\nd\n"

    quantized = tmp_path / "cnn_int8.tflite"
    args = ["--quantize", "--samples", "8", "-quant-tensor", "--input-type", "int8", str(model), str(quantized)]
    assert main(args) == 0
    scales = weight_scales(quantized.read_bytes())
    assert scales and set(scales.values()) == {1}  # per-tensor: one scale per weight tensor
    assert Interpreter(str(quantized)).get_input_details()[0]["dtype"] == np.int8

    assert main(["--setup", "onnx2tf", "--remove"]) == 0
    assert registry.get("onnx2tf").status == "needs setup"


def _tiny_int8_tflite(path):
    """The small CNN as int8 TFLite with int8 I/O."""
    from eiq_lab.convert.tflite import to_tflite

    rng = np.random.default_rng(0)
    samples = [rng.uniform(-1, 1, (32, 32, 3)).astype(np.float32) for _ in range(8)]
    path.write_bytes(
        to_tflite(_tiny_cnn(), quantize=True, samples=lambda: samples, input_type="int8", output_type="int8")
    )
    return path


def test_int8_tflite_to_rtm_with_the_vendors_converter(eiq_home, tmp_path, capsys):  # noqa: F811
    """The RTM cell. Installing the vendor's converter accepts its trial EULA, which only a person may do: CI
    does it deliberately (.ci/run sets EIQ_ACCEPT_RTM_LICENSE=1, for evaluation on a machine the project
    controls). Without that, the cell must refuse and name the setup step."""
    import os

    model = _tiny_int8_tflite(tmp_path / "m_int8.tflite")
    out = tmp_path / "m.rtm"
    if os.environ.get("EIQ_ACCEPT_RTM_LICENSE") != "1":
        assert main([str(model), str(out)]) == 1
        assert "--setup rtm" in capsys.readouterr().err and not out.exists()
        return
    assert main(["--setup", "rtm", "--accept-license"]) == 0
    assert registry.get("rtm").status == "ready"
    labels = tmp_path / "labels.txt"
    labels.write_text("alpha\nbravo\ncharlie\ndelta\n")
    anchors = tmp_path / "anchor_boxes.npy"
    np.save(anchors, np.full((3, 4), 0.25, np.float32))
    capsys.readouterr()
    assert main(["--labels", str(labels), "--anchors", str(anchors), "--name", "tiny", str(model), str(out)]) == 0
    data = out.read_bytes()
    assert len(data) > 1000 and b"bravo" in data and b"delta" in data and b"ssd_anchor_boxes" in data
    # RTM conversion never quantizes: asking for it on an int8 model is refused with the reason
    assert main(["--quantize", "--samples", "4", str(model), str(tmp_path / "q.rtm")]) == 1
    assert "already int8" in capsys.readouterr().err
    assert main(["--setup", "rtm", "--remove"]) == 0
