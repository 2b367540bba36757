"""ONNX models: Keras, TensorFlow graphs and TFLite to ONNX through tf2onnx; trimming (onnx.utils.Extractor),
renaming, default shapes, metadata_props (key -> text) and the check of ops against a target opset.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .. import framework
from ..errors import EiqError, InputError

#: The ONNX opset exports use: 13 is what ONNX Runtime and most NPU toolchains take without surprises.
OPSET = 13
#: How many value names an error message lists before "and N more".
LISTED = 30


def _tf2onnx() -> Any:
    framework.tf()
    try:
        import tf2onnx
    except ImportError:
        raise EiqError("ONNX export needs tf2onnx and onnx: pip install 'eiq-lab[onnx]'") from None
    return tf2onnx


def to_onnx(model: Any, metadata: Mapping[str, str] | None = None, opset: int = OPSET) -> bytes:
    """Convert a Keras model to ONNX (batch size 1, float32), with `metadata` as metadata_props.

    Raises:
        EiqError: tf2onnx is not installed (the message says how to install it) or cannot convert the model.
    """
    tf = framework.tf()
    tf2onnx = _tf2onnx()
    shape = [1, *model.input_shape[1:]]
    signature = (tf.TensorSpec(shape, tf.float32, name="input"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as exc:  # tf2onnx raises many kinds; the user needs the model and the reason
        raise EiqError(f"tf2onnx could not convert model {model.name!r}: {exc}") from None
    set_metadata(proto, metadata or {})
    return proto.SerializeToString()


def read_metadata(data: bytes) -> dict[str, str]:
    """The metadata_props of an ONNX model: key -> text."""
    import onnx

    return {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}


def graph_to_onnx(graph: Any, opset: int = OPSET) -> Any:
    """Convert a loaded TensorFlow graph (`graphs.Graph`) to an ONNX ModelProto with the graph's final names.

    Raises:
        EiqError: tf2onnx cannot convert it (an op it does not know, an opset too old for an op ...).
    """
    tf2onnx = _tf2onnx()
    function = graph.function
    try:
        proto, _ = tf2onnx.convert.from_graph_def(
            function.graph.as_graph_def(), name=graph.name, opset=opset,
            input_names=[t.name for t in function.inputs], output_names=[t.name for t in function.outputs],
        )  # fmt: skip
    except Exception as exc:  # tf2onnx raises many kinds
        raise EiqError(f"tf2onnx could not convert {graph.source.name} to ONNX opset {opset}: {_first(exc)}") from None
    internal = {t.name: t.name.split(":")[0] for t in [*function.inputs, *function.outputs]}
    rename(proto, {tensor: graph.renames.get(op, op) for tensor, op in internal.items()})
    proto.graph.name = graph.name
    return proto


def tflite_to_onnx(path: str | os.PathLike, opset: int = OPSET) -> Any:
    """Convert a TFLite model (float or int8) to an ONNX ModelProto; int8 tensors become QDQ pairs.

    Raises:
        EiqError: tf2onnx cannot convert it.
    """
    tf2onnx = _tf2onnx()
    try:
        proto, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
    except Exception as exc:
        raise EiqError(f"tf2onnx could not convert {Path(path).name} to ONNX opset {opset}: {_first(exc)}") from None
    return proto


def load(path: str | os.PathLike) -> Any:
    """Read an ONNX model file.

    Raises:
        InputError: the file is not an ONNX model.
    """
    import onnx

    try:
        proto = onnx.load_model(str(path), load_external_data=True)
    except Exception as exc:  # protobuf DecodeError and OSError alike
        raise InputError(f"{path} is not an ONNX model: {_first(exc)}") from None
    if not proto.HasField("graph"):
        raise InputError(f"{path} is not an ONNX model: it has no graph")
    return proto


def value_names(proto: Any) -> list[str]:
    """Every value a graph has that can be named for trimming: inputs, outputs, then node outputs in order."""
    graph = proto.graph
    inits = {i.name for i in graph.initializer}
    names = [i.name for i in graph.input if i.name not in inits] + [o.name for o in graph.output]
    seen = set(names)
    for node in graph.node:
        for out in node.output:
            if out and out not in seen:
                names.append(out)
                seen.add(out)
    return names


def split_rename(spec: str, known: set[str]) -> tuple[str, str | None]:
    """``NAME`` or ``NAME:NEWNAME`` for an ONNX value; a NAME holding ':' (``Identity:0``) is matched whole first."""
    spec = spec.strip()
    if spec in known or ":" not in spec:
        return spec, None
    name, _, new = spec.rpartition(":")
    return name, new or None


def trim(proto: Any, inputs: list[str], outputs: list[str], source: str) -> tuple[Any, dict[str, str]]:
    """Cut an ONNX model to the named inputs and outputs (``NAME[:NEWNAME]`` each; empty: keep the model's own).

    Returns:
        The trimmed model and the renames asked for (old name -> new name).

    Raises:
        InputError: a name that is not a value of the graph (the message lists those that are), or a cut
            that leaves an output depending on a value that is not among the inputs.
    """
    import onnx.shape_inference
    import onnx.utils

    names = value_names(proto)
    known = set(names)
    renames: dict[str, str] = {}
    chosen: dict[str, list[str]] = {"input": [], "output": []}
    for role, specs in (("input", inputs), ("output", outputs)):
        for spec in specs:
            name, new = split_rename(spec, known)
            if name not in known:
                raise InputError(_missing(proto, name, role, source, names))
            chosen[role].append(name)
            if new:
                renames[name] = new
    graph_inputs = [i.name for i in proto.graph.input if i.name not in {x.name for x in proto.graph.initializer}]
    ins = chosen["input"] or graph_inputs
    outs = chosen["output"] or [o.name for o in proto.graph.output]
    if ins == graph_inputs and outs == [o.name for o in proto.graph.output]:
        return proto, renames
    try:
        # the Extractor needs the type of every value it cuts at: shape inference gives inner values theirs
        trimmed = onnx.utils.Extractor(onnx.shape_inference.infer_shapes(proto)).extract_model(ins, outs)
    except Exception as exc:  # KeyError for values without inferred shapes, ValueError ...
        raise InputError(
            f"cannot cut {source} at inputs {', '.join(ins)} and outputs {', '.join(outs)}: {_first(exc)}"
        ) from None
    needed = {i.name for i in trimmed.graph.input} - {x.name for x in trimmed.graph.initializer}
    extra = sorted(needed - set(ins))
    if extra:
        raise InputError(f"the outputs of {source} also need {', '.join(extra)}: add them to the input names")
    trimmed.ir_version, trimmed.producer_name = proto.ir_version, proto.producer_name
    del trimmed.metadata_props[:]
    trimmed.metadata_props.extend(proto.metadata_props)
    return trimmed, renames


def _missing(proto: Any, name: str, role: str, source: str, names: list[str]) -> str:
    inits = {i.name for i in proto.graph.initializer}
    ins = [i.name for i in proto.graph.input if i.name not in inits]
    shown = ", ".join(names[:LISTED])
    more = f", and {len(names) - LISTED} more" if len(names) > LISTED else ""
    return (
        f"{role} name {name!r} is not in {source}; its inputs: {', '.join(ins)}; its outputs: "
        f"{', '.join(o.name for o in proto.graph.output)}; values you can name: {shown}{more}"
    )


def rename(proto: Any, mapping: Mapping[str, str]) -> None:
    """Rename values everywhere they appear (inputs, outputs, node inputs and outputs, value_info, initializers)."""
    mapping = {old: new for old, new in mapping.items() if old != new}
    if not mapping:
        return
    graph = proto.graph
    taken = set(value_names(proto)) - set(mapping)
    for new in mapping.values():
        if new in taken:
            raise InputError(f"cannot rename to {new!r}: the model already has a value of that name")
    for value in [*graph.input, *graph.output, *graph.value_info, *graph.initializer]:
        value.name = mapping.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]


def fix_shapes(proto: Any, default_shape: list[int] | None) -> None:
    """Give graph inputs with dynamic dimensions the default shape (a dynamic batch alone: 1).

    Raises:
        InputError: a dynamic dimension other than the batch without a default, or a default that does not fit.
    """
    from .graphs import fixed_shape

    inits = {i.name for i in proto.graph.initializer}
    for value in proto.graph.input:
        if value.name in inits or not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        dims = (
            [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
            if tensor.HasField("shape")
            else None
        )
        shape = fixed_shape(value.name, dims, default_shape)
        tensor.shape.Clear()
        for size in shape:
            tensor.shape.dim.add().dim_value = size


def set_metadata(proto: Any, metadata: Mapping[str, str]) -> None:
    """Add (or replace) metadata_props entries."""
    kept = [p for p in proto.metadata_props if p.key not in metadata]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def opset_of(proto: Any) -> int:
    """The default-domain opset a model imports."""
    return next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), 0)


def unsupported_ops(proto: Any, opset: int) -> list[str]:
    """The default-domain op types of a model that ONNX opset `opset` does not define (e.g. Gelu before 20)."""
    import onnx.defs

    missing = set()
    for node in proto.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            missing.add(node.op_type)
    return sorted(missing)


def to_opset(proto: Any, opset: int, source: str) -> Any:
    """The model converted to ONNX opset `opset` (itself when it already uses it).

    Raises:
        InputError: an op of the model does not exist in that opset (named), or the conversion fails.
    """
    import onnx.version_converter

    if opset_of(proto) == opset:
        return proto
    missing = unsupported_ops(proto, opset)
    if missing:
        raise InputError(
            f"{source} uses {', '.join(missing)}, which ONNX opset {opset} does not define "
            f"(the model uses opset {opset_of(proto)}): choose a newer --onnx_opset"
        )
    try:
        return onnx.version_converter.convert_version(proto, opset)
    except Exception as exc:  # the converter raises RuntimeError and others
        raise InputError(f"cannot convert {source} from opset {opset_of(proto)} to {opset}: {_first(exc)}") from None


def _first(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def load_bytes(data: bytes) -> Any:
    """An ONNX ModelProto from its serialized bytes."""
    import onnx

    return onnx.load_model_from_string(data)
