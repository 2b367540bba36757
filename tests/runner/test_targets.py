"""The remote devices list (`eiq targets`): kept in $EIQ_HOME/targets.json, names checked, replaced only when
asked, and `test` asks the real runner who it is (or says why it cannot)."""

from __future__ import annotations

import json
import socket

import pytest

from eiq_lab.cli.main import main
from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.runner.targets import add_target, get_target, list_targets, probe_target, resolve_uri


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("EIQ_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_add_list_remove_through_the_cli(home, capsys):
    assert main(["targets", "add", "imx93", "10.0.0.5:10818", "--profile"]) == 0
    assert main(["targets", "add", "host", "http://127.0.0.1:10819/v1/"]) == 0
    saved = json.loads((home / "targets.json").read_text())["targets"]
    assert saved == [
        {"name": "imx93", "uri": "http://10.0.0.5:10818/v1", "profile": True},
        {"name": "host", "uri": "http://127.0.0.1:10819/v1", "profile": False},
    ]
    capsys.readouterr()
    assert main(["targets", "list", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == saved
    assert main(["targets", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["imx93", "yes", "http://10.0.0.5:10818/v1"]
    assert main(["targets", "remove", "imx93"]) == 0
    assert [t.name for t in list_targets()] == ["host"]
    assert resolve_uri("host") == "http://127.0.0.1:10819/v1" and resolve_uri("h:1") == "http://h:1/v1"


def test_an_existing_name_is_replaced_only_when_asked(capsys):
    assert main(["targets", "add", "board", "10.0.0.5:10818"]) == 0
    assert main(["targets", "add", "board", "10.0.0.6:10818"]) == 1
    assert "--replace" in capsys.readouterr().err
    assert get_target("board").uri == "http://10.0.0.5:10818/v1"
    assert main(["targets", "add", "board", "10.0.0.6:10818", "--replace"]) == 0
    assert [(t.name, t.uri) for t in list_targets()] == [("board", "http://10.0.0.6:10818/v1")]


def test_bad_names_unknown_targets_and_a_broken_file_are_explained(home, capsys):
    for name in ("", "-x", "a b", "x/y", "n" * 65):
        with pytest.raises(InputError, match="target name"):
            add_target(name, "h:1")
    assert main(["targets", "add", "a b", "h:1"]) == 1
    assert main(["targets", "remove", "nope"]) == 1
    assert "no target named 'nope'" in capsys.readouterr().err
    with pytest.raises(InputError, match="must name a host"):
        add_target("ok", "http:///v1")
    assert not (home / "targets.json").exists()  # nothing was saved by the refused adds
    home.mkdir(parents=True, exist_ok=True)
    (home / "targets.json").write_text("{not json")
    assert main(["targets", "list"]) == 1
    err = capsys.readouterr().err
    assert "targets.json" in err and "delete it" in err


def test_an_unreachable_target_says_why(capsys):
    port = _closed_port()
    add_target("gone", f"127.0.0.1:{port}")
    assert main(["targets", "test", "gone"]) == 1
    out = capsys.readouterr().out
    assert "unreachable" in out and f"127.0.0.1:{port}" in out and "eiq-runner -H" in out
    with pytest.raises(NotFoundError, match="gone"):
        probe_target("other")


def test_a_running_target_reports_engine_version_and_model(runner, models, capsys):
    server = runner(models["float"])
    add_target("local", server.url.removeprefix("http://"), profile=True)
    assert main(["targets", "test", "local"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"local ({server.url}): reachable; engine tflite ") and "cnn.tflite" in out
    result = probe_target("local")
    assert result["reachable"] and result["reason"] is None and result["profile"] is True
    assert result["engine"] == "tflite" and result["version"] and result["labels"] == ["cat", "dog", "bird", "fish"]
    empty = runner()  # reachable, no model yet
    add_target("empty", empty.url)
    assert main(["targets", "test", "empty", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] is None
