"""Evaluate a training run's model on a project's test group: a classifier's confusion matrix and
per-class precision and recall, or a detector's mAP (see `detection`).

Images are read and preprocessed exactly as the trainer reads its test batches; predictions come from
an executor: a callable from a batch of preprocessed inputs to the model's outputs (the run's Keras
model by default; a converted model or a remote runner slot in the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from .detection import DetectionReport, ImageBoxes, detection_metrics

#: The score above which a detection counts for mAP: low, so the precision-recall curve is complete.
EVALUATION_SCORE_THRESHOLD = 0.01
#: Detections kept per image for mAP (COCO's 100).
EVALUATION_MAX_DETECTIONS = 100


@dataclass
class ClassificationReport:
    """A classifier's results on a group.

    Attributes:
        classes: class names in output order.
        confusion: int [C, C] counts, rows the true class, columns the predicted one.
        accuracy: the share of images whose top class is right.
        per_class: ``{name: {"precision", "recall", "support"}}`` (precision None when never predicted).
        image_ids, truth, scores: the images, their true class indices and the model's outputs [N, C].
    """

    classes: list[str]
    confusion: np.ndarray
    accuracy: float
    per_class: dict[str, dict[str, Any]]
    image_ids: np.ndarray = field(repr=False)
    truth: np.ndarray = field(repr=False)
    scores: np.ndarray = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready values (without the per-image outputs)."""
        return {
            "task": "classification",
            "images": len(self.image_ids),
            "accuracy": self.accuracy,
            "classes": self.classes,
            "confusion": self.confusion.tolist(),
            "per_class": self.per_class,
        }


def classification_report(classes: list[str], truth: Any, scores: Any, image_ids: Any) -> ClassificationReport:
    """Confusion matrix, accuracy and per-class precision/recall from softmax outputs [N, C]."""
    truth = np.asarray(truth, np.int64)
    scores = np.asarray(scores, np.float64)
    predicted = scores.argmax(axis=1)
    n = len(classes)
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    per_class = {}
    for k, name in enumerate(classes):
        predicted_k, support = int(confusion[:, k].sum()), int(confusion[k].sum())
        per_class[name] = {
            "precision": float(confusion[k, k] / predicted_k) if predicted_k else None,
            "recall": float(confusion[k, k] / support) if support else None,
            "support": support,
        }
    accuracy = float(np.trace(confusion) / max(len(truth), 1))
    return ClassificationReport(list(classes), confusion, accuracy, per_class, np.asarray(image_ids), truth, scores)


def run_input(project: Any, settings: Any, plugin: Any, classes: list[str], batch_size: int = 1) -> Any:
    """The unaugmented input of a run's task on the project (`InputPipeline`): its test batches for
    evaluation, its train images for int8 calibration.

    Raises:
        InputError: the project has no usable train image for the task (see `class_samples`, `box_samples`).
    """
    from ..train.data import InputPipeline
    from ..train.samples import box_samples, class_samples

    shape = tuple(settings.input_size)
    if settings.task == "detection":
        samples, encode = box_samples(project, shape, classes), plugin.encoder(shape, len(classes))
    else:
        samples, encode = class_samples(project, classes), None
    preprocess = plugin.get_preprocess_function()
    return InputPipeline(project, samples, shape, batch_size, preprocess, None, 0, encode=encode)


def evaluate_run(
    project: Any,
    run: int | str = "last",
    *,
    executor: Callable[[Any], Any] | None = None,
    batch_size: int = 32,
    score_threshold: float = EVALUATION_SCORE_THRESHOLD,
    max_detections: int = EVALUATION_MAX_DETECTIONS,
) -> ClassificationReport | DetectionReport:
    """Evaluate a run's model on the project's test group.

    Args:
        project: an open `Project`.
        run: the run (number or ``"last"``); its settings say the model, input size and classes.
        executor: ``predict(batch of preprocessed inputs) -> outputs``; default: the run's final Keras model.
        batch_size: images per prediction.
        score_threshold, max_detections: detection only: the decoder's threshold and cap for mAP.

    Returns:
        A `ClassificationReport` or a `DetectionReport`.

    Raises:
        InputError: the test group holds no usable image, or the run has no final model.
        NotFoundError: no such run.
    """
    from ..models import registry
    from ..train import TrainingSettings
    from ..train.trainer import load_run_model, plugin_params

    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    shape, classes = tuple(settings.input_size), list(record.labels)
    detection = settings.task == "detection"
    inputs = run_input(project, settings, plugin, classes, batch_size)
    samples = inputs.samples
    if not samples.test_count:
        what = "boxes" if detection else "a full-image label of the run's classes"
        raise InputError(
            f"the test group of {project.path.name} holds no image with {what}; put images in it (eiq project split)"
        )
    if executor is None:
        model = load_run_model(project, record.id)

        def executor(batch: Any) -> Any:
            return model.predict_on_batch(batch)

    outputs = np.concatenate([np.asarray(executor(x)) for x, _ in inputs.test_dataset()])
    if not detection:
        ids, truth = samples.test
        return classification_report(classes, truth, outputs, ids)
    params = plugin_params(plugin, settings)
    decode = plugin.decoder(
        shape, len(classes), score_threshold=score_threshold, iou_threshold=params.get("iou_threshold"),
        max_detections=max_detections,
    )  # fmt: skip
    _, test_boxes, test_classes = samples.test
    truth = [ImageBoxes(b, c) for b, c in zip(test_boxes, test_classes)]
    predictions = [ImageBoxes(b, c, s) for b, s, c in decode(outputs)]
    return detection_metrics(truth, predictions, classes, max_detections=max_detections)
