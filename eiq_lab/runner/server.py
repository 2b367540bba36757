"""The ModelRunner server: the eIQ REST protocol v1 (INTERFACES.md) over aiohttp, serving one loaded engine to
many clients at once (as many runs at a time as the engine has interpreters), with size caps and a token.

`create_app(...)` builds the application; `background.BackgroundServer` runs one on a loopback port in a thread
(tests, notebooks); the `eiq-runner` command serves one in the foreground (`workers` with several processes).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from ..errors import InputError
from .engines import IMGPROC, Engine, decode_image, image_input, numpy_dtype, open_engine
from .parts import MalformedBody, NestedBody, PartTooLarge, body_parts, form_parts, read_part
from .shared import LocalState, Published, SharedState

log = logging.getLogger("eiq_lab.runner")

DEFAULT_PORT = 10818
MAX_OUTPUTS = 4
MAX_RUNS = 10_000
MIB = 1 << 20
#: Runs expected to take less than this (ns) run on the event loop: the hop to a worker thread and back costs the
#: loop about as much (measured: 4 clients of a 0.4 ms model got 1465 answers/s inline, 1250/s through worker threads).
INLINE_NS = 1_000_000
#: While one client is served alone, runs up to this long (ns) run on the event loop too: nobody else is waiting,
#: and the hop costs the client about 0.3 ms. A client that connects meanwhile waits at most this long to be read.
#: With several clients, longer runs go to worker threads (the engine's interpreters, side by side).
ALONE_INLINE_NS = 20_000_000
#: Served alone: no run request from another connection for this long (ns).
ALONE_NS = 100_000_000
#: The media types of the three responses.
JSON, TEXT, TENSOR = "application/json", "text/plain", "application/vnd.deepview.tensor"
IMAGE_TYPES = ("image/*", "image/jpg", "image/jpeg", "image/png")


@dataclass(frozen=True)
class Limits:
    """What the runner accepts (reported in ``model_limits``).

    Attributes:
        block_size: bytes per upload block (``PUT /v1``).
        max_model_size: bytes a model upload may total.
        max_input_size: bytes a run request's body may hold (image or tensors).
        max_layers: layers ``GET /v1/model`` describes at most.
    """

    block_size: int = MIB
    max_model_size: int = 256 * MIB
    max_input_size: int = 64 * MIB
    max_layers: int = 100_000


class Problem(Exception):
    """A request the runner refuses: HTTP status and a message saying what to send instead."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass
class Slot:
    """The loaded engine and what belongs to it: its lock (layer descriptions), the gate that lets
    `engine.concurrency` runs in at once."""

    engine: Engine
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    gate: asyncio.Semaphore = field(init=False)
    fastest: int | None = None  # the fastest run on this host, ns (the vela engine's `timing` is the NPU's)
    ran: bool = False
    layers: list[dict[str, Any]] | None = None

    def __post_init__(self) -> None:
        self.gate = asyncio.Semaphore(self.engine.concurrency)


@dataclass(frozen=True)
class Worker:
    """Which worker process of how many serves this application (``eiq-runner --workers N``)."""

    index: int = 0
    count: int = 1


class Runner:
    """The server's state: the engine choice, the loaded model (a `Slot`), and what requests leave for later
    requests (the upload in progress, labels, the last inputs and timings: `state`, shared by the worker
    processes when there are several)."""

    def __init__(self, engine: str | None, compute: str | None, profile: bool, limits: Limits,
                 state: LocalState | SharedState, worker: Worker):  # fmt: skip
        self.engine_name, self.compute, self.profile, self.limits = engine, compute, profile, limits
        self.state, self.worker = state, worker
        self.slot: Slot | None = None
        self.generation = 0  # of the model installed: 0 the start-up model, else the publication's

    def load(self, model: Any, name: str | None = None) -> Engine:
        """Open a model (path or bytes) in the configured engine (blocking)."""
        engine = open_engine(model, self.engine_name, self.compute, name=name, workers=self.worker.count)
        engine.set_profiling(self.profile)
        return engine

    def install(self, engine: Engine) -> None:
        self.slot = Slot(engine)

    def adopt(self, engine: Engine) -> None:
        """Install a model a client uploaded, for every worker (call inside ``state.changing()``)."""
        self.install(engine)
        self.state.publish(engine.model_bytes, engine.model_name, list(engine.labels))

    async def sync(self) -> None:
        """Take what another worker published (a model, labels) since this one last looked; cheap when nothing."""
        published = self.state.changed()
        if published is not None:
            await self._take(published)

    async def _take(self, published: Published) -> None:
        if published.model_file is not None and published.model_generation != self.generation:
            path = published.model_file
            engine = await asyncio.get_running_loop().run_in_executor(None, self.load, path, published.model_name)
            self.install(engine)
            self.generation = published.model_generation
        if self.slot is not None:
            self.slot.engine.labels = list(published.labels)

    def loaded(self) -> Slot:
        if self.slot is None:
            raise Problem(400, "no model is loaded; upload one with PUT /v1 (block_count, then block_content parts)")
        return self.slot


