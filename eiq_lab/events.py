"""Progress events for long work: one small observer mechanism for the CLI, widgets and tests.

Long work takes a `Progress`, reports through it, and checks it for a stop request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import Stopped


@dataclass(frozen=True)
class Event:
    """One thing that happened during long work.

    Attributes:
        kind: ``"start"``, ``"advance"``, ``"problem"``, ``"message"``, ``"epoch"`` (training: one
            finished epoch's metrics in `data`) or ``"end"``.
        stage: what is being done (``"import"``, ``"health"``, ...).
        done: units finished so far in this stage.
        total: units expected, or ``None`` when unknown.
        message: a human sentence (the problem's reason, a note).
        data: extra values for programs (file name, severity, ...).
        time: ``time.monotonic()`` when it happened.
    """

    kind: str
    stage: str
    done: int = 0
    total: int | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.monotonic)


Observer = Callable[[Event], None]


class Progress:
    """Reports progress to observers and carries a stop request.

    Example:
        >>> events = []
        >>> p = Progress([events.append])
        >>> p.start("import", total=2); p.advance(); p.advance(); p.end()
        >>> [e.kind for e in events]
        ['start', 'advance', 'advance', 'end']
    """

    def __init__(self, observers: Iterable[Observer] | Observer | None = None):
        if observers is None:
            observers = []
        elif callable(observers):
            observers = [observers]
        self.observers: list[Observer] = list(observers)
        self._stop = threading.Event()
        self.stage = ""
        self.done = 0
        self.total: int | None = None

    def _emit(self, kind: str, message: str = "", **data: Any) -> None:
        if not self.observers:
            return
        event = Event(kind, self.stage, self.done, self.total, message, data)
        for observer in self.observers:
            observer(event)

    def start(self, stage: str, total: int | None = None, message: str = "") -> None:
        """Begin a stage of `total` units (``None`` if unknown)."""
        self.stage, self.done, self.total = stage, 0, total
        self._emit("start", message)

    def set_total(self, total: int | None) -> None:
        """Update the expected number of units once it becomes known."""
        self.total = total

    def advance(self, n: int = 1, **data: Any) -> None:
        """Mark `n` more units done; raises `Stopped` if a stop was requested."""
        self.done += n
        self.check()
        self._emit("advance", **data)

    def problem(self, file: str, reason: str, severity: str = "error") -> None:
        """Report a per-file problem (the work goes on unless the caller decides otherwise)."""
        self._emit("problem", reason, file=file, severity=severity)

    def message(self, text: str, **data: Any) -> None:
        """Report a note for the user."""
        self._emit("message", text, **data)

    def epoch(self, message: str = "", **data: Any) -> None:
        """Report a finished training epoch (its number and metrics in `data`)."""
        self._emit("epoch", message, **data)

    def end(self, message: str = "") -> None:
        """Finish the current stage."""
        self._emit("end", message)

    def stop(self) -> None:
        """Ask the work to stop at its next check (safe from another thread)."""
        self._stop.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def check(self) -> None:
        """Raise `Stopped` if a stop was requested."""
        if self._stop.is_set():
            raise Stopped(f"{self.stage or 'work'} stopped by request")


def as_progress(progress: Progress | Observer | None) -> Progress:
    """Accept a `Progress`, a bare observer callable or ``None``."""
    if isinstance(progress, Progress):
        return progress
    return Progress(progress)
