"""Executors: what runs a model for evaluation and validation, behind one call: a batch of preprocessed
float32 inputs [B, H, W, C] in, the model's first output [B, ...] out, as float32 (dequantized).

Keras (a model object, .h5, .keras, a SavedModel folder), LiteRT (.tflite, float or int8/uint8 I/O: the
executor quantizes the input and dequantizes the output with the file's own scale and zero point) and
ONNX Runtime (.onnx, NHWC or NCHW inputs). A remote ModelRunner is one more executor with the same call.
Each also reads the model's embedded metadata (labels, normalization, input size), so a model file
exported here evaluates without being told what it is.
"""

from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import framework
from ..errors import EiqError, InputError

#: ONNX Runtime's element types -> numpy, for the inputs an executor feeds.
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(uint8)": np.uint8, "tensor(int8)": np.int8}


class Executor(ABC):
    """Runs a model on batches of preprocessed inputs.

    Attributes:
        name: what runs (the file name, or the Keras model's name).
        kind: ``keras``, ``tflite``, ``onnx`` (or ``remote`` for a runner).
        input_shape: (height, width, channels) the model takes.
        metadata: the ``eiq_metadata`` the model carries (empty if none), with ``labels`` when the file
            holds labels.
    """

    name: str = ""
    kind: str = ""
    input_shape: tuple[int, int, int] = (0, 0, 0)
    metadata: dict[str, Any]

    @abstractmethod
    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        """Every output of the model on `batch` (float32, dequantized), in the model's output order."""

    def __call__(self, batch: Any) -> np.ndarray:
        return self.outputs(np.asarray(batch, np.float32))[0]

    @property
    def labels(self) -> list[str] | None:
        """The class names embedded in the model, if any."""
        labels = self.metadata.get("labels")
        return list(labels) if labels else None

    def describe(self) -> dict[str, Any]:
        """What runs, for reports: name, kind, input shape."""
        return {"name": self.name, "kind": self.kind, "input_shape": list(self.input_shape)}


def image_shape(shape: Any, what: str) -> tuple[int, int, int]:
    dims = [int(d) if d not in (None, -1) and not isinstance(d, str) else 0 for d in list(shape)[1:]]
    if len(dims) != 3 or 0 in dims:
        raise InputError(f"{what} must take one image batch [N, H, W, C]; its input is {list(shape)}")
    return dims[0], dims[1], dims[2]


class KerasExecutor(Executor):
    """A Keras 2 (tf_keras) model in memory."""

    kind = "keras"

    def __init__(self, model: Any, name: str | None = None, metadata: dict[str, Any] | None = None):
        self.model = model
        self.name = name or model.name
        self.input_shape = image_shape(model.input_shape, f"model {self.name}")
        self.metadata = dict(metadata or {})

    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        result = self.model.predict_on_batch(batch)
        return [np.asarray(r, np.float32) for r in (result if isinstance(result, (list, tuple)) else [result])]


class LiteRTExecutor(Executor):
    """A TFLite model in LiteRT (ai-edge-litert), float or quantized; batch 1 models run image by image."""

    kind = "tflite"

    def __init__(self, data: bytes, name: str = "model.tflite", threads: int | None = None):
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:
            raise EiqError("running TFLite models needs ai-edge-litert: pip install 'eiq-lab[tf]'") from None
        self.name = name
        try:
            self.interpreter = Interpreter(model_content=bytes(data), num_threads=threads)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise InputError(f"{name} cannot be loaded by LiteRT: {exc}") from None
        inputs = self.interpreter.get_input_details()
        if len(inputs) != 1:
            raise InputError(f"{name} has {len(inputs)} inputs; evaluation feeds models with one image input")
        self._input = inputs[0]
        self._outputs = self.interpreter.get_output_details()
        self.input_shape = image_shape(self._input["shape"], name)
        self._batched = int(self._input["shape_signature"][0]) == -1
        self.metadata = tflite_metadata(data)

    def _set(self, value: np.ndarray) -> None:
        detail = self._input
        if detail["dtype"] != np.float32:
            scale, zero = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            value = np.clip(np.round(value / scale + zero), info.min, info.max)
        self.interpreter.set_tensor(detail["index"], value.astype(detail["dtype"]))

    def _get(self) -> list[np.ndarray]:
        results = []
        for detail in self._outputs:
            value = self.interpreter.get_tensor(detail["index"])
            if detail["dtype"] != np.float32:
                scale, zero = detail["quantization"]
                value = (value.astype(np.float32) - zero) * scale if scale else value.astype(np.float32)
            results.append(np.asarray(value, np.float32))
        return results

    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        if self._batched:
            self.interpreter.resize_tensor_input(self._input["index"], batch.shape)
            self.interpreter.allocate_tensors()
            self._set(batch)
            self.interpreter.invoke()
            return self._get()
        parts = []
        for image in batch:
            self._set(image[None])
            self.interpreter.invoke()
            parts.append(self._get())
        return [np.concatenate(column) for column in zip(*parts)]


