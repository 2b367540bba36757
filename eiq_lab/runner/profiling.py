"""Per-layer profiling: where a model's inference time goes, layer by layer, mapped back to the original
model's operators, on LiteRT (single-operator slices), ONNX Runtime (session profiling) or Vela (estimate).

LiteRT's Python interpreter has no per-operator profiler (libLiteRt's C profiler is not reachable from
Python), so each operator is cut into its own TFLite model (its constant inputs and quantization kept, its
other inputs made model inputs fed with the real intermediate values of the whole model) and timed alone,
interleaved with whole-model runs so both see the same machine load. ONNX Runtime times each node of the
graph it really runs (after its fusions); every runtime node is mapped to the original nodes it replaced.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError, InputError
from .slices import empty_invoke_ns, intermediate_values, interpreter_for, slice_operators

#: Engines profiled here.
ENGINES = ("tflite", "onnx", "vela")
#: Runs slower than this many times the median are dropped as preemption by other processes.
_OUTLIER = 3.0


@dataclass
class LayerTiming:
    """One layer (runtime operator) and its time per inference.

    Attributes:
        name: the runtime layer's name (TFLite: its output tensor; ONNX: the node; Vela: its row).
        type: operator type (``CONV_2D``, ``FusedConv``, ``Conv2D``).
        original: the original model's layers or nodes it computes (Keras layer names parsed from TFLite
            tensor names; ONNX nodes fused into it); empty for a node the runtime inserted.
        shape, datatype: of its (first) output.
        avg_ns: average time per inference (ns); total_ns: over the `count` timed runs.
    """

    name: str
    type: str
    original: list[str]
    shape: list[int]
    datatype: str
    avg_ns: float
    total_ns: float
    count: int


@dataclass
class Profile:
    """A model's per-layer profile.

    Attributes:
        engine: ``tflite``, ``onnx`` or ``vela``; model: its name; layers: in execution order.
        total_ns: the whole model's average inference time (ns), measured as a whole (Vela: its estimate).
        settings: how it was measured (runs, threads, xnnpack, config, method).
    """

    engine: str
    model: str
    layers: list[LayerTiming]
    total_ns: float
    settings: dict[str, Any] = field(default_factory=dict)
    #: ONNX: original node name -> op type, to give a fused node's time to the original node of its kind
    original_types: dict[str, str] = field(default_factory=dict, repr=False)

    @property
    def layers_ns(self) -> float:
        """The sum of the layers' average times (compare with `total_ns`)."""
        return float(sum(layer.avg_ns for layer in self.layers))

    def by_op_type(self) -> dict[str, list[float]]:
        """Per operator type: ``[average ns per layer, total ns per inference, number of layers]`` (the
        guide's ``get_op_timing_info``)."""
        out: dict[str, list[float]] = {}
        for layer in self.layers:
            entry = out.setdefault(layer.type, [0.0, 0.0, 0])
            entry[1] += layer.avg_ns
            entry[2] += 1
        for entry in out.values():
            entry[0] = entry[1] / entry[2]
        return dict(sorted(out.items(), key=lambda item: -item[1][1]))

    def layer_timings(self) -> dict[str, float]:
        """Average ns per layer, keyed as the runner's engines name layers: TFLite and Vela rows by their output
        tensor (Vela rows sharing a name summed); ONNX by original node name: a runtime node's time goes to
        the original node of the same operator among those it fused (else the first). Layers the runtime
        inserted (layout reorders) are left out."""
        out: dict[str, float] = {}
        for layer in self.layers:
            key = layer.name
            if self.engine == "onnx":
                if not layer.original:
                    continue
                kinds = self.original_types
                same = [
                    n for n in layer.original if kinds.get(n) and (kinds[n] in layer.type or layer.type in kinds[n])
                ]
                key = (same or layer.original)[0]
            out[key] = out.get(key, 0.0) + layer.avg_ns
        return out

    def layer_statistics(self) -> dict[str, list[float]]:
        """Per-layer statistics to chart, each a list in layer order: time (us), share of the whole model (%)
        and the cumulative share (%)."""
        total = self.total_ns or 1.0
        times = [layer.avg_ns / 1e3 for layer in self.layers]
        shares = [100 * layer.avg_ns / total for layer in self.layers]
        return {"time (us)": times, "share (%)": shares, "cumulative (%)": list(np.cumsum(shares))}

    def statistics(self) -> dict[str, Any]:
        """The whole model's statistics (the guide's "Total Model Statistics"): execution time, layer count,
        the layers' sum against the whole, and what the engine measured besides (Vela: cycles, MACs, memory)."""
        out: dict[str, Any] = {
            "engine": self.engine,
            "execution_time (us)": round(self.total_ns / 1e3, 1),
            "layers": len(self.layers),
            "layers sum (us)": round(self.layers_ns / 1e3, 1),
            "layers sum / whole": round(self.layers_ns / self.total_ns, 3) if self.total_ns else None,
        }
        for key in ("cycles", "macs", "sram_bytes", "dram_bytes", "cpu_layers", "clock_hz", "accelerator",
                    "threads", "xnnpack", "runs", "method", "uri", "runner_engine"):  # fmt: skip
            if key in self.settings:
                out[key] = self.settings[key]
        return out

    def to_json(self) -> dict[str, Any]:
        """The profile as JSON-ready values: layers, by op type, totals and settings."""
        return {
            "engine": self.engine,
            "model": self.model,
            "total_ns": self.total_ns,
            "layers_ns": self.layers_ns,
            "layers_to_total": self.layers_ns / self.total_ns if self.total_ns else None,
            "settings": self.settings,
            "layers": [asdict(layer) for layer in self.layers],
            "by_op_type": self.by_op_type(),
        }

    def to_text(self, top: int | None = None) -> str:
        """A per-layer table, the per-op-type summary and the totals, as lines of text."""
        total = self.total_ns or 1.0
        width = max([4, *(len(layer.type) for layer in self.layers)])
        lines = [f"{'time us':>10}  {'share':>6}  {'type':<{width}}  {'shape':<16}  {'datatype':<8}  layer (original)"]
        for layer in self.layers[:top] if top else self.layers:
            shape = "x".join(str(d) for d in layer.shape)
            original = ", ".join(layer.original)
            lines.append(
                f"{layer.avg_ns / 1e3:>10.1f}  {100 * layer.avg_ns / total:>5.1f}%  {layer.type:<{width}}  "
                f"{shape:<16}  {layer.datatype:<8}  {layer.name}" + (f" ({original})" if original else "")
            )
        lines += ["", f"{'type':<{width}}  {'count':>5}  {'avg us':>10}  {'total us':>10}  {'share':>6}"]
        for kind, (avg, sum_ns, count) in self.by_op_type().items():
            lines.append(
                f"{kind:<{width}}  {count:>5}  {avg / 1e3:>10.1f}  {sum_ns / 1e3:>10.1f}  {100 * sum_ns / total:>5.1f}%"
            )
        how = {"vela": "Vela's estimate", "remote": "the runner's model timing"}.get(self.engine, "whole model, timed")
        lines += [
            "",
            f"model {self.model} on {self.engine} ({_describe(self.settings)})",
            f"total {self.total_ns / 1e3:.1f} us per inference ({how}); layers sum {self.layers_ns / 1e3:.1f} us "
            f"({self.layers_ns / total:.2f}x)",
        ]
        if self.engine == "vela":
            lines.append("Vela's figures are an estimate; CPU layers are not timed by Vela.")
        return "\n".join(lines)


