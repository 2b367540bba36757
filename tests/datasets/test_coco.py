"""COCO import and export: boxes, full-image labels, groups, crowd, archives, bad input, round trip."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eiq_lab.datasets.coco import export_coco, import_coco
from eiq_lab.datasets.export import export_project
from eiq_lab.errors import ImportAborted, InputError
from eiq_lab.events import Progress
from eiq_lab.project import Project, create_project

W, H = 40, 30


def encoded(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (W, H)) -> bytes:
    """A distinct image per seed; size is (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def contents(project: Project) -> set[tuple]:
    """What must survive a round trip: (image sha256, label, box rounded to 1e-3, group)."""
    rows = set()
    for image in project.images():
        anns = project.annotations(image=image)
        for ann in anns:
            box = None if ann.box is None else tuple(round(v, 3) for v in ann.box)
            rows.add((image.sha256, str(ann.label), box, image.grouping))
        if not anns:
            rows.add((image.sha256, None, None, image.grouping))
    return rows


def pairs(project: Project, source: str) -> list[tuple[str, tuple | None]]:
    [image] = [i for i in project.images() if i.source == source]
    return sorted(project.annotations_with_image(image), key=str)


def write_coco(folder: Path, name: str, images=(), annotations=(), categories=(), **extra) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"images": list(images), "annotations": list(annotations), "categories": list(categories), **extra}
    path = folder / name
    path.write_text(json.dumps(doc))
    return path


CATEGORIES = [{"id": 1, "name": "cat", "supercategory": "animal"}, {"id": 3, "name": "dog"}]


@pytest.fixture
def dataset(tmp_path):
    """instances_val2017.json beside a.jpg, sub/b.png and c.jpg (unlabeled); b has a crowd box."""
    root = tmp_path / "coco"
    (root / "sub").mkdir(parents=True)
    files = {"a.jpg": encoded(1), "sub/b.png": encoded(2, "PNG"), "c.jpg": encoded(3)}
    for name, data in files.items():
        (root / name).write_bytes(data)
    images = [
        {"id": 10, "file_name": "a.jpg", "width": W, "height": H},
        {"id": 11, "file_name": "sub/b.png", "width": W, "height": H, "labels": ["night"]},
        {"id": 12, "file_name": "c.jpg", "width": W, "height": H},
    ]
    annotations = [
        {"id": 1, "image_id": 10, "category_id": 1, "bbox": [1.5, 2, 10, 8.25], "area": 82.5, "iscrowd": 0},
        {"id": 2, "image_id": 10, "category_id": 3, "bbox": [0, 0, 40, 30], "iscrowd": 0},
        {"id": 3, "image_id": 11, "category_id": 3, "bbox": [30, 20, 10, 10], "iscrowd": 0},
        {"id": 4, "image_id": 11, "category_id": 1, "bbox": [5, 5, 4, 4], "iscrowd": 1},
    ]
    path = write_coco(root, "instances_val2017.json", images, annotations, CATEGORIES)
    return path, files


def test_import_reads_pixel_boxes_full_image_labels_and_the_files_group(dataset, tmp_path):
    path, files = dataset
    events = []
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project, progress=Progress(events.append))
        assert (report.images, report.boxes, report.full_image, report.unlabeled) == (3, 3, 1, 1)
        assert report.excluded == {"crowd": 1} and not report.problems
        assert pairs(project, "a.jpg") == [("cat", (1.5, 2.0, 10.0, 8.25)), ("dog", (0.0, 0.0, 40.0, 30.0))]
        assert pairs(project, "sub/b.png") == [("dog", (30.0, 20.0, 10.0, 10.0)), ("night", None)]
        assert {i.grouping for i in project.images()} == {"test"}  # "val2017" in the file name
        assert {i.sha256 for i in project.images()} == {sha(d) for d in files.values()}
    assert events[-1].kind == "end" and events[0].kind == "start"


