"""Draft training settings persist in the project and are checked before they are stored."""

import pytest

from eiq_lab.errors import InputError, ProjectError
from eiq_lab.project import create_project, open_project
from eiq_lab.train.drafts import DRAFT_KEY, load_draft, save_draft


def test_draft_defaults_then_persists_across_reopen(tmp_path):
    path = tmp_path / "p.eiqp"
    with create_project(path) as project:
        draft = load_draft(project)
        assert (draft.learning_rate, draft.batch_size, draft.input_size) == (1e-4, 10, (128, 128, 3))
        save_draft(project, learning_rate=0.01, input_size=(96, 96, 3))
    with open_project(path) as project:
        draft = load_draft(project)
        assert draft.learning_rate == 0.01 and draft.input_size == (96, 96, 3)


def test_invalid_change_is_refused_and_nothing_is_stored(tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        save_draft(project, batch_size=4)
        with pytest.raises(InputError):
            save_draft(project, batch_size=0)
        assert load_draft(project).batch_size == 4
        project.set_meta(DRAFT_KEY, "{not json")
        with pytest.raises(ProjectError, match="save new ones"):
            load_draft(project)
