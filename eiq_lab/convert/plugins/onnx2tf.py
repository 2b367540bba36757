"""The built-in ONNX -> TFLite converter plugin: onnx2tf, run out of process in a managed environment that
``eiq-converter --setup onnx2tf`` creates (onnx2tf pins TensorFlow 2.19, numpy 1.26 and protobuf 4).

The environment holds onnx2tf and the three small packages it imports (``--no-deps``) and sees this
Python's TensorFlow, ONNX and numpy behind them (`environments.create(inherit=True)`): about 35 MB and a few
seconds to set up, where onnx2tf with its own pins is 2.6 GB. The ONNX model is trimmed, renamed and given
its default shape here first (the `onnx` helpers), onnx2tf writes a SavedModel and a float TFLite model,
and quantization calibrates that SavedModel here with the same samples as every other cell.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import EiqError, InputError
from .. import environments
from ..params import Params

NAME = "onnx2tf"
#: What the environment installs (versions tested together with TensorFlow 2.21 / numpy 2.4 / onnx 1.23).
REQUIREMENTS = ("onnx2tf==1.29.24", "onnx-graphsurgeon==0.6.1", "sng4onnx==2.0.1", "sne4onnx==2.0.1")
#: onnx2tf's own pins (TensorFlow 2.19 ...) clash with ours: its imports are satisfied by ours instead.
PIP_ARGS = ("--no-deps",)
#: onnx2tf checks its output on 20 sample images it downloads unless this file is in its working folder.
SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
TIMEOUT = 1800

INPUTS = [{"ext": "onnx", "name": "ONNX"}]
OUTPUTS = [{"ext": "tflite", "name": "TensorFlow Lite (through onnx2tf)"}]


def query_convert(src_type: str | None, dst_type: str | None) -> dict | None:
    """ONNX -> TFLite (plugin contract): the formats, the parameter schema, or None for another pair."""
    if src_type is None and dst_type is None:
        return {"supported_inputs": INPUTS, "supported_outputs": OUTPUTS}
    if (src_type, dst_type) != ("onnx", "tflite"):
        return None
    from .tensorflow import COMMON, QUANTIZATION

    return {**COMMON, **QUANTIZATION}


def plugin_status() -> dict[str, str]:
    """Ready once the managed environment exists; else how to create it."""
    env = environments.environment(NAME)
    if env.ready:
        return {"status": "ready", "message": f"onnx2tf environment: {env.path}"}
    return {
        "status": "needs setup",
        "message": "run eiq-converter --setup onnx2tf (installs onnx2tf into a managed environment; ~35 MB)",
    }


def plugin_setup(
    *, accept_license: bool = False, remove: bool = False, log: Callable[[str], None] | None = None
) -> str:
    """Create or update (or, with `remove`, delete) the onnx2tf environment; returns what was done.

    onnx2tf is MIT-licensed, so `accept_license` is not needed.
    """
    if remove:
        return f"removed {environments.remove(NAME)}"
    env = environments.create(NAME, REQUIREMENTS, inherit=True, pip_args=PIP_ARGS, info={"tool": "onnx2tf"}, log=log)
    manifest = env.manifest()
    return f"onnx2tf is set up in {env.path} ({manifest['bytes'] / 1e6:.0f} MB, {manifest['setup_seconds']:.0f} s)"


def convert(src_file: str, dst_file: str, params: Mapping[str, Any] | None = None) -> dict:
    """Convert an ONNX model to TFLite (plugin contract); never raises for bad input."""
    from .tensorflow import run

    return run(lambda: _convert(Path(src_file), Path(dst_file), Params(params or {})))


def _nhwc_inputs(proto: Any) -> list[str]:
    """Image inputs already in NHWC order (tf2onnx's): onnx2tf must keep them, not transpose them again."""
    inits = {i.name for i in proto.graph.initializer}
    names = []
    for value in proto.graph.input:
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        if value.name not in inits and len(dims) == 4 and dims[3] in (1, 3, 4) and dims[1] not in (1, 3, 4):
            names.append(value.name)
    return names


def _convert(src: Path, dst: Path, p: Params) -> str:
    from ...files import write_atomic as write
    from .. import onnx as onnx_tools
    from ..outofprocess import call
    from .tensorflow import QuantOptions, metadata_entries

    env = environments.environment(NAME)
    if not env.ready:
        raise EiqError(f"ONNX -> TFLite runs onnx2tf in a managed environment: {plugin_status()['message']}")
    options = QuantOptions(p, "tflite") if p.bool("quantize") else None
    proto = onnx_tools.load(src)
    proto, renames = onnx_tools.trim(proto, p.list("input_names"), p.list("output_names"), src.name)
    onnx_tools.rename(proto, renames)
    onnx_tools.fix_shapes(proto, p.shape("input_shape"))
    with tempfile.TemporaryDirectory(prefix="eiq_onnx2tf_") as tmp:
        work = Path(tmp)
        model = work / "model.onnx"
        model.write_bytes(proto.SerializeToString())
        _sample_file(work)
        kwargs = {
            "input_onnx_file_path": str(model), "output_folder_path": str(work / "saved_model"),
            "non_verbose": True, "not_use_onnxsim": True, "copy_onnx_input_output_names_to_tflite": True,
            "keep_nwc_or_nhwc_or_ndhwc_input_names": _nhwc_inputs(proto) or None,
        }  # fmt: skip
        result = call(env.python, "onnx2tf", "convert", kwargs=kwargs, cwd=work, timeout=TIMEOUT, what="onnx2tf")
        floats = work / "saved_model" / "model_float32.tflite"
        if not floats.is_file():
            raise EiqError(f"onnx2tf wrote no TFLite model for {src.name}; it said: {_tail(result.stderr)}")
        if options is None:
            data, kind = floats.read_bytes(), "float32"
        else:
            data, kind = _quantize(work / "saved_model", floats.read_bytes(), options)
    data = _io_names(data, proto, p.str("name") or proto.graph.name or src.stem)
    entries = metadata_entries(p)
    if entries:
        from ..tflite import with_metadata

        data = with_metadata(data, entries)
    write(dst, data)
    return f"converted {src.name} (onnx) to {dst} (tflite, {kind}, {len(data):,} bytes) with onnx2tf"


def _quantize(saved_model: Path, float_model: bytes, options: Any) -> tuple[bytes, str]:
    """int8 from onnx2tf's SavedModel, calibrated on the user's samples (the float model gives the shape)."""
    from ai_edge_litert.interpreter import Interpreter

    from ..tflite import quantize_concrete

    inputs = Interpreter(model_content=float_model).get_input_details()
    if len(inputs) != 1:
        raise InputError(f"quantization calibrates one image input; this model has {len(inputs)}: trim it")
    shape = [int(d) for d in inputs[0]["shape"]]
    data = quantize_concrete(
        str(saved_model), options.samples(shape), per_channel=options.per_channel,
        input_type=options.input_type, output_type=options.output_type, converter=options.converter,
    )  # fmt: skip
    return data, f"int8 ({'per-channel' if options.per_channel else 'per-tensor'})"


def _io_names(data: bytes, proto: Any, name: str) -> bytes:
    """The ONNX model's input and output names (and the model's name) on the TFLite model, which onnx2tf
    leaves as ``serving_default_<x>:0`` / ``PartitionedCall:0``; onnx2tf keeps their order."""
    from ... import framework

    framework.tf()
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    sub = model.subgraphs[0]
    inits = {i.name for i in proto.graph.initializer}
    wanted = ([v.name for v in proto.graph.input if v.name not in inits], [v.name for v in proto.graph.output])
    for indices, names in zip((sub.inputs, sub.outputs), wanted):
        if len(indices) == len(names):
            for index, new in zip(indices, names):
                sub.tensors[index].name = new
    sub.name = name
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.name = sub.tensors[entry.tensorIndex].name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _sample_file(folder: Path) -> None:
    """The sample images onnx2tf would download to check its work, as seeded noise (no network here)."""
    import numpy as np

    noise = np.random.default_rng(0).random((20, 128, 128, 3), dtype=np.float32)
    np.save(folder / SAMPLE_FILE, noise)


def _tail(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return " | ".join(lines[-4:]) or "nothing"