def _describe(settings: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in settings.items() if v is not None)


def _robust(samples: list[int]) -> tuple[float, float, int]:
    """(mean, sum, count) of timed runs without those preempted by other processes (over 3x the median)."""
    values = np.asarray(samples, np.float64)
    kept = values[values <= _OUTLIER * np.median(values)]
    return float(kept.mean()), float(kept.sum()), int(kept.size)


# ---------------------------------------------------------------------------------------------------- TFLite


def keras_layers(tensor_name: str) -> list[str]:
    """The Keras layer names a TFLite tensor name carries (``model/block_1_expand/Conv2D;model/block_1_expand_BN/
    FusedBatchNormV3`` -> ``["block_1_expand", "block_1_expand_BN"]``); none for a name without a layer path
    (``StatefulPartitionedCall:0``)."""
    names: list[str] = []
    for part in tensor_name.split(";"):
        pieces = [p for p in part.split("/") if p]
        if len(pieces) < 2:
            continue
        # "model/layer/Op" (or "StatefulPartitionedCall/model/layer/Op"): the layer is the one before the op
        candidate = pieces[-2] if len(pieces) >= 3 else pieces[0]
        if candidate not in names:
            names.append(candidate)
    return names


def _model_bytes(model: bytes | str | os.PathLike) -> tuple[bytes, str]:
    if isinstance(model, bytes | bytearray):
        return bytes(model), "model"
    path = Path(model)
    if not path.is_file():
        raise InputError(f"model file {path} not found; expected a .tflite or .onnx file")
    return path.read_bytes(), path.name