class OnnxExecutor(Executor):
    """An ONNX model in ONNX Runtime (CPU unless told otherwise); NCHW inputs are fed transposed."""

    kind = "onnx"

    def __init__(self, data: bytes, name: str = "model.onnx", providers: list[str] | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise EiqError("running ONNX models needs onnxruntime: pip install 'eiq-lab[onnx]'") from None
        self.name = name
        options = ort.SessionOptions()
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(bytes(data), options, providers=providers or ["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise InputError(f"{name} cannot be loaded by ONNX Runtime: {exc}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{name} has {len(inputs)} inputs; evaluation feeds models with one image input")
        self._input = inputs[0]
        shape = list(self._input.shape)
        # channels first when the second dimension is a channel count and the last is not (PyTorch exports)
        self._nchw = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
        hwc = [shape[0], shape[2], shape[3], shape[1]] if self._nchw else shape
        self.input_shape = image_shape(hwc, name)
        self._batched = not isinstance(shape[0], int) or shape[0] != 1
        self._dtype = _ONNX_TYPES.get(self._input.type)
        if self._dtype is None:
            raise InputError(f"{name} takes {self._input.type} input; evaluation feeds float32, uint8 or int8")
        self.metadata = onnx_metadata(data)

    def _run(self, batch: np.ndarray) -> list[np.ndarray]:
        value = np.transpose(batch, (0, 3, 1, 2)) if self._nchw else batch
        results = self.session.run(None, {self._input.name: value.astype(self._dtype)})
        return [np.asarray(r, np.float32) for r in results]

    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        if self._batched:
            return self._run(batch)
        parts = [self._run(image[None]) for image in batch]
        return [np.concatenate(column) for column in zip(*parts)]


def tflite_metadata(data: bytes) -> dict[str, Any]:
    """The ``eiq_metadata`` JSON of a TFLite file, with its ``labels`` entry (empty when it has neither); read
    with LiteRT's own flatbuffer schema, so no TensorFlow import."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.Model.GetRootAs(bytearray(data), 0)
    entries = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        name = entry.Name().decode() if isinstance(entry.Name(), bytes) else str(entry.Name())
        entries[name] = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    return _metadata(entries.get("eiq_metadata"), entries.get("labels"))


def onnx_metadata(data: bytes) -> dict[str, Any]:
    """The ``eiq_metadata`` JSON of an ONNX file's metadata_props, with its ``labels`` (empty when none)."""
    import onnx

    props = {p.key: p.value for p in onnx.load_model_from_string(bytes(data)).metadata_props}
    return _metadata(props.get("eiq_metadata"), props.get("labels"))


def _metadata(text: bytes | str | None, labels: bytes | str | None) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    if text:
        try:
            metadata = dict(json.loads(text))
        except (ValueError, TypeError):
            metadata = {}  # another tool's entry of the same name: not ours to read
    if labels and not metadata.get("labels"):
        text = labels.decode() if isinstance(labels, bytes) else labels
        metadata["labels"] = [line.strip() for line in text.splitlines() if line.strip()]
    return metadata


def load_keras(path: str | os.PathLike, *, trust_code: bool = False) -> Any:
    """Load a Keras 2 model file (.h5, .keras) or SavedModel folder without running code it carries.

    A Lambda layer holding Python bytecode is refused unless `trust_code` (Keras' safe mode, which
    Keras itself applies only to .keras files, is applied to .h5 too).

    Raises:
        InputError: the file cannot be loaded (Keras 3 files, code in the file, not a model).
    """
    keras = framework.keras()
    from tf_keras.src.saving import serialization_lib

    from ..train import optimize

    path = Path(path)
    try:
        with serialization_lib.SafeModeScope(not trust_code), optimize.custom_objects_scope():
            return keras.models.load_model(path, compile=False, safe_mode=not trust_code)
    except ValueError as exc:
        if "arbitrary code execution" in str(exc):
            raise InputError(
                f"{path.name} holds a Lambda layer with Python code; loading it would run that code. If you "
                "trust the file, allow it (trust_code=True; on the command line --trust-code)"
            ) from None
        raise InputError(f"{path.name} cannot be loaded as a Keras 2 model: {_first_line(exc)}{_hint(path)}") from None
    except Exception as exc:  # h5py, JSON and Keras errors alike: the file is not a usable model
        raise InputError(f"{path.name} cannot be loaded as a Keras 2 model: {_first_line(exc)}{_hint(path)}") from None


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:400] if text else type(exc).__name__


def _hint(path: Path) -> str:
    if path.suffix.lower() == ".keras":
        return " (a Keras 3 .keras file cannot be loaded by Keras 2: convert it with eiq-converter first)"
    return ""


def open_model(
    model: Any, *, trust_code: bool = False, threads: int | None = None, providers: list[str] | None = None
) -> Executor:
    """An executor for a model: an `Executor` (returned as is), a Keras model object, or a file
    (.tflite, .onnx, .h5, .keras, a SavedModel folder), recognised by its content.

    Args:
        model: the model.
        trust_code: allow a Keras file to run the Python code it carries (Lambda layers).
        threads: LiteRT's thread count (default: its own).
        providers: ONNX Runtime's execution providers (default: CPU).

    Raises:
        InputError: no such file, or not a model any executor runs.
    """
    if isinstance(model, Executor):
        return model
    if hasattr(model, "predict_on_batch"):
        return KerasExecutor(model)
    path = Path(model)
    if not path.exists():
        raise InputError(f"model file {path} does not exist")
    if path.is_dir():
        if not (path / "saved_model.pb").exists():
            raise InputError(f"{path} is a folder without saved_model.pb: not a SavedModel")
        return KerasExecutor(load_keras(path, trust_code=trust_code), path.name)
    data = path.read_bytes()
    if data[4:8] == b"TFL3":
        return LiteRTExecutor(data, path.name, threads)
    if data[:8] == b"\x89HDF\r\n\x1a\n" or (data[:2] == b"PK" and path.suffix == ".keras"):
        return KerasExecutor(load_keras(path, trust_code=trust_code), path.name)
    if path.suffix == ".onnx":
        return OnnxExecutor(data, path.name, providers)
    raise InputError(
        f"{path.name} is not a model evaluation can run: expected TFLite, ONNX, Keras .h5/.keras or a SavedModel folder"
    )


#: What `evaluate_run` and the validator accept as a model: a path, a Keras model or an executor.
ModelLike = str | os.PathLike | Executor | Callable[[Any], Any]
