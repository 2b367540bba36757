"""ONNX post-training quantization: ONNX Runtime's static QDQ quantization calibrated on our samples, and
the weight scales a QDQ model really holds (to check per-tensor is per-tensor).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError, InputError

#: Activation and weight types ONNX Runtime quantizes to.
QUANT_TYPES = ("int8", "uint8")
#: Ops that only a quantized ONNX model holds.
QUANTIZED_OPS = {
    "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
    "MatMulInteger", "QLinearAdd", "QLinearMul", "QGemm",
}  # fmt: skip
#: Why an ONNX model keeps float32 input and output (the guide, Table 4.3).
FLOAT_IO_REASON = (
    "ONNX conversions must be of the float32 type (the guide, Table 4.3): a QDQ model takes and gives float32, "
    "the int8 inside sits between QuantizeLinear/DequantizeLinear pairs; leave --input/--output at float32"
)


def _load(data: bytes) -> Any:
    import onnx

    try:
        return onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises several kinds for bytes that are not a model
        raise InputError(f"not an ONNX model ({exc.__class__.__name__}); give a .onnx file") from None


def is_quantized(data: bytes) -> bool:
    """Whether an ONNX model already holds quantization ops (QDQ pairs or QLinear/Integer ops)."""
    return any(node.op_type in QUANTIZED_OPS for node in _load(data).graph.node)


def image_input(proto: Any) -> tuple[str, list[int | None]]:
    """The name and dims (None where dynamic) of the model's one real input (initializers are left out)."""
    constants = {init.name for init in proto.graph.initializer}
    inputs = [i for i in proto.graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise InputError(f"quantization calibrates a model with one image input; this one has {len(inputs)}")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over our samples: one {input: [1, ...]} dict at a time."""

    def __init__(self, name: str, dims: list[int | None], samples: Callable[[], Iterable[np.ndarray]]):
        self.name, self.dims, self.samples = name, dims, samples
        self._iterator: Any = None

    def _feed(self, sample: np.ndarray) -> np.ndarray:
        x = np.asarray(sample, np.float32)
        if x.ndim == 3 and len(self.dims) == 4:
            channels = x.shape[2]
            if self.dims[1] == channels and self.dims[3] != channels:  # a channels-first (NCHW) model
                x = x.transpose(2, 0, 1)
            x = x[None]
        return x

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._iterator is None:
            self._iterator = iter(self.samples())
        sample = next(self._iterator, None)
        return None if sample is None else {self.name: self._feed(sample)}

    def rewind(self) -> None:
        self._iterator = None


def quantize_onnx(
    onnx_bytes: bytes,
    samples: Callable[[], Iterable[np.ndarray]],
    *,
    per_channel: bool = False,
    activation_type: str = "int8",
    weight_type: str = "int8",
) -> bytes:
    """Static QDQ quantization of a float ONNX model with ONNX Runtime, calibrated (min-max) on `samples`.

    Input and output stay float32 (QuantizeLinear after the input, DequantizeLinear before the output).

    Args:
        onnx_bytes: the float model.
        samples: a function returning preprocessed float32 inputs [H, W, C] (transposed for an NCHW model)
            or the model's full input shape.
        per_channel: one scale per output channel of each weight tensor (False: one per tensor).
        activation_type, weight_type: ``"int8"`` or ``"uint8"``.

    Raises:
        InputError: not an ONNX model, already quantized, a bad type, more than one input.
        EiqError: onnxruntime is missing or failed (its reason in the message).
    """
    for what, value in (("activation type", activation_type), ("weight type", weight_type)):
        if value not in QUANT_TYPES:
            raise InputError(f"ONNX {what} must be one of {', '.join(QUANT_TYPES)}; received {value!r}")
    proto = _load(onnx_bytes)
    if any(node.op_type in QUANTIZED_OPS for node in proto.graph.node):
        raise InputError(
            "this ONNX model is already quantized (it holds QuantizeLinear/QLinear ops); give its float model"
        )
    try:
        from onnxruntime import quantization as q
    except ImportError:
        raise EiqError("ONNX quantization needs onnxruntime: pip install onnxruntime") from None
    name, dims = image_input(proto)
    types = {"int8": q.QuantType.QInt8, "uint8": q.QuantType.QUInt8}
    with tempfile.TemporaryDirectory(prefix="eiq-onnx-quant-") as folder:
        source, prepared, target = (Path(folder) / n for n in ("float.onnx", "prepared.onnx", "int8.onnx"))
        source.write_bytes(onnx_bytes)
        try:  # shape inference and graph optimization first, as ONNX Runtime recommends
            q.quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        except Exception:  # a model pre-processing cannot take still quantizes, just less tidily
            prepared = source
        try:
            q.quantize_static(
                str(prepared), str(target), _Reader(name, dims, samples), quant_format=q.QuantFormat.QDQ,
                per_channel=per_channel, activation_type=types[activation_type], weight_type=types[weight_type],
                calibrate_method=q.CalibrationMethod.MinMax,
            )  # fmt: skip
        except Exception as exc:  # ORT raises many kinds; the user needs the reason
            raise EiqError(f"ONNX Runtime could not quantize the model: {str(exc).strip()[:800]}") from None
        return target.read_bytes()


def weight_scales(data: bytes) -> dict[str, int]:
    """How many scales each quantized weight of a QDQ ONNX model carries: the scale initializer of every
    DequantizeLinear whose input is an int8/uint8 initializer (int32 biases are left out).

    Returns:
        ``{weight initializer name: number of scales}`` (1 for per-tensor).
    """
    import onnx

    proto = _load(data)
    initializers = {init.name: init for init in proto.graph.initializer}
    integer = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    out: dict[str, int] = {}
    for node in proto.graph.node:
        if node.op_type != "DequantizeLinear" or node.input[0] not in initializers:
            continue
        if initializers[node.input[0]].data_type not in integer or node.input[1] not in initializers:
            continue
        out[node.input[0]] = int(np.prod(initializers[node.input[1]].dims, dtype=np.int64))
    return out
