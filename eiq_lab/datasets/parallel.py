"""Reading a dataset in a second process while this one writes the project.

A format's reader feeds a sink (`ImportSession`'s reader-facing calls); for a large dataset it runs in
a child process against a `RecordingSink`, which checks and hashes images there and streams the calls
back to be replayed, in order, into the real session. Reading, XML parsing, checks and hashing then
overlap the SQLite writes on a second core.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from ..errors import EiqError, InputError
from ..project.imagefile import CheckedImage, check_image
from .session import LabelledObject

#: Datasets at least this large (bytes) are read in a second process; smaller ones are not worth
#: the child's start-up (about a quarter of a second).
PARALLEL_MIN_BYTES = 32 << 20

_BATCH_CALLS = 256
_BATCH_BYTES = 512 << 10  # a message fits the widened pipe, so it moves in one read

Reader = Callable[..., None]


def worth_parallel(source: str | os.PathLike, parallel: bool | None) -> bool:
    """Whether to read `source` in a second process (``parallel=None`` decides by its size)."""
    if parallel is not None:
        return parallel
    path = Path(source)
    if path.is_file():
        return path.stat().st_size >= PARALLEL_MIN_BYTES
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(dirpath, name)).st_size
            except OSError:
                continue
            if total >= PARALLEL_MIN_BYTES:
                return True
    return False


def feed(session: Any, reader: Reader, *args: Any, parallel: bool = False) -> None:
    """Run ``reader(sink, *args)`` into `session`, in a second process when `parallel`.

    Raises:
        Whatever the reader raises (forwarded from the child), or `InputError` if the child dies.
    """
    if not parallel or session.listing:
        reader(session, *args)
        return
    # A fresh interpreter (not multiprocessing's spawn, which re-runs the user's __main__ script, nor
    # fork, which is unsafe once TensorFlow's threads exist) reads the job from stdin and sends calls
    # back over its own pipe.
    read_end, write_end = os.pipe()
    # the child imports what this process imports, wherever this process found it
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    child = subprocess.Popen(
        [sys.executable, "-m", __name__, str(write_end)], stdin=subprocess.PIPE, pass_fds=(write_end,), env=env
    )
    os.close(write_end)
    _widen(read_end)
    receiver = Connection(read_end)
    try:
        try:
            child.stdin.write(pickle.dumps((reader, args, session.decode)))
            child.stdin.close()
        except BrokenPipeError:
            pass  # the child died at start; reported below
        while True:
            try:
                batch = receiver.recv()
            except EOFError:
                code = child.wait(30)
                raise InputError(
                    f"the dataset reader process stopped unexpectedly (exit code {code}); "
                    "retry with parallel reading off (parallel=False, CLI --no-parallel)"
                ) from None
            for call in batch:
                if call[0] == "end":
                    return
                if call[0] == "error":
                    raise call[1]
                _replay(session, call)
    finally:
        receiver.close()
        if child.poll() is None:
            child.terminate()
        child.wait()


def _widen(pipe: int) -> None:
    """Grow the pipe to 1 MiB (Linux; default 64 KiB) so large messages cross in few system calls."""
    try:
        import fcntl

        fcntl.fcntl(pipe, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        return  # not Linux, or not allowed: the default pipe works, only slower


def _replay(session: Any, call: tuple) -> None:
    kind = call[0]
    if kind == "image":
        _, key, fields, sha, name, group = call
        session.checked_image(key, CheckedImage(*fields), sha, name=name, group=group)
    elif kind == "bad_image":
        _, key, name, reason = call
        session.bad_image(key, name, reason)
    elif kind == "objects":
        _, key, objects, name = call
        session.objects(key, [LabelledObject(*fields) for fields in objects], name=name)
    elif kind == "group":
        session.group(call[1], call[2])
    elif kind == "problem":
        _, file, reason, severity, skipped_file = call
        session.problem(file, reason, severity, skipped_file=skipped_file)
    elif kind == "expect":
        session.expect(call[1])


class RecordingSink:
    """The session a reader sees in the child process: it checks and hashes images, and sends
    every call to the parent in batches (the pipe's capacity keeps memory bounded)."""

    listing = False

    def __init__(self, connection: Any, decode: bool):
        self.connection = connection
        self.decode = decode
        self._calls: list[tuple] = []
        self._bytes = 0

    def image(self, key: Any, data: bytes | None, *, name: str, group: str | None = None) -> None:
        try:
            checked = check_image(data, decode=self.decode)
        except EiqError as exc:
            self._add(("bad_image", key, name, str(exc)))
            return
        sha = hashlib.sha256(checked.data).hexdigest()
        # plain tuples: pickling dataclasses costs more than reading the image did
        fields = (checked.data, checked.format, checked.width, checked.height, checked.transcoded_from)
        self._add(("image", key, fields, sha, name, group), len(checked.data))

    def objects(self, key: Any, objects: list, *, name: str) -> None:
        rows = [(obj.label, obj.box, obj.difficult, obj.truncated, obj.normalized) for obj in objects]
        self._add(("objects", key, rows, name))

    def group(self, key: Any, group: str | None) -> None:
        self._add(("group", key, group))

    def problem(self, file: str, reason: str, severity: str = "error", *, skipped_file: bool = False) -> None:
        self._add(("problem", file, reason, severity, skipped_file))

    def expect(self, total: int | None) -> None:
        self._add(("expect", total))

    def _add(self, call: tuple, size: int = 0) -> None:
        self._calls.append(call)
        self._bytes += size
        if len(self._calls) >= _BATCH_CALLS or self._bytes >= _BATCH_BYTES:
            self.flush()

    def flush(self) -> None:
        if self._calls:
            self.connection.send(self._calls)
            self._calls, self._bytes = [], 0


def _child_main(connection: Any, reader: Reader, args: tuple, decode: bool) -> None:
    sink = RecordingSink(connection, decode)
    try:
        reader(sink, *args)
        sink._calls.append(("end",))
    except BaseException as exc:  # handed to the parent, which raises it
        try:
            pickle.dumps(exc)
        except Exception:
            exc = InputError(f"reading the dataset failed: {exc}")
        sink._calls.append(("error", exc))
    try:
        sink.flush()
    except (BrokenPipeError, OSError):
        sink._calls = []  # the parent stopped listening (it aborted); nothing to report
    finally:
        connection.close()


if __name__ == "__main__":
    _child_main(Connection(int(sys.argv[1])), *pickle.load(sys.stdin.buffer))
