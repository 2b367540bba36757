"""The Training panel on the digits project with the tiny CNN: real runs started, stopped and continued from the
panel, one chart point per epoch for train and test, refused settings, layer lists, metric switch and step range."""

from __future__ import annotations

import pytest
from train.conftest import (  # noqa: F401  (fixtures by name; tests/ is on sys.path)
    digits_path,
    digits_template,
    tiny_plugin,
    tiny_settings,
)

from eiq_lab.errors import EiqError
from eiq_lab.project import open_project
from eiq_lab.train.drafts import load_draft, save_draft
from eiq_lab.widgets import Training

# the digits project: 3 classes x 30 train images, batch 10 -> 9 steps per epoch
STEPS_PER_EPOCH = 9


@pytest.fixture
def project(digits_path, tiny_plugin):  # noqa: F811
    with open_project(digits_path) as project:
        save_draft(project, tiny_settings(epochs=2))
        yield project


def values(mark):
    return [float(v) for v in mark.y]


def steps(mark):
    return [int(v) for v in mark.x]


def test_start_trains_a_run_and_charts_one_point_per_epoch(project):
    panel = Training(project)
    trained, seen = [], []
    panel.on_trained = trained.append
    # what the page shows each time the chart's counter changes (on the training thread, as points arrive)
    panel.chart.count.observe(lambda change: seen.append(dict(panel.chart.counts)), "value")
    assert panel.continue_button.disabled and panel.validate_button.disabled

    panel.start_button.click()
    assert panel.start_button.disabled and panel.form.learning_rate.disabled
    result = panel.job.wait(120)

    assert result.state == "finished" and project.run(result.run).state == "finished"
    assert seen == [{"train": 1, "test": 1}, {"train": 2, "test": 2}]
    stored = [c.metrics for c in project.checkpoints(result.run)]
    assert steps(panel.chart.dots["train"]) == steps(panel.chart.dots["test"]) == [9, 18]
    assert values(panel.chart.dots["train"]) == pytest.approx([m["accuracy"] for m in stored])
    assert values(panel.chart.dots["test"]) == pytest.approx([m["test_accuracy"] for m in stored])
    assert "train 2, test 2" in panel.chart.count.value
    assert trained == [result.run]
    assert "finished all epochs" in panel.summary.value and "best test accuracy" in panel.summary.value
    assert "finished" in panel.status.value
    assert not panel.start_button.disabled and not panel.form.learning_rate.disabled
    assert panel.continue_button.disabled  # the last run finished: nothing to continue
    assert not panel.validate_button.disabled
    panel.validate_button.click()
    assert trained == [result.run, result.run]


def test_stop_during_training_then_continue_from_the_checkpoint(project):
    save_draft(project, epochs=2)
    panel = Training(project)
    # the user presses Stop as soon as the first epoch's points appear
    panel.chart.count.observe(lambda change: panel.stop_button.click() if panel.chart.counts["train"] == 1 else None,
                              "value")  # fmt: skip
    panel.start_button.click()
    stopped = panel.job.wait(120)

    assert stopped.state == "stopped" and stopped.epoch == 1
    record = project.run(stopped.run)
    assert record.state == "stopped" and record.last_epoch == 1
    assert panel.chart.counts == {"train": 1, "test": 1}
    assert "Continue training resumes it" in panel.status.value
    assert not panel.continue_button.disabled and panel.validate_button.disabled

    panel.chart.count.unobserve_all()
    panel.continue_button.click()
    finished = panel.job.wait(120)

    assert finished.run == stopped.run and finished.state == "finished" and finished.epoch == 2
    assert [c.epoch for c in project.checkpoints(stopped.run)] == [1, 2]
    # the continued run's chart holds the stored first epoch and the new one
    assert steps(panel.chart.dots["train"]) == steps(panel.chart.dots["test"]) == [9, 18]
    assert len(project.runs()) == 1


def test_invalid_settings_are_refused_and_the_project_is_unchanged(project):
    before = load_draft(project).to_json()
    panel = Training(project)

    panel.form.learning_rate.value = -0.5
    assert "learning rate must be a positive number" in panel.status.value
    assert "eiq-error" in panel.status.value
    assert load_draft(project).to_json() == before

    panel.form.channels.value = 2
    assert "C in (1, 3)" in panel.status.value
    assert panel.form.weights_file.layout.display == "none"  # shown only for weights from a file
    panel.form.weights.value = "file"
    assert panel.form.weights_file.layout.display is None and panel.form.learning_rate.layout.display is None
    panel.form.weights_file.value = "/no/such/weights.h5"
    assert "existing weights file" in panel.status.value
    panel.form.seed.value = "abc"
    assert "seed must be an integer" in panel.status.value
    assert load_draft(project).to_json() == before

    panel.start_button.click()
    assert panel.job is None and project.runs() == []
    assert "eiq-error" in panel.status.value

    # a valid edit is saved at once, alone
    panel.form.batch_size.value = 5
    assert "saved batch size" in panel.status.value
    assert load_draft(project).batch_size == 5 and load_draft(project).learning_rate == before["learning_rate"]


