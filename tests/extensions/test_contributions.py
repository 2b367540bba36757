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


def test_portal_shows_extension_panels_as_workspaces_and_their_buttons(sample_installed, tmp_path):
    from eiq_lab.widgets import Portal

    with create_project(tmp_path / "p.eiqp") as project:
        image = project.add_image(_png())
        project.add_annotation(image, "cat")
    portal = Portal(tmp_path / "p.eiqp", workspace=tmp_path)
    assert ("Label summary (sample)", "ext:sample.summary") in portal.workspaces.options
    summary = portal.show("ext:sample.summary")
    assert "<td>cat</td><td>1</td>" in summary.value and portal.body.children == (summary,)
    home = portal.show("home")
    assert [b.description for b in home.contributions.buttons.children] == ["Count labels"]
    home.contributions.buttons.children[0].click()
    assert "1 labels: cat" in home.contributions.message.value
    export = portal.show("export")
    assert export.contributions.extensions is portal.extensions  # one set of extensions for the whole Portal
    assert portal.help_items.buttons.children == ()  # the sample adds nothing to the Help menu


def _png():
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 200, 10)).save(buffer, "PNG")
    return buffer.getvalue()


def test_export_and_curator_panels_carry_the_extension_buttons(sample_installed, tmp_path):
    from eiq_lab.widgets import Curator
    from eiq_lab.widgets.export import Export

    with create_project(tmp_path / "p.eiqp") as project:
        export = Export(project)
        assert export.contributions.location == "deploy/export-settings"
        assert export.contributions.buttons.children == ()
        project.add_export(None, "tflite", "/m/model.tflite", {"format": "tflite", "type": "int8"}, 10, "0" * 64)
        export.contributions.refresh()
        assert [b.description for b in export.contributions.buttons.children] == ["Flash to board"]
        assert export.contributions in export.children
        curator = Curator(project)
        assert curator.contributions.location == "dataset/utility" and curator.contributions in curator.children
