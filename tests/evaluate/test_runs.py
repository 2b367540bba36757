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
    assert report.confusion.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
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
