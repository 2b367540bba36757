"""ModelClient: the Python face of a ModelRunner (ours, `eiq-runner`, or any speaking the v1 REST protocol):
upload a model in blocks, run it on tensors or images, and read its layers, labels, quantization and timings.

Scripts written for the guide's ``deepview.rt.modelclient.ModelClient`` run with only the import changed.
"""

from __future__ import annotations

import base64
import math
import os
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from ..errors import EiqError, InputError, Stopped

try:
    import requests
except ImportError:  # the client is in the runner extra
    raise EiqError("ModelClient needs requests: pip install 'eiq-lab[runner]'") from None

#: The environment variable holding the runner's bearer token when none is given.
TOKEN_VARIABLE = "EIQ_RUNNER_TOKEN"
#: The content type existing clients send for every tensor, whatever its dtype (the runner takes the model's).
TENSOR_TYPE = "application/vnd.deepview.tensor.float32"
#: The most outputs one request may ask for (the protocol's limit).
MAX_OUTPUTS = 4

#: The protocol's datatype names -> numpy.
DATATYPES = {
    "FLOAT32": np.float32, "FLOAT16": np.float16, "FLOAT64": np.float64, "UINT8": np.uint8, "INT8": np.int8,
    "UINT16": np.uint16, "INT16": np.int16, "UINT32": np.uint32, "INT32": np.int32, "UINT64": np.uint64,
    "INT64": np.int64, "BOOL": np.bool_,
}  # fmt: skip

_IMAGE_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".bmp": "image/bmp"}


