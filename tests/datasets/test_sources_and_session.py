"""Dataset sources (folder, tar, zip; hostile members) and the shared import session's joins and boxes."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile

import numpy as np
import pytest
from PIL import Image

from eiq_lab.datasets.session import ImportSession, LabelledObject, corners
from eiq_lab.datasets.sources import Source
from eiq_lab.errors import ImportAborted, InputError
from eiq_lab.project import create_project, open_project


def jpeg(seed: int = 0, size=(40, 30)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


def read_all(path, problems):
    return {e.path: e.read() for e in Source(path, on_problem=lambda f, r: problems.append((f, r))).entries()}


def test_zip_with_hostile_members(tmp_path):
    archive = tmp_path / "d.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ok/a.jpg", b"A")
        z.writestr("../escape.jpg", b"B")
        z.writestr("/abs.jpg", b"C")
        link = zipfile.ZipInfo("ok/link.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        z.writestr(link, "../../etc/passwd")
    problems = []
    assert read_all(archive, problems) == {"ok/a.jpg": b"A"}
    reasons = dict(problems)
    assert "escapes" in reasons["../escape.jpg"]
    assert "absolute" in reasons["/abs.jpg"]
    assert "symbolic link" in reasons["ok/link.jpg"]


def test_tar_with_links_devices_and_oversized_member(tmp_path, monkeypatch):
    archive = tmp_path / "d.tar.xz"
    with tarfile.open(archive, "w:xz") as t:
        for name, data in (("a/x.jpg", b"X" * 10), ("a/big.jpg", b"Y" * 5000)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        sym = tarfile.TarInfo("a/sym.jpg")
        sym.type, sym.linkname = tarfile.SYMTYPE, "/etc/passwd"
        t.addfile(sym)
        hard = tarfile.TarInfo("a/hard.jpg")
        hard.type, hard.linkname = tarfile.LNKTYPE, "a/x.jpg"
        t.addfile(hard)
        dev = tarfile.TarInfo("a/dev")
        dev.type = tarfile.CHRTYPE
        t.addfile(dev)
    monkeypatch.setenv("EIQ_MAX_MEMBER_BYTES", "1000")
    problems = []
    assert read_all(archive, problems) == {"a/x.jpg": b"X" * 10}
    reasons = dict(problems)
    assert "symbolic link" in reasons["a/sym.jpg"]
    assert "hard link" in reasons["a/hard.jpg"]
    assert "special file" in reasons["a/dev"]
    assert "over the 1,000-byte limit" in reasons["a/big.jpg"]


def test_not_a_dataset(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(InputError, match="neither a folder nor a tar/zip"):
        Source(tmp_path / "notes.txt")
    with pytest.raises(InputError, match="does not exist"):
        Source(tmp_path / "missing")


def test_truncated_tar_is_a_clear_error(tmp_path):
    archive = tmp_path / "d.tar"
    with tarfile.open(archive, "w") as t:
        data = jpeg()
        info = tarfile.TarInfo("x.jpg")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    archive.write_bytes(archive.read_bytes()[:700])
    with pytest.raises(InputError, match=r"truncated|damaged"):
        read_all(archive, [])


def test_session_joins_objects_that_arrive_before_or_after_their_image(tmp_path):
    project = create_project(tmp_path / "p.eiqp")
    with ImportSession(project, format="test", source="memory") as session:
        session.objects("a", [LabelledObject("cat", corners(1, 2, 11, 12))], name="a.xml")
        session.image("a", jpeg(1), name="a.jpg")
        session.image("b", jpeg(2), name="b.jpg")
        session.objects("b", [LabelledObject("dog")], name="b.xml")
        session.group("b", "test")
        session.objects("ghost", [LabelledObject("cat")], name="ghost.xml")
    report = session.report
    assert (report.images, report.boxes, report.full_image) == (2, 1, 1)
    assert report.groups == {"none": 1, "test": 1}
    assert [(p.file, p.reason) for p in report.problems] == [("ghost.xml", "annotation without its image: skipped")]
    [a] = project.images(label="cat")
    assert project.annotations_with_image(a.id) == [("cat", (1.0, 2.0, 10.0, 10.0))]
    assert project.images(group="test")[0].source == "b.jpg"


def test_session_box_rules(tmp_path):
    project = create_project(tmp_path / "p.eiqp")  # images are 40 x 30
    with ImportSession(project, format="test", source="memory") as session:
        session.image("k", jpeg(3), name="k.jpg")
        session.objects(
            "k",
            [
                LabelledObject("inside", corners(0.5, 0.25, 39.5, 29.75)),
                LabelledObject("edge", corners(0, 0, 41, 30)),  # 1 px over: VOC rounding, kept clipped
                LabelledObject("over", corners(30, 20, 60, 50)),  # clipped, warned
                LabelledObject("outside", corners(50, 40, 60, 50)),
                LabelledObject("inverted", corners(20, 5, 10, 15)),
                LabelledObject("norm", (0.25, 0.5, 0.5, 0.25), normalized=True),
            ],
            name="k.xml",
        )
    boxes = {label: box for label, box in project.annotations_with_image(1)}
    assert boxes == {
        "inside": (0.5, 0.25, 39.0, 29.5),
        "edge": (0.0, 0.0, 40.0, 30.0),
        "over": (30.0, 20.0, 10.0, 10.0),
        "norm": (10.0, 15.0, 20.0, 7.5),
    }
    by_kind = {(p.severity, p.reason.split(" (")[0]) for p in session.report.problems}
    assert by_kind == {("warning", "box of 'over'"), ("error", "box of 'outside'"), ("error", "box of 'inverted'")}


def test_strict_session_rolls_back(tmp_path):
    path = tmp_path / "p.eiqp"
    project = create_project(path)
    project.add_images([jpeg(9)], "train")
    project.close()
    before = path.read_bytes()
    project = open_project(path)
    with pytest.raises(ImportAborted), ImportSession(project, format="t", source="m", strict=True) as session:
        session.image("a", jpeg(10), name="a.jpg")
        session.image("b", b"not an image", name="b.jpg")
    assert project.count_images() == 1
    project.close()
    assert path.read_bytes() == before


def test_duplicates_within_an_import_and_against_the_project(tmp_path):
    project = create_project(tmp_path / "p.eiqp")
    with ImportSession(project, format="t", source="m") as session:
        session.image("a", jpeg(20), name="a.jpg")
        session.image("b", jpeg(20), name="b.jpg")  # same bytes in the same import
        session.image("c", jpeg(21), name="c.jpg")
    assert (session.report.images, session.report.duplicates) == (2, 1)
    with ImportSession(project, format="t", source="m") as again:
        again.image("x", jpeg(21), name="x.jpg")  # already in the project
        again.image("y", jpeg(22), name="y.jpg")
    assert (again.report.images, again.report.duplicates) == (1, 1)
    with ImportSession(project, format="t", source="m", duplicates="keep") as keep:
        keep.image("z", jpeg(22), name="z.jpg")
    assert keep.report.images == 1
    assert project.count_images() == 4


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT])
def test_plain_tar_reader_matches_tarfile(tmp_path, fmt):
    """Uncompressed tars are read by our own header reader (handing pax and GNU long-name records
    to tarfile); gzip-compressed ones by tarfile alone. Both must see exactly the same."""
    long_dir = "deep/" + "d" * 120  # over 100 characters: ustar prefix, GNU or pax records
    members = [
        ("a/x.jpg", b"X" * 700),
        (f"{long_dir}/y.jpg", b"Y" * 1024),
        ("b/" + "z" * 150 + ".jpg", b"Z"),
        ("c/w.jpg", b""),
    ]
    for name, mode in (("plain.tar", "w"), ("same.tar.gz", "w:gz")):
        with tarfile.open(tmp_path / name, mode, format=fmt) as t:
            for member, data in members:
                if fmt == tarfile.USTAR_FORMAT and len(member.rsplit("/", 1)[-1]) > 100:
                    continue  # ustar cannot store a file name that long
                info = tarfile.TarInfo(member)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
            sym = tarfile.TarInfo("a/link.jpg")
            sym.type, sym.linkname = tarfile.SYMTYPE, "x.jpg"
            t.addfile(sym)
            evil = tarfile.TarInfo("../evil.jpg")
            evil.size = 1
            t.addfile(evil, io.BytesIO(b"E"))
    plain_problems, packed_problems = [], []
    plain = read_all(tmp_path / "plain.tar", plain_problems)
    packed = read_all(tmp_path / "same.tar.gz", packed_problems)
    assert plain == packed
    assert plain["a/x.jpg"] == b"X" * 700 and plain[f"{long_dir}/y.jpg"] == b"Y" * 1024
    assert plain_problems == packed_problems
    assert [name for name, _ in plain_problems] == ["a/link.jpg", "../evil.jpg"]


def test_plain_tar_with_a_damaged_header_or_data(tmp_path):
    path = tmp_path / "d.tar"
    with tarfile.open(path, "w") as t:
        for name in ("a.jpg", "b.jpg"):
            info = tarfile.TarInfo(name)
            info.size = 2000
            t.addfile(info, io.BytesIO(b"A" * 2000))
    raw = bytearray(path.read_bytes())
    raw[2560 + 10] ^= 0xFF  # the second header (after 512 + 2048 bytes)'s name: its checksum no longer matches
    path.write_bytes(bytes(raw))
    with pytest.raises(InputError, match=r"d\.tar is damaged at byte 2560 \(bad checksum\)"):
        read_all(path, [])
    path.write_bytes(bytes(raw[:1500]))  # cut inside the first file's data
    with pytest.raises(InputError, match="truncated"):
        read_all(path, [])
