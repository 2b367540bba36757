"""Pascal VOC import, listing and export: layouts, groups, flags, archive order, bad input, round trip."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eiq_lab.datasets.voc import export_voc, import_voc, list_voc, parse_annotation
from eiq_lab.errors import ImportAborted, InputError
from eiq_lab.events import Progress
from eiq_lab.project import Project, create_project

# -- building datasets -------------------------------------------------------------------------


def encoded(seed: int, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    """A distinct image per seed (so no two are duplicates); size is (width, height)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def plain(size: tuple[int, int], color=(200, 30, 30), fmt: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def voc_xml(filename: str | None = None, objects=(), size: tuple[int, int] | None = None) -> bytes:
    """objects: (name, (xmin, ymin, xmax, ymax) or None, {"difficult": 1, "part": True, ...})."""
    lines = ["<annotation>", "  <folder>VOC2008</folder>"]
    if filename:
        lines.append(f"  <filename>{filename}</filename>")
    if size:
        lines.append(f"  <size><width>{size[0]}</width><height>{size[1]}</height><depth>3</depth></size>")
    for name, box, *extra in objects:
        flags = extra[0] if extra else {}
        lines += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>"]
        for kind in ("truncated", "difficult"):
            if kind in flags:
                lines.append(f"    <{kind}>{flags[kind]}</{kind}>")
        if box is not None:
            xmin, ymin, xmax, ymax = box
            lines.append(
                f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>"
            )
        if flags.get("part"):  # a part is not an object, even with a name and a box of its own
            lines.append(
                "    <part><name>head</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>5</xmax><ymax>5</ymax>"
                "</bndbox></part>"
            )
        lines.append("  </object>")
    lines.append("</annotation>")
    return "\n".join(lines).encode()


DEVKIT = "VOCdevkit/VOC2008"


def devkit_files() -> list[tuple[str, bytes]]:
    """A small VOCdevkit tree, annotations first (the order real VOC tars use)."""
    ids = [f"2008_00000{i}" for i in range(1, 7)]
    objects = {
        ids[0]: [("dog", (10.5, 5.25, 40.75, 30.5), {"part": True}), ("cat", (2, 2, 20, 20), {"difficult": 1})],
        ids[1]: [("flower", None), ("person", (1, 1, 30, 40), {"truncated": 1})],
        ids[2]: [("dog", (3.3, 2.2, 10.1, 20.9))],
        ids[3]: [("cat", (5, 6, 50, 40), {"difficult": 0, "truncated": 0})],
        ids[4]: [],
        ids[5]: [("dog", (0, 0, 64, 48))],
    }
    files = [(f"{DEVKIT}/Annotations/{i}.xml", voc_xml(f"{i}.jpg", objects[i], (64, 48))) for i in ids]
    files += [(f"{DEVKIT}/JPEGImages/{i}.jpg", encoded(n)) for n, i in enumerate(ids)]
    files += [
        (f"{DEVKIT}/ImageSets/Main/train.txt", f"{ids[0]}\n{ids[1]}\n".encode()),
        (f"{DEVKIT}/ImageSets/Main/val.txt", f"{ids[2]}\n{ids[3]}\n".encode()),
        (f"{DEVKIT}/ImageSets/Main/trainval.txt", "\n".join(ids[:4]).encode()),
        (f"{DEVKIT}/ImageSets/Main/cat_train.txt", f"{ids[0]} -1\n{ids[4]}  1\n".encode()),
        (f"{DEVKIT}/SegmentationClass/{ids[0]}.png", plain((64, 48), fmt="PNG")),
        (f"{DEVKIT}/README.txt", b"not part of the dataset"),
    ]
    return files


def make_tar(path: Path, files, *, mode: str = "w", extra=()) -> Path:
    """A tar with `files` ((name, bytes)) in that order, then `extra` (ready TarInfo, bytes-or-None)."""
    with tarfile.open(path, mode) as archive:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
        for info, data in extra:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return path


def write_tree(root: Path, files) -> Path:
    for name, data in files:
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fingerprint(project: Project) -> dict[str, tuple]:
    """Every image by sha256: its group and its annotations (label, box, difficult, truncated)."""
    out = {}
    for image in project.iter_images():
        anns = sorted(
            (str(a.label), tuple(a.box) if a.box else (), a.difficult, a.truncated) for a in image.annotations()
        )
        out[image.sha256] = (image.grouping, tuple(anns))
    return out


def fingerprint_of(path: Path) -> dict[str, tuple]:
    with Project(path) as project:
        return fingerprint(project)


def file_state(path: Path) -> tuple[str, list[str]]:
    """The file's hash and the names beside it (a stray -wal / -shm file is a change too)."""
    return sha(path.read_bytes()) if path.exists() else "", sorted(os.listdir(path.parent))


@pytest.fixture(scope="module")
def devkit_tar(tmp_path_factory) -> Path:
    return make_tar(tmp_path_factory.mktemp("voc") / "VOCtrainval.tar", devkit_files())


# -- the VOCdevkit layout ----------------------------------------------------------------------


def test_devkit_tar_groups_boxes_labels_and_flags(devkit_tar, tmp_path):
    report = import_voc(devkit_tar, tmp_path / "voc.eiqp")
    assert report.problems == []
    assert report.images == 6
    assert dict(report.groups) == {"train": 2, "test": 2, "none": 2}
    assert dict(report.labels) == {"dog": 3, "flower": 1, "cat": 1}
    assert dict(report.excluded) == {"difficult": 1, "truncated": 1}
    assert (report.boxes, report.full_image, report.unlabeled) == (4, 1, 1)
    with Project(tmp_path / "voc.eiqp") as project:
        by_source = {Path(i.source).stem: i for i in project.iter_images()}
        assert set(by_source) == {f"2008_00000{i}" for i in range(1, 7)}  # no SegmentationClass PNG
        groups = {stem: image.grouping for stem, image in by_source.items()}
        assert groups == {
            "2008_000001": "train",
            "2008_000002": "train",
            "2008_000003": "test",
            "2008_000004": "test",
            "2008_000005": None,
            "2008_000006": None,
        }
        first = project.annotations_with_image(by_source["2008_000001"])
        assert first == [("dog", (10.5, 5.25, 30.25, 25.25))]  # decimals kept exactly; no `part`, no difficult
        assert project.annotations_with_image(by_source["2008_000002"]) == [("flower", None)]
        [(label, box)] = project.annotations_with_image(by_source["2008_000003"])
        assert label == "dog" and box == (3.3, 2.2, 10.1 - 3.3, 20.9 - 2.2)
        assert project.annotations_with_image(by_source["2008_000005"]) == []
        assert sorted(project.labels()) == ["cat", "dog", "flower"]


def test_difficult_and_truncated_included_when_asked(devkit_tar, tmp_path):
    report = import_voc(devkit_tar, tmp_path / "voc.eiqp", difficult=True, truncated=True)
    assert dict(report.excluded) == {}
    assert dict(report.labels) == {"dog": 3, "flower": 1, "cat": 2, "person": 1}
    with Project(tmp_path / "voc.eiqp") as project:
        flagged = {
            (str(a.label), a.difficult, a.truncated) for a in project.annotations() if a.difficult or a.truncated
        }
    assert flagged == {("cat", True, False), ("person", False, True)}

    only_difficult = import_voc(devkit_tar, tmp_path / "d.eiqp", difficult=True)
    assert dict(only_difficult.excluded) == {"truncated": 1}


def test_forced_group_overrides_image_sets(devkit_tar, tmp_path):
    report = import_voc(devkit_tar, tmp_path / "voc.eiqp", group="test")
    assert dict(report.groups) == {"test": 6}
    with Project(tmp_path / "voc.eiqp") as project:
        assert project.count_images(group="test") == 6


def test_trainval_counts_only_without_train_or_val(tmp_path):
    files = []
    for k, root in enumerate(("VOCdevkit/VOC2007", "VOCdevkit/VOC2012")):  # the same ids in two roots stay apart
        for n, stem in enumerate(("000001", "000002", "000003")):
            files += [
                (f"{root}/JPEGImages/{stem}.jpg", encoded(10 * k + n)),
                (f"{root}/Annotations/{stem}.xml", voc_xml(objects=[("car", None)])),
            ]
    files += [
        ("VOCdevkit/VOC2007/ImageSets/Main/trainval.txt", b"000001\n000002\n000003\n"),  # test.txt wins for 3
        ("VOCdevkit/VOC2007/ImageSets/Main/test.txt", b"000003\n"),
        ("VOCdevkit/VOC2012/ImageSets/Main/trainval.txt", b"000001\n000002\n000003\n"),
        ("VOCdevkit/VOC2012/ImageSets/Main/val.txt", b"000003\n"),
    ]
    report = import_voc(write_tree(tmp_path / "ds", files), tmp_path / "p.eiqp")
    assert report.problems == []
    with Project(tmp_path / "p.eiqp") as project:
        groups = {image.source: image.grouping for image in project.iter_images()}
    assert groups == {
        "VOCdevkit/VOC2007/JPEGImages/000001.jpg": "train",
        "VOCdevkit/VOC2007/JPEGImages/000002.jpg": "train",
        "VOCdevkit/VOC2007/JPEGImages/000003.jpg": "test",
        "VOCdevkit/VOC2012/JPEGImages/000001.jpg": None,  # trainval ignored: val.txt exists here
        "VOCdevkit/VOC2012/JPEGImages/000002.jpg": None,
        "VOCdevkit/VOC2012/JPEGImages/000003.jpg": "test",
    }


# -- the guide's custom layout -----------------------------------------------------------------

GUIDE_XML = b"""
<annotation>
  <object>
    <name>rose</name>
    <bndbox>
      <xmax>274</xmax>
      <xmin>77</xmin>
      <ymax>375</ymax>
      <ymin>67</ymin>
    </bndbox>
  </object>
  <object>
    <name>flower</name>
  </object>
</annotation>
"""


@pytest.mark.parametrize("top", ["flowers/", ""], ids=["top-folder", "at-root"])
def test_guide_custom_layout_folder(tmp_path, top):
    files = [(f"{top}Annotations/rose.xml", GUIDE_XML), (f"{top}JPEGImages/rose.jpg", plain((320, 400)))]
    report = import_voc(write_tree(tmp_path / "ds", files), tmp_path / "p.eiqp")
    assert report.problems == []
    assert (report.images, report.boxes, report.full_image) == (1, 1, 1)
    assert dict(report.groups) == {"none": 1}
    with Project(tmp_path / "p.eiqp") as project:
        [image] = project.images()
        assert sorted(project.annotations_with_image(image), key=str) == [
            ("flower", None),
            ("rose", (77.0, 67.0, 197.0, 308.0)),
        ]


def test_zip_source_and_png_bmp_images(tmp_path):
    path = tmp_path / "ds.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("d/Annotations/a.xml", voc_xml(objects=[("a", (1, 1, 10, 10))]))
        archive.writestr("d/Annotations/b.xml", voc_xml(objects=[("b", None)]))
        archive.writestr("d/JPEGImages/a.png", encoded(1, fmt="PNG"))
        archive.writestr("d/JPEGImages/b.bmp", encoded(2, fmt="BMP"))
    report = import_voc(path, tmp_path / "p.eiqp")
    assert report.problems == []
    assert (report.images, report.boxes, report.full_image, report.transcoded) == (2, 1, 1, 1)


def test_filename_element_names_the_image_when_stems_differ(tmp_path):
    files = [
        ("d/Annotations/ann_0001.xml", voc_xml("shark.jpg", [("shark", (1, 1, 20, 20))])),
        ("d/Annotations/seal.xml", voc_xml("other.jpg", [("seal", None)])),  # own stem wins over <filename>
        ("d/JPEGImages/shark.jpg", encoded(1)),
        ("d/JPEGImages/seal.jpg", encoded(2)),
        ("d/JPEGImages/other.jpg", encoded(3)),
    ]
    report = import_voc(write_tree(tmp_path / "ds", files), tmp_path / "p.eiqp")
    assert report.problems == []
    with Project(tmp_path / "p.eiqp") as project:
        labels = {Path(i.source).stem: [a for a, _ in project.annotations_with_image(i)] for i in project.images()}
    assert labels == {"shark": ["shark"], "seal": ["seal"], "other": []}


def test_no_voc_files_is_a_clear_error(tmp_path):
    folder = write_tree(tmp_path / "imgs", [("train/cat/a.jpg", encoded(1))])
    with pytest.raises(InputError, match="no VOC files"):
        import_voc(folder, tmp_path / "p.eiqp")
    assert not (tmp_path / "p.eiqp").exists()


# -- archive order and compression -------------------------------------------------------------


@pytest.mark.parametrize("mode,suffix", [("w:gz", ".tar.gz"), ("w:xz", ".tar.xz")])
def test_images_before_annotations_give_the_same_project(tmp_path, mode, suffix):
    files = devkit_files()
    xml_last = [f for f in files if "/Annotations/" not in f[0]] + [f for f in files if "/Annotations/" in f[0]]
    sets_first = sorted(files, key=lambda f: "/ImageSets/" not in f[0])  # groups before the images too
    fingerprints = []
    for n, order in enumerate((files, xml_last, sets_first)):
        tar = make_tar(tmp_path / f"voc{n}{suffix}", order, mode=mode)
        report = import_voc(tar, tmp_path / f"p{n}.eiqp")
        assert report.problems == [] and report.images == 6
        fingerprints.append(fingerprint_of(tmp_path / f"p{n}.eiqp"))
    assert fingerprints[0] == fingerprints[1] == fingerprints[2]
    assert len(fingerprints[0]) == 6


# -- listing -----------------------------------------------------------------------------------


def test_list_gives_label_counts_and_touches_no_project(devkit_tar, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = sorted(os.listdir(tmp_path))
    report = list_voc(devkit_tar)
    assert report.listed_only and report.project is None
    assert report.images == 6
    assert dict(report.labels) == {"dog": 3, "flower": 1, "cat": 1}
    assert dict(report.excluded) == {"difficult": 1, "truncated": 1}
    assert dict(report.groups) == {"train": 2, "test": 2, "none": 2}
    assert "found 6 image(s)" in report.summary()
    assert list_voc(devkit_tar, difficult=True, truncated=True).labels == {"dog": 3, "flower": 1, "cat": 2, "person": 1}
    assert sorted(os.listdir(tmp_path)) == before


def test_list_does_not_read_image_bytes(tmp_path):
    files = [("d/Annotations/a.xml", voc_xml(objects=[("a", None)])), ("d/JPEGImages/a.jpg", b"\xff\xd8\xffjunk")]
    report = list_voc(write_tree(tmp_path / "ds", files))
    assert report.problems == [] and report.images == 1 and report.labels == {"a": 1}


# -- bad input ---------------------------------------------------------------------------------


def _jpeg_half() -> bytes:
    data = encoded(99, (64, 64))
    return data[: len(data) // 2]


def _link(name: str, kind: bytes, target: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _member(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


BAD_XXE = b'<?xml version="1.0"?>\n<!DOCTYPE annotation SYSTEM "file:///etc/passwd">\n<annotation/>'
BAD_XXE_ENTITY = (
    b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
    b"<annotation><object><name>&x;</name></object></annotation>"
)
BAD_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'.encode() for i in range(1, 10)
    )
    + b"]>\n<annotation><object><name>&lol9;</name></object></annotation>"
)

# case id -> (extra members: (name, bytes) or (TarInfo, bytes-or-None), file named in the problem, reason)
BAD_CASES = {
    "corrupt-jpeg": (
        [("ds/JPEGImages/bad.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x13\x37" * 50)],
        "ds/JPEGImages/bad.jpg",
        "corrupt JPEG",
    ),
    "truncated-jpeg": ([("ds/JPEGImages/bad.jpg", _jpeg_half())], "ds/JPEGImages/bad.jpg", "truncated JPEG"),
    "truncated-png": (
        [("ds/JPEGImages/bad.png", encoded(98, fmt="PNG")[:300])],
        "ds/JPEGImages/bad.png",
        "truncated PNG",
    ),
    "text-as-jpg": ([("ds/JPEGImages/bad.jpg", b"hello, I am a text file\n")], "ds/JPEGImages/bad.jpg", "not an image"),
    "bomb": ([("ds/JPEGImages/bad.jpg", plain((300, 300)))], "ds/JPEGImages/bad.jpg", "decompression bomb"),
    "malformed-xml": ([("ds/Annotations/good1.xml", b"<annotation><object>")], "ds/Annotations/good1.xml", "malformed"),
    "xxe-dtd": ([("ds/Annotations/good1.xml", BAD_XXE)], "ds/Annotations/good1.xml", "possible XML attack"),
    "xxe-entity": ([("ds/Annotations/good1.xml", BAD_XXE_ENTITY)], "ds/Annotations/good1.xml", "XML attack"),
    "billion-laughs": ([("ds/Annotations/good1.xml", BAD_LAUGHS)], "ds/Annotations/good1.xml", "XML attack"),
    "box-outside": (
        [("ds/Annotations/bad.xml", voc_xml(objects=[("x", (100, 100, 200, 200))])), ("ds/JPEGImages/bad.jpg", None)],
        "ds/Annotations/bad.xml",
        "outside the 32x24 image",
    ),
    "xmin-over-xmax": (
        [("ds/Annotations/bad.xml", voc_xml(objects=[("x", (20, 2, 10, 10))])), ("ds/JPEGImages/bad.jpg", None)],
        "ds/Annotations/bad.xml",
        "xmin >= xmax",
    ),
    "missing-coordinate": (
        [("ds/Annotations/bad.xml", voc_xml(objects=[("x", (1, 2, "", 10))])), ("ds/JPEGImages/bad.jpg", None)],
        "ds/Annotations/bad.xml",
        "xmax is missing",
    ),
    "dotdot": ([_member("../evil.jpg", b"x")], "../evil.jpg", "escapes"),
    "dotdot-inside": ([_member("ds/JPEGImages/../../evil.jpg", b"x")], "evil.jpg", "escapes"),
    "absolute": ([_member("/abs.jpg", b"x")], "/abs.jpg", "absolute path"),
    "symlink": ([_link("ds/JPEGImages/link.jpg", tarfile.SYMTYPE, "/etc/passwd")], "link.jpg", "symbolic link"),
    "hardlink": ([_link("ds/JPEGImages/hard.jpg", tarfile.LNKTYPE, "ds/JPEGImages/good2.jpg")], "hard.jpg", "hard"),
    "annotation-without-image": (
        [("ds/Annotations/lonely.xml", voc_xml(objects=[("x", None)]))],
        "ds/Annotations/lonely.xml",
        "annotation without its image",
    ),
}

GOOD = {"good1": encoded(1, (32, 24)), "good2": encoded(2, (32, 24))}


def bad_tar(path: Path, case: str) -> Path:
    extra, _, _ = BAD_CASES[case]
    replaced = {m[0] for m in extra if isinstance(m[0], str)}
    files = []
    for stem, data in GOOD.items():
        files.append((f"ds/JPEGImages/{stem}.jpg", data))
        files.append((f"ds/Annotations/{stem}.xml", voc_xml(objects=[(stem, (2, 2, 20, 20))])))
    files = [f for f in files if f[0] not in replaced]
    infos = []
    for name, data in extra:
        if isinstance(name, str):
            files.append((name, data if data is not None else encoded(3, (32, 24))))
        else:
            infos.append((name, data))
    return make_tar(path, files, extra=infos)


@pytest.fixture
def pixel_limit(monkeypatch):
    monkeypatch.setenv("EIQ_MAX_IMAGE_PIXELS", "20000")  # the 300x300 "bomb" is over it, 32x24 is not


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_is_reported_and_the_rest_imported(tmp_path, case, pixel_limit):
    _, file, reason = BAD_CASES[case]
    report = import_voc(bad_tar(tmp_path / "bad.tar", case), tmp_path / "p.eiqp")
    matching = [p for p in report.errors if file in p.file and reason in p.reason]
    assert matching, f"no problem naming {file} ({reason}) in {[str(p) for p in report.problems]}"
    assert len(report.errors) == 1, [str(p) for p in report.problems]
    with Project(tmp_path / "p.eiqp") as project:
        found = fingerprint(project)
    for stem, data in GOOD.items():
        if case in ("malformed-xml", "xxe-dtd", "xxe-entity", "billion-laughs") and stem == "good1":
            assert found[sha(data)] == (None, ()), "image of a refused XML is kept, unlabeled"
        else:
            assert found[sha(data)] == (None, ((stem, (2.0, 2.0, 18.0, 18.0), False, False),))


@pytest.mark.parametrize("case", list(BAD_CASES))
def test_bad_input_with_strict_leaves_the_project_as_it_was(tmp_path, case, pixel_limit):
    tar = bad_tar(tmp_path / "bad.tar", case)
    (tmp_path / "proj").mkdir()
    path = tmp_path / "proj" / "p.eiqp"
    with create_project(path) as project:
        [kept] = project.add_images([encoded(7, (32, 24))], "train")
        project.add_annotation(kept, "kept", (1, 1, 5, 5))
    before = file_state(path)
    with pytest.raises(ImportAborted, match="strict"):
        import_voc(tar, path, strict=True)
    assert file_state(path) == before
    assert fingerprint_of(path) == {
        sha(encoded(7, (32, 24))): ("train", (("kept", (1.0, 1.0, 5.0, 5.0), False, False),))
    }


def test_failing_strict_import_into_a_new_path_leaves_no_file(tmp_path):
    tar = bad_tar(tmp_path / "bad.tar", "corrupt-jpeg")
    (tmp_path / "proj").mkdir()
    with pytest.raises(ImportAborted):
        import_voc(tar, tmp_path / "proj" / "new.eiqp", strict=True)
    assert os.listdir(tmp_path / "proj") == []


def test_parse_annotation_reports_object_problems():
    ann = parse_annotation(
        voc_xml(
            "a.jpg", [("", (1, 1, 2, 2)), ("ok", (1, 1, 2, 2)), ("nan", (1, "nan", 2, 2)), ("word", (1, 1, "x", 2))]
        )
    )
    assert ann.filename == "a.jpg"
    assert [o.label for o in ann.objects] == ["ok"]
    assert len(ann.problems) == 3
    assert "no <name>" in ann.problems[0] and "ymin" in ann.problems[1] and "'x'" in ann.problems[2]
    with pytest.raises(InputError, match="root element is <html>"):
        parse_annotation(b"<html/>")


# -- export and round trip ---------------------------------------------------------------------


def test_round_trip_import_export_import(tmp_path):
    files = devkit_files()
    files.append((f"{DEVKIT}/JPEGImages/2008_000007.png", encoded(70, fmt="PNG")))
    files.append((f"{DEVKIT}/Annotations/2008_000007.xml", voc_xml(objects=[("dog", (0.5, 0.5, 9.9, 9.9))])))
    files.append((f"{DEVKIT}/JPEGImages/2008_000008.jpg", encoded(80)))  # no annotation: unlabeled
    tar = make_tar(tmp_path / "voc.tar.gz", files, mode="w:gz")
    first = import_voc(tar, tmp_path / "a.eiqp", difficult=True, truncated=True)
    assert first.problems == [] and first.images == 8

    events = []
    with Project(tmp_path / "a.eiqp") as project:
        exported = export_voc(project, tmp_path / "out", progress=Progress(events.append))
    assert (exported.images, exported.boxes, exported.full_image) == (8, 7, 1)
    assert [e.kind for e in events if e.kind != "advance"] == ["start", "end"]
    assert events[0].stage == "export" and events[0].total == 8
    assert sum(e.kind == "advance" for e in events) == 8
    assert any("PNG" in note for note in exported.notes)

    out = tmp_path / "out"
    assert len(list((out / "Annotations").glob("*.xml"))) == 8
    assert sorted(p.suffix for p in (out / "JPEGImages").iterdir()) == [".jpg"] * 7 + [".png"]
    assert len((out / "ImageSets" / "Main" / "train.txt").read_text().split()) == 2
    assert len((out / "ImageSets" / "Main" / "test.txt").read_text().split()) == 2
    stored = {sha(p.read_bytes()) for p in (out / "JPEGImages").iterdir()}
    originals = {sha(data) for name, data in files if "/JPEGImages/" in name}
    assert stored == originals  # bytes exactly as imported

    second = import_voc(out, tmp_path / "b.eiqp", difficult=True, truncated=True)
    assert second.problems == []
    assert fingerprint_of(tmp_path / "b.eiqp") == fingerprint_of(tmp_path / "a.eiqp")
    # a path works too, and a non-empty folder is refused
    with pytest.raises(InputError, match="not empty"):
        export_voc(tmp_path / "a.eiqp", out)


def test_exported_xml_shape(tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        [image] = project.add_images([encoded(5)], "test")
        project.add_annotation(image, "fish", (1.5, 2, 10, 20.25), difficult=True)
        project.add_annotation(image, "sea")
        export_voc(project, tmp_path / "out")
    [xml] = (tmp_path / "out" / "Annotations").glob("*.xml")
    ann = parse_annotation(xml.read_bytes())
    assert ann.filename == xml.stem + ".jpg"
    assert [(o.label, o.box, o.difficult) for o in ann.objects] == [
        ("fish", (1.5, 2.0, 10.0, 20.25), True),
        ("sea", None, False),
    ]
    text = xml.read_text()
    assert "<width>64</width>" in text and "<height>48</height>" in text and "<depth>3</depth>" in text
    assert "<xmax>11.5</xmax>" in text and "<ymin>2</ymin>" in text
    assert (tmp_path / "out" / "ImageSets" / "Main" / "test.txt").read_text() == xml.stem + "\n"