def test_crowd_boxes_are_kept_flagged_difficult_when_asked_and_group_can_be_forced(dataset, tmp_path):
    path, _ = dataset
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project, crowd=True, group="train")
        assert report.boxes == 4 and not report.excluded
        [crowd] = [a for a in project.annotations() if a.difficult]
        assert (str(crowd.label), tuple(crowd.box)) == ("cat", (5.0, 5.0, 4.0, 4.0))
        assert project.count_images(group="train") == 3


def test_images_from_a_zip_with_a_top_folder(dataset, tmp_path):
    path, files = dataset
    archive = tmp_path / "images.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"val2017/{name}", data)
        zf.writestr("../evil.jpg", files["a.jpg"])
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project, images=archive)
        assert (report.images, report.boxes) == (3, 3)
        assert [p.file for p in report.problems] == ["../evil.jpg"]  # refused by the source, never read
        assert pairs(project, "a.jpg")[0] == ("cat", (1.5, 2.0, 10.0, 8.25))


def test_round_trip_through_export_keeps_images_labels_boxes_and_groups(dataset, tmp_path):
    path, _ = dataset
    first = create_project(tmp_path / "first.eiqp")
    import_coco(path, first, crowd=True)
    ids = [i.id for i in first.images()]
    first.set_grouping(ids[0], "train")
    first.set_grouping(ids[2], None)
    [img] = first.add_images([encoded(9)], "train")
    first.add_annotation(img, "dog", (0.125, 1.0 / 3, 12.5, 7.0))
    expected = contents(first)
    out = tmp_path / "out"
    report = export_project(first, "coco", out)
    first.close()
    assert (report.images, report.boxes, report.full_image) == (4, 5, 1)
    names = sorted(p.name for p in (out / "annotations").iterdir())
    assert names == ["instances_test.json", "instances_train.json", "instances_ungrouped.json"]
    assert len(list((out / "images").iterdir())) == 4
    doc = json.loads((out / "annotations" / "instances_train.json").read_text())
    assert [c["id"] for c in doc["categories"]] == [1, 2, 3] and doc["licenses"] == []
    assert {c["name"] for c in doc["categories"]} == {"cat", "dog", "night"}
    assert all((out / "images" / r["file_name"]).is_file() and r["width"] == W for r in doc["images"])
    ann = doc["annotations"][0]
    assert set(ann) == {"id", "image_id", "category_id", "bbox", "area", "iscrowd", "segmentation"}
    assert ann["iscrowd"] == 0 and ann["area"] == pytest.approx(ann["bbox"][2] * ann["bbox"][3])

    with create_project(tmp_path / "second.eiqp") as second:
        for instances in sorted((out / "annotations").iterdir()):
            import_coco(instances, second)  # images default to OUT/images beside OUT/annotations
        assert contents(second) == expected


def test_export_coco_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.txt").write_text("keep me")
    with create_project(tmp_path / "p.eiqp") as project, pytest.raises(InputError, match="not empty"):
        export_coco(project, tmp_path / "out")


# -- bad input ------------------------------------------------------------------------------------


def test_malformed_json_is_refused_before_a_project_is_created(tmp_path):
    bad = tmp_path / "instances.json"
    bad.write_text('{"images": [,]}')
    with pytest.raises(InputError, match=r"not valid JSON.*line 1"):
        import_coco(bad, tmp_path / "new.eiqp")
    assert not (tmp_path / "new.eiqp").exists()


@pytest.mark.parametrize("missing", ["images", "annotations", "categories"])
def test_a_missing_key_is_named(tmp_path, missing):
    doc = {"images": [], "annotations": [], "categories": []}
    del doc[missing]
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    with create_project(tmp_path / "p.eiqp") as project, pytest.raises(InputError, match=f"missing key '{missing}'"):
        import_coco(path, project)


def test_wrong_top_level_types_are_refused(tmp_path):
    path = tmp_path / "instances.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="expected a JSON object"):
        import_coco(path, tmp_path / "p.eiqp")
    path.write_text(json.dumps({"images": {}, "annotations": [], "categories": []}))
    with pytest.raises(InputError, match="'images' must be a list"):
        import_coco(path, tmp_path / "p.eiqp")


