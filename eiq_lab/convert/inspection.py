"""What a model file holds, layer by layer: operators, their tensors (shapes, types, per-tensor or per-channel
quantization), weights with statistics and histograms. TFLite, ONNX, Keras (.h5/.keras) and SavedModel.

TFLite is read with LiteRT (no TensorFlow import), ONNX with the onnx package, Keras files in safe mode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .formats import model_type

#: Formats `inspect_model` reads.
FORMATS = ("tflite", "onnx", "keras", "h5", "savedmodel")


@dataclass
class TensorInfo:
    """One tensor of a layer.

    Attributes:
        name, shape, dtype: as the file states them (``-1`` for a dynamic dimension).
        scales, zero_points: quantization parameters (one each: per tensor; several: per channel along `axis`);
            empty for a float tensor.
        constant: a weight (its values are in the file).
    """

    name: str
    shape: list[int]
    dtype: str
    scales: list[float] = field(default_factory=list)
    zero_points: list[int] = field(default_factory=list)
    axis: int | None = None
    constant: bool = False

    @property
    def quantization(self) -> str:
        """``float``, ``per-tensor`` or ``per-channel (axis N, K channels)``."""
        if not self.scales:
            return "float"
        if len(self.scales) == 1:
            return "per-tensor"
        return f"per-channel (axis {self.axis}, {len(self.scales)} channels)"

    @property
    def size(self) -> int:
        return int(np.prod([max(d, 1) for d in self.shape])) if self.shape else 1


@dataclass
class WeightStats:
    """Statistics of one layer's weights (quantized weights in their real values: (q - zero point) x scale)."""

    count: int
    min: float
    max: float
    mean: float
    std: float
    zeros: float  # fraction of exact zeros (pruning shows here)


@dataclass
class LayerInfo:
    """One operator (TFLite, ONNX) or layer (Keras) in execution order."""

    index: int
    name: str
    type: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    weights: list[TensorInfo]
    stats: WeightStats | None = None

    @property
    def params(self) -> int:
        return sum(t.size for t in self.weights)


@dataclass
class ModelInfo:
    """A model file's summary: format, size, inputs, outputs, layers and embedded metadata."""

    path: Path
    format: str
    size: int
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[LayerInfo]
    metadata: dict[str, Any] = field(default_factory=dict)
    _values: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def quantized(self) -> bool:
        return any(t.scales for layer in self.layers for t in layer.weights)

    def layer(self, name: str) -> LayerInfo:
        """The layer called `name`.

        Raises:
            InputError: no such layer (the message gives a few names).
        """
        for layer in self.layers:
            if layer.name == name:
                return layer
        names = ", ".join(layer.name for layer in self.layers[:5])
        raise InputError(f"{self.path.name} has no layer {name!r}; layers include {names}, ...")

    def weight_values(self, layer: str | LayerInfo) -> np.ndarray:
        """A layer's weights as one flat float array (dequantized), for histograms."""
        info = layer if isinstance(layer, LayerInfo) else self.layer(layer)
        parts = [self._values[t.name].ravel() for t in info.weights if t.name in self._values]
        return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)

    def histogram(self, layer: str | LayerInfo, bins: int = 50) -> tuple[np.ndarray, np.ndarray]:
        """Counts and bin edges of a layer's weight values."""
        values = self.weight_values(layer)
        if values.size == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.histogram(values, bins=bins)

    def rows(self) -> list[dict[str, Any]]:
        """The layer table as plain rows (name, type, shapes, quantization, parameters, weight statistics)."""
        out = []
        for layer in self.layers:
            first = layer.outputs[0] if layer.outputs else None
            quant = sorted({t.quantization for t in layer.weights}) or ["-"]
            stats = layer.stats
            out.append({
                "index": layer.index, "name": layer.name, "type": layer.type,
                "inputs": "; ".join(_shape_text(t) for t in layer.inputs if not t.constant),
                "output": _shape_text(first) if first else "",
                "dtype": first.dtype if first else "", "quantization": ", ".join(quant), "params": layer.params,
                "min": stats.min if stats else None, "max": stats.max if stats else None,
                "mean": stats.mean if stats else None, "std": stats.std if stats else None,
                "zeros": stats.zeros if stats else None,
            })  # fmt: skip
        return out


def _shape_text(tensor: TensorInfo) -> str:
    return "x".join(str(d) for d in tensor.shape) or "scalar"


def _stats(values: list[np.ndarray]) -> WeightStats | None:
    flat = [v.ravel() for v in values if v.size]
    if not flat:
        return None
    data = np.concatenate(flat).astype(np.float64)
    return WeightStats(int(data.size), float(data.min()), float(data.max()), float(data.mean()), float(data.std()),
                       float(np.count_nonzero(data == 0) / data.size))  # fmt: skip


