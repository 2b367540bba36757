"""The Validation panel on a real trained run: the matrix shows the engine's counts, the threshold re-sorts cached
predictions into the background column, a cell shows its images, the int8 toggle runs an int8 model, Deploy."""

from __future__ import annotations

import html
import io
import textwrap

import numpy as np
import pytest
from PIL import Image
from train.conftest import TINY_LAYERS, TINY_PLUGIN, make_digits_project, tiny_settings

from eiq_lab.errors import InputError
from eiq_lab.project import open_project

WAIT = 300


@pytest.fixture(scope="module")
def trained_digits(tmp_path_factory):
    """(project path, run id): the digits project (3 classes, 450 train and 30 test images) with one finished
    1-epoch tiny-CNN run; the tiny_cnn plugin stays registered, and the targets list empty, for the module's tests."""
    from eiq_lab.models import registry
    from eiq_lab.train import Trainer

    folder = tmp_path_factory.mktemp("trained_digits")
    family = folder / "user_models" / "classification" / "image" / "Tiny"
    family.mkdir(parents=True)
    (family / "tiny.py").write_text(textwrap.dedent(TINY_PLUGIN))
    (family / "layers_of_tiny.py").write_text(textwrap.dedent(TINY_LAYERS))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EIQ_PLUGINS_USER", str(folder / "user_models"))
        patch.setenv("EIQ_HOME", str(folder / "home"))
        registry(refresh=True)
        # 150 train images a class: one epoch at a high rate learns the digits (about 80 % right, confidences
        # spread from 0.4 to 0.99), which the threshold and int8 tests need
        path = make_digits_project(folder / "digits.eiqp", per_class_train=150, per_class_test=10)
        settings = tiny_settings(epochs=1, learning_rate=1e-2, batch_size=5, model_params={"dropout": 0.0})
        with open_project(path) as project:
            run = Trainer(project, settings).fit().run
        yield path, run
    registry(refresh=True)


@pytest.fixture(scope="module")
def validated(trained_digits):
    """A Validation panel that validated the run on this host, and the project it holds open."""
    from eiq_lab.widgets import Validation

    path, run = trained_digits
    with open_project(path) as project:
        panel = Validation(project)
        assert panel.run_choice.value == run  # the last finished run by default
        panel.validate().wait(WAIT)
        yield panel, project, run


def expected_confusion(project, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, list[int], np.ndarray]:
    """The confusion matrix by hand from the test images' labels and softmax scores: (matrix, image ids, columns)."""
    classes = [label.name for label in project.labels()]
    ids = [image.id for image in project.iter_images(group="test")]
    truth = [classes.index(project.annotations(image=i)[0].label) for i in ids]
    matrix = np.zeros((len(classes), len(classes) + 1), int)
    columns = np.empty(len(ids), int)
    for k, row in enumerate(scores):
        columns[k] = int(np.argmax(row)) if row.max() >= threshold else len(classes)
        matrix[truth[k], columns[k]] += 1
    return matrix, ids, columns


def drawn_counts(panel) -> np.ndarray:
    """The counts the figure shows, as the grid's shape."""
    shape = np.asarray(panel.matrix.grid.color).shape
    return np.asarray(panel.matrix.counts.text).astype(int).reshape(shape)


def test_the_matrix_shows_the_engine_report(validated):
    from eiq_lab.evaluate import evaluate_run

    panel, project, run = validated
    engine = evaluate_run(project, run)  # the engine on its own, a second inference
    assert panel.report.classes == ["0", "1", "7"]
    assert drawn_counts(panel).tolist() == engine.confusion.tolist()
    assert drawn_counts(panel).sum() == 30
    assert list(panel.matrix.grid.row) == ["0", "1", "7"]
    assert list(panel.matrix.grid.column) == ["0", "1", "7", "background"]
    colors = np.asarray(panel.matrix.grid.color)
    counts = engine.confusion
    # green (positive) on a non-empty diagonal, red (negative) for errors, darkest for the largest count
    assert all(colors[k, k] > 0 for k in range(3) if counts[k, k])
    off = ~np.eye(3, 4, dtype=bool)
    assert (colors[off & (counts > 0)] < 0).all()
    assert np.abs(colors).max() == pytest.approx(1.0)
    assert np.abs(colors[np.unravel_index(counts.argmax(), counts.shape)]) == pytest.approx(1.0)
    assert f"accuracy {100 * engine.accuracy:.1f} %" in panel.summary.value
    for name, metrics in engine.per_class.items():
        if metrics["recall"] is not None:
            assert f"<td>{name}</td>" in panel.metrics.value
            assert f"{100 * metrics['recall']:.1f} %" in panel.metrics.value
    assert "accuracy" in panel.status.value and "eiq-ok" in panel.status.value