def _tflite_datatype(dtype: Any) -> str:
    return np.dtype(dtype).name.upper()


def profile_tflite(
    data: bytes, name: str = "model", *, runs: int = 10, threads: int | None = None, xnnpack: bool = True
) -> Profile:
    """Profile a TFLite model operator by operator (see `profile_model`)."""
    slices = slice_operators(data)
    values = intermediate_values(data)
    whole = interpreter_for(data, threads, xnnpack)
    for detail in whole.get_input_details():
        whole.set_tensor(detail["index"], values[int(detail["index"])])
    timed = []
    for part in slices:
        try:
            interpreter = interpreter_for(part["model"], threads, xnnpack)
        except (ValueError, RuntimeError) as exc:
            raise EiqError(
                f"operator {part['index']} ({part['type']}, {part['name']}) cannot run alone: {exc}"
            ) from exc
        details = interpreter.get_input_details()
        feeds = [(d["index"], values[i]) for d, i in zip(details, part["input_indices"], strict=True)]
        timed.append((interpreter, feeds))
    clock = time.perf_counter_ns
    empty = empty_invoke_ns(threads, xnnpack)
    warmup = max(2, runs // 5)
    whole_ns: list[int] = []
    op_ns: list[list[int]] = [[] for _ in slices]
    # rounds interleave the whole model and every slice, so a burst of load from elsewhere hits both alike
    for round_ in range(warmup + runs):
        start = clock()
        whole.invoke()
        elapsed = clock() - start
        if round_ >= warmup:
            whole_ns.append(elapsed)
        for i, (interpreter, feeds) in enumerate(timed):
            # writing the inputs just before the timed invoke leaves them in the cache, as the producing
            # operator's output is when the whole model runs
            for index, value in feeds:
                interpreter.set_tensor(index, value)
            start = clock()
            interpreter.invoke()
            elapsed = clock() - start
            if round_ >= warmup:
                op_ns[i].append(max(elapsed - empty, 1))
    layers = []
    for part, samples, (interpreter, _) in zip(slices, op_ns, timed, strict=True):
        avg, total, count = _robust(samples)
        detail = interpreter.get_output_details()[0]
        layers.append(
            LayerTiming(
                name=part["name"], type=part["type"], original=keras_layers(part["name"]),
                shape=[int(d) for d in detail["shape"]], datatype=_tflite_datatype(detail["dtype"]),
                avg_ns=avg, total_ns=total, count=count,
            )
        )  # fmt: skip
    whole_avg = _robust([max(t - empty, 1) for t in whole_ns])[0]
    settings = {"runs": runs, "threads": threads, "xnnpack": xnnpack, "method": "operator slices",
                "call_overhead_ns": empty}  # fmt: skip
    return Profile("tflite", name, layers, whole_avg, settings)


# ------------------------------------------------------------------------------------------------------ ONNX

_ONNX_INPUTS = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8,
                "tensor(int32)": np.int32, "tensor(int64)": np.int64, "tensor(float16)": np.float16}  # fmt: skip


