"""The JupyterLab extension in a real ``jupyter-lab``: the eIQ sidebar, the Portal in a tab, the commands in the
palette and the eIQ menu, "Open in eIQ Model Tool" on model files, and the server endpoint behind the buttons.
"""

from __future__ import annotations

import json
import os
import time
import warnings

import pytest
from extensions.conftest import install_sample

from browser.conftest import PAGE_TIMEOUT_MS
from browser.lab import LabServer

SIDEBAR_BUTTONS = ["New project", "Open Portal", "Model Tool", "Plugins", "Command line"]
MENU_ITEMS = {"New Project", "Open Portal", "Open Portal in a Browser Tab", "Model Tool", "Plugins", "Command Line"}
# the palette mixes every extension's commands: its labels say eIQ
PALETTE_ITEMS = {
    "New eIQ Project",
    "Open eIQ Portal",
    "Open eIQ Portal in a Browser Tab",
    "Open eIQ Model Tool",
    "Open eIQ Plugins",
    "Open eIQ Command Line",
}
MODEL_TOOL_ITEM = "Open in eIQ Model Tool"
# a Portal kernel imports the panels; the page shows its title bar when the kernel has run the cell
PORTAL_TIMEOUT_MS = 90_000


def write_tiny_onnx(path) -> None:
    """A real ONNX model: one MatMul of a (1, 4) input by a 4x3 weight (12 parameters) into "scores"."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.arange(12, dtype=np.float32).reshape(4, 3), "weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["input", "weight"], ["scores"], name="dense")],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 3])],
        [weight],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def write_extension_notebook(path) -> None:
    """A notebook: an Export panel on a new project, then a cell recording a quantized TFLite export."""
    import nbformat

    cells = [
        "from eiq_lab.project import create_project\nfrom eiq_lab.widgets import Export\n"
        "project = create_project('extension.eiqp')\npanel = Export(project)\npanel",
        "settings = {'format': 'tflite', 'type': 'int8'}\n"
        "project.add_export(None, 'tflite', '/m/model_int8.tflite', settings, 1, '0' * 64)\n"
        "panel.contributions.refresh()",
    ]
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    notebook = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell(c) for c in cells], metadata={"kernelspec": kernel}
    )
    nbformat.write(notebook, str(path))


@pytest.fixture(scope="module")
def lab(tmp_path_factory, eiq_home, request) -> LabServer:
    """jupyter-lab on a temporary root with a TFLite file, a SavedModel folder and a plain folder in models/."""
    root = tmp_path_factory.mktemp("lab-root")
    models = root / "models"
    (models / "saved" / "variables").mkdir(parents=True)
    (models / "saved" / "saved_model.pb").write_bytes(b"")
    (models / "images").mkdir()
    # only its name matters to the file browser's menu (the Model Tool opens the real ONNX model below)
    (models / "net.tflite").write_bytes(b"\x1c\x00\x00\x00TFL3")
    write_tiny_onnx(models / "scores.onnx")
    write_extension_notebook(root / "extension.ipynb")
    state = tmp_path_factory.mktemp("lab-state")
    # the sample extension package installed for the server's kernels, as pip would install it
    site = install_sample(tmp_path_factory.mktemp("site"))
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH", "")]))
    server = LabServer(root, state, {"EIQ_HOME": str(eiq_home), "PYTHONPATH": path}, state / "jupyter-lab.log")
    failed = request.session.testsfailed
    yield server
    server.stop()
    if request.session.testsfailed > failed:
        warnings.warn(f"jupyter-lab's log ({server.log_path}):\n{server.log()}", stacklevel=1)


@pytest.fixture(scope="module")
def lab_page(lab, browser):
    """JupyterLab loaded once for the module's tests (default layout), its file browser listing the root; each
    test starts from what it needs (a sidebar panel, a menu), so the order does not matter."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(PAGE_TIMEOUT_MS)
    page = context.new_page()
    page.goto(lab.url("lab?reset"))  # the default layout, whatever an earlier run left in the workspace
    page.locator("#eiq-sidebar").wait_for(state="attached")
    page.locator(".jp-Launcher").wait_for()
    page.locator("#filebrowser .jp-DirListing-item", has_text="models").wait_for(state="attached")
    yield page
    context.close()


