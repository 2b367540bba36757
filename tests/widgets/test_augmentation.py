"""The Augmentation panel on real projects: locked presets, editing pipelines and steps (stored in the project at
once), a control for every operator parameter, refused values, the draft setting and the preview grid."""

from __future__ import annotations

import io

import ipywidgets as w
import numpy as np
import pytest
from PIL import Image
from train import conftest as training  # tests/ is on sys.path

from eiq_lab.augment import operators
from eiq_lab.project import open_project
from eiq_lab.train.drafts import load_draft, save_draft
from eiq_lab.widgets import Augmentation

# the training fixtures, found by pytest under these names: session-built digits and shapes projects
digits_template = training.digits_template
shapes_template = training.shapes_template


@pytest.fixture
def digits(digits_template, tmp_path):
    """A fresh copy of the digits project (three classes, full-image labels, train and test), open."""
    path = tmp_path / "digits.eiqp"
    path.write_bytes(digits_template.read_bytes())
    with open_project(path) as project:
        yield project


@pytest.fixture
def shapes(shapes_template, tmp_path):
    """A fresh copy of the shapes project (coloured shapes with boxes, imported from VOC), open."""
    path = tmp_path / "shapes.eiqp"
    path.write_bytes(shapes_template.read_bytes())
    with open_project(path) as project:
        yield project


def controls(editor: w.VBox) -> dict[str, w.Widget]:
    """A step editor's controls by parameter name (``probability`` for the probability slider)."""
    found = {}
    for child in editor.children:
        for css in child._dom_classes:
            if css == "eiq-augmentation-probability":
                found["probability"] = child
            elif css.startswith("eiq-augmentation-param-"):
                found[css.removeprefix("eiq-augmentation-param-")] = child
    return found


def buttons(editor: w.VBox) -> dict[str, w.Button]:
    header = editor.children[0]
    return {css.removeprefix("eiq-augmentation-"): b for b in header.children[1:] for css in b._dom_classes}


def stored(project, name):
    return project.pipelines()[name]


def resized(project, image_id, size=(128, 128)):
    """A project image as training sizes it (the draft's default input size), decoded independently."""
    image = Image.open(io.BytesIO(project.image_data(image_id))).convert("RGB")
    return np.asarray(image.resize(size, Image.Resampling.BILINEAR))


def test_presets_are_shown_locked_and_refuse_edits(digits):
    panel = Augmentation(digits)
    labels = dict((value, label) for label, value in panel.pipelines.options)
    assert list(labels) == ["none", "default", "strong"]
    assert all("locked" in label for label in labels.values())
    assert "training" in labels["default"]  # the draft's pipeline is marked
    assert panel.selected == "default"
    assert [e._dom_classes[-1] for e in panel.steps.children] == [
        "eiq-augmentation-step-horizontal_flip",
        "eiq-augmentation-step-rotate",
        "eiq-augmentation-step-random_brightness",
        "eiq-augmentation-step-random_contrast",
    ]
    assert "is a preset: locked" in panel.lock_note.value
    assert panel.add_button.disabled and panel.delete_button.disabled and panel.rename_button.disabled
    assert all(c.disabled for e in panel.steps.children for c in controls(e).values())

    panel.add_button.click()  # a disabled button clicked from code still reaches the engine, which refuses
    assert "'default' is a preset and cannot be edited" in panel.status.value.replace("&#x27;", "'")
    panel.delete_button.click()
    assert "cannot be deleted" in panel.status.value
    panel.set_parameter(1, probability=0.9)
    assert "eiq-error" in panel.status.value
    assert digits.pipelines() == {}


