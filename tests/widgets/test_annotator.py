"""The Annotator panel on a real tiny project: boxes drawn in the box widget land in the project in image
pixels, full-image labels, the shared label list, delete, hover highlight, Train / Test, next unlabeled."""

from __future__ import annotations

import pytest
from project.imaging import encode_image

from eiq_lab.project import Box, create_project
from eiq_lab.widgets.annotator import PALETTE, Annotator


@pytest.fixture
def project(tmp_path):
    """Five 40x30 images (ids 1-5); shown at 16x (640x480) in the annotator."""
    p = create_project(tmp_path / "annotate.eiqp")
    p.add_images([encode_image("PNG", (40, 30), (40 * i, 0, 0)) for i in range(5)])
    yield p
    p.close()


def draw(annotator: Annotator, x: int, y: int, width: int, height: int) -> None:
    """What the box widget reports when the user drags a new box (shown pixels, the widget's current label):
    a box with no area when the mouse goes down, then the drawn box when it goes up."""
    before = [dict(b) for b in annotator.canvas.bboxes]
    pressed = {"x": x, "y": y, "width": 0, "height": 0, "label": annotator.canvas.label}
    annotator.canvas.bboxes = [*before, pressed]
    annotator.canvas.bboxes = [*before, {**pressed, "width": width, "height": height}]


def test_a_drawn_box_is_saved_in_image_pixels(project):
    annotator = Annotator(project, 1)
    assert annotator.scale == 16.0
    annotator.add_label("cat", "#ff0000")
    assert annotator.canvas.label == "cat"
    draw(annotator, 16, 32, 160, 96)
    [ann] = project.annotations(image=1)
    assert str(ann.label) == "cat" and ann.box == Box(1.0, 2.0, 10.0, 6.0)
    assert "saved" in annotator.status.value
    # the widget shows what the project holds, and the list names the box
    assert annotator.canvas.bboxes == [{"x": 16, "y": 32, "width": 160, "height": 96, "label": "cat"}]
    assert "cat" in annotator.boxes_list.children[0].children[0].value
    # a box dragged past the border keeps the part on the image
    draw(annotator, 600, 400, 100, 200)
    assert project.annotations(image=1)[1].box == Box(37.5, 25.0, 2.5, 5.0)


def test_a_click_without_a_drag_saves_nothing(project):
    project.add_label("cat")
    annotator = Annotator(project, 2)
    annotator.canvas.bboxes = [{"x": 30, "y": 30, "width": 0, "height": 0, "label": "cat"}]
    assert project.annotations(image=2) == []
    annotator.canvas.bboxes = []  # the widget drops it
    assert project.annotations(image=2) == [] and "eiq-error" not in annotator.status.value
    draw(annotator, 32, 48, 64, 32)
    assert [a.box for a in project.annotations(image=2)] == [Box(2.0, 3.0, 4.0, 2.0)]


def test_drawing_without_a_label_asks_for_one_and_saves_nothing(project):
    annotator = Annotator(project, 2)
    assert annotator.label_picker.options == ()
    draw(annotator, 10, 10, 50, 50)
    assert project.annotations(image=2) == []
    assert "add a label first" in annotator.status.value
    assert annotator.canvas.bboxes == []  # the drawing is put back to what the project holds


def test_move_and_delete_boxes_from_the_widget_and_the_list(project):
    project.add_label("cat")
    project.add_label("dog")
    first = project.add_annotation(3, "cat", (1, 1, 10, 10))
    second = project.add_annotation(3, "dog", (20, 10, 10, 10))
    annotator = Annotator(project, 3)
    shown = [dict(b) for b in annotator.canvas.bboxes]
    assert shown[1] == {"x": 320, "y": 160, "width": 160, "height": 160, "label": "dog"}
    # resize the first box in the widget (drag a corner)
    shown[0]["width"] = 320
    annotator.canvas.bboxes = shown
    assert project.annotation(first.id).box == Box(1.0, 1.0, 20.0, 10.0)
    assert project.annotation(second.id).box == Box(20.0, 10.0, 10.0, 10.0)
    # the widget's own delete (x on the box)
    annotator.canvas.bboxes = [annotator.canvas.bboxes[1]]
    assert [a.id for a in project.annotations(image=3)] == [second.id]
    # the list's delete button
    delete = annotator.boxes_list.children[0].children[1]
    delete.click()
    assert project.annotations(image=3) == []
    assert not project.image(3).annotated