def open_sidebar(page, tab_id: str):
    """Show the left-sidebar panel `tab_id` (its tab toggles it: clicked only when the panel is hidden)."""
    panel = page.locator(f"#{tab_id}")
    if not panel.is_visible():
        page.locator(f".jp-SideBar.jp-mod-left .lm-TabBar-tab[data-id='{tab_id}']").click()
    panel.wait_for(state="visible")


def browse_root(page):
    """Show the file browser at the server's root folder."""
    open_sidebar(page, "filebrowser")
    page.locator("#filebrowser .jp-BreadCrumbs-home").click()
    page.locator("#filebrowser .jp-DirListing-item", has_text="models").wait_for()


def context_menu_labels(page, item) -> list[str]:
    """Right-click `item` and read the labels of the context menu that opens (the caller closes it)."""
    item.click(button="right")
    menu = page.locator(".lm-Menu").last
    menu.wait_for(state="visible")
    return menu.locator(".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel").all_inner_texts()


@pytest.mark.browser
def test_the_sidebar_opens_the_portal_in_a_tab(lab, lab_page, screenshot):
    page = lab_page
    open_sidebar(page, "eiq-sidebar")
    labels = page.locator("#eiq-sidebar .eiq-sidebar-button-label").all_inner_texts()
    assert labels == SIDEBAR_BUTTONS
    screenshot(page, "lab-eiq-sidebar")

    page.locator("#eiq-sidebar .eiq-sidebar-open-portal").click()
    tab = page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text="eIQ Portal")
    tab.wait_for()
    frame = page.frame_locator(".eiq-portal-frame iframe")
    bar = frame.locator(".eiq-portal-bar")
    bar.wait_for(state="visible", timeout=PORTAL_TIMEOUT_MS)
    assert "eIQ Lab Portal" in bar.inner_text()
    screenshot(page, "lab-portal")

    # the side button: the same page in a browser tab of its own
    with page.context.expect_page() as opened:
        page.locator("#eiq-sidebar .eiq-sidebar-open-portal-in-browser").click()
    browser_tab = opened.value
    browser_tab.wait_for_url("**/voila/render/eIQ%20Portal.ipynb")
    browser_tab.close()

    notebook = json.loads((lab.root / "eIQ Portal.ipynb").read_text())
    code = "".join(notebook["cells"][-1]["source"])
    assert "Portal(workspace=" in code
    assert page.locator(".eiq-portal-frame iframe").get_attribute("src").endswith("/voila/render/eIQ%20Portal.ipynb")