#: The application's `Runner` (state), for the command that serves it.
RUNNER = web.AppKey("runner", Runner)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers)


def create_app(
    model: Any = None,
    *,
    engine: str | None = None,
    compute: str | None = None,
    profile: bool = False,
    token: str | None = None,
    limits: Limits = Limits(),
    state: SharedState | None = None,
    worker: Worker = Worker(),
) -> web.Application:
    """The runner as an aiohttp application.

    Args:
        model: a model file path or bytes to load now (None: wait for an upload).
        engine: ``tflite``, ``onnx`` or ``vela`` (None: by each model file).
        compute: the engine's compute options (``threads=2,xnnpack=off``, ``providers=...``, a Vela config).
        profile: fill per-layer timings (the guide's ``-d prof``).
        token: require ``Authorization: Bearer <token>`` on every request.
        limits: the size caps.
        state: the state the worker processes share (`eiq_lab.runner.workers`; None: one process).
        worker: which worker this application is.

    Raises:
        InputError: the start-up model cannot be loaded, or the engine/compute is not available here.
    """
    runner = Runner(engine, compute, profile, limits, state or LocalState(), worker)
    if model is not None:
        runner.install(runner.load(model))

    @web.middleware
    async def guard(request: web.Request, handler: Any) -> web.StreamResponse:
        if token is not None:
            sent = request.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
                return _error(401, "this runner needs a token: send Authorization: Bearer <token>",
                              {"WWW-Authenticate": "Bearer"})  # fmt: skip
        try:
            await runner.sync()
            return await handler(request)
        except Problem as exc:
            return _error(exc.status, str(exc))
        except InputError as exc:
            return _error(400, str(exc))
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"the request is larger than this runner accepts ({limits.max_input_size} bytes)")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return _error(exc.status, f"{exc.reason}: {request.method} {request.path} (the runner serves /v1)")
        except Exception as exc:  # an engine failure: the server keeps serving
            log.exception("request %s %s failed", request.method, request.path_qs)
            return _error(500, f"the engine failed: {type(exc).__name__}: {exc}")

    client_max = max(limits.max_input_size, limits.block_size + 64 * 1024)
    app = web.Application(middlewares=[guard], client_max_size=client_max)
    app[RUNNER] = runner
    handlers = Handlers(runner)
    for path in ("/", "/v1", "/v1/"):
        app.router.add_get(path, handlers.info)
        app.router.add_put(path, handlers.put)
        app.router.add_post(path, handlers.post)
    app.router.add_get("/v1/model", handlers.model)
    return app


