"""The Portal: the WORKSPACES switcher in the guide's order, lazy panels, a note for a panel module that is not
there, rebuilding for another project, refusing to switch while work runs, and the hand-offs between panels
(checked with small stand-in panels registered under the real names, and with the real Home and Importer)."""

import os
import sys
import threading
import types
from pathlib import Path

import ipywidgets as w
import pytest

from eiq_lab.errors import EiqError, InputError, ProjectError
from eiq_lab.project import create_project
from eiq_lab.widgets import PANELS
from eiq_lab.widgets.base import Panel
from eiq_lab.widgets.importer import Importer
from eiq_lab.widgets.portal import TOOLS, Portal

ALL = [
    "Home", "Import", "Curator", "Annotator", "Augmentation", "Model selection", "Training", "Validation",
    "Export", "Remote devices",
]  # fmt: skip


class StandInCurator(Panel):
    def __init__(self, project):
        self.project = project
        self.on_open_image = None
        self.refreshed = 0
        super().__init__([w.Label("curator")])

    def refresh(self):
        self.refreshed += 1


class StandInAnnotator(Panel):
    def __init__(self, project):
        self.project = project
        self.shown = []
        super().__init__()

    def show_image(self, image_id):
        self.shown.append(image_id)


class StandInTraining(Panel):
    def __init__(self, project):
        self.project = project
        self.on_trained = None
        super().__init__()


class StandInExport(Panel):
    def __init__(self, project, run=None, report=None):
        self.project, self.run_shown, self.report = project, run, report
        self.on_open_model = None
        super().__init__()


class StandInValidation(Panel):
    def __init__(self, project):
        self.project = project
        self.on_deploy = None
        self.runs_shown = []
        super().__init__()

    def refresh(self, run=None):
        self.runs_shown.append(run)


class StandInModelTool(Panel):
    def __init__(self, path=None):
        self.opened = [] if path is None else [path]
        super().__init__()

    def open_model(self, path):
        self.opened.append(path)


class BrokenPanel(Panel):
    def __init__(self, project):
        raise InputError("the model registry cannot be read")


@pytest.fixture(autouse=True)
def eiq_home(tmp_path, monkeypatch):
    monkeypatch.setenv("EIQ_HOME", str(tmp_path / "eiq-home"))


@pytest.fixture
def stand_ins(monkeypatch):
    """Register the stand-in panels under the real workspace names."""
    module = types.ModuleType("eiq_lab.widgets.portal_stand_ins")
    classes = {
        "curator": StandInCurator,
        "annotator": StandInAnnotator,
        "training": StandInTraining,
        "validation": StandInValidation,
        "export": StandInExport,
    }
    for cls in (*classes.values(), StandInModelTool):
        setattr(module, cls.__name__, cls)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    for name, cls in classes.items():
        monkeypatch.setitem(PANELS, name, ("portal_stand_ins", cls.__name__))
    monkeypatch.setitem(TOOLS, "model_tool", ("portal_stand_ins", "StandInModelTool"))


def _labels(portal):
    return [label for label, _ in portal.workspaces.options]


def _create(portal, name):
    home = portal.panels["home"]
    home.path.value = name
    home.create_button.click()
    assert "created" in home.status.value, home.status.value
    return portal.project


def test_starts_on_home_and_offers_the_workspaces_once_a_project_is_open(tmp_path, stand_ins):
    portal = Portal(workspace=tmp_path)
    assert _labels(portal) == ["Home", "Remote devices"]
    assert list(portal.panels) == ["home"] and portal.body.children == (portal.panels["home"],)
    portal.workspaces.value = "devices"
    assert type(portal.body.children[0]).__name__ == "RemoteDevices"
    portal.show_guarded = portal.guarded(portal.show)
    portal.show_guarded("curator")
    assert "open or create a project on Home first" in portal.status.value

    project = _create(portal, "birds")
    assert project.path == tmp_path / "birds.eiqp"
    assert _labels(portal) == ALL
    assert "birds.eiqp" in portal.project_name.value
    assert "curator" not in portal.panels  # built only when first shown
    portal.workspaces.value = "curator"
    curator = portal.panels["curator"]
    assert portal.body.children == (curator,) and curator.project is project
    portal.workspaces.value = "home"
    portal.workspaces.value = "curator"
    assert portal.panels["curator"] is curator  # kept, not rebuilt


def test_a_missing_panel_module_shows_a_note_naming_it(tmp_path, monkeypatch, stand_ins):
    monkeypatch.setitem(PANELS, "curator", ("no_such_panel_module", "Curator"))
    portal = Portal(create_project(tmp_path / "p.eiqp"), workspace=tmp_path)
    note = portal.show("curator")
    assert "eiq_lab/widgets/no_such_panel_module.py" in note.value and "not available yet" in note.value
    monkeypatch.setitem(PANELS, "curator", ("portal_stand_ins", "StandInCurator"))  # the module lands
    assert isinstance(portal.show("curator"), StandInCurator)  # the next visit builds it


def test_a_panel_that_cannot_open_says_why(tmp_path, monkeypatch, stand_ins):
    module = sys.modules["eiq_lab.widgets.portal_stand_ins"]
    module.BrokenPanel = BrokenPanel
    monkeypatch.setitem(PANELS, "augmentation", ("portal_stand_ins", "BrokenPanel"))
    portal = Portal(create_project(tmp_path / "p.eiqp"), workspace=tmp_path)
    note = portal.show("augmentation")
    assert "could not open: the model registry cannot be read" in note.value


