"""TensorFlow sources (frozen .pb, SavedModel folder or tar, Keras .h5/.keras) as one frozen, pruned concrete
function that the TFLite converter and tf2onnx both take: trimmed, with fixed input shapes and final names.

Every source becomes a frozen GraphDef first (a SavedModel's signature or a Keras model's call is frozen
with its variables as constants), so trimming by tensor name, default shapes and renaming work the same
for all three. Names are given as ``NAME[:INDEX][:NEWNAME]``: ``Preprocessor/sub`` (tensor 0 of that op),
``concat:1`` (its second output), ``Preprocessor/sub:input`` (renamed to ``input`` in the output file),
``concat:1:scores`` (both). NAME may also be a signature key (SavedModel) or a Keras input/output name.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import framework
from ..errors import InputError

#: Placeholders and outputs get these internal names, so the converted file's tensors can be found and
#: renamed to the final names whatever the converter called them.
INPUT_PREFIX = "eiq_input_"
OUTPUT_PREFIX = "eiq_output_"
#: How many tensor names an error message lists before "and N more".
LISTED = 30

_NOT_OUTPUTS = {
    "NoOp",
    "Const",
    "Assert",
    "Placeholder",
    "SaveV2",
    "RestoreV2",
    "VarHandleOp",
    "PlaceholderWithDefault",
}


@dataclass
class Tensor:
    """One input or output of a loaded graph: its tensor in the source graph and its name in the output file."""

    tensor: str
    name: str
    dtype: Any = None
    shape: list[int] | None = None


@dataclass
class Graph:
    """A source model ready for conversion.

    Attributes:
        function: a frozen concrete function; its inputs are placeholders named ``eiq_input_<i>`` with fixed
            shapes, its outputs identities named ``eiq_output_<i>``.
        inputs, outputs: what they were in the source and what they are called in the output file.
        name: the model's name.
        source: the file it came from.
    """

    function: Any
    inputs: list[Tensor]
    outputs: list[Tensor]
    name: str
    source: Path
    renames: dict[str, str] = field(default_factory=dict)

    def run(self, *arrays: Any) -> list[Any]:
        """The outputs (numpy arrays) on one array per input, each of the input's fixed shape."""
        tf = framework.tf()
        feeds = [tf.constant(a, dtype=t.dtype) for a, t in zip(arrays, self.inputs, strict=True)]
        return [out.numpy() for out in self.function(*feeds)]


def parse_name(spec: str) -> tuple[str, str | None]:
    """Split ``NAME[:INDEX][:NEWNAME]`` into (``NAME`` or ``NAME:INDEX``, ``NEWNAME`` or None).

    Example:
        >>> parse_name("Preprocessor/sub:input"), parse_name("concat:1"), parse_name("concat:1:scores")
        (('Preprocessor/sub', 'input'), ('concat:1', None), ('concat:1', 'scores'))
    """
    parts = spec.strip().split(":")
    if len(parts) == 1:
        return parts[0], None
    if len(parts) == 2:
        return (spec.strip(), None) if parts[1].isdigit() else (parts[0], parts[1] or None)
    if len(parts) == 3 and parts[1].isdigit():
        return f"{parts[0]}:{parts[1]}", parts[2] or None
    raise InputError(f"name {spec!r} must be NAME, NAME:INDEX, NAME:NEWNAME or NAME:INDEX:NEWNAME")


