"""A classifier's results on a group: the confusion matrix with the guide's softmax threshold and
background column, the images in every cell, accuracy and per-class precision and recall.

Predictions are kept (`ClassificationResults`), so moving the threshold recomputes the report from
the cached softmax outputs in well under a millisecond per thousand images; inference never re-runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

#: The name of the confusion matrix's last column: predictions whose top softmax is below the threshold.
BACKGROUND = "background"


def softmax_scores(outputs: Any) -> np.ndarray:
    """A model's outputs [N, C] as softmax probabilities: returned as they are when every row already
    is a distribution (values in [0, 1] summing to 1 within 1 %, as a dequantized int8 softmax gives),
    else passed through a softmax (a model that ends in logits).

    Raises:
        InputError: the outputs are not a 2-D array of scores with at least two classes.
    """
    scores = np.asarray(outputs, np.float64)
    if scores.ndim != 2 or scores.shape[1] < 2:
        raise InputError(
            f"a classifier's output must be [images, classes] with two classes or more; received {scores.shape}"
        )
    if scores.size and (scores.min() < 0 or scores.max() > 1 or np.abs(scores.sum(axis=1) - 1).max() > 0.01):
        shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores = shifted / shifted.sum(axis=1, keepdims=True)
    return scores


@dataclass
class ClassificationReport:
    """A classifier's results at one softmax threshold.

    Attributes:
        classes: class names in output order.
        threshold: the softmax threshold: a top score below it puts the image in the background column.
        confusion: int [C, C + 1] counts: rows the true class, columns the predicted class, the last column
            `BACKGROUND` (predictions below the threshold, right or wrong).
        accuracy: the share of images whose top class is right and at or above the threshold.
        per_class: ``{name: {"precision", "recall", "support"}}``; recall counts background as a miss,
            precision leaves background out (None when the class is never predicted above the threshold).
        image_ids, truth, scores: the images, their true class indices and softmax outputs [N, C].
        predicted: each image's column in `confusion` (a class index, or C for background).
    """

    classes: list[str]
    threshold: float
    confusion: np.ndarray
    accuracy: float
    per_class: dict[str, dict[str, Any]]
    image_ids: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)
    predicted: np.ndarray = field(repr=False)
    results: ClassificationResults | None = field(default=None, repr=False)

    @property
    def columns(self) -> list[str]:
        """The confusion matrix's column names: the classes, then `BACKGROUND`."""
        return [*self.classes, BACKGROUND]

    @property
    def background(self) -> int:
        """How many images fell below the threshold."""
        return int(self.confusion[:, -1].sum())

    def cell(self, true: int | str, predicted: int | str) -> np.ndarray:
        """The ids of the images in one cell (drill-down): `true` a class, `predicted` a class or
        ``"background"``, by name or index.

        Raises:
            InputError: an unknown class name or index.
        """
        row, column = self._index(true, self.classes), self._index(predicted, self.columns)
        return self.image_ids[(self.truth == row) & (self.predicted == column)]

    @staticmethod
    def _index(value: int | str, names: list[str]) -> int:
        if isinstance(value, str):
            if value not in names:
                raise InputError(f"unknown class {value!r}; the classes are {', '.join(names)}")
            return names.index(value)
        if not 0 <= int(value) < len(names):
            raise InputError(f"class index must be 0..{len(names) - 1}; received {value}")
        return int(value)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values (without the per-image outputs)."""
        return {
            "task": "classification",
            "images": len(self.image_ids),
            "threshold": self.threshold,
            "accuracy": self.accuracy,
            "classes": self.classes,
            "columns": self.columns,
            "confusion": self.confusion.tolist(),
            "background": self.background,
            "per_class": self.per_class,
        }


class ClassificationResults:
    """A classifier's cached predictions on a group; `report(threshold)` builds the report at any threshold.

    Example:
        >>> results = ClassificationResults(["cat", "dog"], [0, 1], [[0.9, 0.1], [0.45, 0.55]], [7, 8])
        >>> results.report(0.6).confusion.tolist()
        [[1, 0, 0], [0, 0, 1]]
    """

    def __init__(self, classes: list[str], truth: Any, outputs: Any, image_ids: Any):
        self.classes = list(classes)
        self.scores = softmax_scores(outputs)
        self.truth = np.asarray(truth, np.int64)
        self.image_ids = np.asarray(image_ids)
        n = len(self.classes)
        if self.scores.shape[1] != n:
            raise InputError(f"the model gives {self.scores.shape[1]} scores per image; the run has {n} classes")
        if not (len(self.truth) == len(self.scores) == len(self.image_ids)):
            raise InputError(
                f"{len(self.image_ids)} images, {len(self.truth)} true classes and {len(self.scores)} predictions "
                "must be as many"
            )
        if len(self.truth) and (self.truth.min() < 0 or self.truth.max() >= n):
            raise InputError(f"true class indices must be 0..{n - 1}")
        # computed once: a threshold only decides which of these go to the background column
        self.top = self.scores.argmax(axis=1)
        self.confidence = self.scores.max(axis=1)
        self._cells = self.truth * (n + 1)

    def report(self, threshold: float = 0.0) -> ClassificationReport:
        """The report at a softmax threshold in [0, 1] (0: every prediction counts).

        Raises:
            InputError: the threshold is outside [0, 1].
        """
        threshold = float(threshold)
        if not 0.0 <= threshold <= 1.0:
            raise InputError(f"the softmax threshold must be between 0 and 1; received {threshold}")
        n = len(self.classes)
        predicted = np.where(self.confidence >= threshold, self.top, n)
        confusion = np.bincount(self._cells + predicted, minlength=n * (n + 1)).reshape(n, n + 1)
        diagonal = np.diagonal(confusion[:, :n])
        predicted_k, support = confusion[:, :n].sum(axis=0), confusion.sum(axis=1)
        per_class = {
            name: {
                "precision": float(diagonal[k] / predicted_k[k]) if predicted_k[k] else None,
                "recall": float(diagonal[k] / support[k]) if support[k] else None,
                "support": int(support[k]),
            }
            for k, name in enumerate(self.classes)
        }
        accuracy = float(diagonal.sum() / max(len(self.truth), 1))
        return ClassificationReport(
            self.classes, threshold, confusion, accuracy, per_class, self.image_ids, self.truth, self.scores,
            predicted, self,
        )  # fmt: skip


def classification_report(
    classes: list[str], truth: Any, scores: Any, image_ids: Any, threshold: float = 0.0
) -> ClassificationReport:
    """The report of softmax outputs [N, C] at one threshold (see `ClassificationResults` to vary it)."""
    return ClassificationResults(classes, truth, scores, image_ids).report(threshold)
