"""Extensions: entry-point loading, menu items shown by their when clause, commands with the project API and
storage, panels, and broken extensions listed without breaking the rest."""

import re

import pytest

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.extensions import LOCATIONS, Extensions, context_keys, parse_when
from eiq_lab.project import create_project


def export(project, fmt, quantized):
    settings = {"format": fmt, "type": "int8" if quantized else "float32"}
    return project.add_export(None, fmt, f"/models/m.{fmt}", settings, 1234, "0" * 64)


@pytest.mark.parametrize(
    ("clause", "keys", "expected"),
    [
        ("modelExported", {"modelExported": True}, True),
        ("modelExported", {"modelExported": False}, False),
        ("!modelExported", {"modelExported": False}, True),
        ("modelExported && exportModelQuantized", {"modelExported": True, "exportModelQuantized": False}, False),
        ("modelExported || exportModelQuantized", {"modelExported": False, "exportModelQuantized": True}, True),
        ("exportModelType==tflite", {"exportModelType": "tflite"}, True),
        ("exportModelType == 'onnx'", {"exportModelType": "tflite"}, False),
        ("exportModelType!=onnx && !(exportModelQuantized)", {"exportModelType": "tflite"}, True),
        ("exportModelQuantized == true", {"exportModelQuantized": True}, True),
        ("", {}, True),
    ],
)
def test_when_clauses(clause, keys, expected):
    assert parse_when(clause)(keys) is expected


@pytest.mark.parametrize(
    ("clause", "message"),
    [
        ("modelExported &&", "ends too early"),
        ("modelDeployed", "unknown context key 'modelDeployed'; context keys: modelExported"),
        ("(modelExported", "not closed"),
        ("modelExported; rm -rf /", "cannot read"),
        ("exportModelType == &&", "expected a value"),
        ("modelExported exportModelType", "unexpected 'exportModelType'"),
    ],
)
def test_bad_when_clauses_name_the_problem(clause, message):
    with pytest.raises(InputError, match=re.escape(message)):
        parse_when(clause)


def test_context_keys_follow_the_latest_export(tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        assert context_keys(project) == {"modelExported": False, "exportModelQuantized": False, "exportModelType": ""}
        export(project, "tflite", quantized=True)
        expected = {"modelExported": True, "exportModelQuantized": True, "exportModelType": "tflite"}
        assert context_keys(project) == expected
        export(project, "onnx", quantized=False)
        assert context_keys(project)["exportModelType"] == "onnx"
        assert context_keys(project)["exportModelQuantized"] is False


def test_installed_extension_shows_its_button_only_when_its_condition_holds(sample_installed, tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        ext = Extensions.load(project)
        assert ext.broken == []
        assert [c.title for c in ext.items("home/tools")] == ["Count labels"]
        assert ext.items("deploy/export-settings") == []
        export(project, "tflite", quantized=False)
        assert ext.items("deploy/export-settings") == []  # not quantized
        export(project, "tflite", quantized=True)
        assert [c.id for c in ext.items("deploy/export-settings")] == ["sample.flash"]
        export(project, "onnx", quantized=True)
        assert ext.items("deploy/export-settings") == []  # not TFLite


def test_commands_use_the_project_api_and_both_storages(sample_installed, tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        project.add_label("cat")
        project.add_label("dog")
        ext = Extensions.load(project)
        assert ext.execute("sample.countLabels") == "2 labels: cat, dog"
        export(project, "tflite", quantized=True)
        assert ext.execute("sample.flash").endswith("(flash number 1)")
        assert ext.execute("sample.flash").endswith("(flash number 2)")
        state = ext.contexts["sample"].project_state
        assert state.keys() == ["last_flashed"] and state.get("last_flashed") == "/models/m.tflite"
        assert project.get_meta("ext.sample.last_flashed") == '"/models/m.tflite"'
    # global storage outlives the project; project storage travels with the project file
    with create_project(tmp_path / "q.eiqp") as other:
        ext = Extensions.load(other)
        assert ext.contexts["sample"].global_state.get("flashes") == 2
        assert ext.contexts["sample"].project_state.get("last_flashed", "none") == "none"


def test_panel_contribution_builds_a_widget_from_the_project(sample_installed, tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        image = project.add_image(_png())
        project.add_annotation(image, "cat")
        panel = Extensions.load(project).build_panel("sample.summary")
        assert "<td>cat</td><td>1</td>" in panel.value


def test_unknown_names_and_broken_extensions(tmp_path):
    def bad_location(context):
        context.register_command("x.go", lambda ctx: None)
        context.add_menu_item("frame/file", "x.go")

    def good(context):
        context.register_command("y.go", lambda ctx: "went", "Go")
        context.add_menu_item("frame/help", "y.go")

    ext = Extensions.load(None, {"bad": bad_location, "broken": ImportError("no module named foo"), "good": good})
    assert [(b.name, b.problem.split(":")[0]) for b in ext.broken] == [
        ("bad", "activate() failed"),
        ("broken", "cannot be imported"),
    ]
    assert "unknown menu location 'frame/file'" in ext.broken[0].problem
    assert "x.go" not in ext.commands  # the failed extension's partial registrations are dropped
    assert [c.title for c in ext.items("frame/help")] == ["Go"]
    assert ext.execute("y.go") == "went"
    with pytest.raises(NotFoundError, match=r"registered: y\.go"):
        ext.execute("z.go")
    with pytest.raises(InputError, match="locations: frame/help"):
        ext.items("nowhere")
    with pytest.raises(InputError, match="no project is open"):
        ext.contexts["good"].project_state.keys()
    assert len(LOCATIONS) == 5


def _png():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (200, 10, 10)).save(buffer, "PNG")
    return buffer.getvalue()
