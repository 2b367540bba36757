"""Exporting a trained detector: TFLite float and int8, ONNX and Keras give the model's outputs, and
the labels and anchors travel with the file (beside it and in its metadata)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from eiq_lab.convert import export_run
from eiq_lab.convert.onnx import read_metadata as onnx_metadata
from eiq_lab.convert.tflite import read_metadata as tflite_metadata
from eiq_lab.errors import InputError
from eiq_lab.models import registry
from eiq_lab.project import open_project
from eiq_lab.train import load_run_model

SIZE = (96, 96, 3)


@pytest.fixture(scope="module")
def reference(detector_project):
    """Test images preprocessed by another route (PIL resize) and the Keras model's raw outputs on them."""
    from PIL import Image

    with open_project(detector_project) as project:
        model = load_run_model(project)
        labels = project.run("last").labels
        images = [project.image(i.id).pil().convert("RGB") for i in project.iter_images(group="test")][:4]
    x = np.stack([np.asarray(im.resize(SIZE[:2], Image.Resampling.BILINEAR), np.float32) for im in images])
    x = x / 127.5 - 1.0
    return x, model.predict(x, verbose=0), labels


def _litert(path, x):
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    results = []
    for image in x:
        value = image[None]
        if inp["dtype"] != np.float32:
            scale, zero = inp["quantization"]
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(inp["dtype"])
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"])[0])
    return np.stack(results), interpreter


def test_float_tflite_matches_keras_and_carries_labels_and_anchors(detector_project, reference, tmp_path):
    x, expected, labels = reference
    with open_project(detector_project) as project:
        result = export_run(project, fmt="tflite", output=tmp_path / "det.tflite")
    got, _ = _litert(result.path, x)
    np.testing.assert_allclose(got, expected, atol=1e-4)
    anchors = registry().get("ssd_mobilenet_v2").anchors(SIZE)
    np.testing.assert_allclose(np.load(tmp_path / "anchor_boxes.npy"), anchors, atol=1e-6)
    assert (tmp_path / "labels.txt").read_text().splitlines() == labels
    embedded = tflite_metadata(result.path.read_bytes())
    np.testing.assert_allclose(np.frombuffer(embedded["ssd_anchor_boxes"], np.float32).reshape(-1, 4), anchors)
    meta = json.loads(embedded["eiq_metadata"])
    assert meta["task"] == "detection" and meta["labels"] == labels and meta["normalization"] == "signed"
    assert meta["input_size"] == [96, 96, 3] and len(meta["anchors"]) == len(anchors)
    assert embedded["labels"].decode().splitlines() == labels


def test_int8_tflite_is_integer_inside_and_close_to_float(detector_project, reference, tmp_path):
    x, expected, _ = reference
    with open_project(detector_project) as project:
        result = export_run(project, fmt="tflite", output=tmp_path / "det_int8.tflite", quantize=True, num_samples=16)
        per_tensor = export_run(
            project, fmt="tflite", output=tmp_path / "pt.tflite", quantize=True, per_channel=False, num_samples=8
        )
    got, interpreter = _litert(result.path, x)
    kinds = {t["dtype"] for t in interpreter.get_tensor_details() if len(t["shape"]) == 4 and t["name"]}
    assert np.int8 in kinds  # activations are int8
    # quantization error is small against the spread of the outputs
    assert np.abs(got - expected).mean() < 0.1 * expected.std()
    assert json.loads(tflite_metadata(result.path.read_bytes())["eiq_metadata"])["quantization"]["type"] == "int8"
    _, pt = _litert(per_tensor.path, x)
    scales = [t["quantization_parameters"]["scales"] for t in pt.get_tensor_details() if "Conv2D" in t["name"]]
    assert scales and all(len(s) == 1 for s in scales)  # one scale per weight tensor


def test_onnx_matches_keras_and_carries_metadata(detector_project, reference, tmp_path):
    import onnxruntime

    x, expected, labels = reference
    with open_project(detector_project) as project:
        result = export_run(project, fmt="onnx", output=tmp_path / "det.onnx")
    session = onnxruntime.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    got = np.concatenate([session.run(None, {name: image[None]})[0] for image in x])
    np.testing.assert_allclose(got, expected, atol=1e-4)
    meta = onnx_metadata(result.path.read_bytes())
    assert json.loads(meta["eiq_metadata"])["labels"] == labels and meta["labels"].splitlines() == labels
    assert (tmp_path / "anchor_boxes.npy").exists()


def test_export_refuses_what_it_cannot_do(detector_project, tmp_path):
    with open_project(detector_project) as project:
        with pytest.raises(InputError, match="format must be one of"):
            export_run(project, fmt="pb")
        with pytest.raises(InputError, match="h5 models hold float32 weights"):
            export_run(project, fmt="h5", quantize=True)
        with pytest.raises(InputError, match="needs a quantized model"):
            export_run(project, fmt="tflite", output=tmp_path / "x.tflite", input_type="int8")


def test_eiq_export_writes_the_files_and_refuses_bad_flags(detector_project, tmp_path, capsys):
    from eiq_lab.cli.main import main

    out = tmp_path / "cli" / "det.onnx"
    assert main(["export", str(detector_project), "--format", "onnx", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "anchor_boxes.npy" in printed
    assert out.exists() and (out.parent / "labels.txt").exists()
    assert main(["export", str(detector_project), "--format", "pb"]) != 0
    assert "invalid choice: 'pb'" in capsys.readouterr().err