def test_pruning_layers_listed_from_the_model_and_saved_by_name(project):
    panel = Training(project)
    panel.form.prune_on.value = True
    assert load_draft(project).prune is not None

    panel.list_layers.click()
    layers = panel.job.wait(120)

    # the tiny CNN (tests/train/conftest.py): conv1, conv2, conv3 (Conv2D) and classes (Dense) have kernels
    assert [value for _, value in panel.form.prune_layers.options] == ["conv1", "conv2", "conv3", "classes"]
    assert [layer.type for layer in layers if layer.prunable] == ["Conv2D", "Conv2D", "Conv2D", "Dense"]
    conv1 = next(layer for layer in layers if layer.name == "conv1")
    assert conv1.params == 3 * 3 * 3 * 8 + 8  # width 8 filters of 3x3x3, plus biases
    assert "MaxPooling2D" in panel.layer_table.value and "GlobalAveragePooling2D" in panel.layer_table.value

    panel.form.prune_layers.value = ("conv2", "classes")
    assert load_draft(project).prune.layers == ["conv2", "classes"]

    # clustering excludes pruning (as in eIQ Portal) and offers its own selection
    panel.form.cluster_on.value = True
    assert not panel.form.prune_on.value
    draft = load_draft(project)
    assert draft.prune is None and draft.cluster is not None
    assert [value for _, value in panel.form.cluster_layers.options] == ["conv1", "conv2", "conv3", "classes"]


def test_layers_chosen_in_the_model_tool_fill_the_pruning_selection(project):
    panel = Training(project)
    panel.form.prune_on.value = True
    panel.pick_layers.click()
    panel.job.wait(120)
    (tool,) = panel.model_tool_area.children
    assert tool.selection.layout.display == "flex"  # the Model Tool in its layer-selection mode
    assert list(tool.selection.options) == ["conv1", "conv2", "conv3", "classes"]
    tool.selection.value = ("conv1", "classes")
    assert panel.form.prune_layers.value == ("conv1", "classes")
    assert load_draft(project).prune.layers == ["conv1", "classes"]
    tool.close()


def test_metric_switch_and_step_range_change_the_chart(project):
    from eiq_lab.train import Trainer

    run = Trainer(project, tiny_settings(epochs=3)).fit().run
    stored = [c.metrics for c in project.checkpoints(run)]

    panel = Training(project)  # a reopened panel shows the last run
    assert steps(panel.chart.dots["train"]) == [9, 18, 27]
    assert values(panel.chart.dots["test"]) == pytest.approx([m["test_accuracy"] for m in stored])
    assert panel.chart.y_axis.label == "accuracy"
    assert (panel.chart.y_scale.min, panel.chart.y_scale.max) == (0, 1)

    panel.chart.metric.value = "loss"
    assert values(panel.chart.dots["train"]) == pytest.approx([m["loss"] for m in stored])
    assert values(panel.chart.dots["test"]) == pytest.approx([m["test_loss"] for m in stored])
    assert panel.chart.y_axis.label == "loss"
    assert (panel.chart.y_scale.min, panel.chart.y_scale.max) == (None, None)

    assert panel.chart.range.value == (0, 27)  # the range spans every step shown
    panel.chart.range.value = (10, 20)
    assert (panel.chart.x_scale.min, panel.chart.x_scale.max) == (10, 20)
    panel.chart.metric.value = "metric"
    assert (panel.chart.x_scale.min, panel.chart.x_scale.max) == (10, 20)  # the range stays across the switch
    assert values(panel.chart.dots["train"]) == pytest.approx([m["accuracy"] for m in stored])


def test_restore_request_starts_a_run_from_the_checkpoint_and_past_runs_show(project):
    from eiq_lab.train import Trainer

    source = Trainer(project, tiny_settings(epochs=1, batch_size=15)).fit().run
    save_draft(project, batch_size=10, epochs=1)
    panel = Training(project)
    panel.restore(source, 1)
    assert panel.form.batch_size.value == 15  # the form shows the restored run's settings
    assert f"{source}:1" in panel.restore_line.value and panel.restore_box.layout.display is None
    panel.form.epochs.value = 1

    panel.start_button.click()
    result = panel.job.wait(120)

    assert project.run(result.run).parent == f"{source}:1"
    assert project.run(result.run).settings["batch_size"] == 15
    assert result.state == "finished" and panel.restore_from is None
    assert steps(panel.chart.dots["train"]) == [6]  # 90 images in batches of 15

    # the source run's curves beside the new run's
    assert [value for _, value in panel.compare.options] == [source, result.run]
    panel.compare.value = (source,)
    past = {mark.labels[0]: mark for mark in panel.chart.past_marks}
    assert set(past) == {f"run {source} train", f"run {source} test"}
    assert steps(past[f"run {source} test"]) == [6]
    stored = [c.metrics for c in project.checkpoints(source)]
    assert values(past[f"run {source} test"]) == pytest.approx([m["test_accuracy"] for m in stored])
    assert panel.chart.range.max == 6


def test_imagenet_weights_offline_are_named_and_nothing_is_recorded(project, tmp_path, monkeypatch):
    import urllib.error

    from tf_keras.src.utils import data_utils

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setenv("HOME", str(tmp_path))  # an empty Keras download cache
    monkeypatch.setattr(data_utils, "urlretrieve", offline)
    save_draft(project, model="mobilenet_v1", alpha=0.25, weights="imagenet", input_size=(32, 32, 3))
    panel = Training(project)
    assert panel.form.weights.value == "imagenet" and "needs network" in panel.form.weights_note.value

    panel.start_button.click()
    with pytest.raises(EiqError, match="could not download the ImageNet weights"):
        panel.job.wait(120)

    assert "ImageNet weights need network" in panel.status.value and "Weights -&gt; Random" in panel.status.value
    assert project.runs() == []
    assert not panel.start_button.disabled
