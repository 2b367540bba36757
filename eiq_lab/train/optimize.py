"""Model optimization for training: pruning, weight clustering and quantization-aware training (TFMOT)
on chosen layers, stripping their wrappers, rebuilding wrapped models for checkpoints, and reports.
"""

from __future__ import annotations

import contextlib
import importlib
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from .. import framework
from ..errors import InputError

#: What `select_layers` selects for.
KINDS = ("prune", "cluster")
#: What a QAT model can keep of earlier phases (`qat_wrap(preserve=...)`).
PRESERVE = (None, "prune", "cluster", "prune_cluster")
#: Cluster centroid initializations by the names `cluster_wrap` takes.
CLUSTER_INITS = {"kmeans++": "KMEANS_PLUS_PLUS", "linear": "LINEAR", "density": "DENSITY_BASED"}
#: The phases `rebuild` replays, in the only order they can follow each other.
PHASE_KINDS = ("prune", "cluster", "qat")

_TFMOT = "tensorflow_model_optimization.python.core"
_KERNEL_NAMES = {"kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings"}


def _internal(path: str) -> Any:
    framework.tfmot()
    return importlib.import_module(f"{_TFMOT}.{path}")


# -- layers ---------------------------------------------------------------------------------------


def _wrapper_types() -> dict[str, tuple[type, ...]]:
    quantize = framework.tfmot().quantization.keras
    return {
        "prune": (_internal("sparsity.keras.pruning_wrapper").PruneLowMagnitude,),
        "cluster": (_internal("clustering.keras.cluster_wrapper").ClusterWeights,),
        "qat": (quantize.QuantizeWrapper, _internal("quantization.keras.quantize_annotate").QuantizeAnnotate),
    }


def _inner(layer: Any) -> Any:
    """The user's layer inside TFMOT wrappers."""
    every = tuple(t for types in _wrapper_types().values() for t in types)
    while isinstance(layer, every):
        layer = layer.layer
    return layer


class _Entry(NamedTuple):
    """A user's layer: its name, the layer, the variables it computes with (a QAT wrapper's)."""

    name: str
    layer: Any
    variables: tuple[Any, ...]


def _named_layers(model: Any) -> list[_Entry]:
    """Every layer of the model, unwrapped, nested models flattened, in model order."""
    keras = framework.keras()
    out = []
    for layer in model.layers:
        inner = _inner(layer)
        if isinstance(inner, keras.Model):
            out.extend(_named_layers(inner))
        elif not isinstance(inner, keras.layers.InputLayer):
            out.append(_Entry(inner.name, inner, tuple(layer.weights)))
    return out


def _base_name(variable: Any) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _target_weights(layer: Any, kind: str) -> list[str]:
    """Names of the weights pruning or clustering changes in `layer` (empty: it changes none)."""
    if kind == "prune":
        registry = _internal("sparsity.keras.prune_registry").PruneRegistry
        if isinstance(layer, _internal("sparsity.keras.prunable_layer").PrunableLayer):
            return [_base_name(w) for w in layer.get_prunable_weights()]
        if type(layer) in registry._RNN_LAYERS and registry.supports(layer):
            return ["kernel", "recurrent_kernel"]
        return list(registry._LAYERS_WEIGHTS_MAP.get(type(layer), []))
    registry = _internal("clustering.keras.clustering_registry").ClusteringRegistry
    if isinstance(layer, _internal("clustering.keras.clusterable_layer").ClusterableLayer):
        return [name for name, _ in layer.get_clusterable_weights()]
    if not registry.supports(layer):
        return []
    if type(layer) in registry._SUPPORTED_RNN_LAYERS or type(layer) in registry._SUPPORTED_MHA_LAYERS:
        return ["kernel", "recurrent_kernel"]  # TFMOT clusters the kernels of their cells and projections
    return list(registry._LAYERS_WEIGHTS_MAP.get(type(layer), []))


