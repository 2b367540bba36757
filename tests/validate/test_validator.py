"""eiq-validator: reference .npz files made and validated (Keras, int8 TFLite, ONNX, a perturbed model), names
checked, image top-n, a project's test group, and several ModelRunners validated at once."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from eiq_lab.cli.validator import main

from .conftest import LABELS, litert_outputs


def _json(capsys):
    return json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def reference(models, tmp_path_factory):
    """m.npz made from the Keras model with the guide's command (4 random samples), and the model itself."""
    from eiq_lab import framework

    folder = tmp_path_factory.mktemp("reference")
    path = folder / "m.npz"
    code = main(["--input_names", "input", "--output_names", "Identity", "--input_shapes", "1,32,32,3",
                 "--samples", "4", "--output", str(path), str(models["keras"])])  # fmt: skip
    assert code == 0
    return path, framework.keras().models.load_model(models["keras"], compile=False)


def test_a_keras_reference_holds_the_models_outputs_and_validates_exactly(reference, models, capsys):
    path, keras_model = reference
    with np.load(path) as data:
        inputs, outputs = data["input"], data["Identity"]
        info = json.loads(str(data["eiq_reference"]))
    assert inputs.shape == (4, 32, 32, 3) and outputs.shape == (4, len(LABELS))
    assert info["samples"] == 4 and inputs.min() >= -1 and inputs.max() <= 1
    # the outputs are the Keras model's own on those inputs, computed here independently
    np.testing.assert_allclose(outputs, keras_model.predict(inputs, batch_size=1, verbose=0), atol=1e-6)
    capsys.readouterr()
    assert main(["--reference", str(path), "--json", str(models["keras"])]) == 0
    device = _json(capsys)["devices"][0]
    assert device["device"] == "local" and device["passed"] and device["samples"] == 4
    (output,) = device["outputs"]
    assert output["max_delta"] == 0.0 and output["top1_matches"] == output["top1_total"] == 4


def test_the_int8_conversion_validates_within_tolerance(reference, models, capsys):
    path, _ = reference
    capsys.readouterr()
    assert main(["--reference", str(path), str(models["int8"])]) == 0
    text = capsys.readouterr().out
    assert "Top-1 Matches: 4/4 - 100.00 %" in text and "All outputs validate within error." in text
    assert main(["--reference", str(path), "--json", str(models["int8"])]) == 0
    (output,) = _json(capsys)["devices"][0]["outputs"]
    # int8 in and out: the reference inputs were quantized, the outputs dequantized, and they differ a little
    assert 0 < output["max_delta"] <= output["allowed_max_delta"]
    with np.load(path) as data:
        expected = data["Identity"]
    assert output["max_delta"] < 0.5 * float(expected.max() - expected.min())
    # the ONNX conversion, also paired by order (its tensor names differ from the Keras model's)
    assert main(["--reference", str(path), "--json", str(models["onnx"])]) == 0
    (output,) = _json(capsys)["devices"][0]["outputs"]
    assert output["max_delta"] < 1e-4


def test_a_perturbed_model_is_reported_with_exit_3(reference, models, capsys):
    path, _ = reference
    capsys.readouterr()
    assert main(["--reference", str(path), str(models["perturbed"])]) == 3
    text = capsys.readouterr().out
    assert "All outputs validate within error." not in text
    assert "does not validate" in text and "max delta" in text
    # a tolerance loose enough takes it (absolute deltas up to 1, top-1 not required)
    code = main(["-reference", str(path), "-max-delta", "1", "-avg_delta", "1", "--absolute", "--min-top1", "0",
                 str(models["perturbed"])])  # fmt: skip
    assert code == 0


def test_wrong_names_list_the_available_ones(models, reference, capsys):
    path, _ = reference
    capsys.readouterr()
    assert main(["--input_names", "image", "--input_shapes", "1,32,32,3", str(models["keras"])]) == 1
    err = capsys.readouterr().err
    assert "'image' is not in m.keras" in err and "input" in err and "probs" in err
    assert main(["--output_names", "scores", str(models["float"])]) == 1
    err = capsys.readouterr().err
    assert "'scores'" in err and "StatefulPartitionedCall:0" in err and "output_0" in err
    assert main(["--reference", str(path), "--ref_outputs", "logits", str(models["float"])]) == 1
    assert "no output array logits; its outputs: Identity" in capsys.readouterr().err