def test_opening_another_project_rebuilds_its_panels_and_closes_the_old_one(tmp_path, stand_ins):
    portal = Portal(workspace=tmp_path)
    first = _create(portal, "first")
    old_curator = portal.show("curator")
    portal.show("home")
    second = _create(portal, "second")
    assert portal.project is second and "second.eiqp" in portal.project_name.value
    assert "curator" not in portal.panels and "home" in portal.panels
    assert portal.show("curator") is not old_curator and portal.panels["curator"].project is second
    with pytest.raises(ProjectError, match="closed"):
        first.count_images()


def test_switching_project_is_refused_while_a_panel_works(tmp_path, stand_ins):
    portal = Portal(workspace=tmp_path)
    first = _create(portal, "first")
    training = portal.show("training")
    release = threading.Event()
    training.run(lambda progress: release.wait(30))
    portal.show("home")
    home = portal.panels["home"]
    home.path.value = "second"
    home.create_button.click()
    assert "Training is still working on first.eiqp" in home.status.value
    assert portal.project is first and home.project is first and first.count_images() == 0
    release.set()
    training.job.wait(30)
    home.create_button.click()
    assert portal.project.path.name == "second.eiqp"


def test_home_import_opens_the_import_workspace_and_an_import_refreshes_the_curator(tmp_path, stand_ins):
    portal = Portal(workspace=tmp_path)
    project = _create(portal, "p")
    curator = portal.show("curator")
    portal.show("home")
    portal.panels["home"].import_button.click()
    importer = portal.body.children[0]
    assert isinstance(importer, Importer) and importer.project is project
    assert portal.workspaces.value == "import"
    importer.on_imported([])  # what the panel calls after a successful import
    assert curator.refreshed == 0  # refreshed when shown, not while hidden
    assert portal.show("curator") is curator and curator.refreshed == 1


def test_hand_offs_curator_to_annotator_training_to_validation_validation_to_export(tmp_path, stand_ins):
    portal = Portal(create_project(tmp_path / "p.eiqp"), workspace=tmp_path)
    curator = portal.show("curator")
    curator.on_open_image(42)
    annotator = portal.panels["annotator"]
    assert portal.body.children == (annotator,) and annotator.shown == [42]
    assert portal.workspaces.value == "annotator"

    training = portal.show("training")
    finished = threading.Thread(target=training.on_trained, args=(6,))  # a run ends: the training thread reports
    finished.start()
    finished.join()
    assert portal.body.children == (training,) and "validation" not in portal.panels  # the chart stays in view
    training.on_trained(7)  # the Validate button (the kernel's main thread)
    validation = portal.panels["validation"]
    assert portal.body.children == (validation,) and validation.runs_shown == [7]
    report = object()
    validation.on_deploy(3, report)
    export = portal.body.children[0]
    assert isinstance(export, StandInExport) and export.run_shown == 3 and export.report is report
    assert portal.workspaces.value == "export"

    devices = portal.show("devices")  # a device added: Validation lists it when shown again
    devices.name.value, devices.uri.value = "board", "10.0.0.9:10818"
    devices.add_button.click()
    assert portal.show("validation") is validation and validation.runs_shown == [7, None]


def test_portal_opens_a_project_given_by_path(tmp_path):
    create_project(tmp_path / "given.eiqp").close()
    portal = Portal(tmp_path / "given.eiqp", workspace=tmp_path)
    assert portal.project.path == tmp_path / "given.eiqp"
    assert _labels(portal) == ALL and "given.eiqp" in portal.panels["home"].current.value


def test_the_model_tool_opens_from_home_and_from_export_in_one_view(tmp_path, stand_ins):
    portal = Portal(create_project(tmp_path / "p.eiqp"), workspace=tmp_path)
    home = portal.panels["home"]
    assert home.model_tool_button.layout.display != "none"
    home.model_tool_button.click()
    [tool] = portal.body.children
    assert isinstance(tool, StandInModelTool) and tool.opened == []
    assert portal.workspaces.value is None  # no workspace claims the page
    export = portal.show("export")
    export.on_open_model(str(tmp_path / "p_run1.tflite"))
    assert portal.body.children == (tool,) and tool.opened == [str(tmp_path / "p_run1.tflite")]


def test_tools_that_are_not_installed_hide_their_buttons(tmp_path, monkeypatch):
    monkeypatch.setitem(TOOLS, "model_tool", ("no_such_tool_module", "ModelTool"))
    monkeypatch.setitem(TOOLS, "plugins", ("no_such_tool_module", "Plugins"))
    portal = Portal(workspace=tmp_path)
    assert portal.panels["home"].model_tool_button.layout.display == "none"
    assert portal.plugins_button.layout.display == "none"
    with pytest.raises(EiqError, match=r"no_such_tool_module\.py"):
        portal.show_tool("plugins")


def test_the_portal_notebook_runs_as_a_plain_notebook(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    repo = Path(__file__).resolve().parents[2]
    monkeypatch.setenv("EIQ_WORKSPACE", str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(repo), os.environ.get("PYTHONPATH")) if p))
    notebook = nbformat.read(repo / "notebooks" / "portal.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    [cell] = [c for c in notebook.cells if c.cell_type == "code"]
    [shown] = [o for o in cell.outputs if o.output_type == "execute_result"]
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]  # the Portal widget, no error output
    assert "Portal(" in shown["data"]["text/plain"]
