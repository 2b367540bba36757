"""The Portal in Voila, walked like a user: create a project, import the shipped digits, annotate (a box drawn
with the mouse, a full-image label), set the holdout, train one epoch and watch the chart, validate (move the
threshold, click a cell), export. A screenshot of each panel goes to the run's screenshot folder."""

import json
import time
from pathlib import Path
from unittest.mock import ANY

import pytest
from playwright.sync_api import expect

from browser.conftest import free_port, wait_for_panel

pytestmark = pytest.mark.browser

LONG_MS = 90_000  # long work (import, training, validation, export) on a shared 2-core machine


def workspace(page, label: str):
    """Switch the Portal's WORKSPACES dropdown to `label`."""
    page.locator(".eiq-portal-workspaces select").select_option(label=label)


def shooter(page, screenshot):
    """``shot(name)``: a screenshot of the Portal once its images have loaded (one taken while they arrive is torn)."""

    def shot(name: str) -> None:
        page.wait_for_function("() => [...document.querySelectorAll('.eiq-portal img')].every(i => i.complete)")
        page.evaluate("() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        screenshot(page.locator(".eiq-portal").first, name)

    return shot


def choose(select, part: str) -> str:
    """Pick the first option of a `<select>` whose text contains `part`; return that text."""
    option = select.locator("option", has_text=part).first
    option.wait_for(state="attached")
    label = option.inner_text()
    select.select_option(label=label)
    return label


def test_the_byod_walk_in_voila(voila_server, eiq_workspace, page, screenshot):
    page.goto(voila_server.url("portal.ipynb"))
    wait_for_panel(page, ".eiq-portal")
    shot = shooter(page, screenshot)
    home = wait_for_panel(page, ".eiq-home")
    expect(page.locator(".eiq-portal-workspaces select option")).to_have_text(["Home", "Remote devices"])
    shot("01-home")

    # Home: create a project in the workspace
    home.locator(".eiq-home-path input").fill("walk")
    home.locator(".eiq-home-create").click()
    expect(page.locator(".eiq-portal-project-name")).to_have_text("walk.eiqp")
    assert (eiq_workspace / "walk.eiqp").is_file()
    expect(page.locator(".eiq-portal-workspaces select option")).to_have_count(10)

    # Import: the shipped digits (sample data), progress, then the report
    home.locator(".eiq-home-import").click()
    importer = wait_for_panel(page, ".eiq-import")
    importer.locator(".eiq-import-start").click()
    report = importer.locator(".eiq-import-report")
    expect(report).to_contain_text("imported 1797 image(s)", timeout=LONG_MS)
    expect(report.locator(".eiq-import-labels tr")).to_have_count(11)
    shot("02-import")

    # Curator: the first page of thumbnails, then the holdout
    workspace(page, "Curator")
    curator = wait_for_panel(page, ".eiq-curator")
    expect(curator.locator(".eiq-curator-thumb").first).to_be_visible()
    shot("03-curator")

    # the test holdout: the five images without a group are split 20 % test / 80 % train
    curator.locator(".eiq-curator-holdout input").fill("20")
    curator.locator(".eiq-curator-holdout-apply").click()
    expect(curator.locator(".eiq-status")).to_contain_text("5 image(s) assigned", timeout=LONG_MS)
    expect(curator.locator(".eiq-curator-counts")).to_contain_text("0 in no group")

    # Annotator: open the first (unlabeled) image from the grid, draw a box with the mouse, add a full-image label
    curator.locator(".eiq-curator-tile").first.click()
    annotator = wait_for_panel(page, ".eiq-annotator")
    expect(page.locator(".eiq-portal-workspaces select")).to_have_value("Annotator")
    canvas = annotator.locator(".eiq-annotator-canvas img").first
    expect(canvas).to_be_visible()
    shot("04-annotator-before")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5, steps=8)
    page.mouse.move(box["x"] + box["width"] * 0.7, box["y"] + box["height"] * 0.8, steps=8)
    page.mouse.up()
    expect(annotator.locator(".eiq-annotator-boxes .eiq-annotator-row")).to_have_count(1)
    annotator.locator(".eiq-annotator-add-full").click()
    expect(annotator.locator(".eiq-annotator-full .eiq-annotator-row")).to_have_count(1)
    shot("05-annotator")

    # Augmentation, from the Curator's "Augmentation tool": a new random draw of augmented training images
    workspace(page, "Curator")
    curator.locator(".eiq-curator-augmentation").click()
    augmentation = wait_for_panel(page, ".eiq-augmentation")
    expect(page.locator(".eiq-portal-workspaces select")).to_have_value("Augmentation")
    augmentation.locator(".eiq-augmentation-generate").click()
    expect(augmentation.locator(".eiq-augmentation-preview img")).to_have_count(8, timeout=LONG_MS)
    shot("05b-augmentation")

    # Model selection: a base MobileNet v1 at 32x32x3, alpha 0.25; "Use this model" opens Training
    workspace(page, "Model selection")
    model = wait_for_panel(page, ".eiq-model")
    model.locator(".eiq-model-sections button", has_text="Base models").click()
    choose(model.locator(".eiq-model-base-list select"), "mobilenet_v1")
    model.locator(".eiq-model-param-alpha select").select_option(label="0.25")
    choose(model.locator(".eiq-model-input-size select"), "32, 32, 3")
    shot("06-model-selection")
    model.locator(".eiq-model-use").click()
    training = wait_for_panel(page, ".eiq-training")
    expect(page.locator(".eiq-portal-workspaces select")).to_have_value("Training")

    # Training: random weights (no network here), batch 16, one epoch; the chart gets its points
    training.locator(".eiq-training-weights button", has_text="Random").click()
    training.locator(".eiq-training-batch-size input[type=number]").fill("16")
    training.locator(".eiq-training-learning-rate input").fill("0.01")
    training.locator(".eiq-training-epochs input[type=number]").fill("1")
    training.locator(".eiq-training-epochs input[type=number]").press("Enter")
    training.locator(".eiq-training-start").click()
    expect(training.locator(".eiq-training-points span")).to_have_attribute("data-test", "1", timeout=LONG_MS)
    shot("07-training")

    # Validation: the run validated on the test group; the threshold slider redraws the matrix; a cell's images
    expect(training.locator(".eiq-training-start")).to_be_enabled(timeout=LONG_MS)
    training.locator(".eiq-training-validate").click()
    validation = wait_for_panel(page, ".eiq-validation")
    expect(page.locator(".eiq-portal-workspaces select")).to_have_value("Validation")
    validation.locator(".eiq-validation-validate").click()
    matrix = validation.locator(".eiq-validation-matrix")
    expect(validation.locator(".eiq-validation-summary")).not_to_be_empty(timeout=LONG_MS)
    counts = matrix.locator("text.label")
    expect(counts.first).to_be_attached()
    before = counts.all_text_contents()
    assert sum(int(n) for n in before) == 358  # each labelled test image once (the holdout's one is unlabeled)
    shot("08-validation")

    track = validation.locator(".eiq-validation-threshold .noUi-target")
    handle = validation.locator(".eiq-validation-threshold .noUi-handle")
    start, bar = handle.bounding_box(), track.bounding_box()
    page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    page.mouse.down()
    page.mouse.move(bar["x"] + bar["width"] * 0.3, start["y"] + start["height"] / 2, steps=10)
    page.mouse.up()
    chosen = validation.locator(".eiq-validation-threshold .widget-readout").inner_text().strip()
    assert float(chosen) > 0
    # the matrix is drawn for the threshold the slider settled on
    expect(validation.locator(".eiq-validation-summary")).to_contain_text(f"softmax threshold {chosen}")
    expect(counts).not_to_have_text(before)
    after = counts.all_text_contents()
    assert sum(int(n) for n in after) == 358
    shot("09-validation-threshold")

    busiest = max(range(len(after)), key=lambda i: int(after[i]))
    counts.nth(busiest).click(force=True)  # the count sits on its cell and lets clicks through
    expect(validation.locator(".eiq-validation-cell-ids")).to_contain_text(f"{after[busiest]} images")
    expect(validation.locator(".eiq-validation-thumb").first).to_be_visible()
    shot("10-validation-cell")

    # Export: Deploy hands the run and its report to Export; a float TFLite model is written
    validation.locator(".eiq-validation-deploy").click()
    export = wait_for_panel(page, ".eiq-export")
    expect(page.locator(".eiq-portal-workspaces select")).to_have_value("Export")
    expect(export.locator(".eiq-export-summary")).to_contain_text("mobilenet_v1")
    export.locator(".eiq-export-export").click()
    written = export.locator(".eiq-export-result code").first
    expect(written).to_contain_text(".tflite", timeout=LONG_MS)
    model = Path(written.inner_text())
    assert model.is_file() and model.read_bytes()[4:8] == b"TFL3"  # a FlatBuffer with TFLite's identifier
    shot("11-export")

    # the exported model opens in the Model Tool
    export.locator(".eiq-export-open").click()
    expect(page.locator(".eiq-model-summary")).to_contain_text(model.name)
    # standalone Voila has no jupyter-server-proxy: the graph comes straight from the kernel's netron on loopback
    graph = page.frame_locator("iframe.eiq-netron-frame")
    graph.locator("g.node").first.wait_for(timeout=LONG_MS)
    assert graph.locator("g.node").count() > 10
    shot("12-model-tool")

    # Remote devices, from the title bar: add one, test it (nothing listens on its port: the reason shows)
    page.locator(".eiq-portal-devices").click()
    devices = wait_for_panel(page, ".eiq-devices")
    port = free_port()
    devices.locator(".eiq-devices-name input").fill("board")
    devices.locator(".eiq-devices-uri input").fill(f"127.0.0.1:{port}")
    devices.locator(".eiq-devices-add").click()
    expect(devices.locator(".eiq-devices-table")).to_contain_text(f"http://127.0.0.1:{port}/v1")
    devices.locator(".eiq-devices-test").click()
    expect(devices.locator(".eiq-devices-result")).to_contain_text("board is not reachable")
    shot("13-remote-devices")

    # PLUG-INS, from the title bar: the converter plugins
    page.locator(".eiq-portal-plugins").click()
    expect(page.locator(".eiq-plugin-list")).to_contain_text("tflite")
    shot("14-plugins")


