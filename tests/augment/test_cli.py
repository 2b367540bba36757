"""`eiq augment ...` run in-process: listing, editing, refusing preset edits, previews written as PNG files."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from eiq_lab.augment import PRESETS, preview
from eiq_lab.cli.main import main
from eiq_lab.project import create_project, open_project


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture
def project_path(tmp_path, chelsea, astronaut):
    path = tmp_path / "p.eiqp"
    with create_project(path) as project:
        project.add_images([_png(astronaut)], None)
        project.add_images([_png(chelsea)], "train")
    return path


def stored(path):
    with open_project(path) as project:
        return project.pipelines()


def test_operators_lists_every_operator_with_parameters(capsys):
    code, out, _ = run(capsys, "augment", "operators")
    assert code == 0
    for word in ("rotate (Rotate)", "fill_color", "default 127,127,127", "range -180..180", "gamma_limit"):
        assert word in out
    code, out, _ = run(capsys, "augment", "operators", "--json")
    ops = json.loads(out)
    assert len(ops) == 9 and ops[0]["parameters"][0]["default"] == [-90, 90]


def test_create_add_show_set_move_remove_delete(capsys, project_path):
    code, out, _ = run(capsys, "augment", "list", project_path)
    assert code == 0 and "default  (preset, read-only, 4 step(s))" in out and "none  (preset" in out
    assert run(capsys, "augment", "create", project_path, "mine")[0] == 0
    code, out, _ = run(
        capsys, "augment", "add", project_path, "mine", "rotate", "-p", "0.3", "--param", "limit=-10,10",
        "--param", "interpolation=linear", "--param", "fill_color=0,0,0",
    )  # fmt: skip
    assert code == 0 and "added rotate" in out
    assert run(capsys, "augment", "add", project_path, "mine", "horizontal_flip")[0] == 0
    code, out, _ = run(capsys, "augment", "show", project_path, "mine")
    assert code == 0
    assert "1. rotate" in out and "p=0.3" in out and "limit=-10,10" in out and "interpolation=1 (linear)" in out
    assert "2. horizontal_flip" in out
    code, out, _ = run(capsys, "augment", "set", project_path, "mine", "1", "--param", "limit=-20,20", "--json")
    assert code == 0 and json.loads(out)["steps"][0]["params"]["limit"] == [-20, 20]
    assert run(capsys, "augment", "move", project_path, "mine", "2", "1")[0] == 0
    assert [s["op"] for s in stored(project_path)["mine"]] == ["horizontal_flip", "rotate"]
    assert run(capsys, "augment", "remove", project_path, "mine", "1")[0] == 0
    assert [s["op"] for s in stored(project_path)["mine"]] == ["rotate"]
    code, out, _ = run(capsys, "augment", "list", project_path, "--json")
    assert {"name": "mine", "preset": False, "steps": 1} in json.loads(out)
    assert run(capsys, "augment", "create", project_path, "copy", "--from", "default")[0] == 0
    assert len(stored(project_path)["copy"]) == 4
    assert run(capsys, "augment", "rename", project_path, "copy", "copied")[0] == 0
    assert run(capsys, "augment", "delete", project_path, "copied")[0] == 0
    assert list(stored(project_path)) == ["mine"]


@pytest.mark.parametrize(
    "argv",
    [
        ("add", "default", "rotate"),
        ("set", "default", "1", "-p", "1"),
        ("remove", "default", "1"),
        ("move", "default", "1", "2"),
        ("delete", "default"),
        ("rename", "none", "other"),
    ],
)
def test_preset_edits_fail_and_leave_the_project_unchanged(capsys, project_path, argv):
    run(capsys, "augment", "create", project_path, "mine")
    before, data = stored(project_path), project_path.read_bytes()
    code, _, err = run(capsys, "augment", argv[0], project_path, *argv[1:])
    assert code == 1 and "is a preset and cannot be" in err and "create a copy" in err and "Traceback" not in err
    assert stored(project_path) == before and project_path.read_bytes() == data


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("add", "mine", "spin"), "valid operators: rotate, horizontal_flip"),
        (("add", "mine", "rotate", "--param", "angle=3"), "its parameters: limit, interpolation"),
        (("add", "mine", "rotate", "--param", "limit=10,-10"), "lower <= upper"),
        (("add", "mine", "rotate", "--param", "limit"), "key=value"),
        (("add", "mine", "rotate", "-p", "2"), "probability must be a number from 0 to 1"),
        (("add", "nope", "rotate"), "available: none, default, strong, mine, flip"),
        (("remove", "mine", "1"), "has no steps yet; add one"),
        (("remove", "flip", "0"), "INDEX counts steps from 1 to 1 of 'flip'"),
        (("remove", "flip", "2"), "INDEX counts steps from 1 to 1 of 'flip'"),
        (("move", "flip", "1", "3"), "TO counts steps from 1 to 1"),
        (("add", "flip", "rotate", "--at", "3"), "--at counts steps from 1 to 2"),
        (("set", "flip", "1", "--param", "limit=1,2"), "horizontal_flip has no parameter 'limit'"),
        (("show", "nope"), "available: none, default, strong, mine, flip"),
        (("create", "Default"), "is the name of a preset"),
    ],
)
def test_bad_input_exits_non_zero_naming_the_fix(capsys, project_path, argv, words):
    run(capsys, "augment", "create", project_path, "mine")
    run(capsys, "augment", "create", project_path, "flip")
    run(capsys, "augment", "add", project_path, "flip", "horizontal_flip")
    before = stored(project_path)
    code, _, err = run(capsys, "augment", argv[0], project_path, *argv[1:])
    assert code == 1 and words in err and "Traceback" not in err
    assert stored(project_path) == before


def test_preview_writes_reproducible_pngs(capsys, project_path, tmp_path, chelsea, astronaut):
    out_dir = tmp_path / "previews"
    code, out, _ = run(capsys, "augment", "preview", project_path, "strong", "-n", "3", "--seed", "5", "-o", out_dir)
    assert code == 0 and "wrote 3 preview(s)" in out and "train image" in out
    files = sorted(out_dir.glob("*.png"))
    assert [f.name for f in files] == ["strong-5-00.png", "strong-5-01.png", "strong-5-02.png"]
    expected = preview(PRESETS["strong"], chelsea, n=3, seed=5)  # default image: the first train image
    for file, pixels in zip(files, expected):
        assert np.array_equal(np.asarray(Image.open(file)), pixels)

    code, out, _ = run(
        capsys, "augment", "preview", project_path, "none", "--image", "1", "-n", "1", "-o", out_dir, "--json"
    )
    written = json.loads(out)["files"]
    assert code == 0 and np.array_equal(np.asarray(Image.open(written[0])), astronaut)
    image_file = tmp_path / "cat.png"
    image_file.write_bytes(_png(chelsea[:20]))
    code, out, _ = run(
        capsys, "augment", "preview", project_path, "none", "--image", image_file, "-n", "1", "-o", out_dir
    )
    assert code == 0
    code, _, err = run(capsys, "augment", "preview", project_path, "none", "--image", "nothing.png", "-o", out_dir)
    assert code == 1 and "--image must be" in err


def test_preview_without_train_images_says_how_to_choose_one(capsys, tmp_path):
    path = tmp_path / "empty.eiqp"
    create_project(path).close()
    code, _, err = run(capsys, "augment", "preview", path, "default", "-o", tmp_path / "out")
    assert code == 1 and "no train images; choose one with --image" in err
