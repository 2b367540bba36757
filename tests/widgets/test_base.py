"""The panel base: background jobs report their outcome, progress reaches the bar, errors reach the status line."""

import threading

import ipywidgets as w
import pytest

from eiq_lab.errors import EiqError, InputError, Stopped
from eiq_lab.widgets import PANELS, panel_class
from eiq_lab.widgets.base import Job, Panel


def test_job_returns_result_and_reraises_error():
    assert Job(lambda progress: 6 * 7).wait(10) == 42
    with pytest.raises(InputError, match="bad size"):
        Job(lambda progress: (_ for _ in ()).throw(InputError("bad size"))).wait(10)


def test_job_stop_reaches_the_work():
    started = threading.Event()

    def work(progress):
        progress.start("loop", total=None)
        started.set()
        while True:
            progress.advance()

    job = Job(work)
    assert started.wait(10)
    job.stop()
    with pytest.raises(Stopped):
        job.wait(10)


def test_panel_run_shows_progress_and_releases_buttons():
    button = w.Button(description="Go")
    panel = Panel([button])
    seen = []

    def work(progress):
        progress.start("count", total=3)
        for _ in range(3):
            progress.advance()
        progress.end()
        return "ok"

    job = panel.run(work, on_done=seen.append, busy=[button])
    assert job.wait(10) == "ok"
    assert seen == ["ok"]
    assert button.disabled is False
    assert panel.progress_view.bar.value == 3 and panel.progress_view.bar.max == 3
    assert "count: 3/3" in panel.progress_view.text.value
    assert "done" in panel.status.value


def test_panel_shows_errors_and_refuses_a_second_job():
    panel = Panel()
    release = threading.Event()
    job = panel.run(lambda progress: release.wait(10))
    with pytest.raises(EiqError, match="still working"):
        panel.run(lambda progress: None)
    release.set()
    job.wait(10)
    failing = panel.run(lambda progress: (_ for _ in ()).throw(InputError("image 7 is corrupt; re-import it")))
    with pytest.raises(InputError):
        failing.wait(10)
    assert "image 7 is corrupt; re-import it" in panel.status.value
    assert "eiq-error" in panel.status.value


def test_guarded_action_shows_message_instead_of_raising():
    panel = Panel()

    def action(_):
        raise InputError("label 'cat' already exists")

    assert panel.guarded(action)(None) is None
    assert "label &#x27;cat&#x27; already exists" in panel.status.value


def test_panel_registry_names_the_valid_panels():
    with pytest.raises(EiqError, match=r"no panel named .nope.; panels: .*curator"):
        panel_class("nope")
    assert "training" in PANELS


def test_progress_of_unknown_size_fills_the_bar_when_it_ends():
    panel = Panel()

    def work(progress):
        progress.start("convert", total=None)
        progress.advance()
        progress.end()

    panel.run(work).wait(10)
    assert panel.progress_view.bar.value == panel.progress_view.bar.max == 1
    assert panel.progress_view.bar.bar_style == "success"
