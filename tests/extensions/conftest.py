"""The sample extension package installed the way pip installs it: the package beside a .dist-info folder
with its entry points, on sys.path (no pip run needed; importlib.metadata reads it like any installed one)."""

import shutil
from pathlib import Path

import pytest

SAMPLE = Path(__file__).parent / "sample"


def install_sample(site: Path) -> Path:
    """Copy the sample extension into `site` with its dist-info; returns `site`."""
    shutil.copytree(SAMPLE / "eiq_sample_extension", site / "eiq_sample_extension")
    info = site / "eiq_sample_extension-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eiq-sample-extension\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text("[eiq_lab.extensions]\nsample = eiq_sample_extension:activate\n")
    return site


@pytest.fixture
def sample_installed(tmp_path, monkeypatch):
    """The sample extension installed for this test; EIQ_HOME is a temp folder (global storage lands there)."""
    site = install_sample(tmp_path / "site")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setenv("EIQ_HOME", str(tmp_path / "home"))
    yield site
