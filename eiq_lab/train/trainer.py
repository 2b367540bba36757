"""The Trainer: trains a registered model on a project's images, phase by phase (train, then pruning,
clustering or QAT fine-tuning), with a checkpoint per epoch, stop at any step, continue and restore.
"""

from __future__ import annotations

import random
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import framework
from ..errors import EiqError, InputError, Stopped
from ..events import Progress, as_progress
from . import checkpoint
from .data import InputPipeline
from .samples import BoxSamples, ClassSamples, box_samples, class_samples
from .settings import TrainingSettings
from .stopping import StopMonitor

#: `fit`'s epoch bound when training runs until a stop condition.
_OPEN_ENDED = 10**6


@dataclass
class TrainingResult:
    """What `Trainer.fit` did.

    Attributes:
        run: the run's number in the project.
        state: ``finished`` or ``stopped`` (by request; continue it later).
        epoch: the last finished (checkpointed) epoch.
        metrics: that epoch's metrics (``loss``, ``accuracy``, ``test_loss``, ``test_accuracy``).
        summary: the run's stored summary (best values, phases, sparsity, ...).
        message: why training ended.
        model: the final Keras model (``None`` when stopped).
    """

    run: int
    state: str
    epoch: int
    metrics: dict[str, float] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    model: Any = None

    @property
    def stopped(self) -> bool:
        return self.state == "stopped"


def plugin_params(plugin: Any, settings: TrainingSettings) -> dict[str, Any]:
    """The model parameters a run's settings give its plugin (``alpha`` and ``model_params``), checked
    and completed with the plugin's defaults."""
    params = dict(settings.model_params)
    exposed = {p["name"] for p in plugin.get_exposed_parameters()}
    if "alpha" in exposed and settings.alpha is not None:
        params.setdefault("alpha", settings.alpha)
    return plugin.validate_params(params)


def make_optimizer(settings: TrainingSettings, steps_per_epoch: int) -> Any:
    """The Keras optimizer the settings name, with the learning-rate decay if any."""
    keras = framework.keras()
    rate: Any = settings.learning_rate
    decay = settings.decay
    if decay is not None:
        steps = decay.steps if decay.steps is not None else decay.epochs * steps_per_epoch
        rate = keras.optimizers.schedules.ExponentialDecay(settings.learning_rate, steps, decay.rate)
    kinds = {
        "sgd": keras.optimizers.SGD,
        "adagrad": keras.optimizers.Adagrad,
        "adadelta": keras.optimizers.Adadelta,
        "rmsprop": keras.optimizers.RMSprop,
        "adam": keras.optimizers.Adam,
        "adamax": keras.optimizers.Adamax,
        "nadam": keras.optimizers.Nadam,
    }
    return kinds[settings.optimizer](learning_rate=rate)


def _split_callbacks(callbacks: Any) -> tuple[list[Any], list[Any]]:
    """User callbacks -> (event observers, Keras callbacks)."""
    if callbacks is None:
        return [], []
    if callable(callbacks) and not isinstance(callbacks, Iterable):
        callbacks = [callbacks]
    keras = framework.keras()
    observers, keras_callbacks = [], []
    for cb in callbacks:
        (keras_callbacks if isinstance(cb, keras.callbacks.Callback) else observers).append(cb)
    return observers, keras_callbacks


def _parse_checkpoint_ref(ref: str) -> tuple[str, str]:
    run, sep, epoch = str(ref).partition(":")
    if not sep or not run or not epoch:
        raise InputError(f"a checkpoint is RUN:EPOCH (e.g. 3:12, last:last); received {ref!r}")
    return run, epoch


