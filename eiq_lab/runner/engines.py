"""The runner's engines: a model file opened for raw-tensor inference behind one interface (LiteRT, ONNX
Runtime, and Vela's Ethos-U estimate), with its inputs, outputs, labels, layers and image preprocessing.

`open_engine(model, engine=None, compute=None)` picks the engine by name or by the file's content.
"""

from __future__ import annotations

import io
import os
import queue
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError, InputError
from ..evaluate.executors import onnx_metadata as metadata_of_onnx
from ..evaluate.executors import tflite_metadata as metadata_of_tflite

#: The engines this host runs, by the runner's ``-e`` name.
ENGINES = ("tflite", "onnx", "vela")
#: The guide's engines that need a board's runtime; asking for one says what this host has instead.
FOREIGN_ENGINES = {
    "tf-lite-vx": "TFLite with the VX delegate (i.MX 8 NPU)",
    "rt": "DeepViewRT",
    "deepviewrt": "DeepViewRT",
    "ovx": "OpenVX (i.MX 8 NPU)",
    "armnn": "Arm NN",
}
#: ``imgproc`` values: a float image in [0, 255] -> what the model takes.
IMGPROC = ("none", "normalize", "signed_normalize", "whitening")
#: The model metadata's ``normalization`` -> the matching ``imgproc``.
_FROM_NORMALIZATION = {"signed": "signed_normalize", "unsigned": "normalize", "none": "none"}
_ONNX_DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8, "tensor(int8)": np.int8, "tensor(int16)": np.int16, "tensor(int32)": np.int32,
    "tensor(int64)": np.int64, "tensor(bool)": np.bool_,
}  # fmt: skip


def datatype(dtype: Any) -> str:
    """The protocol's name of a numpy dtype: ``FLOAT32``, ``INT8``, ``UINT8``..."""
    return np.dtype(dtype).name.upper()


def numpy_dtype(name: str) -> np.dtype:
    """The numpy dtype of a protocol datatype name (``FLOAT32`` -> float32)."""
    return np.dtype(name.lower())


def _tensor(name: str, shape: Any, dtype: Any, scale: float = 0.0, zero_point: int = 0) -> dict[str, Any]:
    return {
        "name": name,
        "shape": [int(d) if isinstance(d, (int, np.integer)) and int(d) >= 0 else -1 for d in shape],
        "datatype": datatype(dtype),
        "scale": float(scale),
        "zero_point": int(zero_point),
    }


def parse_compute(compute: str | None) -> dict[str, str]:
    """``"threads=2,xnnpack=off"`` -> ``{"threads": "2", "xnnpack": "off"}``; a bare word is ``{"device": word}``
    (the guide's numbers: ``0`` is the CPU)."""
    options: dict[str, str] = {}
    for item in (compute or "").replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        options.update({key.strip().lower(): value.strip()} if sep else {"device": key.lower()})
    return options


def _check_device(options: dict[str, str], engine: str, offers: str) -> None:
    device = options.pop("device", None)
    if device not in (None, "0", "cpu"):
        raise InputError(
            f"compute {device!r} is not available for engine {engine} on this host: it runs on the CPU "
            f"(-c 0 or cpu); {engine} also takes {offers}"
        )


def _unknown_options(options: dict[str, str], engine: str, offers: str) -> None:
    if options:
        raise InputError(f"engine {engine} does not know compute option(s) {', '.join(options)}; it takes {offers}")


def _threads(options: dict[str, str], engine: str) -> int | None:
    value = options.pop("threads", None)
    if value is None:
        return None
    if not value.isdigit() or int(value) < 1:
        raise InputError(f"compute threads for {engine} must be a whole number >= 1; received {value!r}")
    return int(value)


