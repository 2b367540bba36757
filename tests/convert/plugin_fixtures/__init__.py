"""Test plugins for the converter registry: the `converter_plugin` package (the guide's layout, built into a
real wheel with pip, offline) and hand-written distributions (a .dist-info folder with entry_points.txt).

Test modules import the fixtures from here (pytest finds fixtures by name).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SOURCE = Path(__file__).parent / "converter_plugin"
PLUGIN = "converter-plugin"


def build_wheel(dest: Path) -> Path:
    """Build the fixture plugin into a wheel in `dest` (offline: no build isolation, no dependencies)."""
    work = dest / "src"
    shutil.copytree(SOURCE, work, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(dest),
         str(work)],
        check=True, capture_output=True,
    )  # fmt: skip
    return next(dest.glob("converter_plugin-*.whl"))


def write_distribution(root: Path, name: str, module: str, code: str, group: str = "deepview_converter") -> Path:
    """An installed distribution by hand: ``<module>.py`` and ``<name>-1.0.dist-info`` registering it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(textwrap.dedent(code))
    info = root / f"{name}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{group}]\nconverter = {module}\n")
    return root


#: A second plugin converting the fixture's 'txt' pseudo-format (to test ambiguity).
OTHER_TXT = """
def query_convert(src_type, dst_type):
    if src_type is None and dst_type is None:
        txt = [{"ext": "txt", "name": "Text"}]
        return {"supported_inputs": txt, "supported_outputs": txt}
    return {} if (src_type, dst_type) == ("txt", "txt") else None


def convert(src_file, dst_file, params):
    with open(dst_file, "w") as f:
        f.write("other")
    return {"success": "yes", "message": "other plugin"}
"""


@pytest.fixture(scope="session")
def plugin_wheel(tmp_path_factory) -> Path:
    """The fixture plugin's wheel, built once per session."""
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="session")
def plugin_target(plugin_wheel, tmp_path_factory) -> Path:
    """A folder the fixture plugin was installed into with `registry.install(..., target=)` (not on sys.path)."""
    from eiq_lab.convert import registry

    target = tmp_path_factory.mktemp("site")
    registry.install(plugin_wheel, target=target, pip_args=["--no-index", "--no-deps"])
    return target


@pytest.fixture
def eiq_home(tmp_path, monkeypatch) -> Path:
    """An empty eiq-lab user data folder (managed environments go there)."""
    home = tmp_path / "eiq-home"
    monkeypatch.setenv("EIQ_HOME", str(home))
    return home
