"""The Annotator and the Curator in a real page (Voila + headless Chromium): a box drawn with the mouse lands in
the project in image pixels; a frame from Chromium's fake camera is saved; a thumbnail click opens the image."""

from __future__ import annotations

import io
import re

import nbformat
import pytest
from PIL import Image
from playwright.sync_api import expect
from project.imaging import encode_image

from browser.conftest import wait_for_panel
from eiq_lab.project import create_project, open_project

#: the test images: 64x48, shown at 10x (640x480) in the annotator
WIDTH, HEIGHT = 64, 48


def notebook(path, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(code)]
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def pages(tmp_path_factory, voila):
    """One served folder: an annotator notebook and a curator notebook, each on its own project."""
    root = tmp_path_factory.mktemp("annotator-pages")
    for name in ("annotate", "curate"):
        with create_project(root / f"{name}.eiqp") as project:
            project.add_images([encode_image("PNG", (WIDTH, HEIGHT), (60 * i, 120, 200)) for i in range(3)])
            project.add_label("cat", "#e41a1c")
    notebook(
        root / "annotate.ipynb",
        "from eiq_lab.project import open_project\nfrom eiq_lab.widgets.annotator import Annotator\n"
        f"Annotator(open_project({str(root / 'annotate.eiqp')!r}))",
    )
    notebook(
        root / "curate.ipynb",
        "from eiq_lab.project import open_project\nfrom eiq_lab.widgets.curator import Curator\n"
        f"Curator(open_project({str(root / 'curate.eiqp')!r}))",
    )
    return root, voila(root)


def drag_box(page, image, start: tuple[float, float], end: tuple[float, float]) -> tuple[float, ...]:
    """Drag on the shown image from `start` to `end` (fractions of its size); returns the box expected in image
    pixels (x, y, width, height)."""
    bounds = image.bounding_box()
    x0, y0 = bounds["x"] + start[0] * bounds["width"], bounds["y"] + start[1] * bounds["height"]
    x1, y1 = bounds["x"] + end[0] * bounds["width"], bounds["y"] + end[1] * bounds["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x0 + (x1 - x0) * step / 10, y0 + (y1 - y0) * step / 10)
    page.mouse.up()
    to_image = WIDTH / bounds["width"]
    return ((x0 - bounds["x"]) * to_image, (y0 - bounds["y"]) * to_image, (x1 - x0) * to_image, (y1 - y0) * to_image)


@pytest.mark.browser
def test_draw_a_box_with_the_mouse(pages, page, screenshot):
    root, server = pages
    page.goto(server.url("annotate.ipynb"))
    panel = wait_for_panel(page, ".eiq-annotator")
    image = panel.locator(".eiq-annotator-canvas img")
    image.wait_for(state="visible")
    expected = drag_box(page, image, (0.25, 0.25), (0.75, 0.625))
    expect(panel.locator(".eiq-status")).to_contain_text("saved")
    with open_project(root / "annotate.eiqp") as project:
        [ann] = project.annotations(image=1)
        assert str(ann.label) == "cat"
        assert ann.box == pytest.approx(expected, abs=1.0)
        assert ann.box == pytest.approx((16, 12, 32, 18), abs=1.5)
    # the box is listed; hovering its row highlights it
    row = panel.locator(".eiq-annotator-boxes .eiq-annotator-row").first
    expect(row).to_contain_text("cat")
    row.hover()
    expect(row).to_have_class(re.compile("eiq-annotator-row-active"))
    # and its box is drawn in yellow, as in the guide
    expect(panel.locator(".eiq-annotator-canvas rect.movable").first).to_have_css("stroke", "rgb(245, 196, 0)")
    screenshot(page, "annotator-hover")
    # a full-image label and the Train button
    panel.locator(".eiq-annotator-add-full").click()
    expect(panel.locator(".eiq-status")).to_contain_text("full-image label cat added")
    panel.locator(".eiq-annotator-train").click()
    expect(panel.locator(".eiq-annotator-info")).to_contain_text("train")
    screenshot(page, "annotator")
    with open_project(root / "annotate.eiqp") as project:
        assert project.annotations_with_image(1) == [("cat", pytest.approx(expected, abs=1.0)), ("cat", None)]
        assert project.image(1).grouping == "train"


@pytest.mark.browser
def test_capture_a_camera_frame_and_open_a_thumbnail(pages, page, screenshot):
    root, server = pages
    page.goto(server.url("curate.ipynb"))
    panel = wait_for_panel(page, ".eiq-curator")
    expect(panel.locator(".eiq-curator-counts")).to_contain_text("3 images")
    panel.locator(".eiq-curator-capture").click()
    page.locator(".eiq-camera-start").click()
    expect(page.locator(".eiq-camera-note")).to_contain_text("camera on")
    page.locator(".eiq-camera-shoot").click()
    expect(panel.locator(".eiq-status").first).to_contain_text("captured image #4")
    expect(panel.locator(".eiq-curator-counts")).to_contain_text("4 images")
    screenshot(page, "curator-camera")
    with open_project(root / "curate.eiqp") as project:
        frame = project.image(4)
        assert frame.format == "jpeg" and frame.source.startswith("camera-")
        decoded = Image.open(io.BytesIO(project.image_data(4)))
        assert decoded.format == "JPEG" and decoded.size == (frame.width, frame.height)
        assert frame.width >= 160 and frame.height >= 120
    # a click on a thumbnail opens that image in the annotator below the grid
    panel.locator(".eiq-curator-tile").nth(1).click()
    annotator = wait_for_panel(page, ".eiq-curator-detail .eiq-annotator")
    expect(annotator.locator(".eiq-annotator-info")).to_contain_text("Image #2")
    screenshot(page, "curator-annotate")
