"""What a runner keeps between requests, in one process (`LocalState`) or shared by the worker processes of
``eiq-runner --workers N`` (`SharedState`): the block upload in progress, the published model and labels, the
last run's inputs (a run without a body re-runs them, whichever worker served the run before) and timings.

A `SharedState` lives in a private temporary folder: the upload's blocks and the published model as files, the
last inputs in a memory-mapped file, a generation counter and the last timings in shared memory, and one
cross-process lock around changes (a file lock: the system releases it if its holder is killed). A worker
compares the generation with the one it last saw at the start of every request (one shared-memory read) and
loads what another worker published.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import mmap
import multiprocessing
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..files import write_atomic

#: The last inputs' file: an 8-byte header length, the JSON header, then the arrays' bytes.
_HEADER = struct.Struct("<Q")
_HEADER_MAX = 1 << 16


@dataclass(frozen=True)
class Published:
    """The model and labels a worker published: the model file (None: no model), its name, its generation
    (a new model, not just new labels, when it differs from the one a worker has), the labels."""

    model_file: str | None
    model_name: str | None
    model_generation: int
    labels: list[str]


class Upload:
    """A block upload in progress, held in memory: the block count announced and the blocks received."""

    def __init__(self, count: int):
        self.count = count
        self._blocks: list[bytes] = []

    @property
    def sizes(self) -> list[int]:
        return [len(b) for b in self._blocks]

    def add(self, data: bytes) -> None:
        self._blocks.append(data)

    def content(self) -> bytes:
        return b"".join(self._blocks)


class LocalState:
    """A one-process runner's state: in memory."""

    def __init__(self) -> None:
        self.upload: Upload | None = None
        self._inputs: dict[str, np.ndarray] | None = None
        self._timings: tuple[int, dict[str, int]] = (0, {"decode": 0, "input": 0, "output": 0})

    def changing(self) -> contextlib.AbstractContextManager[None]:
        """Hold while changing the upload or publishing, never across an await (one event loop: nothing to lock)."""
        return contextlib.nullcontext()

    def begin_upload(self, count: int) -> Upload:
        self.upload = Upload(count)
        return self.upload

    def current_upload(self) -> Upload | None:
        return self.upload

    def end_upload(self) -> None:
        self.upload = None

    def publish(self, model: bytes, name: str, labels: list[str]) -> None:
        """A new model was installed: its last inputs and timings no longer apply."""
        self._inputs = None
        self._timings = (0, {"decode": 0, "input": 0, "output": 0})

    def publish_labels(self, labels: list[str]) -> None:
        """New labels were set (this process's engine has them already)."""

    def changed(self) -> Published | None:
        """What another worker published since this one last looked (never, in one process)."""
        return None

    def keep_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        self._inputs = inputs

    def last_inputs(self) -> dict[str, np.ndarray] | None:
        return self._inputs

    def keep_timings(self, timing: int, timings: dict[str, int]) -> None:
        self._timings = (timing, timings)

    def timings(self) -> tuple[int, dict[str, int]]:
        """The last run's time on the engine's device and the runner's decode/input/output times (ns)."""
        return self._timings


class FolderUpload(Upload):
    """A block upload in progress, held as files (one per block) where every worker sees it."""

    def __init__(self, folder: Path, count: int | None = None):
        self.folder = folder
        if count is not None:
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            (folder / "count").write_text(str(count))
        self.count = int((folder / "count").read_text())

    def _files(self) -> list[Path]:
        return sorted(self.folder.glob("block-*"))

    @property
    def sizes(self) -> list[int]:
        return [path.stat().st_size for path in self._files()]

    def add(self, data: bytes) -> None:
        write_atomic(self.folder / f"block-{len(self._files()):06d}", data)

    def content(self) -> bytes:
        return b"".join(path.read_bytes() for path in self._files())