def test_duplicate_then_edit_steps_and_parameters(digits):
    panel = Augmentation(digits)
    panel.duplicate_button.click()
    assert panel.selected == "my-default" and not panel.locked
    assert [s["op"] for s in stored(digits, "my-default")] == [
        "horizontal_flip",
        "rotate",
        "random_brightness",
        "random_contrast",
    ]

    panel.operator.value = "random_gamma"
    panel.add_button.click()
    gamma = stored(digits, "my-default")[-1]
    assert gamma == {"op": "random_gamma", "probability": 0.5, "params": {"gamma_limit": [80, 120]}}

    editor = panel.steps.children[-1]
    found = controls(editor)
    found["probability"].value = 0.8
    found["gamma_limit"].value = (90, 110)
    assert stored(digits, "my-default")[-1] == {
        "op": "random_gamma",
        "probability": 0.8,
        "params": {"gamma_limit": [90, 110]},
    }

    rotate = controls(panel.steps.children[1])
    rotate["interpolation"].value = 2
    rotate["fill_color"].value = "#ff0000"
    rotate["limit"].value = (-45, 30)
    assert stored(digits, "my-default")[1]["params"] == {
        "limit": [-45, 30],
        "interpolation": 2,
        "border_mode": 0,
        "fill_color": [255, 0, 0],
    }

    buttons(panel.steps.children[-1])["up"].click()
    assert [s["op"] for s in stored(digits, "my-default")][-2:] == ["random_gamma", "random_contrast"]
    buttons(panel.steps.children[0])["down"].click()
    assert [s["op"] for s in stored(digits, "my-default")][:2] == ["rotate", "horizontal_flip"]
    buttons(panel.steps.children[0])["remove"].click()
    assert [s["op"] for s in stored(digits, "my-default")] == [
        "horizontal_flip",
        "random_brightness",
        "random_gamma",
        "random_contrast",
    ]
    assert [e._dom_classes[-1].removeprefix("eiq-augmentation-step-") for e in panel.steps.children] == [
        s["op"] for s in stored(digits, "my-default")
    ]
    # the preset it was copied from is untouched
    panel.select("default")
    assert panel.locked
    assert [s.op for s in panel.pipeline().steps] == [
        "horizontal_flip",
        "rotate",
        "random_brightness",
        "random_contrast",
    ]


def test_every_operator_parameter_gets_a_control_with_the_engines_limits(digits):
    panel = Augmentation(digits)
    panel.name.value = "all"
    panel.new_button.click()
    assert stored(digits, "all") == []
    for op in operators():
        panel.operator.value = op.id
        panel.add_button.click()
    assert [s["op"] for s in stored(digits, "all")] == [op.id for op in operators()]
    for op, editor in zip(operators(), panel.steps.children, strict=True):
        found = controls(editor)
        assert set(found) == {"probability"} | {p.name for p in op.parameters}
        assert found["probability"].value == 0.5 and (found["probability"].min, found["probability"].max) == (0, 1)
        for parameter in op.parameters:
            control = found[parameter.name]
            assert control.description == parameter.title
            if parameter.kind == "choice":
                assert [code for _, code in control.options] == [code for code, _ in parameter.choices]
                assert control.value == parameter.default
            elif parameter.kind == "color":
                assert control.value == "#" + "".join(f"{v:02x}" for v in parameter.default)
            else:
                assert (control.min, control.max) == (parameter.minimum, parameter.maximum)
                expected = tuple(parameter.default) if parameter.kind.endswith("range") else parameter.default
                assert control.value == pytest.approx(expected)


def test_refused_values_show_a_message_and_store_nothing(digits):
    panel = Augmentation(digits)
    panel.name.value = "mine"
    panel.new_button.click()
    panel.add("rotate", 0.3, limit=[-10, 10])
    before = stored(digits, "mine")

    panel.set_parameter(0, limit=[30, -30])
    assert "limit must be [lower, upper] with lower &lt;= upper" in panel.status.value
    panel.set_parameter(0, probability=1.5)
    assert "probability must be a number from 0 to 1; received 1.5" in panel.status.value
    found = controls(panel.steps.children[0])
    found["fill_color"].value = "teal"  # a colour name the picker accepts, but not [r, g, b]
    assert "fill_color must be [red, green, blue]" in panel.status.value
    assert stored(digits, "mine") == before
    # the controls show what is stored again
    found = controls(panel.steps.children[0])
    assert found["fill_color"].value == "#7f7f7f" and found["limit"].value == (-10, 10)

    panel.name.value = "strong"
    panel.rename_button.click()
    assert "'strong' is the name of a preset" in panel.status.value.replace("&#x27;", "'")
    panel.name.value = ""
    panel.rename_button.click()
    assert "type the new name" in panel.status.value
    assert list(digits.pipelines()) == ["mine"]