def _kernels(entry: _Entry, kind: str = "prune") -> list[Any]:
    """The layer's kernel variables (never biases): those `kind` targets, else every kernel."""
    names = set(_target_weights(entry.layer, kind))
    found = [w for w in entry.variables if _base_name(w) in names]
    return found or [w for w in entry.variables if _base_name(w) in _KERNEL_NAMES]


def _weight_count(entry: _Entry, kind: str) -> int:
    return sum(int(np.prod(w.shape)) for w in _kernels(entry, kind))


def select_layers(model: Any, names: Sequence[str] | None, kind: str, *, clusters: int | None = None) -> list[str]:
    """The layers to prune or cluster, by name, in model order.

    TFMOT prunes and clusters kernels (never biases) of Conv, Dense, Embedding and recurrent layers;
    it changes no weight of DepthwiseConv2D or BatchNormalization, so naming those is an error.

    Args:
        model: a Keras 2 model, plain or wrapped (names are the user's layer names).
        names: layer names; None or empty means every layer `kind` can change.
        kind: ``"prune"`` or ``"cluster"``.
        clusters: for clustering, the number of clusters: a layer with no more kernel weights is
            left out when `names` is empty and an error when named.

    Returns:
        The selected layer names, e.g. ``['conv1', 'pw', 'predictions']``.

    Raises:
        InputError: an unknown kind or layer, a layer that cannot be changed, or none at all.
    """
    if kind not in KINDS:
        raise InputError(f"layer selection kind must be one of {', '.join(KINDS)}; received {kind!r}")
    verb = "pruned" if kind == "prune" else "clustered"
    layers = _named_layers(model)

    def fits(entry: _Entry) -> bool:
        return bool(_target_weights(entry.layer, kind)) and (clusters is None or _weight_count(entry, kind) > clusters)

    valid = [entry.name for entry in layers if fits(entry)]
    listing = ", ".join(valid) if valid else "none"
    if not names:
        if not valid:
            raise InputError(f"model {model.name} has no layer that can be {verb}")
        return valid
    names = [names] if isinstance(names, str) else list(names)
    by_name = {entry.name: entry for entry in layers}
    unknown = ", ".join(repr(n) for n in names if n not in by_name)
    if unknown:
        raise InputError(f"model {model.name} has no layer named {unknown}; layers that can be {verb}: {listing}")
    for name in names:
        entry = by_name[name]
        if not _target_weights(entry.layer, kind):
            raise InputError(
                f"layer {name!r} ({type(entry.layer).__name__}) cannot be {verb}: TFMOT changes no weight of "
                "this layer type (depthwise convolutions and batch normalization keep their weights); layers that "
                f"can be {verb}: {listing}"
            )
        if not fits(entry):
            raise InputError(
                f"layer {name!r} has {_weight_count(entry, kind)} kernel weights, not more than {clusters} clusters; "
                f"use fewer clusters or leave it out (layers that can be {verb} into {clusters}: {listing})"
            )
    return [entry.name for entry in layers if entry.name in names]


# -- wrapping -------------------------------------------------------------------------------------


def _check_model(model: Any, what: str) -> None:
    keras = framework.keras()
    if not isinstance(model, keras.Model):
        raise InputError(
            f"{what} needs a Keras 2 (tf_keras) model; received {type(model).__module__}.{type(model).__name__} "
            "(build or load it with eiq_lab.framework.keras())"
        )
    if not (isinstance(model, keras.Sequential) or model._is_graph_network):
        raise InputError(f"{what} needs a Sequential or functional model; {model.name} is a subclassed model")
    if not model.built:
        raise InputError(f"{what} needs a built model; call model.build(input_shape) first")
    for layer in model.layers:
        if isinstance(_inner(layer), keras.Model):
            raise InputError(
                f"{what} needs a flat model; layer {layer.name!r} is a nested model: build the model as "
                "keras.Model(base.input, head(base.output)) instead"
            )


