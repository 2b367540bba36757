"""The project store: one SQLite file (`.eiqp` / `.deepview`) of images, labels and annotations.

Every mutation is one transaction; WAL lets a reader (training) read while a writer (annotator)
writes. Listing and counting never read image bytes.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError, ProjectError
from . import schema
from .imagefile import check_image
from .records import GROUPS, Annotation, Box, Label, ProjectImage

PROJECT_SUFFIXES = (".eiqp", ".deepview")

#: Pass as ``group=`` to mean "whatever the group"; ``None`` means "in no group".
ANY = "any"

_IMAGE_COLUMNS = "id, width, height, format, sha256, source, grouping, annotated"
_SQLITE_MAGIC = b"SQLite format 3\x00"


def normalize_group(group: str | None) -> str | None:
    """Map user spellings of a group to ``"train"``, ``"test"`` or ``None`` (no group).

    Raises:
        InputError: for any other name.
    """
    if group is None:
        return None
    value = str(group).strip().lower()
    if value in ("", "none", "null", "ungrouped"):
        return None
    if value in ("validation", "val", "valid"):
        return "test"
    if value not in GROUPS:
        raise InputError(f"group must be 'train', 'test' or none; received {group!r}")
    return value


def _check_box(box: Sequence[float], width: int, height: int) -> Box:
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InputError(f"box must be (x, y, width, height) in pixels; received {box!r}") from None
    if not (w > 0 and h > 0):
        raise InputError(f"box {tuple(box)} has no area: width and height must be > 0")
    eps = 1e-6
    if x < -eps or y < -eps or x + w > width + eps or y + h > height + eps:
        raise InputError(f"box {tuple(box)} (x, y, width, height) lies outside the {width}x{height} image")
    return Box(x, y, w, h)


class Project:
    """An open project file.

    Args:
        path: the `.eiqp` or `.deepview` file.
        create: create the file if it does not exist (refuse if it does).

    Raises:
        ProjectError: not found, not an SQLite project, or newer than this code.

    Example:
        >>> from eiq_lab.project import create_project
        >>> p = create_project("/tmp/doc.eiqp")  # doctest: +SKIP
        >>> [img] = p.add_images([open("cat.jpg", "rb").read()], "train")  # doctest: +SKIP
        >>> p.add_annotation(img, "cat")  # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = False):
        self.path = Path(path)
        if create:
            if self.path.exists():
                raise ProjectError(f"{self.path} already exists; open it, or choose another name")
            if self.path.suffix.lower() not in PROJECT_SUFFIXES:
                raise InputError(f"project file must end in .eiqp or .deepview; received {self.path.name}")
            if not self.path.parent.is_dir():
                raise InputError(f"folder {self.path.parent} does not exist; create it first")
        else:
            self._check_file()
        self._lock = threading.RLock()
        self._depth = 0
        try:
            self._conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0
            )
        except sqlite3.Error as exc:
            raise ProjectError(f"cannot open {self.path}: {exc}") from None
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA busy_timeout = 30000")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ProjectError(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self.migrated_from = schema.migrate(self._conn, path=str(self.path))
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            raise ProjectError(f"{self.path} is not an eiq-lab project (SQLite says: {exc})") from None
        except BaseException:
            self._conn.close()
            raise

    def _check_file(self) -> None:
        if not self.path.exists():
            raise ProjectError(f"project {self.path} does not exist; create it with `eiq project create {self.path}`")
        if self.path.is_dir():
            raise ProjectError(f"{self.path} is a folder, not a project file")
        with open(self.path, "rb") as f:
            head = f.read(16)
        if head != _SQLITE_MAGIC:
            raise ProjectError(f"{self.path} is not an eiq-lab project (not an SQLite database)")

    # -- connection and transactions ---------------------------------------------------------

    def close(self) -> None:
        """Close the file (checkpoints the write-ahead log into it)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Project({str(self.path)!r})"

    @property
    def schema_version(self) -> int:
        return schema.version_of(self._db)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise ProjectError(f"project {self.path} is closed")
        return self._conn

    @contextmanager
    def transaction(self) -> Iterator[Project]:
        """Group changes into one transaction: all of them are kept, or none.

        Nested uses join the outermost transaction.
        """
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self._db.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self._depth = 0
                self._db.execute("ROLLBACK")
                raise
            self._depth = 0
            self._db.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] | dict = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()

    def _scalar(self, sql: str, params: Sequence[Any] | dict = ()) -> Any:
        rows = self._query(sql, params)
        return rows[0][0] if rows else None

    # -- key-value metadata (project-scoped settings; extensions' storage builds on it) ------

    def get_meta(self, key: str, default: str | None = None) -> str | None:
        value = self._scalar("SELECT value FROM meta WHERE key = ?", (key,))
        return default if value is None else value

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (key, str(value)),
                )

    # -- images ----------------------------------------------------------------------------

    def _image(self, row: tuple) -> ProjectImage:
        return ProjectImage(*row[:7], bool(row[7]), project=self)

    def add_image(
        self,
        image: bytes | str | os.PathLike,
        grouping: str | None = None,
        *,
        source: str | None = None,
        decode: bool = False,
    ) -> ProjectImage:
        """Add one image (encoded bytes or a file path).

        Args:
            image: JPEG/PNG bytes (other formats are transcoded to PNG) or a path.
            grouping: ``"train"``, ``"test"`` or ``None``.
            source: where it came from (file name in its dataset); defaults to the path's name.
            decode: decode every pixel to check the data (slower).

        Raises:
            BadImage: the data is not a usable image (nothing is added).
        """
        if isinstance(image, (str, os.PathLike)):
            path = Path(image)
            source = source if source is not None else path.name
            try:
                image = path.read_bytes()
            except OSError as exc:
                raise InputError(f"cannot read image {path}: {exc.strerror}") from None
        elif hasattr(image, "numpy"):  # a TensorFlow string tensor, as the guide's uploader passes
            image = image.numpy()
        checked = check_image(image, decode=decode)
        return self._insert_image(checked, normalize_group(grouping), source)

    def _insert_image(self, checked, grouping: str | None, source: str | None) -> ProjectImage:
        sha = hashlib.sha256(checked.data).hexdigest()
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO images (sha256, width, height, format, source, grouping) VALUES (?, ?, ?, ?, ?, ?)",
                (sha, checked.width, checked.height, checked.format, source, grouping),
            )
            image_id = cur.lastrowid
            self._db.execute("INSERT INTO image_data (image_id, data) VALUES (?, ?)", (image_id, checked.data))
        return ProjectImage(
            image_id, checked.width, checked.height, checked.format, sha, source, grouping, False, project=self
        )

    def add_images(
        self, images: Iterable[bytes | str | os.PathLike], grouping: str | None = None
    ) -> list[ProjectImage]:
        """Add images in one transaction (the guide's datastore call); all are added or none.

        Args:
            images: encoded JPEG/PNG bytes or file paths.
            grouping: ``"train"``, ``"test"`` or ``None`` for all of them.

        Returns:
            The new images, in the order given.
        """
        with self.transaction():
            return [self.add_image(image, grouping) for image in images]

    def image(self, image: int | ProjectImage) -> ProjectImage:
        """The image with this id.

        Raises:
            NotFoundError: no such image.
        """
        image_id = _id_of(image)
        rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFoundError(f"no image with id {image_id} in {self.path.name}")
        return self._image(rows[0])

    image_with_id = image  # the guide's name

    def image_data(self, image: int | ProjectImage) -> bytes:
        """The stored encoded bytes of an image."""
        image_id = _id_of(image)
        data = self._scalar("SELECT data FROM image_data WHERE image_id = ?", (image_id,))
        if data is None:
            raise NotFoundError(f"no image with id {image_id} in {self.path.name}")
        return data

    def image_ids_with_sha256(self, sha256: str) -> list[int]:
        return [r[0] for r in self._query("SELECT id FROM images WHERE sha256 = ? ORDER BY id", (sha256,))]

    def _image_filter(
        self, group: str | None, label: str | int | None, annotated: bool | None, after_id: int | None = None
    ) -> tuple[str, list[Any]]:
        where, params = [], []
        if group != ANY:
            group = normalize_group(group)
            where.append("grouping IS ?")
            params.append(group)
        if annotated is not None:
            where.append("annotated = ?")
            params.append(1 if annotated else 0)
        if label is not None:
            where.append("id IN (SELECT image_id FROM annotations WHERE label_id = ?)")
            params.append(self.label(label).id)
        if after_id is not None:
            where.append("id > ?")
            params.append(after_id)
        return (" WHERE " + " AND ".join(where)) if where else "", params

    def images(
        self,
        *,
        group: str | None = ANY,
        label: str | int | None = None,
        annotated: bool | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[ProjectImage]:
        """One page of images, by id, filtered (no image bytes are read).

        Args:
            group: ``"train"``, ``"test"``, ``None`` (no group) or `ANY`.
            label: only images with an annotation of this label (name or id).
            annotated: ``True`` labelled images only, ``False`` unlabeled only.
            offset: images to skip.
            limit: page size (``None``: all).
        """
        where, params = self._image_filter(group, label, annotated)
        sql = f"SELECT {_IMAGE_COLUMNS} FROM images{where} ORDER BY id LIMIT ? OFFSET ?"
        rows = self._query(sql, [*params, -1 if limit is None else int(limit), int(offset)])
        return [self._image(r) for r in rows]

    def iter_images(
        self,
        *,
        group: str | None = ANY,
        label: str | int | None = None,
        annotated: bool | None = None,
        batch: int = 1000,
    ) -> Iterator[ProjectImage]:
        """All matching images, fetched `batch` at a time by id (constant memory)."""
        last = 0
        while True:
            where, params = self._image_filter(group, label, annotated, after_id=last)
            rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images{where} ORDER BY id LIMIT ?", [*params, batch])
            if not rows:
                return
            for row in rows:
                yield self._image(row)
            last = rows[-1][0]

    def count_images(
        self, *, group: str | None = ANY, label: str | int | None = None, annotated: bool | None = None
    ) -> int:
        """How many images match (uses the indices; no bytes read)."""
        where, params = self._image_filter(group, label, annotated)
        return self._scalar(f"SELECT count(*) FROM images{where}", params)

    def set_grouping(self, images: Iterable[int | ProjectImage] | int | ProjectImage, grouping: str | None) -> int:
        """Move images to ``"train"``, ``"test"`` or no group; returns how many changed."""
        group = normalize_group(grouping)
        ids = [_id_of(images)] if isinstance(images, (int, ProjectImage)) else [_id_of(i) for i in images]
        with self.transaction():
            self._require_images(ids)
            changed = 0
            for chunk in _chunks(ids, 900):
                marks = ",".join("?" * len(chunk))
                cur = self._db.execute(
                    f"UPDATE images SET grouping = ? WHERE id IN ({marks}) AND grouping IS NOT ?", [group, *chunk, group]
                )
                changed += cur.rowcount
        return changed

    def _require_images(self, ids: Sequence[int]) -> None:
        for chunk in _chunks(list(set(ids)), 900):
            marks = ",".join("?" * len(chunk))
            found = {r[0] for r in self._db.execute(f"SELECT id FROM images WHERE id IN ({marks})", chunk)}
            missing = sorted(set(chunk) - found)
            if missing:
                raise NotFoundError(f"no image with id {missing[0]} in {self.path.name}")

    def delete_image(self, image: int | ProjectImage) -> None:
        """Delete an image with its annotations."""
        image_id = _id_of(image)
        with self.transaction():
            if self._db.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount == 0:
                raise NotFoundError(f"no image with id {image_id} in {self.path.name}")

    def delete_images(self, images: Iterable[int | ProjectImage]) -> int:
        """Delete several images in one transaction; returns how many."""
        with self.transaction():
            n = 0
            for image in images:
                self.delete_image(image)
                n += 1
            return n

    # -- labels ----------------------------------------------------------------------------

    def labels(self) -> list[Label]:
        """All labels, by id (each is a `str` with ``.id``)."""
        return [Label(name, id_, color) for id_, name, color in self._query("SELECT id, name, color FROM labels ORDER BY id")]

    def label(self, label: str | int) -> Label:
        """Look a label up by name or id.

        Raises:
            NotFoundError: naming the labels that exist.
        """
        if isinstance(label, Label):
            label = label.id
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
            return self.label(name.id)
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
            values = (None,) * 4 if checked is None else tuple(checked)
            cur = self._db.execute(
                "INSERT INTO annotations (image_id, label_id, x, y, width, height, difficult, truncated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (img.id, lab.id, *values, int(difficult), int(truncated)),
            )
            return Annotation(cur.lastrowid, img.id, lab, checked, bool(difficult), bool(truncated))

    def annotation(self, annotation: int | Annotation) -> Annotation:
        ann_id = _id_of(annotation)
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
            params.append(_id_of(image))
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

    def update_annotation(
        self, annotation: int | Annotation, *, label: str | int | None = None, box: Any = ...
    ) -> Annotation:
        """Change an annotation's label and/or box (``box=None`` makes it a full-image label)."""
        with self.transaction():
            current = self.annotation(annotation)
            lab = current.label if label is None else self.add_label(label) if isinstance(label, str) else self.label(label)
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
        ann_id = _id_of(annotation)
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

    # -- whole-project views ---------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Counts per group and label, unlabeled images and boxes (no image bytes read)."""
        groups = {"train": 0, "test": 0, "none": 0}
        unlabeled = {"train": 0, "test": 0, "none": 0}
        for grouping, annotated, n in self._query(
            "SELECT grouping, annotated, count(*) FROM images GROUP BY grouping, annotated"
        ):
            key = grouping or "none"
            groups[key] += n
            if not annotated:
                unlabeled[key] += n
        per_label = {
            lab.id: {
                "name": lab.name,
                "images": {"train": 0, "test": 0, "none": 0},
                "boxes": 0,
                "full_image": 0,
            }
            for lab in self.labels()
        }
        for label_id, grouping, n_images, n_boxes, n_full in self._query(
            "SELECT a.label_id, i.grouping, count(DISTINCT a.image_id), sum(a.x IS NOT NULL), sum(a.x IS NULL) "
            "FROM annotations a JOIN images i ON i.id = a.image_id GROUP BY a.label_id, i.grouping"
        ):
            entry = per_label[label_id]
            entry["images"][grouping or "none"] += n_images
            entry["boxes"] += n_boxes
            entry["full_image"] += n_full
        for entry in per_label.values():
            entry["images"]["total"] = sum(entry["images"].values())
        boxes, full = self._query("SELECT count(x), count(*) - count(x) FROM annotations")[0]
        return {
            "path": str(self.path),
            "schema_version": self.schema_version,
            "images": sum(groups.values()),
            "groups": groups,
            "unlabeled": {**unlabeled, "total": sum(unlabeled.values())},
            "images_with_boxes": self._scalar("SELECT count(DISTINCT image_id) FROM annotations WHERE x IS NOT NULL"),
            "boxes": boxes,
            "full_image_labels": full,
            "labels": list(per_label.values()),
            "bytes": self._scalar("SELECT coalesce(sum(length(data)), 0) FROM image_data"),
        }

    def split(self, test_holdout: float = 20.0, *, seed: int | None = 0, reshuffle: bool = False):
        """Assign images to train and test at random; see `eiq_lab.project.split.split_project`."""
        from .split import split_project

        return split_project(self, test_holdout, seed=seed, reshuffle=reshuffle)

    def health(self, **options: Any):
        """Duplicates, leakage, balance and unlabeled counts; see `eiq_lab.project.health.check_health`."""
        from .health import check_health

        return check_health(self, **options)


def _id_of(obj: Any) -> int:
    value = getattr(obj, "id", obj)
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"expected an id or a project object; received {obj!r}") from None
    return value


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def create_project(path: str | os.PathLike) -> Project:
    """Create a new, empty project file (refuses to overwrite)."""
    return Project(path, create=True)


def open_project(path: str | os.PathLike, *, create: bool = False) -> Project:
    """Open an existing project; with ``create`` make it when missing."""
    if create and not Path(path).exists():
        return Project(path, create=True)
    return Project(path)
