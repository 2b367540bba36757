"""Reading a dataset in a second process gives exactly what reading it here gives."""

from __future__ import annotations

import io
import subprocess
import sys
import tarfile
import textwrap

import pytest

from eiq_lab.datasets import parallel
from eiq_lab.datasets.folders import import_folders
from eiq_lab.datasets.samples import shapes_image, voc_xml
from eiq_lab.datasets.voc import import_voc
from eiq_lab.errors import ImportAborted, InputError
from eiq_lab.project import open_project


def add(archive: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    archive.addfile(info, io.BytesIO(data))


@pytest.fixture(scope="module")
def messy_voc(tmp_path_factory):
    """12 good images, a truncated one, a malformed XML, a `../` member, an orphan annotation."""
    path = tmp_path_factory.mktemp("par") / "messy.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        add(archive, "VOC/ImageSets/Main/train.txt", b"\n".join(f"i{i}".encode() for i in range(8)))
        add(archive, "VOC/ImageSets/Main/val.txt", b"\n".join(f"i{i}".encode() for i in range(8, 13)))
        for i in range(13):
            data, objects = shapes_image(i)
            add(archive, f"VOC/Annotations/i{i}.xml", voc_xml(f"i{i}.jpg", 160, 120, objects).encode())
            add(archive, f"VOC/JPEGImages/i{i}.jpg", data[: len(data) // 2] if i == 12 else data)
        add(archive, "VOC/Annotations/broken.xml", b"<annotation><object><name>x</name></annotation>")
        add(archive, "VOC/JPEGImages/broken.jpg", shapes_image(99)[0])
        add(archive, "VOC/Annotations/orphan.xml", voc_xml("orphan.jpg", 160, 120, [("circle", None)]).encode())
        add(archive, "../escape.jpg", b"x")
    return path


def contents(path):
    with open_project(path) as project:
        return sorted(
            (image.sha256, image.grouping, image.source, tuple(project.annotations_with_image(image.id)))
            for image in project.iter_images()
        )


def test_parallel_and_serial_give_the_same_project_and_report(tmp_path, messy_voc):
    serial = import_voc(messy_voc, tmp_path / "s.eiqp", parallel=False)
    twin = import_voc(messy_voc, tmp_path / "p.eiqp", parallel=True)
    assert contents(tmp_path / "s.eiqp") == contents(tmp_path / "p.eiqp")
    assert serial.problems == twin.problems
    assert len(serial.problems) == 4  # truncated image, malformed XML, ../ member, orphan annotation
    assert (twin.images, twin.boxes, dict(twin.groups)) == (serial.images, serial.boxes, dict(serial.groups))
    assert twin.images == 13


def test_parallel_strict_keeps_the_project_byte_for_byte(tmp_path, messy_voc):
    path = tmp_path / "p.eiqp"
    import_folders(tmp_path, path)  # an empty folder: creates the project, imports nothing
    before = path.read_bytes()
    with pytest.raises(ImportAborted):
        import_voc(messy_voc, path, strict=True, parallel=True)
    assert path.read_bytes() == before


def test_errors_in_the_reader_process_reach_the_caller(tmp_path):
    archive = tmp_path / "not_voc.tar"
    with tarfile.open(archive, "w") as t:
        add(t, "readme.txt", b"hello")
    with pytest.raises(InputError, match="no VOC files found"):
        import_voc(archive, tmp_path / "p.eiqp", parallel=True)
    assert not (tmp_path / "p.eiqp").exists()


def test_a_script_without_a_main_guard_runs_once(tmp_path, messy_voc):
    """multiprocessing's spawn would re-run the user's script in the reader; ours must not."""
    script = tmp_path / "user_script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from eiq_lab.datasets.voc import import_voc
            print("script ran")
            report = import_voc({str(messy_voc)!r}, {str(tmp_path / "u.eiqp")!r}, parallel=True)
            print("imported", report.images)
            """
        )
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("script ran") == 1
    assert "imported 13" in done.stdout


def test_size_decides_when_not_told(tmp_path, monkeypatch, messy_voc):
    assert parallel.worth_parallel(messy_voc, None) is False
    assert parallel.worth_parallel(messy_voc, True) is True
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 1000)
    assert parallel.worth_parallel(messy_voc, None) is True
    assert parallel.worth_parallel(messy_voc, False) is False
