"""The Annotator panel: boxes drawn with the mouse (jupyter-bbox-widget) and full-image labels on one image, the
shared label list, Train / Test, hover to highlight, delete, next / previous unlabeled; every change saved at once.
"""

from __future__ import annotations

import html
import io
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import EiqError, InputError
from ..project import Annotation, Project, ProjectImage
from .base import Panel

#: Label colours for labels stored without one (matplotlib's tab10, as the box widget uses).
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)

#: Largest (width, height) an image is shown at; smaller images are enlarged to fill it.
DISPLAY_SIZE = (640, 480)


def label_color(label: Any, index: int) -> str:
    """The label's own colour, or a palette colour picked by its position in the label list."""
    return getattr(label, "color", None) or PALETTE[index % len(PALETTE)]


def display_scale(width: int, height: int, limit: tuple[int, int] = DISPLAY_SIZE) -> float:
    """Factor from image pixels to shown pixels: the image fills `limit` = (width, height), aspect kept."""
    return min(limit[0] / width, limit[1] / height)


#: The box under focus is drawn in yellow, as in the guide (the box widget marks it only by a wider stroke).
_HIGHLIGHT_CSS = """
.eiq-annotator-canvas rect[style*="stroke-width: 3"] { stroke: #f5c400 !important; stroke-width: 4 !important; }
"""

_DRAWING_CLASSES: dict[type, type] = {}


def _box_drawing_class(base: type) -> type:
    """The box widget with the highlight style added (one subclass, made on first use)."""
    if base not in _DRAWING_CLASSES:
        _DRAWING_CLASSES[base] = type("BoxDrawing", (base,), {"_css": base._css + _HIGHLIGHT_CSS})
    return _DRAWING_CLASSES[base]


