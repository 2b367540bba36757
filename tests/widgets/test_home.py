"""Home: creating and opening projects (recent ones remembered in $EIQ_HOME), the import and Model Tool
hand-offs, and the command line (the commands to run when no Jupyter server with terminals is around)."""

import json
import os

import pytest

from eiq_lab.project import create_project, open_project
from eiq_lab.project.recent import recent_projects
from eiq_lab.widgets.home import Home


@pytest.fixture(autouse=True)
def eiq_home(tmp_path, monkeypatch):
    home = tmp_path / "eiq-home"
    monkeypatch.setenv("EIQ_HOME", str(home))
    return home


@pytest.fixture
def workspace(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_create_names_the_file_in_the_workspace_and_remembers_it(workspace, eiq_home):
    opened = []
    home = Home(workspace=workspace)
    home.on_project = opened.append
    home.path.value = "flowers"
    home.create_button.click()
    assert [p.path for p in opened] == [workspace / "flowers.eiqp"]
    assert (workspace / "flowers.eiqp").is_file()
    assert home.project is opened[0]
    assert "created flowers.eiqp" in home.status.value
    assert "flowers.eiqp" in home.current.value
    stored = json.loads((eiq_home / "recent_projects.json").read_text())
    assert stored["projects"] == [str(workspace / "flowers.eiqp")]
    opened[0].close()


def test_a_new_home_lists_recent_and_workspace_projects_and_opens_the_chosen_one(workspace, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    first = Home(workspace=elsewhere)
    first.path.value = str(elsewhere / "old.eiqp")
    first.create_button.click()
    first.project.close()
    create_project(workspace / "local.deepview").close()

    home = Home(workspace=workspace)
    values = [value for _, value in home.recent.options]
    assert values == [str(elsewhere / "old.eiqp"), str(workspace / "local.deepview")]
    opened = []
    home.on_project = opened.append
    home.recent.value = str(workspace / "local.deepview")
    home.open_recent_button.click()
    assert [p.path for p in opened] == [workspace / "local.deepview"]
    assert recent_projects()[0] == workspace / "local.deepview"
    opened[0].close()


def test_bad_names_and_missing_projects_say_what_to_do(workspace):
    opened = []
    home = Home(workspace=workspace)
    home.on_project = opened.append
    home.open_button.click()
    assert "type a project file name" in home.status.value
    home.path.value = "notes.txt"
    home.create_button.click()
    assert "ends in .eiqp or .deepview" in home.status.value
    home.path.value = "nowhere"
    home.open_button.click()
    assert "does not exist" in home.status.value and "nowhere.eiqp" in home.status.value
    create_project(workspace / "taken.eiqp").close()
    home.path.value = "taken.eiqp"
    home.create_button.click()
    assert "already exists" in home.status.value
    home.open_recent_button.click()
    assert "choose a project in the list" in home.status.value
    assert opened == [] and home.project is None
    assert not (workspace / "notes.txt").exists() and not (workspace / "nowhere.eiqp").exists()


def test_a_refused_project_is_closed_and_the_current_one_kept(workspace):
    home = Home(workspace=workspace)
    home.path.value = "first"
    home.create_button.click()
    first = home.project

    def refuse(project):
        from eiq_lab.errors import EiqError

        raise EiqError("Training is still working on first.eiqp; wait for it or stop it first")

    home.on_project = refuse
    home.path.value = "second"
    home.create_button.click()
    assert "still working" in home.status.value
    assert home.project is first and "first.eiqp" in home.current.value
    first.close()


def test_model_tool_button_shows_only_when_a_model_tool_is_wired(workspace):
    home = Home(workspace=workspace)
    assert home.model_tool_button.layout.display == "none"
    calls = []
    home.on_model_tool = lambda: calls.append("tool")
    assert home.model_tool_button.layout.display != "none"
    home.model_tool_button.click()
    assert calls == ["tool"]
    home.on_model_tool = None
    assert home.model_tool_button.layout.display == "none"


def test_import_needs_a_project_then_hands_off_or_shows_the_importer_below(workspace):
    from eiq_lab.widgets.importer import Importer

    home = Home(workspace=workspace)
    home.import_button.click()
    assert "create or open a project first" in home.status.value
    home.path.value = "data"
    home.create_button.click()
    home.import_button.click()
    [importer] = home.below.children
    assert isinstance(importer, Importer) and importer.project is home.project
    asked = []
    home.on_import = lambda: asked.append(True)
    home.import_button.click()
    assert asked == [True]
    home.project.close()


def test_command_line_without_a_terminal_server_shows_the_commands(workspace):
    project = open_project(workspace / "p.eiqp", create=True)
    home = Home(workspace=workspace, project=project)
    home.terminal_button.click()
    text = home.terminal.value
    assert "no terminal" in text
    assert "eiq project info p.eiqp" in text and "eiq import folders" in text and str(workspace) in text
    project.close()


def test_the_jupyter_server_is_the_one_that_started_this_process(tmp_path, monkeypatch):
    from eiq_lab.widgets.home import JupyterServer

    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path))
    assert JupyterServer.find() is None  # plain Python, Voila: no server record for our parent
    record = {"url": "http://127.0.0.1:8888/", "base_url": "/user/me/", "token": "t", "root_dir": str(tmp_path)}
    (tmp_path / f"jpserver-{os.getppid() + 1}.json").write_text(json.dumps(record))  # another server's record
    assert JupyterServer.find() is None
    (tmp_path / f"jpserver-{os.getppid()}.json").write_text(json.dumps(record))
    server = JupyterServer.find()
    assert (server.url, server.base_url, server.token) == ("http://127.0.0.1:8888/", "/user/me/", "t")