def test_the_threshold_moves_predictions_into_the_background_column(validated, monkeypatch):
    import eiq_lab.evaluate

    panel, project, _ = validated
    scores = panel.report.scores
    confidence = np.unique(scores.max(axis=1))
    middle = len(confidence) // 2
    threshold = float(confidence[middle - 1] + confidence[middle]) / 2  # halfway between two images' scores
    expected, _, _ = expected_confusion(project, scores, threshold)
    assert expected[:, -1].sum() > 0 and expected[:, :-1].sum() > 0

    def no_inference(*args, **kwargs):
        raise AssertionError("the threshold re-ran the model")

    monkeypatch.setattr(eiq_lab.evaluate, "evaluate_run", no_inference)
    job = panel.job
    before = drawn_counts(panel).copy()
    panel.threshold.value = threshold
    assert panel.job is job  # no new work started
    assert drawn_counts(panel).tolist() == expected.tolist()
    assert drawn_counts(panel)[:, -1].sum() > before[:, -1].sum()
    assert f"background column: {expected[:, -1].sum()} images" in panel.summary.value
    accuracy = np.trace(expected[:, :-1]) / expected.sum()
    assert f"accuracy {100 * accuracy:.1f} %" in panel.summary.value
    panel.threshold.value = 1.0  # nothing is that sure: every image is background
    assert drawn_counts(panel)[:, -1].tolist() == expected.sum(axis=1).tolist()
    panel.threshold.value = 0.0
    assert drawn_counts(panel).tolist() == before.tolist()


def test_the_engine_agrees_at_a_threshold(validated):
    from eiq_lab.evaluate import evaluate_run

    panel, project, run = validated
    panel.threshold.value = 0.5
    engine = evaluate_run(project, run, threshold=0.5)  # computed apart, with its own inference
    assert drawn_counts(panel).tolist() == engine.confusion.tolist()
    panel.threshold.value = 0.0


def test_clicking_a_cell_shows_its_images(validated):
    panel, project, _ = validated
    panel.threshold.value = 0.0
    expected, ids, columns = expected_confusion(project, panel.report.scores, 0.0)
    row, column = np.unravel_index(expected.argmax(), expected.shape)
    click(panel, row, column)
    wanted = [ids[k] for k in range(len(ids)) if columns[k] == column and expected_row(project, ids[k]) == row]
    assert len(wanted) == expected[row, column] > 0
    listed = panel.cell_ids.value.split("class='eiq-validation-ids'>")[1].split("<")[0]
    assert [int(i) for i in listed.split(", ")] == wanted
    assert f"{len(wanted)} images" in panel.cell_ids.value
    thumbs = panel.cell_images.children
    assert len(thumbs) == len(wanted)
    assert [t.children[1].value for t in thumbs] == [f"#{i}" for i in wanted]
    with Image.open(io.BytesIO(thumbs[0].children[0].value)) as image:
        assert image.format == "JPEG" and image.size == (32, 32)  # the 32x32 digits are never enlarged
    # the background column of a class at a threshold no prediction reaches: that class's images
    panel.threshold.value = 1.0
    assert "true 0, predicted background" not in panel.cell_ids.value
    click(panel, 0, 3)
    zeros = [i for i in ids if expected_row(project, i) == 0]
    listed = panel.cell_ids.value.split("class='eiq-validation-ids'>")[1].split("<")[0]
    assert [int(i) for i in listed.split(", ")] == zeros
    panel.threshold.value = 0.0


def click(panel, row: int, column: int) -> None:
    """What the browser sends when a cell of the grid is clicked (bqplot's element_click message)."""
    cell = {"rowNum": row, "columnNum": column, "row": panel.matrix.rows[row], "column": panel.matrix.columns[column]}
    panel.matrix.grid._handle_custom_msgs(None, {"event": "element_click", "data": cell})


def expected_row(project, image_id: int) -> int:
    classes = [label.name for label in project.labels()]
    return classes.index(project.annotations(image=image_id)[0].label)


def test_quantized_toggle_evaluates_an_int8_model(validated, monkeypatch):
    import eiq_lab.convert
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.widgets import Validation

    _, project, run = validated
    made = []
    original = eiq_lab.convert.quantized_executor

    def recording(*args, **kwargs):
        made.append((original(*args, **kwargs), kwargs))
        return made[-1][0]

    monkeypatch.setattr(eiq_lab.convert, "quantized_executor", recording)
    panel = Validation(project)
    assert panel.quant_options.layout.display == "none"
    panel.quantize.value = True
    assert panel.quant_options.layout.display == "flex"
    panel.granularity.value = False  # per tensor
    panel.input_type.value = "int8"
    panel.samples.value = 30
    panel.validate().wait(WAIT)
    [(executor, kwargs)] = made
    assert kwargs == {"per_channel": False, "input_type": "int8", "output_type": "float32", "num_samples": 30}
    details = executor.interpreter.get_input_details()[0]
    assert details["dtype"] == np.int8
    assert any(t["dtype"] == np.int8 for t in executor.interpreter.get_tensor_details())
    reference = evaluate_run(project, run, executor=executor)
    assert drawn_counts(panel).tolist() == reference.confusion.tolist()
    assert "int8 per tensor" in panel.status.value


