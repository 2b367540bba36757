"""How commands talk back: a progress bar on a terminal, plain lines otherwise, JSON for scripts,
and one clear error line (no traceback) with a non-zero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ..errors import EiqError, Stopped
from ..events import Event

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
#: An import that kept what it could but skipped files with problems.
EXIT_PROBLEMS = 3


class ProgressPrinter:
    """An observer that renders progress events.

    On a terminal it redraws one bar line at most ten times a second; elsewhere (logs, CI) it prints
    a plain line every 10 % or every 5 seconds, whichever comes first.
    """

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None, noun: str = "images"):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.noun = noun
        self._started = 0.0
        self._last_draw = 0.0
        self._last_percent = -1
        self._drawn = False

    def __call__(self, event: Event) -> None:
        if event.kind == "start":
            self._started = event.time
            self._last_draw, self._last_percent, self._drawn = event.time, 0, False
        elif event.kind == "advance":
            self._advance(event)
        elif event.kind == "end" and self.tty and self._drawn:
            self._draw(event, final=True)
            self.stream.write("\n")
            self.stream.flush()

    def _rate(self, event: Event) -> float:
        elapsed = max(event.time - self._started, 1e-9)
        return event.done / elapsed

    def _advance(self, event: Event) -> None:
        if self.tty:
            if event.time - self._last_draw >= 0.1 or event.done == event.total:
                self._draw(event)
            return
        percent = int(100 * event.done / event.total) // 10 * 10 if event.total else -1
        due = event.time - self._last_draw >= 5.0
        if (event.total and percent > self._last_percent) or due:
            self._last_percent = max(self._last_percent, percent)
            self._last_draw = event.time
            total = f"/{event.total}" if event.total else ""
            share = f" ({percent}%)" if event.total else ""
            self.stream.write(f"{event.stage}: {event.done}{total} {self.noun}{share}, {self._rate(event):.0f}/s\n")
            self.stream.flush()

    def _draw(self, event: Event, final: bool = False) -> None:
        self._last_draw = event.time if not final else time.monotonic()
        rate = f"{self._rate(event):.0f}/s"
        if event.total:
            width = 30
            filled = min(width, int(width * event.done / event.total))
            bar = "#" * filled + "." * (width - filled)
            text = f"\r{event.stage} [{bar}] {event.done}/{event.total} {self.noun} {rate}"
        else:
            text = f"\r{event.stage}: {event.done} {self.noun} {rate}"
        self.stream.write(text)
        self.stream.flush()
        self._drawn = True


def print_json(value: Any, stream: TextIO | None = None) -> None:
    """Print a value as indented JSON on stdout."""
    json.dump(value, stream or sys.stdout, indent=2, default=str)
    (stream or sys.stdout).write("\n")


def progress_for(args: argparse.Namespace, noun: str = "images") -> ProgressPrinter | None:
    """The progress observer a command should use (none with --json or --quiet)."""
    if getattr(args, "json", False) or getattr(args, "quiet", False):
        return None
    return ProgressPrinter(noun=noun)


def run_command(prog: str, handler: Callable[[argparse.Namespace], int | None], args: argparse.Namespace) -> int:
    """Run a command's handler; turn our errors into one line on stderr and an exit code."""
    try:
        return handler(args) or EXIT_OK
    except Stopped as exc:
        print(f"{prog}: stopped: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EiqError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except BrokenPipeError:  # the reader of our output went away (`eiq ... | head`): stop quietly
        with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout may be no real file
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted; nothing of the unfinished work was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        name = f" {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"{prog}: error:{name} {exc.strerror or exc}", file=sys.stderr)
        return EXIT_ERROR


def add_flag(parser: argparse.ArgumentParser, name: str, *extra: str, **kwargs: Any) -> argparse.Action:
    """Add ``--name`` with its underscore spelling too (``--train-split`` and ``--train_split``)."""
    spellings = [f"--{name}"]
    if "-" in name:
        spellings.append(f"--{name.replace('-', '_')}")
    kwargs.setdefault("dest", name.replace("-", "_"))
    return parser.add_argument(*extra, *spellings, **kwargs)
