"""The `eiq` command, called in-process through its entry function (plus a few real subprocesses)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from eiq_lab.cli.main import main
from eiq_lab.project import open_project


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 255, (20, 20, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def folders(tmp_path):
    """train/{cat,dog} with 4 images each, test/{cat,dog} with 1 each, 10 unlabeled at the root."""
    root = tmp_path / "imgs"
    seed = 0
    for group, n in (("train", 4), ("test", 1)):
        for label in ("cat", "dog"):
            for _ in range(n):
                path = root / group / label / f"{seed}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(png(seed))
                seed += 1
    for _ in range(10):
        (root / f"u{seed}.png").write_bytes(png(seed))
        seed += 1
    return root


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_create_info_and_json(tmp_path, capsys, folders):
    project = tmp_path / "p.eiqp"
    code, out, _ = run(capsys, "project", "create", project)
    assert code == 0 and "created" in out
    code, _, err = run(capsys, "project", "create", project)
    assert code == 1 and "already exists" in err and "Traceback" not in err

    code, out, _ = run(capsys, "import", "folders", folders, "--project", project, "--quiet")
    assert code == 0
    assert "imported 20 image(s)" in out
    code, out, _ = run(capsys, "project", "info", project, "--json")
    info = json.loads(out)
    assert info["images"] == 20
    assert info["groups"] == {"train": 8, "test": 2, "none": 10}
    assert info["unlabeled"]["total"] == 10
    assert {e["name"]: e["images"]["train"] for e in info["labels"]} == {"cat": 4, "dog": 4}
    code, out, _ = run(capsys, "project", "info", project)
    assert "train 8, test 2, no group 10" in out
    assert "cat" in out and "dog" in out


def test_import_creates_the_project_and_reports_json(tmp_path, capsys, folders):
    project = tmp_path / "new.deepview"
    code, out, _ = run(capsys, "import", "folders", folders, "--project", project, "--json")
    assert code == 0
    report = json.loads(out)
    assert report["images"] == 20 and report["labels"] == {"cat": 5, "dog": 5}
    assert report["groups"] == {"train": 8, "test": 2, "none": 10}
    assert project.exists()


def test_split_is_reproducible_and_touches_ungrouped_only(tmp_path, capsys, folders):
    a, b = tmp_path / "a.eiqp", tmp_path / "b.eiqp"
    for p in (a, b):
        assert run(capsys, "import", "folders", folders, "--project", p, "-q")[0] == 0
    code, out, _ = run(capsys, "project", "split", a, "--test-holdout", "30", "--seed", "7", "--json")
    assert code == 0
    result = json.loads(out)
    assert (result["assigned"], result["test"], result["train"]) == (10, 3, 7)
    assert result["groups"] == {"train": 15, "test": 5, "none": 0}
    run(capsys, "project", "split", b, "--test_holdout", "30", "--seed", "7")

    def groups(path):
        with open_project(path) as project:
            return {i.sha256: i.grouping for i in project.iter_images()}

    assert groups(a) == groups(b)
    code, _, err = run(capsys, "project", "split", a, "--test-holdout", "120")
    assert code == 1 and "between 0 and 100" in err


def test_import_with_holdout(tmp_path, capsys, folders):
    project = tmp_path / "p.eiqp"
    code, out, _ = run(capsys, "import", "folders", folders, "--project", project, "--holdout", "20", "--json")
    assert code == 0
    assert json.loads(out)["holdout"]["assigned"] == 10
    with open_project(project) as p:
        assert p.count_images(group=None) == 0
        assert p.count_images(group="test") == 2 + 2


def test_bad_inputs_exit_non_zero_with_one_line(tmp_path, capsys, folders):
    code, _, err = run(capsys, "project", "info", tmp_path / "missing.eiqp")
    assert code == 1 and "does not exist" in err
    text = tmp_path / "notes.eiqp"
    text.write_text("hello")
    code, _, err = run(capsys, "project", "info", text)
    assert code == 1 and "not an SQLite database" in err and err.count("\n") == 1
    code, _, err = run(capsys, "import", "folders", tmp_path / "nowhere", "--project", tmp_path / "x.eiqp")
    assert code == 1 and "does not exist" in err
    assert not (tmp_path / "x.eiqp").exists()
    code, _, err = run(capsys, "project", "frobnicate", "x")
    assert code == 2 and "invalid choice" in err


def test_per_file_problems_exit_3_and_strict_exit_1(tmp_path, capsys, folders):
    (folders / "train" / "cat" / "broken.png").write_bytes(png(1000)[:50])
    project = tmp_path / "p.eiqp"
    code, out, _ = run(capsys, "import", "folders", folders, "--project", project, "-q")
    assert code == 3
    assert "broken.png" in out and "truncated PNG" in out
    other = tmp_path / "q.eiqp"
    run(capsys, "project", "create", other)
    before = other.read_bytes()
    code, _, err = run(capsys, "import", "folders", folders, "--project", other, "--strict", "-q")
    assert code == 1 and "broken.png" in err and "nothing was kept" in err
    assert other.read_bytes() == before


def test_health_reports_duplicates_and_leakage(tmp_path, capsys, folders):
    shutil.copy(folders / "train" / "cat" / "0.png", folders / "test" / "dog" / "copy_of_0.png")
    project = tmp_path / "p.eiqp"
    run(capsys, "import", "folders", folders, "--project", project, "--duplicates", "keep", "-q")
    code, out, _ = run(capsys, "project", "health", project, "--json")
    assert code == 0
    report = json.loads(out)
    assert len(report["exact_duplicates"]) == 1
    assert len(report["exact_duplicates"][0]["image_ids"]) == 2
    assert report["leakage"] and report["ok"] is False
    code, out, _ = run(capsys, "project", "health", project, "--strict")
    assert code == 1 and "leakage" in out


def test_progress_plain_lines_when_not_a_terminal(tmp_path, capsys, folders):
    code, _, err = run(capsys, "import", "folders", folders, "--project", tmp_path / "p.eiqp")
    assert code == 0
    assert "\r" not in err  # no bar redraws in a log


def test_real_console_scripts(tmp_path, folders):
    """The installed commands run, print one error line without a traceback, and exit non-zero."""
    eiq = shutil.which("eiq") or pytest.fail("the eiq console script is not installed")
    done = subprocess.run([eiq, "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "eiq-lab" in done.stdout
    bad = tmp_path / "bad.eiqp"
    bad.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    done = subprocess.run([eiq, "project", "info", str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and "not an eiq-lab project" in done.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "eiq_lab.cli.main",
            "import",
            "folders",
            str(folders),
            "--project",
            str(tmp_path / "s.eiqp"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "imported 20 image(s)" in done.stdout
