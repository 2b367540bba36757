"""`eiq-converter` and `eiq convert`: the guide's flags in every spelling reach the plugins, conversions
write what they say, plugins are listed, and errors are one line with the documented exit codes."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from convert.plugin_fixtures import PLUGIN, eiq_home, plugin_target, plugin_wheel  # noqa: F401
from eiq_lab.cli import main as eiq
from eiq_lab.cli.converter import build_parser, main, params_of


def params(*argv):
    return params_of(build_parser().parse_args([*argv, "in.h5", "out.tflite"]))


@pytest.mark.parametrize(
    ("spellings", "key", "value"),
    [
        (["--quant_tensor"], "quant_channel", False),
        (["--quant-tensor"], "quant_channel", False),
        (["-quant-tensor"], "quant_channel", False),
        (["-quant_tensor"], "quant_channel", False),
        (["--default_shape", "1,8,8,3"], "input_shape", "1,8,8,3"),
        (["-default-shape", "1,8,8,3"], "input_shape", "1,8,8,3"),
        (["--input-shape", "1,8,8,3"], "input_shape", "1,8,8,3"),
        (["--model_name", "m"], "name", "m"),
        (["-name", "m"], "name", "m"),
        (["--normalization", "unsigned"], "quant_normalization", "unsigned"),
        (["-quant-normalization", "unsigned"], "quant_normalization", "unsigned"),
        (["--num-samples", "3"], "num_samples", 3),
        (["-num_samples", "3"], "num_samples", 3),
        (["-input_names", "a,b"], "input_names", "a,b"),
        (["--output-names", "c"], "output_names", "c"),
        (["-onnx-opset", "11"], "onnx_opset", 11),
        (["--tflite_converter", "toco"], "tflite_converter", "toco"),
        (["-quantize_format", "uint8"], "quantize_format", "uint8"),
        (["--metadata", "a=1", "-metadata", "b=2"], "metadata", ["a=1", "b=2"]),
    ],
)
def test_every_spelling_of_a_flag_sets_the_same_parameter(spellings, key, value):
    assert params(*spellings)[key] == value


def test_defaults_are_the_guides():
    p = params()
    assert (p["num_samples"], p["quant_channel"], p["quantize"], p["crop"]) == (10, True, False, False)
    assert "input_type" not in p and "labels" not in p  # left to the plugin's defaults


@pytest.fixture(scope="module")
def keras_h5(tmp_path_factory):
    """A tiny tf_keras CNN saved as .h5 (non-zero biases), and a labels file."""
    from eiq_lab import framework

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3), batch_size=1, name="pixels")
    x = keras.layers.Conv2D(4, 3, activation="relu")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax", name="scores")(x))
    folder = tmp_path_factory.mktemp("cli")
    model.save(folder / "m.h5")
    (folder / "labels.txt").write_text("cat\ndog\nbird\n")
    return folder / "m.h5"


def test_keras_to_tflite_with_labels_metadata_and_name(keras_h5, tmp_path, capsys):
    from eiq_lab.convert.tflite import read_metadata

    out = tmp_path / "m.tflite"
    argv = ["-labels", str(keras_h5.with_name("labels.txt")), "--metadata", "author=me", "-metadata", "v=2",
            str(keras_h5), str(out)]  # fmt: skip
    assert main(argv) == 0
    assert f"wrote {out} (tflite" in capsys.readouterr().out
    entries = read_metadata(out.read_bytes())
    assert entries["labels"] == b"cat\ndog\nbird\n"
    assert (entries["author"], entries["v"]) == (b"me", b"2")


def test_quantization_flags_reach_the_plugin(keras_h5, tmp_path, capsys):
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab.convert.tflite import weight_scales

    out = tmp_path / "q.tflite"
    argv = ["--quantize", "-samples", "4", "-quant-tensor", "--input_type", "int8", "--output-type", "int8",
            "--json", str(keras_h5), str(out)]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["plugin"], report["input_type"], report["output_type"]) == ("tensorflow", "h5", "tflite")
    assert report["bytes"] == out.stat().st_size
    assert set(weight_scales(out.read_bytes()).values()) == {1}  # per-tensor
    interpreter = Interpreter(str(out))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_list_shows_plugins_with_readiness(eiq_home, plugin_target, monkeypatch, capsys):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    assert main(["-l"]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines() if not line.startswith(" ")}
    assert "ready" in lines["tensorflow"] and "h5" in lines["tensorflow"]
    assert "needs setup" in lines["onnx2tf"]
    assert "ready" in lines[PLUGIN] and "txt -> txt" in lines[PLUGIN]
    assert main(["--list", "--json"]) == 0
    listed = {p["name"]: p for p in json.loads(capsys.readouterr().out)}
    assert listed[PLUGIN]["icon"].endswith("image.svg") and listed["rtm"]["status"] == "needs setup"


def test_errors_are_one_line_with_exit_1_and_usage_exit_2(eiq_home, plugin_target, monkeypatch, tmp_path, capsys):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    capsys.readouterr()
    assert main([str(tmp_path / "missing.h5"), str(tmp_path / "o.tflite")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("eiq-converter: error:") and "missing.h5" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "m.txt").write_text("fail")
    assert main([str(tmp_path / "m.txt"), str(tmp_path / "o.tflite")]) == 1
    assert "cannot convert txt to tflite" in capsys.readouterr().err
    assert main([str(tmp_path / "m.txt"), str(tmp_path / "o.txt")]) == 1
    assert "asks to fail" in capsys.readouterr().err and not (tmp_path / "o.txt").exists()
    assert main(["--setup", "tensorflow"]) == 1
    assert "no managed environment" in capsys.readouterr().err
    assert main(["-u", "tensorflow"]) == 1
    assert main([]) == 2
    assert main(["--no-such-flag", "a", "b"]) == 2
    assert main(["--input_type", "int16", "a.h5", "b.tflite"]) == 2


def test_eiq_convert_is_the_same_command(plugin_target, monkeypatch, tmp_path, capsys):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    (tmp_path / "m.txt").write_text("tiny")
    assert eiq.main(["convert", "-model-name", "n", str(tmp_path / "m.txt"), str(tmp_path / "o.txt")]) == 0
    assert "with plugin converter-plugin" in capsys.readouterr().out
    assert (tmp_path / "o.txt").read_text().startswith("TINY")
    assert eiq.main(["convert"]) == 2


def test_console_script(tmp_path):
    script = shutil.which("eiq-converter")
    assert script, "eiq-converter is not installed (pip install -e .)"
    done = subprocess.run(
        [script, str(tmp_path / "none.h5"), str(tmp_path / "o.tflite")], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"eiq-converter: error: model {tmp_path / 'none.h5'} does not exist"]
    assert done.stdout == ""