def test_full_image_labels_and_the_shared_label_list(project):
    project.add_label("cat", "#123456")
    annotator = Annotator(project, 1)
    assert annotator.label_picker.options == ("cat",)
    assert annotator.canvas.classes == ["cat"] and annotator.canvas.colors == ["#123456"]
    assert annotator.canvas.label == "cat"
    annotator.new_label.value = "dog"
    annotator.new_color.value = "#00aa00"
    annotator.add_label_button.click()
    assert [(str(label), label.color) for label in project.labels()] == [("cat", "#123456"), ("dog", "#00aa00")]
    assert annotator.label_picker.value == "dog" and annotator.canvas.label == "dog"
    # the current label leads the widget's classes (the widget falls back to its first class on each change)
    assert annotator.canvas.classes == ["dog", "cat"] and annotator.canvas.colors == ["#00aa00", "#123456"]
    annotator.add_full_button.click()
    assert project.annotations_with_image(1) == [("dog", None)]
    annotator.add_full_button.click()
    assert project.annotations_with_image(1) == [("dog", None)]
    assert "already has the full-image label dog" in annotator.status.value
    annotator.label_picker.value = "cat"
    annotator.add_full_button.click()
    assert project.annotations_with_image(1) == [("dog", None), ("cat", None)]
    row = annotator.full_list.children[0]
    row.children[1].click()
    assert project.annotations_with_image(1) == [("cat", None)]
    # an empty name is refused in the status line
    annotator.new_label.value = "  "
    annotator.add_label_button.click()
    assert "type a label name first" in annotator.status.value and len(project.labels()) == 2


def test_labels_without_a_colour_get_palette_colours(project):
    project.add_label("a")
    project.add_label("b")
    annotator = Annotator(project, 1)
    assert annotator.canvas.colors == [PALETTE[0], PALETTE[1]]


def test_hovering_a_row_highlights_its_box(project):
    project.add_annotation(1, "cat", (1, 1, 10, 10))
    second = project.add_annotation(1, "dog", (20, 10, 10, 10))
    annotator = Annotator(project, 1)
    rows = annotator.boxes_list.children
    watcher = annotator._row_events[1]
    watcher._dom_handlers({"type": "mouseenter"})  # what ipyevents delivers when the mouse enters the row
    assert annotator.canvas.selected_index == 1 and annotator.highlighted == second.id
    assert "eiq-annotator-row-active" in rows[1]._dom_classes
    assert "eiq-annotator-row-active" not in rows[0]._dom_classes
    watcher._dom_handlers({"type": "mouseleave"})
    assert annotator.canvas.selected_index == -1 and annotator.highlighted is None
    # selecting a box in the drawing highlights its row
    annotator.canvas.selected_index = 0
    assert "eiq-annotator-row-active" in rows[0]._dom_classes


def test_train_and_test_buttons_set_the_group(project):
    changes = []
    annotator = Annotator(project, 4)
    annotator.on_change = changes.append
    annotator.train_button.click()
    assert project.image(4).grouping == "train" and annotator.train_button.button_style == "info"
    annotator.test_button.click()
    assert project.image(4).grouping == "test"
    assert annotator.test_button.button_style == "info" and annotator.train_button.button_style == ""
    assert "<b>test</b>" in annotator.info.value
    assert changes == [4, 4]


def test_next_and_previous_unlabeled(project):
    project.add_annotation(2, "cat")
    project.add_annotation(4, "cat")
    annotator = Annotator(project)
    assert annotator.image.id == 1  # the first unlabeled image
    annotator.next_unlabeled_button.click()
    assert annotator.image.id == 3
    annotator.next_unlabeled_button.click()
    assert annotator.image.id == 5
    annotator.next_unlabeled_button.click()
    assert annotator.image.id == 1  # wraps around
    annotator.prev_unlabeled_button.click()
    assert annotator.image.id == 5
    annotator.next_button.click()
    assert "no next image" in annotator.status.value and annotator.image.id == 5
    annotator.prev_button.click()
    assert annotator.image.id == 4
    # labelling the last unlabeled images leaves nothing to move to
    for image_id in (1, 3, 5):
        project.add_annotation(image_id, "cat")
    annotator.next_unlabeled_button.click()
    assert "no other unlabeled image" in annotator.status.value


def test_a_large_image_is_shown_reduced_and_boxes_scale_back(tmp_path):
    with create_project(tmp_path / "big.eiqp") as project:
        project.add_image(encode_image("JPEG", (1280, 960), (0, 90, 0)))
        annotator = Annotator(project)
        assert annotator.scale == 0.5
        annotator.add_label("tree")
        draw(annotator, 100, 50, 200, 100)
        assert project.annotations(image=1)[0].box == Box(200.0, 100.0, 400.0, 200.0)


def test_an_empty_project_says_so(tmp_path):
    with create_project(tmp_path / "empty.eiqp") as project:
        annotator = Annotator(project)
        assert annotator.image is None and annotator.empty.layout.display == "block"
        annotator.add_full_button.click()
        assert "no image is shown" in annotator.status.value