class Handlers:
    """The protocol's requests."""

    def __init__(self, runner: Runner):
        self.runner = runner
        self.limits = runner.limits
        self._peer, self._switched = 0, 0  # the connection of the last run request, and since when (ns)

    async def info(self, request: web.Request) -> web.Response:
        """``GET /v1``: engine, version, limits, the model's labels."""
        slot = self.runner.slot
        engine = slot.engine if slot else None
        return web.json_response({
            "engine": engine.name if engine else (self.runner.engine_name or "tflite"),
            "version": engine.version if engine else "",
            "model_limits": asdict(self.limits),
            "model": {"labels": list(engine.labels) if engine else [], "name": engine.model_name if engine else None},
            "workers": {"count": self.runner.worker.count, "index": self.runner.worker.index},
        })  # fmt: skip

    async def model(self, request: web.Request) -> web.StreamResponse:
        """``GET /v1/model``: the model's description (JSON), or its bytes with ``Accept: application/octet-stream``."""
        slot = self.runner.slot
        if slot is None:
            raise Problem(404, "no model is loaded; upload one with PUT /v1")
        engine = slot.engine
        if "application/octet-stream" in request.headers.get("Accept", ""):
            return web.Response(body=engine.model_bytes, content_type="application/octet-stream")
        loop = asyncio.get_running_loop()
        async with slot.lock:
            if slot.layers is None:
                slot.layers = await loop.run_in_executor(None, engine.layers)
            timings = await loop.run_in_executor(None, engine.layer_timings) if slot.ran else {}
        timing, runner_timings = self.runner.state.timings()
        layers = []
        for layer in slot.layers[: self.limits.max_layers]:
            layer = {**layer, "tensor": dict(layer["tensor"])}
            ns = timings.get(layer["name"], timings.get(layer.get("output", ""))) if timings else None
            if ns is not None and layer["type"] not in ("input", "constant"):
                layer["tensor"]["timing"] = int(ns)
                layer["avg_timing"] = int(ns)
            layers.append(layer)
        return web.json_response({
            "model_name": engine.model_name, "engine": engine.name, "inputs": engine.inputs,
            "outputs": engine.outputs, "labels": engine.labels, "layer_count": len(slot.layers),
            "timing": timing, "layers": layers, "timings": runner_timings,
            "profiling": engine.profiling,
        })  # fmt: skip

    async def put(self, request: web.Request) -> web.Response:
        """``PUT /v1``: one part ``block_count`` (starts an upload) or ``block_content`` (one block)."""
        if not request.content_type.startswith("multipart/"):
            raise Problem(400, "PUT /v1 takes multipart/form-data: a block_count part, then one block_content "
                               f"part per request; received {request.content_type}")  # fmt: skip
        cap = self.limits.block_size + 64 * 1024
        if request.content_length is not None and request.content_length > cap:
            raise Problem(413, f"a block holds at most {self.limits.block_size} bytes (model_limits.block_size)")
        reply: dict[str, Any] = {}
        try:
            async for part in form_parts(request):
                if part.name == "block_count":
                    reply = self._start(bytes(await read_part(part, 64)).decode(errors="replace").strip())
                elif part.name == "block_content":
                    reply = await self._block(bytes(await read_part(part, self.limits.block_size)))
                else:
                    raise Problem(400, "PUT /v1 takes parts block_count and block_content; received part "
                                       f"{part.name!r}")  # fmt: skip
        except MalformedBody as exc:
            raise Problem(400, f"malformed multipart body: {exc}") from None
        except NestedBody as exc:
            raise Problem(400, str(exc)) from None
        except PartTooLarge as exc:
            raise Problem(413, str(exc)) from None
        if not reply:
            raise Problem(400, "PUT /v1 received no part; send block_count, then block_content")
        return web.json_response(reply)

    def _start(self, text: str) -> dict[str, Any]:
        if not text.isdigit() or int(text) < 1:
            raise Problem(400, f"block_count must be a whole number >= 1; received {text[:40]!r}")
        count = int(text)
        most = math.ceil(self.limits.max_model_size / self.limits.block_size)
        state = self.runner.state
        with state.changing():
            if count > most:
                state.end_upload()
                raise Problem(413, f"{count} blocks of {self.limits.block_size} bytes exceed model_limits.max_model_"
                                   f"size ({self.limits.max_model_size} bytes, at most {most} blocks)")  # fmt: skip
            state.begin_upload(count)
        return {"reply": "success"}

    async def _block(self, data: bytes) -> dict[str, Any]:
        state, block, most = self.runner.state, self.limits.block_size, self.limits.max_model_size
        with state.changing():  # never across an await: the other workers wait on it
            upload = state.current_upload()
            if upload is None:
                raise Problem(400, "no upload in progress: send a block_count part first")
            sizes = upload.sizes
            if sizes and sizes[-1] != block:
                state.end_upload()
                raise Problem(400, f"block {len(sizes)} held {sizes[-1]} bytes; every block but the last must hold "
                                   f"block_size ({block}) bytes; start again")  # fmt: skip
            if sum(sizes) + len(data) > most:
                state.end_upload()
                raise Problem(413, f"the model exceeds model_limits.max_model_size ({most} bytes)")
            upload.add(data)
            if len(sizes) + 1 < upload.count:
                return {"block": len(sizes) + 1}
            model = upload.content()
            state.end_upload()
        loop = asyncio.get_running_loop()
        try:
            engine = await loop.run_in_executor(None, self.runner.load, model)
        except InputError as exc:
            raise Problem(400, f"the uploaded model was not loaded ({exc}); the previous model stays loaded") from None
        with state.changing():
            self.runner.adopt(engine)
        return {"reply": "success"}

    async def post(self, request: web.Request) -> web.StreamResponse:
        """``POST /v1``: labels (``labels/txt``), or a run on an image, tensors or the last inputs."""
        if request.content_type == "labels/txt":
            slot = self.runner.loaded()
            text = (await request.read()).decode("utf-8", errors="replace")
            labels = [line.strip() for line in text.splitlines() if line.strip()]
            with self.runner.state.changing():
                slot.engine.labels = labels
                self.runner.state.publish_labels(labels)
            return web.Response(text="Success", content_type="text/plain")
        slot = self.runner.loaded()
        engine = slot.engine
        runs, outputs, imgproc, tag = self._query(request, engine)
        accept = _accept(request.headers.get("Accept", ""))
        if accept == TENSOR and len(outputs) != 1:
            names = ", ".join(o["name"] for o in engine.outputs)
            raise Problem(400, f"Accept: {TENSOR} returns one tensor: name exactly one output= ({names}); "
                               f"received {len(outputs)}")  # fmt: skip
        if request.content_length is not None and request.content_length > self.limits.max_input_size:
            raise Problem(413, f"the request body ({request.content_length} bytes) exceeds model_limits.max_input_size "
                               f"({self.limits.max_input_size} bytes)")  # fmt: skip
        loop = asyncio.get_running_loop()
        times = {"decode": 0, "input": 0}
        inputs = await self._inputs(request, engine, imgproc, loop, times)
        alone = self._alone(request)
        state = self.runner.state
        if inputs is None:
            inputs = state.last_inputs()
            if inputs is None:
                raise Problem(400, "a run without a body re-runs the last inputs, and none were sent yet: send "
                                   "an image or tensors")  # fmt: skip
        else:
            state.keep_inputs(inputs)
        async with slot.gate:
            expected = None if slot.fastest is None else slot.fastest * runs
            if (expected is not None and (expected < INLINE_NS or (alone and expected < ALONE_INLINE_NS))) or (
                self.runner.worker.count > 1 and engine.concurrency == 1  # the other workers keep serving
            ):
                results, timing, wall = _run(engine, inputs, runs)  # cheaper than the hop to a worker thread
            else:
                results, timing, wall = await loop.run_in_executor(None, _run, engine, inputs, runs)
            slot.fastest = wall if slot.fastest is None else min(slot.fastest, wall)
            slot.ran = True
        prepared = time.perf_counter_ns()
        response = self._respond(engine, results, outputs, accept, timing, tag, times)
        state.keep_timings(timing, {**times, "output": time.perf_counter_ns() - prepared})
        return response

    def _alone(self, request: web.Request) -> bool:
        """Whether this request's connection is the only one sending requests lately (then none can be waiting)."""
        now, peer = time.monotonic_ns(), id(request.transport)
        if peer != self._peer:
            self._peer, self._switched = peer, now
        return now - self._switched > ALONE_NS

    def _query(self, request: web.Request, engine: Engine) -> tuple[int, list[dict[str, Any]], str | None, str | None]:
        query = request.query
        text = query.get("run", "1")
        if not text.isdigit() or not 1 <= int(text) <= MAX_RUNS:
            raise Problem(400, f"run must be a whole number from 1 to {MAX_RUNS}; received {text!r}")
        names = [n for value in query.getall("output", []) for n in value.split(",") if n]
        if len(names) > MAX_OUTPUTS:
            raise Problem(400, f"at most {MAX_OUTPUTS} outputs per request; received {len(names)}")
        outputs = [_output(engine, name) for name in names]
        imgproc = query.get("imgproc")
        if imgproc is not None and imgproc not in IMGPROC:
            raise Problem(404, f"imgproc {imgproc!r} is not supported; use one of {', '.join(IMGPROC)}")
        return int(text), outputs, imgproc, query.get("id")

    async def _inputs(
        self,
        request: web.Request,
        engine: Engine,
        imgproc: str | None,
        loop: asyncio.AbstractEventLoop,
        times: dict[str, int],
    ) -> dict[str, np.ndarray] | None:
        """The run's inputs from the body (None: no body); `times` gets decode and input (preprocessing) ns."""
        kind = request.content_type
        start = time.perf_counter_ns()
        if kind.startswith("image/"):
            body = await request.read()
            try:
                image = await loop.run_in_executor(None, decode_image, body)
            except InputError as exc:
                raise Problem(415, str(exc)) from None
            decoded = time.perf_counter_ns()
            inputs = await loop.run_in_executor(None, image_input, engine, image, imgproc)
            times.update(decode=decoded - start, input=time.perf_counter_ns() - decoded)
            return inputs
        if kind.startswith("multipart/"):
            inputs = await self._tensors(request, engine)
            times["decode"] = time.perf_counter_ns() - start
            return inputs
        body = await request.read()
        if not body:
            return None
        raise Problem(415, f"a run takes an image ({', '.join(IMAGE_TYPES)}), multipart tensors, labels/txt or no "
                           f"body; received Content-Type {kind}")  # fmt: skip

    async def _tensors(self, request: web.Request, engine: Engine) -> dict[str, np.ndarray]:
        body = await request.read()
        if len(body) > self.limits.max_input_size:  # a chunked body: no Content-Length to check up front
            raise Problem(413, f"the request body ({len(body)} bytes) exceeds model_limits.max_input_size "
                               f"({self.limits.max_input_size} bytes)")  # fmt: skip
        try:
            parts = await body_parts(request.headers, body, self.limits.max_input_size)
        except MalformedBody as exc:
            raise Problem(400, f"malformed multipart body: {exc}") from None
        except NestedBody as exc:
            raise Problem(400, str(exc)) from None
        specs = {spec["name"]: spec for spec in engine.inputs}
        tensors: dict[str, np.ndarray] = {}
        for name, filename, data in parts:
            spec = specs.get(name or "")
            if spec is None:
                raise Problem(400, f"part {name!r} names no input of the model; its inputs are {', '.join(specs)}")
            tensors[spec["name"]] = _tensor(spec, filename, data)
        missing = [name for name in specs if name not in tensors]
        if missing:
            raise Problem(400, f"the request has no part for input(s) {', '.join(missing)}")
        return tensors

    def _respond(self, engine: Engine, results: dict[str, np.ndarray], outputs: list[dict[str, Any]], accept: str,
                 timing: int, tag: str | None, times: dict[str, int]) -> web.Response:  # fmt: skip
        headers = {"X-Model-Timing": str(timing)}
        if accept == TENSOR:
            spec = outputs[0]
            value = np.ascontiguousarray(results[spec["name"]])
            headers.update({"X-Tensor-Type": spec["datatype"], "X-Tensor-Shape": " ".join(map(str, value.shape))})
            return web.Response(body=value.tobytes(), content_type=TENSOR, headers=headers)
        if accept == TEXT:
            if not engine.is_classifier:
                raise Problem(400, f"Accept: {TEXT} answers a classifier's label; {engine.model_name} has "
                                   f"{len(engine.outputs)} output(s) that are not one [1, classes] tensor: ask for "
                                   f"{JSON}")  # fmt: skip
            label, score, _ = _top(engine, results)
            headers["X-Softmax"] = f"{score:.6f}"
            return web.Response(text=label, content_type="text/plain", headers=headers)
        # the JSON reply written directly (the same document json.dumps would make of the dict, without the dict)
        head = (f'{{"engine": {json.dumps(engine.name)}, "timing": {timing}, "decode": {times["decode"]}, '
                f'"input": {times["input"]}, "id": {json.dumps(tag)}, ')  # fmt: skip
        if not outputs and engine.is_classifier and engine.labels:
            label, score, index = _top(engine, results)
            text = f'{head}"label": {json.dumps(label)}, "softmax": {json.dumps(score)}, "index": {index}}}'
        else:
            items = ", ".join(_encoded(spec, results[spec["name"]]) for spec in (outputs or engine.outputs))
            text = f'{head}"outputs": [{items}]}}'
        return web.Response(body=text.encode(), content_type=JSON, headers=headers)