def _has(model: Any, kind: str) -> bool:
    types = _wrapper_types()[kind]
    return any(isinstance(layer, types) for layer in model.layers)


def _plain_copy(model: Any, what: str) -> Any:
    """An independent copy of the model without pruning or clustering wrappers (refusing QAT models)."""
    _check_model(model, what)
    if _has(model, "qat"):
        raise InputError(f"{what} cannot follow quantization-aware training: QAT is always the last phase")
    keras = framework.keras()
    model = strip(model)
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def _wrap_layers(model: Any, names: Sequence[str], wrap: Any) -> Any:
    """Clone `model` with `wrap(layer)` in place of the named layers."""
    keras = framework.keras()

    def clone(layer: Any) -> Any:
        if isinstance(layer, keras.layers.InputLayer):
            return layer.__class__.from_config(layer.get_config())
        return wrap(layer) if layer.name in names else layer

    return keras.models.clone_model(model, clone_function=clone)


def _check_int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise InputError(f"{name} must be an integer >= {minimum}; received {value!r}")
    return int(value)


def scheduled_sparsity(
    final_sparsity: float, begin_step: int, end_step: int, frequency: int, steps: int | None = None
) -> float:
    """The sparsity the pruning schedule reaches after `steps` training steps (None: past `end_step`).

    Masks change at steps ``begin_step + k * frequency`` up to `end_step` (the guide's "Step range"
    and "Pruning frequency"): when `frequency` does not divide ``end_step - begin_step``, or training
    stops early, the last change comes early and the sparsity stays below `final_sparsity`.
    """
    last = end_step if steps is None else min(end_step, steps)
    if last < max(begin_step, 1):
        return 0.0
    step = begin_step + (last - begin_step) // frequency * frequency
    progress = (step - begin_step) / (end_step - begin_step)
    return float(final_sparsity * (1 - (1 - progress) ** 3))


def prune_wrap(
    model: Any,
    *,
    final_sparsity: float,
    begin_step: int,
    end_step: int,
    frequency: int,
    layers: Sequence[str] | None = None,
) -> Any:
    """A copy of the model whose chosen layers are pruned by magnitude while it trains.

    Sparsity grows from 0 at `begin_step` to `final_sparsity` at `end_step` (TFMOT's polynomial
    decay), recomputed every `frequency` steps. Train with `prune_callbacks()`. Steps count from 0
    in each wrapping and live in the weights: a model rebuilt from its weights continues the
    schedule. Warns when the schedule cannot reach `final_sparsity` (see `scheduled_sparsity`).

    Args:
        model: a flat Keras 2 model; pruning or clustering wrappers are stripped first.
        final_sparsity: the fraction of zero kernel weights at the end, 0 < s < 1.
        begin_step, end_step: the step range (0 <= begin < end).
        frequency: prune every this many steps (>= 1).
        layers: layer names (None or empty: every prunable layer), see `select_layers`.

    Returns:
        The wrapped model (uncompiled; the input model is not changed).

    Raises:
        InputError: a bad argument or layer name, or a model that cannot be pruned.
    """
    if isinstance(final_sparsity, bool) or not isinstance(final_sparsity, float | int) or not 0 < final_sparsity < 1:
        raise InputError(f"pruning final sparsity must be between 0 and 1 (exclusive); received {final_sparsity!r}")
    begin_step = _check_int(begin_step, "pruning begin step", 0)
    end_step = _check_int(end_step, "pruning end step", 0)
    frequency = _check_int(frequency, "pruning frequency", 1)
    if end_step <= begin_step:
        raise InputError(f"pruning end step ({end_step}) must be after begin step ({begin_step})")
    reached = scheduled_sparsity(final_sparsity, begin_step, end_step, frequency)
    if reached < final_sparsity - 1e-6:
        last = begin_step + (end_step - begin_step) // frequency * frequency
        warnings.warn(
            f"pruning reaches a sparsity of {reached:.3f}, not {final_sparsity}: with frequency {frequency} the last "
            f"pruning step before end step {end_step} is {last}; set the end step to {last + frequency} "
            f"or a frequency that divides {end_step - begin_step}",
            UserWarning,
            stacklevel=2,
        )
    copy = _plain_copy(model, "pruning")
    names = select_layers(copy, layers, "prune")
    sparsity = framework.tfmot().sparsity.keras
    schedule = sparsity.PolynomialDecay(0.0, float(final_sparsity), begin_step, end_step, frequency=frequency)
    return _wrap_layers(copy, names, lambda layer: sparsity.prune_low_magnitude(layer, pruning_schedule=schedule))