def _onnx_feeds(session: Any, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    feeds = {}
    for node in session.get_inputs():
        dtype = _ONNX_INPUTS.get(node.type)
        if dtype is None:
            raise InputError(f"input {node.name} is {node.type}; profiling feeds float, int8/uint8 or int32/int64")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in node.shape]  # dynamic dimensions: 1
        if np.issubdtype(dtype, np.integer):
            feeds[node.name] = rng.integers(0, 100, shape).astype(dtype)
        else:
            feeds[node.name] = rng.uniform(-1, 1, shape).astype(dtype)
    return feeds


def original_nodes(original: Any, runtime_inputs: list[str], runtime_outputs: list[str]) -> list[str]:
    """The nodes of the original ONNX graph that lie between some inputs and outputs (original tensor names).

    Walks the original graph back from `runtime_outputs` and stops at `runtime_inputs` (and at graph inputs
    and initializers): a runtime ``FusedConv`` whose input is the original Conv's input and whose output is
    the original Relu's output maps to that ``Conv`` and ``Relu``.
    """
    producer = {out: node for node in original.graph.node for out in node.output}
    stop = set(runtime_inputs)
    found: list[str] = []
    seen: set[str] = set()
    pending = [name for name in runtime_outputs if name]
    while pending:
        value = pending.pop()
        node = producer.get(value)
        if value in stop or node is None or id(node) in seen:
            continue
        seen.add(id(node))
        found.append(node.name)
        pending.extend(name for name in node.input if name)
    order = {node.name: i for i, node in enumerate(original.graph.node)}
    return sorted(found, key=lambda name: order.get(name, 0))


def runtime_to_original(original: Any, runtime: Any) -> dict[str, list[str]]:
    """Map every node of ONNX Runtime's optimised graph to the original nodes it computes.

    Fusions keep the original tensor names at their boundaries; the NCHWc layout pass renames the tensors
    inside a reordered chain (``reorder_token_N``) but names each node after the original tensor it computes
    (``<tensor>_nchwc``). A node's boundary is therefore, per tensor: the tensor itself when the original
    graph has it, else the original tensor its runtime producer computes. Nodes the runtime inserted (layout
    reorders) compute no original tensor of their own and map to nothing.
    """
    known = {out for node in original.graph.node for out in node.output}
    known |= {value.name for value in original.graph.input} | {init.name for init in original.graph.initializer}
    producer = {out: node for node in runtime.graph.node for out in node.output}

    def computes(node: Any) -> list[str]:
        anchors = [out for out in node.output if out in known]
        if not anchors and node.name.endswith("_nchwc") and node.name[: -len("_nchwc")] in known:
            anchors = [node.name[: -len("_nchwc")]]
        return anchors

    def boundary(tensor: str, depth: int = 0) -> list[str]:
        if tensor in known:
            return [tensor]
        node = producer.get(tensor)
        if node is None or depth > 64:
            return []  # a constant the runtime made (reordered or folded weights)
        return computes(node) or [t for name in node.input if name for t in boundary(name, depth + 1)]

    # a tensor another runtime node computes is a boundary too: a walk never runs into a neighbour's nodes
    computed = {node.name: computes(node) for node in runtime.graph.node}
    everywhere = {t for anchors in computed.values() for t in anchors}
    mapping = {}
    for node in runtime.graph.node:
        outputs = computed[node.name]
        inputs = [t for name in node.input if name for t in boundary(name)]
        stop = inputs + sorted(everywhere - set(outputs))
        mapping[node.name] = original_nodes(original, stop, outputs) if outputs else []
    return mapping