def bad_dataset(tmp_path: Path, images, annotations, files=None) -> Path:
    root = tmp_path / "bad"
    root.mkdir()
    for name, data in (files or {"a.jpg": encoded(1)}).items():
        (root / name).write_bytes(data)
    return write_coco(root, "instances.json", images, annotations, CATEGORIES)


def test_annotations_naming_unknown_images_or_categories_are_reported_and_skipped(tmp_path):
    path = bad_dataset(
        tmp_path,
        [{"id": 1, "file_name": "a.jpg"}],
        [
            {"id": 7, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 8, "image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5]},
            {"id": 9, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5]},
            {"id": 10, "image_id": 1, "category_id": 1, "bbox": [2, 3, 4, 5]},
        ],
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project)
        reasons = [str(p) for p in report.errors]
        assert reasons == [
            "instances.json: annotation 7: image_id 99 is not in 'images': skipped",
            "instances.json: annotation 8: category_id 2 is not in 'categories': skipped",
            "instances.json: annotation 9: bbox must be [x, y, width, height] in pixels; received [1, 1, 5]: skipped",
        ]
        assert pairs(project, "a.jpg") == [("cat", (2.0, 3.0, 4.0, 5.0))]


def test_hostile_file_names_are_refused_and_never_read(tmp_path):
    (tmp_path / "x.jpg").write_bytes(encoded(5))  # what '../x.jpg' would reach
    path = bad_dataset(
        tmp_path,
        [
            {"id": 1, "file_name": "a.jpg"},
            {"id": 2, "file_name": "../x.jpg"},
            {"id": 3, "file_name": str(tmp_path / "x.jpg")},
            {"id": 4, "file_name": "C:\\x.jpg"},
        ],
        [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project)
        assert report.images == 1 and report.skipped == 3
        assert [p.file for p in report.errors] == ["../x.jpg", str(tmp_path / "x.jpg"), "C:\\x.jpg"]
        assert "escape the image folder" in report.errors[0].reason
        assert "absolute path" in report.errors[1].reason and "absolute path" in report.errors[2].reason
        assert [i.sha256 for i in project.images()] == [sha(encoded(1))]


def test_corrupt_and_missing_image_files_are_reported_and_skipped(tmp_path):
    path = bad_dataset(
        tmp_path,
        [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "b.jpg"}, {"id": 3, "file_name": "gone.jpg"}],
        [{"id": 5, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        files={"a.jpg": encoded(1), "b.jpg": encoded(2)[:200]},
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project)
        assert report.images == 1 and report.boxes == 0
        assert [(p.file, p.reason.split(":")[0]) for p in report.errors] == [
            ("b.jpg", "truncated JPEG"),
            ("gone.jpg", f"image file not found in {path.parent}"),
        ]
        assert project.count_images() == 1 and not project.annotations()


def test_a_record_size_that_differs_from_the_file_is_a_warning(tmp_path):
    path = bad_dataset(tmp_path, [{"id": 1, "file_name": "a.jpg", "width": 640, "height": 480}], [])
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_coco(path, project)
        assert report.images == 1 and not report.errors
        assert [p.reason for p in report.warnings] == [
            "the record says 640x480 but the file is 40x30; boxes were read as pixels of the file"
        ]


def test_strict_aborts_and_leaves_the_project_byte_identical(dataset, tmp_path):
    path, _ = dataset
    project_path = tmp_path / "p.eiqp"
    with create_project(project_path) as project:
        project.add_images([encoded(50)], "train")
    before = project_path.read_bytes()
    doc = json.loads(path.read_text())
    doc["annotations"].append({"id": 99, "image_id": 12, "category_id": 42, "bbox": [1, 1, 2, 2]})
    path.write_text(json.dumps(doc))
    with pytest.raises(ImportAborted, match="category_id 42"):
        import_coco(path, project_path, strict=True)
    assert project_path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["coco", "p.eiqp"]