def test_home_command_line_opens_a_terminal_in_jupyterlab(tmp_path_factory, eiq_home, browser, screenshot):
    from browser.lab import LabServer
    from eiq_lab.widgets.home import JupyterServer

    root = tmp_path_factory.mktemp("terminal-root")
    (root / "work").mkdir()
    state = tmp_path_factory.mktemp("terminal-lab")
    lab = LabServer(root, state, {"EIQ_HOME": str(eiq_home)}, state / "jupyter-lab.log")
    try:
        # a kernel's parent is the server: Home finds it by the runtime file named after that process
        record = state / "runtime" / f"jpserver-{lab.process.pid}.json"
        server = JupyterServer(json.loads(record.read_text()))
        assert server.has_terminals()
        link = server.open_terminal(root / "work")
        assert lab.request("GET", "api/terminals")[1] == [{"name": link.rsplit("-", 1)[1], "last_activity": ANY}]

        context = browser.new_context(viewport={"width": 1280, "height": 700})
        page = context.new_page()
        page.goto(lab.url(link.lstrip("/")))
        terminal = page.locator(".jp-Terminal").first
        terminal.wait_for(state="visible")
        expect(page.locator(".lm-TabBar-tab.lm-mod-current")).to_contain_text("Terminal")
        # the shell runs in the workspace folder: a file it touches appears there
        terminal.click()
        page.keyboard.type("touch made-by-the-terminal\n")
        made = root / "work" / "made-by-the-terminal"
        deadline = time.monotonic() + 20
        while not made.exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # a file appearing has no event to wait on
        assert made.exists()
        screenshot(page, "16-jupyterlab-terminal")
        context.close()
    finally:
        lab.stop()


