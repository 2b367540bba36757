"""Checkpoints as bytes: a model's weights with its random-generator states, and its optimizer state,
packed as `.npz` so a project can keep one per epoch and a resumed run continues exactly.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from .. import framework
from ..errors import InputError


def random_generators(model: Any) -> list[Any]:
    """The `tf.random.Generator` of every layer that draws random numbers (dropout and the like).

    Their states belong in a checkpoint: restored, a resumed run draws the same masks an
    uninterrupted one would. Generators are created here if the layer has not run yet.
    """
    out = []
    for layer in model._flatten_layers(include_self=False):
        generator = getattr(layer, "_random_generator", None)
        if generator is None or not hasattr(generator, "_maybe_init"):
            continue
        generator._maybe_init()
        if getattr(generator, "_generator", None) is not None:
            out.append(generator._generator)
    return out


def _pack(arrays: dict[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _unpack(data: bytes, source: str) -> dict[str, np.ndarray]:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (OSError, ValueError) as exc:
        raise InputError(f"{source} is not a readable checkpoint ({exc})") from None


_READ: Any = None


def _read(variables: list[Any]) -> list[np.ndarray]:
    """The values of `variables` as numpy arrays, all read in one traced call (reading a few hundred
    variables one by one costs ~10x more: a whole epoch's checkpoint). Traced again only for
    variables of other shapes."""
    global _READ
    if not variables:
        return []
    if _READ is None:
        tf = framework.tf()
        _READ = tf.function(lambda vs: [tf.identity(v) for v in vs], autograph=False)
    return [value.numpy() for value in _READ(variables)]


def pack_weights(model: Any) -> bytes:
    """The model's weights (every variable, by position) and random-generator states."""
    arrays = {f"w{i:05d}": w for i, w in enumerate(_read(list(model.weights)))}
    for i, generator in enumerate(random_generators(model)):
        arrays[f"r{i:05d}"] = generator.state.numpy()
    return _pack(arrays)


def pack_optimizer(optimizer: Any) -> bytes:
    """The optimizer's variables (step count, moments, ...) by position."""
    return _pack({f"o{i:05d}": value for i, value in enumerate(_read(list(optimizer.variables)))})


def load_weights(model: Any, data: bytes, source: str) -> None:
    """Load `pack_weights` bytes into a model built the same way.

    Raises:
        InputError: the checkpoint does not fit the model (naming the first mismatch).
    """
    arrays = _unpack(data, source)
    weights = [arrays[k] for k in sorted(arrays) if k.startswith("w")]
    expected = model.weights
    if len(weights) != len(expected):
        raise InputError(
            f"{source} holds {len(weights)} weight tensors but the model has {len(expected)}; it was saved from a "
            "different model (check the model, its parameters and the phase)"
        )
    for array, variable in zip(weights, expected):
        if tuple(array.shape) != tuple(variable.shape):
            raise InputError(
                f"{source} does not fit the model: {variable.name} has shape {tuple(variable.shape)}, the checkpoint "
                f"{tuple(array.shape)} (a different input size, alpha or number of classes?)"
            )
    model.set_weights(weights)
    states = [arrays[k] for k in sorted(arrays) if k.startswith("r")]
    for generator, state in zip(random_generators(model), states):
        generator.state.assign(state)


def load_optimizer(optimizer: Any, model: Any, data: bytes, source: str) -> None:
    """Build the optimizer for the model's trainable variables and load `pack_optimizer` bytes.

    Raises:
        InputError: the state does not fit the optimizer.
    """
    arrays = _unpack(data, source)
    values = [arrays[k] for k in sorted(arrays)]
    optimizer.build(model.trainable_variables)
    variables = optimizer.variables
    if len(values) != len(variables) or any(tuple(a.shape) != tuple(v.shape) for a, v in zip(values, variables)):
        raise InputError(f"the optimizer state in {source} does not fit this optimizer and model")
    for variable, value in zip(variables, values):
        variable.assign(value)