class SharedState:
    """The state the worker processes of one runner share (made by the parent with `create`, handed to each
    worker at its start; picklable for that)."""

    #: The shared integers: the last run's timing, decode, input and output ns, and the model generation its
    #: inputs belong to.
    TIMING, DECODE, INPUT, OUTPUT, INPUTS_MODEL = range(5)

    def __init__(self, folder: str, capacity: int, generation: Any, numbers: Any):
        self.folder, self.capacity = Path(folder), capacity
        self._generation, self._numbers = generation, numbers
        self._lock_fd: int | None = None
        self._seen = self._model = 0  # the generation this worker last looked at; its model's generation
        self._map: mmap.mmap | None = None
        self._header: tuple[Any, bytes] | None = None

    @classmethod
    def create(cls, max_input_size: int) -> SharedState:
        """A new shared state in a private temporary folder (remove it with `remove`)."""
        folder = tempfile.mkdtemp(prefix="eiq-runner-")  # mode 0700: this user only
        capacity = max_input_size + _HEADER_MAX
        with open(Path(folder) / "inputs", "wb") as out:
            out.truncate(capacity)  # sparse: only the pages written take memory or disk
        context = multiprocessing.get_context("spawn")
        return cls(folder, capacity, context.RawValue("Q", 0), context.RawArray("q", 5))

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_map": None, "_header": None, "_seen": 0, "_model": 0, "_lock_fd": None}

    def remove(self) -> None:
        if self._map is not None:
            self._map.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
        shutil.rmtree(self.folder, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self._lock_fd is None:
            self._lock_fd = os.open(self.folder / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def changing(self) -> contextlib.AbstractContextManager[None]:
        return self._locked()

    def begin_upload(self, count: int) -> Upload:
        return FolderUpload(self.folder / "upload", count)

    def current_upload(self) -> Upload | None:
        return FolderUpload(self.folder / "upload") if (self.folder / "upload" / "count").is_file() else None

    def end_upload(self) -> None:
        shutil.rmtree(self.folder / "upload", ignore_errors=True)

    def publish(self, model: bytes, name: str, labels: list[str]) -> None:
        """Publish a model this worker installed (inside `changing`); the others load it on their next request."""
        generation = self._generation.value + 1
        model_file = write_atomic(self.folder / f"model-{generation}", model)
        for old in self.folder.glob("model-*"):
            if old != model_file:
                old.unlink(missing_ok=True)
        self._write({"model_file": str(model_file), "model_name": name, "model_generation": generation,
                     "labels": labels}, generation)  # fmt: skip
        self._model = generation
        self._numbers[: self.INPUTS_MODEL] = [0, 0, 0, 0]

    def publish_labels(self, labels: list[str]) -> None:
        """Publish new labels for the current model (inside `changing`)."""
        record = self._read() or {"model_file": None, "model_name": None, "model_generation": 0}
        self._write({**record, "labels": labels}, self._generation.value + 1)

    def _write(self, record: dict[str, Any], generation: int) -> None:
        write_atomic(self.folder / "state.json", json.dumps(record).encode())
        self._generation.value = self._seen = generation

    def _read(self) -> dict[str, Any] | None:
        path = self.folder / "state.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def changed(self) -> Published | None:
        """What another worker published since this one last looked (None: nothing)."""
        if self._generation.value == self._seen:
            return None
        with self._locked():
            self._seen = self._generation.value
            record = self._read()
        if record is None:
            return None
        self._model = record["model_generation"]
        return Published(record["model_file"], record["model_name"], record["model_generation"], record["labels"])

    def _mapped(self) -> mmap.mmap:
        if self._map is None:
            with open(self.folder / "inputs", "r+b") as file:
                self._map = mmap.mmap(file.fileno(), self.capacity)
        return self._map

    def keep_inputs(self, inputs: dict[str, np.ndarray]) -> None:
        """Keep a run's inputs where every worker reads them (one copy into shared memory)."""
        key = tuple((name, value.dtype.str, value.shape) for name, value in inputs.items())
        if self._header is None or self._header[0] != key:
            text = json.dumps([[name, dtype, list(shape)] for name, dtype, shape in key]).encode()
            self._header = (key, _HEADER.pack(len(text)) + text)
        header = self._header[1]
        size = len(header) + sum(value.nbytes for value in inputs.values())
        memory = self._mapped()
        with self._locked():
            if len(header) > _HEADER_MAX or size > self.capacity:  # larger than any request: not kept
                self._numbers[self.INPUTS_MODEL] = -1
                return
            memory[: len(header)] = header
            offset = len(header)
            for value in inputs.values():
                data = memoryview(np.ascontiguousarray(value)).cast("B")
                memory[offset : offset + len(data)] = data
                offset += len(data)
            self._numbers[self.INPUTS_MODEL] = self._model

    def last_inputs(self) -> dict[str, np.ndarray] | None:
        memory = self._mapped()
        with self._locked():
            (size,) = _HEADER.unpack_from(memory)
            if size == 0 or self._numbers[self.INPUTS_MODEL] != self._model:
                return None
            offset = _HEADER.size + size
            inputs = {}
            for name, dtype, shape in json.loads(bytes(memory[_HEADER.size : offset])):
                count = int(np.prod(shape)) * np.dtype(dtype).itemsize
                inputs[name] = np.frombuffer(memory[offset : offset + count], dtype).reshape(shape).copy()
                offset += count
        return inputs

    def keep_timings(self, timing: int, timings: dict[str, int]) -> None:
        self._numbers[: self.INPUTS_MODEL] = [timing, timings["decode"], timings["input"], timings["output"]]

    def timings(self) -> tuple[int, dict[str, int]]:
        timing, decode, given, output = self._numbers[: self.INPUTS_MODEL]
        return timing, {"decode": decode, "input": given, "output": output}