def load_graph(
    path: str | os.PathLike,
    kind: str,
    *,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    default_shape: list[int] | None = None,
    name: str | None = None,
    workdir: str | os.PathLike | None = None,
) -> Graph:
    """Load a TensorFlow source as a frozen function, trimmed to the named inputs and outputs.

    Args:
        path: the source: a frozen .pb, a SavedModel folder or tar, a Keras .h5 or .keras file.
        kind: its type ('pb', 'savedmodel', 'h5', 'keras'), as `formats.model_type` tells.
        input_names, output_names: ``NAME[:INDEX][:NEWNAME]`` each (module docstring); inner tensors
            trim the graph; default: the source's own inputs and outputs.
        default_shape: the shape for inputs with dynamic dimensions, e.g. [1, 300, 300, 3]; a dynamic
            batch alone becomes 1 without it.
        name: the model's name (default: the Keras model's name or the file's stem).
        workdir: where a tar is unpacked or a Keras 3 model exported (default: a temporary folder, removed
            once the graph is loaded).

    Raises:
        InputError: a name that is not in the graph (the message lists those that are), a dynamic input
            without a default shape, a default shape that does not fit, or a source that cannot be read.
    """
    source = Path(path)
    if workdir is None:
        # everything is frozen into the GraphDef: the unpacked or exported SavedModel is not needed afterwards
        with tempfile.TemporaryDirectory(prefix="eiq_convert_") as work:
            return load_graph(source, kind, input_names=input_names, output_names=output_names,
                              default_shape=default_shape, name=name, workdir=work)  # fmt: skip
    graph_def, inputs, outputs, model_name = _source(source, kind, Path(workdir))
    tf = framework.tf()
    full = tf.compat.v1.wrap_function(lambda: tf.graph_util.import_graph_def(graph_def, name=""), [])
    lookup = _Lookup(full.graph, inputs, outputs, source)
    chosen_in = [lookup.find(spec, "input") for spec in input_names] if input_names else inputs
    chosen_out = [lookup.find(spec, "output") for spec in output_names] if output_names else outputs
    for t in chosen_in:
        tensor = full.graph.get_tensor_by_name(t.tensor)
        t.dtype = tensor.dtype
        dims = None if tensor.shape.rank is None else tensor.shape.as_list()
        default = default_shape
        if default is not None and len(chosen_in) > 1 and not fits(dims, default):
            default = None  # with several inputs, the default shape is for those it fits
        t.shape = fixed_shape(t.name, dims, default)
    _check_unique([t.name for t in chosen_in] + [t.name for t in chosen_out])
    function = _prune(graph_def, chosen_in, chosen_out, source)
    renames = {f"{INPUT_PREFIX}{i}": t.name for i, t in enumerate(chosen_in)}
    renames.update({f"{OUTPUT_PREFIX}{i}": t.name for i, t in enumerate(chosen_out)})
    return Graph(function, chosen_in, chosen_out, name or model_name, source, renames)


def fits(dims: list[int | None] | None, shape: list[int]) -> bool:
    """Whether `shape` can be given to an input of dimensions `dims` (same rank, fixed dimensions kept)."""
    if dims is None:
        return True
    return len(shape) == len(dims) and all(d is None or d == g for d, g in zip(dims, shape, strict=True))


def fixed_shape(name: str, dims: list[int | None] | None, default: list[int] | None) -> list[int]:
    """The shape an input gets: its own, with dynamic dimensions from `default` (a dynamic batch alone: 1).

    Raises:
        InputError: a dynamic dimension other than the batch without a default, or a default that does
            not fit the input's rank or fixed dimensions.
    """
    shown = "unknown" if dims is None else "[" + ", ".join("?" if d is None else str(d) for d in dims) + "]"
    if default is not None:
        if not fits(dims, default):
            raise InputError(
                f"default shape {','.join(map(str, default))} does not fit input {name!r} of shape {shown}: "
                "give one with the same rank that keeps its fixed dimensions"
            )
        return list(default)
    if dims is None or any(d is None for d in dims[1:]):
        example = "1,300,300,3" if dims is None else ",".join("1" if i == 0 and d is None else str(d or "N")
                                                              for i, d in enumerate(dims))  # fmt: skip
        raise InputError(
            f"input {name!r} has a dynamic shape {shown}: give a default shape (--default_shape {example}, "
            "N being the size you want)"
        )
    return [1 if d is None else d for d in dims]


def _check_unique(names: list[str]) -> None:
    seen = set()
    for n in names:
        if n in seen:
            raise InputError(f"name {n!r} is given to two inputs/outputs: give each a different name")
        seen.add(n)


