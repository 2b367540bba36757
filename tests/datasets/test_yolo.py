"""YOLO import and export: Ultralytics and Darknet layouts, archives, groups, bad lines, round trip."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from eiq_lab.datasets.export import export_project
from eiq_lab.datasets.yolo import export_yolo, import_yolo, parse_label_lines
from eiq_lab.errors import ImportAborted, InputError
from eiq_lab.project import Project, create_project

W, H = 40, 30


def encoded(seed: int, fmt: str = "JPEG", size: tuple[int, int] = (W, H)) -> bytes:
    """A distinct image per seed; size is (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def contents(project: Project, *, boxes_only: bool = False) -> set[tuple]:
    """What must survive a round trip: (image sha256, label, box rounded to 1e-3, group)."""
    rows = set()
    for image in project.images():
        anns = [a for a in project.annotations(image=image) if a.box is not None or not boxes_only]
        for ann in anns:
            box = None if ann.box is None else tuple(round(v, 3) for v in ann.box)
            rows.add((image.sha256, str(ann.label), box, image.grouping))
        if not anns:
            rows.add((image.sha256, None, None, image.grouping))
    return rows


def boxes_of(project: Project, source: str) -> list[tuple[str, tuple | None]]:
    [image] = [i for i in project.images() if i.source == source]
    return sorted(project.annotations_with_image(image), key=str)


def write_tree(root: Path, files: dict[str, bytes | str]) -> Path:
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return root


def approx_pairs(pairs):
    return [(label, None if box is None else pytest.approx(box, abs=1e-6)) for label, box in pairs]


# Hand-computed for a 40x30 image: "0 0.5 0.5 0.25 0.2" -> w 10, h 6, x 20 - 5 = 15, y 15 - 3 = 12;
# "1 0.1 0.9 0.2 0.2" -> w 8, h 6, x 4 - 4 = 0, y 27 - 3 = 24.
LINES_A = "0 0.5 0.5 0.25 0.2\n1 0.1 0.9 0.2 0.2\n"
BOXES_A = [("cat", (15.0, 12.0, 10.0, 6.0)), ("dog", (0.0, 24.0, 8.0, 6.0))]


def ultralytics(root: Path, names="[cat, dog]") -> Path:
    return write_tree(
        root,
        {
            "data.yaml": f"path: .\ntrain: images/train\nval: images/val\nnc: 2\nnames: {names}\n",
            "images/train/a.jpg": encoded(1),
            "labels/train/a.txt": LINES_A,
            "images/val/b.png": encoded(2, "PNG"),
            "labels/val/b.txt": "",  # an image with no objects
            "images/test/c.jpg": encoded(3),  # no label file: unlabeled
            "images/extra/d.jpg": encoded(4),
            "labels/extra/d.txt": "1 0.5 0.5 1 1\n",
            "labels/train.cache": b"\x00binary",
            "README.txt": "not labels",
        },
    )


def test_ultralytics_layout_boxes_and_groups(tmp_path):
    root = ultralytics(tmp_path / "ds")
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project)
        assert not report.problems
        assert (report.images, report.boxes, report.unlabeled) == (4, 3, 2)
        assert boxes_of(project, "images/train/a.jpg") == approx_pairs(BOXES_A)
        assert boxes_of(project, "images/extra/d.jpg") == approx_pairs([("dog", (0.0, 0.0, 40.0, 30.0))])
        groups = {i.source: i.grouping for i in project.images()}
        assert groups == {
            "images/train/a.jpg": "train",
            "images/val/b.png": "test",
            "images/test/c.jpg": "test",
            "images/extra/d.jpg": None,
        }


def test_names_as_a_mapping_and_forced_group(tmp_path):
    root = ultralytics(tmp_path / "ds", names="{0: cat, 1: dog}")
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project, group="test")
        assert report.labels == {"cat": 1, "dog": 2}
        assert project.count_images(group="test") == 4


def test_classes_argument_overrides_the_dataset_names(tmp_path):
    root = ultralytics(tmp_path / "ds")
    with create_project(tmp_path / "p.eiqp") as project:
        import_yolo(root, project, classes=["kitten", "puppy"])
        assert {str(label) for label in project.labels()} == {"kitten", "puppy"}


