"""Model-test fixtures: a clean plugin environment, user plugin folders written on the fly, tiny models."""

from __future__ import annotations

import textwrap

import pytest

from eiq_lab.models import registry
from eiq_lab.models.registry import BASE_VARIABLES, USER_VARIABLES


@pytest.fixture(autouse=True)
def clean_plugins(monkeypatch):
    """No plugin folder from the caller's environment; afterwards the registry forgets the test's plugins."""
    for variable in BASE_VARIABLES + USER_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    yield
    monkeypatch.undo()
    registry(refresh=True)


@pytest.fixture
def plugin_folder(tmp_path):
    """``write("classification/image/Tiny/tiny.py", source)`` writes a plugin file under a fresh folder."""
    root = tmp_path / "user_models"
    root.mkdir()

    def write(relative: str, source: str):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return path

    write.root = root
    return write