class Engine(ABC):
    """A loaded model that runs raw tensors.

    Attributes:
        name: the engine (``tflite``, ``onnx``, ``vela``); version: its library's version.
        model_name: the model's name (file name, or ``model``); model_bytes: the file as loaded.
        inputs, outputs: dicts with name, shape, datatype, scale, zero_point (scale 0: not quantized);
            outputs carry ``index`` too.
        labels: class names (embedded in the model or uploaded); metadata: the model's ``eiq_metadata``.
        last_timing_ns: how long the last `run` took on the engine's device (ns).
        concurrency: how many runs may go at once (each on a thread of its own; `run_timed` is thread-safe).
    """

    name = ""
    version = ""
    model_name = "model"
    model_bytes = b""
    inputs: list[dict[str, Any]]
    outputs: list[dict[str, Any]]
    labels: list[str]
    metadata: dict[str, Any]
    last_timing_ns = 0
    concurrency = 1
    profiling = False
    _profile: dict[str, int] | None = None
    _compute: dict[str, Any]

    @abstractmethod
    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model once on `inputs` (name -> array in the input's dtype and shape); every output, raw."""

    def run_timed(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        """`run` and its time on the engine's device (ns); up to `concurrency` threads may call it at once."""
        outputs = self.run(inputs)
        return outputs, self.last_timing_ns

    @abstractmethod
    def layers(self) -> list[dict[str, Any]]:
        """The model's layers: name, type, inputs (tensor names), tensor {shape, datatype}."""

    def set_profiling(self, enabled: bool) -> None:
        """Collect per-layer timings (`layer_timings`) after runs."""
        self.profiling = bool(enabled)

    def layer_timings(self) -> dict[str, int]:
        """Per-layer times (ns) keyed by layer name, once a profiled run happened (empty otherwise or when the
        profiling module is not available)."""
        if not self.profiling:
            return {}
        if self._profile is None:
            self._profile = self._measure_layers()
        return self._profile

    def _measure_layers(self) -> dict[str, int]:
        try:
            from . import profiling
        except ImportError:  # the profiler is an optional part of the runner
            return {}
        profile = profiling.profile_model(self.model_bytes, self.name, runs=3, **self._compute)
        return {name: round(ns) for name, ns in profile.layer_timings().items()}

    @property
    def is_classifier(self) -> bool:
        """One 2-D output [1, classes]: its top entry is a label (named when labels are known)."""
        return len(self.outputs) == 1 and len(self.outputs[0]["shape"]) == 2

    def describe(self) -> dict[str, Any]:
        """The engine and model for reports."""
        return {"engine": self.name, "version": self.version, "model_name": self.model_name}


def _layer(name: str, kind: str, inputs: list[str], shape: Any, dtype: Any) -> dict[str, Any]:
    return {
        "name": name, "type": kind, "inputs": inputs,
        "tensor": {"shape": [int(d) for d in shape], "datatype": datatype(dtype)},
    }  # fmt: skip


class LiteRTEngine(Engine):
    """A .tflite model in LiteRT; compute ``threads=N``, ``xnnpack=on|off`` (off: the builtin kernels) and
    ``pool=N``: interpreters running requests side by side (default: the cores over the threads, at most 4, shared
    among the `workers` processes serving the model)."""

    name = "tflite"
    OFFERS = "threads=N, xnnpack=on|off, pool=N"

    def __init__(self, data: bytes, model_name: str = "model.tflite", compute: str | None = None, workers: int = 1):
        from ai_edge_litert import interpreter as litert

        options = parse_compute(compute)
        _check_device(options, self.name, self.OFFERS)
        threads = _threads(options, self.name)
        xnnpack = options.pop("xnnpack", "on").lower()
        if xnnpack not in ("on", "off", "1", "0", "true", "false"):
            raise InputError(f"compute xnnpack must be on or off; received {xnnpack!r}")
        pool = options.pop("pool", None)
        if pool is not None and (not pool.isdigit() or int(pool) < 1):
            raise InputError(f"compute pool (interpreters) must be a whole number >= 1; received {pool!r}")
        _unknown_options(options, self.name, self.OFFERS)
        use_xnnpack = xnnpack in ("on", "1", "true")
        self._compute = {"threads": threads, "xnnpack": use_xnnpack}
        kinds = litert.OpResolverType
        resolver = kinds.AUTO if use_xnnpack else kinds.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        cores = (os.cpu_count() or 1) // (threads or 1) // workers
        self.concurrency = int(pool) if pool else max(1, min(4, cores))
        self._idle: queue.LifoQueue[Any] = queue.LifoQueue()  # the last used (its memory cached) goes first
        try:
            for _ in range(self.concurrency):  # each run borrows an interpreter: LiteRT releases the GIL in invoke
                interpreter = litert.Interpreter(
                    model_content=bytes(data), num_threads=threads, experimental_op_resolver_type=resolver
                )
                interpreter.allocate_tensors()
                self._idle.put(interpreter)
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"{model_name} cannot be loaded by LiteRT: {str(exc).strip()[:300]}") from None
        from importlib.metadata import version

        self.version = version("ai-edge-litert")
        self.model_name, self.model_bytes = model_name, bytes(data)
        self._in = interpreter.get_input_details()
        self._out = interpreter.get_output_details()
        self.inputs = [_tensor(d["name"], d["shape"], d["dtype"], *d["quantization"]) for d in self._in]
        self.outputs = [
            {**_tensor(d["name"], d["shape"], d["dtype"], *d["quantization"]), "index": i}
            for i, d in enumerate(self._out)
        ]
        self.metadata = metadata_of_tflite(self.model_bytes)
        self.labels = list(self.metadata.get("labels") or [])

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs, self.last_timing_ns = self.run_timed(inputs)
        return outputs

    def run_timed(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        with self._borrowed() as interpreter:
            for detail in self._in:
                interpreter.set_tensor(detail["index"], inputs[detail["name"]])
            start = time.perf_counter_ns()
            interpreter.invoke()
            spent = time.perf_counter_ns() - start
            return {d["name"]: interpreter.get_tensor(d["index"]) for d in self._out}, spent  # get_tensor copies

    @contextmanager
    def _borrowed(self) -> Iterator[Any]:
        """An interpreter of the pool, for this thread alone until the block ends."""
        interpreter = self._idle.get()
        try:
            yield interpreter
        finally:
            self._idle.put(interpreter)

    def layers(self) -> list[dict[str, Any]]:
        with self._borrowed() as interpreter:
            tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
            operators = interpreter._get_ops_details()  # LiteRT's only view of the operator list
        produced = {int(i) for op in operators for i in op["outputs"]}
        out = [_layer(d["name"], "input", [], d["shape"], d["dtype"]) for d in self._in]
        activations = produced | {int(d["index"]) for d in self._in}
        for op in operators:
            if op["op_name"] == "DELEGATE":  # XNNPACK's node standing for the operators it took over
                continue
            first = tensors[int(op["outputs"][0])]
            names = [tensors[int(i)]["name"] for i in op["inputs"] if int(i) in activations]
            out.append(_layer(first["name"], op["op_name"], names, first["shape"], first["dtype"]))
        return out


class OnnxEngine(Engine):
    """An .onnx model in ONNX Runtime; compute ``threads=N`` and ``providers=A+B`` (default CPU)."""

    name = "onnx"
    OFFERS = "threads=N, providers=NAME[+NAME]"

    def __init__(self, data: bytes, model_name: str = "model.onnx", compute: str | None = None):
        import onnxruntime as ort

        options = parse_compute(compute)
        _check_device(options, self.name, self.OFFERS)
        threads = _threads(options, self.name)
        providers = [p for p in options.pop("providers", "CPUExecutionProvider").split("+") if p]
        _unknown_options(options, self.name, self.OFFERS)
        unknown = [p for p in providers if p not in ort.get_available_providers()]
        if unknown:
            raise InputError(
                f"ONNX Runtime provider(s) {', '.join(unknown)} are not available on this host; it has "
                f"{', '.join(ort.get_available_providers())}"
            )
        self._compute = {"threads": threads}
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3
        if threads:
            session_options.intra_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(bytes(data), session_options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InputError(f"{model_name} cannot be loaded by ONNX Runtime: {str(exc).strip()[:300]}") from None
        self.version = ort.__version__
        self.model_name, self.model_bytes = model_name, bytes(data)
        self.inputs = [_tensor(i.name, _dims(i.shape), _onnx_dtype(i.type)) for i in self.session.get_inputs()]
        self.outputs = [
            {**_tensor(o.name, _dims(o.shape), _onnx_dtype(o.type)), "index": n}
            for n, o in enumerate(self.session.get_outputs())
        ]
        self.metadata = metadata_of_onnx(self.model_bytes)
        self.labels = list(self.metadata.get("labels") or [])

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        start = time.perf_counter_ns()
        results = self.session.run(None, {i["name"]: inputs[i["name"]] for i in self.inputs})
        self.last_timing_ns = time.perf_counter_ns() - start
        return {o["name"]: np.asarray(r) for o, r in zip(self.outputs, results)}

    def layers(self) -> list[dict[str, Any]]:
        import onnx

        proto = onnx.shape_inference.infer_shapes(onnx.load_model_from_string(self.model_bytes))
        graph = proto.graph
        known = {}
        for value in [*graph.input, *graph.value_info, *graph.output]:
            kind = value.type.tensor_type
            dims = [d.dim_value if d.HasField("dim_value") else -1 for d in kind.shape.dim]
            known[value.name] = (dims, onnx.helper.tensor_dtype_to_np_dtype(kind.elem_type))
        constants = {t.name for t in graph.initializer}
        out = [_layer(i["name"], "input", [], i["shape"], numpy_dtype(i["datatype"])) for i in self.inputs]
        for n, node in enumerate(graph.node):
            first = node.output[0] if node.output else f"{node.op_type}_{n}"
            shape, dtype = known.get(first, ([], np.float32))
            names = [name for name in node.input if name and name not in constants]
            out.append({**_layer(node.name or first, node.op_type, names, shape, dtype), "output": first})
        return out


def _dims(shape: Any) -> list[int]:
    return [d if isinstance(d, int) else -1 for d in shape]


def _onnx_dtype(kind: str) -> Any:
    if kind not in _ONNX_DTYPES:
        raise InputError(f"the model has a {kind} input or output; the runner handles {', '.join(_ONNX_DTYPES)}")
    return _ONNX_DTYPES[kind]


class VelaEngine(LiteRTEngine):
    """An int8 .tflite model as an Ethos-U NPU would run it: Vela compiles it and its performance estimate is
    the device's timing (model and per-layer); the outputs come from LiteRT running the same int8 model on
    the CPU (the host cannot run the ``ethos-u`` operator). Compute: a Vela config (``imx93``, the default,
    ``ethos-u55-256``, ... or ``config=PATH.ini``)."""

    name = "vela"

    def __init__(self, data: bytes, model_name: str = "model.tflite", compute: str | None = None):
        from importlib.metadata import version

        from ..convert.vela import compile_for_ethos_u

        options = parse_compute(compute)
        config = options.pop("config", None) or options.pop("device", None) or "imx93"
        _unknown_options(options, self.name, "a Vela config: imx93, ethos-u55-256, ... or config=FILE.ini")
        with tempfile.TemporaryDirectory(prefix="eiq-runner-vela-") as folder:
            self.report = compile_for_ethos_u(bytes(data), Path(folder) / "out", config)
            self.compiled = self.report.model.read_bytes()
        super().__init__(data, model_name)
        self.version = version("ethos-u-vela")
        self._compute = {"config": config}
        self.last_timing_ns = round(self.report.inference_time_s * 1e9)

    def run_timed(self, inputs: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], int]:
        outputs, _ = super().run_timed(inputs)
        return outputs, round(self.report.inference_time_s * 1e9)  # the NPU estimate, not the CPU's time

    def _measure_layers(self) -> dict[str, int]:
        # Vela's per-layer cycles at the NPU clock; several rows share a name when Vela splits an operator
        timings: dict[str, int] = {}
        for row in self.report.layers:
            ns = round(row.cycles / self.report.clock_hz * 1e9) if self.report.clock_hz else 0
            timings[row.name] = timings.get(row.name, 0) + ns
        return timings


def open_engine(
    model: bytes | str | os.PathLike,
    engine: str | None = None,
    compute: str | None = None,
    name: str | None = None,
    workers: int = 1,
) -> Engine:
    """Open a model in an engine.

    Args:
        model: the model file's path or its bytes.
        engine: ``tflite``, ``onnx`` or ``vela`` (None: by the file's content: TFLite or ONNX).
        compute: what the engine runs on and how (``threads=2,xnnpack=off``; ``providers=...``; a Vela config).
        name: the model's name (default: the file name, or ``model.tflite`` / ``model.onnx`` for bytes).
        workers: how many processes serve the model side by side (LiteRT's default pool shares the cores).

    Returns:
        The `Engine`.

    Raises:
        InputError: no such file, not a model the engine loads, an engine this host lacks, a bad compute.
    """
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise InputError(f"model file {path} does not exist; give a .tflite or .onnx file")
        data, name = path.read_bytes(), name or path.name
    kind = (engine or "").lower() or None
    if kind in FOREIGN_ENGINES:
        raise InputError(
            f"engine {kind!r} ({FOREIGN_ENGINES[kind]}) needs the board's runtime and is not on this host; this "
            f"host has: {available()}"
        )
    if kind is not None and kind not in ENGINES:
        raise InputError(f"engine must be one of {', '.join(ENGINES)}; received {engine!r}")
    is_tflite = data[4:8] == b"TFL3"
    if kind is None:
        kind = "tflite" if is_tflite else "onnx" if _looks_onnx(data) else None
        if kind is None:
            raise InputError(
                f"{name or 'the uploaded file'} is not a model the runner can run: expected a TFLite "
                f"(.tflite) or ONNX (.onnx) file ({len(data)} bytes received)"
            )
    if kind in ("tflite", "vela") and not is_tflite:
        raise InputError(f"engine {kind} runs .tflite files; {name or 'the model'} is not one")
    cls = {"tflite": LiteRTEngine, "onnx": OnnxEngine, "vela": VelaEngine}[kind]
    default = "model.onnx" if kind == "onnx" else "model.tflite"
    try:
        return cls(data, name or default, compute, **({"workers": workers} if cls is LiteRTEngine else {}))
    except ImportError as exc:
        raise EiqError(f"engine {kind} is not installed here ({exc}); pip install 'eiq-lab[runner]'") from None


def _looks_onnx(data: bytes) -> bool:
    # an ONNX ModelProto starts with field 1 (ir_version, varint): tag byte 0x08
    return len(data) > 16 and data[0] == 0x08


def available() -> str:
    """The engines on this host with their versions, for messages."""
    from importlib.metadata import PackageNotFoundError, version

    names = []
    for engine, package, what in (("tflite", "ai-edge-litert", "LiteRT"), ("onnx", "onnxruntime", "ONNX Runtime"),
                                  ("vela", "ethos-u-vela", "Vela Ethos-U estimate")):  # fmt: skip
        try:
            names.append(f"{engine} ({what} {version(package)})")
        except PackageNotFoundError:
            continue
    return ", ".join(names)


def decode_image(body: bytes) -> Any:
    """An encoded image (JPEG, PNG, BMP...) as a PIL image.

    Raises:
        InputError: the bytes are not an image PIL decodes.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(body))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(
            f"the request body ({len(body)} bytes) is not an image this runner decodes (JPEG, PNG, BMP, GIF...): "
            f"{type(exc).__name__}"
        ) from None
    return image


def image_input(engine: Engine, image: Any, imgproc: str | None = None) -> dict[str, np.ndarray]:
    """The model's (single) input made from a PIL image: resized to the input, preprocessed per `imgproc`
    (else the model's metadata ``normalization``, else raw pixels), quantized with the input's scale and zero
    point for int8/uint8 inputs.

    Raw pixels into an integer input go in as they are (uint8) or shifted by -128 (int8).

    Raises:
        InputError: the model has not one image input, or `imgproc` is unknown.
    """
    if len(engine.inputs) != 1:
        raise InputError(f"an image body feeds a model with one input; {engine.model_name} has {len(engine.inputs)}")
    spec = engine.inputs[0]
    shape = spec["shape"]
    if len(shape) != 4:
        raise InputError(f"an image body feeds a [N, H, W, C] input; {spec['name']} is {shape}")
    nchw = shape[1] in (1, 3) and shape[3] not in (1, 3)
    height, width, channels = (shape[2], shape[3], shape[1]) if nchw else (shape[1], shape[2], shape[3])
    if imgproc is None:
        imgproc = _FROM_NORMALIZATION.get(str(engine.metadata.get("normalization")))
    elif imgproc not in IMGPROC:
        raise InputError(f"imgproc must be one of {', '.join(IMGPROC)}; received {imgproc!r}")
    image = image.convert("L" if channels == 1 else "RGB")
    if height > 0 and width > 0 and image.size != (width, height):
        image = image.resize((width, height), resample=2)  # bilinear, as the training input pipeline resizes
    pixels = np.asarray(image, np.float32).reshape(image.size[1], image.size[0], channels)
    value = _normalize(pixels, imgproc)
    dtype = numpy_dtype(spec["datatype"])
    if np.issubdtype(dtype, np.integer):
        if imgproc is None:  # raw pixels
            value = pixels - 128 if dtype == np.int8 else pixels
        elif spec["scale"]:
            value = np.round(value / spec["scale"] + spec["zero_point"])
        info = np.iinfo(dtype)
        value = np.clip(value, info.min, info.max)
    value = value.astype(dtype)[None]
    return {spec["name"]: np.transpose(value, (0, 3, 1, 2)) if nchw else value}


def _normalize(pixels: np.ndarray, imgproc: str | None) -> np.ndarray:
    if imgproc == "normalize":
        return pixels / 255.0
    if imgproc == "signed_normalize":
        return pixels / 127.5 - 1.0
    if imgproc == "whitening":  # per-image standardisation
        return (pixels - pixels.mean()) / max(float(pixels.std()), 1.0 / np.sqrt(pixels.size))
    return pixels
