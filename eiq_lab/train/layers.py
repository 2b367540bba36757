"""The layers of a training model as pruning and clustering see them: name, type, parameters, and whether
each can be pruned or clustered, for the model a draft's settings build or the final model of a run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import framework
from ..errors import InputError
from .settings import TrainingSettings


@dataclass(frozen=True)
class LayerInfo:
    """One layer of a model, for choosing the layers to prune or cluster.

    Attributes:
        name: the layer's name (what `PruneSettings.layers` and `ClusterSettings.layers` take).
        type: its Keras class name (``Conv2D``, ``DepthwiseConv2D``, ...).
        params: its number of weights (trainable or not).
        prunable: TFMOT prunes its kernel (Conv, Dense, ... never DepthwiseConv2D or BatchNormalization).
        clusterable: TFMOT clusters its kernel, which has more weights than the clusters asked for.
        auto_named: the name is one Keras made up (``conv2d_3``); it changes from one build of the model to
            the next in the same process, so such a layer cannot be chosen by name.
    """

    name: str
    type: str
    params: int
    prunable: bool
    clusterable: bool
    auto_named: bool

    @property
    def selectable(self) -> bool:
        """Whether the layer can be named in a pruning or clustering selection at all."""
        return (self.prunable or self.clusterable) and not self.auto_named


def _keras_snake_case(name: str) -> str:
    # the rule Keras names layers by (tf_keras generic_utils.to_snake_case)
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if insecure[0] != "_" else "private" + insecure


def is_auto_named(layer: Any) -> bool:
    """Whether `layer` carries the name Keras gives a layer nobody named (``dense``, ``conv2d_4``)."""
    base = re.escape(_keras_snake_case(type(layer).__name__))
    return re.fullmatch(rf"{base}(_\d+)?", layer.name) is not None


def _selected(model: Any, kind: str, clusters: int | None = None) -> set[str]:
    from . import optimize

    try:
        return set(optimize.select_layers(model, None, kind, clusters=clusters))
    except InputError:  # the model has no such layer: nothing to choose from
        return set()


def _flat_layers(model: Any) -> list[Any]:
    keras = framework.keras()
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_flat_layers(layer))
        elif not isinstance(layer, keras.layers.InputLayer):
            out.append(layer)
    return out


def model_layers(model: Any, clusters: int | None = None) -> list[LayerInfo]:
    """Every layer of a Keras 2 model, in model order (nested models flattened), with what TFMOT can do to it.

    Args:
        model: a plain Keras 2 (tf_keras) model.
        clusters: the number of clusters planned; a layer with no more kernel weights is not clusterable.

    Returns:
        One `LayerInfo` per layer (input layers left out).
    """
    prunable = _selected(model, "prune")
    clusterable = _selected(model, "cluster", clusters)
    return [
        LayerInfo(
            layer.name,
            type(layer).__name__,
            int(layer.count_params()),
            layer.name in prunable,
            layer.name in clusterable,
            is_auto_named(layer),
        )
        for layer in _flat_layers(model)
    ]


def settings_layers(project: Any, settings: TrainingSettings) -> list[LayerInfo]:
    """The layers of the model a run with `settings` would train on `project`.

    The model is built from its plugin with random weights (the layers are the same with any weights, and
    nothing is downloaded). The number of classes is the project's, when its images say it.

    Example:
        >>> [layer.name for layer in settings_layers(project, load_draft(project)) if layer.prunable]  # doctest: +SKIP
        ['conv1', 'conv2', 'conv3', 'classes']

    Raises:
        InputError: the settings are invalid, or the plugin cannot build the model with them.
        NotFoundError: no model of that name.
    """
    model = settings_model(project, settings)
    clusters = settings.cluster.clusters if settings.cluster is not None else None
    return model_layers(model, clusters)


def settings_model(project: Any, settings: TrainingSettings) -> Any:
    """The Keras model a run with `settings` would train on `project`, with random weights (see
    `settings_layers`); the Model Tool's layer-selection mode opens it.

    Raises:
        InputError: the settings are invalid, or the plugin cannot build the model with them.
        NotFoundError: no model of that name.
    """
    from ..models import registry, wizard
    from .trainer import plugin_params

    settings = settings.replace().check()
    name = settings.model or wizard.default_model(settings.task)
    plugin = registry().get(name, task=settings.task)
    shape = plugin.check_input_shape(tuple(settings.input_size), None)
    params = plugin_params(plugin, settings)
    classes = _class_count(project, settings.task)
    try:
        return plugin.get_model(shape, classes, None, params)
    except Exception as exc:
        raise InputError(f"model {name} could not be built for input {shape} and {classes} classes: {exc}") from None


def run_layers(project: Any, run: int | str = "last") -> list[LayerInfo]:
    """The layers of a finished run's final model (as stored in the project).

    Raises:
        NotFoundError: no such run, or it has no final model.
    """
    from .trainer import load_run_model

    record = project.run(run)
    cluster = record.settings.get("cluster") or {}
    return model_layers(load_run_model(project, record.id), cluster.get("clusters"))


def _class_count(project: Any, task: str) -> int:
    """Classes a run on `project` would have (at least 2: a model needs them to be built)."""
    from .samples import class_samples

    if task == "classification":
        try:
            return max(2, len(class_samples(project).classes))
        except InputError:  # no labelled images yet: the project's labels are what it will have
            return max(2, len(project.labels()))
    return max(2, len(project.labels()))