def profile_onnx(data: bytes, name: str = "model", *, runs: int = 10, threads: int | None = None) -> Profile:
    """Profile an ONNX model with ONNX Runtime's session profiling (see `profile_model`)."""
    import onnx
    import onnxruntime as ort

    try:
        original = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf's DecodeError and friends: not an ONNX file
        raise InputError(f"{name} is not an ONNX model: {exc}") from None
    warmup = max(2, runs // 5)
    with tempfile.TemporaryDirectory(prefix="eiq-profile-") as work:
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.enable_profiling = True
        options.profile_file_prefix = os.path.join(work, "profile")
        # the optimised graph ONNX Runtime really runs, to map its (fused) nodes back to the original ones
        options.optimized_model_filepath = os.path.join(work, "optimized.onnx")
        plain = ort.SessionOptions()
        plain.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = plain.intra_op_num_threads = int(threads)
        try:
            session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
            timer = ort.InferenceSession(data, plain, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime's own exception types
            raise InputError(f"{name} cannot be loaded by ONNX Runtime: {exc}") from None
        feeds = _onnx_feeds(session)
        whole_ns = []
        # the whole model is timed in a session without profiling (which adds its own cost to every node),
        # interleaved with the profiled runs so both see the same load
        for round_ in range(warmup + runs):
            session.run(None, feeds)
            start = time.perf_counter_ns()
            timer.run(None, feeds)
            if round_ >= warmup:
                whole_ns.append(time.perf_counter_ns() - start)
        with open(session.end_profiling(), encoding="utf-8") as f:
            events = json.load(f)
        mapping: dict[str, list[str]] = {}
        optimized_path = Path(work) / "optimized.onnx"
        if optimized_path.is_file():
            with contextlib.suppress(Exception):  # an unreadable optimised graph: map by name only
                mapping = runtime_to_original(original, onnx.load(os.fspath(optimized_path)))
    runs_ts = sorted(e["ts"] for e in events if e.get("cat") == "Session" and e.get("name") == "model_run")
    first = runs_ts[warmup] if len(runs_ts) > warmup else 0
    per_node: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time") or event["ts"] < first:
            continue
        node_name = event["name"][: -len("_kernel_time")]
        args = event.get("args", {})
        entry = per_node.setdefault(node_name, {"samples": [], "type": args.get("op_name", "?"), "args": args})
        entry["samples"].append(int(event.get("dur", 0)) * 1000)  # microseconds
    names = {node.name for node in original.graph.node}
    layers = []
    for node_name, entry in per_node.items():
        mapped = mapping.get(node_name, [node_name] if node_name in names else [])
        shape, datatype = _onnx_output(entry["args"])
        samples = entry["samples"]
        total = float(sum(samples))
        layers.append(
            LayerTiming(
                name=node_name, type=entry["type"], original=mapped, shape=shape, datatype=datatype,
                avg_ns=total / len(samples), total_ns=total, count=len(samples),
            )
        )  # fmt: skip
    whole_avg = _robust(whole_ns)[0]
    profiled = [e["dur"] * 1000 for e in events if e.get("name") == "model_run" and e["ts"] >= first]
    settings = {"runs": runs, "threads": threads, "method": "onnxruntime session profiling",
                "profiled_run_ns": float(np.mean(profiled)) if profiled else None,
                "optimization": "all", "onnxruntime": ort.__version__}  # fmt: skip
    kinds = {node.name: node.op_type for node in original.graph.node}
    return Profile("onnx", name, layers, whole_avg, settings, kinds)


def _onnx_output(args: dict[str, Any]) -> tuple[list[int], str]:
    outputs = args.get("output_type_shape") or []
    if not outputs:
        return [], ""
    (kind, shape), *_ = outputs[0].items()
    return [int(d) for d in shape], str(kind).upper()


# ------------------------------------------------------------------------------------------------------ Vela


def profile_vela(data: bytes, name: str = "model", *, config: str = "imx93") -> Profile:
    """Vela's per-layer estimate as a profile: each row's NPU cycles at the configured clock (see `profile_model`).

    Rows Vela leaves on the CPU carry no estimate (0 ns); the total is Vela's inference time.
    """
    from ..convert.vela import compile_for_ethos_u

    with tempfile.TemporaryDirectory(prefix="eiq-profile-vela-") as work:
        report = compile_for_ethos_u(data, Path(work) / "out", config)
    layers = []
    for row in report.layers:
        ns = row.cycles / report.clock_hz * 1e9 if row.target == "NPU" and report.clock_hz else 0.0
        layers.append(
            LayerTiming(
                # a CPU fallback is marked in its type: Vela neither runs nor times it
                name=row.name, type=row.operator if row.target == "NPU" else f"{row.operator} (CPU)",
                original=keras_layers(row.name), shape=[], datatype="",
                avg_ns=ns, total_ns=ns, count=1,
            )
        )  # fmt: skip
    settings = {
        "config": config, "accelerator": report.accelerator, "system_config": report.system_config,
        "memory_mode": report.memory_mode, "clock_hz": report.clock_hz, "cycles": report.cycles,
        "macs": report.macs, "sram_bytes": report.sram_bytes, "dram_bytes": report.dram_bytes,
        "cpu_layers": len(report.cpu_layers), "method": "Vela performance estimate",
    }  # fmt: skip
    return Profile("vela", name, layers, report.inference_time_s * 1e9, settings)


# ----------------------------------------------------------------------------------------------------- entry


def engine_for(data: bytes, engine: str | None, name: str) -> str:
    """The engine a model is profiled on: `engine` when given (checked), else by the file's content."""
    if engine is not None:
        if engine not in ENGINES:
            raise InputError(f"engine must be one of {', '.join(ENGINES)}; received {engine!r}")
        return engine
    if data[4:8] == b"TFL3":
        return "tflite"
    if name.endswith(".onnx") or data[:1] == b"\x08":  # an ONNX protobuf starts with ir_version (field 1)
        return "onnx"
    raise InputError(f"{name} is neither a TFLite nor an ONNX model; expected a .tflite or .onnx file")


def profile_model(
    model: bytes | str | os.PathLike,
    engine: str | None = None,
    *,
    runs: int = 10,
    threads: int | None = None,
    xnnpack: bool = True,
    config: str = "imx93",
) -> Profile:
    """Time a model layer by layer.

    - ``tflite``: every operator cut into its own model (constants and quantization kept) and timed alone on
      the same op resolver as the whole model (XNNPACK or LiteRT's builtin kernels), fed with the whole model's
      real intermediate values; the Python call overhead is taken off each invoke. Layers map to the Keras
      layers named in the TFLite tensor names.
    - ``onnx``: ONNX Runtime's session profiling (per-node kernel time) with all graph optimisations on; every
      runtime node maps to the original nodes it computes.
    - ``vela``: Vela's per-layer estimate for an Ethos-U NPU (`config`, i.MX 93 by default): cycles -> time.

    Args:
        model: a .tflite or .onnx file, or its bytes.
        engine: ``tflite``, ``onnx`` or ``vela`` (default: by the file).
        runs: timed runs (after warm-up runs, a fifth of them, at least 2).
        threads: CPU threads (default: LiteRT's 1, ONNX Runtime's own).
        xnnpack: LiteRT with its XNNPACK delegate (its default) or the builtin kernels.
        config: Vela's target preset or .ini file.

    Returns:
        The `Profile`: `layers`, `total_ns` (the whole model timed as a whole), `by_op_type()`, `to_json()`.

    Raises:
        InputError: no such file, not a model the engine takes, bad runs or threads.

    Example:
        >>> profile = profile_model("mobilenet_int8.tflite", runs=20)  # doctest: +SKIP
        >>> profile.by_op_type()["CONV_2D"]  # doctest: +SKIP
        [31250.0, 1093750.0, 35]
    """
    if int(runs) < 1:
        raise InputError(f"runs must be at least 1; received {runs}")
    if threads is not None and int(threads) < 1:
        raise InputError(f"threads must be at least 1; received {threads}")
    data, name = _model_bytes(model)
    engine = engine_for(data, engine, name)
    if engine == "onnx":
        return profile_onnx(data, name, runs=int(runs), threads=threads)
    if engine == "vela":
        return profile_vela(data, name, config=config)
    try:
        return profile_tflite(data, name, runs=int(runs), threads=threads, xnnpack=xnnpack)
    except ValueError as exc:  # LiteRT refuses the whole model
        raise InputError(f"{name} cannot be loaded by LiteRT: {exc}") from None
