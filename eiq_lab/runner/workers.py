"""``eiq-runner --workers N``: one runner served by N worker processes, each with its own Python interpreter and
its own model interpreter, so requests use every core (in one process the GIL lets one request's Python run at
a time).

The parent process owns the listening socket. It accepts each connection and hands it (its file descriptor,
over a Unix socket pair) to the worker with the fewest open connections; a connection stays with its worker
until it closes. What requests leave for later requests (an upload in progress, an uploaded model, labels, the
last inputs and timings) is a `SharedState`, so a client may use any number of connections. A worker that exits
is started again; SIGINT or SIGTERM stops the workers and removes the shared state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import selectors
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError
from .server import Limits, Worker, create_app
from .shared import SharedState

#: Messages from a worker to the parent: ready (with the model's description), a connection closed, failed.
READY, CLOSED, FAILED = b"r", b"c", b"e"
#: How long a stopping worker may take to finish the requests it has (s).
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Config:
    """What each worker serves (`create_app`'s arguments)."""

    model: str | None = None
    engine: str | None = None
    compute: str | None = None
    profile: bool = False
    token: str | None = None
    limits: Limits = field(default_factory=Limits)


@dataclass
class _Process:
    """One worker process as the parent sees it."""

    index: int
    process: Any
    channel: socket.socket
    connections: int = 0


def serve(config: Config, workers: int, host: str, port: int, started: Callable[[dict[str, Any]], None]) -> None:
    """Serve `config` on host:port with `workers` processes until SIGINT or SIGTERM.

    Args:
        started: called once every worker is ready, with worker 0's description of the model (``model``,
            ``engine``, ``version``; ``model`` None when none is loaded yet).

    Raises:
        InputError: a worker could not start (the model does not load, the compute is not available...).
        OSError: the address cannot be bound.
    """
    if workers > 1 and config.profile:
        raise InputError("per-layer profiling (-d prof) times one interpreter: run it with --workers 1")
    if not sys.platform.startswith("linux"):  # descriptor hand-over over SOCK_SEQPACKET pairs, /proc
        raise InputError(f"--workers above 1 runs on Linux; this is {sys.platform}: use --workers 1")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.create_server((host.strip("[]"), port), family=family, backlog=1024)
    listener.setblocking(False)
    state = SharedState.create(config.limits.max_input_size)
    pool: list[_Process] = []
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        pool = [_spawn(index, workers, config, state) for index in range(workers)]
        descriptions = [_wait_ready(worker) for worker in pool]
        started(descriptions[0])
        _dispatch(listener, pool, lambda index: _spawn(index, workers, config, state))
    except KeyboardInterrupt:
        return
    finally:
        signal.signal(signal.SIGTERM, previous)
        listener.close()
        _stop(pool)
        state.remove()


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _spawn(index: int, count: int, config: Config, state: SharedState) -> _Process:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    context = multiprocessing.get_context("spawn")  # a fresh interpreter: nothing of the parent's threads
    process = context.Process(target=_work, args=(index, count, theirs, config, state), daemon=True,
                              name=f"eiq-runner-worker-{index}")  # fmt: skip
    process.start()
    theirs.close()
    return _Process(index, process, ours)


def _wait_ready(worker: _Process) -> dict[str, Any]:
    """Block until the worker is ready; its description of the model. Raises InputError if it failed."""
    message = worker.channel.recv(1 << 16)
    if message[:1] == READY:
        worker.channel.setblocking(False)
        return json.loads(message[1:])
    worker.process.join(timeout=STOP_SECONDS)
    if message[:1] == FAILED:
        raise InputError(message[1:].decode(errors="replace"))
    raise InputError(f"runner worker {worker.index} exited while starting (exit code {worker.process.exitcode})")


def _dispatch(listener: socket.socket, pool: list[_Process], respawn: Callable[[int], _Process]) -> None:
    """Accept connections and hand each to the least busy worker; restart workers that exit. Runs until
    KeyboardInterrupt (SIGINT, or SIGTERM through `_interrupt`)."""
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ, "accept")
    for worker in pool:
        _watch(selector, worker)
    while True:
        for key, _ in selector.select():
            if key.data == "accept":
                _accept(listener, pool)
                continue
            kind, worker = key.data
            if worker.channel.fileno() < 0:  # an event of a worker already replaced in this batch
                continue
            if kind == "channel":
                if not _count_closed(worker):  # the worker's end closed: it is exiting (its sentinel follows)
                    selector.unregister(worker.channel)
                continue
            selector.unregister(worker.process.sentinel)
            with contextlib.suppress(KeyError):
                selector.unregister(worker.channel)
            worker.channel.close()
            print(f"eiq-runner: worker {worker.index} exited (exit code {worker.process.exitcode}); its connections "
                  "were closed; starting it again", file=sys.stderr, flush=True)  # fmt: skip
            fresh = respawn(worker.index)
            _wait_ready(fresh)
            pool[worker.index] = fresh
            _watch(selector, fresh)


