"""Compiling int8 TFLite models for Ethos-U with Vela (`compile_for_ethos_u`, `eiq vela`): the compiled
model holds the ethos-u operator, the i.MX 93 preset compiles for an Ethos-U65-256, the report carries
Vela's totals and per-layer rows (CPU fallbacks marked), and bad inputs are refused with nothing written."""

from __future__ import annotations

import configparser
import csv
import json

import numpy as np
import pytest

from eiq_lab.cli.main import main
from eiq_lab.convert.vela import CONFIG_DIR, PRESETS, compile_for_ethos_u
from eiq_lab.errors import InputError

# the model's operators as Vela names them in its per-layer table
CNN_OPERATORS = {"Conv2D", "DepthwiseConv2D", "MaxPool", "Mean", "FullyConnected", "Softmax"}


def _cnn(keras, head=None):
    layers = keras.layers
    inputs = keras.Input((32, 32, 3), batch_size=1)
    x = layers.Conv2D(8, 3, padding="same", activation="relu")(inputs)
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(16, 3, strides=2, padding="same", activation="relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dense(4)(x)
    x = head(x) if head else layers.Softmax()(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """An int8 CNN, the same CNN in float32, and an int8 CNN ending in log-softmax (Vela 5.2 leaves
    LOG_SOFTMAX to the CPU)."""
    from eiq_lab import framework
    from eiq_lab.convert.tflite import to_tflite

    tf, keras = framework.tf(), framework.keras()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    calibration = rng.uniform(-1, 1, (8, 32, 32, 3)).astype(np.float32)

    def samples():
        return iter(calibration)

    folder = tmp_path_factory.mktemp("vela_models")
    int8 = dict(quantize=True, samples=samples, input_type="int8", output_type="int8")
    cnn = _cnn(keras)
    paths = {"int8": folder / "cnn.tflite", "float": folder / "cnn_float.tflite", "cpu": folder / "logsoftmax.tflite"}
    paths["int8"].write_bytes(to_tflite(cnn, **int8))
    paths["float"].write_bytes(to_tflite(cnn))
    log_softmax = _cnn(keras, head=keras.layers.Lambda(lambda t: tf.nn.log_softmax(t)))
    paths["cpu"].write_bytes(to_tflite(log_softmax, **int8))
    return paths


def _operator_codes(path):
    """The model's operator codes read with TensorFlow's own flatbuffer schema: builtin names and custom codes."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(path.read_bytes()))
    codes = []
    for code in model.operatorCodes:
        if code.customCode:
            codes.append(code.customCode.decode() if isinstance(code.customCode, bytes) else code.customCode)
        else:
            codes.append(names[max(code.builtinCode, code.deprecatedBuiltinCode)])
    used = [codes[op.opcodeIndex] for subgraph in model.subgraphs for op in subgraph.operators]
    return used


def _ini_value(path, section, key):
    parser = configparser.ConfigParser()
    parser.read(path)
    return parser.get(section, key)


def test_imx93_preset_compiles_for_an_ethos_u65_256_and_reports_totals_and_layers(models, tmp_path, capfd):
    out = tmp_path / "npu"
    report = compile_for_ethos_u(models["int8"], out)
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""  # Vela's output is captured, not printed (even by its C++ core)
    assert "Network summary" in report.log

    assert report.model == out / "cnn_vela.tflite" and report.model.is_file()
    assert _operator_codes(report.model) == ["ethos-u"]  # the whole network runs as one NPU operator
    # Vela itself says which accelerator and system it compiled for
    with open(report.summary_csv, newline="") as f:
        summary = next(csv.DictReader(f))
    assert summary["accelerator_configuration"] == "Ethos_U65_256"
    assert report.accelerator == "ethos-u65-256"
    ini = CONFIG_DIR / "imx93.ini"
    assert report.system_config == "IMX93" and report.memory_mode == "IMX93_Dedicated_Sram"
    assert report.clock_hz == float(_ini_value(ini, "System_Config.IMX93", "core_clock")) == 1e9

    assert report.cycles > 0 and report.macs > 0 and report.sram_bytes > 0
    assert report.inference_time_s == pytest.approx(report.cycles / report.clock_hz, rel=1e-3)
    assert report.inferences_per_second == pytest.approx(1 / report.inference_time_s, rel=1e-3)
    assert report.cpu_operators == 0 and report.npu_operators > 0
    assert {layer.operator for layer in report.layers} >= CNN_OPERATORS
    assert all(layer.target == "NPU" for layer in report.layers)
    conv = max((layer for layer in report.layers if layer.operator == "Conv2D"), key=lambda layer: layer.macs)
    # the first convolution: 32x32 outputs x 8 filters x 3x3x3 weights
    assert conv.macs == 32 * 32 * 8 * 3 * 3 * 3 and conv.cycles > 0 and 0 < conv.cycles_share <= 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["npu"]  # no temporary folder left behind

    text = report.to_text()
    assert str(report.model) in text and "ethos-u65-256" in text and "CPU *" not in text
    payload = json.loads(json.dumps(report.to_json()))
    assert payload["accelerator"] == "ethos-u65-256" and payload["cycles"] == report.cycles
    assert {row["operator"] for row in payload["layers"]} >= CNN_OPERATORS


def test_every_accelerator_vela_accepts_is_a_preset():
    from ethosu.vela.architecture_features import Accelerator

    assert set(PRESETS) == {"imx93", *Accelerator.member_list()}


def test_ethos_u55_256_preset_and_model_bytes(models, tmp_path):
    report = compile_for_ethos_u(models["int8"].read_bytes(), tmp_path / "u55", "ethos-u55-256")
    assert report.model == tmp_path / "u55" / "model_vela.tflite"
    assert "ethos-u" in _operator_codes(report.model)
    with open(report.summary_csv, newline="") as f:
        assert next(csv.DictReader(f))["accelerator_configuration"] == "Ethos_U55_256"
    assert report.accelerator == "ethos-u55-256"
    arm_ini = report.config_file  # Vela's bundled configuration for Arm's reference systems
    section = f"System_Config.{report.system_config}"
    assert report.clock_hz == float(_ini_value(arm_ini, section, "core_clock"))
    assert report.cycles > 0 and {layer.operator for layer in report.layers} >= CNN_OPERATORS


def test_an_operator_vela_cannot_place_is_reported_on_the_cpu(models, tmp_path):
    report = compile_for_ethos_u(models["cpu"], tmp_path / "out")
    codes = _operator_codes(report.model)
    assert "ethos-u" in codes and "LOG_SOFTMAX" in codes  # the CPU runs what the NPU cannot
    cpu = report.cpu_layers
    assert [layer.operator for layer in cpu] == ["LogSoftmax"]
    assert "unsupported" in cpu[0].reason.lower()
    assert report.cpu_operators == 1 and report.npu_operators > 0
    line = next(line for line in report.to_text().splitlines() if "LogSoftmax" in line)
    assert line.startswith("CPU *")
    assert any(layer.target == "NPU" and layer.operator == "Conv2D" for layer in report.layers)


def test_a_user_ini_supplies_the_system_config_and_memory_mode(models, tmp_path):
    text = (CONFIG_DIR / "imx93.ini").read_text()
    text = text.replace("System_Config.IMX93", "System_Config.MyBoard").replace("core_clock=1e9", "core_clock=4e8")
    ini = tmp_path / "board.ini"
    ini.write_text(text)
    report = compile_for_ethos_u(models["int8"], tmp_path / "out", ini)
    assert (report.system_config, report.memory_mode) == ("MyBoard", "IMX93_Dedicated_Sram")
    assert report.clock_hz == 4e8 and report.accelerator == "ethos-u65-256"

    # two system configs: the user must name one; a wrong name lists those the file defines
    two = tmp_path / "two.ini"
    system = text[text.index("[System_Config.MyBoard]") : text.index("; ---", text.index("[System_Config.MyBoard]"))]
    two.write_text(text + system.replace("MyBoard", "Other").replace("core_clock=4e8", "core_clock=2e8"))
    with pytest.raises(InputError, match="MyBoard, Other") as error:
        compile_for_ethos_u(models["int8"], tmp_path / "two", two)
    assert "--system-config" in str(error.value)
    with pytest.raises(InputError, match=r"'Nope' is not in .*two\.ini; it defines: MyBoard, Other"):
        compile_for_ethos_u(models["int8"], tmp_path / "two", two, system_config="Nope")
    report = compile_for_ethos_u(
        models["int8"], tmp_path / "two", two, system_config="Other", accelerator="ethos-u55-64"
    )
    assert report.clock_hz == 2e8 and report.accelerator == "ethos-u55-64"


def test_refusals_name_the_problem_and_write_nothing(models, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(InputError, match="float model") as error:
        compile_for_ethos_u(models["float"], out)
    message = str(error.value)
    assert "int8" in message and "eiq quantize" in message and "eiq export" in message

    text_file = tmp_path / "notes.tflite"
    text_file.write_text("not a model at all")
    with pytest.raises(InputError, match=r"notes\.tflite is not a TFLite model"):
        compile_for_ethos_u(text_file, out)

    data = models["int8"].read_bytes()
    truncated = tmp_path / "cut.tflite"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.tflite is a truncated or damaged TFLite file"):
        compile_for_ethos_u(truncated, out)

    with pytest.raises(InputError, match="unknown Vela config 'ethos-u99'") as error:
        compile_for_ethos_u(models["int8"], out, "ethos-u99")
    assert "imx93" in str(error.value) and "ethos-u55-256" in str(error.value)

    bare = tmp_path / "bare.ini"  # a system config without its memories: Vela itself refuses it
    bare.write_text("[System_Config.Bare]\ncore_clock=2e8\n[Memory_Mode.Bare]\ncache_mem_area=Axi0\n")
    with pytest.raises(InputError, match=r"Vela could not compile .*cnn\.tflite for .*bare\.ini") as error:
        compile_for_ethos_u(models["int8"], out, bare)
    last = error.value.log.strip().splitlines()[-1].strip()  # Vela's output is kept on the error
    assert "\n" not in str(error.value) and str(error.value).endswith(last)  # one line: Vela's last word
    with pytest.raises(InputError, match="already compiled for Ethos-U"):
        compiled = compile_for_ethos_u(models["int8"], tmp_path / "first").model
        compile_for_ethos_u(compiled, out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare.ini", "cut.tflite", "first", "notes.tflite"]


def test_compiling_again_into_the_same_folder_replaces_the_outputs(models, tmp_path):
    out = tmp_path / "out"
    first = compile_for_ethos_u(models["int8"], out, optimise="Size")
    second = compile_for_ethos_u(models["int8"], out, optimise="performance")
    assert first.model == second.model and second.model.is_file() and second.optimise == "Performance"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_cli_prints_the_table_or_json_and_fails_with_one_line(models, tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["vela", str(models["cpu"]), "--output-dir", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"compiled model   {out / 'logsoftmax_vela.tflite'}" in text
    assert "ethos-u65-256" in text and "IMX93" in text
    assert any(line.startswith("CPU *") and "LogSoftmax" in line for line in text.splitlines())
    assert any(line.startswith("NPU") and "Conv2D" in line for line in text.splitlines())

    assert main(["vela", str(models["int8"]), "--config", "ethos-u55-128", "-o", str(out), "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["accelerator"] == "ethos-u55-128" and payload["model"] == str(out / "cnn_vela.tflite")
    assert payload["cpu_operators"] == 0 and payload["cycles"] > 0 and "log" not in payload

    assert main(["vela", str(models["float"]), "-o", str(tmp_path / "float")]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("eiq: error: ") and "float model" in captured.err
    assert len(captured.err.strip().splitlines()) == 1
    assert main(["vela", str(models["int8"]), "--config", "imx95"]) == 1
    assert "unknown Vela config 'imx95'" in capsys.readouterr().err
    assert not (tmp_path / "float").exists()


def test_the_converter_writes_the_guides_tflite_vela_output(models, tmp_path, capsys):
    from eiq_lab import framework
    from eiq_lab.cli.converter import main as converter

    # an int8 TFLite model compiled as it is (the Model Tool's "TF Lite Vela" output)
    out = tmp_path / "cnn_vela.tflite"
    assert converter(["--vela_config", "imx93", str(models["int8"]), str(out)]) == 0
    assert _operator_codes(out) == ["ethos-u"]
    # a Keras source quantized and compiled in one conversion
    keras = framework.keras()
    keras.utils.set_random_seed(0)
    h5 = tmp_path / "cnn.h5"
    _cnn(keras).save(h5)
    both = tmp_path / "cnn_u55_vela.tflite"
    args = ["--quantize", "--samples", "8", "--normalization", "signed", "-vela-config", "ethos-u55-256"]
    assert converter([*args, str(h5), str(both)]) == 0
    assert "ethos-u" in _operator_codes(both)
    capsys.readouterr()
    # a float model cannot run on the NPU, and an ONNX output cannot be compiled: refused, nothing written
    assert converter(["--vela_config", "imx93", str(models["float"]), str(tmp_path / "f.tflite")]) == 1
    assert "quantize" in capsys.readouterr().err and not (tmp_path / "f.tflite").exists()
    assert converter(["--vela_config", "imx93", str(h5), str(tmp_path / "m.onnx")]) == 1
    assert "compiles a TFLite output" in capsys.readouterr().err
