"""Labels and annotations of a project: full-image labels and boxes, shared label list.

A mixin of `Project`; every change is one transaction and boxes are checked against their image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ..errors import InputError, NotFoundError
from .records import ANY, Annotation, Box, Label, ProjectImage, id_of, normalize_group


def _check_box(box: Sequence[float], width: int, height: int) -> Box:
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box must be (x, y, width, height) in pixels; received {box!r}") from None
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        raise InputError(f"box {tuple(box)} (x, y, width, height) must be finite numbers")
    if not (w > 0 and h > 0):
        raise InputError(f"box {tuple(box)} has no area: width and height must be > 0")
    eps = 1e-6
    if x < -eps or y < -eps or x + w > width + eps or y + h > height + eps:
        raise InputError(f"box {tuple(box)} (x, y, width, height) lies outside the {width}x{height} image")
    return Box(x, y, w, h)


class Labelling:
    """Label and annotation methods of `Project` (which provides the connection and transactions)."""

    # -- labels ----------------------------------------------------------------------------

    def labels(self) -> list[Label]:
        """All labels, by id (each is a `str` with ``.id``)."""
        return [
            Label(name, id_, color)
            for id_, name, color in self._query("SELECT id, name, color FROM labels ORDER BY id")
        ]

    def label(self, label: str | int) -> Label:
        """Look a label up by name or id.

        Raises:
            NotFoundError: naming the labels that exist.
        """
        if isinstance(label, Label):
            # a Label may come from another project, where ids differ: trust its id only with its name
            rows = self._query("SELECT id, name, color FROM labels WHERE id = ? AND name = ?", (label.id, str(label)))
            if rows:
                return Label(rows[0][1], rows[0][0], rows[0][2])
            label = str(label)
        if isinstance(label, int) and not isinstance(label, bool):
            rows = self._query("SELECT id, name, color FROM labels WHERE id = ?", (label,))
        else:
            rows = self._query("SELECT id, name, color FROM labels WHERE name = ?", (str(label),))
        if not rows:
            names = ", ".join(self.labels()[:30]) or "none yet"
            raise NotFoundError(f"no label {label!r} in {self.path.name}; labels: {names}")
        id_, name, color = rows[0]
        return Label(name, id_, color)

    def add_label(self, name: str, color: str | None = None) -> Label:
        """The label with this name, created if new."""
        if isinstance(name, Label):
            color = name.color if color is None else color
        clean = str(name).strip()
        if not clean:
            raise InputError("a label name cannot be empty")
        with self.transaction():
            row = self._db.execute("SELECT id, name, color FROM labels WHERE name = ?", (clean,)).fetchone()
            if row:
                return Label(row[1], row[0], row[2])
            cur = self._db.execute("INSERT INTO labels (name, color) VALUES (?, ?)", (clean, color))
            return Label(clean, cur.lastrowid, color)

    def update_label(self, label: str | int, name: str | None = None, color: str | None = None) -> Label:
        """Rename a label (or set its colour); renaming onto an existing name merges the two.

        Returns:
            The updated (or merged-into) label.
        """
        with self.transaction():
            old = self.label(label)
            new_name = old.name if name is None else str(name).strip()
            if not new_name:
                raise InputError("a label name cannot be empty")
            other = self._db.execute("SELECT id FROM labels WHERE name = ? AND id <> ?", (new_name, old.id)).fetchone()
            if other:
                self._db.execute("UPDATE annotations SET label_id = ? WHERE label_id = ?", (other[0], old.id))
                self._db.execute("DELETE FROM labels WHERE id = ?", (old.id,))
                return self.label(other[0])
            self._db.execute(
                "UPDATE labels SET name = ?, color = coalesce(?, color) WHERE id = ?", (new_name, color, old.id)
            )
            return self.label(old.id)

    def delete_label(self, label: str | int, *, force: bool = False) -> int:
        """Delete a label; with ``force`` also its annotations. Returns annotations removed.

        Raises:
            InputError: the label is in use and ``force`` is not set.
        """
        with self.transaction():
            found = self.label(label)
            used = self._db.execute("SELECT count(*) FROM annotations WHERE label_id = ?", (found.id,)).fetchone()[0]
            if used and not force:
                raise InputError(
                    f"label {found.name!r} is used by {used} annotation(s); delete them first or pass force=True "
                    "(CLI: --force)"
                )
            self._db.execute("DELETE FROM labels WHERE id = ?", (found.id,))
            return used

    # -- annotations -----------------------------------------------------------------------

    def _annotation(self, row: tuple, labels: dict[int, Label] | None = None) -> Annotation:
        id_, image_id, label_id, name, color, x, y, w, h, difficult, truncated = row
        label = labels[label_id] if labels and label_id in labels else Label(name, label_id, color)
        box = None if x is None else Box(x, y, w, h)
        return Annotation(id_, image_id, label, box, bool(difficult), bool(truncated))

    _ANN_SELECT = (
        "SELECT a.id, a.image_id, a.label_id, l.name, l.color, a.x, a.y, a.width, a.height, a.difficult, "
        "a.truncated FROM annotations a JOIN labels l ON l.id = a.label_id"
    )

    def add_annotation(
        self,
        image: int | ProjectImage,
        label: str | int,
        box: Sequence[float] | None = None,
        *,
        difficult: bool = False,
        truncated: bool = False,
    ) -> Annotation:
        """Label an image: a full-image label, or a box (x, y, width, height) in pixels.

        The label is created if new.

        Raises:
            NotFoundError: no such image.
            InputError: the box has no area or lies outside the image.
        """
        with self.transaction():
            img = image if isinstance(image, ProjectImage) and image.project is self else self.image(image)
            checked = None if box is None else _check_box(box, img.width, img.height)
            lab = self.add_label(label) if not isinstance(label, int) or isinstance(label, bool) else self.label(label)
            ann_id = self._insert_annotation(img.id, lab.id, checked, difficult, truncated)
            return Annotation(ann_id, img.id, lab, checked, bool(difficult), bool(truncated))

    def _insert_annotation(
        self, image_id: int, label_id: int, box: Sequence[float] | None, difficult: bool, truncated: bool
    ) -> int:
        """Insert a row whose image, label and box the caller has already checked."""
        values = (None,) * 4 if box is None else tuple(box)
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO annotations (image_id, label_id, x, y, width, height, difficult, truncated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (image_id, label_id, *values, int(difficult), int(truncated)),
            )
        return cur.lastrowid

    def annotation(self, annotation: int | Annotation) -> Annotation:
        ann_id = id_of(annotation)
        rows = self._query(f"{self._ANN_SELECT} WHERE a.id = ?", (ann_id,))
        if not rows:
            raise NotFoundError(f"no annotation with id {ann_id} in {self.path.name}")
        return self._annotation(rows[0])

    def annotations(
        self,
        *,
        image: int | ProjectImage | None = None,
        label: str | int | None = None,
        group: str | None = ANY,
        boxes: bool | None = None,
    ) -> list[Annotation]:
        """Annotations filtered by image, label, the image's group, and kind.

        Args:
            boxes: ``True`` boxes only, ``False`` full-image labels only, ``None`` both.
        """
        where, params = [], []
        if image is not None:
            where.append("a.image_id = ?")
            params.append(id_of(image))
        if label is not None:
            where.append("a.label_id = ?")
            params.append(self.label(label).id)
        if group != ANY:
            where.append("a.image_id IN (SELECT id FROM images WHERE grouping IS ?)")
            params.append(normalize_group(group))
        if boxes is not None:
            where.append("a.x IS NOT NULL" if boxes else "a.x IS NULL")
        sql = self._ANN_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY a.id"
        return [self._annotation(r) for r in self._query(sql, params)]

    def annotations_for_images(self, images: Sequence[int | ProjectImage]) -> dict[int, list[Annotation]]:
        """Annotations of several images at once: ``{image_id: [Annotation, ...]}`` (missing: none)."""
        ids = [id_of(i) for i in images]
        out: dict[int, list[Annotation]] = {}
        for start in range(0, len(ids), 900):
            chunk = ids[start : start + 900]
            marks = ",".join("?" * len(chunk))
            for row in self._query(f"{self._ANN_SELECT} WHERE a.image_id IN ({marks}) ORDER BY a.id", chunk):
                ann = self._annotation(row)
                out.setdefault(ann.image_id, []).append(ann)
        return out

    def update_annotation(
        self, annotation: int | Annotation, *, label: str | int | None = None, box: Any = ...
    ) -> Annotation:
        """Change an annotation's label and/or box (``box=None`` makes it a full-image label)."""
        with self.transaction():
            current = self.annotation(annotation)
            lab = (
                current.label
                if label is None
                else self.add_label(label)
                if isinstance(label, str)
                else self.label(label)
            )
            new_box = current.box
            if box is not ...:
                img = self.image(current.image_id)
                new_box = None if box is None else _check_box(box, img.width, img.height)
            values = (None,) * 4 if new_box is None else tuple(new_box)
            self._db.execute(
                "UPDATE annotations SET label_id = ?, x = ?, y = ?, width = ?, height = ? WHERE id = ?",
                (lab.id, *values, current.id),
            )
            return self.annotation(current.id)

    def delete_annotation(self, annotation: int | Annotation) -> None:
        ann_id = id_of(annotation)
        with self.transaction():
            if self._db.execute("DELETE FROM annotations WHERE id = ?", (ann_id,)).rowcount == 0:
                raise NotFoundError(f"no annotation with id {ann_id} in {self.path.name}")

    # -- the guide's datastore reads -------------------------------------------------------

    def annotations_with_image(self, image: int | ProjectImage) -> list[tuple[str, tuple | None]]:
        """``[(label, box_or_None), ...]`` for one image."""
        return [a.as_pair() for a in self.annotations(image=image)]

    def annotated_images_with_grouping(self, grouping: str | None) -> list[int]:
        """Ids of the labelled images in a group."""
        return [i.id for i in self.iter_images(group=grouping, annotated=True)]

    def annotated_images_with_grouping_count(self, grouping: str | None) -> int:
        return self.count_images(group=grouping, annotated=True)

    def full_image_labels(self, group: str | None = ANY) -> list[tuple[int, list[int]]]:
        """Full-image label ids per image of a group, by image id (boxes are left out).

        Returns:
            ``[(image_id, [label_id, ...]), ...]`` with labels in the order they were added; images
            without a full-image label are absent.
        """
        where, params = "", []
        if group != ANY:
            where, params = " AND i.grouping IS ?", [normalize_group(group)]
        rows = self._query(
            "SELECT a.image_id, a.label_id FROM annotations a JOIN images i ON i.id = a.image_id "
            f"WHERE a.x IS NULL{where} ORDER BY a.image_id, a.id",
            params,
        )
        out: list[tuple[int, list[int]]] = []
        for image_id, label_id in rows:
            if out and out[-1][0] == image_id:
                out[-1][1].append(label_id)
            else:
                out.append((image_id, [label_id]))
        return out

    def boxes_by_image(self, group: str | None = ANY) -> list[tuple[int, int, int, list[tuple[int, Box]]]]:
        """The boxes of every image of a group that has any, by image id (full-image labels are left out).

        Returns:
            ``[(image_id, width, height, [(label_id, Box), ...]), ...]`` with boxes in the order they were added.
        """
        where, params = "", []
        if group != ANY:
            where, params = " AND i.grouping IS ?", [normalize_group(group)]
        rows = self._query(
            "SELECT a.image_id, i.width, i.height, a.label_id, a.x, a.y, a.width, a.height FROM annotations a "
            f"JOIN images i ON i.id = a.image_id WHERE a.x IS NOT NULL{where} ORDER BY a.image_id, a.id",
            params,
        )
        out: list[tuple[int, int, int, list[tuple[int, Box]]]] = []
        for image_id, width, height, label_id, x, y, w, h in rows:
            if not out or out[-1][0] != image_id:
                out.append((image_id, width, height, []))
            out[-1][3].append((label_id, Box(x, y, w, h)))
        return out

    def annotation_ids_with_grouping(self, grouping: str | None) -> list[int]:
        """Ids of the annotations on images of a group."""
        rows = self._query(
            "SELECT a.id FROM annotations a JOIN images i ON i.id = a.image_id WHERE i.grouping IS ? ORDER BY a.id",
            (normalize_group(grouping),),
        )
        return [r[0] for r in rows]

    def sample(self, annotation: int | Annotation, size: tuple[int, int]):
        """The annotated region (the box, or the whole image) resized to ``size`` = (width, height).

        Returns:
            A PIL image in RGB.
        """
        from PIL import Image

        ann = self.annotation(annotation)
        image = self.image(ann.image_id).pil().convert("RGB")
        if ann.box is not None:
            x, y, w, h = ann.box
            image = image.crop((x, y, x + w, y + h))
        return image.resize((int(size[0]), int(size[1])), Image.Resampling.BILINEAR)