class RunnerError(EiqError):
    """The runner refused a request; `status` is its HTTP status (400, 404, 413, 415, 500...)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


class UploadProgress(str):
    """A progress message of a model upload (what ``callback`` receives): prints as a sentence, and carries
    `block`, `count`, `sent` and `total` (bytes) for programs."""

    block: int
    count: int
    sent: int
    total: int

    def __new__(cls, block: int, count: int, sent: int, total: int) -> UploadProgress:
        text = super().__new__(cls, f"model upload: block {block}/{count} ({sent}/{total} bytes)")
        text.block, text.count, text.sent, text.total = block, count, sent, total
        return text


def normalize_uri(uri: str) -> str:
    """A runner address as the protocol's base URI: ``localhost:10818`` -> ``http://localhost:10818/v1``.

    Raises:
        InputError: the address is empty or names no host.
    """
    text = str(uri or "").strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    if not parts.hostname:
        raise InputError(
            f"runner URI must name a host, as in localhost:10818 or http://host:10818/v1; received {uri!r}"
        )
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


class ModelClient:
    """Talks to one ModelRunner over HTTP.

    Args:
        uri: the runner, ``host:port`` or ``http://host:port/v1`` (``http://`` and ``/v1`` are added).
        rtm: a model (path or bytes, any format the runner's engine takes), uploaded now unless `upload_here`
            is False (then `upload_model()` does it).
        timeout: seconds to wait for each request.
        callback: receives upload progress (`UploadProgress`, a str); default `print`.
        upload_here: upload `rtm` at construction.
        token: the runner's bearer token (default: ``$EIQ_RUNNER_TOKEN``, or none).

    Example:
        >>> client = ModelClient("localhost:10818", "m.tflite")          # doctest: +SKIP
        >>> client.run({"input": np.zeros((1, 32, 32, 3), np.float32)})  # doctest: +SKIP
    """

    def __init__(
        self,
        uri: str,
        rtm: str | os.PathLike | bytes | None = None,
        timeout: float = 100,
        callback: Any = print,
        upload_here: bool = True,
        *,
        token: str | None = None,
    ):
        self.uri = uri
        self.timeout = timeout
        self.callback = callback
        self.token = token if token is not None else os.environ.get(TOKEN_VARIABLE) or None
        self.model = rtm
        self._session = requests.Session()
        self._stop = threading.Event()
        self._description: dict[str, Any] | None = None
        self._last: dict[str, Any] = {}
        self.put_time = self.post_time = self.eval_time = 0.0
        if rtm is not None and upload_here:
            self.upload_model()

    # -- address ---------------------------------------------------------------------------------------------

    @property
    def uri(self) -> str:
        """The runner's base URI (``http://host:port/v1``); assigning ``host:port`` completes it."""
        return self._uri

    @uri.setter
    def uri(self, value: str) -> None:
        self._uri = normalize_uri(value)
        self._description = None

    # -- HTTP ------------------------------------------------------------------------------------------------

    def _request(self, method: str, path: str = "", *, timeout: float | None = None, **kwargs: Any) -> Any:
        headers = dict(kwargs.pop("headers", None) or {})
        if self.token:
            headers.setdefault("Authorization", f"Bearer {self.token}")
        url = self.uri + path
        try:
            response = self._session.request(method, url, headers=headers, timeout=timeout or self.timeout, **kwargs)
        except requests.ConnectionError as exc:
            if isinstance(exc, requests.ConnectTimeout) or "refused" not in str(exc).lower():
                raise EiqError(f"cannot reach the model runner at {self.uri}: {_reason(exc)}") from None
            raise EiqError(
                f"no model runner at {self.uri} (connection refused): start one there (eiq-runner -H PORT [MODEL]) "
                "or correct the URI"
            ) from None
        except requests.Timeout:
            raise EiqError(
                f"the model runner at {self.uri} gave no answer within {timeout or self.timeout:g} s; raise timeout= "
                "for slow devices or large models"
            ) from None
        except requests.RequestException as exc:
            raise EiqError(f"request to the model runner at {self.uri} failed: {_reason(exc)}") from None
        if response.status_code >= 400:
            raise RunnerError(
                f"model runner at {self.uri} refused {method} {path or '/v1'} ({response.status_code}): "
                f"{_error_text(response)}",
                response.status_code,
            )
        return response

    def _json(self, method: str, path: str = "", **kwargs: Any) -> Any:
        response = self._request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise EiqError(
                f"{self.uri}{path} answered {response.headers.get('Content-Type', 'no content type')}, not JSON: is it "
                "a model runner?"
            ) from None

    # -- upload ----------------------------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """The runner's ``GET /v1``: engine, version, model_limits and the model's labels."""
        return self._json("GET")

    def load_model(
        self, model: str | os.PathLike | bytes, uri: str | None = None, timeout: float = 100, callback: Any = print
    ) -> None:
        """Upload `model` (a path or bytes) to the runner (at `uri`, if given, from now on), replacing its model.

        Raises:
            InputError: the file cannot be read.
            RunnerError: the runner refused the model (not a model, too large).
            Stopped: `stop_uploading()` was called during the upload.
        """
        if uri is not None:
            self.uri = uri
        self.model, self.timeout, self.callback = model, timeout, callback
        self.upload_model()

    def upload_model(self) -> None:
        """Upload the client's model in blocks of the runner's ``model_limits.block_size``, reporting each
        block to `callback`; `stop_uploading()` from another thread stops it between blocks.

        Raises:
            InputError: there is no model to upload, or the file cannot be read.
            RunnerError: the runner refused it.
            Stopped: the upload was stopped; the runner did not get the whole model.
        """
        if self.model is None:
            raise InputError("no model to upload: give one (ModelClient(uri, 'model.tflite') or load_model(path))")
        data = _model_bytes(self.model)
        self._stop.clear()
        self._description = None
        started = time.perf_counter()
        limits = self.info().get("model_limits") or {}
        block_size = int(limits.get("block_size") or len(data) or 1)
        count = max(1, math.ceil(len(data) / block_size))
        self._json("PUT", files={"block_count": (None, str(count))})
        for block in range(count):
            if self._stop.is_set():
                raise Stopped(
                    f"model upload to {self.uri} stopped after {block} of {count} blocks; the runner has no new model"
                )
            chunk = data[block * block_size : (block + 1) * block_size]
            self._json("PUT", files={"block_content": ("block", chunk, "application/octet-stream")})
            if self.callback is not None:
                self.callback(UploadProgress(block + 1, count, min(len(data), (block + 1) * block_size), len(data)))
        self.put_time = time.perf_counter() - started

    def stop_uploading(self) -> None:
        """Stop an upload in progress (from another thread, or from `callback`) before its next block."""
        self._stop.set()

    def upload_labels(self, labels: list[str] | str | os.PathLike) -> None:
        """Give the runner the model's class names (a list, or a labels.txt path), one per output class."""
        if isinstance(labels, (str, os.PathLike)):
            try:
                text = Path(labels).read_text(encoding="utf-8")
            except OSError as exc:
                raise InputError(f"labels file {labels}: {exc.strerror or exc}") from None
        else:
            text = "\n".join(str(label) for label in labels)
        self._request("POST", data=text.encode(), headers={"Content-Type": "labels/txt"})

    # -- run -------------------------------------------------------------------------------------------------

    def run(
        self,
        inputs: dict[str, Any] | str | os.PathLike | bytes | None = None,
        outputs: list[str] | str | None = None,
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the model once (or ``params={"run": N}`` times) and return the outputs asked for.

        Args:
            inputs: ``{input name: array}`` (sent as raw C-order bytes of each array's own dtype), an image
                file path or encoded image bytes (decoded and resized by the runner; ``params={"imgproc":
                "normalize"}`` picks its preprocessing), or None to run again on the inputs already set.
            outputs: output names (default: every output of the model).
            timeout: seconds (default: the client's).
            headers, params: extra HTTP headers and query parameters (``run``, ``imgproc``, ``id``).

        Returns:
            ``{output name: array}`` in the model's own dtypes (quantized outputs stay quantized; see
            `get_io_quantization`).

        Raises:
            InputError: the image file cannot be read.
            RunnerError: the runner refused the request (shape mismatch, unknown output...).
        """
        names = [outputs] if isinstance(outputs, str) else list(outputs or self._output_names())
        results: dict[str, np.ndarray] = {}
        timings = {"timing": 0, "decode": 0, "input": 0}
        started = time.perf_counter()
        # the protocol returns at most 4 outputs a request: further ones come from re-runs on the same inputs
        for first in range(0, max(len(names), 1), MAX_OUTPUTS):
            body = inputs if first == 0 else None
            reply = self._post(body, names[first : first + MAX_OUTPUTS], timeout, headers, params)
            for key in timings:
                timings[key] += int(reply.get(key) or 0)
            for item in reply.get("outputs") or []:
                results[item["name"]] = _tensor(item)
        self.post_time = time.perf_counter() - started
        self.eval_time = timings["timing"] / 1e9
        self._last = timings
        return results

    def _post(
        self, inputs: Any, names: list[str], timeout: float | None, headers: dict | None, params: dict | None
    ) -> dict[str, Any]:
        query: list[tuple[str, Any]] = [("run", 1)]
        if params:
            query = [(k, v) for k, v in query if k not in params] + list(params.items())
        query += [("output", name) for name in names]
        send = {**(headers or {}), "Accept": "application/json"}  # the reply is parsed as the protocol's JSON
        kwargs: dict[str, Any] = {}
        if isinstance(inputs, dict):
            kwargs["files"] = [
                (name, (",".join(str(d) for d in array.shape), array.tobytes(), TENSOR_TYPE))
                for name, array in ((n, np.ascontiguousarray(v)) for n, v in inputs.items())
            ]
        elif isinstance(inputs, (bytes, bytearray)):
            kwargs["data"] = bytes(inputs)
            send.setdefault("Content-Type", "image/*")
        elif inputs is not None:
            path = Path(inputs)
            try:
                kwargs["data"] = path.read_bytes()
            except OSError as exc:
                raise InputError(f"image {path}: {exc.strerror or exc}") from None
            send.setdefault("Content-Type", _IMAGE_TYPES.get(path.suffix.lower(), "image/*"))
        return self._json("POST", params=query, headers=send, timeout=timeout, **kwargs)

    # -- model description -----------------------------------------------------------------------------------

    def describe(self, refresh: bool = True) -> dict[str, Any]:
        """The runner's ``GET /v1/model``: model name, inputs, outputs, layers (with the last run's timings)."""
        if refresh or self._description is None:
            self._description = self._json("GET", "/model", headers={"Accept": "application/json"})
        return self._description

    def _output_names(self) -> list[str]:
        return [item["name"] for item in self.describe(refresh=False).get("outputs") or []]

    def get_model_name(self) -> str:
        """The name of the model the runner holds."""
        return str(self.describe(refresh=False).get("model_name") or "")

    def get_labels(self) -> list[str]:
        """The model's class names, as the runner knows them (its metadata or uploaded labels)."""
        return list((self.info().get("model") or {}).get("labels") or [])

    def get_io_quantization(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``{"inputs": {name: {"scale", "zero_point", "datatype", "shape"}}, "outputs": {...}}``; a scale of
        0 means not quantized (real = (q - zero_point) * scale)."""
        description = self.describe(refresh=False)
        return {
            side: {
                item["name"]: {
                    "scale": float(item.get("scale") or 0.0),
                    "zero_point": int(item.get("zero_point") or 0),
                    "datatype": item.get("datatype"),
                    "shape": list(item.get("shape") or []),
                }
                for item in description.get(side) or []
            }
            for side in ("inputs", "outputs")
        }

    def get_layers(self) -> dict[str, dict[str, Any]]:
        """Every layer: ``{name: {"inputs", "type", "shape", "datatype", "timing"}}``, timing in ns of the last
        run (None for input and constant layers, or before any run)."""
        layers = {}
        for layer in self.describe().get("layers") or []:
            tensor = layer.get("tensor") or {}
            layers[layer["name"]] = {
                "inputs": list(layer.get("inputs") or []), "type": layer.get("type"),
                "shape": list(tensor.get("shape") or []), "datatype": tensor.get("datatype"),
                "timing": tensor.get("timing"),
            }  # fmt: skip
        return layers

    def get_layer_timing_info(self) -> dict[str, int]:
        """``{layer name: ns}`` of the last run, for the layers that carry a timing."""
        return {name: int(layer["timing"]) for name, layer in self.get_layers().items() if layer["timing"] is not None}

    def get_op_timing_info(self) -> dict[str, list[float]]:
        """``{op type: [average ns, total ns, count]}`` over the layers of each type in the last run."""
        summary: dict[str, list[float]] = {}
        for layer in self.get_layers().values():
            if layer["timing"] is None:
                continue
            row = summary.setdefault(str(layer["type"]), [0.0, 0.0, 0])
            row[1] += int(layer["timing"])
            row[2] += 1
        for row in summary.values():
            row[0] = row[1] / row[2]
        return summary

    def get_timing_info(self) -> tuple[float, float, float]:
        """``(put, post, eval)`` in seconds: the last upload, the last run's request round trip, and the
        model's own evaluation time the runner reported for it."""
        return self.put_time, self.post_time, self.eval_time

    def get_runner_timings(self) -> tuple[float, float, float]:
        """``(decode, input, output)`` in seconds: the runner's image decoding, input setting and output
        reading of the last run."""
        timings = self.describe().get("timings") or {}
        return tuple(float(timings.get(key) or 0) / 1e9 for key in ("decode", "input", "output"))  # type: ignore[return-value]

    def close(self) -> None:
        """Close the client's connections."""
        self._session.close()

    def __enter__(self) -> ModelClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ModelClient({self.uri!r})"


def _model_bytes(model: str | os.PathLike | bytes) -> bytes:
    if isinstance(model, (bytes, bytearray, memoryview)):
        return bytes(model)
    path = Path(model)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InputError(f"model file {path}: {exc.strerror or exc}") from None


def _tensor(item: dict[str, Any]) -> np.ndarray:
    datatype = str(item.get("datatype") or "FLOAT32").upper()
    dtype = DATATYPES.get(datatype)
    if dtype is None:
        raise EiqError(f"the runner sent output {item.get('name')} as {datatype}, a type this client cannot read")
    data = np.frombuffer(base64.b64decode(item.get("data") or ""), dtype)
    return data.reshape([int(d) for d in item.get("shape") or [data.size]]).copy()


def _error_text(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return (response.text or response.reason or "").strip()[:400]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:400]


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else exc
    return str(getattr(reason, "reason", reason))[:300]
