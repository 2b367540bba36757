"""Exporting a trained classifier to every format: each file gives the run's outputs (checked by the
export itself and here by another route), carries its labels, and is recorded in the project; bad
options and failed exports leave nothing behind."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from train.conftest import digits_path, digits_template, tiny_plugin, tiny_settings  # noqa: F401

from eiq_lab.cli.main import main
from eiq_lab.convert import export_run
from eiq_lab.errors import InputError
from eiq_lab.project import open_project
from eiq_lab.train import Trainer


@pytest.fixture
def trained(digits_path, tiny_plugin):  # noqa: F811
    with open_project(digits_path) as project:
        Trainer(project, tiny_settings(epochs=3)).fit()
    return digits_path


def _sha(path):
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.read_bytes())
    return digest.hexdigest()


def test_every_format_is_checked_against_keras_and_recorded(trained, tmp_path):
    import onnx

    from eiq_lab import framework

    exports = {
        "tflite": {"fmt": "tflite"},
        "onnx": {"fmt": "onnx"},
        "keras": {"fmt": "keras"},
        "h5": {"fmt": "h5"},
        "sm": {"fmt": "savedmodel"},
        "int8": {"fmt": "tflite", "quantize": True, "num_samples": 30},
        "qdq": {"fmt": "onnx", "quantize": True, "per_channel": False, "num_samples": 30},
    }
    results = {}
    with open_project(trained) as project:
        for name, options in exports.items():
            suffix = {"sm": "", "int8": ".tflite", "qdq": ".onnx"}.get(name, f".{options['fmt']}")
            results[name] = export_run(project, output=tmp_path / f"{name}{suffix}", **options)
        records = project.exports()
        labels = project.run("last").labels
    for name in ("tflite", "onnx", "keras", "h5", "sm"):
        parity = results[name].parity
        assert parity["images"] == 30 and parity["max_abs_diff"] < 1e-4 and parity["top1_agreement"] == 1.0, name
    for name in ("int8", "qdq"):
        assert results[name].parity["top1_agreement"] >= 0.9, (name, results[name].parity)
        assert 0 < results[name].parity["max_abs_diff"] < 0.5
    assert [r.format for r in records] == ["tflite", "onnx", "keras", "h5", "savedmodel", "tflite", "onnx"]
    for record, result in zip(records, results.values()):
        assert record.path == str(result.path.resolve()) and record.sha256 == _sha(result.path)
        assert record.parity == result.parity and record.run == 1
    assert records[5].settings["type"] == "int8" and records[6].settings["per_channel"] is False
    # the SavedModel serves the same outputs through TensorFlow's own loader, and carries labels and metadata
    tf = framework.tf()
    served = tf.saved_model.load(str(results["sm"].path)).signatures["serving_default"]
    x = np.random.default_rng(0).uniform(-1, 1, (2, 32, 32, 3)).astype(np.float32)
    out = next(iter(served(tf.constant(x)).values())).numpy()
    keras_out = framework.keras().models.load_model(results["h5"].path, compile=False).predict(x, verbose=0)
    np.testing.assert_allclose(out, keras_out, atol=1e-5)
    assert (results["sm"].path / "assets" / "labels.txt").read_text().split() == labels
    assert json.loads((results["sm"].path / "assets" / "eiq_metadata.json").read_text())["labels"] == labels
    # the QDQ model is int8 inside with float I/O, one scale per weight tensor, and keeps its labels
    proto = onnx.load(str(results["qdq"].path))
    assert {n.op_type for n in proto.graph.node} >= {"QuantizeLinear", "DequantizeLinear"}
    weights = {i.name: i for i in proto.graph.initializer}
    int8 = {name for name, w in weights.items() if w.data_type == onnx.TensorProto.INT8}
    scales = [weights[n.input[1]] for n in proto.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in int8]
    assert scales and all(np.prod(s.dims) == 1 for s in scales)
    assert {p.key: p.value for p in proto.metadata_props}["labels"].split() == labels


def test_bad_options_and_failed_exports_leave_nothing(trained, tmp_path, capsys):
    tmp_path = tmp_path / "out"
    with open_project(trained) as project:
        with pytest.raises(InputError, match="float32 weights"):
            export_run(project, fmt="keras", output=tmp_path / "q.keras", quantize=True)
        with pytest.raises(InputError, match="ONNX model keeps float32 inputs"):
            export_run(project, fmt="onnx", output=tmp_path / "q.onnx", quantize=True, input_type="int8")
        with pytest.raises(InputError, match="input type must be one of"):  # fails while building the file
            export_run(project, fmt="tflite", output=tmp_path / "q.tflite", quantize=True, input_type="int16")
        assert project.exports() == []
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    assert main(["export", str(trained), "--format", "h5", "--quantize", "-o", str(tmp_path / "m.h5")]) == 1
    assert "float32 weights" in capsys.readouterr().err


def test_eiq_export_prints_the_check_and_lists_exports(trained, tmp_path, capsys):
    assert main(["export", str(trained), "--format", "savedmodel", "-o", str(tmp_path / "sm")]) == 0
    text = capsys.readouterr().out
    assert "checked on 30 images" in text and "top-1 agreement 100.0 %" in text
    # a second export into the same SavedModel folder replaces it whole
    assert (
        main(["export", str(trained), "--format", "savedmodel", "-o", str(tmp_path / "sm"), "--parity-images", "0"])
        == 0
    )
    capsys.readouterr()
    assert main(["export", str(trained), "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [e["format"] for e in listed] == ["savedmodel", "savedmodel"] and listed[1]["parity"] is None
    assert main(["export", str(trained), "--list"]) == 0
    assert "top-1 agreement" in capsys.readouterr().out
