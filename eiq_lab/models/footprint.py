"""How much memory a Keras model needs once quantized to int8: flash for its weights, RAM for its activations.

Estimates read from the Keras graph without converting it; the wizard quotes them for MCU targets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: Layers whose weights carry one int8 value per kernel element and an int32 bias per output channel.
WEIGHTED_OPS = ("Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D", "Conv2DTranspose", "Dense")
#: Layers the converter folds into the operation before them (no weights, no tensor of their own).
FOLDED = ("BatchNormalization", "Dropout", "SpatialDropout2D", "GaussianNoise", "InputLayer")
#: Single-input element-wise layers: fused into the operation before them (ReLU, ReLU6), or computed in
#: place (reshapes), or part of one fused operation (the add / ReLU6 / multiply that make hard-swish).
IN_PLACE = ("BatchNormalization", "Dropout", "ReLU", "Activation", "TFOpLambda", "Rescaling", "Reshape", "Flatten")
#: Layers the converter merges into the convolution after them (zero padding becomes the convolution's own).
MERGED_INTO_NEXT = ("ZeroPadding2D",)
#: Bytes per output channel of a weighted layer: its int32 bias ...
BIAS_BYTES = 4
#: ... and, per channel (per-channel quantization) or per tensor, a float32 scale and an int64 zero point for
#: the weights and again for the bias, as the TFLite schema stores them.
QUANTIZATION_BYTES = 2 * (4 + 8)
#: Flatbuffer structure per operation (operator entry, output tensor descriptor with shape, name, quantization).
BYTES_PER_OPERATION = 200
#: Flatbuffer structure of any model (header, subgraph, operator codes, signature).
BYTES_FIXED = 2048


@dataclass(frozen=True)
class Footprint:
    """Estimated memory of an int8 model."""

    #: the model file: int8 weights, per-channel bias and quantization parameters, graph structure
    flash_bytes: int
    #: the activation arena: the largest set of int8 tensors alive at the same moment
    ram_bytes: int
    #: trainable and other parameters of the Keras model (batch normalization included)
    parameters: int
    #: what the estimate assumes
    notes: str


def estimate_int8_footprint(model: Any, per_channel: bool = True) -> Footprint:
    """Estimate flash and RAM of `model` converted to a full-integer (int8) TFLite model.

    Flash: one byte per weight of every convolution and dense layer; per output channel an int32 bias
    (batch normalization folds into it) and, per channel (or per tensor), a float32 scale and an int64
    zero point for the weights and again for the bias, as the TFLite schema stores them; one byte per
    weight of any other layer; plus the flatbuffer structure: 200 bytes per operation and 2 KiB fixed.
    Converted MobileNets v1 and v2 (alpha 0.25-1.0, 96-224 px) came within 2 % of this (v3 small 6 %
    above: the converter merged some identical random weights). The
    inference library's code (TFLite Micro, CMSIS-NN: roughly 50-150 KB) is not included.

    RAM: the layers run in order and a tensor lives from the layer that writes it to the last layer that
    reads it (the model's outputs to the end); the estimate is the largest sum of int8 tensors alive at
    once: at least a layer's inputs plus its output, and a residual branch's input while the branch
    runs. Layers that TFLite fuses into the one before (batch normalization, ReLU, dropout) or after
    (zero padding) or computes in place make no tensor of their own. TFLite Micro's planner packs the
    tensors into one arena of about this size; add the scratch buffers of optimized kernels (a few KB to
    tens of KB) and the runtime's own structures (a few KB). The weights stay in flash.

    Args:
        model: a built Keras model with fixed input height and width (a flat model; a nested model counts
            as one layer).
        per_channel: per-channel quantization (else per-tensor: one scale and zero point per tensor).

    Returns:
        The estimate.
    """
    layers = list(model.layers)
    flash = BYTES_FIXED
    for layer in layers:
        kind = type(layer).__name__
        if kind in FOLDED:
            continue
        sizes = [_count(w.shape) for w in layer.weights]
        if kind not in IN_PLACE + MERGED_INTO_NEXT:
            flash += BYTES_PER_OPERATION
        if kind in WEIGHTED_OPS:
            channels = int(_shape_of(layer.output)[-1] or 0)
            kernels = sum(size for w, size in zip(layer.weights, sizes) if len(w.shape) >= 2)
            flash += kernels + channels * BIAS_BYTES + (channels if per_channel else 1) * QUANTIZATION_BYTES
        else:
            flash += sum(sizes)
    notes = (
        f"int8 weights, {'per-channel' if per_channel else 'per-tensor'} quantization; flash is the model file "
        "(weights, biases, quantization parameters, graph), not the inference library; RAM is the activation "
        "arena (peak of int8 tensors alive at once), without kernel scratch buffers"
    )
    return Footprint(flash, _peak_activation_bytes(model, layers), int(model.count_params()), notes)


def _peak_activation_bytes(model: Any, layers: list[Any]) -> int:
    buffer_of: dict[int, int] = {}  # id(Keras tensor) -> buffer
    sizes: list[int] = []
    born: list[int] = []
    last_read: list[int] = []
    keep = []  # hold the tensors so their ids stay unique while we work

    def new_buffer(tensor: Any, step: int) -> None:
        keep.append(tensor)
        buffer_of[id(tensor)] = len(sizes)
        sizes.append(_count(_shape_of(tensor)[1:]))
        born.append(step)
        last_read.append(step)

    for step, layer in enumerate(layers):
        inputs, outputs = _node_tensors(layer)
        if type(layer).__name__ == "InputLayer":
            for tensor in outputs:
                new_buffer(tensor, step)
            continue
        read = sorted({buffer_of[id(t)] for t in inputs if id(t) in buffer_of})
        for buffer in read:
            last_read[buffer] = step
        kind = type(layer).__name__
        same_size = len(read) == 1 and len(outputs) == 1 and _count(_shape_of(outputs[0])[1:]) == sizes[read[0]]
        in_place = (kind in IN_PLACE and same_size) or (kind in MERGED_INTO_NEXT and len(read) == 1)
        if in_place:
            keep.append(outputs[0])
            buffer_of[id(outputs[0])] = read[0]
        else:
            for tensor in outputs:
                new_buffer(tensor, step)
    end = len(layers)
    for tensor in model.outputs:
        if id(tensor) in buffer_of:
            last_read[buffer_of[id(tensor)]] = end
    peak = 0
    for step in range(end + 1):
        alive = sum(size for size, b, r in zip(sizes, born, last_read) if b <= step <= r)
        peak = max(peak, alive)
    return peak


def _node_tensors(layer: Any) -> tuple[list[Any], list[Any]]:
    """The Keras tensors a layer reads and writes (its first call in the graph)."""
    nodes = getattr(layer, "_inbound_nodes", None) or getattr(layer, "inbound_nodes", None) or []
    if nodes:
        node = nodes[0]
        inputs = list(getattr(node, "keras_inputs", []) or [])
        outputs = node.outputs if isinstance(node.outputs, list | tuple) else [node.outputs]
        return inputs, [t for t in _flatten(outputs)]
    return _flatten(layer.input), _flatten(layer.output)


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [item for element in value for item in _flatten(element)]
    if isinstance(value, dict):
        return [item for element in value.values() for item in _flatten(element)]
    return [value]


def _shape_of(tensor: Any) -> tuple[Any, ...]:
    shape = tensor.shape
    return tuple(shape.as_list() if hasattr(shape, "as_list") else shape)


def _count(shape: Any) -> int:
    dims = [d for d in (shape.as_list() if hasattr(shape, "as_list") else shape)]
    return math.prod(int(d) for d in dims if d is not None)
