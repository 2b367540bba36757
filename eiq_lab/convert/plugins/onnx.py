"""The built-in ONNX converter plugin: ONNX -> ONNX by the plugin contract: trimming to named inputs and outputs,
renaming, default shapes, a target opset (ops it lacks are named), metadata, and static QDQ quantization.

Table 5.1's ONNX row here: ONNX -> ONNX q works; ONNX q -> ONNX q is N/A (already quantized). ONNX -> TFLite is
the `onnx2tf` plugin's, ONNX -> RTM the `rtm` plugin's.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...errors import InputError
from ...files import write_atomic as write
from ..params import Params
from .tensorflow import COMMON, ONNX, QUANTIZATION, QuantOptions, finish_onnx, run, types

INPUTS = [{"ext": "onnx", "name": "ONNX"}]
OUTPUTS = [{"ext": "onnx", "name": "ONNX"}]
_NOT_FOR_ONNX = ("input_type", "output_type")  # a quantized ONNX model keeps float32 inputs and outputs


def query_convert(src_type: str | None, dst_type: str | None) -> dict | None:
    """The formats this plugin converts (both None), the parameter schema for onnx -> onnx, else None."""
    if src_type is None and dst_type is None:
        return {"supported_inputs": INPUTS, "supported_outputs": OUTPUTS}
    if (src_type, dst_type) != ("onnx", "onnx"):
        return None
    quantization = {k: v for k, v in QUANTIZATION.items() if k not in _NOT_FOR_ONNX}
    return {**COMMON, **quantization, **ONNX}


def convert(src_file: str, dst_file: str, params: Mapping[str, Any] | None = None) -> dict:
    """Rewrite the ONNX model `src_file` as `dst_file` (plugin contract); never raises for bad input."""
    return run(lambda: _convert(Path(src_file), Path(dst_file), Params(params or {})))


def _convert(src: Path, dst: Path, p: Params) -> str:
    from .. import onnx as onnx_tools
    from ..onnx_quantize import is_quantized

    src_type, dst_type = types(src, dst, p)
    if (src_type, dst_type) != ("onnx", "onnx"):
        raise InputError(f"this plugin rewrites ONNX models as ONNX; received {src_type} -> {dst_type}")
    quantize = p.bool("quantize")
    if quantize and is_quantized(src.read_bytes()):
        raise InputError(
            f"{src.name} is already quantized (it holds QuantizeLinear/QLinear ops): ONNX q -> ONNX q is N/A; "
            "drop --quantize, or quantize its float model"
        )
    options = QuantOptions(p, "onnx") if quantize else None
    proto = onnx_tools.load(src)
    opset = p.int("onnx_opset")
    if opset:
        proto = onnx_tools.to_opset(proto, opset, src.name)
    data, shapes = finish_onnx(proto, p, src.name, options, default_name=proto.graph.name or src.stem)
    write(dst, data)
    kind = "float32" if options is None else f"int8 ({'per-channel' if options.per_channel else 'per-tensor'})"
    return (
        f"rewrote {src.name} as {dst} (onnx opset {onnx_tools.opset_of(proto)}, {kind}, {len(data):,} bytes); {shapes}"
    )
