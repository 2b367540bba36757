"""The built-in TensorFlow converter plugin: frozen .pb, SavedModel (folder or tar), Keras .h5/.keras and TFLite
sources to TFLite and ONNX, float or quantized, by the plugin contract (`query_convert`, `convert`).

The guide's Table 5.1 (section 5.1), the cells this plugin owns ("q": the output is quantized here):

=====================  ======  ========  ======  ==========
source \\ output        TFLite  TFLite q  ONNX    ONNX q
=====================  ======  ========  ======  ==========
1.x .pb                Y       Y         Y       Y
SavedModel folder/tar  Y       Y         Y       Y
Keras .h5 / .keras     Y       Y         Y       Y
TFLite (float)         N/A     N         Y       Y
TFLite q (int8)        N/A     N/A       Y       N/A
RTM                    N       N         N       N
=====================  ======  ========  ======  ==========

Every N and N/A cell fails with its reason (`refusal`). ONNX sources are the `onnx` plugin's (ONNX -> ONNX)
and the `onnx2tf` plugin's (ONNX -> TFLite); RTM outputs the `rtm` plugin's.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import EiqError, InputError
from ...files import write_atomic as write
from ..params import Params

INPUTS = [
    {"ext": "pb", "name": "TensorFlow 1.x frozen graph"},
    {"ext": "savedmodel", "name": "TensorFlow SavedModel (folder or tar)"},
    {"ext": "h5", "name": "Keras HDF5"},
    {"ext": "keras", "name": "Keras (.keras, Keras 2 or 3)"},
    {"ext": "tflite", "name": "TensorFlow Lite"},
]
OUTPUTS = [{"ext": "tflite", "name": "TensorFlow Lite"}, {"ext": "onnx", "name": "ONNX"}]
TF_SOURCES = ("pb", "savedmodel", "h5", "keras")


def _p(kind: str, default: Any, group: str, text: str, choices: list | None = None, public: bool = True) -> dict:
    return {"type": kind, "default": default, "choices": choices, "group": group, "public": public, "help": text}


#: Parameters every conversion takes (the guide's Table 4.2).
COMMON = {
    "name": _p("string", "", "model", "the output model's name (default: the source's)"),
    "input_shape": _p("string", "", "model", "default shape for dynamic inputs, e.g. 1,300,300,3 (H, W, C order)"),
    "input_names": _p("string", "", "model", "inputs, comma-separated: NAME[:INDEX][:NEWNAME]; inner tensors trim"),
    "output_names": _p("string", "", "model", "outputs, comma-separated: NAME[:INDEX][:NEWNAME]; inner tensors trim"),
    "labels": _p("string", "", "model", "a labels.txt to embed (TFLite metadata / ONNX metadata_props 'labels')"),
    "metadata": _p("string", "", "model", "KEY=VALUE entries to embed, comma-separated or repeated"),
}
#: Quantization parameters (the guide's Table 4.3).
QUANTIZATION = {
    "quantize": _p("bool", False, "quantization", "post-training int8 quantization"),
    "quant_channel": _p("bool", True, "quantization", "per-channel weights (false: per-tensor)"),
    "quantize_format": _p("string", "int8", "quantization", "int8, or uint8 (uint8 input/output)", ["int8", "uint8"]),
    "input_type": _p("string", "float32", "quantization", "quantized input type", ["float32", "int8", "uint8"]),
    "output_type": _p("string", "float32", "quantization", "quantized output type", ["float32", "int8", "uint8"]),
    "quant_normalization": _p(
        "string",
        "signed",
        "quantization",
        "calibration input range: signed [-1, 1], unsigned [0, 1], none (0-255)",
        ["signed", "unsigned", "none"],
    ),
    "samples": _p("string", "", "quantization", "calibration images: a folder, files, a .eiqp project or a count N"),
    "num_samples": _p("int", 10, "quantization", "number of calibration samples"),
    "crop": _p("bool", False, "quantization", "calibrate on the project's box crops"),
}
TFLITE = {
    "tflite_converter": _p("string", "mlir", "tflite", "the TFLite converter", ["mlir", "toco"], public=False),
    "vela_config": _p(
        "string",
        "",
        "tflite",
        "compile the int8 TFLite output for Ethos-U with Vela: a preset (imx93, "
        "ethos-u55-256, ...) or a Vela .ini (the guide's 'TF Lite Vela' output)",
    ),
}
ONNX = {"onnx_opset": _p("int", 13, "onnx", "the ONNX opset to write", list(range(11, 21)))}


def query_convert(src_type: str | None, dst_type: str | None) -> dict | None:
    """The formats this plugin converts (both None), the parameter schema for a pair, or None for a pair it lacks."""
    if src_type is None and dst_type is None:
        return {"supported_inputs": INPUTS, "supported_outputs": OUTPUTS}
    if dst_type not in ("tflite", "onnx"):
        return None
    if src_type in TF_SOURCES or src_type == "tflite" or src_type == "rtm":
        # tflite -> tflite and rtm sources answer too: convert() says why the table marks them N
        return {**COMMON, **QUANTIZATION, **(TFLITE if dst_type == "tflite" else ONNX)}
    return None


def refusal(src_type: str, dst_type: str, *, quantized_source: bool = False, quantize: bool = False) -> str | None:
    """Why Table 5.1 marks a cell N or N/A (module docstring); None for a cell that works."""
    if src_type == "rtm":
        return (
            "an RTM model cannot be converted to another format: DeepViewRT's RTM holds no graph that TensorFlow "
            "or ONNX can read; convert from the model the RTM file was made from"
        )
    if src_type == "tflite" and dst_type == "tflite":
        if quantized_source:
            return (
                "the source is already an int8 TFLite model, and an int8 TFLite model cannot be re-quantized: "
                "convert from the float source"
            )
        if quantize:
            return (
                "a float TFLite model cannot be quantized: the TFLite converter reads TensorFlow graphs, not TFLite "
                "files; quantize from the Keras, SavedModel or .pb source (or to ONNX q: tflite -> onnx --quantize)"
            )
        return "the source is already a TFLite model: nothing to convert (TFLite -> TFLite is N/A)"
    if src_type == "tflite" and dst_type == "onnx" and quantized_source and quantize:
        return (
            "the source is an int8 TFLite model: it converts to ONNX as it is (its int8 tensors become QDQ pairs); "
            "an int8 model cannot be re-quantized: drop --quantize"
        )
    return None


def convert(src_file: str, dst_file: str, params: Mapping[str, Any] | None = None) -> dict:
    """Convert `src_file` to `dst_file` (plugin contract); never raises for bad input."""
    return run(lambda: _convert(Path(src_file), Path(dst_file), Params(params or {})))


def run(work: Callable[[], str]) -> dict:
    """The plugin contract's answer for `work`: its message on success, the error's message on failure."""
    try:
        return {"success": "yes", "message": work()}
    except EiqError as exc:
        return {"success": "no", "message": str(exc)}
    except Exception as exc:  # the contract: report, never raise
        text = str(exc).strip().splitlines()
        return {"success": "no", "message": f"conversion failed: {type(exc).__name__}: {text[0] if text else ''}"}


def types(src: Path, dst: Path, p: Params) -> tuple[str, str]:
    """(source type judged by content, output type from the parameters or the output's suffix)."""
    from ..formats import model_type, output_type

    src_type = model_type(src)
    dst_type = p.str("output-model-type") or output_type(dst)
    return src_type, dst_type


def _convert(src: Path, dst: Path, p: Params) -> str:
    src_type, dst_type = types(src, dst, p)
    quantize = p.bool("quantize")
    vela = p.str("vela_config")
    if vela and dst_type != "tflite":
        raise InputError(f"vela_config compiles a TFLite output for Ethos-U; {dst.name} is {dst_type}")
    if vela and src_type == "tflite" and not quantize:  # the guide's 'TF Lite Vela' output of a TFLite model
        data = _vela(src.read_bytes(), vela)
        write(dst, data)
        return f"compiled {src.name} for Ethos-U ({vela}) to {dst} ({len(data):,} bytes)"
    quantized_source = src_type == "tflite" and tflite_is_quantized(src.read_bytes())
    reason = refusal(src_type, dst_type, quantized_source=quantized_source, quantize=quantize)
    if reason:
        raise InputError(f"{src.name} -> {dst.name}: {reason}")
    if src_type not in (*TF_SOURCES, "tflite") or dst_type not in ("tflite", "onnx"):
        raise InputError(f"this plugin converts {', '.join([*TF_SOURCES, 'tflite'])} to tflite or onnx; "
                         f"received {src_type} -> {dst_type}")  # fmt: skip
    if not quantize:
        typed = {k: p.str(k, "float32") for k in ("input_type", "output_type")}
        if set(typed.values()) != {"float32"}:
            raise InputError(
                f"an int8 or uint8 input/output needs a quantized model; received input type {typed['input_type']}, "
                f"output type {typed['output_type']}: add --quantize (with --samples) or leave them float32"
            )
    options = QuantOptions(p, dst_type) if quantize else None
    with tempfile.TemporaryDirectory(prefix="eiq_convert_") as work:
        if src_type == "tflite":
            from .. import onnx as onnx_tools

            proto = onnx_tools.tflite_to_onnx(src, p.int("onnx_opset", onnx_tools.OPSET))
            data, shapes = finish_onnx(proto, p, src.name, options, default_name=src.stem)
        else:
            from ..graphs import load_graph

            graph = load_graph(
                src, src_type, input_names=p.list("input_names"), output_names=p.list("output_names"),
                default_shape=default_shape(p), name=p.str("name") or p.str("model_name"), workdir=work,
            )  # fmt: skip
            if dst_type == "tflite":
                data, shapes = graph_to_tflite(graph, p, options), _graph_shapes(graph)
            else:
                from .. import onnx as onnx_tools

                proto = onnx_tools.graph_to_onnx(graph, p.int("onnx_opset", onnx_tools.OPSET))
                data, shapes = finish_onnx(proto, Params({**p.to_dict(), "input_names": None, "output_names": None}),
                                           src.name, options, default_name=graph.name)  # fmt: skip
    if vela:
        data = _vela(data, vela)
    write(dst, data)
    kind = "float32" if options is None else f"int8 ({'per-channel' if options.per_channel else 'per-tensor'})"
    kind += f", compiled for Ethos-U ({vela})" if vela else ""
    return f"converted {src.name} ({src_type}) to {dst} ({dst_type}, {kind}, {len(data):,} bytes); {shapes}"


def _vela(data: bytes, config: str) -> bytes:
    """An int8 TFLite model compiled with Vela for `config` (a float model is refused with the reason)."""
    from ..vela import compile_for_ethos_u

    with tempfile.TemporaryDirectory(prefix="eiq_vela_") as work:
        return compile_for_ethos_u(data, Path(work) / "out", config).model.read_bytes()


class QuantOptions:
    """The quantization parameters, checked: types, format, calibration samples."""

    def __init__(self, p: Params, dst_type: str):
        self.per_channel = p.bool("quant_channel", True)
        self.format = p.str("quantize_format", "int8")
        if self.format not in ("int8", "uint8"):
            raise InputError(f"quantize_format must be int8 or uint8; received {self.format!r}")
        default_io = "uint8" if self.format == "uint8" else "float32"
        self.input_type = p.str("input_type", default_io)
        self.output_type = p.str("output_type", default_io)
        if dst_type == "onnx" and (self.input_type, self.output_type) != ("float32", "float32"):
            raise InputError(
                "a quantized ONNX model keeps float32 inputs and outputs (QuantizeLinear/DequantizeLinear inside); "
                f"received input type {self.input_type}, output type {self.output_type}: leave them float32"
            )
        self.converter = p.str("tflite_converter", "mlir")
        self.source = p.get("samples")
        if self.source in (None, ""):
            raise InputError(
                "quantization needs calibration samples: --samples DIR (images), a .eiqp project, or a count N "
                "of random inputs"
            )
        self.count = p.int("num_samples", 10)
        self.crop = p.bool("crop")
        self.normalization = p.str("quant_normalization", "signed")

    def samples(self, shape: list[int]) -> Callable:
        """Calibration samples for an input of `shape` ([1, H, W, C])."""
        from ..calibration import calibration_samples

        return calibration_samples(self.source, list(shape[1:]), self.count, crop=self.crop,
                                   normalization=self.normalization)  # fmt: skip


def graph_to_tflite(graph: Any, p: Params, options: QuantOptions | None) -> bytes:
    """A loaded graph as TFLite (float, or int8 by `quantize_concrete`), renamed, named, with its metadata.

    Raises:
        InputError: quantization of a model with several inputs (calibration feeds one image input).
        EiqError: the TFLite converter failed (its reason).
    """
    from ... import framework
    from ..tflite import check_converter, quantize_concrete, with_metadata

    check_converter(p.str("tflite_converter", "mlir"))
    if options is None:
        converter = framework.tf().lite.TFLiteConverter.from_concrete_functions([graph.function])
        try:
            data = bytes(converter.convert())
        except Exception as exc:  # ConverterError and friends
            text = str(exc).strip()[:800]
            raise EiqError(f"the TFLite converter could not convert {graph.source.name}: {text}") from None
    else:
        if len(graph.inputs) != 1:
            raise InputError(
                f"quantization calibrates one image input; {graph.source.name} has {len(graph.inputs)} inputs "
                f"({', '.join(t.name for t in graph.inputs)}): trim it to one with --input_names"
            )
        data = quantize_concrete(
            graph.function, options.samples(graph.inputs[0].shape), per_channel=options.per_channel,
            input_type=options.input_type, output_type=options.output_type, converter=options.converter,
        )  # fmt: skip
    data = rename_tflite(data, graph.renames, graph.name)
    entries = metadata_entries(p)
    return with_metadata(data, entries) if entries else data


def rename_tflite(data: bytes, renames: Mapping[str, str], name: str) -> bytes:
    """Give a converted TFLite model's inputs and outputs their final names (and its subgraph the model's name).

    The converter names tensors after the graph's internal ``eiq_input_<i>`` / ``eiq_output_<i>`` (sometimes
    with a prefix or a ``:0``); a tensor without such a name is matched by its position.
    """
    from ... import framework
    from ..graphs import INPUT_PREFIX, OUTPUT_PREFIX

    framework.tf()
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    sub = model.subgraphs[0]
    for prefix, indices in ((INPUT_PREFIX, sub.inputs), (OUTPUT_PREFIX, sub.outputs)):
        for position, index in enumerate(list(indices)):
            tensor = sub.tensors[index]
            current = tensor.name.decode() if isinstance(tensor.name, bytes) else str(tensor.name)
            found = re.search(rf"{prefix}(\d+)", current)
            key = f"{prefix}{found.group(1) if found else position}"
            if key in renames:
                tensor.name = renames[key]
    sub.name = name
    for signature in model.signatureDefs or []:
        for entry in [*(signature.inputs or []), *(signature.outputs or [])]:
            entry.name = sub.tensors[entry.tensorIndex].name
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def _graph_shapes(graph: Any) -> str:
    def show(t: Any) -> str:
        shape = "" if t.shape is None else "[" + ",".join(map(str, t.shape)) + "]"
        return f"{t.name}{shape}"

    return f"inputs: {', '.join(show(t) for t in graph.inputs)}; outputs: {', '.join(t.name for t in graph.outputs)}"


def finish_onnx(
    proto: Any, p: Params, source: str, options: QuantOptions | None, default_name: str
) -> tuple[bytes, str]:
    """Trim, rename, fix shapes, name, quantize and add metadata to an ONNX model; (bytes, a line on its I/O)."""
    from .. import onnx as onnx_tools

    proto, renames = onnx_tools.trim(proto, p.list("input_names"), p.list("output_names"), source)
    onnx_tools.rename(proto, renames)
    onnx_tools.fix_shapes(proto, default_shape(p))
    proto.graph.name = p.str("name") or p.str("model_name") or default_name
    data = proto.SerializeToString()
    if options is not None:
        from ..onnx_quantize import quantize_onnx

        inits = {i.name for i in proto.graph.initializer}
        inputs = [i for i in proto.graph.input if i.name not in inits]
        shape = [d.dim_value for d in inputs[0].type.tensor_type.shape.dim] if inputs else []
        data = quantize_onnx(data, options.samples(shape), per_channel=options.per_channel,
                             activation_type=options.format)  # fmt: skip
        proto = onnx_tools.load_bytes(data)
    onnx_tools.set_metadata(proto, {k: v.decode() for k, v in metadata_entries(p).items()})
    inits = {i.name for i in proto.graph.initializer}
    shapes = ", ".join(
        f"{i.name}[{','.join(str(d.dim_value or '?') for d in i.type.tensor_type.shape.dim)}]"
        for i in proto.graph.input
        if i.name not in inits
    )
    return proto.SerializeToString(), f"inputs: {shapes}; outputs: {', '.join(o.name for o in proto.graph.output)}"


def default_shape(p: Params) -> list[int] | None:
    """The default shape for dynamic inputs: ``input_shape`` (the contract's key) or ``default_shape`` (the guide's)."""
    return p.shape("input_shape") or p.shape("default_shape")


def metadata_entries(p: Params) -> dict[str, bytes]:
    """The metadata to embed: ``labels`` (the labels file's text) and every ``metadata`` KEY=VALUE."""
    entries: dict[str, bytes] = {}
    labels = p.str("labels")
    if labels:
        path = Path(labels)
        if not path.is_file():
            raise InputError(f"labels file {path} does not exist; give a labels.txt with one class name per line")
        entries["labels"] = path.read_text(encoding="utf-8").encode()
    for item in p.list("metadata"):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"metadata must be KEY=VALUE; received {item!r}")
        entries[key.strip()] = value.encode()
    return entries


def tflite_is_quantized(data: bytes) -> bool:
    """True when a TFLite model holds int8/uint8 weight tensors (a post-training-quantized model)."""
    from ..tflite import weight_scales

    return bool(weight_scales(data))
