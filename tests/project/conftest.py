"""Fixtures for the project-store tests: tiny images made in memory and fresh project files."""

from __future__ import annotations

import pytest

from eiq_lab.project import create_project

from .imaging import encode_image


@pytest.fixture
def make_image():
    """`encode_image` as a fixture: ``make_image("JPEG", (32, 24), (0, 255, 0))``."""
    return encode_image


@pytest.fixture
def project(tmp_path):
    """A new, empty project file, closed after the test."""
    p = create_project(tmp_path / "test.eiqp")
    yield p
    p.close()
