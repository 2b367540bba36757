"""Structured-folders import: the guide's layout, archives of it, bad files, strict mode."""

from __future__ import annotations

import hashlib
import io
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from eiq_lab.datasets.folders import classify_path, import_folders
from eiq_lab.errors import ImportAborted
from eiq_lab.events import Progress
from eiq_lab.project import open_project


def jpeg(seed: int, size=(24, 18)) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG")
    return buffer.getvalue()


# the guide's example tree (section 3.3.2), plus a second label and a non-image file
GUIDE_TREE = {
    "50.jpg": ("none", None),
    "test/shark.jpg": ("test", None),
    "test/dog/dog.jpg": ("test", "dog"),
    "train/grace_hopper.jpg": ("train", None),
    "train/cat/cat.jpg": ("train", "cat"),
    "train/cat/cat2.jpg": ("train", "cat"),
}


def write_tree(root: Path, tree=GUIDE_TREE) -> dict[str, str]:
    hashes = {}
    for i, rel in enumerate(tree):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        data = jpeg(i)
        path.write_bytes(data)
        hashes[rel] = hashlib.sha256(data).hexdigest()
    (root / "train" / "README.txt").write_text("not an image")
    return hashes


def project_contents(path: Path) -> dict[str, tuple[str, tuple[str, ...]]]:
    """sha256 -> (group, labels) for every image of a project."""
    with open_project(path) as project:
        out = {}
        for image in project.iter_images():
            labels = tuple(sorted(a.label for a in project.annotations(image=image.id)))
            out[image.sha256] = (image.grouping or "none", labels)
    return out


def expected(hashes: dict[str, str], tree=GUIDE_TREE) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {hashes[rel]: (group, (label,) if label else ()) for rel, (group, label) in tree.items()}


def test_classify_path_follows_the_guide():
    assert classify_path("50.jpg") == (None, None)
    assert classify_path("test/shark.jpg") == ("test", None)
    assert classify_path("train/cat/cat.jpg") == ("train", "cat")
    assert classify_path("train/cat/kittens/k.jpg") == ("train", "cat")
    assert classify_path("dog/d.jpg") == (None, "dog")
    assert classify_path("validation/dog/d.jpg") == ("test", "dog")


def test_guide_layout_gives_groups_and_labels(tmp_path):
    hashes = write_tree(tmp_path / "imgs")
    report = import_folders(tmp_path / "imgs", tmp_path / "p.eiqp")
    assert report.images == 6
    assert report.groups == {"train": 3, "test": 2, "none": 1}
    assert report.unlabeled == 3
    assert report.labels == {"cat": 2, "dog": 1}
    assert report.problems == []
    assert project_contents(tmp_path / "p.eiqp") == expected(hashes)
    with open_project(tmp_path / "p.eiqp") as project:
        image = project.images(group="test", label="dog")[0]
        assert image.source == "test/dog/dog.jpg"
        assert image.data() == (tmp_path / "imgs/test/dog/dog.jpg").read_bytes()


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_archive_of_the_tree_imports_the_same(tmp_path, kind):
    hashes = write_tree(tmp_path / "imgs")
    archive = tmp_path / f"imgs.{kind}"
    files = sorted(p for p in (tmp_path / "imgs").rglob("*") if p.is_file())
    if kind == "zip":
        with zipfile.ZipFile(archive, "w") as z:
            for p in files:
                z.write(p, p.relative_to(tmp_path).as_posix())
    else:
        with tarfile.open(archive, "w:gz") as t:
            for p in files:
                t.add(p, p.relative_to(tmp_path).as_posix())
    import_folders(archive, tmp_path / "p.eiqp")
    assert project_contents(tmp_path / "p.eiqp") == expected(hashes)


def test_forced_group_and_duplicates(tmp_path):
    write_tree(tmp_path / "imgs")
    first = import_folders(tmp_path / "imgs", tmp_path / "p.eiqp", group="test")
    assert first.groups == {"test": 6}
    again = import_folders(tmp_path / "imgs", tmp_path / "p.eiqp")
    assert (again.images, again.duplicates) == (0, 6)
    kept = import_folders(tmp_path / "imgs", tmp_path / "p.eiqp", duplicates="keep")
    assert kept.images == 6
    with open_project(tmp_path / "p.eiqp") as project:
        assert project.count_images() == 12


def test_bad_files_are_reported_and_skipped(tmp_path):
    root = tmp_path / "imgs"
    write_tree(root)
    (root / "train/cat/notes.jpg").write_text("this is text, not a JPEG")
    good = jpeg(99)
    (root / "train/cat/truncated.jpg").write_bytes(good[: len(good) // 2])
    report = import_folders(root, tmp_path / "p.eiqp")
    assert report.images == 6
    problems = {p.file: p.reason for p in report.problems}
    assert set(problems) == {"train/cat/notes.jpg", "train/cat/truncated.jpg"}
    assert "not an image" in problems["train/cat/notes.jpg"]
    assert "truncated" in problems["train/cat/truncated.jpg"]
    assert report.skipped == 2


def test_strict_keeps_the_project_byte_for_byte(tmp_path):
    project_path = tmp_path / "p.eiqp"
    write_tree(tmp_path / "first")
    import_folders(tmp_path / "first", project_path)
    before = project_path.read_bytes()
    root = tmp_path / "imgs"
    write_tree(root, {"train/bird/b1.jpg": ("train", "bird"), "train/bird/b2.jpg": ("train", "bird")})
    (root / "train/bird/zz_bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really")
    with pytest.raises(ImportAborted, match=r"zz_bad\.jpg"):
        import_folders(root, project_path, strict=True)
    assert project_path.read_bytes() == before
    assert not Path(str(project_path) + "-wal").exists() or Path(str(project_path) + "-wal").stat().st_size == 0


def test_failed_import_into_a_new_project_leaves_no_file(tmp_path):
    root = tmp_path / "imgs"
    root.mkdir()
    (root / "bad.jpg").write_text("nope")
    with pytest.raises(ImportAborted):
        import_folders(root, tmp_path / "new.eiqp", strict=True)
    assert not (tmp_path / "new.eiqp").exists()


def test_progress_events_and_stop(tmp_path):
    write_tree(tmp_path / "imgs")
    events = []
    import_folders(tmp_path / "imgs", tmp_path / "p.eiqp", progress=events.append)
    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert kinds.count("advance") == 6

    from eiq_lab.errors import Stopped

    progress = Progress()
    seen = []

    def stop_after_two(event):
        seen.append(event)
        if event.kind == "advance" and event.done == 2:
            progress.stop()

    progress.observers.append(stop_after_two)
    write_tree(tmp_path / "more", {f"train/x/{i}.jpg": ("train", "x") for i in range(5)})
    before = (tmp_path / "p.eiqp").read_bytes()
    with pytest.raises(Stopped):
        import_folders(tmp_path / "more", tmp_path / "p.eiqp", progress=progress)
    assert (tmp_path / "p.eiqp").read_bytes() == before
