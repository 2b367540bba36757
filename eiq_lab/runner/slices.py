"""Single-operator TFLite models cut from a whole one (constants and quantization kept), the whole model's
intermediate values to feed them, and the cost of an empty invoke: what LiteRT per-operator timing is built on.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np

from ..errors import EiqError, InputError


def _opcode_names(schema: Any, model: Any) -> list[str]:
    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    names = []
    for code in model.operatorCodes:
        if code.customCode:
            names.append(code.customCode.decode() if isinstance(code.customCode, bytes) else str(code.customCode))
        else:
            names.append(builtin.get(max(code.builtinCode, code.deprecatedBuiltinCode), "UNKNOWN"))
    return names


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def slice_operators(data: bytes) -> list[dict[str, Any]]:
    """Cut a TFLite model into single-operator models, one per operator of its main subgraph.

    Each slice keeps the operator's constant inputs (weights, biases, shapes) and every tensor's quantization;
    its other inputs become the slice's model inputs, its outputs the slice's outputs. Tensor names are kept,
    so a slice's inputs are fed by name with the whole model's intermediate values.

    Returns:
        Per operator, in execution order: ``{"index", "type", "name" (first output tensor), "inputs" (tensor
        names fed, in the slice's input order), "input_indices" (their indices in the whole model), "outputs",
        "model" (bytes)}``.

    Raises:
        InputError: not a TFLite file, or a model with control flow (several subgraphs) the slicer cannot cut.
    """
    # LiteRT's own copy of the schema: the runner profiles without importing TensorFlow
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputError("the model is not a TFLite file (no TFL3 identifier at byte 4)")
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    if len(model.subgraphs) != 1:
        raise InputError(
            f"the model has {len(model.subgraphs)} subgraphs (control flow); per-operator profiling slices "
            "models with one subgraph; profile it with --engine onnx or as a whole"
        )
    graph = model.subgraphs[0]
    kinds = _opcode_names(schema, model)
    slices = []
    for index, op in enumerate(graph.operators):
        used = [t for t in list(op.inputs) + list(op.outputs) + list(op.intermediates or []) if t >= 0]
        order = list(dict.fromkeys(used))
        remap = {old: new for new, old in enumerate(order)}
        buffers = [schema.BufferT()]  # buffer 0 is the empty sentinel
        tensors, feeds, fed = [], [], []
        for old in order:
            tensor = copy.copy(graph.tensors[old])
            buffer = model.buffers[tensor.buffer] if tensor.buffer else None
            if buffer is not None and buffer.data is not None and len(buffer.data):
                buffers.append(buffer)
                tensor.buffer = len(buffers) - 1
            else:
                tensor.buffer = 0
                if old in op.inputs:
                    feeds.append(remap[old])
                    fed.append(old)
            tensors.append(tensor)
        sub = schema.SubGraphT()
        sub.tensors = tensors
        sub.inputs = feeds
        sub.outputs = [remap[t] for t in op.outputs if t >= 0]
        sliced = copy.copy(op)
        sliced.inputs = [remap[t] if t >= 0 else -1 for t in op.inputs]
        sliced.outputs = [remap[t] for t in op.outputs if t >= 0]
        sliced.intermediates = [remap[t] for t in op.intermediates] if op.intermediates is not None else None
        sub.operators = [sliced]
        sub.name = graph.name
        out = schema.ModelT()
        out.version = model.version
        out.operatorCodes = model.operatorCodes
        out.subgraphs = [sub]
        out.buffers = buffers
        out.description = b"eiq-lab operator slice"
        slices.append(
            {
                "index": index,
                "type": kinds[op.opcodeIndex],
                "name": _text(graph.tensors[op.outputs[0]].name),
                "inputs": [_text(tensors[i].name) for i in feeds],
                "input_indices": fed,
                "outputs": [_text(graph.tensors[t].name) for t in op.outputs if t >= 0],
                "model": bytes(flatbuffer_utils.convert_object_to_bytearray(out)),
            }
        )
    return slices


def interpreter_for(data: bytes, threads: int | None, xnnpack: bool, preserve: bool = False) -> Any:
    """A LiteRT interpreter, tensors allocated: with XNNPACK (LiteRT's default delegate) or its builtin kernels."""
    try:
        from ai_edge_litert.interpreter import Interpreter, OpResolverType
    except ImportError:
        raise EiqError("profiling TFLite models needs ai-edge-litert: pip install 'eiq-lab[tf]'") from None

    # AUTO applies LiteRT's default delegate (XNNPACK); without it the builtin (ruy/optimized) kernels run
    resolver = OpResolverType.AUTO if xnnpack and not preserve else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interpreter = Interpreter(
        model_content=data, num_threads=threads, experimental_op_resolver_type=resolver,
        experimental_preserve_all_tensors=preserve,
    )  # fmt: skip
    interpreter.allocate_tensors()
    return interpreter


def _random_input(detail: dict[str, Any], rng: np.random.Generator) -> np.ndarray:
    shape, dtype = detail["shape"], detail["dtype"]
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(max(info.min, -128), min(info.max, 127) + 1, shape).astype(dtype)
    return rng.uniform(-1, 1, shape).astype(dtype)


def intermediate_values(data: bytes, inputs: dict[str, np.ndarray] | None = None, seed: int = 0) -> dict[int, Any]:
    """Every tensor of a TFLite model after one run (tensor index -> value), on `inputs` (input name -> value;
    default: random).

    Runs with the builtin kernels and ``experimental_preserve_all_tensors`` so no intermediate is reused.
    """
    interpreter = interpreter_for(data, None, xnnpack=False, preserve=True)
    rng = np.random.default_rng(seed)
    for detail in interpreter.get_input_details():
        value = inputs.get(detail["name"]) if inputs else None
        interpreter.set_tensor(detail["index"], value if value is not None else _random_input(detail, rng))
    interpreter.invoke()
    values = {}
    for detail in interpreter.get_tensor_details():
        try:
            values[int(detail["index"])] = np.array(interpreter.get_tensor(detail["index"]))
        except ValueError:  # a tensor without data (optional, unused)
            continue
    return values


def empty_invoke_ns(threads: int | None, xnnpack: bool) -> float:
    """What one `invoke()` costs with (almost) nothing to compute: the Python and interpreter call overhead,
    paid once per slice but once per whole model, so it is taken off every timed invoke."""
    from ai_edge_litert import schema_py_generated as schema
    from ai_edge_litert.tools import flatbuffer_utils

    tensor_in, tensor_out = schema.TensorT(), schema.TensorT()
    for tensor, label in ((tensor_in, b"in"), (tensor_out, b"out")):
        tensor.shape, tensor.type, tensor.buffer, tensor.name = [1], schema.TensorType.FLOAT32, 0, label
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.RELU
    code.version = 1
    op = schema.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs = 0, [0], [1]
    graph = schema.SubGraphT()
    graph.tensors, graph.inputs, graph.outputs, graph.operators = [tensor_in, tensor_out], [0], [1], [op]
    model = schema.ModelT()
    model.version, model.operatorCodes, model.subgraphs, model.buffers = 3, [code], [graph], [schema.BufferT()]
    interpreter = interpreter_for(bytes(flatbuffer_utils.convert_object_to_bytearray(model)), threads, xnnpack)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], np.zeros([1], np.float32))
    samples = []
    for _ in range(200):
        start = time.perf_counter_ns()
        interpreter.invoke()
        samples.append(time.perf_counter_ns() - start)
    return float(np.percentile(samples, 25))