def _encoded(spec: dict[str, Any], value: np.ndarray) -> str:
    data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode()
    shape = ", ".join(map(str, value.shape))
    return (f'{{"name": {json.dumps(spec["name"])}, "type": "raw", "datatype": {json.dumps(spec["datatype"])}, '
            f'"shape": [{shape}], "data": "{data}"}}')  # fmt: skip


def _tensor(spec: dict[str, Any], filename: str | None, data: Any) -> np.ndarray:
    """A part's bytes as the input's array (no copy unless misaligned), after checking shape and byte count."""
    try:
        shape = [int(d) for d in (filename or "").split(",") if d.strip()] or list(spec["shape"])
    except ValueError:
        raise Problem(400, f"part {spec['name']}: the filename must be the shape, comma-separated (1,96,96,3); "
                           f"received {filename!r}") from None  # fmt: skip
    if len(shape) != len(spec["shape"]) or any(w > 0 and w != s for w, s in zip(spec["shape"], shape)):
        raise Problem(400, f"input {spec['name']} has shape {spec['shape']}; received {shape}")
    dtype = numpy_dtype(spec["datatype"])
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise Problem(400, f"input {spec['name']} takes {spec['datatype']} {shape}: {expected} bytes; received "
                           f"{len(data)} bytes (send the array in the input's dtype)")  # fmt: skip
    value = np.frombuffer(data, dtype).reshape(shape)
    return value if value.flags.aligned else value.copy()