def prune_callbacks() -> list[Any]:
    """The Keras callbacks a pruned model trains with (TFMOT's `UpdatePruningStep`)."""
    return [framework.tfmot().sparsity.keras.UpdatePruningStep()]


def cluster_wrap(
    model: Any,
    *,
    clusters: int,
    layers: Sequence[str] | None = None,
    preserve_sparsity: bool = False,
    init: str = "kmeans++",
) -> Any:
    """A copy of the model whose chosen kernels are clustered while it trains.

    Each kernel keeps at most `clusters` distinct values (centroids that train with the model). By
    default k-means++ (TFMOT's default, seeded: wrapping is deterministic) places the centroids in
    the dense middle of the weights, which changes a trained model least when fine-tuning starts;
    ``"linear"`` spaces them evenly from the smallest to the largest weight (keeps outliers, at the
    cost of a larger first error), ``"density"`` by the weights' distribution.

    Args:
        model: a flat Keras 2 model; pruning or clustering wrappers are stripped first.
        clusters: distinct values per kernel (>= 2; >= 3 with `preserve_sparsity`, whose zero is one).
        layers: layer names (None or empty: every clusterable layer with more weights than clusters).
        preserve_sparsity: keep the zeros of a pruned model (one centroid stays 0 and so do the zero
            weights): pruning then clustering, which eIQ Portal cannot combine.
        init: centroid initialization, one of `CLUSTER_INITS`.

    Returns:
        The wrapped model (uncompiled; the input model is not changed).

    Raises:
        InputError: a bad argument or layer name, or a model that cannot be clustered.
    """
    what = "number of clusters" + (" with sparsity preserved" if preserve_sparsity else "")
    clusters = _check_int(clusters, what, 3 if preserve_sparsity else 2)
    if init not in CLUSTER_INITS:
        raise InputError(f"cluster initialization must be one of {', '.join(CLUSTER_INITS)}; received {init!r}")
    copy = _plain_copy(model, "clustering")
    names = select_layers(copy, layers, "cluster", clusters=clusters)
    centroids = getattr(framework.tfmot().clustering.keras.CentroidInitialization, CLUSTER_INITS[init])
    experimental = _internal("clustering.keras.experimental.cluster")  # the API with preserve_sparsity

    def wrap(layer: Any) -> Any:
        return experimental.cluster_weights(
            layer, number_of_clusters=clusters, cluster_centroids_init=centroids, preserve_sparsity=preserve_sparsity
        )

    return _wrap_layers(copy, names, wrap)


