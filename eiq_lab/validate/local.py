"""A model run on this host by tensor name: TensorFlow sources (frozen .pb, SavedModel, Keras, trimmed to named
tensors), TFLite in LiteRT and ONNX in ONNX Runtime, raw tensors in and out with each tensor's quantization.
"""

from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: ONNX Runtime's element types -> numpy.
_ONNX_TYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int16)": np.int16,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


@dataclass
class TensorInfo:
    """One input or output of a model.

    Attributes:
        name: the tensor's name in the model.
        shape: its shape (dynamic dimensions as -1).
        dtype: its numpy type.
        scale, zero_point: its quantization (scale 0: not quantized).
        aliases: other names it answers to (a TFLite signature name).
    """

    name: str
    shape: list[int]
    dtype: Any
    scale: float = 0.0
    zero_point: int = 0
    aliases: tuple[str, ...] = ()

    @property
    def quantized(self) -> bool:
        return bool(self.scale) and np.issubdtype(np.dtype(self.dtype), np.integer)

    def quantize(self, value: np.ndarray) -> np.ndarray:
        """Real values as this tensor holds them (quantized for an int8/uint8 tensor)."""
        dtype = np.dtype(self.dtype)
        if self.quantized:
            info = np.iinfo(dtype)
            return np.clip(np.round(np.asarray(value, np.float64) / self.scale + self.zero_point), info.min, info.max)\
                .astype(dtype)  # fmt: skip
        return np.asarray(value).astype(dtype)

    def dequantize(self, value: np.ndarray) -> np.ndarray:
        """This tensor's raw values as real float32 values."""
        if self.quantized:
            return ((np.asarray(value, np.float32) - self.zero_point) * self.scale).astype(np.float32)
        return np.asarray(value, np.float32)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "shape": list(self.shape), "datatype": np.dtype(self.dtype).name.upper(),
                "scale": self.scale, "zero_point": self.zero_point}  # fmt: skip


def matches(info: TensorInfo, name: str) -> bool:
    """Whether `name` names this tensor: its name, an alias, or either with ``/`` written ``_`` (the guide's
    automatic renaming)."""
    names = (info.name, *info.aliases)
    return name in names or name.replace("/", "_") in {n.replace("/", "_") for n in names}


class LocalModel(ABC):
    """A model on this host that runs by tensor name.

    Attributes:
        name: the file's name.
        kind: ``tensorflow``, ``tflite`` or ``onnx``.
        inputs, outputs: `TensorInfo` of the inputs fed and the outputs read, in order.
        metadata: the ``eiq_metadata`` the file carries (with ``labels``), empty if none.
    """

    name: str = ""
    kind: str = ""
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    metadata: dict[str, Any]

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Raw output tensors (the model's own dtypes) on raw input tensors, by name."""

    def input(self, name: str) -> TensorInfo:
        return _find(self.inputs, name, "input", self.name)

    def output(self, name: str) -> TensorInfo:
        return _find(self.outputs, name, "output", self.name)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "inputs": [t.to_json() for t in self.inputs],
                "outputs": [t.to_json() for t in self.outputs]}  # fmt: skip


def _find(infos: list[TensorInfo], name: str, role: str, model: str) -> TensorInfo:
    for info in infos:
        if matches(info, name):
            return info
    raise InputError(f"{role} name {name!r} is not in {model}; its {role}s: {', '.join(_listed(infos))}")


def _listed(infos: list[TensorInfo]) -> list[str]:
    return [f"{t.name} ({', '.join(t.aliases)})" if t.aliases else t.name for t in infos]


def _select(infos: list[TensorInfo], names: list[str] | None, role: str, model: str) -> list[TensorInfo]:
    return [_find(infos, n, role, model) for n in names] if names else infos


class GraphModel(LocalModel):
    """A TensorFlow source frozen and trimmed to the named tensors (`eiq_lab.convert.graphs.load_graph`)."""

    kind = "tensorflow"

    def __init__(self, path: Path, source_kind: str, input_names: list[str] | None, output_names: list[str] | None,
                 input_shapes: list[list[int]] | None):  # fmt: skip
        from ..convert.graphs import load_graph

        default = input_shapes[0] if input_shapes else None
        self.graph = load_graph(path, source_kind, input_names=input_names, output_names=output_names,
                                default_shape=default)  # fmt: skip
        self.name = path.name
        self.inputs = [TensorInfo(t.name, list(t.shape), np.dtype(t.dtype.as_numpy_dtype)) for t in self.graph.inputs]
        for info, shape in zip(self.inputs, input_shapes or [], strict=False):
            if list(shape) != info.shape:
                raise InputError(f"input {info.name} of {self.name} is {info.shape}; --input_shapes gives {shape}")
        outs = self.graph.run(*[np.zeros(t.shape, t.dtype) for t in self.inputs])
        self.outputs = [TensorInfo(t.name, list(o.shape), o.dtype) for t, o in zip(self.graph.outputs, outs)]
        self.metadata = {}

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = self.graph.run(*[feeds[t.name] for t in self.inputs])
        return {t.name: np.asarray(r) for t, r in zip(self.outputs, results)}