class _Lookup:
    """Finds tensors by name in the imported source graph, and lists the names that exist when one does not."""

    def __init__(self, graph: Any, inputs: list[Tensor], outputs: list[Tensor], source: Path):
        self.graph, self.inputs, self.outputs, self.source = graph, inputs, outputs, source
        self.known = {t.name: t.tensor for t in inputs + outputs}

    def find(self, spec: str, role: str) -> Tensor:
        ref, new = parse_name(spec)
        if ref in self.known:
            return Tensor(self.known[ref], new or ref)
        op, _, index = ref.partition(":")
        tensor = f"{op}:{index or 0}"
        try:
            self.graph.get_tensor_by_name(tensor)
        except (KeyError, ValueError):
            raise InputError(self.missing(ref, role)) from None
        display = op if not index or index == "0" else f"{op}_{index}"
        return Tensor(tensor, new or display)

    def missing(self, ref: str, role: str) -> str:
        likely = [t.name for t in self.inputs] + [t.name for t in self.outputs]
        others = [op.name for op in self.graph.get_operations() if op.name not in likely and not _plumbing(op)]
        names = likely + others
        shown = ", ".join(names[:LISTED])
        more = f", and {len(names) - LISTED} more" if len(names) > LISTED else ""
        return (
            f"{role} name {ref!r} is not in {self.source.name}; its inputs: {', '.join(t.name for t in self.inputs)}; "
            f"its outputs: {', '.join(t.name for t in self.outputs)}; tensors you can name: {shown}{more}"
        )


def _plumbing(op: Any) -> bool:
    """Ops nobody cuts a graph at: constants, no-ops and the identities that read a constant (frozen variables)."""
    if op.type in ("Const", "NoOp"):
        return True
    return op.type == "Identity" and all(i.op.type == "Const" for i in op.inputs)


def _prune(graph_def: Any, inputs: list[Tensor], outputs: list[Tensor], source: Path) -> Any:
    tf = framework.tf()

    def body() -> None:
        feeds = {
            t.tensor: tf.compat.v1.placeholder(t.dtype, t.shape, name=f"{INPUT_PREFIX}{i}")
            for i, t in enumerate(inputs)
        }
        wanted = [t.tensor for t in outputs]
        results = tf.graph_util.import_graph_def(graph_def, input_map=feeds, return_elements=wanted, name="")
        for i, result in enumerate(results):
            tf.identity(result, name=f"{OUTPUT_PREFIX}{i}")

    try:
        wrapped = tf.compat.v1.wrap_function(body, [])
        graph = wrapped.graph
        return wrapped.prune(
            feeds=[graph.get_tensor_by_name(f"{INPUT_PREFIX}{i}:0") for i in range(len(inputs))],
            fetches=[graph.get_tensor_by_name(f"{OUTPUT_PREFIX}{i}:0") for i in range(len(outputs))],
        )
    except ValueError as exc:
        # prune fails when an output needs a placeholder that is not among the inputs; shape inference
        # fails when a default shape does not suit the graph
        raise InputError(
            f"cannot cut {source.name} at inputs {', '.join(t.tensor for t in inputs)} and outputs "
            f"{', '.join(t.tensor for t in outputs)}: {str(exc).splitlines()[0]}; name every input the outputs need"
        ) from None


def _source(path: Path, kind: str, workdir: Path) -> tuple[Any, list[Tensor], list[Tensor], str]:
    """(frozen GraphDef, default inputs, default outputs, model name) of a source."""
    if kind == "pb":
        return (*_frozen_pb(path), path.stem)
    if kind == "savedmodel":
        from .formats import saved_model_folder

        return _saved_model(saved_model_folder(path, workdir), path)
    if kind in ("h5", "keras"):
        from .formats import is_keras3

        if kind == "keras" and is_keras3(path):
            from .keras3 import export_saved_model

            graph_def, inputs, outputs, _ = _saved_model(export_saved_model(path, workdir), path)
            return graph_def, inputs, outputs, path.stem
        return _keras(path)
    raise InputError(f"{path}: a {kind} model is not a TensorFlow graph; give a .pb, a SavedModel, a .h5 or a .keras")


