"""Named pipelines in a project: presets are read-only, stored ones are created and edited in one transaction."""

from __future__ import annotations

import pytest

from eiq_lab.augment import (
    PRESETS,
    Pipeline,
    Step,
    add_step,
    create_pipeline,
    delete_pipeline,
    get_pipeline,
    move_step,
    pipeline_names,
    remove_step,
    rename_pipeline,
    update_step,
)
from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.project import create_project


@pytest.fixture
def project(tmp_path):
    p = create_project(tmp_path / "aug.eiqp")
    yield p
    p.close()


def test_presets_are_listed_first_and_hold_what_they_say(project):
    assert pipeline_names(project) == ["none", "default", "strong"]
    assert pipeline_names() == ["none", "default", "strong"]
    assert PRESETS["none"].steps == ()
    default = get_pipeline(project, "default")
    assert default.preset and [s.op for s in default.steps] == [
        "horizontal_flip",
        "rotate",
        "random_brightness",
        "random_contrast",
    ]
    assert get_pipeline(None, "Default") is PRESETS["default"]


def test_create_edit_move_remove_rename_delete(project):
    created = create_pipeline(project, "mine")
    assert created == Pipeline((), "mine") and project.pipelines() == {"mine": []}
    add_step(project, "mine", "horizontal_flip")
    add_step(project, "mine", "rotate", 0.3, limit=[-10, 10], fill_color=[0, 0, 0])
    pipeline = add_step(project, "mine", "random_gamma", 1.0, index=0)
    assert [s.op for s in pipeline.steps] == ["random_gamma", "horizontal_flip", "rotate"]
    assert get_pipeline(project, "mine") == pipeline
    stored = project.pipeline_operators("mine")
    assert stored[2]["params"] == {"limit": [-10, 10], "interpolation": 0, "border_mode": 0, "fill_color": [0, 0, 0]}

    pipeline = update_step(project, "mine", 2, probability=0.9, limit=[-5, 5])
    assert pipeline.steps[2] == Step("rotate", 0.9, {"limit": [-5, 5], "fill_color": [0, 0, 0]})
    pipeline = move_step(project, "mine", 0, -1)
    assert [s.op for s in pipeline.steps] == ["horizontal_flip", "rotate", "random_gamma"]
    pipeline = remove_step(project, "mine", 1)
    assert [s.op for s in pipeline.steps] == ["horizontal_flip", "random_gamma"]
    assert pipeline_names(project) == ["none", "default", "strong", "mine"]

    renamed = rename_pipeline(project, "mine", "yours")
    assert renamed.name == "yours" and list(project.pipelines()) == ["yours"]
    delete_pipeline(project, "yours")
    assert project.pipelines() == {}


def test_copies_of_presets_and_stored_pipelines(project):
    copy = create_pipeline(project, "my-default", copy_from="default")
    assert copy.steps == PRESETS["default"].steps and not copy.preset
    add_step(project, "my-default", "vertical_flip", 0.1)
    second = create_pipeline(project, "second", copy_from="my-default")
    assert len(second.steps) == 5
    assert len(PRESETS["default"].steps) == 4  # the preset is untouched
    steps = create_pipeline(project, "given", [{"op": "random_blur", "probability": 0.2}]).steps
    assert steps == (Step("random_blur", 0.2),)
    with pytest.raises(InputError, match="not both"):
        create_pipeline(project, "both", [Step("random_blur")], copy_from="default")
    with pytest.raises(NotFoundError, match="available: none, default, strong, my-default"):
        create_pipeline(project, "third", copy_from="nope")
    assert "third" not in project.pipelines()


@pytest.mark.parametrize(
    "edit",
    [
        lambda p: add_step(p, "default", "vertical_flip"),
        lambda p: update_step(p, "default", 0, probability=1.0),
        lambda p: remove_step(p, "default", 0),
        lambda p: move_step(p, "default", 0, 1),
        lambda p: rename_pipeline(p, "default", "other"),
        lambda p: delete_pipeline(p, "DEFAULT"),
        lambda p: add_step(p, "none", "rotate"),
    ],
)
def test_presets_cannot_be_edited_and_the_project_stays_as_it_was(project, edit):
    create_pipeline(project, "mine", [Step("horizontal_flip")])
    before = project.pipelines()
    with pytest.raises(InputError, match=r"is a preset and cannot be .*; create a copy with"):
        edit(project)
    assert project.pipelines() == before
    assert PRESETS["default"] == get_pipeline(project, "default")


def test_preset_names_cannot_be_taken(project):
    for name in ("default", "None", " strong "):
        with pytest.raises(InputError, match="is the name of a preset"):
            create_pipeline(project, name)
    create_pipeline(project, "mine")
    with pytest.raises(InputError, match="is the name of a preset"):
        rename_pipeline(project, "mine", "Default")
    assert project.pipelines() == {"mine": []}


def test_bad_edits_change_nothing(project):
    create_pipeline(project, "mine", [Step("rotate", 0.5)])
    before = project.pipelines()
    bad = [
        (lambda: add_step(project, "mine", "spin"), NotFoundError, "valid operators: rotate"),
        (lambda: add_step(project, "mine", "rotate", angle=4), NotFoundError, "its parameters: limit"),
        (lambda: add_step(project, "mine", "rotate", 1.2), InputError, "probability"),
        (lambda: add_step(project, "mine", "rotate", limit=[5, -5]), InputError, "lower <= upper"),
        (lambda: update_step(project, "mine", 3, probability=0.1), InputError, "from 0 to 0"),
        (lambda: remove_step(project, "mine", 1), InputError, "index"),
        (lambda: move_step(project, "mine", 0, 2), InputError, "new_index"),
        (lambda: add_step(project, "nope", "rotate"), NotFoundError, "available: none, default, strong, mine"),
        (lambda: create_pipeline(project, "mine"), InputError, "already exists"),
        (lambda: create_pipeline(project, "  "), InputError, "cannot be empty"),
        (lambda: delete_pipeline(project, "nope"), NotFoundError, "stored: mine"),
    ]
    for call, error, words in bad:
        with pytest.raises(error, match=words):
            call()
    assert project.pipelines() == before


def test_a_stored_pipeline_that_no_longer_checks_names_its_step(project):
    project.save_pipeline("old", [{"op": "rotate"}, {"op": "sharpen", "probability": 0.5}])
    with pytest.raises(NotFoundError, match="pipeline 'old' step 2: unknown augmentation operator 'sharpen'"):
        get_pipeline(project, "old")
