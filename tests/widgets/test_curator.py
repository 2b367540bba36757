"""The Data Set Curator panel on real tiny projects: paging, filters, the holdout, uploads, camera frames,
opening images; and the thumbnail engine behind its grid."""

from __future__ import annotations

import base64
import io
import re

import pytest
from PIL import Image
from project.imaging import encode_image

from eiq_lab.project import create_project
from eiq_lab.project.imagefile import CheckedImage
from eiq_lab.project.thumbnails import ThumbnailCache, make_thumbnail
from eiq_lab.widgets.annotator import Annotator
from eiq_lab.widgets.curator import Curator

COLORS = [(200, 30, 30), (30, 200, 30), (30, 30, 200), (200, 200, 30), (30, 200, 200), (200, 30, 200), (90, 90, 90)]


@pytest.fixture
def project(tmp_path):
    """Seven 40x30 images of distinct colours, in no group, unlabeled (ids 1-7)."""
    p = create_project(tmp_path / "curate.eiqp")
    p.add_images([encode_image("PNG", (40, 30), color) for color in COLORS])
    yield p
    p.close()


def shown_ids(curator: Curator) -> list[int]:
    return [tile.image_id for tile in curator.grid.children]


def tile_pixel(tile) -> tuple[int, int, int]:
    """The centre pixel of the thumbnail a tile shows (decoded from its data URI)."""
    data = re.search(r"base64,([A-Za-z0-9+/=]+)", tile.value).group(1)
    image = Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")
    return image.getpixel((image.width // 2, image.height // 2))


def close_to(a, b, tol=12) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def upload_from_browser(upload, files):
    """What the page sends when the user picks files in the upload button."""
    upload.set_state(
        {
            "value": [
                {"name": name, "type": "image/png", "size": len(data), "content": memoryview(data), "last_modified": 0}
                for name, data in files
            ]
        }
    )


def test_pages_show_their_images_and_thumbnails(project):
    curator = Curator(project, page_size=3)
    assert shown_ids(curator) == [1, 2, 3]
    assert "1-3 of 7 images" in curator.page_info.value and "page 1 of 3" in curator.page_info.value
    assert curator.prev_button.disabled and not curator.next_button.disabled
    # each tile shows its own image: the thumbnail's colour is the image's
    for tile, color in zip(curator.grid.children, COLORS, strict=False):
        assert close_to(tile_pixel(tile), color)
    curator.next_button.click()
    assert shown_ids(curator) == [4, 5, 6]
    curator.next_button.click()
    assert shown_ids(curator) == [7]
    assert curator.next_button.disabled
    curator.page_box.value = 2
    assert shown_ids(curator) == [4, 5, 6]
    curator.prev_button.click()
    assert shown_ids(curator) == [1, 2, 3]


def test_filters_by_unlabeled_label_and_group(project):
    project.add_annotation(2, "cat", (1, 1, 10, 10))
    project.add_annotation(5, "cat")
    project.add_annotation(6, "dog")
    project.set_grouping([1, 2], "train")
    project.set_grouping([5], "test")
    curator = Curator(project)
    assert "7</b> images: 2 train, 1 test, 4 in no group" in curator.counts.value
    assert "4 unlabeled" in curator.counts.value and "1 boxes, 2 full-image labels" in curator.counts.value
    assert "<b>cat</b>: 2 images (1 boxes, 1 full-image)" in curator.counts.value

    curator.show_filter.value = "unlabeled"
    assert shown_ids(curator) == [1, 3, 4, 7]
    curator.show_filter.value = "labeled"
    assert shown_ids(curator) == [2, 5, 6]
    cat = dict((v, k) for k, v in curator.show_filter.options)
    assert "label:1" in cat and cat["label:1"] == "Label: cat"
    curator.show_filter.value = "label:1"
    assert shown_ids(curator) == [2, 5]
    curator.group_filter.value = "test"
    assert shown_ids(curator) == [5]
    curator.show_filter.value = "all"
    curator.group_filter.value = "none"
    assert shown_ids(curator) == [3, 4, 6, 7]
    curator.group_filter.value = "train"
    assert shown_ids(curator) == [1, 2]
    # a caption names the image's labels
    assert "cat" in curator.grid.children[1].value and "unlabeled" in curator.grid.children[0].value


def test_no_images_found_on_an_empty_project(tmp_path):
    with create_project(tmp_path / "empty.eiqp") as empty:
        curator = Curator(empty)
        assert curator.empty.layout.display == "block"
        assert "No images found" in curator.empty.value
        assert list(curator.grid.children) == []


def test_holdout_splits_and_reports_the_counts(project):
    curator = Curator(project)
    assert curator.holdout.value == 20.0
    curator.holdout.value = 30
    curator.holdout_button.click()
    curator.job.wait(30)
    assert project.count_images(group="test") == 2  # round(7 * 30 %)
    assert project.count_images(group="train") == 5
    assert "2 to test" in curator.status.value and "5 to train" in curator.status.value
    assert "7</b> images: 5 train, 2 test, 0 in no group" in curator.counts.value
    # applying again changes nothing until the user asks to redraw every image
    curator.holdout_button.click()
    curator.job.wait(30)
    assert "already has a group" in curator.status.value
    curator.holdout.value = 100
    curator.reshuffle.value = True
    curator.holdout_button.click()
    curator.job.wait(30)
    assert project.count_images(group="test") == 7


def test_upload_adds_images_and_a_bad_file_adds_nothing(project):
    curator = Curator(project)
    good = encode_image("JPEG", (50, 20), (10, 10, 10))
    truncated = encode_image("JPEG", (50, 20), (10, 10, 10))[:-40]
    upload_from_browser(curator.upload, [("good.jpg", good), ("notes.txt", b"shopping list\n"), ("cut.jpg", truncated)])
    assert project.count_images() == 7
    assert "notes.txt" in curator.status.value and "not an image file" in curator.status.value
    assert "no image was added" in curator.status.value and "eiq-error" in curator.status.value
    assert curator.upload.value == ()
    upload_from_browser(curator.upload, [("cut.jpg", truncated)])
    assert "cut.jpg: truncated JPEG" in curator.status.value and project.count_images() == 7

    second = encode_image("PNG", (16, 16), (0, 0, 255))
    upload_from_browser(curator.upload, [("good.jpg", good), ("blue.png", second)])
    assert project.count_images() == 9
    new = project.images(offset=7)
    assert [(i.source, i.format, i.width, i.grouping) for i in new] == [
        ("good.jpg", "jpeg", 50, None),
        ("blue.png", "png", 16, None),
    ]
    assert "added 2 image(s)" in curator.status.value
    assert "9</b> images" in curator.counts.value


def test_camera_frames_are_saved_into_the_project(project):
    curator = Curator(project)
    curator.capture_button.value = True
    camera = curator.camera
    assert camera is not None and list(curator.camera_area.children) == [camera]
    frame = encode_image("JPEG", (64, 48), (120, 60, 30))
    # what the page's script sends on Capture: a message with the JPEG as its buffer
    camera.handle_message({"type": "frame", "width": 64, "height": 48, "shot": 1}, [memoryview(frame)])
    assert project.count_images() == 8
    image = project.image(8)
    assert (image.width, image.height, image.format) == (64, 48, "jpeg")
    assert image.source.startswith("camera-") and image.source.endswith(".jpg")
    assert project.image_data(8) == frame
    assert "captured image #8" in curator.status.value
    camera.handle_message({"type": "error", "message": "camera unavailable: Permission denied"}, [])
    assert "Permission denied" in curator.status.value and "eiq-error" in curator.status.value
    camera.handle_message({"type": "frame"}, [memoryview(b"not a jpeg")])
    assert project.count_images() == 8 and "eiq-error" in curator.status.value
    curator.capture_button.value = False
    assert list(curator.camera_area.children) == []


def test_clicking_a_thumbnail_opens_it(project):
    curator = Curator(project)
    third = curator.grid.children[2]
    third.events._dom_handlers({"type": "click"})  # what ipyevents delivers for a click on the tile
    assert isinstance(curator.annotator, Annotator)
    assert curator.annotator.image.id == 3
    assert list(curator.detail.children) == [curator.annotator]
    # annotating there refreshes the curator's counts
    curator.annotator.add_label("cat")
    curator.annotator.add_full_image_label()
    assert "1 full-image labels" in curator.counts.value

    opened = []
    wired = Curator(project)
    wired.on_open_image = opened.append
    wired.grid.children[4].events._dom_handlers({"type": "click"})
    assert opened == [5] and wired.annotator is None


def test_augmentation_button_calls_back(project):
    curator = Curator(project)
    calls = []
    curator.on_augmentation = lambda: calls.append("augment")
    curator.augmentation_button.click()
    assert calls == ["augment"]


def test_thumbnails_scale_large_jpegs_and_flatten_transparency():
    big = encode_image("JPEG", (2000, 1500), (10, 120, 240))
    thumb = Image.open(io.BytesIO(make_thumbnail(big, 128)))
    assert thumb.format == "JPEG" and thumb.size == (128, 96)
    assert close_to(thumb.getpixel((64, 48)), (10, 120, 240))
    small = Image.open(io.BytesIO(make_thumbnail(encode_image("PNG", (40, 30)), 128)))
    assert small.size == (40, 30)  # never enlarged
    clear = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    out = io.BytesIO()
    clear.save(out, "PNG")
    flat = Image.open(io.BytesIO(make_thumbnail(out.getvalue(), 64))).convert("RGB")
    assert close_to(flat.getpixel((10, 10)), (255, 255, 255), tol=3)


def test_thumbnail_cache_reuses_and_bounds_its_entries(project):
    cache = ThumbnailCache(size=32)
    page = project.images(limit=3)
    first = cache.for_images(project, page)
    assert list(first) == [1, 2, 3] and len(cache) == 3
    again = cache.for_images(project, page)
    assert all(again[i] is first[i] for i in first)  # served from the cache, not rebuilt
    one = len(first[1])
    small = ThumbnailCache(size=32, max_bytes=2 * one + one // 2)
    small.for_images(project, project.images())
    assert len(small) <= 3 and small.nbytes <= small.max_bytes


def test_an_undecodable_stored_image_shows_a_placeholder(project):
    good = encode_image("JPEG", (40, 30), (1, 2, 3))
    # header and end marker intact (so the store accepts it without decoding), scan data destroyed
    damaged = good[:200] + b"\xff\x00" * 40 + b"\xff\xd9"
    project.add_checked_image(CheckedImage(damaged, "jpeg", 40, 30), None)
    curator = Curator(project, page_size=8, cache=ThumbnailCache())
    assert shown_ids(curator)[-1] == 8
    assert "image/svg+xml" in curator.grid.children[-1].value