def _dequantized(values: np.ndarray, tensor: TensorInfo) -> np.ndarray:
    if not tensor.scales or values.dtype.kind == "f":
        return values
    scales = np.asarray(tensor.scales, np.float32)
    zeros = np.asarray(tensor.zero_points or [0], np.float32)
    if len(scales) > 1 and tensor.axis is not None and values.ndim:
        shape = [1] * values.ndim
        shape[tensor.axis] = -1
        scales, zeros = scales.reshape(shape), zeros.reshape(shape) if zeros.size > 1 else zeros
    return (values.astype(np.float32) - zeros) * scales


def inspect_model(path: str | os.PathLike, *, trust_code: bool = False) -> ModelInfo:
    """Read a model file's layers, tensors, quantization and weights.

    Args:
        path: a .tflite, .onnx, .h5, .keras file or a SavedModel folder.
        trust_code: let a Keras file run the Python code it carries (Lambda layers); off by default.

    Raises:
        InputError: no such file, or not a model of a known format (the message names the formats).

    Example:
        >>> info = inspect_model("mobilenet_int8.tflite")          # doctest: +SKIP
        >>> info.layers[0].type, info.layers[0].weights[0].quantization   # doctest: +SKIP
        ('CONV_2D', 'per-channel (axis 0, 16 channels)')
    """
    source = Path(path)
    if not source.exists():
        raise InputError(f"model {source} does not exist")
    kind = model_type(source)
    size = (
        source.stat().st_size if source.is_file() else sum(p.stat().st_size for p in source.rglob("*") if p.is_file())
    )
    if kind == "tflite":
        return _tflite(source, size)
    if kind == "onnx":
        return _onnx(source, size)
    if kind in ("h5", "keras", "savedmodel"):
        return _keras(source, size, kind, trust_code)
    raise InputError(f"{source} is a {kind} model; the Model Tool reads {', '.join(FORMATS)}")


# -- TFLite (LiteRT) -------------------------------------------------------------------------------------


def _tflite(path: Path, size: int) -> ModelInfo:
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    from ..evaluate.executors import tflite_metadata

    data = path.read_bytes()
    try:
        # builtin kernels: a delegate would replace the operators by its own nodes in the listing
        resolver = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        interpreter = Interpreter(model_content=data, experimental_op_resolver_type=resolver)
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise InputError(f"{path} cannot be read by LiteRT: {exc}") from None
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # LiteRT's only listing of operators and their tensor indices
    produced = {i for op in ops for i in op["outputs"]}
    model_inputs = {d["index"] for d in interpreter.get_input_details()}

    def tensor(index: int) -> TensorInfo:
        d = details[index]
        q = d.get("quantization_parameters") or {}
        scales = [float(s) for s in np.asarray(q.get("scales", []))]
        zeros = [int(z) for z in np.asarray(q.get("zero_points", []))]
        constant = index not in produced and index not in model_inputs
        return TensorInfo(d["name"], [int(x) for x in d.get("shape_signature", d["shape"])],
                          np.dtype(d["dtype"]).name, scales, zeros[: len(scales)] if scales else [],
                          int(q.get("quantized_dimension", 0)) if len(scales) > 1 else None, constant)  # fmt: skip

    info = ModelInfo(path, "tflite", size, [], [], [], tflite_metadata(data))
    info.inputs = [tensor(d["index"]) for d in interpreter.get_input_details()]
    info.outputs = [tensor(d["index"]) for d in interpreter.get_output_details()]
    for op in ops:
        inputs = [tensor(i) for i in op["inputs"] if i >= 0]
        outputs = [tensor(i) for i in op["outputs"]]
        weights = [t for t, i in zip(inputs, [i for i in op["inputs"] if i >= 0]) if t.constant]
        values = []
        for t, index in zip(inputs, [i for i in op["inputs"] if i >= 0]):
            if t.constant:
                try:
                    raw = interpreter.get_tensor(index)
                except ValueError:  # a tensor LiteRT keeps no data for
                    continue
                info._values[t.name] = _dequantized(raw, t)
                values.append(info._values[t.name])
        name = outputs[0].name if outputs else f"op{op['index']}"
        info.layers.append(LayerInfo(int(op["index"]), name, op["op_name"], inputs, outputs, weights, _stats(values)))
    return info


# -- ONNX ------------------------------------------------------------------------------------------------


