"""RemoteExecutor: a model running in a ModelRunner (on a board, or `eiq-runner` on this host) behind the same
call as the local executors, so `evaluate_run(executor=...)` computes a confusion matrix on the device.

Inputs are quantized and outputs dequantized here with the scale and zero point the runner reports.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError, InputError
from ..evaluate.executors import Executor, image_shape, onnx_metadata, tflite_metadata
from .client import DATATYPES, ModelClient, RunnerError


class RemoteExecutor(Executor):
    """Runs batches on a ModelRunner, image by image (one request each).

    Args:
        uri: the runner (``host:port`` or ``http://host:port/v1``).
        model: a model file or bytes to upload first (default: the model the runner already holds).
        timeout: seconds per request.
        token: the runner's bearer token (default ``$EIQ_RUNNER_TOKEN``).
        callback: upload progress (default: none).

    Raises:
        EiqError: the runner cannot be reached or refused the model.
        InputError: the model does not take one image input [1, H, W, C] (or [1, C, H, W]).
    """

    kind = "remote"

    def __init__(
        self,
        uri: str,
        model: str | os.PathLike | bytes | None = None,
        *,
        timeout: float = 100,
        token: str | None = None,
        callback: Any = None,
    ):
        self.client = ModelClient(uri, model, timeout=timeout, callback=callback, token=token)
        description = self.client.describe()
        inputs = description.get("inputs") or []
        if len(inputs) != 1:
            raise InputError(
                f"the model on {self.client.uri} has {len(inputs)} inputs; evaluation feeds models with one image input"
            )
        self._input = inputs[0]
        self._outputs = list(description.get("outputs") or [])
        if not self._outputs:
            raise EiqError(f"the runner at {self.client.uri} describes a model without outputs: is a model loaded?")
        shape = [int(d) for d in self._input.get("shape") or []]
        # channels first when the second dimension is a channel count and the last is not (PyTorch exports)
        self._nchw = len(shape) == 4 and shape[1] in (1, 3) and shape[3] not in (1, 3)
        hwc = [shape[0], shape[2], shape[3], shape[1]] if self._nchw else shape
        model_name = description.get("model_name") or ""
        self.name = Path(model).name if isinstance(model, (str, os.PathLike)) else model_name or "remote model"
        self.input_shape = image_shape(hwc, f"the model on {self.client.uri}")
        self._dtype = DATATYPES.get(str(self._input.get("datatype") or "FLOAT32").upper())
        if self._dtype not in (np.float32, np.uint8, np.int8):
            raise InputError(
                f"the model on {self.client.uri} takes {self._input.get('datatype')} input; evaluation feeds float32, "
                "uint8 or int8"
            )
        self.metadata = self._read_metadata(model)

    def _read_metadata(self, model: Any) -> dict[str, Any]:
        """The model's embedded metadata: from the file given, else the runner's copy of the model; labels the
        runner knows fill in when the file has none."""
        data = None
        if isinstance(model, (bytes, bytearray)):
            data = bytes(model)
        elif model is not None:
            data = Path(model).read_bytes()
        else:
            try:
                data = self.client._request("GET", "/model", headers={"Accept": "application/octet-stream"}).content
            except RunnerError:
                data = None  # a runner that does not serve its model: labels below are all we learn
        metadata: dict[str, Any] = {}
        if data:
            try:
                metadata = tflite_metadata(data) if data[4:8] == b"TFL3" else onnx_metadata(data)
            except Exception:  # not a format whose metadata we read (a Vela model, another engine's file)
                metadata = {}
        if not metadata.get("labels"):
            labels = self.client.get_labels()
            if labels:
                metadata["labels"] = labels
        return metadata

    def _quantize(self, value: np.ndarray) -> np.ndarray:
        if self._dtype == np.float32:
            return value.astype(np.float32)
        scale, zero = float(self._input.get("scale") or 0.0), int(self._input.get("zero_point") or 0)
        if not scale:
            raise InputError(f"the model on {self.client.uri} takes integer input without a scale: cannot quantize")
        info = np.iinfo(self._dtype)
        return np.clip(np.round(value / scale + zero), info.min, info.max).astype(self._dtype)

    def outputs(self, batch: np.ndarray) -> list[np.ndarray]:
        names = [item["name"] for item in self._outputs]
        name = self._input["name"]
        parts = []
        for image in np.asarray(batch, np.float32):
            value = np.transpose(image, (2, 0, 1))[None] if self._nchw else image[None]
            results = self.client.run({name: self._quantize(value)}, names)
            parts.append([_dequantize(results[item["name"]], item) for item in self._outputs])
        return [np.concatenate(column) for column in zip(*parts)]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "uri": self.client.uri}


def _dequantize(value: np.ndarray, item: dict[str, Any]) -> np.ndarray:
    scale = float(item.get("scale") or 0.0)
    if value.dtype != np.float32 and scale:
        return ((value.astype(np.float32) - int(item.get("zero_point") or 0)) * scale).astype(np.float32)
    return value.astype(np.float32)


def profile_remote(uri: str, model: str | os.PathLike | bytes | None = None, *, runs: int = 10) -> Any:
    """Profile a model on a ModelRunner started in profiling mode (``eiq-runner -d prof``): its per-layer timings
    of `runs` inferences on random inputs of the model's own shapes and types.

    Args:
        uri: the runner (``host:port``, a URL, or a target name from `eiq targets`).
        model: a model file or bytes to upload first (default: the model the runner holds).
        runs: inferences to time.

    Returns:
        A `Profile` with engine ``remote``.

    Raises:
        InputError: the runner reports no layer timings (it is not in profiling mode).
        EiqError: the runner cannot be reached or refused the model.
    """
    from .profiling import LayerTiming, Profile
    from .targets import resolve_uri

    client = ModelClient(resolve_uri(uri), model, callback=lambda _: None)
    try:
        rng = np.random.default_rng(0)
        inputs = {}
        for item in client.describe().get("inputs") or []:
            dtype = np.dtype(str(item.get("datatype", "FLOAT32")).lower())
            shape = [d if d > 0 else 1 for d in item["shape"]]
            if np.issubdtype(dtype, np.integer):
                inputs[item["name"]] = rng.integers(-128 if dtype == np.int8 else 0, 127, shape).astype(dtype)
            else:
                inputs[item["name"]] = rng.uniform(-1, 1, shape).astype(dtype)
        client.run(inputs, params={"run": int(runs)})
        layers = [
            LayerTiming(
                name=name, type=str(layer["type"]), original=[], shape=layer["shape"],
                datatype=str(layer["datatype"] or ""), avg_ns=float(layer["timing"]), total_ns=float(layer["timing"]),
                count=1,
            )
            for name, layer in client.get_layers().items()
            if layer["timing"] is not None
        ]  # fmt: skip
        if not layers:
            raise InputError(
                f"the runner at {client.uri} reported no layer timings; start it in profiling mode: eiq-runner -d prof"
            )
        info = client.info()
        settings = {"uri": client.uri, "runner_engine": info.get("engine"), "runs": int(runs)}
        return Profile("remote", client.get_model_name(), layers, client.get_timing_info()[2] * 1e9, settings)
    finally:
        client.close()
