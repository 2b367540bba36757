"""The guide's datastore API (`from eiq_lab import datastore as ds`): the calls a custom import
script makes, shaped like the guide's CIFAR-10 uploader, and the reads the guide lists."""

from __future__ import annotations

import pytest

from eiq_lab import datastore as ds
from eiq_lab.errors import NotFoundError

from .imaging import BLUE, RED, encode_image

SCENE = (40, 30)  # width, height
BOX = (10, 5, 10, 15)  # x, y, width, height of the blue patch


class EncodedTensor:
    """Stands in for ``tf.io.encode_jpeg(image)``: the encoded bytes come from ``.numpy()``."""

    def __init__(self, data: bytes):
        self._data = data

    def numpy(self) -> bytes:
        return self._data


def _batches(n_batches: int, batch: int):
    """Batches of (image, label) as a tfds pipeline would hand them over."""
    for b in range(n_batches):
        yield [(encode_image("PNG", (8, 8), (b * 40, i * 20, 100)), f"class{i % 3}") for i in range(batch)]


@pytest.mark.parametrize("suffix", [".eiqp", ".deepview"])
def test_a_cifar_uploader_shaped_script(tmp_path, suffix):
    path = tmp_path / f"cifar10{suffix}"
    project = ds.create_project(str(path))

    def import_dataset(batches, grouping):
        for batch in batches:
            images = [EncodedTensor(data).numpy() for data, _ in batch]
            for image, (_, label) in zip(project.add_images(images, grouping), batch, strict=True):
                project.add_annotation(image, label)

    import_dataset(_batches(2, 6), "train")
    import_dataset(_batches(1, 6), "test")
    project.close()

    with ds.open_project(path) as project:
        assert sorted(project.labels()) == ["class0", "class1", "class2"]
        assert project.annotated_images_with_grouping_count("train") == 12
        assert project.annotated_images_with_grouping_count("test") == 6
        assert len(project.annotated_images_with_grouping("train")) == 12
        first = project.annotated_images_with_grouping("train")[0]
        assert project.annotations_with_image(first) == [("class0", None)]
        assert project.image_with_id(first).get_size() == (8, 8)


@pytest.fixture
def scene(project):
    """One train image (red with a blue patch at BOX) with a box and a full-image label,
    one test image with a full-image label, and one ungrouped, unlabeled image."""
    data = encode_image("PNG", SCENE, RED, box=BOX, box_color=BLUE)
    [img] = project.add_images([data], "train")
    box = project.add_annotation(img, "patch", BOX)
    full = project.add_annotation(img, "scene")
    [other] = project.add_images([encode_image("PNG", (16, 16), BLUE)], "test")
    other_ann = project.add_annotation(other, "scene")
    [loose] = project.add_images([encode_image("JPEG", (16, 16))])
    return project, img, box, full, other, other_ann, loose


def test_image_with_id_scaled_and_get_size(scene):
    project, img, *_ = scene
    found = project.image_with_id(img.id)
    assert found.get_size() == SCENE
    scaled = found.scaled(20, 15)
    assert (scaled.size, scaled.mode) == ((20, 15), "RGB")
    assert scaled.getpixel((1, 1)) == RED  # far from the patch
    assert scaled.getpixel((7, 6)) == BLUE  # the middle of the patch, at half scale
    with pytest.raises(NotFoundError):
        project.image_with_id(12345)


def test_annotations_with_image(scene):
    project, img, _box, _full, other, _, loose = scene
    assert project.annotations_with_image(img.id) == [("patch", (10.0, 5.0, 10.0, 15.0)), ("scene", None)]
    assert project.annotations_with_image(other) == [("scene", None)]
    assert project.annotations_with_image(loose.id) == []


def test_images_and_annotations_by_grouping(scene):
    project, img, box, full, other, other_ann, _loose = scene
    assert project.annotated_images_with_grouping("train") == [img.id]
    assert project.annotated_images_with_grouping("test") == [other.id]
    assert project.annotated_images_with_grouping(None) == []  # the ungrouped image is unlabeled
    assert project.annotated_images_with_grouping_count("train") == 1
    assert project.annotated_images_with_grouping_count(None) == 0
    assert project.annotation_ids_with_grouping("train") == [box.id, full.id]
    assert project.annotation_ids_with_grouping("test") == [other_ann.id]
    assert project.annotation_ids_with_grouping(None) == []


def test_sample_crops_the_box(scene):
    project, _img, box, *_ = scene
    crop = project.sample(box.id, (10, 15))
    assert (crop.size, crop.mode) == ((10, 15), "RGB")
    assert {colour for _, colour in crop.getcolors()} == {BLUE}  # only the patch, none of the red around it
    small = project.sample(box, (4, 6))
    assert small.size == (4, 6)
    assert {colour for _, colour in small.getcolors()} == {BLUE}


def test_sample_of_a_full_image_label_is_the_whole_image(scene):
    project, _img, _box, full, *_ = scene
    whole = project.sample(full.id, SCENE)
    assert whole.size == SCENE
    assert whole.getpixel((0, 0)) == RED
    assert whole.getpixel((39, 29)) == RED
    assert whole.getpixel((15, 12)) == BLUE
    colours = {colour for _, colour in whole.getcolors()}
    assert colours == {RED, BLUE}
    with pytest.raises(NotFoundError):
        project.sample(99999, (8, 8))


def test_labels_and_exports(scene):
    project, img, *_ = scene
    assert project.labels() == ["patch", "scene"]
    assert all(isinstance(label, ds.Label) for label in project.labels())
    assert isinstance(project.image_with_id(img.id), ds.ProjectImage)
    assert isinstance(project, ds.Project)
