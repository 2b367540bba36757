"""Training settings: one dataclass with the guide's recommended defaults, stored as JSON with a run.

CLI flags, widgets and notebooks all build a `TrainingSettings`; `check()` names every bad value.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError

#: The optimizers the guide lists (section 3.7.4), by the names the CLI takes.
OPTIMIZERS = ("sgd", "adagrad", "adadelta", "rmsprop", "adam", "adamax", "nadam")
TASKS = ("classification", "detection")
STOP_KINDS = ("improvement_ends", "stop_at_target", "improvement_ends_after_target")


def _choice(value: Any, valid: tuple[str, ...], what: str) -> str:
    text = str(value).strip().lower().replace("-", "_")
    if text not in valid:
        raise InputError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return text


@dataclass
class StopCondition:
    """When training without an epoch limit ends (the guide's "Set Stop Condition").

    Attributes:
        kind: ``improvement_ends`` (no improvement for `patience` epochs), ``stop_at_target`` (the
            monitored value reaches `target`) or ``improvement_ends_after_target`` (no improvement for
            `patience` epochs once `target` was reached).
        on: ``train`` or ``test``: which group's value is watched.
        monitor: ``metric`` (accuracy; higher is better) or ``loss`` (lower is better).
        target: the value to reach (``stop_at_target`` and ``improvement_ends_after_target``).
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
    """

    kind: str = "improvement_ends"
    on: str = "test"
    monitor: str = "metric"
    target: float | None = None
    patience: int = 5
    min_delta: float = 0.0

    def check(self) -> None:
        self.kind = _choice(self.kind, STOP_KINDS, "stop condition")
        self.on = _choice(self.on, ("train", "test"), "stop condition group (on)")
        self.monitor = _choice(self.monitor, ("metric", "loss"), "stop condition monitor")
        if self.kind != "improvement_ends" and self.target is None:
            raise InputError(f"stop condition {self.kind} needs a target value (--stop-target)")
        if self.patience < 1:
            raise InputError(f"stop condition patience must be at least 1 epoch; received {self.patience}")
        if self.min_delta < 0:
            raise InputError(f"stop condition min_delta must be >= 0; received {self.min_delta}")


@dataclass
class LearningRateDecay:
    """Exponential decay: lr = lr0 * rate ** (step / decay_steps).

    Attributes:
        rate: the decay rate in (0, 1]; the lower, the quicker the rate falls.
        epochs: decay over this many epochs (steps = epochs x steps per epoch), or
        steps: over this many steps (set one of the two).
    """

    rate: float = 0.9
    epochs: int | None = 1
    steps: int | None = None

    def check(self) -> None:
        if not 0 < self.rate <= 1:
            raise InputError(f"learning rate decay rate must be in (0, 1]; received {self.rate}")
        if (self.epochs is None) == (self.steps is None):
            raise InputError("learning rate decay needs either epochs or steps (exactly one)")
        count = self.epochs if self.epochs is not None else self.steps
        if count < 1:
            raise InputError(f"learning rate decay epochs/steps must be at least 1; received {count}")


@dataclass
class PruneSettings:
    """Magnitude pruning (the guide's "Enable pruning").

    Attributes:
        mode: ``during`` (prune while training) or ``after`` (fine-tune the trained model with pruning).
        sparsity: the final fraction of zero weights in the pruned kernels.
        begin_step, end_step: the pruning schedule's steps, counted from 0 when pruning starts;
            `end_step` ``None`` means one epoch's steps (the guide's default).
        frequency: prune every this many steps; ``None`` picks the largest divisor of
            (end - begin) that prunes at least five times, so the final sparsity is reached.
        epochs: fine-tuning epochs (``after`` mode).
        layers: layer names to prune (empty: every prunable layer).
    """

    mode: str = "after"
    sparsity: float = 0.5
    begin_step: int = 0
    end_step: int | None = None
    frequency: int | None = None
    epochs: int = 2
    layers: list[str] = field(default_factory=list)

    def schedule(self, steps_per_epoch: int) -> tuple[int, int, int]:
        """(begin, end, frequency) with the defaults filled in for this many steps per epoch."""
        end = self.end_step if self.end_step is not None else self.begin_step + steps_per_epoch
        if end <= self.begin_step:
            raise InputError(f"pruning end step ({end}) must be after the begin step ({self.begin_step})")
        frequency = self.frequency
        if frequency is None:
            span = end - self.begin_step
            frequency = max(d for d in range(1, max(1, span // 5) + 1) if span % d == 0)
        return self.begin_step, end, frequency

    def check(self) -> None:
        self.mode = _choice(self.mode, ("during", "after"), "pruning mode")
        if not 0 < self.sparsity < 1:
            raise InputError(f"pruning sparsity must be between 0 and 1 (exclusive); received {self.sparsity}")
        if self.begin_step < 0:
            raise InputError(f"pruning begin step must be >= 0; received {self.begin_step}")
        if self.end_step is not None and self.end_step <= self.begin_step:
            raise InputError(f"pruning end step ({self.end_step}) must be after the begin step ({self.begin_step})")
        if self.frequency is not None and self.frequency < 1:
            raise InputError(f"pruning frequency must be at least 1 step; received {self.frequency}")
        if self.mode == "after" and self.epochs < 1:
            raise InputError(f"pruning after training needs at least 1 fine-tuning epoch; received {self.epochs}")


@dataclass
class ClusterSettings:
    """Weight clustering (the guide's "Enable clustering"), always fine-tuning a trained model.

    Attributes:
        clusters: distinct values per clustered kernel.
        epochs: fine-tuning epochs.
        layers: layer names to cluster (empty: every clusterable layer).
    """

    clusters: int = 16
    epochs: int = 2
    layers: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.clusters < 2:
            raise InputError(f"clustering needs at least 2 clusters; received {self.clusters}")
        if self.epochs < 1:
            raise InputError(f"clustering needs at least 1 fine-tuning epoch; received {self.epochs}")


@dataclass
class TrainingSettings:
    """Everything a training run needs besides the project; stored as JSON with every run.

    Defaults are the guide's recommended settings (section 3.7.5): ImageNet weights, 128x128x3,
    learning rate 1e-4, batch 10, alpha 0.5, Adam.

    Attributes:
        task: ``classification`` or ``detection``.
        model: a registered model name; ``None`` takes the wizard's balanced choice for the task.
        alpha: the width multiplier, for models that expose one.
        model_params: the model's other exposed parameters.
        input_size: (height, width, channels), Keras order.
        weights: ``imagenet``, ``random`` or a weights file path.
        optimizer: one of `OPTIMIZERS`.
        learning_rate: the initial learning rate.
        decay: learning-rate decay, or ``None``.
        batch_size: images per step.
        epochs: epochs to train, or ``None`` for no limit (then `stop` is required).
        stop: a stop condition, or ``None``.
        augmentation: a pipeline name (a preset or one stored in the project).
        qat_epochs: quantization-aware fine-tuning epochs after training (0: none; classification only).
        prune: pruning settings, or ``None``.
        cluster: clustering settings, or ``None``.
        seed: the seed of shuffling, augmentation and initialisation (``None``: drawn, then recorded).
    """

    task: str = "classification"
    model: str | None = None
    alpha: float | None = 0.5
    model_params: dict[str, Any] = field(default_factory=dict)
    input_size: tuple[int, int, int] = (128, 128, 3)
    weights: str = "imagenet"
    optimizer: str = "adam"
    learning_rate: float = 1e-4
    decay: LearningRateDecay | None = None
    batch_size: int = 10
    epochs: int | None = 10
    stop: StopCondition | None = None
    augmentation: str = "default"
    qat_epochs: int = 0
    prune: PruneSettings | None = None
    cluster: ClusterSettings | None = None
    seed: int | None = None

    def check(self) -> TrainingSettings:
        """Normalise and check every value; returns self.

        Raises:
            InputError: naming the setting, what was expected and what was received.
        """
        self.task = _choice(self.task, TASKS, "task")
        self.optimizer = _choice(self.optimizer, OPTIMIZERS, "optimizer")
        self.input_size = parse_input_size(self.input_size)
        if self.weights is None or str(self.weights).lower() in ("none", "random"):
            self.weights = "random"
        elif str(self.weights).lower() == "imagenet":
            self.weights = "imagenet"
        if not (isinstance(self.learning_rate, int | float) and math.isfinite(self.learning_rate)) or not (
            self.learning_rate > 0
        ):
            raise InputError(f"learning rate must be a positive number; received {self.learning_rate!r}")
        if int(self.batch_size) != self.batch_size or self.batch_size < 1:
            raise InputError(f"batch size must be a positive integer; received {self.batch_size!r}")
        if self.epochs is not None and (int(self.epochs) != self.epochs or self.epochs < 1):
            raise InputError(
                f"epochs must be a positive integer, or none with a stop condition; received {self.epochs}"
            )
        if self.epochs is None and self.stop is None:
            raise InputError("training without an epoch limit needs a stop condition (--stop ...)")
        if self.alpha is not None and not self.alpha > 0:
            raise InputError(f"alpha must be a positive number; received {self.alpha}")
        if self.qat_epochs < 0:
            raise InputError(f"QAT epochs must be >= 0; received {self.qat_epochs}")
        if self.qat_epochs and self.task != "classification":
            raise InputError("quantization-aware training (QAT) is available for classification models only")
        for part in (self.decay, self.stop, self.prune, self.cluster):
            if part is not None:
                part.check()
        if self.prune is not None and self.cluster is not None:
            raise InputError(
                "pruning and clustering cannot be combined (as in eIQ Portal); choose one of --prune or --cluster"
            )
        if self.seed is not None and not 0 <= int(self.seed) < 2**31:
            raise InputError(f"seed must be in 0 .. 2**31 - 1; received {self.seed}")
        return self

    def phases(self) -> list[tuple[str, int | None]]:
        """The run's phases in order, with their epochs (``None``: until the stop condition)."""
        out: list[tuple[str, int | None]] = [("train", self.epochs)]
        if self.prune is not None and self.prune.mode == "after":
            out.append(("prune", self.prune.epochs))
        if self.cluster is not None:
            out.append(("cluster", self.cluster.epochs))
        if self.qat_epochs:
            out.append(("qat", self.qat_epochs))
        return out

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON data (what a run stores)."""
        data = dataclasses.asdict(self)
        data["input_size"] = list(self.input_size)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainingSettings:
        """Settings from `to_json` data; unknown keys are refused, naming the valid ones."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise InputError(
                f"unknown training setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(names))}"
            )
        parts = {"decay": LearningRateDecay, "stop": StopCondition, "prune": PruneSettings, "cluster": ClusterSettings}
        values = dict(data)
        for key, kind in parts.items():
            if isinstance(values.get(key), dict):
                values[key] = _from_dict(kind, values[key], key)
        if "input_size" in values:
            values["input_size"] = tuple(values["input_size"])
        return cls(**values)

    def replace(self, **changes: Any) -> TrainingSettings:
        """A copy with some settings changed."""
        return dataclasses.replace(self, **changes)


def _from_dict(kind: type, data: dict[str, Any], what: str) -> Any:
    names = {f.name for f in dataclasses.fields(kind)}
    unknown = set(data) - names
    if unknown:
        raise InputError(f"unknown {what} setting(s) {', '.join(sorted(unknown))}; valid: {', '.join(sorted(names))}")
    return kind(**data)


def parse_input_size(value: Any) -> tuple[int, int, int]:
    """``"96,96,3"``, ``(96, 96, 3)`` -> ``(96, 96, 3)``: (height, width, channels), Keras order.

    Raises:
        InputError: not three positive integers with channels 1 or 3.
    """
    parts = value.replace("x", ",").split(",") if isinstance(value, str) else value
    try:
        size = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise InputError(f"input size must be (H, W, C), e.g. 128,128,3; received {value!r}") from None
    if len(size) != 3 or size[0] < 1 or size[1] < 1 or size[2] not in (1, 3):
        raise InputError(f"input size must be (H, W, C) with C in (1, 3); received {tuple(size)}")
    return size  # type: ignore[return-value]