def test_the_guides_spellings_and_name_lists(models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # the guide's "a, b" list (words ending in commas), single-dash flags and the model after the names
    code = main(["-input_names", "input", "-output-names", "probs,", "Identity", "--input-shapes", "1,32,32,3",
                 "--rtm_outputs", "scores,", "copy", "--json", str(models["keras"])])  # fmt: skip
    assert code == 0
    printed = _json(capsys)
    assert printed["reference"] == str(tmp_path / "m.npz")
    assert printed["outputs"] == {"scores": [1, 5], "copy": [1, 5]}
    with np.load(tmp_path / "m.npz") as data:
        np.testing.assert_array_equal(data["scores"], data["copy"])
    # a reference model (not an .npz): outputs computed on the fly, 2 random samples
    code = main(["--reference", str(models["float"]), "--samples", "2", "--json", str(models["int8"])])
    assert code == 0 and _json(capsys)["devices"][0]["samples"] == 2


def _images(folder, count=3):
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(count):
        pixels = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i}.png")
    return sorted(folder.glob("*.png"))


def test_image_top_n_matches_a_direct_litert_run(models, tmp_path, capsys):
    files = _images(tmp_path / "imgs")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    assert main(["--image", str(tmp_path / "imgs"), "--top", "3", "--labels", str(labels), "--json",
                 str(models["float"])]) == 0  # fmt: skip
    (device,) = _json(capsys)
    assert [r["image"] for r in device["images"]] == [str(f) for f in files]
    for result, path in zip(device["images"], files):
        # the preprocessing by hand: RGB, bilinear resize to 32x32, signed x / 127.5 - 1
        pixels = np.asarray(Image.open(path).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), np.float32)
        scores = litert_outputs(models["float"], pixels[None] / 127.5 - 1)[0]
        order = np.argsort(-scores)[:3]
        assert [p["label"] for p in result["predictions"]] == [LABELS[i] for i in order]
        np.testing.assert_allclose([p["score"] for p in result["predictions"]], scores[order], atol=1e-6)
    assert main(["--image", str(files[0]), "--top", "2", "--labels", str(labels), str(models["float"])]) == 0
    text = capsys.readouterr().out
    assert f"Image {files[0]}:" in text and "1:| " in text and "2:| " in text and "Average Model runtime" in text


def test_project_mode_equals_evaluate_run(models, digits_path, tmp_path, capsys):
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.project import open_project

    labels = tmp_path / "digits.txt"
    labels.write_text("0\n1\n7\n")
    with open_project(digits_path) as project:
        expected = evaluate_run(project, None, model=models["digits"], labels=["0", "1", "7"]).to_json()
    assert main(["--project", str(digits_path), "--labels", str(labels), "--json", str(models["digits"])]) == 0
    (device,) = _json(capsys)
    assert device["device"] == "local" and device["report"] == json.loads(json.dumps(expected, default=str))
    assert main(["--project", str(digits_path), "--labels", str(labels), str(models["digits"])]) == 0
    assert "confusion matrix" in capsys.readouterr().out


def test_two_runners_validate_concurrently_like_the_host(reference, models, runner, capsys):
    path, _ = reference
    capsys.readouterr()
    assert main(["--reference", str(path), "--json", str(models["int8"])]) == 0
    (local,) = _json(capsys)["devices"]
    first, second = runner(), runner()
    uris = f"{first.url},{second.url}"
    assert main(["--reference", str(path), "--uri", uris, "--json", str(models["int8"])]) == 0
    devices = _json(capsys)["devices"]
    assert [d["device"] for d in devices] == [first.url, second.url]
    for device in devices:
        assert device["passed"] and device["samples"] == 4
        assert device["timing"]["runs"] == 4 and device["timing"]["model_ms"] > 0
        assert device["timing"]["round_trip_ms"] >= device["timing"]["model_ms"]
        (remote,) = device["outputs"]
        assert remote["top1_matches"] == local["outputs"][0]["top1_matches"]
        assert remote["max_delta"] == pytest.approx(local["outputs"][0]["max_delta"], abs=1e-6)
    # the guide's text, one block per device; a perturbed model fails on both with exit 3
    assert main(["--reference", str(path), "--uri", uris, str(models["perturbed"])]) == 3
    text = capsys.readouterr().out
    assert text.count("does not validate") == 2 and f"Device: {second.url}" in text


def test_an_unreachable_runner_is_an_error_naming_it(reference, models, capsys):
    path, _ = reference
    capsys.readouterr()
    assert (
        main(["--reference", str(path), "--uri", "http://127.0.0.1:9/v1", "--timeout", "5", str(models["int8"])]) == 1
    )
    assert "127.0.0.1:9" in capsys.readouterr().err


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """An eiq-lab SSD detector (random weights, 96x96, 2 classes) as TFLite with the metadata an export embeds."""
    from eiq_lab.convert.tflite import to_tflite, with_metadata
    from eiq_lab.models import registry

    plugin = registry().get("ssd_mobilenet_v2", task="detection")
    model = plugin.get_model((96, 96, 3), 2, None, plugin.validate_params({"alpha": 0.35}))
    metadata = {**plugin.get_metadata(), "model": "ssd_mobilenet_v2"}
    path = tmp_path_factory.mktemp("detector") / "det.tflite"
    path.write_bytes(with_metadata(to_tflite(model), {"eiq_metadata": json.dumps(metadata).encode(),
                                                      "labels": b"circle\nsquare\n"}))  # fmt: skip
    return path