def test_an_uploaded_archive_is_imported_with_its_problems_listed(voila_server, tmp_path, page, screenshot):
    import io
    import tarfile

    from PIL import Image

    archive = tmp_path / "pets.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, colour in (("train/cat/c1.png", (250, 0, 0)), ("train/dog/d1.png", (0, 0, 250))):
            data = io.BytesIO()
            Image.new("RGB", (24, 24), colour).save(data, "PNG")
            info = tarfile.TarInfo(f"pets/{name}")
            info.size = len(data.getvalue())
            tar.addfile(info, io.BytesIO(data.getvalue()))
        info = tarfile.TarInfo("pets/test/cat/broken.jpg")
        info.size = 7
        tar.addfile(info, io.BytesIO(b"not jpg"))

    page.goto(voila_server.url("portal.ipynb"))
    wait_for_panel(page, ".eiq-portal")
    shot = shooter(page, screenshot)
    page.locator(".eiq-home-path input").fill("uploaded")
    page.locator(".eiq-home-create").click()
    page.locator(".eiq-home-import").click()
    importer = wait_for_panel(page, ".eiq-import")
    importer.locator(".eiq-import-format button", has_text="Upload archive").click()
    importer.locator(".eiq-import-upload-format select").select_option(label="Structured folders")
    with page.expect_file_chooser() as chooser:
        importer.locator(".eiq-import-upload").click()
    chooser.value.set_files(str(archive))
    expect(importer.locator(".eiq-import-upload")).to_contain_text("(1)")
    importer.locator(".eiq-import-start").click()
    report = importer.locator(".eiq-import-report")
    expect(report).to_contain_text("imported 2 image(s)", timeout=LONG_MS)
    expect(report).to_contain_text("pets.tar.gz")
    expect(report.locator(".eiq-import-problems")).to_contain_text("pets/test/cat/broken.jpg")
    shot("15-import-upload")
