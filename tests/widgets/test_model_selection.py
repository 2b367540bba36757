"""The Model selection panel on real projects: the wizard and its reason, base and user models (broken plugins
listed) with their parameters and input sizes saved into the draft settings, and restoring a trained checkpoint."""

from __future__ import annotations

import pytest
from train import conftest as training  # tests/ is on sys.path

from eiq_lab.models import recommend
from eiq_lab.project import open_project
from eiq_lab.train.drafts import load_draft
from eiq_lab.widgets import ModelSelection

# the training fixtures, found by pytest under these names: the digits project and the tiny CNN user plugin
digits_template = training.digits_template
tiny_plugin = training.tiny_plugin


@pytest.fixture
def digits(digits_template, tmp_path):
    """A fresh copy of the digits project (three classes, full-image labels, train and test), open."""
    path = tmp_path / "digits.eiqp"
    path.write_bytes(digits_template.read_bytes())
    with open_project(path) as project:
        yield project


def params(panel: ModelSelection) -> dict:
    """The parameter controls of the model shown, by name."""
    return {
        css.removeprefix("eiq-model-param-"): child
        for child in panel.details.children
        for css in child._dom_classes
        if css.startswith("eiq-model-param-")
    }


def text(html_value: str) -> str:
    return html_value.replace("&#x27;", "'")


def test_wizard_shows_its_choice_and_reason_and_saves_it(digits):
    chosen = []
    panel = ModelSelection(digits)
    panel.on_selected = chosen.append
    assert panel.sections.value == "Wizard"
    assert (panel.task.value, panel.priority.value, panel.target.value) == ("classification", "balanced", "npu")
    card = text(panel.reason.value)
    # the guide's recommended settings (3.7.5): MobileNet v2, alpha 0.5, 128x128x3
    assert "<b>mobilenet_v2</b>, input (128, 128, 3), alpha 0.5" in card
    assert "the guide's recommended starting point (3.7.5)" in card
    assert "int8 per-tensor" in card and "quantization-aware training advised" in card

    panel.priority.value = "performance"
    panel.target.value = "mcu"
    card = text(panel.reason.value)
    assert "<b>mobilenet_v1</b>, input (128, 128, 3), alpha 0.25" in card
    assert "LPC55S69" in card and "int8 per-channel" in card
    panel.job.wait(120)  # for an MCU the model is built to estimate its int8 flash and RAM
    full = recommend("classification", "performance", "mcu")
    assert full.flash_bytes > 0 and full.ram_bytes > 0
    assert f"flash {full.flash_bytes / 1024:.0f} KiB, RAM {full.ram_bytes / 1024:.0f} KiB" in panel.reason.value

    panel.task.value = "detection"
    assert "<b>ssd_mobilenet_v2</b>, input (128, 128, 3), alpha 0.35" in panel.reason.value
    assert "detection outputs stay float32" in panel.reason.value

    panel.use_recommendation.click()
    draft = load_draft(digits)
    assert (draft.task, draft.model, draft.alpha, draft.input_size) == (
        "detection",
        "ssd_mobilenet_v2",
        0.35,
        (128, 128, 3),
    )
    assert len(chosen) == 1 and chosen[0].model == "ssd_mobilenet_v2"
    assert "ssd_mobilenet_v2" in panel.current.value