def _onnx(path: Path, size: int) -> ModelInfo:
    try:
        import onnx
        from onnx import numpy_helper, shape_inference
    except ImportError:
        raise InputError("reading ONNX models needs the onnx package: pip install 'eiq-lab[onnx]'") from None
    from ..evaluate.executors import onnx_metadata

    data = path.read_bytes()
    try:
        model = onnx.load_from_string(data)
        model = shape_inference.infer_shapes(model)
    except Exception as exc:  # onnx raises DecodeError and its own errors for foreign files
        raise InputError(f"{path} is not a readable ONNX model: {type(exc).__name__}: {exc}") from None
    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:  # Constant nodes hold weights too
        if node.op_type == "Constant" and node.attribute:
            inits[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    value_infos = {v.name: v for v in [*graph.input, *graph.output, *graph.value_info]}
    # QDQ models: the scale and zero point of a quantized tensor are the inputs of its DequantizeLinear
    quant: dict[str, tuple[list[float], list[int], int | None]] = {}
    for node in graph.node:
        if node.op_type in ("DequantizeLinear", "QuantizeLinear") and len(node.input) >= 2:
            scale = inits.get(node.input[1])
            zero = inits.get(node.input[2]) if len(node.input) > 2 else None
            if scale is not None:
                axis = next((a.i for a in node.attribute if a.name == "axis"), 1) if np.size(scale) > 1 else None
                entry = ([float(s) for s in np.ravel(scale)], [int(z) for z in np.ravel(zero)] if zero is not None
                         else [0] * np.size(scale), axis)  # fmt: skip
                quant.setdefault(node.input[0], entry)
                quant.setdefault(node.output[0], entry)

    def tensor(name: str) -> TensorInfo:
        shape: list[int] = []
        dtype = "float32"
        if name in inits:
            shape, dtype = [int(d) for d in inits[name].shape], inits[name].dtype.name
        elif name in value_infos and value_infos[name].type.HasField("tensor_type"):
            tt = value_infos[name].type.tensor_type
            shape = [int(d.dim_value) if d.HasField("dim_value") else -1 for d in tt.shape.dim]
            dtype = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).name if tt.elem_type else "float32"
        scales, zeros, axis = quant.get(name, ([], [], None))
        return TensorInfo(name, shape, dtype, scales, zeros, axis, name in inits)

    info = ModelInfo(path, "onnx", size, [], [], [], onnx_metadata(data))
    info.inputs = [tensor(v.name) for v in graph.input if v.name not in inits]
    info.outputs = [tensor(v.name) for v in graph.output]
    for index, node in enumerate(graph.node):
        if node.op_type == "Constant":
            continue
        inputs = [tensor(n) for n in node.input if n]
        weights = [t for t in inputs if t.constant and t.size > 1]
        values = []
        for t in weights:
            info._values[t.name] = _dequantized(inits[t.name], t)
            values.append(info._values[t.name])
        layer = LayerInfo(index, node.name or node.output[0], node.op_type, inputs, [tensor(n) for n in node.output],
                          weights, _stats(values))  # fmt: skip
        info.layers.append(layer)
    return info


# -- Keras and SavedModel --------------------------------------------------------------------------------


def _keras(path: Path, size: int, kind: str, trust_code: bool) -> ModelInfo:
    from .. import framework

    if kind == "savedmodel":
        tf = framework.tf()
        try:
            model = tf.keras.models.load_model(str(path), compile=False)
        except Exception as exc:  # a SavedModel that is not a Keras model has no layers to list
            raise InputError(
                f"{path} is a SavedModel without Keras layers ({type(exc).__name__}); convert it to TFLite or ONNX "
                "with `eiq convert` and open that file to see its operators"
            ) from None
    else:
        from ..evaluate.executors import load_keras

        model = load_keras(path, trust_code=trust_code)

    def tensor(t: Any, name: str) -> TensorInfo:
        shape = [-1 if d is None else int(d) for d in (t.shape if t.shape is not None else [])]
        return TensorInfo(name, shape, str(getattr(t.dtype, "name", t.dtype)))

    info = ModelInfo(path, kind, size, [], [], [])
    info.inputs = [tensor(t, t.name.split(":")[0]) for t in model.inputs]
    info.outputs = [tensor(t, t.name.split(":")[0]) for t in model.outputs]
    for index, layer in enumerate(model.layers):
        inputs = [tensor(t, f"{layer.name}/input{i}") for i, t in enumerate(_as_list(layer.input))]
        outputs = [tensor(t, f"{layer.name}/output{i}") for i, t in enumerate(_as_list(layer.output))]
        weights, values = [], []
        for variable in layer.weights:
            array = variable.numpy()
            name = variable.name.split(":")[0]
            weights.append(TensorInfo(name, list(array.shape), array.dtype.name, constant=True))
            info._values[name] = array
            values.append(array)
        info.layers.append(LayerInfo(index, layer.name, type(layer).__name__, inputs, outputs, weights, _stats(values)))
    return info


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]