def qat_wrap(model: Any, *, preserve: str | None = None) -> Any:
    """A quantization-aware (QAT) copy of the model: int8 fake quantization of weights and activations.

    `preserve` keeps what earlier phases made of the kernels (TFMOT's collaborative optimization):
    ``"prune"`` the zeros, ``"cluster"`` the clusters, ``"prune_cluster"`` both. These schemes read
    zeros and clusters from the weights the model holds, so wrap the model the previous phase ended
    with (see `rebuild`). Conv2D kernels keep their clusters per output channel (int8 scales are per
    channel). Warns about layers whose weights TFMOT leaves unquantized.

    Args:
        model: a flat Keras 2 model; pruning or clustering wrappers are stripped first.
        preserve: one of `PRESERVE`.

    Returns:
        The QAT model (uncompiled; the input model is not changed), for the int8 TFLite converter.

    Raises:
        InputError: a bad `preserve`, a model that is already QAT, or a layer TFMOT cannot quantize.
    """
    if preserve not in PRESERVE:
        raise InputError(f"QAT preserve must be one of {', '.join(map(str, PRESERVE))}; received {preserve!r}")
    _check_model(model, "quantization-aware training")
    if _has(model, "qat"):
        raise InputError(f"model {model.name} is already quantization-aware; QAT cannot wrap it twice")
    quantization = framework.tfmot().quantization.keras
    model = strip(model)
    if preserve is None:
        scheme = quantization.default_8bit.Default8BitQuantizeScheme()
    elif preserve == "prune":
        scheme = quantization.collab_opts.Default8BitPrunePreserveQuantizeScheme()
    else:
        path = "quantization.keras.collab_opts.cluster_preserve.default_8bit_cluster_preserve_quantize_scheme"
        scheme = _internal(path).Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=preserve == "prune_cluster")
    try:
        with warnings.catch_warnings():
            # "No clustering performed on layer ...": a layer that was not clustered quantizes as usual
            warnings.filterwarnings("ignore", message="No clustering performed")
            qat = quantization.quantize_apply(quantization.quantize_annotate_model(model), scheme)
    except (RuntimeError, ValueError) as exc:
        raise InputError(f"quantization-aware training cannot wrap model {model.name}: {exc}") from None
    wrappers = [(layer, _inner(layer)) for layer in qat.layers if isinstance(layer, _wrapper_types()["qat"])]
    unquantized = [
        inner.name for layer, inner in wrappers if not layer._weight_vars and _target_weights(inner, "prune")
    ]
    if unquantized:
        # TFMOT's Conv2D/Dense + ReLU transform (meant for Add + ReLU) leaves out the weights too
        warnings.warn(
            f"QAT leaves the weights of {', '.join(unquantized)} in float (TFMOT does so for a Conv2D, "
            "DepthwiseConv2D or Dense layer followed by a separate ReLU without batch normalization); the "
            "converter still quantizes them, untrained; give such layers activation='relu' instead",
            UserWarning,
            stacklevel=2,
        )
    return qat


# -- stripping, reports ---------------------------------------------------------------------------


def strip(model: Any) -> Any:
    """The model without pruning and clustering wrappers, holding their final weights.

    A QAT model stays a QAT model (the converter needs its ranges); one with a `preserve` scheme
    becomes the same model with default QAT wrappers holding the kernels it computes with, which
    Keras saves and loads (with `custom_objects_scope`); with its own wrappers it cannot load.

    Returns the same object when there is nothing to strip.
    """
    model = _strip_training_wrappers(model)
    if _has(model, "qat") and _is_collaborative(model):
        model = _default_qat(model)
    return model


def _strip_training_wrappers(model: Any) -> Any:
    tfmot = framework.tfmot()
    if _has(model, "prune"):
        model = tfmot.sparsity.keras.strip_pruning(model)
    if _has(model, "cluster"):
        model = tfmot.clustering.keras.strip_clustering(model)
    return model


def _quantizer_variables(layer: Any) -> list[tuple[Any, dict]]:
    return [(weight, variables) for weight, _, variables in getattr(layer, "_weight_vars", ())]


def _masks(model: Any) -> dict[int, np.ndarray]:
    """The zeros a prune-preserving QAT wrapper applies to its kernel, by the kernel's id."""
    return {
        id(weight): np.asarray(variables["sparsity_mask"])
        for layer in model.layers
        for weight, variables in _quantizer_variables(layer)
        if "sparsity_mask" in variables
    }


def _is_collaborative(model: Any) -> bool:
    return any(
        "sparsity_mask" in variables or "cluster_centroids_tf" in variables
        for layer in model.layers
        for _, variables in _quantizer_variables(layer)
    )


