"""The Data Set Curator panel: a lazily paged thumbnail grid with filters, the test holdout box, image upload
and camera capture, label and annotation counts; a click on a thumbnail opens the image in the Annotator.
"""

from __future__ import annotations

import base64
import html
import time
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import InputError
from ..project import ANY, Project, ProjectImage
from ..project.imagefile import BadImage
from ..project.split import DEFAULT_TEST_HOLDOUT
from ..project.thumbnails import ThumbnailCache, shared_cache
from .base import Panel
from .contributions import contributions

#: Thumbnails per page.
PAGE_SIZE = 48
#: Longest side of a thumbnail (pixels).
THUMB_SIZE = 128

_SHOW = [("All images", "all"), ("Unlabeled images", "unlabeled"), ("Labeled images", "labeled")]
_GROUPS = [("Any group", ANY), ("Train", "train"), ("Test", "test"), ("No group", "none")]
_PLACEHOLDER = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="128" height="128"><rect width="128" height="128" '
    b'fill="#ddd"/><text x="64" y="70" font-size="12" text-anchor="middle" fill="#900">cannot decode</text></svg>'
)


class _Tile(w.HTML):
    """One thumbnail of the grid with its caption (one HTML widget: a page of 48 builds in milliseconds).

    Tiles are reused from page to page; all of them share one layout.
    """

    def __init__(self, on_click: Callable[[int], None], layout: w.Layout):
        from ipyevents import Event

        super().__init__("", layout=layout)
        self.add_class("eiq-curator-tile")
        self.image_id: int | None = None
        # a click anywhere on the tile opens the image (the watcher is not a child: it needs no view)
        self.events = Event(source=self, watched_events=["click"])
        self.events.on_dom_event(lambda _event: self.image_id is not None and on_click(self.image_id))

    def show(self, image: ProjectImage, thumb: bytes | None, labels: list[str]) -> None:
        self.image_id = image.id
        if thumb is None:
            src = "data:image/svg+xml;base64," + base64.b64encode(_PLACEHOLDER).decode("ascii")
        else:
            src = "data:image/jpeg;base64," + base64.b64encode(thumb).decode("ascii")
        group = image.grouping or "no group"
        names = ", ".join(dict.fromkeys(labels))
        tag = f"<b>{html.escape(names)}</b>" if names else "<i>unlabeled</i>"
        self.value = (
            f"<div style='text-align:center;cursor:pointer' title='open image #{image.id} to annotate it'>"
            f"<img class='eiq-curator-thumb' src='{src}' alt='image {image.id}' "
            f"style='width:{THUMB_SIZE}px;height:{THUMB_SIZE}px;object-fit:contain;display:block;margin:auto'>"
            f"<div class='eiq-curator-caption' style='font-size:11px;line-height:1.3'>#{image.id} &middot; "
            f"{group}<br>{tag}</div></div>"
        )

    def hide(self) -> None:
        self.image_id = None
        self.value = ""