def _output(engine: Engine, name: str) -> dict[str, Any]:
    for spec in engine.outputs:
        if spec["name"] == name:
            return spec
    if name == "output" and len(engine.outputs) == 1:  # the guide's curl line names a model's only output so
        return engine.outputs[0]
    raise Problem(404, f"output {name!r} not found; the model's outputs are "
                       f"{', '.join(o['name'] for o in engine.outputs)}")  # fmt: skip


def _accept(header: str) -> str:
    for item in header.split(","):
        kind = item.split(";")[0].strip().lower()
        if kind.startswith(TENSOR):
            return TENSOR
        if kind == TEXT:
            return TEXT
        if kind in (JSON, "*/*", "application/*"):
            return JSON
    return JSON


def _run(engine: Engine, inputs: dict[str, np.ndarray], runs: int) -> tuple[dict[str, np.ndarray], int, int]:
    """The outputs of `runs` runs, the mean run time on the engine's device and on this host (ns)."""
    total = 0
    results: dict[str, np.ndarray] = {}
    started = time.perf_counter_ns()
    for _ in range(runs):
        results, spent = engine.run_timed(inputs)
        total += spent
    return results, total // runs, (time.perf_counter_ns() - started) // runs


def _top(engine: Engine, results: dict[str, np.ndarray]) -> tuple[str, float, int]:
    spec = engine.outputs[0]
    value = results[spec["name"]].astype(np.float64).reshape(-1)
    if spec["scale"]:
        value = (value - spec["zero_point"]) * spec["scale"]
    if value.min() < -1e-6 or abs(value.sum() - 1.0) > 1e-2:  # logits: make them probabilities
        value = np.exp(value - value.max())
        value /= value.sum()
    index = int(np.argmax(value))
    label = engine.labels[index] if index < len(engine.labels) else str(index)
    return label, float(value[index]), index
