"""The confusion matrix at a softmax threshold: the background column, precision and recall around it,
the images of each cell, and outputs that are logits rather than probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab.errors import InputError
from eiq_lab.evaluate import BACKGROUND, ClassificationResults

CLASSES = ["cat", "dog", "fox"]
# image ids 10..15; true classes; softmax rows written by hand
TRUTH = [0, 0, 1, 1, 2, 2]
SCORES = [
    [0.90, 0.05, 0.05],  # 10 cat -> cat, sure
    [0.40, 0.35, 0.25],  # 11 cat -> cat, unsure
    [0.10, 0.80, 0.10],  # 12 dog -> dog, sure
    [0.55, 0.30, 0.15],  # 13 dog -> cat (wrong), unsure
    [0.20, 0.10, 0.70],  # 14 fox -> fox
    [0.05, 0.92, 0.03],  # 15 fox -> dog (wrong), sure
]
IDS = [10, 11, 12, 13, 14, 15]


@pytest.fixture
def results():
    return ClassificationResults(CLASSES, TRUTH, SCORES, IDS)


def test_without_threshold_every_prediction_counts(results):
    report = results.report(0.0)
    assert report.columns == [*CLASSES, BACKGROUND]
    assert report.confusion.tolist() == [[2, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0]]
    assert report.accuracy == pytest.approx(4 / 6)
    assert report.per_class["cat"] == {"precision": pytest.approx(2 / 3), "recall": 1.0, "support": 2}


def test_below_the_threshold_goes_to_background_right_or_wrong(results):
    report = results.report(0.6)
    # 11 (right, 0.40) and 13 (wrong, 0.55) fall to background; 15 stays a confident mistake
    assert report.confusion.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 0]]
    assert report.background == 2
    assert report.accuracy == pytest.approx(3 / 6)
    # background is a miss for recall and left out of precision
    assert report.per_class["cat"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert report.per_class["dog"] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert report.per_class["fox"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert report.to_json()["confusion"][0] == [1, 0, 0, 1]


def test_a_threshold_above_every_score_leaves_only_background(results):
    report = results.report(1.0)
    assert report.confusion[:, :3].sum() == 0 and report.background == 6
    assert all(row["precision"] is None and row["recall"] == 0.0 for row in report.per_class.values())


def test_each_cell_lists_its_images(results):
    report = results.report(0.6)
    assert report.cell("cat", "cat").tolist() == [10]
    assert report.cell("dog", BACKGROUND).tolist() == [13]
    assert report.cell(2, 1).tolist() == [15]
    assert report.cell("fox", "cat").tolist() == []
    # every image is in exactly one cell
    every = [i for t in CLASSES for p in report.columns for i in report.cell(t, p).tolist()]
    assert sorted(every) == IDS
    with pytest.raises(InputError, match="unknown class 'wolf'"):
        report.cell("wolf", "cat")


def test_moving_the_threshold_never_changes_the_cached_predictions(results):
    first = results.report(0.6)
    results.report(0.95)
    again = results.report(0.6)
    assert first.confusion.tolist() == again.confusion.tolist()
    assert first.results is results


def test_logits_are_turned_into_softmax_before_thresholding():
    logits = np.log(np.asarray(SCORES))  # softmax(log p) = p
    report = ClassificationResults(CLASSES, TRUTH, logits, IDS).report(0.6)
    assert report.confusion.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 1, 1, 0]]
    np.testing.assert_allclose(report.scores, SCORES, atol=1e-12)


def test_bad_thresholds_and_shapes_are_refused(results):
    with pytest.raises(InputError, match="between 0 and 1"):
        results.report(1.5)
    with pytest.raises(InputError, match="2 scores per image; the run has 3 classes"):
        ClassificationResults(CLASSES, [0], [[0.5, 0.5]], [1])
    with pytest.raises(InputError, match=r"\[images, classes\]"):
        ClassificationResults(CLASSES, [0], [0.5, 0.5, 0.0], [1])
