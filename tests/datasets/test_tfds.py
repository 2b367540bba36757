"""The TFDS importer on datasets built locally (no network): split expressions, feature discovery,
classification and detection imports, ambiguity, offline and unprepared datasets, the verified list."""

from __future__ import annotations

import io
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.project import create_project

pytest.importorskip("tensorflow_datasets")

from eiq_lab.datasets.tfds import (
    VERIFIED,
    discover_features,
    import_tfds,
    list_verified,
    parse_split,
)


def _builders():
    try:
        from . import tfds_builders
    except ImportError:  # tests/datasets is not a package: pytest put its folder on sys.path
        import tfds_builders
    return tfds_builders


@pytest.fixture(scope="module")
def tb():
    return _builders()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory, tb):
    """One TFDS data folder holding the three local datasets, prepared once for this module."""
    folder = tmp_path_factory.mktemp("tfds")
    for name in ("eiq_test_digits", "eiq_test_shapes", "eiq_test_two_labels"):
        tb.prepare(name, folder)
    return folder


@pytest.fixture
def project(tmp_path):
    p = create_project(tmp_path / "p.eiqp")
    yield p
    p.close()


def _raw_examples(tb, data_dir, name: str, split: str) -> list[dict]:
    """What TFDS itself holds for `split`, in its order, with the image kept encoded."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(data_dir))
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=False)
    return list(tfds.as_numpy(ds))


# -- split expressions -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "default", "expected"),
    [
        ("60%", "train", "train[:60%]"),
        ("100", "train", "train[:100]"),
        ("200:300", "train", "train[200:300]"),
        ("100%", "train", "train"),
        ("100%", "test", "test"),
        ("2:7", "test", "test[2:7]"),
        ("10%:20%", "train", "train[10%:20%]"),
        (":50", "train", "train[:50]"),
        ("50:", "train", "train[50:]"),
        (" 60 % ", "train", "train[:60%]"),
        (100, "train", "train[:100]"),
        ("12.5%", "train", "train[:12.5%]"),
        ("validation", "test", "validation"),
        ("validation[:50%]", "test", "validation[:50%]"),
        ("test[10%:20%]", "train", "test[10%:20%]"),
        ("train[0%:100%]", "test", "train"),
        ("train+validation", "train", "train+validation"),
        ("train[:80%]+validation", "train", "train[:80%]+validation"),
    ],
)
def test_parse_split_forms(expr, default, expected):
    assert parse_split(expr, default) == expected


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("", ""),
        ("abc%", ""),
        ("60%%", ""),
        ("-5", ""),
        ("12.5", ""),  # a count is a whole number
        ("1:2:3", ""),
        ("101%", "at most 100%"),
        ("300:200", "starts after it ends"),
        ("10:20%", "both percentages"),
        ("test[]", ""),
        ("train[abc]", ""),
        ("train[", ""),
        (None, ""),
        (1.5, ""),
    ],
)
def test_parse_split_refuses_bad_expressions(expr, why):
    with pytest.raises(InputError) as info:
        parse_split(expr, "train")
    message = str(info.value)
    assert repr(expr) in message and why in message
    assert "60%" in message and "200:300" in message and "validation" in message  # the accepted forms


# -- import without TensorFlow ---------------------------------------------------------------


def test_importing_the_module_does_not_load_tensorflow():
    code = "import sys, eiq_lab.datasets.tfds; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# -- classification ----------------------------------------------------------------------------


def test_classification_slices_groups_labels_and_stored_bytes(tb, data_dir, project):
    events = []
    report = import_tfds(
        "eiq_test_digits", project, train_split="60%", test_split="2:7", data_dir=data_dir, progress=events.append
    )
    assert (report.images, report.groups["train"], report.groups["test"], report.groups["none"]) == (23, 18, 5, 0)
    assert (project.count_images(group="train"), project.count_images(group="test")) == (18, 5)
    assert report.full_image == 23 and report.boxes == 0 and report.unlabeled == 0 and not report.problems
    assert set(project.labels()) <= set(tb.DIGIT_NAMES)

    # progress: the total is known up front and reached
    advances = [e for e in events if e.kind == "advance"]
    assert len(advances) == 23 and advances[-1].total == 23 and advances[-1].done == 23

    for split, group, first, last in (("train", "train", 0, 18), ("test", "test", 2, 7)):
        generated = {
            tb.digits_image(split, i).tobytes(): tb.digits_label(i) for i in range(tb.EiqTestDigits.SPLITS[split])
        }
        raw = _raw_examples(tb, data_dir, "eiq_test_digits", f"{split}[{first}:{last}]")
        stored = {img.source: img for img in project.images(group=group)}
        assert sorted(stored) == sorted(f"eiq_test_digits/{split}/{i}" for i in range(first, last))
        for offset, example in enumerate(raw):
            img = stored[f"eiq_test_digits/{split}/{first + offset}"]
            data = img.data()
            assert data == example["image"]  # the PNG bytes TFDS produced, not re-encoded
            assert img.format == "png" and (img.width, img.height) == (16, 12)
            pixels = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
            label = generated[pixels.tobytes()]  # pixels equal one generated array of this split
            assert label == tb.DIGIT_NAMES[example["label"]]
            assert project.annotations_with_image(img) == [(label, None)]


def test_classification_a_second_import_skips_duplicates(data_dir, project):
    import_tfds("eiq_test_digits", project, train_split="10", test_split="0", data_dir=data_dir)
    again = import_tfds("eiq_test_digits", project, train_split="10", test_split="0", data_dir=data_dir)
    assert (again.images, again.duplicates) == (0, 10)
    assert project.count_images() == 10
    assert not again.warnings  # "0" asks for nothing: no warning


def test_group_forces_every_image_into_one_group(data_dir, project):
    report = import_tfds("eiq_test_digits", project, train_split="4", test_split="3", group="test", data_dir=data_dir)
    assert (report.groups["train"], report.groups["test"]) == (0, 7)
    assert project.count_images(group="test") == 7


def test_explicit_split_names_share_one_split_without_overlap(data_dir, project):
    report = import_tfds(
        "eiq_test_digits", project, train_split="train[:20]", test_split="train[20:]", data_dir=data_dir
    )
    assert (report.groups["train"], report.groups["test"]) == (20, 10)
    assert all(img.source.startswith("eiq_test_digits/train/") for img in project.images())


def test_overlapping_selections_are_refused(data_dir, tmp_path):
    with pytest.raises(InputError, match=r"overlap in split 'train'"):
        import_tfds(
            "eiq_test_digits", tmp_path / "o.eiqp", train_split="train[:20]", test_split="train[15:]", data_dir=data_dir
        )
    assert not (tmp_path / "o.eiqp").exists()


def test_a_range_past_the_end_selects_nothing_with_a_warning(data_dir, project):
    report = import_tfds("eiq_test_digits", project, train_split="5", test_split="200:300", data_dir=data_dir)
    assert (report.groups["train"], report.groups["test"]) == (5, 0)
    [warning] = report.warnings
    assert "200:300" in warning.reason and "test has 10" in warning.reason


def test_unknown_split_name_lists_the_splits(data_dir, tmp_path):
    with pytest.raises(NotFoundError, match=r"no split 'validation'.*train, test"):
        import_tfds("eiq_test_digits", tmp_path / "s.eiqp", test_split="validation", data_dir=data_dir)


def test_bad_split_expression_names_the_option(tmp_path):
    with pytest.raises(InputError, match=r"--test-split: bad split expression '1:2:3'"):
        import_tfds("eiq_test_digits", tmp_path / "b.eiqp", test_split="1:2:3")
    assert not (tmp_path / "b.eiqp").exists()


# -- ambiguity -------------------------------------------------------------------------------------


def test_two_label_features_are_refused_with_the_candidates_then_picked(data_dir, tmp_path):
    path = tmp_path / "two.eiqp"
    with pytest.raises(InputError) as info:
        import_tfds("eiq_test_two_labels", path, data_dir=data_dir)
    message = str(info.value)
    assert "'eiq_test_two_labels' has 2 label features: label, coarse_label" in message
    assert "--label-feature" in message and "label_feature=" in message
    assert not path.exists()  # refused before the project was created

    report = import_tfds("eiq_test_two_labels", path, label_feature="coarse_label", data_dir=data_dir)
    assert report.images == 6 and dict(report.labels) == {"small": 3, "large": 3}
    # no test (nor validation) split: the train images only, and a warning that says so
    assert (report.groups["train"], report.groups["test"]) == (6, 0)
    [warning] = report.warnings
    assert "no test split" in warning.reason and warning.severity == "warning"


def test_discover_features_names_the_options_for_each_kind(tb, data_dir):
    import tensorflow_datasets as tfds

    features = tfds.builder("eiq_test_two_labels", data_dir=str(data_dir)).info.features
    with pytest.raises(InputError, match="label features: label, coarse_label"):
        discover_features(features, "classification", dataset="eiq_test_two_labels")
    assert discover_features(features, "classification", label_feature="label") == {
        "image": "image",
        "label": "label",
        "bbox": None,
        "difficult": None,
        "truncated": None,
    }
    with pytest.raises(NotFoundError, match=r"no feature 'fine'.*label, coarse_label|no feature 'fine'.*coarse_label"):
        discover_features(features, "classification", label_feature="fine")
    with pytest.raises(InputError, match=r"no box feature.*--task classification"):
        discover_features(features, "detection")
    with pytest.raises(InputError, match="task must be one of classification, detection"):
        discover_features(features, "segmentation")


def test_classification_of_a_detection_dataset_points_to_the_detection_task(data_dir, tmp_path):
    with pytest.raises(InputError, match=r"one value per object \(objects/label, objects/pose\).*--task detection"):
        import_tfds("eiq_test_shapes", tmp_path / "c.eiqp", data_dir=data_dir)


def test_a_text_feature_can_be_the_label_when_named(data_dir, project):
    report = import_tfds(
        "eiq_test_shapes", project, label_feature="image/filename", train_split="2", test_split="0", data_dir=data_dir
    )
    assert report.images == 2 and all(name.startswith("train_") and name.endswith(".png") for name in report.labels)
    with pytest.raises(InputError, match=r"feature 'image/filename' .* is a Text, not image \(expected Image\)"):
        import_tfds("eiq_test_shapes", project, image_feature="image/filename", data_dir=data_dir)


# -- detection ---------------------------------------------------------------------------------------


CAT_BOX = (4.0, 6.0, 12.0, 12.0)  # TFDS (ymin .25, xmin .125, ymax .75, xmax .5) on 32x24
DOG_BOX = (16.0, 0.0, 16.0, 24.0)  # TFDS (ymin 0, xmin .5, ymax 1, xmax 1) on 32x24


def test_discover_detection_features_takes_label_over_pose(data_dir):
    import tensorflow_datasets as tfds

    features = tfds.builder("eiq_test_shapes", data_dir=str(data_dir)).info.features
    assert discover_features(features, "detection") == {
        "image": "image",
        "label": "objects/label",
        "bbox": "objects/bbox",
        "difficult": "objects/is_difficult",
        "truncated": None,
    }


def test_detection_boxes_in_pixels_without_difficult_objects(data_dir, project):
    report = import_tfds("eiq_test_shapes", project, task="detection", data_dir=data_dir)
    # train 4 images; no test split, so validation (2 images) is the test side
    assert (report.groups["train"], report.groups["test"]) == (4, 2)
    assert report.boxes == 6 and report.excluded["difficult"] == 3 and not report.problems
    assert [str(label) for label in project.labels()] == ["cat"]  # never the poses
    for img in project.images():
        assert (img.width, img.height) == (32, 24)
        assert project.annotations_with_image(img) == [("cat", CAT_BOX)]


def test_detection_with_difficult_objects(tb, data_dir, project):
    report = import_tfds("eiq_test_shapes", project, task="detection", difficult=True, data_dir=data_dir)
    assert report.boxes == 9 and not report.excluded
    assert sorted(project.labels()) == ["cat", "dog"]
    dogs = project.annotations(label="dog")
    assert len(dogs) == 3 and all(tuple(a.box) == DOG_BOX and a.difficult for a in dogs)
    cats = project.annotations(label="cat")
    assert len(cats) == 6 and all(tuple(a.box) == CAT_BOX and not a.difficult for a in cats)
    # each image holds the objects generated for it (images matched by their pixels)
    for split in ("train", "validation"):
        by_pixels = {
            tb.shapes_image(split, i).tobytes(): tb.shapes_objects(split, i)
            for i in range(tb.EiqTestShapes.SPLITS[split])
        }
        for img in project.images(group="train" if split == "train" else "test"):
            expected = by_pixels[np.asarray(img.pil().convert("RGB")).tobytes()]
            got = sorted((str(a.label), tuple(a.box)) for a in img.annotations())
            assert got == sorted((o["label"], o["box"]) for o in expected)


def test_detection_label_feature_picks_another_label(data_dir, project):
    report = import_tfds(
        "eiq_test_shapes", project, task="detection", label_feature="objects/pose", train_split="2", test_split="0",
        data_dir=data_dir,
    )  # fmt: skip
    assert set(report.labels) <= {"left", "right", "frontal"} and report.boxes == 2


# -- unknown, unprepared, offline ---------------------------------------------------------------


def test_unknown_dataset_name_offline(data_dir, tmp_path):
    path = tmp_path / "u.eiqp"
    with pytest.raises(NotFoundError) as info:
        import_tfds("eiq_test_digitz", path, data_dir=data_dir)
    message = str(info.value)
    assert "no TFDS dataset named 'eiq_test_digitz'" in message and "eiq_test_digits" in message  # a close match
    assert isinstance(info.value, InputError)
    assert not path.exists()


def test_known_catalog_dataset_not_prepared_without_download(tmp_path):
    path = tmp_path / "m.eiqp"
    with pytest.raises(InputError, match=r"'mnist' is not prepared in .*--no-download.*--data-dir"):
        import_tfds("mnist", path, data_dir=tmp_path / "empty", download=False)
    assert not path.exists()


def test_download_without_network_says_how_to_work_offline(tb, tmp_path):
    with pytest.raises(InputError) as info:
        import_tfds("eiq_test_offline", tmp_path / "n.eiqp", data_dir=tmp_path / "tfds", download=True)
    message = str(info.value)
    assert message.startswith("could not download 'eiq_test_offline': no network (")
    assert "Download it once where there is network, then pass --data-dir to its folder" in message


# -- the verified list ----------------------------------------------------------------------------


def test_list_verified_rows():
    rows = list_verified()
    names = [row["name"] for row in rows]
    assert {"mnist", "cifar10", "cifar100", "tf_flowers", "voc/2007", "voc/2012", "coco/2017"} <= set(names)
    assert all(set(row["tasks"]) <= {"classification", "detection"} and row["tasks"] for row in rows)
    assert next(r for r in rows if r["name"] == "voc/2007")["tasks"] == ["detection"]


@pytest.mark.parametrize("name", sorted(VERIFIED))
def test_verified_choices_match_the_catalog_features(name, tmp_path):
    """Every verified choice names features that exist with the right types in TFDS's own builder."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=str(tmp_path))  # reads the builder's code only, offline
    for task, choice in VERIFIED[name].items():
        found = discover_features(
            builder.info.features,
            task,
            dataset=name,
            image_feature=choice["image"],
            label_feature=choice["label"],
            bbox_feature=choice.get("bbox"),
        )
        assert found["image"] == choice["image"] and found["label"] == choice["label"]
        if task == "detection":
            assert found["bbox"] == choice["bbox"]
            flags = {"/".join(p) for p in _flag_paths(builder.info.features)}
            assert {choice.get("difficult"), choice.get("truncated")} - {None} <= flags
        else:  # without the choice, only cifar100 (label + coarse_label) is ambiguous
            if name == "cifar100":
                with pytest.raises(InputError, match="label, coarse_label"):
                    discover_features(builder.info.features, task, dataset=name)
            else:
                assert discover_features(builder.info.features, task) == found
        if "test_split" in choice:
            assert choice["test_split"] in ("validation", "train")


def _flag_paths(features, prefix=()):
    import tensorflow_datasets as tfds

    if isinstance(features, tfds.features.Sequence):
        yield from _flag_paths(features.feature, prefix)
    elif isinstance(features, tfds.features.FeaturesDict):
        for key, child in features.items():
            yield from _flag_paths(child, (*prefix, key))
    elif isinstance(features, tfds.features.Tensor) and features.np_dtype == np.bool_:
        yield prefix