def test_a_detector_shows_its_top_boxes(detector, tmp_path, capsys):
    from eiq_lab.models import registry

    files = _images(tmp_path / "imgs", 2)
    assert main(["--image", str(tmp_path / "imgs"), "--top", "3", "--score-threshold", "0.01", "--json",
                 str(detector)]) == 0  # fmt: skip
    (device,) = _json(capsys)
    assert device["task"] == "detection" and device["box_format"].startswith("ymin,xmin,ymax,xmax")
    decode = (
        registry()
        .get("ssd_mobilenet_v2", task="detection")
        .decoder((96, 96, 3), 2, score_threshold=0.01, iou_threshold=0.5, max_detections=20)
    )
    for result, path in zip(device["images"], files):
        pixels = np.asarray(Image.open(path).convert("RGB").resize((96, 96), Image.Resampling.BILINEAR), np.float32)
        boxes, scores, classes = decode(litert_outputs(detector, pixels[None] / 127.5 - 1))[0]
        order = np.argsort(-scores, kind="stable")[:3]
        assert len(result["predictions"]) == len(order) == 3
        assert [p["label"] for p in result["predictions"]] == [["circle", "square"][classes[i]] for i in order]
        np.testing.assert_allclose([p["score"] for p in result["predictions"]], scores[order], atol=1e-5)
        np.testing.assert_allclose([p["box"] for p in result["predictions"]], boxes[order], atol=1e-5)
    # without --top: one detection per image, printed with its box
    assert main(["--image", str(files[0]), "--score_threshold", "0.01", str(detector)]) == 0
    text = capsys.readouterr().out
    assert "1:| " in text and "2:| " not in text


def test_images_and_projects_on_a_runner_give_the_hosts_answers(models, digits_path, runner, tmp_path, capsys):
    _images(tmp_path / "imgs", 2)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS))
    common = ["--image", str(tmp_path / "imgs"), "--top", "2", "--labels", str(labels), "--json"]
    assert main([*common, str(models["int8"])]) == 0
    (local,) = _json(capsys)
    server = runner()
    assert main([*common, "--uri", server.url, str(models["int8"])]) == 0
    (remote,) = _json(capsys)
    assert remote["device"] == server.url and remote["timing"]["runs"] == 2
    assert remote["images"] == local["images"]
    digits = tmp_path / "digits.txt"
    digits.write_text("0\n1\n7\n")
    project = ["--project", str(digits_path), "--labels", str(digits), "--json"]
    assert main([*project, str(models["digits"])]) == 0
    (here,) = _json(capsys)
    assert main([*project, "--uri", server.url, str(models["digits"])]) == 0
    (there,) = _json(capsys)
    assert there["device"] == server.url
    assert there["report"]["confusion"] == here["report"]["confusion"]
    assert there["report"]["accuracy"] == pytest.approx(here["report"]["accuracy"])


def test_a_reference_from_images_and_the_tflite_it_saves(models, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    files = _images(tmp_path / "imgs", 3)
    assert main(["--samples", str(tmp_path / "imgs"), "-save_tflite=true", "--json", str(models["keras"])]) == 0
    printed = _json(capsys)
    assert printed["samples"] == 3 and printed["tflite"] == str(tmp_path / "m.tflite")
    with np.load(tmp_path / "m.npz") as data:
        inputs = data["input"]
    for value, path in zip(inputs, files):
        pixels = np.asarray(Image.open(path).convert("RGB").resize((32, 32), Image.Resampling.BILINEAR), np.float32)
        np.testing.assert_allclose(value, pixels / 127.5 - 1, atol=1e-6)
    # the saved conversion validates against the reference made with it
    assert main(["--reference", "m.npz", "m.tflite"]) == 0
    assert "All outputs validate within error." in capsys.readouterr().out


def test_the_guides_validation_command_pairs_outputs_by_name(reference, models, capsys):
    path, _ = reference
    capsys.readouterr()
    # the converted model's output (its signature name) against the reference array named by --ref_outputs
    code = main(["--input_names", "x", "--output_names", "output_0", "--ref_outputs", "Identity", "--reference",
                 str(path), "--json", str(models["float"])])  # fmt: skip
    assert code == 0
    (output,) = _json(capsys)["devices"][0]["outputs"]
    assert output["name"] == "StatefulPartitionedCall:0" and output["reference"] == "Identity"
    assert output["max_delta"] < 1e-5
