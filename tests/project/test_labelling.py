"""Labels (shared by boxes and full-image annotations) and annotations: create, rename, merge,
delete, boxes checked against the image, and the images' "annotated" state kept in step."""

from __future__ import annotations

import pytest

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.project import Annotation, Box, Label, create_project

from .imaging import encode_image, noise_image

# -- labels ---------------------------------------------------------------------------------


def test_label_is_a_str_with_an_id(project):
    cat = project.add_label("cat")
    assert isinstance(cat, str)
    assert isinstance(cat, Label)
    assert cat == "cat"
    assert isinstance(cat.id, int)
    assert "cat" in project.labels()
    assert {cat: 1}["cat"] == 1  # hashes like its name
    assert project.label("cat").id == cat.id
    assert project.label(cat.id) == "cat"


def test_add_label_gets_or_creates(project):
    cat = project.add_label("cat", color="#ff0000")
    dog = project.add_label("dog")
    again = project.add_label("  cat ")
    assert again.id == cat.id
    assert again.color == "#ff0000"
    assert dog.id != cat.id
    assert project.labels() == ["cat", "dog"]
    assert [lab.id for lab in project.labels()] == [cat.id, dog.id]


@pytest.mark.parametrize("name", ["", "   "])
def test_empty_label_names_are_refused(project, name):
    with pytest.raises(InputError, match="empty"):
        project.add_label(name)
    assert project.labels() == []


def test_unknown_label_lookup_lists_the_labels(project):
    project.add_label("cat")
    project.add_label("dog")
    with pytest.raises(NotFoundError, match="bird") as caught:
        project.label("bird")
    assert "cat, dog" in str(caught.value)
    with pytest.raises(NotFoundError):
        project.label(999)


def test_a_label_from_another_project_is_matched_by_name(tmp_path, project):
    with create_project(tmp_path / "other.eiqp") as other:
        other.add_label("zebra")
        other_dog = other.add_label("dog")
    project.add_label("dog")
    project.add_label("cat")
    assert project.label(other_dog) == "dog"
    assert project.add_label(other_dog) == "dog"
    [img] = project.add_images([encode_image()])
    ann = project.add_annotation(img, other_dog)
    assert ann.label == "dog"
    assert project.annotations_with_image(img) == [("dog", None)]
    assert project.labels() == ["dog", "cat"]


def test_rename_keeps_the_id_and_the_annotations(project):
    [img] = project.add_images([encode_image()])
    cat = project.add_label("cat")
    project.add_annotation(img, "cat", (1, 1, 4, 4))
    renamed = project.update_label("cat", name="kitty", color="#00ff00")
    assert (renamed, renamed.id, renamed.color) == ("kitty", cat.id, "#00ff00")
    assert project.labels() == ["kitty"]
    assert project.annotations_with_image(img) == [("kitty", (1.0, 1.0, 4.0, 4.0))]
    with pytest.raises(NotFoundError):
        project.label("cat")
    assert project.update_label(cat.id, color="#0000ff") == "kitty"
    assert project.label("kitty").color == "#0000ff"


def test_rename_onto_an_existing_name_merges(project):
    a, b = project.add_images([noise_image(1), noise_image(2)])
    cat = project.add_label("cat")
    project.add_annotation(a, "cat")
    project.add_annotation(b, "kitty", (0, 0, 5, 5))
    project.add_annotation(b, "kitty")
    merged = project.update_label("kitty", name="cat")
    assert (merged, merged.id) == ("cat", cat.id)
    assert project.labels() == ["cat"]
    assert project.count_images(label="cat") == 2
    assert project.annotations_with_image(b) == [("cat", (0.0, 0.0, 5.0, 5.0)), ("cat", None)]


def test_rename_to_empty_is_refused(project):
    project.add_label("cat")
    with pytest.raises(InputError):
        project.update_label("cat", name=" ")
    assert project.labels() == ["cat"]


def test_delete_label_is_refused_while_used_unless_forced(project):
    a, b = project.add_images([noise_image(1), noise_image(2)])
    project.add_annotation(a, "cat")
    project.add_annotation(a, "dog")
    project.add_annotation(b, "cat", (2, 2, 3, 3))
    with pytest.raises(InputError, match=r"2 annotation.*force"):
        project.delete_label("cat")
    assert project.labels() == ["cat", "dog"]
    assert len(project.annotations()) == 3

    assert project.delete_label("cat", force=True) == 2
    assert project.labels() == ["dog"]
    assert project.annotations_with_image(a) == [("dog", None)]
    assert project.annotations(image=b) == []
    assert project.count_images(annotated=False) == 1  # b lost its only annotation
    assert [i.id for i in project.images(annotated=True)] == [a.id]


def test_delete_an_unused_label(project):
    project.add_label("bird")
    assert project.delete_label("bird") == 0
    assert project.labels() == []
    with pytest.raises(NotFoundError):
        project.delete_label("bird")


# -- annotations ----------------------------------------------------------------------------


def test_full_image_and_box_annotations(project):
    [img] = project.add_images([encode_image("PNG", (32, 24))], "train")
    full = project.add_annotation(img, "cat")
    box = project.add_annotation(img, "cat", (1.5, 2.25, 10.5, 8.75), difficult=True)
    assert isinstance(full, Annotation)
    assert full.box is None
    assert box.box == Box(1.5, 2.25, 10.5, 8.75)  # decimals kept
    assert (box.image_id, box.label, box.difficult, box.truncated) == (img.id, "cat", True, False)
    assert project.annotation(box.id) == box
    assert project.annotations(image=img) == [full, box]
    assert project.annotations_with_image(img.id) == [("cat", None), ("cat", (1.5, 2.25, 10.5, 8.75))]
    assert project.labels() == ["cat"]  # one label shared by both kinds
    assert project.image(img.id).annotated is True