class Trainer:
    """Trains a model on a project and records the run in it.

    Args:
        project: an open `Project`.
        settings: the training settings (default: the guide's recommended ones).
        restore: start from a stored checkpoint, ``"RUN:EPOCH"`` (``"3:12"``, ``"last:last"``); the new
            run keeps that run's model, input size and classes.
        strategy: a `tf.distribute` strategy (default: TensorFlow's, which uses the GPU when present).

    Example:
        >>> from eiq_lab.train import Trainer, TrainingSettings
        >>> t = Trainer(project, TrainingSettings(weights="random", epochs=3))  # doctest: +SKIP
        >>> result = t.fit(callbacks=[print])  # doctest: +SKIP
    """

    def __init__(
        self,
        project: Any,
        settings: TrainingSettings | None = None,
        *,
        restore: str | None = None,
        strategy: Any = None,
    ):
        self.project = project
        self.restore = restore
        self.strategy = strategy
        self.run_id: int | None = None
        self._continue_from: Any = None  # the CheckpointRecord a continued run resumes after
        self._progress = Progress()
        if restore is not None:
            settings = self._restore_settings(restore, settings)
        self.settings = (settings or TrainingSettings()).check()

    @classmethod
    def resume(cls, project: Any, run: int | str = "last", *, strategy: Any = None) -> Trainer:
        """A trainer that continues a stopped run from its last checkpoint (same settings, same seed).

        Raises:
            NotFoundError: no such run.
            InputError: the run finished, or has no checkpoint to continue from.
        """
        record = project.run(run)
        if record.state == "finished":
            raise InputError(
                f"run {record.id} finished; nothing to continue. Train a new run, or start one from a checkpoint "
                f"with --restore {record.id}:{record.last_epoch}"
            )
        trainer = cls(project, TrainingSettings.from_json(record.settings), strategy=strategy)
        trainer.run_id = record.id
        trainer._classes = record.labels
        trainer._continue_from = project.checkpoint(record.id, "last") if record.epochs else None
        return trainer

    def stop(self) -> None:
        """Ask a running `fit` to stop after the current step (safe from another thread)."""
        self._progress.stop()

    # -- preparation: every check before anything is written ---------------------------------

    def _restore_settings(self, ref: str, settings: TrainingSettings | None) -> TrainingSettings:
        run, epoch = _parse_checkpoint_ref(ref)
        source = self.project.run(run)
        record = self.project.checkpoint(source.id, epoch)
        stored = TrainingSettings.from_json(source.settings)
        if record.phase == "qat":
            train_end = source.summary.get("phase_ends", {}).get("train", "?")
            raise InputError(
                f"checkpoint {source.id}:{record.epoch} is a quantization-aware (QAT) model; restore an epoch of "
                f"its training phase (1-{train_end}) instead"
            )
        if settings is None:
            settings = stored.replace(seed=None)
        fixed = ("task", "model", "alpha", "model_params", "input_size")
        differ = [k for k in fixed if getattr(settings, k) != getattr(stored, k) and getattr(settings, k) is not None]
        if differ:
            raise InputError(
                f"checkpoint {source.id}:{record.epoch} holds a {stored.model} with "
                + ", ".join(f"{k}={getattr(stored, k)!r}" for k in differ)
                + "; a restored run keeps them (leave those settings out)"
            )
        self._restore_record = (source, record, stored)
        self._classes = source.labels
        return settings.replace(**{k: getattr(stored, k) for k in fixed})

    def _plugin(self) -> Any:
        from ..models import registry, wizard

        s = self.settings
        if s.model is None:
            s.model = wizard.default_model(s.task)
        plugin = registry().get(s.model, task=s.task)
        s.model = plugin.get_name()
        return plugin

    def _check_optimizations(self, plugin: Any) -> None:
        s = self.settings
        if s.qat_epochs and not plugin.get_qat_support():
            raise InputError(f"model {s.model} does not support quantization-aware training (QAT)")
        if s.optimizer not in [o.lower() for o in plugin.get_optimizers()]:
            raise InputError(f"model {s.model} offers the optimizers {', '.join(plugin.get_optimizers())}")
        if s.stop is not None and s.stop.monitor == "metric" and not plugin.get_metrics():
            raise InputError(
                f"model {s.model} reports no metric while training (a detector's quality is its mAP, from "
                "eiq evaluate); make the stop condition watch the loss (--stop-monitor loss)"
            )

    def _samples(self) -> ClassSamples | BoxSamples:
        s = self.settings
        classes = getattr(self, "_classes", None)
        if s.task == "classification":
            return class_samples(self.project, classes)
        samples = box_samples(self.project, tuple(s.input_size), classes)
        most = self.named_params.get("max_detections")
        if most is not None and samples.most_objects > most:
            self._progress.message(
                f"a train image holds {samples.most_objects} objects, more than the model's max_detections "
                f"({most}): training learns all of them, but the decoder returns at most {most} boxes per "
                "image (raise it with --param max_detections=N)"
            )
        return samples

    def _pipeline(self) -> Any:
        from ..augment import get_pipeline

        pipeline = get_pipeline(self.project, self.settings.augmentation)
        return pipeline if pipeline.steps else None

    def _weights_argument(self) -> Any:
        w = self.settings.weights
        if self.restore is not None or self._continue_from is not None:
            return None
        if w == "random":
            return None
        if w != "imagenet" and not Path(w).is_file():
            raise InputError(f"weights must be imagenet, random or a weights file; {w} is not a file")
        return w

    # -- models of each phase ----------------------------------------------------------------

    def _build(self, phase: str, steps_per_epoch: int, weights: Any, init: list | None = None) -> Any:
        """The phase's model: the plugin's model (with `init` plain weights, if given), wrapped for
        pruning, clustering or QAT as the phase needs."""
        from . import optimize

        keras = framework.keras()
        s = self.settings
        keras.backend.experimental.enable_tf_random_generator()
        # initial weights and dropout generators depend on (seed, phase) only: continuing is exact
        keras.utils.set_random_seed(s.seed + _PHASES.index(phase))
        model = self._plugin_model(weights)
        if init is not None:
            try:
                model.set_weights(init)
            except ValueError as exc:
                raise InputError(f"the restored weights do not fit the model ({exc})") from None
        return self._wrap(model, phase, steps_per_epoch, optimize)

    def _plugin_model(self, weights: Any) -> Any:
        """The plugin's model; a plugin that fails (a weights file that does not fit, ...) is named."""
        s = self.settings
        shape, classes = tuple(s.input_size), len(self.samples.classes)
        try:
            return self.plugin.get_model(shape, classes, weights, self.named_params)
        except EiqError:
            raise
        except Exception as exc:
            source = f" with weights {weights}" if weights not in (None, "imagenet") else ""
            raise InputError(
                f"model {s.model} could not be built for input {shape} and {classes} classes{source}: {exc}"
            ) from None

    def _wrap(self, model: Any, phase: str, steps_per_epoch: int, optimize: Any) -> Any:
        s = self.settings
        prune = s.prune
        if prune is not None and (phase == "prune" or (phase == "train" and prune.mode == "during")):
            begin, end, frequency = prune.schedule(steps_per_epoch)
            return optimize.prune_wrap(
                model,
                final_sparsity=prune.sparsity,
                begin_step=begin,
                end_step=end,
                frequency=frequency,
                layers=prune.layers or None,
            )
        if phase == "cluster":
            return optimize.cluster_wrap(model, clusters=s.cluster.clusters, layers=s.cluster.layers or None)
        if phase == "qat":
            preserve = "prune" if prune is not None else "cluster" if s.cluster is not None else None
            return optimize.qat_wrap(model, preserve=preserve)
        return model

    def _compile(self, model: Any, steps_per_epoch: int) -> None:
        # a plugin with its own loss function (a detector's multibox loss) gives it by `loss()`; else the
        # first of `get_losses()` is a loss Keras knows by name
        own_loss = getattr(self.plugin, "loss", None)
        loss = own_loss() if callable(own_loss) else self.plugin.get_losses()[0]
        metrics = self.plugin.get_metrics()[:1]
        model.compile(optimizer=make_optimizer(self.settings, steps_per_epoch), loss=loss, metrics=metrics)

    def _restored_weights(self) -> list[Any]:
        """Plain-model weights of the checkpoint a restored run starts from."""
        from . import optimize

        source, record, stored = self._restore_record
        other = Trainer.__new__(Trainer)
        other.project, other.settings, other.plugin = self.project, stored, self.plugin
        other.named_params, other.samples = self.named_params, self.samples
        with self._scope():
            model = other._build(record.phase, _OPEN_ENDED, None)
            weights, _ = self.project.checkpoint_data(source.id, record.epoch)
            checkpoint.load_weights(model, weights, f"checkpoint {source.id}:{record.epoch}")
            return optimize.strip(model).get_weights()

    def _scope(self) -> Any:
        tf = framework.tf()
        return (self.strategy or tf.distribute.get_strategy()).scope()

    # -- fit -------------------------------------------------------------------------------

    def fit(self, callbacks: Any = None, *, progress: Any = None) -> TrainingResult:
        """Train (or continue) the run, phase by phase, checkpointing every epoch.

        Args:
            callbacks: event observers (called with every `Event`: ``advance`` per step and ``epoch``
                per epoch, with metrics in ``data``) and/or Keras callbacks.
            progress: a `Progress` (or observer) to report to; its stop request stops training.

        Returns:
            The `TrainingResult`; ``state == "stopped"`` when stopped by request (continue it later).

        Raises:
            InputError: a setting, the project's images or a plugin is not usable (nothing is written).
        """
        observers, keras_callbacks = _split_callbacks(callbacks)
        self._progress = progress = as_progress(progress) if progress is not None else self._progress
        progress.observers.extend(observers)
        s = self.settings
        # every check that can fail on the user's input runs before the run is recorded
        self.plugin = self._plugin()
        self.named_params = plugin_params(self.plugin, s)
        self.plugin.check_input_shape(tuple(s.input_size), None if s.weights == "random" else s.weights)
        self._check_optimizations(self.plugin)
        self.samples = self._samples()
        if s.stop is not None and s.stop.on == "test" and not self.samples.test_count:
            raise InputError("the stop condition watches the test group, which is empty; run eiq project split")
        pipeline = self._pipeline()
        weights_argument = self._weights_argument()
        if s.seed is None:
            s.seed = random.randrange(2**31)
        for reason, count in self.samples.skipped.items():
            progress.message(f"left out {count} {reason}", count=count)
        init = self._restored_weights() if self.restore is not None and self.run_id is None else None
        encode = None
        if s.task == "detection":
            encode = self.plugin.encoder(tuple(s.input_size), len(self.samples.classes))
        inputs = InputPipeline(
            self.project, self.samples, tuple(s.input_size), s.batch_size,
            self.plugin.get_preprocess_function(), pipeline, s.seed, encode=encode,
        )  # fmt: skip
        phase_ends: dict[str, int] = {}
        if self.run_id is not None:
            phase_ends = dict(self.project.run(self.run_id).summary.get("phase_ends", {}))
        pending = [phase for phase, _ in s.phases() if phase not in phase_ends]
        resume = self._continue_from
        # the first model is built before the run is recorded: a plugin or weights file that fails leaves
        # the project as it was
        with self._scope():
            first = pending[0] if pending else resume.phase
            model = self._phase_model(first, inputs.steps_per_epoch, None, resume, weights_argument, init)
        if self.run_id is None:
            parent = None
            if self.restore is not None:
                source, record, _ = self._restore_record
                parent = f"{source.id}:{record.epoch}"
            self.run_id = self.project.create_run(s.task, s.model, s.to_json(), self.samples.classes, parent=parent)
        else:
            self.project.update_run(self.run_id, state="running", message="")
        try:
            return self._fit_phases(inputs, model, phase_ends, keras_callbacks, progress)
        except Stopped as exc:
            last = self._last_epoch()
            message = f"stopped by request after epoch {last}" if last else "stopped by request before epoch 1 ended"
            self.project.update_run(self.run_id, state="stopped", message=message)
            progress.message(f"{exc}; continue with `eiq train {self.project.path} --continue`")
            return TrainingResult(
                self.run_id, "stopped", last, self._last_metrics(), self.project.run(self.run_id).summary, message
            )
        except KeyboardInterrupt:
            self.project.update_run(self.run_id, state="stopped", message="interrupted")
            raise
        except BaseException as exc:
            self.project.update_run(self.run_id, state="failed", message=str(exc) or type(exc).__name__)
            raise

    def _last_epoch(self) -> int:
        return self.project.run(self.run_id).last_epoch

    def _last_metrics(self) -> dict[str, float]:
        epochs = self.project.run_metrics(self.run_id)
        return epochs[-1][2] if epochs else {}

    def _phase_model(
        self, phase: str, steps: int, previous: Any, resume: Any, weights_argument: Any, init: list | None
    ) -> Any:
        """Build and compile the model a phase trains, from where the run stands."""
        from . import optimize

        source = f"run {self.run_id} epoch {resume.epoch}" if resume is not None else ""
        if resume is not None and resume.phase == phase:  # continue inside this phase
            # a later phase is wrapped around the previous phase's final weights, as when it began:
            # sparsity- and cluster-preserving wrappers read their masks and centroids from them
            model = self._build(phase, steps, None, init=self._previous_phase_weights(phase, steps))
            weights, opt_state = self.project.checkpoint_data(self.run_id, resume.epoch)
            checkpoint.load_weights(model, weights, source)
            self._compile(model, steps)
            if opt_state is not None:
                checkpoint.load_optimizer(model.optimizer, model, opt_state, source)
            return model
        if previous is None and resume is not None:  # continue at a phase boundary
            previous = self._build(resume.phase, steps, None)
            checkpoint.load_weights(previous, self.project.checkpoint_data(self.run_id, resume.epoch)[0], source)
        if previous is not None:  # a later phase starts from the previous phase's weights
            model = self._build(phase, steps, None, init=optimize.strip(previous).get_weights())
        else:
            model = self._build(phase, steps, weights_argument, init=init)
        self._compile(model, steps)
        return model

    def _previous_phase_weights(self, phase: str, steps: int) -> list | None:
        """Plain weights the phase started from (``None`` for the first phase)."""
        from . import optimize

        names = [p for p, _ in self.settings.phases()]
        if names.index(phase) == 0:
            return None
        previous = names[names.index(phase) - 1]
        ends = self.project.run(self.run_id).summary.get("phase_ends", {})
        model = self._build(previous, steps, None)
        source = f"run {self.run_id} epoch {ends[previous]}"
        checkpoint.load_weights(model, self.project.checkpoint_data(self.run_id, ends[previous])[0], source)
        return optimize.strip(model).get_weights()

    def _fit_phases(
        self, inputs: InputPipeline, model: Any, phase_ends: dict[str, int], keras_callbacks: list, progress: Progress
    ) -> TrainingResult:
        from . import optimize
        from .callbacks import run_callback

        s = self.settings
        steps = inputs.steps_per_epoch
        test = inputs.test_dataset()
        resume = self._continue_from
        at = {"epoch": resume.epoch, "step": resume.step} if resume is not None else {"epoch": 0, "step": 0}
        ended_by = ""
        first = True
        for phase, count in s.phases():
            if phase in phase_ends:  # finished before this continue
                continue
            start = max(phase_ends.values(), default=0)
            end = start + count if count is not None else _OPEN_ENDED
            if not first:
                with self._scope():
                    model = self._phase_model(phase, steps, model, None, None, None)
            first = False
            monitor = None
            if phase == "train" and s.stop is not None:
                monitor = StopMonitor(s.stop, (self.plugin.get_metrics() or ["loss"])[0])
                for _, number, metrics in self.project.run_metrics(self.run_id):  # replay a continued run
                    monitor.update(number, metrics)
            stop_reason: list[str] = []

            def save(number: int, step: int, metrics: dict, step_metrics: list, phase=phase, model=model) -> None:
                self.project.add_checkpoint(
                    self.run_id, number, phase, step=step, metrics=metrics,
                    weights=checkpoint.pack_weights(model), optimizer=checkpoint.pack_optimizer(model.optimizer),
                    step_metrics=step_metrics,
                )  # fmt: skip
                at["epoch"], at["step"] = number, step

            if at["epoch"] < end:
                run_cb = run_callback(
                    progress=progress, phase=phase, first_step=at["step"], save=save, monitor=monitor,
                    on_stop=stop_reason.append,
                )  # fmt: skip
                extra = optimize.prune_callbacks() if self._is_pruning(phase) else []
                progress.start(phase, total=(end - at["epoch"]) * steps if count is not None else None)
                model.fit(
                    inputs.train_dataset(at["epoch"], end - 1 if count is not None else None),
                    steps_per_epoch=steps,
                    epochs=end,
                    initial_epoch=at["epoch"],
                    validation_data=test,
                    callbacks=[run_cb, *extra, *keras_callbacks],
                    verbose=0,
                )
                progress.end()
            phase_ends[phase] = at["epoch"]
            if stop_reason:
                ended_by = stop_reason[0]
            self.project.update_run(self.run_id, summary={"phase_ends": phase_ends})
        return self._finish(model, phase_ends, ended_by)

    def _is_pruning(self, phase: str) -> bool:
        prune = self.settings.prune
        return prune is not None and (phase == "prune" or (phase == "train" and prune.mode == "during"))

    def _finish(self, model: Any, phase_ends: dict[str, int], ended_by: str) -> TrainingResult:
        from . import optimize

        final = optimize.strip(model)
        summary: dict[str, Any] = {"phase_ends": phase_ends}
        epochs = self.project.run_metrics(self.run_id)
        metrics = self.plugin.get_metrics()
        higher_is_better = bool(metrics)
        metric = metrics[0] if metrics else "loss"  # a model without a metric: the lowest loss is the best
        for key in (metric, f"test_{metric}"):
            values = [(m[key] if higher_is_better else -m[key], e) for _, e, m in epochs if key in m]
            if values:
                best, at = max(values)
                summary[f"best_{key}"] = {"value": best if higher_is_better else -best, "epoch": at}
        if self.settings.prune is not None:
            summary["sparsity"] = optimize.sparsity_report(final, self.settings.prune.layers or None)
        if self.settings.cluster is not None:
            layers = self.settings.cluster.layers or optimize.select_layers(
                final, None, "cluster", clusters=self.settings.cluster.clusters
            )
            summary["distinct_values"] = {name: optimize.distinct_values(final, name) for name in layers}
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.h5"
            with optimize.custom_objects_scope(), warnings.catch_warnings():
                # HDF5 is "legacy" to Keras but it is the format eIQ's converter and users' tools read
                warnings.simplefilter("ignore", UserWarning)
                final.save(path)
            self.project.set_run_model(self.run_id, "h5", path.read_bytes())
        message = ended_by or "finished all epochs"
        self.project.update_run(self.run_id, state="finished", message=message, summary=summary)
        last = epochs[-1] if epochs else (0, 0, {})
        return TrainingResult(
            self.run_id, "finished", last[1], last[2], self.project.run(self.run_id).summary, message, final
        )


_PHASES = ("train", "prune", "cluster", "qat")


def load_run_model(project: Any, run: int | str = "last") -> Any:
    """The final Keras model of a finished run, loaded from the project.

    Raises:
        NotFoundError: the run has no final model.
    """
    from . import optimize

    fmt, data = project.run_model(run)
    keras = framework.keras()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"model.{fmt}"
        path.write_bytes(data)
        try:
            with optimize.custom_objects_scope():
                return keras.models.load_model(path, compile=False)
        except (OSError, ValueError) as exc:
            raise EiqError(f"the model of run {project.resolve_run(run)} cannot be loaded: {exc}") from None