def _default_qat(model: Any) -> Any:
    """The collaborative QAT model rebuilt with default QAT wrappers and the same values."""
    keras = framework.keras()
    with framework.tfmot().quantization.keras.quantize_scope():
        # the wrappers' configs name the default quantizers: a clone is the default QAT model
        clone = keras.models.clone_model(model)
    masks = _masks(model)
    for source, target in zip(model.layers, clone.layers):
        # the collaborative variables (centroids, original weights, indices) are left behind
        values = {_base_name(v): v.numpy() * masks.get(id(v), 1) for v in source.weights}
        target.set_weights([values[_base_name(v)] for v in target.weights])
    return clone


def _kernel_values(model: Any) -> dict[str, list[tuple[str, np.ndarray]]]:
    """(weight name, values) of every layer's kernels, as the model computes with them."""
    model = _strip_training_wrappers(model)
    masks = _masks(model)  # a collaborative QAT model's kernels hold clusters, but not all its zeros
    out = {}
    for entry in _named_layers(model):
        kernels = [(_base_name(w), w.numpy() * masks.get(id(w), 1)) for w in _kernels(entry)]
        if kernels:
            out[entry.name] = kernels
    return out


def _check_names(model: Any, names: Sequence[str], values: Mapping[str, Any]) -> None:
    known = {entry.name for entry in _named_layers(model)}
    for name in names:
        if name not in values:
            problem = "has no kernel" if name in known else f"is not a layer of model {model.name}"
            raise InputError(f"{name!r} {problem}; layers with kernels: {', '.join(values)}")


def sparsity_report(model: Any, layers: Sequence[str] | None = None) -> dict[str, Any]:
    """The fraction of zero weights in the kernels (never biases), per layer and overall.

    Args:
        model: a Keras 2 model, plain, wrapped (pruning, clustering, QAT) or stripped.
        layers: layer names; None or empty means every prunable layer.

    Returns:
        ``{"sparsity": overall, "zeros": n, "weights": n, "layers": {name: {"sparsity", "zeros",
        "weights"}}}``, layers in model order.

    Raises:
        InputError: an unknown layer name, or a named layer without kernels.
    """
    values = _kernel_values(model)
    if layers:
        _check_names(model, layers, values)
    wanted = set(layers or select_layers(model, None, "prune"))
    report: dict[str, Any] = {"sparsity": 0.0, "zeros": 0, "weights": 0, "layers": {}}
    for name, kernels in values.items():
        if name in wanted:
            zeros = sum(int(np.count_nonzero(v == 0)) for _, v in kernels)
            count = sum(int(v.size) for _, v in kernels)
            report["layers"][name] = {"sparsity": zeros / count, "zeros": zeros, "weights": count}
            report["zeros"] += zeros
            report["weights"] += count
    if report["weights"]:
        report["sparsity"] = report["zeros"] / report["weights"]
    return report


def distinct_values(model: Any, layer: str, weight: str = "kernel") -> int:
    """How many distinct values a layer's kernel holds (at most the clusters, once clustered).

    `model` may be plain, wrapped or stripped; `weight` names the kernel (``pointwise_kernel``, ...).

    Raises:
        InputError: an unknown layer or weight name.
    """
    values = _kernel_values(model)
    _check_names(model, [layer], values)
    kernels = dict(values[layer])
    if weight not in kernels:
        raise InputError(f"layer {layer!r} has no weight {weight!r}; its kernels: {', '.join(kernels)}")
    return int(np.unique(kernels[weight]).size)


@contextlib.contextmanager
def custom_objects_scope() -> Iterator[None]:
    """A scope in which Keras saves and loads (``load_model(path)``) models with TFMOT wrappers."""
    tfmot = framework.tfmot()
    with (
        tfmot.quantization.keras.quantize_scope(),
        tfmot.sparsity.keras.prune_scope(),
        tfmot.clustering.keras.cluster_scope(),
    ):
        yield


# -- rebuilding wrapped models --------------------------------------------------------------------
