"""Evaluate a model on a project's test group: a classifier's confusion matrix at a softmax threshold
(see `classification`), or a detector's mAP (see `detection`).

Images are read and preprocessed exactly as the trainer reads its test batches. What is evaluated is a
training run's model by default, or any model file (TFLite float or int8, ONNX, Keras): the run, or else
the file's own metadata, says the classes, input size and preprocessing. Predictions come from an
executor (`executors`): a callable from a batch of preprocessed inputs to the model's outputs, so a
converted model or a remote runner slot in the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from .classification import ClassificationReport, ClassificationResults
from .detection import DetectionReport, ImageBoxes, detection_metrics
from .executors import Executor, ModelLike, open_model

#: The score above which a detection counts for mAP: low, so the precision-recall curve is complete.
EVALUATION_SCORE_THRESHOLD = 0.01
#: Detections kept per image for mAP (COCO's 100).
EVALUATION_MAX_DETECTIONS = 100


def run_input(project: Any, settings: Any, plugin: Any, classes: list[str], batch_size: int = 1) -> Any:
    """The unaugmented input of a run's task on the project (`InputPipeline`): its test batches for
    evaluation, its train images for int8 calibration.

    Raises:
        InputError: the project has no usable train image for the task (see `class_samples`, `box_samples`).
    """
    return _input(project, settings.task, classes, tuple(settings.input_size), plugin.get_preprocess_function(),
                  plugin, batch_size)  # fmt: skip


def _input(
    project: Any, task: str, classes: list[str], shape: tuple, preprocess: Any, plugin: Any, batch_size: int
) -> Any:
    from ..train.data import InputPipeline
    from ..train.samples import box_samples, class_samples

    if task == "detection":
        samples, encode = box_samples(project, shape, classes), plugin.encoder(shape, len(classes))
    else:
        samples, encode = class_samples(project, classes), None
    return InputPipeline(project, samples, shape, batch_size, preprocess, None, 0, encode=encode)


@dataclass
class Subject:
    """What an evaluation needs to know of a model besides running it: from a training run, or from the
    metadata a model file carries (labels, normalization, input size, and for a detector its plugin).

    Attributes:
        task: ``classification`` or ``detection``.
        classes: class names in the order of the model's outputs.
        input_size: (height, width, channels).
        preprocess: the model's preprocessing of a uint8 HWC tensor.
        plugin: the model plugin (a detector's decoder and encoder come from it), or None.
        params: the plugin's parameters (a detector's IoU threshold).
        run: the training run, if the subject is one.
    """

    task: str
    classes: list[str]
    input_size: tuple[int, int, int]
    preprocess: Callable[[Any], Any] = field(repr=False)
    plugin: Any = field(default=None, repr=False)
    params: dict[str, Any] = field(default_factory=dict)
    run: int | None = None

    def input(self, project: Any, batch_size: int = 32) -> Any:
        """The project's images read as this subject's model takes them (`InputPipeline`)."""
        return _input(project, self.task, self.classes, self.input_size, self.preprocess, self.plugin, batch_size)


def run_subject(project: Any, run: int | str = "last") -> Subject:
    """The subject of a training run: its settings and classes.

    Raises:
        NotFoundError: no such run.
    """
    from ..models import registry
    from ..train import TrainingSettings
    from ..train.trainer import plugin_params

    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    return Subject(
        settings.task, list(record.labels), tuple(settings.input_size), plugin.get_preprocess_function(), plugin,
        plugin_params(plugin, settings), record.id,
    )  # fmt: skip


def model_subject(executor: Executor, labels: list[str] | None = None, normalization: str | None = None) -> Subject:
    """The subject of a model file evaluated on its own: classes from `labels` or the labels it carries,
    input size from its input, preprocessing from `normalization` or its metadata (default signed).

    Raises:
        InputError: no labels anywhere, an unknown normalization, or a detector whose plugin is unknown.
    """
    from ..models import registry
    from ..models.interfaces import NORMALIZATIONS

    metadata = executor.metadata
    classes = list(labels or executor.labels or [])
    if not classes:
        raise InputError(
            f"{executor.name} carries no labels; give the class names in output order (labels=[...]; eiq: --labels "
            "labels.txt) or evaluate the run it came from (--run)"
        )
    normalization = normalization or metadata.get("normalization", "signed")
    if normalization not in NORMALIZATIONS:
        raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; received {normalization!r}")
    task = metadata.get("task", "classification")
    plugin, params = None, {}
    if task == "detection":
        name = metadata.get("model")
        try:
            plugin = registry().get(name, task="detection")
        except InputError:
            raise InputError(
                f"{executor.name} is a detector of model {name!r}, which this installation does not know; its "
                "decoder is needed to read the boxes"
            ) from None
        params = plugin.validate_params({})
    return Subject(task, classes, executor.input_shape, NORMALIZATIONS[normalization][0], plugin, params)


def evaluate_run(
    project: Any,
    run: int | str | None = "last",
    *,
    model: ModelLike | None = None,
    executor: Callable[[Any], Any] | None = None,
    threshold: float = 0.0,
    labels: list[str] | None = None,
    normalization: str | None = None,
    batch_size: int = 32,
    score_threshold: float = EVALUATION_SCORE_THRESHOLD,
    max_detections: int = EVALUATION_MAX_DETECTIONS,
    trust_code: bool = False,
    progress: Progress | Observer | None = None,
) -> ClassificationReport | DetectionReport:
    """Evaluate a model on the project's test group.

    Args:
        project: an open `Project`.
        run: the training run whose model (and settings) are evaluated (number or ``"last"``); None to
            evaluate `model` on its own metadata (or `labels` and `normalization`).
        model: a model file (TFLite, ONNX, Keras .h5/.keras, SavedModel folder) or `Executor` to run
            instead of the run's Keras model; its input size and, if it has them, labels must match the run's.
        executor: any ``predict(batch of preprocessed inputs) -> outputs`` callable (a remote runner);
            overrides `model`.
        threshold: classification: the softmax threshold (below it, a prediction goes to the background
            column); ``report.results.report(t)`` recomputes at another threshold without running the model.
        labels, normalization: for a model evaluated without a run, when it does not carry them.
        batch_size: images per prediction.
        score_threshold, max_detections: detection only: the decoder's threshold and cap for mAP.
        trust_code: let a Keras file run the Python code it carries (Lambda layers).
        progress: observer or `Progress`: a stage of the test images, advanced a batch at a time; a stop
            request ends the evaluation at the next batch (`Stopped`).

    Returns:
        A `ClassificationReport` (with ``.results``, the cached predictions) or a `DetectionReport`.

    Raises:
        InputError: the test group holds no usable image, the model does not fit the run, or the run has no
            final model.
        NotFoundError: no such run.
    """
    from ..train.trainer import load_run_model

    runner = open_model(model, trust_code=trust_code) if model is not None and executor is None else None
    if run is None:
        if runner is None:
            raise InputError("evaluating without a run needs a model file (model=...; eiq: --model)")
        subject = model_subject(runner, labels, normalization)
    else:
        subject = run_subject(project, run)
        if runner is not None:
            _check_fits(runner, subject)
    detection = subject.task == "detection"
    inputs = subject.input(project, batch_size)
    samples = inputs.samples
    if not samples.test_count:
        what = "boxes" if detection else "a full-image label of the model's classes"
        raise InputError(
            f"the test group of {project.path.name} holds no image with {what}; put images in it (eiq project split)"
        )
    if executor is None:
        executor = runner or open_model(load_run_model(project, subject.run))
    progress = as_progress(progress)
    progress.start(f"evaluating {samples.test_count} test images", total=samples.test_count)
    batches = []
    for x, _ in inputs.test_dataset():
        batches.append(np.asarray(executor(x)))
        progress.advance(int(x.shape[0]))  # raises Stopped on a stop request
    progress.end()
    outputs = np.concatenate(batches)
    classes = subject.classes
    if not detection:
        ids, truth = samples.test
        return ClassificationResults(classes, truth, outputs, ids).report(threshold)
    decode = subject.plugin.decoder(
        subject.input_size, len(classes), score_threshold=score_threshold,
        iou_threshold=subject.params.get("iou_threshold"), max_detections=max_detections,
    )  # fmt: skip
    _, test_boxes, test_classes = samples.test
    truth = [ImageBoxes(b, c) for b, c in zip(test_boxes, test_classes)]
    predictions = [ImageBoxes(b, c, s) for b, s, c in decode(outputs)]
    return detection_metrics(truth, predictions, classes, max_detections=max_detections)


def _check_fits(runner: Executor, subject: Subject) -> None:
    """A model file evaluated in a run's place takes the run's input and gives its classes in its order."""
    if tuple(runner.input_shape) != tuple(subject.input_size):
        raise InputError(
            f"{runner.name} takes {tuple(runner.input_shape)} images; run {subject.run} was trained on "
            f"{tuple(subject.input_size)} (height, width, channels)"
        )
    if runner.labels is not None and runner.labels != subject.classes:
        raise InputError(
            f"{runner.name} carries the labels {runner.labels}; run {subject.run} has {subject.classes}: it is "
            "another model, or its labels are in another order"
        )