def _frozen_pb(path: Path) -> tuple[Any, list[Tensor], list[Tensor]]:
    framework.tf()
    from tensorflow.core.framework import graph_pb2

    graph_def = graph_pb2.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as exc:  # protobuf's DecodeError and friends
        raise InputError(f"{path} is not a TensorFlow GraphDef ({exc})") from None
    if any(n.op in ("VarHandleOp", "VariableV2") for n in graph_def.node):
        raise InputError(f"{path} holds variables: it is not a frozen graph; freeze it or give the SavedModel")
    used = {inp.split(":")[0].lstrip("^") for n in graph_def.node for inp in n.input}
    inputs = [Tensor(f"{n.name}:0", n.name) for n in graph_def.node if n.op == "Placeholder"]
    outputs = [Tensor(f"{n.name}:0", n.name) for n in graph_def.node if n.name not in used and n.op not in _NOT_OUTPUTS]
    return graph_def, inputs, outputs


def _freeze(concrete: Any) -> Any:
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    return convert_variables_to_constants_v2(concrete)


def _saved_model(folder: Path, shown: Path) -> tuple[Any, list[Tensor], list[Tensor], str]:
    tf = framework.tf()
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as exc:  # TensorFlow raises many kinds for a damaged SavedModel
        raise InputError(f"cannot load SavedModel {shown}: {str(exc).splitlines()[0]}") from None
    signatures = dict(loaded.signatures)
    if not signatures:
        raise InputError(f"SavedModel {shown} has no signature to convert; export it with a serving signature")
    if "serving_default" in signatures:
        signature = signatures["serving_default"]
    elif len(signatures) == 1:
        signature = next(iter(signatures.values()))
    else:
        raise InputError(
            f"SavedModel {shown} has several signatures and no 'serving_default': {', '.join(sorted(signatures))}"
        )
    frozen = _freeze(signature)
    specs = signature.structured_input_signature[1] if signature.structured_input_signature else {}
    by_op = {spec.name or key: key for key, spec in specs.items()}
    inputs = [Tensor(t.name, by_op.get(t.op.name, t.op.name)) for t in frozen.inputs if t.dtype != tf.resource]
    # the signature's outputs are a dict; flattened (by sorted key) it is in the order of frozen.outputs
    structured = signature.structured_outputs
    keys = sorted(structured) if isinstance(structured, dict) else []
    if len(keys) != len(frozen.outputs):
        keys = [t.op.name for t in frozen.outputs]
    outputs = [Tensor(t.name, key) for t, key in zip(frozen.outputs, keys, strict=True)]
    return frozen.graph.as_graph_def(), inputs, outputs, shown.name.split(".")[0]


def _keras(path: Path) -> tuple[Any, list[Tensor], list[Tensor], str]:
    tf = framework.tf()
    from ..evaluate.executors import load_keras

    model = load_keras(path)  # safe mode: a Lambda layer's Python code is refused, never run
    specs = [tf.TensorSpec(t.shape, t.dtype, name=f"keras_input_{i}") for i, t in enumerate(model.inputs)]

    def call(*xs: Any) -> Any:
        result = model(list(xs) if len(xs) > 1 else xs[0], training=False)
        return list(result) if isinstance(result, (list, tuple)) else [result]

    frozen = _freeze(tf.function(call).get_concrete_function(*specs))
    names = list(getattr(model, "input_names", None) or [t.name.split(":")[0] for t in model.inputs])
    inputs = [Tensor(t.name, names[i]) for i, t in enumerate(frozen.inputs)]
    out_names = list(getattr(model, "output_names", None) or [f"output_{i}" for i in range(len(frozen.outputs))])
    outputs = [Tensor(t.name, out_names[i]) for i, t in enumerate(frozen.outputs)]
    return frozen.graph.as_graph_def(), inputs, outputs, model.name