def test_a_model_file_cannot_be_quantized_and_nothing_chosen_is_refused(validated):
    from eiq_lab.widgets import Validation

    _, project, _ = validated
    panel = Validation(project)
    panel.model_file.value = "/tmp/model.tflite"
    panel.quantize.value = True
    panel.validate_button.click()
    assert "post-training quantization applies to a run's model" in html.unescape(panel.status.value)
    assert panel.job is None
    panel.quantize.value = False
    panel.model_file.value = ""
    panel.run_choice.value = None
    panel.validate_button.click()
    assert "choose a run, or give a model file" in panel.status.value
    with pytest.raises(InputError):
        panel.validate()


def test_deploy_hands_the_run_and_report_over(validated):
    panel, _, run = validated
    handed = []
    panel.on_deploy = lambda r, report: handed.append((r, report))
    panel.deploy_button.click()
    assert handed == [(run, panel.report)]
    panel.on_deploy = None
    panel.deploy_button.click()  # alone: the Export panel below, with this validation in its summary
    [export] = panel.below.children
    assert export.run_choice.value == run
    assert f"{100 * panel.report.accuracy:.1f} %" in export.summary.value


def test_a_detector_report_shows_map_and_pr_curves(trained_digits):
    from eiq_lab.evaluate import ImageBoxes, detection_metrics
    from eiq_lab.widgets import Validation

    path, _ = trained_digits
    truth = [ImageBoxes([[0.1, 0.1, 0.5, 0.5]], [0]), ImageBoxes([[0.2, 0.2, 0.6, 0.9]], [1])]
    found = [
        ImageBoxes([[0.1, 0.1, 0.5, 0.5], [0.6, 0.6, 0.9, 0.9]], [0, 0], [0.9, 0.8]),
        ImageBoxes([[0.5, 0.5, 0.9, 0.9]], [1], [0.7]),
    ]
    report = detection_metrics(truth, found, ["circle", "square"])
    with open_project(path) as project:
        panel = Validation(project)
        panel.show_report(report)
    assert panel.detection in panel.results_box.children and panel.classification not in panel.results_box.children
    # circle: found once at the top score (AP 1); square: its only detection misses (AP 0); mean 0.5
    assert "mAP@0.5 50.0 %" in panel.detection_metrics.value
    assert "<td>circle</td><td>1</td><td>2</td><td>100.0 %</td>" in panel.detection_metrics.value
    assert [mark.labels for mark in panel.pr_figure.marks] == [["circle"], ["square"]]
    circle = panel.pr_figure.marks[0]
    assert list(circle.x) == [0.0, 1.0, 1.0] and list(circle.y) == [1.0, 1.0, 0.5]


def test_a_remote_target_validates_the_converted_model_on_the_device(validated):
    from eiq_lab.convert.export import run_tflite
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.evaluate.executors import LiteRTExecutor
    from eiq_lab.runner.background import BackgroundServer
    from eiq_lab.runner.client import ModelClient
    from eiq_lab.runner.server import create_app
    from eiq_lab.runner.targets import add_target, remove_target
    from eiq_lab.widgets import Validation

    _, project, run = validated
    server = BackgroundServer(create_app()).start()  # a ModelRunner on 127.0.0.1, holding no model yet
    try:
        add_target("board-1", server.url)
        panel = Validation(project)
        assert ("board-1 (" + server.url + ")", "board-1") in panel.target.options
        panel.target.value = "board-1"
        panel.validate().wait(WAIT)
        assert ModelClient(server.url).get_labels() == ["0", "1", "7"]  # the run's model went to the device
        local = evaluate_run(project, run, model=LiteRTExecutor(run_tflite(project, run)))  # the same model here
        assert drawn_counts(panel).tolist() == local.confusion.tolist()
        np.testing.assert_allclose(panel.report.scores, local.scores, atol=1e-5)
        assert "on board-1" in panel.status.value
    finally:
        remove_target("board-1")
        server.stop()


def test_a_model_file_validates_with_its_own_labels(validated, tmp_path):
    from eiq_lab.convert.export import run_tflite
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.widgets import Validation

    _, project, run = validated
    model = tmp_path / "digits.tflite"
    model.write_bytes(run_tflite(project, run))
    panel = Validation(project)
    panel.run_choice.value = None  # the file alone: classes and preprocessing from its metadata
    panel.model_file.value = str(model)
    panel.validate().wait(WAIT)
    alone = evaluate_run(project, None, model=model)
    assert panel.report.classes == ["0", "1", "7"]
    assert drawn_counts(panel).tolist() == alone.confusion.tolist()
    panel.deploy_button.click()  # a file is not a run: Deploy says what to do instead
    assert "exported with the converter" in panel.status.value
