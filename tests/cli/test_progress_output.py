"""How progress looks: a redrawn bar on a terminal, sparse plain lines in a log."""

from __future__ import annotations

import io

from eiq_lab.cli.output import ProgressPrinter
from eiq_lab.events import Event


def feed(printer: ProgressPrinter, total: int | None, step_seconds: float) -> None:
    printer(Event("start", "import", 0, total, time=0.0))
    for done in range(1, 101):
        printer(Event("advance", "import", done, total, time=done * step_seconds))
    printer(Event("end", "import", 100, total, time=100 * step_seconds))


def test_terminal_gets_one_redrawn_bar():
    stream = io.StringIO()
    feed(ProgressPrinter(stream, tty=True), total=100, step_seconds=0.05)
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, finished once
    assert "\rimport [" in text
    assert text.rstrip().endswith("100/100 images 20/s")
    assert "#" * 30 in text


def test_log_gets_a_line_per_ten_percent():
    stream = io.StringIO()
    feed(ProgressPrinter(stream, tty=False), total=100, step_seconds=0.01)
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert [line.split(" (")[1].split(")")[0] for line in lines] == [f"{p}%" for p in range(10, 101, 10)]


def test_log_without_a_total_prints_every_five_seconds():
    stream = io.StringIO()
    feed(ProgressPrinter(stream, tty=False), total=None, step_seconds=0.2)  # 20 s in all
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    assert lines[0].startswith("import: 25 images")
