"""The converter registry: discovery (built-ins, entry points, assets, readiness), the choice of plugin,
conversion through a temporary file, and install / uninstall of plugin wheels."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest

from convert.plugin_fixtures import (  # noqa: F401  (pytest finds fixtures by name)
    OTHER_TXT,
    PLUGIN,
    eiq_home,
    plugin_target,
    plugin_wheel,
    write_distribution,
)
from eiq_lab.convert import registry
from eiq_lab.errors import EiqError, InputError, NotFoundError


def by_name(found):
    return {info.name: info for info in found}


def test_builtins_are_plugins_with_their_formats_and_readiness(eiq_home):  # noqa: F811
    found = by_name(registry.plugins())
    assert {"tensorflow", "onnx", "onnx2tf", "rtm"} <= set(found)
    tf = found["tensorflow"]
    assert tf.status == "ready" and tf.builtin
    assert {"h5", "pb", "savedmodel", "tflite"} <= {i["ext"] for i in tf.inputs}
    assert {o["ext"] for o in tf.outputs} == {"tflite", "onnx"}
    # the managed-environment plugins say how to set them up while their environment is missing
    assert found["onnx2tf"].status == "needs setup" and "--setup onnx2tf" in found["onnx2tf"].problem
    assert found["rtm"].status == "needs setup" and "licence" in found["rtm"].problem
    with pytest.raises(EiqError, match="--setup onnx2tf"):
        registry.find("onnx", "tflite")


def test_installed_wheel_is_discovered_with_its_assets_and_converts(plugin_target, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    info = registry.get(PLUGIN)
    assert (info.version, info.status, info.origin) == ("1.2.0", "ready", "entry point deepview_converter")
    assert info.icon.name == "image.svg" and info.icon.is_file()
    assert "converter_plugin" in info.info_page.read_text()
    assert registry.get("converter_plugin").name == PLUGIN  # the distribution's spelling works too

    src = tmp_path / "model.txt"
    src.write_text("a tiny model")
    result = registry.convert(src, tmp_path / "out" / "model.txt", {"model-name": "x", "name": "tiny"})
    assert (result.plugin, result.src_type, result.dst_type, result.message) == (PLUGIN, "txt", "txt", "upper-cased")
    text, params = (tmp_path / "out" / "model.txt").read_text().split("\n")
    assert text == "A TINY MODEL"
    seen = json.loads(params)["params"]  # the plugin reads keys in either spelling
    assert seen == {"name": "tiny", "input-model-type": "txt", "output_model_type": "txt"}


def test_failed_conversion_leaves_no_output_and_keeps_the_old_one(plugin_target, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    src, out = tmp_path / "bad.txt", tmp_path / "out"
    src.write_text("please fail")
    with pytest.raises(EiqError, match="asks to fail"):
        registry.convert(src, out / "new.txt")
    assert list(out.iterdir()) == []  # no output, no temporary folder
    (out / "old.txt").write_text("previous")
    with pytest.raises(EiqError):
        registry.convert(src, out / "old.txt")
    assert (out / "old.txt").read_text() == "previous"
    assert [p.name for p in out.iterdir()] == ["old.txt"]


def test_a_plugin_that_raises_is_an_error_naming_it(plugin_target, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    src = tmp_path / "m.txt"
    src.write_text("raise")
    with pytest.raises(EiqError, match=f"plugin {PLUGIN} failed.*ValueError"):
        registry.convert(src, tmp_path / "o.txt")


def test_a_broken_plugin_is_listed_with_its_error_and_the_rest_work(tmp_path, monkeypatch):
    code = "raise ImportError('needs a library that is not installed')\n"
    monkeypatch.syspath_prepend(str(write_distribution(tmp_path, "broken-plugin", "broken_plugin", code)))
    info = registry.get("broken-plugin")
    assert info.status == "broken" and "needs a library that is not installed" in info.problem
    assert registry.find("h5", "tflite").name == "tensorflow"


def test_unsupported_pairs_list_what_is_supported_and_why(plugin_target, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    with pytest.raises(InputError) as caught:
        registry.find("txt", "tflite")
    assert "cannot convert txt to tflite" in str(caught.value)
    assert "h5->tflite" in str(caught.value) and "txt->txt" in str(caught.value)
    with pytest.raises(InputError, match=r"NNEF.*plugin"):
        registry.find("nnef", "tflite")


def test_plugin_choice_third_party_first_ambiguity_and_explicit_names(plugin_target, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.syspath_prepend(str(plugin_target))
    assert registry.find("txt", "txt").name == PLUGIN
    with pytest.raises(InputError, match="does not convert txt to txt"):
        registry.find("txt", "txt", plugin="tensorflow")
    with pytest.raises(NotFoundError, match=r"no converter plugin 'nope'.*tensorflow"):
        registry.find("txt", "txt", plugin="nope")
    monkeypatch.syspath_prepend(str(write_distribution(tmp_path / "other", "other-txt", "other_txt", OTHER_TXT)))
    with pytest.raises(InputError, match="choose one with --plugin"):
        registry.find("txt", "txt")
    src = tmp_path / "m.txt"
    src.write_text("x")
    assert registry.convert(src, tmp_path / "o.txt", plugin="other-txt").plugin == "other-txt"
    assert (tmp_path / "o.txt").read_text() == "other"


def test_a_wheel_without_a_converter_entry_point_is_refused_before_installing(tmp_path):
    wheel = tmp_path / "not_a_plugin-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("not_a_plugin/__init__.py", "")
        archive.writestr("not_a_plugin-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: not-a-plugin\n")
        archive.writestr("not_a_plugin-1.0.dist-info/entry_points.txt", "[console_scripts]\nx = not_a_plugin:main\n")
    target = tmp_path / "site"
    with pytest.raises(InputError, match=r"registers no converter plugin.*deepview_converter"):
        registry.install(wheel, target=target)
    assert not target.exists()  # pip never ran
    (tmp_path / "plain.whl").write_text("not a zip")
    with pytest.raises(InputError, match="not a wheel"):
        registry.install(tmp_path / "plain.whl")


def test_builtins_cannot_be_uninstalled():
    with pytest.raises(InputError, match="built-in"):
        registry.uninstall("tensorflow")


def test_install_list_uninstall_in_a_throwaway_venv(plugin_wheel, tmp_path):  # noqa: F811
    """-i, -l and -u for real, in a venv that sees eiq-lab, so the real environment is never touched."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")

    def converter(*args):
        done = subprocess.run([python, "-m", "eiq_lab.cli.converter", *args], capture_output=True, text=True)
        return done.returncode, done.stdout, done.stderr

    code, out, err = converter("-i", str(plugin_wheel))
    assert code == 0, err
    assert f"installed plugin {PLUGIN} 1.2.0" in out
    listed = [line for line in converter("-l")[1].splitlines() if line.startswith(PLUGIN)]
    assert listed and "ready" in listed[0] and "txt -> txt" in listed[0]
    code, out, err = converter("-u", PLUGIN)
    assert code == 0, err
    assert f"uninstalled plugin {PLUGIN}" in out
    check = "import importlib.util as u; print(u.find_spec('converter_plugin') is None)"
    assert subprocess.run([python, "-c", check], capture_output=True, text=True).stdout.strip() == "True"


def test_a_plugin_whose_requirements_clash_with_ours_is_refused_by_pip(tmp_path):
    import numpy

    wheel = tmp_path / "clashing-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("clashing/__main__.py", "def query_convert(a, b):\n    return None\n")
        meta = "Metadata-Version: 2.1\nName: clashing\nVersion: 1.0\nRequires-Dist: numpy==1.26.4\n"
        archive.writestr("clashing-1.0.dist-info/METADATA", meta)
        archive.writestr(
            "clashing-1.0.dist-info/entry_points.txt", "[deepview_converter]\nconverter = clashing.__main__\n"
        )
        archive.writestr(
            "clashing-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr("clashing-1.0.dist-info/RECORD", "")
    target = tmp_path / "site"
    with pytest.raises(EiqError, match=r"installing .*clashing.*numpy.*--isolated"):
        registry.install(wheel, target=target, pip_args=["--no-index"])
    assert not (target / "clashing").exists()
    assert numpy.__version__.startswith("2.")
