"""The guide's CIFAR-10 uploader (section 3.3.4), run with only its import line changed, on a TFDS
dataset built locally: tfds.load -> batches -> tf.io.encode_jpeg -> add_images -> add_annotation."""

from __future__ import annotations

import runpy

import pytest

from eiq_lab import datastore as ds

pytest.importorskip("tensorflow_datasets")

# The guide's script shape; `{...}` fields are its configuration (dataset, data folder, project
# folder, class names), filled in below. Only the first line differs from the guide's
# `import deepview.datastore as ds`.
UPLOADER = """from eiq_lab import datastore as ds
import os

import tensorflow as tf
import tensorflow_datasets as tfds

labels = {labels!r}


def import_dataset(project, dataset, grouping):
    for batch in dataset:
        images = []
        for image in batch['image']:
            images.append(tf.io.encode_jpeg(image).numpy())
        images = project.add_images(images, grouping)
        for image, label in zip(images, batch['label']):
            project.add_annotation(image, labels[label])


if __name__ == '__main__':
    project = ds.create_project(os.path.join({folder!r}, 'cifar10.eiqp'))

    train = tfds.load({name!r}, split='train', data_dir={data_dir!r})
    test = tfds.load({name!r}, split='test', data_dir={data_dir!r})

    train = train.batch(4).prefetch(1)
    test = test.batch(4).prefetch(1)

    import_dataset(project, train, 'train')
    import_dataset(project, test, 'test')
"""


def _builders():
    try:
        from . import tfds_builders
    except ImportError:  # tests/datasets is not a package: pytest put its folder on sys.path
        import tfds_builders
    return tfds_builders


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """The local digits dataset (train 30, test 10), prepared once for this module."""
    tb = _builders()
    folder = tmp_path_factory.mktemp("tfds")
    tb.prepare("eiq_test_digits", folder)
    return tb, folder


def test_the_guides_uploader_runs_with_only_its_import_line_changed(digits, tmp_path):
    tb, data_dir = digits
    assert UPLOADER.startswith("from eiq_lab import datastore as ds\n")
    script = tmp_path / "CIFAR_uploader.py"
    script.write_text(
        UPLOADER.format(labels=tb.DIGIT_NAMES, folder=str(tmp_path), name="eiq_test_digits", data_dir=str(data_dir))
    )
    runpy.run_path(str(script), run_name="__main__")

    with ds.open_project(tmp_path / "cifar10.eiqp") as project:
        assert project.annotated_images_with_grouping_count("train") == 30
        assert project.annotated_images_with_grouping_count("test") == 10
        assert project.count_images(annotated=False) == 0
        assert sorted(project.labels()) == sorted(tb.DIGIT_NAMES)
        for group, n in (("train", 30), ("test", 10)):
            expected = {name: sum(tb.digits_label(i) == name for i in range(n)) for name in tb.DIGIT_NAMES}
            got = {name: project.count_images(group=group, label=name) for name in tb.DIGIT_NAMES}
            assert got == expected
            assert len(project.annotation_ids_with_grouping(group)) == n  # one full-image label each
        some = project.image_with_id(project.annotated_images_with_grouping("test")[0])
        assert some.format == "jpeg" and some.get_size() == (16, 12)
        [(label, box)] = project.annotations_with_image(some)
        assert label in tb.DIGIT_NAMES and box is None
        assert project.sample(project.annotation_ids_with_grouping("test")[0], (8, 8)).size == (8, 8)