class TFLiteModel(LocalModel):
    """A TFLite model in LiteRT; tensors answer to their names and their signature names."""

    kind = "tflite"

    def __init__(self, data: bytes, name: str, input_names: list[str] | None, output_names: list[str] | None,
                 input_shapes: list[list[int]] | None, threads: int | None = None):  # fmt: skip
        from ai_edge_litert.interpreter import Interpreter

        from ..evaluate.executors import tflite_metadata

        self.name = name
        try:
            self.interpreter = Interpreter(model_content=bytes(data), num_threads=threads)
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"{name} cannot be loaded by LiteRT: {exc}") from None
        aliases: dict[int, list[str]] = {}
        # the signature's names ("x", "output_0") are what a Keras export's users know; a model without
        # signatures (or an interpreter without the listing) has none
        with contextlib.suppress(AttributeError, TypeError, ValueError):
            for signature in self.interpreter._get_full_signature_list().values():
                for key in ("inputs", "outputs"):
                    for alias, index in signature.get(key, {}).items():
                        aliases.setdefault(int(index), []).append(alias)
        details_in = self.interpreter.get_input_details()
        every_in = [self._info(d, aliases) for d in details_in]
        chosen = _select(every_in, input_names, "input", name)
        for info, shape in zip(chosen, input_shapes or [], strict=False):
            if list(shape) != info.shape:
                if len(shape) != len(info.shape):
                    raise InputError(f"input {info.name} of {name} is {info.shape}; --input_shapes gives {shape}")
                index = next(d["index"] for d in details_in if d["name"] == info.name)
                self.interpreter.resize_tensor_input(index, shape)
                info.shape = list(shape)
        self.interpreter.allocate_tensors()
        if len(chosen) != len(every_in):
            raise InputError(f"{name} needs all its inputs fed: {', '.join(_listed(every_in))}")
        self.inputs = chosen
        every_out = [self._info(d, aliases) for d in self.interpreter.get_output_details()]
        self.outputs = _select(every_out, output_names, "output", name)
        self._index = {d["name"]: d["index"] for d in details_in + self.interpreter.get_output_details()}
        self.metadata = tflite_metadata(data)

    @staticmethod
    def _info(detail: dict[str, Any], aliases: dict[int, list[str]]) -> TensorInfo:
        scale, zero = detail["quantization"]
        names = tuple(a for a in aliases.get(int(detail["index"]), []) if a != detail["name"])
        return TensorInfo(detail["name"], [int(d) for d in detail["shape"]], np.dtype(detail["dtype"]), float(scale),
                          int(zero), names)  # fmt: skip

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        for info in self.inputs:
            self.interpreter.set_tensor(self._index[info.name], np.asarray(feeds[info.name], info.dtype))
        self.interpreter.invoke()
        return {t.name: np.array(self.interpreter.get_tensor(self._index[t.name])) for t in self.outputs}


class OnnxModel(LocalModel):
    """An ONNX model in ONNX Runtime (CPU); quantized (QDQ) models take and give float tensors."""

    kind = "onnx"

    def __init__(self, data: bytes, name: str, input_names: list[str] | None, output_names: list[str] | None,
                 input_shapes: list[list[int]] | None):  # fmt: skip
        import onnxruntime as ort

        from ..evaluate.executors import onnx_metadata

        self.name = name
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(bytes(data), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InputError(f"{name} cannot be loaded by ONNX Runtime: {exc}") from None
        every_in = [self._info(t) for t in self.session.get_inputs()]
        chosen = _select(every_in, input_names, "input", name)
        if len(chosen) != len(every_in):
            raise InputError(f"{name} needs all its inputs fed: {', '.join(_listed(every_in))}")
        for info, shape in zip(chosen, input_shapes or [], strict=False):
            if len(shape) != len(info.shape) or any(d not in (-1, s) for d, s in zip(info.shape, shape)):
                raise InputError(f"input {info.name} of {name} is {info.shape}; --input_shapes gives {shape}")
            info.shape = list(shape)
        self.inputs = chosen
        self.outputs = _select([self._info(t) for t in self.session.get_outputs()], output_names, "output", name)
        self.metadata = onnx_metadata(data)

    @staticmethod
    def _info(arg: Any) -> TensorInfo:
        shape = [d if isinstance(d, int) else -1 for d in arg.shape]
        return TensorInfo(arg.name, shape, np.dtype(_ONNX_TYPES.get(arg.type, np.float32)))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        values = {t.name: np.asarray(feeds[t.name], t.dtype) for t in self.inputs}
        results = self.session.run([t.name for t in self.outputs], values)
        return {t.name: np.asarray(r) for t, r in zip(self.outputs, results)}


def open_local(
    path: str | os.PathLike,
    *,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    input_shapes: list[list[int]] | None = None,
    threads: int | None = None,
) -> LocalModel:
    """Open a model to run on this host by tensor name.

    Args:
        path: a TFLite or ONNX file, a Keras .h5/.keras (loaded in safe mode), a SavedModel folder or a frozen .pb.
        input_names, output_names: the tensors to feed and read (default: the model's inputs and outputs); a
            TensorFlow source may be cut at inner tensors.
        input_shapes: one shape per input, for dynamic inputs (and checked against fixed ones).
        threads: LiteRT's thread count.

    Raises:
        InputError: no such file, not a model, or a name the model does not have (the message lists those it has).
    """
    from ..convert.formats import model_type

    path = Path(path)
    if not path.exists():
        raise InputError(f"model file {path} does not exist")
    kind = model_type(path)
    if kind == "tflite":
        return TFLiteModel(path.read_bytes(), path.name, input_names, output_names, input_shapes, threads)
    if kind == "onnx":
        return OnnxModel(path.read_bytes(), path.name, input_names, output_names, input_shapes)
    if kind in ("pb", "savedmodel", "h5", "keras"):
        return GraphModel(path, kind, input_names, output_names, input_shapes)
    raise InputError(
        f"{path.name} is a {kind} model, which this host cannot run; give TFLite, ONNX, Keras, a SavedModel or a .pb"
    )