def _watch(selector: selectors.BaseSelector, worker: _Process) -> None:
    selector.register(worker.channel, selectors.EVENT_READ, ("channel", worker))
    selector.register(worker.process.sentinel, selectors.EVENT_READ, ("exit", worker))


def _accept(listener: socket.socket, pool: list[_Process]) -> None:
    while True:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError:  # the client gave up between the readiness and the accept, or out of descriptors
            return
        with connection:
            for worker in sorted(pool, key=lambda w: w.connections):  # the least busy first
                try:
                    socket.send_fds(worker.channel, [b"s"], [connection.fileno()])
                except OSError:  # the worker just exited (its restart follows): try the next
                    continue
                worker.connections += 1
                break


def _count_closed(worker: _Process) -> bool:
    """Read the worker's messages (closed connections); False once its end of the channel is closed."""
    while True:
        try:
            message = worker.channel.recv(64)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        if not message:
            return False
        if message[:1] == CLOSED:
            worker.connections = max(0, worker.connections - 1)


def _stop(pool: list[_Process]) -> None:
    for worker in pool:
        worker.channel.close()  # the worker sees the end of its channel and stops serving
    for worker in pool:
        worker.process.join(timeout=STOP_SECONDS)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()


def _work(index: int, count: int, channel: socket.socket, config: Config, state: SharedState) -> None:
    """A worker process: serve the connections the parent hands over until the channel closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        asyncio.run(_serve_worker(index, count, channel, config, state))
    except InputError as exc:
        with contextlib.suppress(OSError):
            channel.send(FAILED + str(exc).encode()[:60_000])
        raise SystemExit(2) from None


async def _serve_worker(index: int, count: int, channel: socket.socket, config: Config, state: SharedState) -> None:
    from aiohttp import web

    from .server import RUNNER

    app = create_app(config.model, engine=config.engine, compute=config.compute, profile=config.profile,
                     token=config.token, limits=config.limits, state=state, worker=Worker(index, count))  # fmt: skip
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    server = runner.server
    assert server is not None
    loop = asyncio.get_running_loop()
    channel.setblocking(False)
    finished = loop.create_future()
    tasks: set[asyncio.Task[Any]] = set()
    lost = server.connection_lost

    def connection_lost(handler: Any, exc: BaseException | None = None) -> None:
        lost(handler, exc)
        with contextlib.suppress(OSError):  # the parent's count drifts by one at worst
            channel.send(CLOSED)

    server.connection_lost = connection_lost  # type: ignore[method-assign]  # the parent counts connections

    async def take(connection: socket.socket) -> None:
        try:
            await loop.connect_accepted_socket(server, connection)
        except OSError:
            connection.close()

    def receive() -> None:
        try:
            message, fds, _, _ = socket.recv_fds(channel, 16, 16)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            message, fds = b"", []
        for fd in fds:
            task = loop.create_task(take(socket.socket(fileno=fd)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if not message and not finished.done():
            loop.remove_reader(channel.fileno())
            finished.set_result(None)

    loop.add_reader(channel.fileno(), receive)
    slot = app[RUNNER].slot
    engine = slot.engine if slot else None
    channel.send(READY + json.dumps({
        "model": engine.model_name if engine else None, "engine": engine.name if engine else None,
        "version": engine.version if engine else None,
    }).encode())  # fmt: skip
    await finished
    await runner.shutdown()
    await runner.cleanup()


def worker_count(text: str) -> int:
    """``--workers``: a whole number >= 1 or ``auto`` (one per core)."""
    if text == "auto":
        return max(1, os.cpu_count() or 1)
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"--workers must be a whole number >= 1 or auto; received {text!r}")
    return int(text)