def test_rename_delete_and_use_for_training_keep_the_draft_consistent(digits):
    used = []
    panel = Augmentation(digits)
    panel.on_use = used.append
    panel.name.value = "flips"
    panel.new_button.click()
    panel.add("horizontal_flip", 1.0)
    panel.use_button.click()
    assert load_draft(digits).augmentation == "flips" and used == ["flips"]
    assert "\u2713 training" in dict((v, k) for k, v in panel.pipelines.options)["flips"]

    panel.name.value = "mirror"
    panel.rename_button.click()
    assert list(digits.pipelines()) == ["mirror"]
    assert load_draft(digits).augmentation == "mirror"  # the draft follows the rename

    panel.delete_button.click()
    assert digits.pipelines() == {}
    assert load_draft(digits).augmentation == "default"
    assert "training will use the 'default' preset" in panel.status.value.replace("&#x27;", "'")
    assert panel.selected == "default"


def test_preview_grid_shows_project_images_augmented_and_follows_edits(digits):
    panel = Augmentation(digits, count=6)
    panel.name.value = "upside-down"
    panel.new_button.click()
    panel.add("vertical_flip", 1.0)
    panel.generate(seed=11)
    panel.wait(60)
    assert len(panel.grid.children) == 6
    assert all("eiq-augmentation-preview" in cell._dom_classes for cell in panel.grid.children)
    train_ids = {image.id for image in digits.images(group="train")}
    first = [sample.image_id for sample, _ in panel.tiles]
    assert set(first) <= train_ids and len(set(first)) == 6
    for sample, png in panel.tiles:
        assert np.array_equal(sample.pixels, resized(digits, sample.image_id)[::-1])
        assert Image.open(io.BytesIO(png)).size == (160, 160)
    assert f"image {first[0]}" in panel.grid.children[0].children[1].value

    # an edit re-renders the same draw of images with the stored pipeline
    controls(panel.steps.children[0])["probability"].value = 0.0
    panel.wait(60)
    assert [s.image_id for s, _ in panel.tiles] == first
    for sample, _ in panel.tiles:
        assert np.array_equal(sample.pixels, resized(digits, sample.image_id))

    panel.generate(seed=12)
    panel.wait(60)
    assert [s.image_id for s, _ in panel.tiles] != first

    save_draft(digits, input_size=(32, 32, 1))  # the preview shows what the model will see
    panel.generate(seed=11)
    panel.wait(60)
    assert panel.tiles[0][0].pixels.shape == (32, 32, 1)


def test_preview_draws_the_boxes_moved_with_the_image(shapes):
    panel = Augmentation(shapes, count=4)
    panel.name.value = "mirror"
    panel.new_button.click()
    panel.add("horizontal_flip", 1.0)
    panel.generate(seed=3)
    panel.wait(60)
    assert len(panel.tiles) == 4
    for sample, png in panel.tiles:
        image = shapes.image(sample.image_id)
        boxes = [a for a in shapes.annotations(image=sample.image_id) if a.box is not None]
        assert boxes and sample.box_labels == [str(a.label) for a in boxes]
        expected = [
            [
                a.box.y / image.height,
                1 - (a.box.x + a.box.width) / image.width,
                (a.box.y + a.box.height) / image.height,
                1 - a.box.x / image.width,
            ]
            for a in boxes
        ]
        assert sample.boxes == pytest.approx(np.array(expected), abs=1e-5)
        # the tile shows each box's left edge in its label's colour
        tile = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        colors = panel._label_colors()
        for (ymin, xmin, ymax, _), label in zip(sample.boxes.tolist(), sample.box_labels):
            row, col = int((ymin + ymax) / 2 * tile.shape[0]), round(xmin * tile.shape[1])
            want = tuple(int(colors[label][i : i + 2], 16) for i in (1, 3, 5))
            assert tuple(tile[row, col]) == want
        assert "box" in panel.grid.children[0].children[1].value
