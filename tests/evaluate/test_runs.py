"""Evaluating a run's model on the test group: the report's arithmetic, the images it reads, and `eiq evaluate`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from train.conftest import tiny_settings

from eiq_lab.cli.main import main
from eiq_lab.errors import InputError
from eiq_lab.evaluate import classification_report, evaluate_run
from eiq_lab.project import open_project
from eiq_lab.train import Trainer, load_run_model


def test_classification_report_by_hand():
    truth = [0, 0, 1, 1, 2]
    scores = np.eye(3)[[0, 1, 1, 1, 0]] * 0.9 + 0.03
    report = classification_report(["a", "b", "c"], truth, scores, [10, 11, 12, 13, 14])
    # the last column is background: empty at the default threshold 0
    assert report.confusion.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0]]
    assert report.accuracy == pytest.approx(3 / 5)
    assert report.per_class["a"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert report.per_class["b"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "support": 2}
    assert report.per_class["c"] == {"precision": None, "recall": 0.0, "support": 1}


def test_a_classifier_is_evaluated_on_the_test_images_in_order(digits_path, tiny_plugin, capsys):
    with open_project(digits_path) as project:
        run = Trainer(project, tiny_settings(epochs=2)).fit().run
        report = evaluate_run(project, run)
        # the same images through another route: PIL decode (32x32 already: no resize), x / 127.5 - 1
        model = load_run_model(project, run)
        ids = [i.id for i in project.iter_images(group="test")]
        pixels = np.stack([np.asarray(project.image(i).pil().convert("RGB"), np.float32) for i in ids])
        expected = model.predict(pixels / 127.5 - 1.0, verbose=0)
        names = [str(project.annotations(image=i)[0].label) for i in ids]
    assert report.image_ids.tolist() == ids
    assert [report.classes[k] for k in report.truth] == names
    np.testing.assert_allclose(report.scores, expected, atol=1e-4)
    assert report.confusion.sum() == 30
    assert report.accuracy == pytest.approx(np.mean(report.truth == expected.argmax(1)))
    assert main(["evaluate", str(digits_path), "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["task"] == "classification" and printed["accuracy"] == pytest.approx(report.accuracy)
    assert main(["evaluate", str(digits_path)]) == 0
    text = capsys.readouterr().out
    assert "confusion matrix" in text and "precision" in text


def test_evaluating_without_runs_or_test_images_says_so(digits_path, tiny_plugin, capsys):
    assert main(["evaluate", str(digits_path)]) != 0
    assert "run" in capsys.readouterr().err
    with open_project(digits_path) as project:
        run = Trainer(project, tiny_settings(epochs=1)).fit().run
        project.set_grouping([i.id for i in project.iter_images(group="test")], "train")
        with pytest.raises(InputError, match=r"test group .* holds no image"):
            evaluate_run(project, run)


@pytest.fixture
def trained_digits(digits_path, tiny_plugin):
    """The digits project with one finished tiny-CNN run."""
    with open_project(digits_path) as project:
        Trainer(project, tiny_settings(epochs=3)).fit()
    return digits_path


def test_model_files_evaluate_like_the_run_that_made_them(trained_digits, tmp_path, capsys):
    from eiq_lab.convert import export_run

    with open_project(trained_digits) as project:
        keras_report = evaluate_run(project)
        tflite = export_run(project, fmt="tflite", output=tmp_path / "m.tflite").path
        onnx = export_run(project, fmt="onnx", output=tmp_path / "m.onnx").path
        int8 = export_run(project, fmt="tflite", output=tmp_path / "q.tflite", quantize=True, num_samples=30).path
        by_tflite = evaluate_run(project, model=tflite)
        by_onnx = evaluate_run(project, model=onnx)
        by_int8 = evaluate_run(project, model=int8)
        # alone, a file exported here says its classes, input size and normalization itself
        alone = evaluate_run(project, None, model=tflite)
    np.testing.assert_allclose(by_tflite.scores, keras_report.scores, atol=1e-4)
    np.testing.assert_allclose(by_onnx.scores, keras_report.scores, atol=1e-4)
    assert alone.confusion.tolist() == by_tflite.confusion.tolist() and alone.classes == keras_report.classes
    # int8 keeps the float model's decisions on nearly every image (dequantized outputs)
    agree = np.mean(by_int8.scores.argmax(1) == keras_report.scores.argmax(1))
    assert agree >= 0.9, agree
    assert main(["evaluate", str(trained_digits), "--model", str(int8), "--threshold", "0.6", "--json",
                 "--cell", "0,background", "--cell", "7,7"]) == 0  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    assert printed["threshold"] == 0.6 and printed["columns"][-1] == "background"
    expected = by_int8.results.report(0.6)
    assert printed["confusion"] == expected.confusion.tolist()
    assert printed["cells"][0]["images"] == expected.cell("0", "background").tolist()
    assert printed["cells"][1]["images"] == expected.cell("7", "7").tolist()
    assert main(["evaluate", str(trained_digits), "--model", str(tflite), "--threshold", "0.9"]) == 0
    assert "below the softmax threshold 0.9" in capsys.readouterr().out


def test_a_model_that_does_not_fit_the_run_is_refused(trained_digits, tmp_path, capsys):
    from eiq_lab import framework

    keras = framework.keras()
    inputs = keras.Input((28, 28, 3))
    other = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(inputs)))
    other.save(tmp_path / "other.h5")
    with open_project(trained_digits) as project, pytest.raises(InputError, match=r"takes \(28, 28, 3\) images"):
        evaluate_run(project, model=tmp_path / "other.h5")
    # a model file without labels, evaluated on its own, needs them
    with open_project(trained_digits) as project, pytest.raises(InputError, match="carries no labels"):
        evaluate_run(project, None, model=tmp_path / "other.h5")
    assert main(["evaluate", str(trained_digits), "--model", str(tmp_path / "missing.tflite")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "text.tflite").write_text("not a model")
    assert main(["evaluate", str(trained_digits), "--model", str(tmp_path / "text.tflite")]) == 1
    assert "not a model" in capsys.readouterr().err


def test_keras_files_with_python_code_are_refused_unless_trusted(trained_digits, tmp_path):
    from eiq_lab import framework

    keras = framework.keras()
    marker = tmp_path / "ran"
    where = str(marker)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    # a lambda whose code would leave a file behind if it ever ran
    x = keras.layers.Lambda(lambda t: t * 1.0 + 0 * len(open(where, "w").name))(x)  # noqa: SIM115
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(x))
    marker.unlink()
    model.save(tmp_path / "lambda.h5")
    with open_project(trained_digits) as project:
        with pytest.raises(InputError, match="Lambda layer with Python code"):
            evaluate_run(project, model=tmp_path / "lambda.h5")
        assert not marker.exists()
        report = evaluate_run(project, model=tmp_path / "lambda.h5", trust_code=True)
    assert marker.exists() and report.confusion.sum() == 30


def test_the_validation_toggle_evaluates_the_run_quantized(trained_digits, tmp_path, capsys):
    from eiq_lab.convert import quantized_executor

    with open_project(trained_digits) as project:
        float_report = evaluate_run(project)
        executor = quantized_executor(project, per_channel=False, input_type="int8", num_samples=30)
        int8_report = evaluate_run(project, executor=executor)
    # the int8 model runs with int8 input (quantized here by the executor) and keeps the float decisions
    assert executor.kind == "tflite" and "per-tensor" in executor.name
    agree = np.mean(int8_report.scores.argmax(1) == float_report.scores.argmax(1))
    assert agree >= 0.9 and not np.allclose(int8_report.scores, float_report.scores, atol=1e-6)
    assert main(["evaluate", str(trained_digits), "--quantize", "--per-tensor", "--num-samples", "30", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images"] == 30
    assert main(["evaluate", str(trained_digits), "--quantize", "--model", "m.tflite"]) == 1
    assert "run as it is" in capsys.readouterr().err


def test_evaluation_reports_progress_a_batch_at_a_time_and_stops_on_request(trained_digits, capsys):
    from eiq_lab.errors import Stopped
    from eiq_lab.events import Progress

    events = []
    with open_project(trained_digits) as project:
        test_ids = [i.id for i in project.iter_images(group="test")]
        report = evaluate_run(project, batch_size=16, progress=events.append)
        started = [e for e in events if e.kind == "start"]
        assert len(started) == 1 and started[0].total == len(test_ids)
        steps = [e.done for e in events if e.kind == "advance"]
        assert steps == [min(n * 16, len(test_ids)) for n in range(1, len(steps) + 1)] and steps[-1] == len(test_ids)
        assert events[-1].kind == "end" and len(report.image_ids) == len(test_ids)

        # a stop request ends it at the next batch, with no report
        progress = Progress()
        seen = []

        def stop_after_first(event):
            seen.append(event.kind)
            if event.kind == "advance":
                progress.stop()

        progress.observers.append(stop_after_first)
        with pytest.raises(Stopped):
            evaluate_run(project, batch_size=16, progress=progress)
        assert seen.count("advance") == 1 and "end" not in seen
    # the command line shows the progress on stderr (none with --quiet or --json)
    assert main(["evaluate", str(trained_digits)]) == 0
    assert "test images" in capsys.readouterr().err
    assert main(["evaluate", str(trained_digits), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