class Curator(Panel):
    """Browse, filter, split and grow a project's images; open one to annotate it.

    Args:
        project: the open project.
        page_size: thumbnails per page.
        cache: the thumbnail cache (default: the process-wide one for 128 px thumbnails).

    Attributes:
        on_open_image: ``callable(image_id)`` when a thumbnail is clicked (the Portal opens its Annotator);
            unset, the Annotator opens below the grid.
        on_augmentation: ``callable()`` for the "Augmentation tool" button (the Portal opens that panel);
            unset, the Augmentation panel opens below the grid.

    Example:
        >>> Curator(open_project("flowers.eiqp"))  # doctest: +SKIP
    """

    title = "Data Set Curator"

    def __init__(
        self,
        project: Project,
        *,
        page_size: int = PAGE_SIZE,
        cache: ThumbnailCache | None = None,
        extensions: Any = None,
    ):
        if int(page_size) < 1:
            raise InputError(f"page size must be at least 1; received {page_size!r}")
        self.project = project
        self.page_size = int(page_size)
        self.cache = cache if cache is not None else shared_cache(THUMB_SIZE)
        self.on_open_image: Callable[[int], None] | None = None
        self.on_augmentation: Callable[[], None] | None = None
        self.annotator: Any = None
        self.camera: Any = None
        self.page = 0
        self.total = 0
        self.page_images: list[ProjectImage] = []
        self._tiles: list[_Tile] = []
        self._tile_layout = w.Layout(width=f"{THUMB_SIZE + 12}px", padding="4px", border="1px solid #ddd")
        self._quiet = False  # set while the panel itself changes a control, so its observer stays still

        self.counts = w.HTML("")
        self.counts.add_class("eiq-curator-counts")

        self.show_filter = w.Dropdown(description="Show", options=_SHOW, value="all", layout=w.Layout(width="260px"))
        self.show_filter.add_class("eiq-curator-filter")
        self.group_filter = w.Dropdown(description="Group", options=_GROUPS, value=ANY, layout=w.Layout(width="200px"))
        self.group_filter.add_class("eiq-curator-group-filter")
        for control in (self.show_filter, self.group_filter):
            control.observe(self.guarded(self._on_filter), names=["value"])

        self.upload = w.FileUpload(accept="image/*", multiple=True, description="Import images")
        self.upload.add_class("eiq-curator-upload")
        self.upload.observe(self.guarded(self._on_upload), names=["value"])
        self.capture_button = w.ToggleButton(description="Capture", icon="camera", value=False)
        self.capture_button.add_class("eiq-curator-capture")
        self.capture_button.observe(self.guarded(self._toggle_camera), names=["value"])
        self.augmentation_button = w.Button(description="Augmentation tool", icon="magic")
        self.augmentation_button.add_class("eiq-curator-augmentation")
        self.augmentation_button.on_click(self.guarded(lambda _: self.open_augmentation()))
        self.refresh_button = w.Button(description="Refresh", icon="refresh", layout=w.Layout(width="100px"))
        self.refresh_button.add_class("eiq-curator-refresh")
        self.refresh_button.on_click(self.guarded(lambda _: self.refresh()))

        self.holdout = w.BoundedFloatText(
            value=DEFAULT_TEST_HOLDOUT,
            min=0.0,
            max=100.0,
            step=1.0,
            description="Dataset test holdout (%)",
            style={"description_width": "initial"},
            layout=w.Layout(width="250px"),
        )
        self.holdout.add_class("eiq-curator-holdout")
        self.reshuffle = w.Checkbox(
            value=False, description="redraw every image", indent=False, layout=w.Layout(width="auto")
        )
        self.reshuffle.add_class("eiq-curator-reshuffle")
        self.holdout_button = w.Button(description="Apply holdout", icon="random")
        self.holdout_button.add_class("eiq-curator-holdout-apply")
        self.holdout_button.on_click(self.guarded(lambda _: self.apply_holdout()))

        self.grid = w.GridBox(
            [],
            layout=w.Layout(grid_template_columns=f"repeat(auto-fill, {THUMB_SIZE + 20}px)", grid_gap="4px"),
        )
        self.grid.add_class("eiq-curator-grid")
        self.empty = w.HTML("<p style='color:#666'>No images found</p>")
        self.empty.add_class("eiq-curator-empty")
        self.prev_button = w.Button(description="Previous", icon="chevron-left", layout=w.Layout(width="110px"))
        self.prev_button.add_class("eiq-curator-prev")
        self.prev_button.on_click(self.guarded(lambda _: self.show_page(self.page - 1)))
        self.next_button = w.Button(description="Next", icon="chevron-right", layout=w.Layout(width="110px"))
        self.next_button.add_class("eiq-curator-next")
        self.next_button.on_click(self.guarded(lambda _: self.show_page(self.page + 1)))
        self.page_box = w.BoundedIntText(value=1, min=1, max=1, description="Page", layout=w.Layout(width="150px"))
        self.page_box.add_class("eiq-curator-page")
        self.page_box.observe(self.guarded(self._on_page_box), names=["value"])
        self.page_info = w.HTML("")
        self.page_info.add_class("eiq-curator-page-info")
        self.camera_area = w.VBox([])
        self.camera_area.add_class("eiq-curator-camera-area")
        self.detail = w.VBox([])
        self.detail.add_class("eiq-curator-detail")

        toolbar = w.HBox(
            [self.show_filter, self.group_filter, self.upload, self.capture_button, self.augmentation_button,
             self.refresh_button],
            layout=w.Layout(flex_flow="row wrap", align_items="center"),
        )  # fmt: skip
        holdout_row = w.HBox([self.holdout, self.reshuffle, self.holdout_button], layout=w.Layout(align_items="center"))
        holdout_row.add_class("eiq-curator-holdout-box")
        # the guide's dataset/utility location: extensions' buttons in the curator's sidebar
        self.contributions = contributions(project, "dataset/utility", extensions)
        pager = w.HBox([self.prev_button, self.page_box, self.next_button, self.page_info])
        pager.add_class("eiq-curator-pager")
        super().__init__(
            [self.counts, toolbar, holdout_row, self.camera_area, pager, self.grid, self.empty, self.detail]
        )
        # messages (a refused upload, the holdout's counts) above the grid, where the user is looking
        self.children = [
            self.heading, self.counts, toolbar, self.contributions, holdout_row, self.progress_view, self.status,
            self.camera_area,
            pager, self.grid, self.empty, self.detail,
        ]  # fmt: skip
        self.add_class("eiq-curator")
        self.refresh()

    # -- the grid ----------------------------------------------------------------------------------

    def _filters(self) -> dict[str, Any]:
        show = self.show_filter.value
        group = self.group_filter.value
        filters: dict[str, Any] = {"group": None if group == "none" else group}
        if show == "unlabeled":
            filters["annotated"] = False
        elif show == "labeled":
            filters["annotated"] = True
        elif isinstance(show, str) and show.startswith("label:"):
            filters["label"] = int(show.split(":", 1)[1])
        return filters

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    def show_page(self, page: int) -> list[ProjectImage]:
        """Show one page of the filtered images (clamped to the pages there are); returns its images.

        Only this page's rows are read (by id, `page_size` at a time) and only its thumbnails decoded.
        """
        filters = self._filters()
        self.total = self.project.count_images(**filters)
        self.page = min(max(int(page), 0), self.pages - 1)
        images = self.project.images(offset=self.page * self.page_size, limit=self.page_size, **filters)
        thumbs = self.cache.for_images(self.project, images)
        labels = self.project.annotations_for_images(images)
        while len(self._tiles) < len(images):
            self._tiles.append(_Tile(self.open_image, self._tile_layout))
        for tile, image in zip(self._tiles, images, strict=False):
            tile.show(image, thumbs[image.id], [str(a.label) for a in labels.get(image.id, [])])
        for tile in self._tiles[len(images) :]:
            tile.hide()
        # only the tiles of this page are children: an emptied tile leaves no gap in the grid
        shown = self._tiles[: len(images)]
        if list(self.grid.children) != shown:
            self.grid.children = shown
        self.page_images = images
        self.empty.layout.display = "none" if images else "block"
        self.grid.layout.display = "grid" if images else "none"
        first = self.page * self.page_size + 1 if images else 0
        self.page_info.value = (
            f"<span style='margin-left:8px'>{first}-{first + len(images) - 1 if images else 0} of "
            f"{self.total:,} images &middot; page {self.page + 1} of {self.pages:,}</span>"
        )
        self.page_box.max = self.pages
        self._set_page_box(self.page + 1)
        self.prev_button.disabled = self.page == 0
        self.next_button.disabled = self.page >= self.pages - 1
        return images

    def _set_page_box(self, value: int) -> None:
        self._quiet = True
        try:
            self.page_box.value = value
        finally:
            self._quiet = False

    def _on_page_box(self, change: dict) -> None:
        if not self._quiet and change["new"] - 1 != self.page:
            self.show_page(change["new"] - 1)

    def _on_filter(self, _change: dict) -> None:
        if not self._quiet:
            self.show_page(0)

    def next_page(self) -> list[ProjectImage]:
        return self.show_page(self.page + 1)

    def previous_page(self) -> list[ProjectImage]:
        return self.show_page(self.page - 1)

    def refresh(self) -> None:
        """Reload counts, the label filter's choices and the current page (after changes elsewhere)."""
        info = self.project.info()
        self._show_counts(info)
        current = self.show_filter.value
        options = list(_SHOW) + [(f"Label: {label}", f"label:{label.id}") for label in self.project.labels()]
        self._quiet = True
        try:
            self.show_filter.options = options
            self.show_filter.value = current if current in [v for _, v in options] else "all"
        finally:
            self._quiet = False
        self.show_page(self.page)

    def _show_counts(self, info: dict) -> None:
        g = info["groups"]
        parts = [
            f"<b>{info['images']:,}</b> images: {g['train']:,} train, {g['test']:,} test, {g['none']:,} in no group",
            f"{info['unlabeled']['total']:,} unlabeled",
            f"{info['boxes']:,} boxes, {info['full_image_labels']:,} full-image labels",
        ]
        chips = "".join(
            f"<span class='eiq-curator-label-count' style='margin-right:12px'><b>{html.escape(label['name'])}</b>: "
            f"{label['images']['total']:,} images ({label['boxes']:,} boxes, {label['full_image']:,} full-image)</span>"
            for label in info["labels"]
        )
        self.counts.value = f"<div>{' &middot; '.join(parts)}</div><div>{chips}</div>"

    # -- actions -----------------------------------------------------------------------------------

    def open_image(self, image_id: int) -> None:
        """Open an image for annotation: through `on_open_image`, or in an Annotator below the grid."""
        if self.on_open_image is not None:
            self.on_open_image(image_id)
            return
        if self.annotator is None:
            from .annotator import Annotator

            self.annotator = Annotator(self.project, image_id)
            self.annotator.on_change = lambda _image_id: self.refresh()
            self.detail.children = [self.annotator]
        else:
            self.annotator.refresh_labels()
            self.annotator.show_image(image_id)
            if self.annotator not in self.detail.children:
                self.detail.children = [self.annotator]

    def open_augmentation(self) -> None:
        """The "Augmentation tool" button: `on_augmentation`, or the Augmentation panel below the grid."""
        if self.on_augmentation is not None:
            self.on_augmentation()
            return
        from . import panel_class

        try:
            augmentation = panel_class("augmentation")
        except ImportError as exc:
            raise InputError(f"the Augmentation panel is not available here ({exc})") from None
        self.detail.children = [augmentation(self.project)]

    def apply_holdout(self):
        """Split the images into train and test with the holdout box's percentage (in the background).

        Returns:
            The `Job`; its result is `Project.split`'s summary.
        """
        percent = float(self.holdout.value)
        reshuffle = bool(self.reshuffle.value)

        def done(result: dict) -> None:
            self.refresh()
            if result["assigned"] == 0:
                self.say(
                    "every image already has a group; tick 'redraw every image' to split them all again", "warning"
                )
            else:
                self.say(
                    f"test holdout {result['test_holdout']:g} %: {result['assigned']:,} image(s) assigned, "
                    f"{result['train']:,} to train and {result['test']:,} to test",
                    "ok",
                )

        return self.run(
            lambda progress: self.project.split(percent, reshuffle=reshuffle),
            on_done=done,
            busy=[self.holdout_button],
        )

    def add_files(self, files: list[tuple[str, bytes]]) -> list[ProjectImage]:
        """Add uploaded files ``[(name, bytes), ...]`` in one transaction: all of them, or none if one is bad.

        Raises:
            BadImage: naming the first file that is not a usable image (nothing is added).
        """
        if not files:
            return []
        added = []
        with self.project.transaction():
            for name, data in files:
                try:
                    added.append(self.project.add_image(bytes(data), None, source=name))
                except BadImage as exc:
                    raise BadImage(f"{name}: {exc}; no image was added") from None
        self.refresh()
        self.say(
            f"added {len(added)} image(s) (in no group: apply the holdout to split them into train and test)", "ok"
        )
        return added

    def _on_upload(self, change: dict) -> None:
        files = [(item["name"], bytes(item["content"])) for item in change["new"] or ()]
        if not files:
            return
        try:
            self.add_files(files)
        finally:
            self.upload.value = ()

    def add_captured(self, jpeg: bytes) -> ProjectImage:
        """Save a frame from the camera into the project (no group) and show the counts."""
        name = time.strftime("camera-%Y%m%d-%H%M%S.jpg")
        image = self.project.add_image(jpeg, None, source=name)
        self.refresh()
        self.say(f"captured image #{image.id} ({image.width}x{image.height}) added", "ok")
        return image

    def _toggle_camera(self, change: dict) -> None:
        if not change["new"]:
            self.camera_area.children = []
            return
        if self.camera is None:
            from .camera import CameraCapture

            self.camera = CameraCapture(
                on_frame=self.guarded(self.add_captured), on_error=lambda message: self.say(message, "error")
            )
        self.camera_area.children = [self.camera]
