"""Remote devices: the targets list in $EIQ_HOME edited from the panel (add with the profile flag, replace,
remove), and the connection test against a real runner and a closed port."""

import json
import socket

import pytest
from runner.conftest import runner  # noqa: F401  (pytest finds fixtures by name)

from eiq_lab.runner.targets import add_target, list_targets
from eiq_lab.widgets.devices import RemoteDevices


@pytest.fixture(autouse=True)
def eiq_home(tmp_path, monkeypatch):
    home = tmp_path / "eiq-home"
    monkeypatch.setenv("EIQ_HOME", str(home))
    return home


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_add_shows_the_device_and_saves_it_with_a_complete_uri(eiq_home):
    panel = RemoteDevices()
    changed = []
    panel.on_changed = lambda: changed.append(True)
    assert "No remote devices yet" in panel.table.value
    panel.name.value = "imx93"
    panel.uri.value = "192.168.1.20:10818"
    panel.profile.value = True
    panel.add_button.click()
    saved = json.loads((eiq_home / "targets.json").read_text())["targets"]
    assert saved == [{"name": "imx93", "uri": "http://192.168.1.20:10818/v1", "profile": True}]
    assert "imx93" in panel.table.value and "http://192.168.1.20:10818/v1" in panel.table.value
    assert panel.choice.value == "imx93" and "added imx93" in panel.status.value
    assert panel.name.value == "" and panel.uri.value == ""
    assert changed == [True]


def test_bad_or_duplicate_devices_are_refused_and_replace_is_explicit():
    add_target("board", "10.0.0.1:10818")
    panel = RemoteDevices()
    assert panel.choice.options == ("board",)
    panel.name.value = "board"
    panel.uri.value = "10.0.0.2:10818"
    panel.add_button.click()
    assert "exists" in panel.status.value and list_targets()[0].uri == "http://10.0.0.1:10818/v1"
    panel.replace.value = True
    panel.add_button.click()
    assert list_targets()[0].uri == "http://10.0.0.2:10818/v1"
    panel.name.value = "two words"
    panel.uri.value = "h:1"
    panel.add_button.click()
    assert "a target name is" in panel.status.value
    panel.name.value = "ok"
    panel.uri.value = ""
    panel.add_button.click()
    assert "give the runner&#x27;s URI" in panel.status.value
    assert [t.name for t in list_targets()] == ["board"]


def test_remove_forgets_the_chosen_device():
    add_target("a", "h1:1")
    add_target("b", "h2:2")
    panel = RemoteDevices()
    panel.choice.value = "a"
    panel.remove_button.click()
    assert [t.name for t in list_targets()] == ["b"]
    assert panel.choice.options == ("b",) and "removed a" in panel.status.value
    panel.remove_button.click()
    panel.remove_button.click()
    assert "no device chosen" in panel.status.value


def test_connection_test_shows_the_runner_or_why_it_failed(runner):  # noqa: F811
    server = runner()  # a real runner, no model loaded yet
    add_target("local", server.url)
    add_target("gone", f"127.0.0.1:{_closed_port()}")
    panel = RemoteDevices(timeout=3)
    panel.choice.value = "local"
    panel.test_button.click()
    panel.job.wait(30)
    assert "local</b> answers: engine" in panel.result.value and "no model loaded" in panel.result.value
    assert "local: reachable" in panel.status.value
    panel.choice.value = "gone"
    panel.test_button.click()
    panel.job.wait(30)
    assert "gone</b> is not reachable" in panel.result.value and "not reachable" in panel.status.value
