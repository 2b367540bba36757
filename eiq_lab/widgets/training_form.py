"""The training settings form: a widget for every `TrainingSettings` value (the guide's section 3.7), shown
from settings and read back one setting at a time or all together, each bad entry named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import InputError
from ..train.settings import (
    OPTIMIZERS,
    STOP_KINDS,
    ClusterSettings,
    LearningRateDecay,
    PruneSettings,
    StopCondition,
    TrainingSettings,
)

#: The settings the form edits, in the order it reads them (the model and task come from Model selection).
SETTINGS = (
    "model_params",
    "alpha",
    "input_size",
    "weights",
    "optimizer",
    "learning_rate",
    "decay",
    "batch_size",
    "epochs",
    "stop",
    "augmentation",
    "qat_epochs",
    "prune",
    "cluster",
    "seed",
)


def _wide() -> dict[str, Any]:
    # a Layout of its own per widget: hiding one widget must not hide the others
    return {"style": {"description_width": "150px"}, "layout": w.Layout(width="310px")}


_STOP_NAMES = {
    "improvement_ends": "Improvement ends",
    "stop_at_target": "Stop at target",
    "improvement_ends_after_target": "Improvement ends after target",
}


def _float(description: str, value: float = 0.0) -> w.FloatText:
    return w.FloatText(value=value, description=description, **_wide())


def _int(description: str, value: int = 0) -> w.IntText:
    return w.IntText(value=value, description=description, **_wide())


def _text(description: str, placeholder: str = "") -> w.Text:
    return w.Text(value="", description=description, placeholder=placeholder, **_wide())


def _optional(widget: w.Text, kind: type, what: str) -> Any:
    """The number typed in `widget` (``None`` when empty)."""
    text = widget.value.strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        kind_name = "an integer" if kind is int else "a number"
        raise InputError(f"{what} must be {kind_name} or empty; received {text!r}") from None


def shown(widget: w.Widget, visible: bool) -> None:
    widget.layout.display = None if visible else "none"


def _literal(text: str) -> Any:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


class TrainingForm(w.VBox):
    """The settings widgets, in three sections (basics; decay and stop condition; QAT, pruning, clustering).

    `on_edit(name)` is called with the setting's name (``"learning_rate"``, ``"prune"``, ...) each time the user
    changes it; pruning and clustering exclude each other as in eIQ Portal. Each widget carries the CSS class
    ``eiq-training-<setting>`` (``eiq-training-learning-rate``).

    Args:
        layer_tools: widgets placed under the pruning and clustering settings (the panel's layer list).
    """

    def __init__(self, layer_tools: list[w.Widget] | tuple = (), **kwargs: Any):
        self.on_edit: Callable[[str], Any] | None = None
        self.layers: list[Any] = []  # the model's `LayerInfo`s, once listed
        self._loading = False
        self.model_params = _text("Model parameters", "NAME=VALUE, ...")
        self.alpha = _text("Alpha", "none: the model has no alpha")
        self.height, self.width = _int("Input height (H)", 128), _int("Input width (W)", 128)
        self.channels = _int("Input channels (C)", 3)
        self.weights = w.ToggleButtons(options=[("ImageNet", "imagenet"), ("Random", "random"), ("File", "file")])
        self.weights.style.button_width = "80px"
        self.weights_file = _text("Weights file", "path/to/weights.h5")
        self.weights_note = w.HTML(
            "<small>ImageNet weights are downloaded by Keras on first use: that needs network. Offline, choose "
            "Random or a weights file.</small>"
        )
        self.optimizer = w.Dropdown(
            options=[(name.capitalize(), name) for name in OPTIMIZERS], description="Optimizer", **_wide()
        )
        self.learning_rate = _float("Learning rate", 1e-4)
        self.decay_on = w.Checkbox(description="Learning rate decay", indent=False)
        self.decay_rate = _float("Decay rate", 0.9)
        self.decay_count = _int("Decay over", 1)
        self.decay_unit = w.ToggleButtons(options=["epochs", "steps"])
        self.decay_unit.style.button_width = "70px"
        self.batch_size = _int("Batch size", 10)
        self.epochs = _int("Epochs to train", 10)
        self.infinite = w.Checkbox(description="No epoch limit (until the stop condition)", indent=False)
        self.stop_on = w.Checkbox(description="Stop condition", indent=False)
        self.stop_kind = w.Dropdown(
            options=[(_STOP_NAMES[k], k) for k in STOP_KINDS], description="Condition", **_wide()
        )
        self.stop_group = w.Dropdown(
            options=[("Test", "test"), ("Train", "train")], description="Watch group", **_wide()
        )
        self.stop_monitor = w.Dropdown(
            options=[("Metric", "metric"), ("Loss", "loss")], description="Monitor", **_wide()
        )
        self.stop_target = _text("Target value", "needed by the target conditions")
        self.stop_patience = _int("Patience (epochs)", 5)
        self.stop_delta = _float("Min improvement", 0.0)
        self.augmentation = w.Dropdown(description="Augmentation", **_wide())
        self.qat_epochs = _int("QAT epochs (0: off)", 0)
        self.prune_on = w.Checkbox(description="Enable pruning", indent=False)
        self.prune_mode = w.Dropdown(
            options=[("Prune during training", "during"), ("Fine tune post training", "after")],
            description="Pruning type",
            **_wide(),
        )
        self.prune_sparsity = _float("Final sparsity", 0.5)
        self.prune_begin = _int("Begin step", 0)
        self.prune_end = _text("End step", "empty: one epoch's steps")
        self.prune_frequency = _text("Pruning frequency", "empty: automatic")
        self.prune_epochs = _int("Pruning epochs", 2)
        self.prune_layers = w.SelectMultiple(description="Layers", rows=6, **_wide())
        self.prune_layers.add_class("eiq-training-prune-layers")
        self.cluster_on = w.Checkbox(description="Enable clustering", indent=False)
        self.clusters = _int("Clusters", 16)
        self.cluster_epochs = _int("Clustering epochs", 2)
        self.cluster_layers = w.SelectMultiple(description="Layers", rows=6, **_wide())
        self.cluster_layers.add_class("eiq-training-cluster-layers")
        self.seed = _text("Seed", "empty: drawn, then recorded")
        self.decay_box = w.VBox([self.decay_rate, self.decay_count, self.decay_unit])
        self.stop_box = w.VBox(
            [self.stop_kind, self.stop_group, self.stop_monitor, self.stop_target, self.stop_patience, self.stop_delta]
        )
        self.prune_box = w.VBox(
            [
                self.prune_mode,
                self.prune_sparsity,
                self.prune_begin,
                self.prune_end,
                self.prune_frequency,
                self.prune_epochs,
                self.prune_layers,
            ]
        )
        self.cluster_box = w.VBox([self.clusters, self.cluster_epochs, self.cluster_layers])
        basics = w.VBox(
            [
                self.alpha,
                self.model_params,
                self.height,
                self.width,
                self.channels,
                w.HTML("Weights initialization"),
                self.weights,
                self.weights_file,
                self.weights_note,
                self.optimizer,
                self.learning_rate,
                self.batch_size,
                self.epochs,
                self.augmentation,
                self.seed,
            ]
        )
        schedule = w.VBox([self.decay_on, self.decay_box, self.infinite, self.stop_on, self.stop_box])
        optimization = w.VBox(
            [self.qat_epochs, self.prune_on, self.prune_box, self.cluster_on, self.cluster_box, *layer_tools]
        )
        self.sections = w.Accordion([basics, schedule, optimization], selected_index=0)
        for index, name in enumerate(
            ("Training settings", "Learning rate decay and stop condition", "QAT, pruning and clustering")
        ):
            self.sections.set_title(index, name)
        # which draft setting each widget edits: an edit saves that setting alone, so settings other panels
        # wrote meanwhile (the model, the augmentation pipeline) are kept
        groups = {
            "model_params": [self.model_params],
            "alpha": [self.alpha],
            "input_size": [self.height, self.width, self.channels],
            "weights": [self.weights, self.weights_file],
            "optimizer": [self.optimizer],
            "learning_rate": [self.learning_rate],
            "decay": [self.decay_on, self.decay_rate, self.decay_count, self.decay_unit],
            "batch_size": [self.batch_size],
            "epochs": [self.epochs, self.infinite],
            "stop": [
                self.stop_on,
                self.stop_kind,
                self.stop_group,
                self.stop_monitor,
                self.stop_target,
                self.stop_patience,
                self.stop_delta,
            ],
            "augmentation": [self.augmentation],
            "qat_epochs": [self.qat_epochs],
            "prune": [
                self.prune_on,
                self.prune_mode,
                self.prune_sparsity,
                self.prune_begin,
                self.prune_end,
                self.prune_frequency,
                self.prune_epochs,
                self.prune_layers,
            ],
            "cluster": [self.cluster_on, self.clusters, self.cluster_epochs, self.cluster_layers],
            "seed": [self.seed],
        }
        self.widgets = [widget for widgets in groups.values() for widget in widgets]
        for name, widgets in groups.items():
            for widget in widgets:
                widget.observe(lambda change, name=name: self._edited(name), "value")
                widget.add_class(f"eiq-training-{name.replace('_', '-')}")
        super().__init__([self.sections], **kwargs)

    def _edited(self, name: str) -> None:
        if self._loading:
            return
        if name == "prune" and self.prune_on.value and self.cluster_on.value:
            self.cluster_on.value = False  # as in eIQ Portal: pruning and clustering exclude each other
        elif name == "cluster" and self.cluster_on.value and self.prune_on.value:
            self.prune_on.value = False
        self.update_visibility()
        if self.on_edit is not None:
            self.on_edit(name)

    def load(self, s: TrainingSettings) -> None:
        """Show `s` (no edit is reported while loading)."""
        self._loading = True
        try:
            self.model_params.value = ", ".join(f"{k}={v}" for k, v in s.model_params.items())
            self.alpha.value = "" if s.alpha is None else f"{s.alpha:g}"
            self.height.value, self.width.value, self.channels.value = (int(v) for v in s.input_size)
            weights = str(s.weights).lower()
            self.weights.value = weights if weights in ("imagenet", "random") else "file"
            if self.weights.value == "file":
                self.weights_file.value = str(s.weights)
            self.optimizer.value = s.optimizer
            self.learning_rate.value = s.learning_rate
            self.decay_on.value = s.decay is not None
            decay = s.decay or LearningRateDecay()
            self.decay_rate.value = decay.rate
            self.decay_unit.value = "steps" if decay.steps is not None else "epochs"
            self.decay_count.value = decay.steps if decay.steps is not None else decay.epochs or 1
            self.batch_size.value = s.batch_size
            self.infinite.value = s.epochs is None
            self.epochs.value = s.epochs or self.epochs.value
            self.stop_on.value = s.stop is not None
            stop = s.stop or StopCondition()
            self.stop_kind.value, self.stop_group.value, self.stop_monitor.value = stop.kind, stop.on, stop.monitor
            self.stop_target.value = "" if stop.target is None else f"{stop.target:g}"
            self.stop_patience.value, self.stop_delta.value = stop.patience, stop.min_delta
            if s.augmentation not in self.augmentation.options:
                self.augmentation.options = [*self.augmentation.options, s.augmentation]
            self.augmentation.value = s.augmentation
            self.qat_epochs.value = s.qat_epochs
            self.prune_on.value = s.prune is not None
            prune = s.prune or PruneSettings()
            self.prune_mode.value, self.prune_sparsity.value = prune.mode, prune.sparsity
            self.prune_begin.value, self.prune_epochs.value = prune.begin_step, prune.epochs
            self.prune_end.value = "" if prune.end_step is None else str(prune.end_step)
            self.prune_frequency.value = "" if prune.frequency is None else str(prune.frequency)
            self._set_layer_choice(self.prune_layers, prune.layers, "prunable")
            self.cluster_on.value = s.cluster is not None
            cluster = s.cluster or ClusterSettings()
            self.clusters.value, self.cluster_epochs.value = cluster.clusters, cluster.epochs
            self._set_layer_choice(self.cluster_layers, cluster.layers, "clusterable")
            self.seed.value = "" if s.seed is None else str(s.seed)
        finally:
            self._loading = False
        self.update_visibility()

    def show_layers(self, layers: list[Any]) -> None:
        """Offer the model's layers (`LayerInfo`s) for pruning and clustering, keeping the choices made."""
        self.layers = layers
        self._loading = True
        try:
            self._set_layer_choice(self.prune_layers, list(self.prune_layers.value), "prunable")
            self._set_layer_choice(self.cluster_layers, list(self.cluster_layers.value), "clusterable")
        finally:
            self._loading = False

    def _set_layer_choice(self, select: w.SelectMultiple, chosen: list[str], flag: str) -> None:
        options = [
            (self._layer_label(layer), layer.name)
            for layer in self.layers
            if getattr(layer, flag) and not layer.auto_named
        ]
        known = {value for _, value in options}
        select.options = options + [(name, name) for name in chosen if name not in known]
        select.value = tuple(chosen)

    @staticmethod
    def _layer_label(layer: Any) -> str:
        return f"{layer.name} ({layer.type}, {layer.params:,})"

    def update_visibility(self) -> None:
        """Show the widgets the chosen options use, hide the others."""
        shown(self.weights_file, self.weights.value == "file")
        shown(self.weights_note, self.weights.value == "imagenet")
        shown(self.decay_box, self.decay_on.value)
        shown(self.epochs, not self.infinite.value)
        shown(self.stop_box, self.stop_on.value)
        shown(self.prune_box, self.prune_on.value)
        shown(self.prune_epochs, self.prune_mode.value == "after")
        shown(self.cluster_box, self.cluster_on.value)

    def read(self, name: str) -> Any:
        """The value of one setting as the form shows it (raises `InputError` naming a bad entry)."""
        if name == "model_params":
            return self._read_params()
        if name == "alpha":
            return _optional(self.alpha, float, "alpha")
        if name == "input_size":
            return (self.height.value, self.width.value, self.channels.value)
        if name == "weights":
            if self.weights.value != "file":
                return self.weights.value
            path = self.weights_file.value.strip()
            if not path or not Path(path).expanduser().is_file():
                raise InputError(f"weights file: give the path of an existing weights file; received {path!r}")
            return str(Path(path).expanduser())
        if name == "decay":
            if not self.decay_on.value:
                return None
            count = self.decay_count.value
            by_steps = self.decay_unit.value == "steps"
            return LearningRateDecay(self.decay_rate.value, None if by_steps else count, count if by_steps else None)
        if name == "epochs":
            return None if self.infinite.value else self.epochs.value
        if name == "stop":
            if not self.stop_on.value:
                return None
            return StopCondition(
                self.stop_kind.value,
                self.stop_group.value,
                self.stop_monitor.value,
                _optional(self.stop_target, float, "stop condition target"),
                self.stop_patience.value,
                self.stop_delta.value,
            )
        if name == "prune":
            if not self.prune_on.value:
                return None
            return PruneSettings(
                self.prune_mode.value,
                self.prune_sparsity.value,
                self.prune_begin.value,
                _optional(self.prune_end, int, "pruning end step"),
                _optional(self.prune_frequency, int, "pruning frequency"),
                self.prune_epochs.value,
                list(self.prune_layers.value),
            )
        if name == "cluster":
            if not self.cluster_on.value:
                return None
            return ClusterSettings(self.clusters.value, self.cluster_epochs.value, list(self.cluster_layers.value))
        if name == "seed":
            return _optional(self.seed, int, "seed")
        return getattr(self, name).value

    def _read_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        for pair in filter(None, (p.strip() for p in self.model_params.value.split(","))):
            key, sep, text = pair.partition("=")
            if not sep or not key.strip():
                raise InputError(f"model parameters are NAME=VALUE, separated by commas; received {pair!r}")
            params[key.strip()] = _literal(text.strip())
        return params

    def settings(self, base: TrainingSettings) -> TrainingSettings:
        """`base` (the draft) with every setting the form shows, checked.

        Raises:
            InputError: a value is invalid (named in the message).
        """
        return base.replace(**{name: self.read(name) for name in SETTINGS}).check()