class Annotator(Panel):
    """Annotate one image of a project: draw boxes, add full-image labels, set its group, move on.

    Args:
        project: the open project (changes are saved into it at once).
        image: the image (id or record) to show first; default: the first unlabeled image, else the first.
        display_size: largest (width, height) the image is shown at.

    Attributes:
        on_change: ``callable(image_id)`` called after every change saved (the Curator refreshes its counts).

    Example:
        >>> Annotator(project)  # doctest: +SKIP
    """

    title = "Annotate"

    def __init__(
        self,
        project: Project,
        image: int | ProjectImage | None = None,
        *,
        display_size: tuple[int, int] = DISPLAY_SIZE,
    ):
        try:
            from jupyter_bbox_widget import BBoxWidget
        except ImportError:
            raise EiqError(
                "the Annotator draws boxes with jupyter-bbox-widget, which is not installed; "
                "install the GUI extra: pip install 'eiq-lab[gui]'"
            ) from None

        self.project = project
        self.display_size = display_size
        self.on_change: Callable[[int], None] | None = None
        self.image: ProjectImage | None = None
        self.scale = 1.0
        self._box_ids: list[int] = []
        self._shown: list[dict] = []
        self._syncing = False
        self._row_events: list[Any] = []

        self.info = w.HTML("")
        self.info.add_class("eiq-annotator-info")
        self.canvas = _box_drawing_class(BBoxWidget)(hide_buttons=True)
        self.canvas.add_class("eiq-annotator-canvas")
        self.canvas.observe(self._on_boxes, names=["bboxes"])
        self.canvas.observe(self._on_canvas_label, names=["label"])
        self.canvas.observe(self._on_canvas_selection, names=["selected_index"])

        self.label_picker = w.Dropdown(description="Label", options=[], layout=w.Layout(width="260px"))
        self.label_picker.add_class("eiq-annotator-label")
        self.label_picker.observe(self._on_picker, names=["value"])
        self.new_label = w.Text(placeholder="new label", layout=w.Layout(width="140px"))
        self.new_label.add_class("eiq-annotator-new-label")
        self.new_color = w.ColorPicker(concise=True, value=PALETTE[0], layout=w.Layout(width="40px"))
        self.new_color.add_class("eiq-annotator-color")
        self.add_label_button = w.Button(description="Add label", icon="plus", layout=w.Layout(width="100px"))
        self.add_label_button.add_class("eiq-annotator-add-label")
        self.add_label_button.on_click(
            self.guarded(lambda _: self.add_label(self.new_label.value, self.new_color.value))
        )

        self.boxes_list = w.VBox([])
        self.boxes_list.add_class("eiq-annotator-boxes")
        self.full_list = w.VBox([])
        self.full_list.add_class("eiq-annotator-full")
        self.add_full_button = w.Button(description="Add full-image label", icon="plus", layout=w.Layout(width="200px"))
        self.add_full_button.add_class("eiq-annotator-add-full")
        self.add_full_button.on_click(self.guarded(lambda _: self.add_full_image_label()))

        self.train_button = w.Button(description="Train", layout=w.Layout(width="90px"))
        self.train_button.add_class("eiq-annotator-train")
        self.train_button.on_click(self.guarded(lambda _: self.set_group("train")))
        self.test_button = w.Button(description="Test", layout=w.Layout(width="90px"))
        self.test_button.add_class("eiq-annotator-test")
        self.test_button.on_click(self.guarded(lambda _: self.set_group("test")))

        self.prev_unlabeled_button = w.Button(description="Previous unlabeled", icon="arrow-left")
        self.prev_unlabeled_button.add_class("eiq-annotator-prev-unlabeled")
        self.prev_unlabeled_button.on_click(self.guarded(lambda _: self.previous_unlabeled()))
        self.next_unlabeled_button = w.Button(description="Next unlabeled", icon="arrow-right")
        self.next_unlabeled_button.add_class("eiq-annotator-next-unlabeled")
        self.next_unlabeled_button.on_click(self.guarded(lambda _: self.next_unlabeled()))
        self.prev_button = w.Button(description="Previous", icon="chevron-left", layout=w.Layout(width="110px"))
        self.prev_button.add_class("eiq-annotator-prev")
        self.prev_button.on_click(self.guarded(lambda _: self._step(previous=True)))
        self.next_button = w.Button(description="Next", icon="chevron-right", layout=w.Layout(width="110px"))
        self.next_button.add_class("eiq-annotator-next")
        self.next_button.on_click(self.guarded(lambda _: self._step(previous=False)))

        side = w.VBox(
            [
                w.HBox([self.label_picker]),
                w.HBox([self.new_label, self.new_color, self.add_label_button]),
                w.HTML("<b>Region-specific labels</b> <small>(draw a box on the image)</small>"),
                self.boxes_list,
                w.HTML("<b>Full image labels</b>"),
                self.full_list,
                self.add_full_button,
                w.HTML("<b>Dataset</b>"),
                w.HBox([self.train_button, self.test_button]),
            ],
            layout=w.Layout(min_width="320px", margin="0 0 0 12px"),
        )
        side.add_class("eiq-annotator-side")
        self.empty = w.HTML("<p class='eiq-annotator-empty'>No images found</p>")
        self.body = w.HBox([self.canvas, side], layout=w.Layout(align_items="flex-start"))
        self.navigation = w.HBox(
            [self.prev_unlabeled_button, self.prev_button, self.next_button, self.next_unlabeled_button]
        )
        super().__init__([self.info, self.body, self.navigation, self.empty])
        self.add_class("eiq-annotator")
        self.refresh_labels()
        if image is None:
            first = project.adjacent_image(None, annotated=False) or project.adjacent_image(None)
            image = first
        self.show_image(image)

    # -- labels ------------------------------------------------------------------------------------

    def refresh_labels(self) -> None:
        """Reload the shared label list (names and colours) into the picker and the box widget."""
        labels = self.project.labels()
        self._colors = {str(label): label_color(label, i) for i, label in enumerate(labels)}
        current = self.label_picker.value
        self.label_picker.options = [str(label) for label in labels]
        if current in self.label_picker.options:
            self.label_picker.value = current
        elif labels:
            self.label_picker.value = str(labels[0])
        self._sync_canvas_classes()

    def _sync_canvas_classes(self) -> None:
        # the box widget resets its label to its first class whenever the classes change (and when the page
        # renders it): the current label goes first, so that reset keeps the user's choice
        names = list(self.label_picker.options)
        current = self.label_picker.value
        if current in names:
            names.remove(current)
            names.insert(0, current)
        if names != list(self.canvas.classes):
            with self.canvas.hold_sync():
                self.canvas.colors = [self._colors[name] for name in names] or list(PALETTE)
                self.canvas.classes = names
        if current is not None and self.canvas.label != current:
            self.canvas.label = current

    def add_label(self, name: str, color: str | None = None) -> str:
        """Add a label to the project's shared list (or recolour it) and make it the current label."""
        clean = (name or "").strip()
        if not clean:
            raise InputError("type a label name first")
        label = self.project.add_label(clean, color)
        if color and label.color != color:
            label = self.project.update_label(label, color=color)
        self.new_label.value = ""
        self.refresh_labels()
        self.label_picker.value = str(label)
        self.say(f"label {label!s} ready: draw a box or add it as a full-image label", "ok")
        return str(label)

    @property
    def current_label(self) -> str | None:
        return self.label_picker.value

    def _on_picker(self, change: dict) -> None:
        if change["new"] is not None:
            self._sync_canvas_classes()

    def _on_canvas_label(self, change: dict) -> None:
        if change["new"] and change["new"] in self.label_picker.options and self.label_picker.value != change["new"]:
            self.label_picker.value = change["new"]

    # -- showing an image --------------------------------------------------------------------------

    def show_image(self, image: int | ProjectImage | None) -> None:
        """Show an image with its annotations (``None``: the "No images found" note)."""
        if image is None:
            self.image = None
            self.body.layout.display = "none"
            self.navigation.layout.display = "none"
            self.empty.layout.display = "block"
            self.info.value = ""
            return
        record = self.project.image(image)
        self.image = record
        self.body.layout.display = "flex"
        self.navigation.layout.display = "flex"
        self.empty.layout.display = "none"
        self.scale = display_scale(record.width, record.height, self.display_size)
        self.canvas.image_bytes = self._display_bytes(record)
        self._load_annotations()

    def _display_bytes(self, record: ProjectImage) -> bytes:
        from PIL import Image

        if abs(self.scale - 1.0) < 1e-9:
            return record.data()
        size = (max(1, round(record.width * self.scale)), max(1, round(record.height * self.scale)))
        # enlarged small images keep their pixels crisp; reduced large ones are smoothed
        resample = Image.Resampling.NEAREST if self.scale > 1 else Image.Resampling.BILINEAR
        shown = record.pil().convert("RGB").resize(size, resample)
        out = io.BytesIO()
        shown.save(out, "PNG" if self.scale > 1 else "JPEG")
        return out.getvalue()

    def _load_annotations(self) -> None:
        """Put the project's annotations of the current image into the box widget and the lists."""
        image = self.image
        if image is None:
            return
        annotations = self.project.annotations(image=image.id)
        boxes = [a for a in annotations if a.box is not None]
        self._box_ids = [a.id for a in boxes]
        self._shown = [self._to_display(a) for a in boxes]
        self._syncing = True
        try:
            self.canvas.selected_index = -1
            self.canvas.bboxes = [dict(b) for b in self._shown]
        finally:
            self._syncing = False
        self._fill_lists(boxes, [a for a in annotations if a.box is None])
        self._update_info()

    def _to_display(self, annotation: Annotation) -> dict:
        x, y, bw, bh = annotation.box
        s = self.scale
        return {
            "x": round(x * s),
            "y": round(y * s),
            "width": max(1, round(bw * s)),
            "height": max(1, round(bh * s)),
            "label": str(annotation.label),
        }

    def _to_image(self, shown: dict) -> tuple[float, float, float, float]:
        """A box of the widget (shown pixels) in the project's convention: (x, y, width, height) image pixels."""
        image = self.image
        s = self.scale
        x0 = float(shown["x"]) / s
        y0 = float(shown["y"]) / s
        x1 = x0 + float(shown["width"]) / s
        y1 = y0 + float(shown["height"]) / s
        # a box dragged past the border keeps the part on the image
        x0, x1 = sorted((min(max(x0, 0.0), image.width), min(max(x1, 0.0), image.width)))
        y0, y1 = sorted((min(max(y0, 0.0), image.height), min(max(y1, 0.0), image.height)))
        return (x0, y0, x1 - x0, y1 - y0)

    def _update_info(self) -> None:
        image = self.image
        unlabeled = self.project.count_images(annotated=False)
        group = image.grouping or "no group"
        source = f"{html.escape(image.source)}, " if image.source else ""
        self.info.value = (
            f"<span class='eiq-annotator-info-text'>Image #{image.id} ({source}{image.width}x{image.height} px) "
            f"&middot; <b>{group}</b> &middot; {unlabeled} unlabeled image(s) in the project</span>"
        )
        self.train_button.button_style = "info" if image.grouping == "train" else ""
        self.test_button.button_style = "info" if image.grouping == "test" else ""

    # -- the annotation lists (hover highlights, delete) --------------------------------------------

    def _fill_lists(self, boxes: list[Annotation], full: list[Annotation]) -> None:
        from ipyevents import Event

        # the previous image's rows go away for good (an annotating session builds many of them)
        old_rows = [*self.boxes_list.children, *self.full_list.children]
        for widget in [*self._row_events, *old_rows, *(c for row in old_rows for c in getattr(row, "children", ()))]:
            widget.close()
        self._row_events = []
        rows = []
        for index, ann in enumerate(boxes):
            x, y, bw, bh = ann.box
            rows.append(self._row(ann, f"({x:.0f}, {y:.0f}) {bw:.0f}x{bh:.0f}", index, Event))
        self.boxes_list.children = rows or [w.HTML("<i>no boxes</i>")]
        full_rows = [self._row(ann, "whole image", None, Event) for ann in full]
        self.full_list.children = full_rows or [w.HTML("<i>none</i>")]

    def _row(self, ann: Annotation, where: str, index: int | None, event_class: type) -> w.HBox:
        color = self._colors.get(str(ann.label), PALETTE[0])
        text = w.HTML(
            f"<span style='display:inline-block;width:10px;height:10px;background:{color};margin-right:6px'></span>"
            f"<b>{html.escape(str(ann.label))}</b> <small>{where}</small>",
            layout=w.Layout(width="230px"),
        )
        delete = w.Button(description="", icon="trash", tooltip="delete this annotation", layout=w.Layout(width="36px"))
        delete.add_class("eiq-annotator-delete")
        delete.on_click(self.guarded(lambda _, ann_id=ann.id: self.delete_annotation(ann_id)))
        row = w.HBox([text, delete], layout=w.Layout(align_items="center", padding="1px 4px"))
        row.add_class("eiq-annotator-row")
        # hover: the box under focus is selected in the drawing (ipyevents is not added as a child: that shows
        # a "javascript error" box; it only needs to exist)
        watcher = event_class(source=row, watched_events=["mouseenter", "mouseleave"])
        watcher.on_dom_event(
            lambda event, ann_id=ann.id: self.highlight(ann_id if event["type"] == "mouseenter" else None)
        )
        self._row_events.append(watcher)
        row.annotation_id = ann.id
        return row

    def highlight(self, annotation_id: int | None) -> None:
        """Highlight an annotation (its list row, and its box in the drawing); ``None`` clears it."""
        for row in [*self.boxes_list.children, *self.full_list.children]:
            if getattr(row, "annotation_id", None) is None:
                continue
            if row.annotation_id == annotation_id:
                row.add_class("eiq-annotator-row-active")
                row.layout.border = "2px solid #f5c400"
            else:
                row.remove_class("eiq-annotator-row-active")
                row.layout.border = ""
        index = self._box_ids.index(annotation_id) if annotation_id in self._box_ids else -1
        self._syncing = True
        try:
            self.canvas.selected_index = index
        finally:
            self._syncing = False

    @property
    def highlighted(self) -> int | None:
        """The annotation whose box is highlighted, if any."""
        index = self.canvas.selected_index
        return self._box_ids[index] if 0 <= index < len(self._box_ids) else None

    def _on_canvas_selection(self, change: dict) -> None:
        if self._syncing:
            return
        index = change["new"]
        self.highlight(self._box_ids[index] if 0 <= index < len(self._box_ids) else None)

    # -- edits -------------------------------------------------------------------------------------

    def _changed(self) -> None:
        self._load_annotations()
        if self.on_change is not None and self.image is not None:
            self.on_change(self.image.id)

    def _on_boxes(self, change: dict) -> None:
        if self._syncing or self.image is None:
            return
        try:
            self._save_boxes(list(change["new"]))
        except Exception as exc:
            self.fail(exc)
            self._load_annotations()  # the drawing shows what the project holds

    def _save_boxes(self, new: list[dict]) -> None:
        """Save what the user did in the drawing: one box added, removed, moved or relabelled.

        The widget reports a new box twice: with no area when the mouse goes down, then drawn when it goes
        up; the first is kept as pending (no id) until the second.
        """
        old = self._shown

        def same(a: dict, b: dict) -> bool:
            return all(a.get(k) == b.get(k) for k in ("x", "y", "width", "height", "label"))

        if len(new) == len(old) + 1 and all(same(a, b) for a, b in zip(old, new, strict=False)):
            if not self._has_area(new[-1]):
                self._shown, self._box_ids = [*old, dict(new[-1])], [*self._box_ids, None]
                return
            self._save_new(new[-1])
        elif len(new) == len(old) - 1:
            index = next((i for i, (a, b) in enumerate(zip(old, new, strict=False)) if not same(a, b)), len(new))
            if self._box_ids[index] is None:  # a pending box the user dropped
                self._shown, self._box_ids = new, self._box_ids[:index] + self._box_ids[index + 1 :]
                return
            self.project.delete_annotation(self._box_ids[index])
            self.say("box deleted", "ok")
        elif len(new) == len(old):
            changed = [i for i, (a, b) in enumerate(zip(old, new, strict=True)) if not same(a, b)]
            if not changed:
                return
            for index in changed:
                box_id, box = self._box_ids[index], new[index]
                if box_id is None:
                    if not self._has_area(box):
                        raise InputError("a box needs an area: press the mouse on one corner and drag to the other")
                    self._save_new(box)
                else:
                    self.project.update_annotation(box_id, label=box.get("label") or None, box=self._to_image(box))
                    self.say("box updated", "ok")
        else:
            self._load_annotations()
            return
        self._changed()

    def _has_area(self, shown: dict) -> bool:
        _, _, width, height = self._to_image(shown)
        return width > 0 and height > 0

    def _save_new(self, drawn: dict) -> None:
        label = drawn.get("label") or self.current_label
        if not label:
            raise InputError("add a label first (type its name and press Add label), then draw the box")
        ann = self.project.add_annotation(self.image, label, self._to_image(drawn))
        x, y, bw, bh = ann.box
        self.say(f"box {ann.label} at ({x:.0f}, {y:.0f}) {bw:.0f}x{bh:.0f} saved", "ok")

    def add_box(self, box: tuple[float, float, float, float], label: str | None = None) -> Annotation:
        """Save a box (x, y, width, height in image pixels) with `label` (default: the current label)."""
        label = label or self.current_label
        if not label:
            raise InputError("add a label first (type its name and press Add label), then draw the box")
        ann = self.project.add_annotation(self._require_image(), label, box)
        self._changed()
        return ann

    def add_full_image_label(self, label: str | None = None) -> Annotation | None:
        """Label the whole image with `label` (default: the current label); an existing one is not repeated."""
        image = self._require_image()
        label = label or self.current_label
        if not label:
            raise InputError("add a label first (type its name and press Add label)")
        for ann in self.project.annotations(image=image.id, boxes=False):
            if str(ann.label) == label:
                self.say(f"image #{image.id} already has the full-image label {label}", "warning")
                return None
        ann = self.project.add_annotation(image, label)
        self.say(f"full-image label {label} added", "ok")
        self._changed()
        return ann

    def delete_annotation(self, annotation_id: int) -> None:
        """Delete one annotation of the current image."""
        self.project.delete_annotation(annotation_id)
        self.say("annotation deleted", "ok")
        self._changed()

    def set_group(self, group: str | None) -> None:
        """Put the current image in ``"train"``, ``"test"`` or no group."""
        image = self._require_image()
        self.project.set_grouping(image, group)
        self.image = self.project.image(image.id)
        self.say(f"image #{image.id} is in {group or 'no group'}", "ok")
        self._update_info()
        if self.on_change is not None:
            self.on_change(image.id)

    def _require_image(self) -> ProjectImage:
        if self.image is None:
            raise InputError("no image is shown: import images into the project first")
        return self.image

    # -- moving between images ---------------------------------------------------------------------

    def _go(self, found: ProjectImage | None, what: str) -> ProjectImage | None:
        if found is None:
            self.say(f"no {what} image", "warning")
            return None
        self.show_image(found)
        self.say(f"image #{found.id}", "info")
        return found

    def next_unlabeled(self) -> ProjectImage | None:
        """Show the next unlabeled image (after the current one, wrapping to the first)."""
        current = self.image.id if self.image else None
        found = self.project.adjacent_image(current, annotated=False)
        if found is None and current is not None:
            found = self.project.adjacent_image(None, annotated=False)
            found = None if found is not None and found.id == current else found
        return self._go(found, "other unlabeled")

    def previous_unlabeled(self) -> ProjectImage | None:
        """Show the previous unlabeled image (before the current one, wrapping to the last)."""
        current = self.image.id if self.image else None
        found = self.project.adjacent_image(current, previous=True, annotated=False)
        if found is None and current is not None:
            found = self.project.adjacent_image(None, previous=True, annotated=False)
            found = None if found is not None and found.id == current else found
        return self._go(found, "other unlabeled")

    def _step(self, *, previous: bool) -> ProjectImage | None:
        current = self.image.id if self.image else None
        return self._go(self.project.adjacent_image(current, previous=previous), "previous" if previous else "next")