def test_darknet_tar_with_names_after_the_labels_and_side_by_side_files(tmp_path):
    archive = tmp_path / "darknet.tar.gz"
    members = [  # archive order: labels before images, names last
        ("export/obj_train_data/a.txt", LINES_A.encode()),
        ("export/obj_train_data/a.jpg", encoded(1)),
        ("export/obj_train_data/b.jpg", encoded(2)),
        ("export/train.txt", b"data/obj_train_data/a.jpg\ndata/obj_train_data/b.jpg\n"),
        ("export/obj.data", b"classes = 2\nnames = data/obj.names\n"),
        ("export/obj.names", b"cat\ndog\n\n"),
    ]
    with tarfile.open(archive, "w:gz") as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(archive, project)
        assert not report.problems
        assert boxes_of(project, "export/obj_train_data/a.jpg") == approx_pairs(BOXES_A)
        assert project.count_images(group="train") == 2 and report.unlabeled == 1


def test_darknet_images_and_labels_folders_with_classes_txt(tmp_path):
    root = write_tree(
        tmp_path / "ds",
        {
            "images/a.jpg": encoded(1),
            "labels/a.txt": LINES_A,
            "labels/classes.txt": "cat\ndog\n",  # labelImg keeps its names beside the labels
        },
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project)
        assert not report.problems
        assert boxes_of(project, "images/a.jpg") == approx_pairs(BOXES_A)
        assert project.count_images(group=None) == 1


def test_roboflow_zip_split_folders_above_images_and_labels(tmp_path):
    archive = tmp_path / "rf.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("data.yaml", "train: ../train/images\nval: ../valid/images\nnames: ['cat', 'dog']\n")
        zf.writestr("train/images/a.jpg", encoded(1))
        zf.writestr("train/labels/a.txt", LINES_A)
        zf.writestr("valid/images/b.jpg", encoded(2))
        zf.writestr("valid/labels/b.txt", "1 0.5 0.5 0.5 0.5\n")
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(archive, project)
        assert not report.problems and report.groups == {"train": 1, "test": 1}
        assert boxes_of(project, "valid/images/b.jpg") == approx_pairs([("dog", (10.0, 7.5, 20.0, 15.0))])


def test_round_trip_through_export_drops_only_full_image_labels(tmp_path):
    first = create_project(tmp_path / "first.eiqp")
    a, b, c, _ = first.add_images([encoded(1), encoded(2, "PNG"), encoded(3), encoded(4)], "train")
    first.set_grouping([b], "test")
    first.set_grouping([c], None)
    first.add_annotation(a, "cat", (1.25, 2.5, 10.0, 7.75))
    first.add_annotation(a, "dog", (0.0, 0.0, 40.0, 30.0))
    first.add_annotation(b, "dog", (30.5, 20.0, 9.5, 10.0))
    first.add_annotation(b, "night")  # full-image: YOLO cannot say it
    first.add_annotation(c, "cat", (3.0, 4.0, 5.0, 6.0))
    expected = contents(first, boxes_only=True)
    out = tmp_path / "out"
    report = export_project(first, "yolo", out)
    first.close()
    assert (report.images, report.boxes, report.full_image) == (4, 4, 0)
    assert any("1 full-image label(s) left out" in note for note in report.notes)
    assert any("images/unassigned" in note for note in report.notes)
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data == {"train": "images/train", "val": "images/val", "nc": 3, "names": ["cat", "dog", "night"]}
    assert sorted(p.name for p in (out / "images").iterdir()) == ["train", "unassigned", "val"]
    [label_file] = (out / "labels" / "val").iterdir()
    assert label_file.read_text() == "1 0.88125 0.83333333 0.2375 0.33333333\n"  # 8 decimals, zeros trimmed
    assert len(list((out / "labels" / "train").iterdir())) == 2  # d has no boxes: an empty label file

    with create_project(tmp_path / "second.eiqp") as second:
        again = import_yolo(out, second)
        assert not again.problems
        assert contents(second) == expected


