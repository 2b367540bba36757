"""The Export panel on a real trained run: the summary of run and project, the written file with its size,
SHA-256 and parity check, the export list, the Model Tool hand-off, and clear messages for bad destinations."""

from __future__ import annotations

import hashlib
import html

import numpy as np
import pytest

from eiq_lab.project import open_project
from widgets.test_validation import trained_digits  # noqa: F401  (the module-scoped trained project)

WAIT = 300


@pytest.fixture
def project(trained_digits):  # noqa: F811
    path, _ = trained_digits
    with open_project(path) as opened:
        yield opened


def test_the_summary_shows_training_validation_and_project(project, trained_digits):  # noqa: F811
    from eiq_lab.evaluate import ClassificationResults
    from eiq_lab.widgets import Export

    _, run = trained_digits
    panel = Export(project)
    assert panel.run_choice.value == run
    summary = html.unescape(panel.summary.value)
    assert f"Training (run {run})" in summary
    assert "tiny_cnn (classification)" in summary and "(32, 32, 3)" in summary
    assert "1 of 1" in summary  # epochs trained of epochs asked
    [(_, _, final)] = project.run_metrics(run)  # the last (only) epoch's metrics
    assert f"test_accuracy {final['test_accuracy']:.4g}" in summary
    assert "0, 1, 7" in summary
    assert "480 (train 450, test 30, none 0)" in summary and "6 %" in summary  # the holdout
    assert "not validated here yet" in summary
    report = ClassificationResults(["0", "1", "7"], [0, 1, 2, 2], np.eye(3)[[0, 1, 2, 0]], [1, 2, 3, 4]).report()
    validated = Export(project, run, report=report)
    assert "75.0 % on 4 test images" in validated.summary.value


def test_format_and_quantization_choices_follow_the_engine(project, trained_digits):  # noqa: F811
    from eiq_lab.widgets import Export

    _, run = trained_digits
    panel = Export(project)
    assert [value for _, value in panel.format.options] == ["tflite", "onnx", "keras", "h5", "savedmodel"]
    assert panel.destination.value == str(project.path.with_name(f"digits_run{run}.tflite"))
    panel.format.value = "keras"
    assert panel.quantize.disabled and panel.destination.value.endswith(f"digits_run{run}.keras")
    panel.format.value = "onnx"
    panel.quantize.value = True
    assert panel.destination.value.endswith(f"digits_run{run}_int8.onnx")
    assert panel.input_type.disabled and panel.input_type.value == "float32"  # ONNX QDQ keeps float32 I/O
    assert panel.quant_options.layout.display == "flex"
    panel.destination.value = "/somewhere/mine.onnx"
    panel.format.value = "tflite"  # a destination the user typed stays
    assert panel.destination.value == "/somewhere/mine.onnx"
    assert not panel.input_type.disabled and not panel.quantize.disabled


def test_export_writes_a_file_whose_parity_check_is_shown(project, trained_digits, tmp_path):  # noqa: F811
    from eiq_lab.evaluate.executors import tflite_metadata
    from eiq_lab.widgets import Export

    _, run = trained_digits
    panel = Export(project)
    assert panel.open_button.layout.display == "none"
    target = tmp_path / "out" / "digits.tflite"
    panel.destination.value = str(target)
    panel.export_button.click()
    panel.job.wait(WAIT)
    data = target.read_bytes()
    shown = html.unescape(panel.result_view.value)
    assert hashlib.sha256(data).hexdigest() in shown
    assert f"{len(data):,} bytes" in shown
    assert tflite_metadata(data)["labels"] == ["0", "1", "7"]  # labels embedded
    assert (target.parent / "labels.txt").read_text().split() == ["0", "1", "7"]
    record = project.exports()[-1]
    assert record.path == str(target.resolve()) and record.run == run
    parity = record.parity
    assert parity["images"] == 30
    assert f"on 30 images: max |difference| {parity['max_abs_diff']:.3g}" in shown
    assert f"top-1 agreement {100 * parity['top1_agreement']:.1f} %" in shown
    assert str(target.resolve()) in panel.exports_view.value
    assert "exported digits.tflite" in panel.status.value
    opened = []
    panel.on_open_model = opened.append  # the Portal wires the Model Tool
    assert panel.open_button.layout.display != "none"
    panel.open_button.click()
    assert opened == [str(target)]


def test_an_int8_export_records_its_options(project, tmp_path):
    from eiq_lab.widgets import Export

    panel = Export(project)
    panel.quantize.value = True
    panel.granularity.value = False
    panel.samples.value = 20
    panel.parity_images.value = 8
    panel.destination.value = str(tmp_path / "q.tflite")
    panel.export().wait(WAIT)
    record = project.exports()[-1]
    assert record.settings == {
        "format": "tflite", "type": "int8", "per_channel": False, "input_type": "float32", "output_type": "float32",
    }  # fmt: skip
    assert record.parity["images"] == 8
    assert "tflite, int8" in panel.result_view.value


def test_a_folder_as_destination_receives_the_default_file(project, trained_digits, tmp_path):  # noqa: F811
    from eiq_lab.widgets import Export

    _, run = trained_digits
    panel = Export(project)
    panel.format.value = "h5"
    panel.parity_images.value = 4
    panel.destination.value = str(tmp_path)
    panel.export().wait(WAIT)
    assert (tmp_path / f"digits_run{run}.h5").is_file()
    assert project.exports()[-1].path == str((tmp_path / f"digits_run{run}.h5").resolve())


def test_a_bad_destination_gives_a_clear_message(project, tmp_path):
    from eiq_lab.widgets import Export

    before = project.exports()
    panel = Export(project)
    panel.format.value = "savedmodel"
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    panel.destination.value = str(tmp_path / "busy")  # a folder holding other files
    panel.export_button.click()
    with pytest.raises(Exception, match="is not an empty folder or a SavedModel"):
        panel.job.wait(WAIT)
    assert "is not an empty folder or a SavedModel" in panel.status.value and "eiq-error" in panel.status.value
    assert not panel.export_button.disabled
    panel.format.value = "tflite"
    blocker = tmp_path / "plain.txt"
    blocker.write_text("not a folder")
    panel.destination.value = str(blocker / "model.tflite")
    job = panel.job
    panel.export_button.click()
    assert panel.job is job  # refused before any work
    assert "plain.txt is a file, not a folder" in panel.status.value
    panel.destination.value = "  "
    panel.export_button.click()
    assert "give the destination" in panel.status.value
    assert project.exports() == before
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["busy", "notes.txt", "plain.txt"]