def wait_until(condition, what: str, timeout: float = PAGE_TIMEOUT_MS / 1000) -> None:
    """Poll `condition` (a file another process writes: no event reaches the test) until true or `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting: {what}")
        time.sleep(0.1)


def visible_notebook(page, tab_title: str):
    """The notebook in the main area once its tab `tab_title` shows."""
    page.locator(".lm-DockPanel-tabBar .lm-TabBar-tab", has_text=tab_title).wait_for()
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


@pytest.mark.browser
def test_the_sidebar_buttons_open_their_panels_and_a_terminal(lab, lab_page, screenshot):
    page = lab_page
    browse_root(page)  # a new project's notebook (and the terminal) start in the file browser's folder
    open_sidebar(page, "eiq-sidebar")
    # each notebook a button opens runs its cells at once, so the panel shows without a click
    page.locator("#eiq-sidebar .eiq-sidebar-new-project").click()
    home = visible_notebook(page, "eIQ project.ipynb").locator(".eiq-home")
    home.wait_for(state="visible", timeout=PORTAL_TIMEOUT_MS)
    assert home.locator(".eiq-home-create").is_visible()
    assert (lab.root / "eIQ project.ipynb").is_file()
    screenshot(page, "lab-new-project")

    page.locator("#eiq-sidebar .eiq-sidebar-plugins").click()
    visible_notebook(page, "eIQ Plug-ins.ipynb").locator(".eiq-plugins").wait_for(timeout=PORTAL_TIMEOUT_MS)
    screenshot(page, "lab-plugins")

    page.locator("#eiq-sidebar .eiq-sidebar-model-tool").click()
    tool = visible_notebook(page, "eIQ Model Tool.ipynb").locator(".eiq-model-tool")
    tool.wait_for(timeout=PORTAL_TIMEOUT_MS)
    assert tool.locator(".eiq-model-path input").input_value() == ""

    page.locator("#eiq-sidebar .eiq-sidebar-command-line").click()
    terminal = page.locator(".jp-MainAreaWidget:not(.lm-mod-hidden) .jp-Terminal")
    terminal.wait_for(state="visible")
    terminal.locator(".xterm-screen").click()
    # xterm draws on a canvas: the shell tells its folder through a file
    page.keyboard.type("pwd > terminal-folder.txt\n")
    answer = lab.root / "terminal-folder.txt"
    wait_until(lambda: answer.is_file() and answer.read_text().strip(), "the terminal ran pwd")
    assert answer.read_text().strip() == str(lab.root)
    screenshot(page, "lab-command-line")


@pytest.mark.browser
def test_the_palette_and_the_eiq_menu_list_the_commands(lab_page, screenshot):
    page = lab_page
    page.locator(".lm-MenuBar-item", has_text="eIQ").click()
    menu = page.locator(".lm-Menu").last
    menu.wait_for(state="visible")
    assert set(menu.locator(".lm-Menu-item[data-type='command'] .lm-Menu-itemLabel").all_inner_texts()) == MENU_ITEMS
    screenshot(page, "lab-eiq-menu")
    page.keyboard.press("Escape")

    page.locator("#jp-main-statusbar").click()  # keys to JupyterLab, not to a terminal another test left focused
    page.keyboard.press("Control+Shift+C")
    palette = page.locator("#modal-command-palette")
    palette.locator(".lm-CommandPalette-input").fill("eIQ")  # matches the category: every eIQ command
    labels = palette.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel")
    labels.filter(has_text="Open eIQ Portal in a Browser Tab").wait_for()
    assert set(labels.all_inner_texts()) >= PALETTE_ITEMS
    screenshot(page, "lab-eiq-palette")


@pytest.mark.browser
def test_model_files_open_in_the_model_tool(lab, lab_page, screenshot):
    page = lab_page
    browse_root(page)
    listing = page.locator("#filebrowser .jp-DirListing-content")
    # the SavedModel folders are asked of the server when the listing of models/ arrives
    with page.expect_response(lambda reply: "eiq-lab/saved-models" in reply.url and "models" in reply.url):
        listing.locator(".jp-DirListing-item", has_text="models").dblclick()
    tflite = listing.locator(".jp-DirListing-item[data-file-type='eiq-model-tflite']", has_text="net.tflite")

    assert MODEL_TOOL_ITEM in context_menu_labels(page, listing.locator(".jp-DirListing-item", has_text="saved"))
    page.keyboard.press("Escape")
    assert MODEL_TOOL_ITEM not in context_menu_labels(page, listing.locator(".jp-DirListing-item", has_text="images"))
    page.keyboard.press("Escape")
    assert MODEL_TOOL_ITEM in context_menu_labels(page, tflite)
    screenshot(page, "lab-model-context-menu")

    page.keyboard.press("Escape")

    assert MODEL_TOOL_ITEM in context_menu_labels(page, listing.locator(".jp-DirListing-item", has_text="scores.onnx"))
    page.locator(".lm-Menu .lm-Menu-item", has_text=MODEL_TOOL_ITEM).click()
    tool = visible_notebook(page, "scores.onnx - Model Tool.ipynb").locator(".eiq-model-tool")
    summary = tool.locator(".eiq-model-summary")
    summary.filter(has_text="scores.onnx").wait_for(timeout=PORTAL_TIMEOUT_MS)
    assert "12 parameters" in summary.inner_text()  # the 4x3 weight written above
    # the graph: netron, served by the kernel and reached through jupyter-server-proxy, draws the real node
    frame = tool.locator("iframe.eiq-netron-frame")
    graph = tool.frame_locator("iframe.eiq-netron-frame")
    graph.locator("g.node", has_text="MatMul").first.wait_for(timeout=PORTAL_TIMEOUT_MS)
    assert "/proxy/" in frame.get_attribute("src")
    screenshot(page, "lab-model-tool")
    # profiling on this host's ONNX Runtime: the per-layer chart gets a bar for the MatMul
    tool.locator(".lm-TabBar-tab, .widget-tab .p-TabBar-tab, [role=tab]", has_text="Profile").first.click()
    profile = tool.locator(".eiq-profile")
    chosen = profile.locator("select").first.evaluate("s => s.options[s.selectedIndex].text.replace(/\\s/g, ' ')")
    assert chosen == "this host: ONNX Runtime"  # an ONNX model: its engine preselected
    profile.locator(".eiq-profile-run").click()
    bars = profile.locator(".eiq-profile-layers rect.bar")
    bars.first.wait_for(timeout=PORTAL_TIMEOUT_MS)
    assert bars.count() == 1
    assert "execution_time (us)" in profile.locator(".eiq-profile-totals").inner_text()
    screenshot(page, "lab-model-tool-profile")
    saved = json.loads((lab.root / "models" / "scores.onnx - Model Tool.ipynb").read_text())
    assert "".join(saved["cells"][-1]["source"]).endswith("ModelTool('scores.onnx')")


def test_the_notebooks_endpoint_reuses_numbers_and_refuses(lab):
    # the Plug-ins notebook: written once (here or by the sidebar's button), then reused with the user's edits
    status, reply = lab.request("POST", "eiq-lab/notebooks", {"kind": "plugins"})
    assert status in (200, 201)
    assert reply["path"] == "eIQ Plug-ins.ipynb"
    notebook = lab.root / "eIQ Plug-ins.ipynb"
    notebook.write_text(notebook.read_text().replace("Plugins()", "Plugins()  # mine"))
    assert lab.request("POST", "eiq-lab/notebooks", {"kind": "plugins"}) == (
        200,
        {"path": "eIQ Plug-ins.ipynb", "created": False},
    )
    assert "# mine" in notebook.read_text()

    first = lab.request("POST", "eiq-lab/notebooks", {"kind": "home", "directory": "models"})[1]["path"]
    second = lab.request("POST", "eiq-lab/notebooks", {"kind": "home", "directory": "models"})[1]["path"]
    assert (first, second) == ("models/eIQ project.ipynb", "models/eIQ project 1.ipynb")

    assert lab.request("POST", "eiq-lab/notebooks", {"kind": "modeltool", "model": "models/saved"})[1] == {
        "path": "models/saved - Model Tool.ipynb",
        "created": True,
    }
    status, reply = lab.request("POST", "eiq-lab/notebooks", {"kind": "wizard"})
    assert status == 400
    assert reply["message"] == "unknown notebook kind 'wizard'; kinds: home, portal, modeltool, plugins"
    status, reply = lab.request("POST", "eiq-lab/notebooks", {"kind": "modeltool", "model": "models/images"})
    assert (status, reply["message"]) == (400, "folder 'models/images' has no saved_model.pb: not a SavedModel")
    status, reply = lab.request("POST", "eiq-lab/notebooks", {"kind": "modeltool", "model": "models/gone.onnx"})
    assert (status, reply["message"]) == (404, "no model 'models/gone.onnx' on the server")
    assert lab.request("GET", "eiq-lab/saved-models?path=models") == (200, {"saved_models": ["models/saved"]})
    assert not (lab.root / "models" / "images - Model Tool.ipynb").exists()
    assert not (lab.root / "models" / "gone.onnx - Model Tool.ipynb").exists()


@pytest.mark.browser
def test_an_extension_button_shows_only_when_its_condition_holds(lab, lab_page, screenshot):
    page = lab_page
    browse_root(page)
    page.locator("#filebrowser .jp-DirListing-item", has_text="extension.ipynb").dblclick()
    notebook = visible_notebook(page, "extension.ipynb")
    # run the cells one by one with the toolbar's run button once the kernel is idle
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for(timeout=PORTAL_TIMEOUT_MS)
    run = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) [data-command='notebook:run-cell-and-select-next']")
    notebook.locator(".jp-Cell .jp-InputPrompt").first.click()
    run.click()
    export = notebook.locator(".eiq-export")
    export.wait_for(timeout=PORTAL_TIMEOUT_MS)
    flash = export.locator(".eiq-contribution", has_text="Flash to board")
    assert flash.count() == 0  # nothing exported yet: modelExported is false
    screenshot(page, "lab-extension-hidden")
    run.click()  # the second cell records a quantized TFLite export and refreshes the buttons
    flash.wait_for(timeout=PORTAL_TIMEOUT_MS)
    flash.click()
    message = export.locator(".eiq-contribution-message")
    message.wait_for()
    assert "flashed /m/model_int8.tflite (flash number 1)" in message.inner_text()
    screenshot(page, "lab-extension-shown")