def test_base_models_with_parameters_and_input_sizes_go_into_the_draft(digits):
    chosen = []
    panel = ModelSelection(digits)
    panel.on_selected = chosen.append
    panel.sections.value = "Base models"
    assert panel.base_list.options == ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large")
    panel.base_list.value = "mobilenet_v2"
    found = params(panel)
    assert set(found) == {"alpha", "dropout"}
    assert [value for _, value in found["alpha"].options] == [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]
    assert found["alpha"].value == 0.5
    assert (found["dropout"].min, found["dropout"].max) == (0.0, 0.9)
    sizes = [value for _, value in panel.input_size.options]
    assert (96, 96, 3) in sizes and (224, 224, 1) in sizes
    assert any("pretrained" in label for label, value in panel.input_size.options if value == (224, 224, 3))

    found["alpha"].value = 0.75
    found["dropout"].value = 0.3
    panel.input_size.value = (96, 96, 3)
    panel.use_model.click()
    draft = load_draft(digits)
    assert (draft.model, draft.alpha, draft.input_size) == ("mobilenet_v2", 0.75, (96, 96, 3))
    assert draft.model_params == {"dropout": pytest.approx(0.3)}
    assert chosen[-1].model == "mobilenet_v2"

    # a size the model refuses with ImageNet weights: a clear message, the draft unchanged
    panel.input_size.value = (96, 96, 1)
    panel.use_model.click()
    assert "C = 3 for ImageNet weights" in panel.status.value
    assert load_draft(digits).input_size == (96, 96, 3) and len(chosen) == 1

    # reopened, the panel shows the draft's values for the draft's model
    again = ModelSelection(digits)
    again.sections.value = "Base models"
    assert again.base_list.value == "mobilenet_v2"
    assert params(again)["alpha"].value == 0.75 and again.input_size.value == (96, 96, 3)

    panel.sections.value = "Base models"
    panel.task.value = "detection"
    assert panel.base_list.options == ("ssd_mobilenet_v2",)
    assert set(params(panel)) == {"alpha", "max_detections", "score_threshold", "iou_threshold"}


def test_user_models_and_broken_plugins(digits, tiny_plugin, tmp_path):
    chosen = []
    panel = ModelSelection(digits)
    panel.on_selected = chosen.append
    panel.sections.value = "User models"
    assert panel.user_list.options == ("tiny_cnn",) and panel.problems.value == ""
    assert str(tmp_path / "user_models") in panel.folders.value

    # a plugin file added while the panel is open, with a syntax error: listed with its problem after a rescan
    broken = tmp_path / "user_models" / "classification" / "image" / "Broken" / "broken.py"
    broken.parent.mkdir(parents=True)
    broken.write_text("def get_model(:\n")
    panel.rescan.click()
    assert panel.user_list.options == ("tiny_cnn",)
    assert str(broken) in panel.problems.value and "SyntaxError" in panel.problems.value
    assert "1 broken" in panel.status.value
    assert panel.user_list.value == "tiny_cnn"
    found = params(panel)
    assert set(found) == {"width", "dropout"}
    assert (found["width"].min, found["width"].max, found["width"].value) == (2, 64, 8)
    assert [value for _, value in panel.input_size.options] == [(32, 32, 3), (32, 32, 1)]
    assert "no pretrained weights" in panel.details.children[-2].value

    found["width"].value = 16
    panel.input_size.value = (32, 32, 1)
    panel.use_model.click()
    draft = load_draft(digits)
    assert (draft.model, draft.alpha, draft.input_size) == ("tiny_cnn", None, (32, 32, 1))
    assert draft.model_params == {"width": 16, "dropout": 0.25}
    assert chosen[-1].model_params == {"width": 16, "dropout": 0.25}


def test_restore_lists_a_runs_checkpoints_and_hands_one_over(digits, tiny_plugin):
    from eiq_lab.train import Trainer

    panel = ModelSelection(digits)
    panel.sections.value = "Restore model"
    panel.restore_button.click()
    assert "no training runs yet" in panel.status.value

    Trainer(digits, training.tiny_settings(epochs=2)).fit()
    panel.refresh()
    assert [value for _, value in panel.runs.options] == [1]
    assert panel.runs.options[0][0].startswith("run 1: tiny_cnn (classification), finished, 2 checkpoint(s)")
    labels = [label for label, _ in panel.checkpoints.options]
    assert [value for _, value in panel.checkpoints.options] == [1, 2]
    assert labels[0].startswith("epoch 1 (train): accuracy ") and "test_accuracy" in labels[0]
    assert panel.checkpoints.value == 2  # the last one by default

    panel.checkpoints.value = 1
    panel.restore_button.click()
    assert "--restore 1:1" in panel.status.value  # alone: says how to continue it

    handed = []
    panel.on_restore = lambda run, epoch: handed.append((run, epoch))
    panel.restore_button.click()
    assert handed == [(1, 1)]
    assert digits.checkpoint(1, 1).phase == "train"
