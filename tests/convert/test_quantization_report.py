"""The quantization report: float vs int8 accuracy per class on the test group, per-layer SQNR/RMSE from the
quantization debugger, and a selective model whose worst layers really are float."""

from __future__ import annotations

import json

import numpy as np
from train.conftest import digits_template  # noqa: F401

from convert.test_quantize import litert, project_arrays, trained  # noqa: F401  (fixtures are found by name)
from eiq_lab.cli.main import main
from eiq_lab.convert.quantization_report import format_report, quantization_report


def test_report_compares_float_and_int8_and_keeps_the_worst_layers_float(trained, tmp_path):  # noqa: F811
    project, _, model, x, y = trained
    report = quantization_report(model, project, num_samples=30, keep_float=2, per_channel=False)
    _, _, names = project_arrays(project, "test")
    expected = model.predict(x, verbose=0).argmax(1)
    assert report.classes == names and report.images == len(y)
    assert report.float_accuracy == np.mean(expected == y)
    for k, name in enumerate(names):
        row = report.per_class[name]
        assert row["support"] == np.sum(y == k) and row["float"] == np.mean(expected[y == k] == k)
        assert row["drop"] == 100 * (row["float"] - row["int8"])
    assert report.drop == 100 * (report.float_accuracy - report.int8_accuracy)
    ops = {layer.op for layer in report.layers}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= ops
    assert all(np.isfinite(layer.sqnr_db) and layer.rmse >= 0 and layer.scale > 0 for layer in report.layers)
    # the two lowest-SQNR layers are the ones kept float
    assert report.kept_float == [layer.tensor for layer in report.worst(2)]
    int8 = {t["name"]: t["dtype"] for t in _details(report.int8_model, tmp_path / "int8.tflite")}
    selective = {t["name"]: t["dtype"] for t in _details(report.selective_model, tmp_path / "sel.tflite")}
    for tensor in report.kept_float:
        assert int8[tensor] == np.int8 and selective[tensor] == np.float32, tensor
    assert sum(d == np.int8 for d in selective.values()) > 0  # the rest stays int8
    weights_kept = any(layer.op in ("CONV_2D", "FULLY_CONNECTED") for layer in report.worst(2))
    assert report.selective_size > report.int8_size or not weights_kept  # float weights cost bytes
    encoded = json.loads(json.dumps(report.to_json()))
    assert encoded["selective"]["kept_float"] == report.kept_float and len(encoded["layers"]) == len(report.layers)
    text = format_report(report)
    assert "worst layers" in text and "keeping 2 worst layer(s) float" in text


def _details(data, path):
    path.write_bytes(data)
    return litert(path, allocate=False).get_tensor_details()


def test_eiq_quantize_report_prints_the_report(trained, tmp_path, capsys):  # noqa: F811
    project, h5, _, _, _ = trained
    argv = ["quantize", str(h5), str(tmp_path / "m.tflite"), "--report", str(project), "--num-samples", "20"]
    assert main([*argv, "--keep-float", "1", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["quantized"]["samples"].startswith("20 train images")  # the report's project calibrates
    assert len(printed["report"]["selective"]["kept_float"]) == 1 and printed["report"]["images"] == 30
    assert main(argv) == 0
    assert "accuracy float" in capsys.readouterr().out
    # the report judges the model the file was made from: equalized (the same function in float) when asked
    assert main([*argv, "--per-tensor", "--equalize", "--json"]) == 0
    equalized = json.loads(capsys.readouterr().out)
    assert equalized["quantized"]["equalized"] and equalized["report"]["per_channel"] is False
    assert abs(equalized["report"]["float_accuracy"] - printed["report"]["float_accuracy"]) <= 1 / 30
