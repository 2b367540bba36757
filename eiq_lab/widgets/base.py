"""What every panel shares: a status line for messages and errors, a progress bar fed by engine events, and
`Job`, long engine work run on a background thread so the page never freezes.
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import ipywidgets as w

from ..errors import EiqError, Stopped
from ..events import Event, Progress

log = logging.getLogger("eiq_lab.widgets")

_COLORS = {"info": "#1f4e79", "ok": "#1b7f3b", "warning": "#9a6700", "error": "#b3261e"}


def describe_error(exc: BaseException) -> str:
    """The sentence a user sees for `exc`: an `EiqError`'s own message, else its type and text."""
    if isinstance(exc, EiqError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


class Job:
    """Long engine work on a background thread, with progress events, a stop request and its outcome.

    The work is a callable taking a `Progress`; it runs once, on its own thread. `on_done(result)` or
    `on_error(exc)` is called on that thread when it ends (widgets may be updated from it).

    Example:
        >>> job = Job(lambda progress: 6 * 7)
        >>> job.wait()
        42
    """

    def __init__(
        self,
        work: Callable[[Progress], Any],
        *,
        observers: list[Callable[[Event], None]] | None = None,
        on_done: Callable[[Any], None] | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        name: str = "eiq-job",
    ):
        self.progress = Progress(list(observers or []))
        self.result: Any = None
        self.error: BaseException | None = None
        self._work, self._on_done, self._on_error = work, on_done, on_error
        self._finished = threading.Event()
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.result = self._work(self.progress)
        except BaseException as exc:  # the thread must report every failure to the page, not die silently
            self.error = exc
            if not isinstance(exc, EiqError):
                log.exception("background work failed")
        finally:
            self._finished.set()
        try:
            if self.error is None:
                if self._on_done is not None:
                    self._on_done(self.result)
            elif self._on_error is not None:
                self._on_error(self.error)
        except Exception:
            log.exception("a panel failed to show the outcome of its background work")

    @property
    def running(self) -> bool:
        return not self._finished.is_set()

    def stop(self) -> None:
        """Ask the work to stop at its next progress check."""
        self.progress.stop()

    def wait(self, timeout: float | None = None) -> Any:
        """Block until the work ends; return its result or raise its error (`TimeoutError` if still running)."""
        if not self._finished.wait(timeout):
            raise TimeoutError(f"{self.thread.name} still running after {timeout} s")
        # the outcome callbacks run just after the finished flag: let them complete too
        self.thread.join(timeout)
        if self.error is not None:
            raise self.error
        return self.result


class ProgressView(w.HBox):
    """A progress bar and a line of text that follow a `Progress` (use the view itself as the observer).

    Updates are throttled (at most every `interval` seconds, plus every start and end) so a fast import does
    not flood the page with messages.
    """

    def __init__(self, interval: float = 0.1, **kwargs: Any):
        self.bar = w.IntProgress(value=0, min=0, max=1, layout=w.Layout(width="40%"))
        self.text = w.Label("")
        super().__init__([self.bar, self.text], **kwargs)
        self.layout.display = "none"
        self.interval = interval
        self._last = 0.0

    def __call__(self, event: Event) -> None:
        if event.kind in ("problem", "message"):
            return
        now = time.monotonic()
        if event.kind == "advance" and now - self._last < self.interval:
            return
        self._last = now
        self.layout.display = "flex"
        total = event.total or 0
        self.bar.max = max(total, 1)
        if total:
            self.bar.value = min(event.done, self.bar.max)
        else:  # unknown size: empty while working, full once it ends
            self.bar.value = 1 if event.kind == "end" else 0
        self.bar.bar_style = "success" if event.kind == "end" else ""
        count = f"{event.done}/{total}" if total else f"{event.done}"
        self.text.value = f"{event.stage}: {count}" + (f" - {event.message}" if event.message else "")


class Panel(w.VBox):
    """Base of every panel: a title, the panel's own widgets, a progress view and a status line.

    Subclasses build their widgets from engine objects and call `run` for long work. State lives in the
    engine; a panel only shows it and forwards the user's actions.
    """

    title: ClassVar[str] = ""

    def __init__(self, children: list[w.Widget] | tuple = (), **kwargs: Any):
        self.heading = w.HTML(f"<h3 style='margin:4px 0'>{html.escape(self.title)}</h3>" if self.title else "")
        self.status = w.HTML("")
        self.progress_view = ProgressView()
        self.job: Job | None = None
        super().__init__([self.heading, *children, self.progress_view, self.status], **kwargs)
        self.add_class("eiq-panel")

    def set_body(self, children: list[w.Widget] | tuple) -> None:
        """Replace the panel's own widgets (keeps the title, progress and status)."""
        self.children = [self.heading, *children, self.progress_view, self.status]

    def say(self, text: str, kind: str = "info") -> None:
        """Show a message in the status line (`kind`: info, ok, warning or error)."""
        color = _COLORS.get(kind, _COLORS["info"])
        self.status.value = f"<span class='eiq-status eiq-{kind}' style='color:{color}'>{html.escape(text)}</span>"

    def fail(self, exc: BaseException) -> None:
        """Show what went wrong; a stop the user asked for is a note, not an error."""
        if isinstance(exc, Stopped):
            self.say(str(exc), "warning")
        else:
            self.say(describe_error(exc), "error")

    def guarded(self, action: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a quick action (a button's handler): its `EiqError` shows in the status line instead of a trace."""

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return action(*args, **kwargs)
            except Exception as exc:
                if not isinstance(exc, EiqError):
                    log.exception("panel action failed")
                self.fail(exc)
                return None

        return call

    @property
    def busy(self) -> bool:
        return self.job is not None and self.job.running

    def run(
        self,
        work: Callable[[Progress], Any],
        *,
        on_done: Callable[[Any], None] | None = None,
        observers: list[Callable[[Event], None]] | None = None,
        busy: list[w.Widget] | tuple = (),
    ) -> Job:
        """Run long engine work on a background thread, its progress in this panel.

        Args:
            work: called with a `Progress`; its return value goes to `on_done`.
            on_done: called with the result when the work succeeds.
            observers: more event observers (live charts).
            busy: widgets disabled while the work runs.

        Raises:
            EiqError: this panel is already running work.
        """
        if self.busy:
            raise EiqError("this panel is still working; wait for it or stop it first")
        for widget in busy:
            widget.disabled = True
        self.say("working...")

        def release() -> None:
            for widget in busy:
                widget.disabled = False

        def done(result: Any) -> None:
            release()
            self.say("done", "ok")
            if on_done is not None:
                on_done(result)

        def failed(exc: BaseException) -> None:
            release()
            self.fail(exc)

        self.job = Job(work, observers=[self.progress_view, *(observers or [])], on_done=done, on_error=failed)
        return self.job