def test_export_yolo_of_ungrouped_images_notes_what_data_yaml_lacks(tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        [img] = project.add_images([encoded(1)])
        project.add_annotation(img, "cat", (1, 1, 5, 5))
        report = export_yolo(project, tmp_path / "out")
    data = yaml.safe_load((tmp_path / "out" / "data.yaml").read_text())
    assert "train" not in data and "val" not in data and data["names"] == ["cat"]
    assert any("no train-group images" in note for note in report.notes)
    assert (tmp_path / "out" / "labels" / "unassigned").is_dir()


# -- bad input ------------------------------------------------------------------------------------


def test_parse_label_lines_reports_each_bad_line():
    rows, errors = parse_label_lines("0 0.5 0.5 0.2 0.2\n\n1 0.5 0.5\nx 0.1 0.1 0.1 0.1\n0 a b c d\n0 nan 0 1 1\n")
    assert rows == [(1, 0, 0.5, 0.5, 0.2, 0.2)]
    assert [n for n, _ in errors] == [3, 4, 5, 6]


def test_malformed_lines_and_class_ids_out_of_range_name_file_and_line(tmp_path):
    root = write_tree(
        tmp_path / "ds",
        {
            "obj.names": "cat\ndog\n",
            "images/a.jpg": encoded(1),
            "labels/a.txt": "0 0.5 0.5 0.25 0.2\n0 0.5 0.5\n2 0.5 0.5 0.1 0.1\n1 0.5 zero 0.1 0.1\n"
            "-1 0.5 0.5 0.1 0.1\n",
        },
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project)
        assert [str(p) for p in report.errors] == [
            "labels/a.txt: line 2: expected 5 fields (class cx cy w h), found 3: skipped",
            "labels/a.txt: line 3: class id 2 is not in the class names (0..1): skipped",
            "labels/a.txt: line 4: '0.5 zero 0.1 0.1' are not four numbers: skipped",
            "labels/a.txt: line 5: class id -1 is not in the class names (0..1): skipped",
        ]
        assert boxes_of(project, "images/a.jpg") == approx_pairs([("cat", (15.0, 12.0, 10.0, 6.0))])


def test_label_file_without_image_corrupt_image_and_bad_box(tmp_path):
    root = write_tree(
        tmp_path / "ds",
        {
            "data.yaml": "names: [cat]\n",
            "images/a.jpg": encoded(1),
            "labels/a.txt": "0 0.5 0.5 0 0.2\n",  # no width
            "images/bad.jpg": b"this is text, not a JPEG",
            "labels/bad.txt": "0 0.5 0.5 0.1 0.1\n",
            "labels/orphan.txt": "0 0.5 0.5 0.1 0.1\n",
        },
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project)
        problems = {p.file: p.reason for p in report.errors}
        assert set(problems) == {"images/bad.jpg", "labels/a.txt", "labels/orphan.txt"}
        assert "not an image file" in problems["images/bad.jpg"]
        assert "xmin >= xmax" in problems["labels/a.txt"]
        assert problems["labels/orphan.txt"] == "annotation without its image: skipped"
        assert report.images == 1 and report.boxes == 0


def test_labels_without_class_names_are_refused_and_the_new_project_removed(tmp_path):
    root = write_tree(tmp_path / "ds", {"images/a.jpg": encoded(1), "labels/a.txt": "0 0.5 0.5 0.1 0.1\n"})
    with pytest.raises(InputError, match="no class names"):
        import_yolo(root, tmp_path / "p.eiqp")
    assert not (tmp_path / "p.eiqp").exists()


def test_bad_yaml_is_reported_and_a_names_file_used_instead(tmp_path):
    root = write_tree(
        tmp_path / "ds",
        {"data.yaml": "names: [cat\n", "obj.names": "cat\n", "a.jpg": encoded(1), "a.txt": LINES_A.splitlines()[0]},
    )
    with create_project(tmp_path / "p.eiqp") as project:
        report = import_yolo(root, project)
        assert [p.file for p in report.errors] == ["data.yaml"] and "not valid YAML" in report.errors[0].reason
        assert report.boxes == 1


def test_strict_aborts_and_leaves_the_project_byte_identical(tmp_path):
    root = ultralytics(tmp_path / "ds")
    (root / "labels" / "train" / "a.txt").write_text("0 0.5 0.5 0.25\n")
    project_path = tmp_path / "p.eiqp"
    with create_project(project_path) as project:
        project.add_images([encoded(50)], "train")
    before = hashlib.sha256(project_path.read_bytes()).hexdigest()
    with pytest.raises(ImportAborted, match=r"labels/train/a.txt: line 1"):
        import_yolo(root, project_path, strict=True)
    assert hashlib.sha256(project_path.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "p.eiqp"]