def test_annotation_by_label_id(project):
    [img] = project.add_images([encode_image()])
    dog = project.add_label("dog")
    assert project.add_annotation(img, dog.id).label == "dog"
    with pytest.raises(NotFoundError):
        project.add_annotation(img, 999)


def test_box_touching_the_edges_is_accepted(project):
    [img] = project.add_images([encode_image("PNG", (32, 24))])
    assert project.add_annotation(img, "whole", (0, 0, 32, 24)).box == (0, 0, 32, 24)


@pytest.mark.parametrize(
    "box",
    [
        (30, 0, 5, 5),  # past the right edge of a 32-wide image
        (0, 20, 5, 5),  # past the bottom of a 24-high image
        (-1, 0, 5, 5),
        (0, -0.5, 5, 5),
        (40, 30, 1, 1),
        (5, 5, 0, 5),  # no area
        (5, 5, 5, 0),
        (10, 10, -4, 5),  # xmin > xmax
        (0, 0, 33, 24),
        (float("nan"), 0, 5, 5),
        (0, float("nan"), 5, 5),
        (0, 0, float("inf"), 5),
        (1, 2, 3),
        (1, 2, 3, 4, 5),
        ("a", 0, 5, 5),
        42,  # not a sequence
    ],
)
def test_bad_boxes_are_refused_and_nothing_is_added(project, box):
    [img] = project.add_images([encode_image("PNG", (32, 24))])
    with pytest.raises(InputError):
        project.add_annotation(img, "cat", box)
    assert project.annotations() == []
    assert project.labels() == []  # the label it would have created is not left behind
    assert project.image(img.id).annotated is False


def test_annotating_a_missing_image_is_not_found(project):
    with pytest.raises(NotFoundError, match="77"):
        project.add_annotation(77, "cat")
    assert project.labels() == []


def test_update_annotation_label_box_and_back_to_full_image(project):
    [img] = project.add_images([encode_image("PNG", (32, 24))])
    ann = project.add_annotation(img, "cat", (1, 1, 4, 4))
    relabelled = project.update_annotation(ann, label="dog")
    assert (relabelled.label, relabelled.box) == ("dog", (1, 1, 4, 4))
    assert project.labels() == ["cat", "dog"]
    moved = project.update_annotation(ann.id, box=(10, 10, 5.5, 6))
    assert (moved.label, moved.box) == ("dog", (10, 10, 5.5, 6))
    full = project.update_annotation(ann, box=None)
    assert full.box is None
    assert project.annotations_with_image(img) == [("dog", None)]
    cat_id = project.label("cat").id
    assert project.update_annotation(ann, label=cat_id, box=(0, 0, 2, 2)).as_pair() == ("cat", (0, 0, 2, 2))
    assert project.image(img.id).annotated is True


def test_update_annotation_with_a_bad_box_changes_nothing(project):
    [img] = project.add_images([encode_image("PNG", (32, 24))])
    ann = project.add_annotation(img, "cat", (1, 1, 4, 4))
    with pytest.raises(InputError):
        project.update_annotation(ann, label="dog", box=(30, 20, 10, 10))
    assert project.annotation(ann.id) == ann
    assert project.labels() == ["cat"]
    with pytest.raises(NotFoundError):
        project.update_annotation(9999, label="dog")


def test_annotated_state_follows_adds_and_deletes(project):
    a, b, c = project.add_images([noise_image(i) for i in range(3)])
    assert project.count_images(annotated=False) == 3
    first = project.add_annotation(a, "cat")
    second = project.add_annotation(a, "cat", (0, 0, 3, 3))
    project.add_annotation(b, "dog")
    assert project.count_images(annotated=False) == 1
    assert [i.id for i in project.images(annotated=False)] == [c.id]
    project.delete_annotation(first)
    assert project.count_images(annotated=True) == 2  # a still has its box
    project.delete_annotation(second.id)
    assert project.count_images(annotated=False) == 2
    assert project.image(a.id).annotated is False
    project.update_annotation(project.annotations(image=b)[0], box=(0, 0, 1, 1))
    assert project.image(b.id).annotated is True
    with pytest.raises(NotFoundError):
        project.delete_annotation(first)


def test_deleting_an_image_deletes_its_annotations(project):
    a, b = project.add_images([noise_image(1), noise_image(2)])
    gone = [project.add_annotation(a, "cat"), project.add_annotation(a, "dog", (1, 1, 2, 2))]
    kept = project.add_annotation(b, "cat")
    project.delete_image(a)
    for ann in gone:
        with pytest.raises(NotFoundError):
            project.annotation(ann.id)
    assert project.annotations() == [kept]
    assert project.labels() == ["cat", "dog"]  # labels stay; only their uses went
    assert project.info()["labels"][1]["images"]["total"] == 0


def test_annotation_filters(project):
    [tr] = project.add_images([noise_image(1)], "train")
    [te] = project.add_images([noise_image(2)], "test")
    a1 = project.add_annotation(tr, "cat")
    a2 = project.add_annotation(tr, "dog", (0, 0, 4, 4))
    a3 = project.add_annotation(te, "cat", (1, 1, 4, 4))
    assert project.annotations() == [a1, a2, a3]
    assert project.annotations(label="cat") == [a1, a3]
    assert project.annotations(group="test") == [a3]
    assert project.annotations(group=None) == []
    assert project.annotations(boxes=True) == [a2, a3]
    assert project.annotations(boxes=False) == [a1]
    assert project.annotations(image=tr, boxes=True) == [a2]
    assert project.image(tr.id).annotations() == [a1, a2]
