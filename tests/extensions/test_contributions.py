"""Extension buttons in panels: shown only while their when clause holds; a click runs the command."""

from eiq_lab.extensions import Extensions
from eiq_lab.project import create_project
from eiq_lab.widgets.contributions import Contributions


def test_export_settings_button_follows_the_export_and_runs(sample_installed, tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        bar = Contributions(Extensions.load(project), "deploy/export-settings")
        assert bar.buttons.children == () and bar.layout.display == "none"
        project.add_export(None, "tflite", "/m/model.tflite", {"format": "tflite", "type": "int8"}, 10, "0" * 64)
        bar.refresh()
        (button,) = bar.buttons.children
        assert button.description == "Flash to board" and bar.layout.display == "flex"
        button.click()
        assert "flashed /m/model.tflite (flash number 1)" in bar.message.value


def test_home_tool_shows_a_panel_and_failures_are_messages(sample_installed, tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        project.add_label("cat")
        ext = Extensions.load(project)
        home = Contributions(ext, "home/tools")
        home.buttons.children[0].click()
        assert "1 labels: cat" in home.message.value

        def boom(context):
            raise RuntimeError("device unplugged")

        ext.activate("broken_at_click", lambda ctx: (ctx.register_command("b.go", boom, "Go"),
                                                     ctx.add_menu_item("home/tools", "b.go")))  # fmt: skip
        home.refresh()
        assert [b.description for b in home.buttons.children] == ["Count labels", "Go"]
        home.buttons.children[1].click()
        assert "RuntimeError: device unplugged" in home.message.value
        panel = Extensions.load(project).build_panel("sample.summary")
        assert "eiq-sample-summary" in panel._dom_classes
