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
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError, ProjectError
from . import schema
from .exports import Exports
from .imagefile import CheckedImage, check_image
from .labelling import Labelling
from .pipelines import Pipelines
from .records import ANY, ProjectImage, id_of, normalize_group
from .runs import Runs

PROJECT_SUFFIXES = (".eiqp", ".deepview")

#: SQLite page size of new projects (bytes).
PAGE_SIZE = 16384

_IMAGE_COLUMNS = "id, width, height, format, sha256, source, grouping, annotated"
_SQLITE_MAGIC = b"SQLite format 3\x00"


class Project(Labelling, Pipelines, Runs, Exports):
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
            self._conn = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False, timeout=30.0)
        except sqlite3.Error as exc:
            raise ProjectError(f"cannot open {self.path}: {exc}") from None
        try:
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA busy_timeout = 30000")
            # refuse a foreign or newer file before switching it to WAL, which rewrites its header
            schema.check(self._conn, path=str(self.path))
            if create:
                # images are tens of kilobytes: 16 KiB pages make their overflow chains a quarter as
                # long, which roughly halves the cost of writing them (fixed once the file exists)
                self._conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise ProjectError(f"{self.path}: cannot use write-ahead logging (journal mode {mode})")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA cache_size = -16384")
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

    def transaction(self) -> _Transaction:
        """Group changes into one transaction: all of them are kept, or none.

        Use as ``with project.transaction():``. Nested uses join the outermost transaction.
        """
        return _Transaction(self)

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

    def meta_keys(self, prefix: str = "") -> list[str]:
        """The metadata keys starting with `prefix`, sorted."""
        rows = self._query("SELECT key FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key", (len(prefix), prefix))
        return [r[0] for r in rows]

    def set_meta(self, key: str, value: str | None) -> None:
        with self.transaction():
            if value is None:
                self._db.execute("DELETE FROM meta WHERE key = ?", (key,))
            else:
                self._db.execute(
                    "INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
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
        return self.add_checked_image(checked, grouping, source=source)

    def add_checked_image(
        self,
        checked: CheckedImage,
        grouping: str | None,
        *,
        source: str | None = None,
        sha256: str | None = None,
        annotated: bool = False,
    ) -> ProjectImage:
        """Store an image already passed through `check_image` (importers check before they decide).

        ``annotated=True`` is for a caller that adds the image's annotations in the same transaction.
        """
        if grouping not in (None, "train", "test"):
            grouping = normalize_group(grouping)
        sha = sha256 or hashlib.sha256(checked.data).hexdigest()
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO images (sha256, width, height, format, source, grouping, annotated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (sha, checked.width, checked.height, checked.format, source, grouping, int(annotated)),
            )
            image_id = cur.lastrowid
            self._db.execute("INSERT INTO image_data (image_id, data) VALUES (?, ?)", (image_id, checked.data))
        return ProjectImage(
            image_id, checked.width, checked.height, checked.format, sha, source, grouping, annotated, project=self
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
        image_id = id_of(image)
        rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images WHERE id = ?", (image_id,))
        if not rows:
            raise NotFoundError(f"no image with id {image_id} in {self.path.name}")
        return self._image(rows[0])

    image_with_id = image  # the guide's name

    def image_data(self, image: int | ProjectImage) -> bytes:
        """The stored encoded bytes of an image."""
        image_id = id_of(image)
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
            # a probe per image, in id order: pages and batches cost their size, not the label's size
            where.append("EXISTS (SELECT 1 FROM annotations a WHERE a.label_id = ? AND a.image_id = images.id)")
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

    def adjacent_image(
        self,
        image: int | ProjectImage | None,
        *,
        previous: bool = False,
        group: str | None = ANY,
        label: str | int | None = None,
        annotated: bool | None = None,
    ) -> ProjectImage | None:
        """The next (or previous) matching image by id after `image`, or ``None`` at the end.

        Args:
            image: where to start (``None``: from the first, or with ``previous`` the last, image).
            previous: look backwards.
            group, label, annotated: the filters of `images` (``annotated=False``: next unlabeled image).
        """
        where, params = self._image_filter(group, label, annotated)
        if image is not None:
            where += (" AND " if where else " WHERE ") + ("id < ?" if previous else "id > ?")
            params.append(id_of(image))
        order = "DESC" if previous else "ASC"
        rows = self._query(f"SELECT {_IMAGE_COLUMNS} FROM images{where} ORDER BY id {order} LIMIT 1", params)
        return self._image(rows[0]) if rows else None

    def set_grouping(self, images: Iterable[int | ProjectImage] | int | ProjectImage, grouping: str | None) -> int:
        """Move images to ``"train"``, ``"test"`` or no group; returns how many changed."""
        group = normalize_group(grouping)
        ids = [id_of(images)] if isinstance(images, (int, ProjectImage)) else [id_of(i) for i in images]
        with self.transaction():
            self._require_images(ids)
            changed = 0
            for chunk in _chunks(ids, 900):
                marks = ",".join("?" * len(chunk))
                cur = self._db.execute(
                    f"UPDATE images SET grouping = ? WHERE id IN ({marks}) AND grouping IS NOT ?",
                    [group, *chunk, group],
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
        image_id = id_of(image)
        with self.transaction():
            if self._db.execute("DELETE FROM images WHERE id = ?", (image_id,)).rowcount == 0:
                raise NotFoundError(f"no image with id {image_id} in {self.path.name}")

    def delete_images(self, images: Iterable[int | ProjectImage]) -> int:
        """Delete several images in one transaction; returns how many."""
        ids = list(dict.fromkeys(id_of(i) for i in images))
        with self.transaction():
            for image_id in ids:
                self.delete_image(image_id)
        return len(ids)

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
            "file_bytes": sum(os.path.getsize(f) for f in (self.path, Path(f"{self.path}-wal")) if os.path.exists(f)),
        }

    def split(self, test_holdout: float = 20.0, *, seed: int | None = 0, reshuffle: bool = False):
        """Assign images to train and test at random; see `eiq_lab.project.split.split_project`."""
        from .split import split_project

        return split_project(self, test_holdout, seed=seed, reshuffle=reshuffle)

    def health(self, **options: Any):
        """Duplicates, leakage, balance and unlabeled counts; see `eiq_lab.project.health.check_health`."""
        from .health import check_health

        return check_health(self, **options)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class BulkWriter:
    """Writes many new images and their annotations with a few `executemany` calls.

    For importers, inside a transaction they hold: ids are assigned here (the transaction's write
    lock keeps anyone else from inserting), rows wait in memory until `flush` (every `batch` images,
    and before anything reads the project). Callers check images, boxes and labels first.
    """

    def __init__(self, project: Project, batch: int = 256):
        if not project._depth:
            raise RuntimeError("BulkWriter needs a transaction: use it inside `with project.transaction():`")
        self.project = project
        self.batch = batch
        self._next_id = project._scalar("SELECT coalesce(max(id), 0) + 1 FROM images")
        self._images: list[tuple] = []
        self._blobs: list[tuple] = []
        self._annotations: list[tuple] = []

    def add_image(
        self, checked: CheckedImage, sha256: str, grouping: str | None, source: str | None, annotated: bool
    ) -> int:
        """Queue an image row and its bytes; returns the id it will have."""
        image_id = self._next_id
        self._next_id += 1
        self._images.append(
            (image_id, sha256, checked.width, checked.height, checked.format, source, grouping, int(annotated))
        )
        self._blobs.append((image_id, checked.data))
        if len(self._images) >= self.batch:
            self.flush()
        return image_id

    def add_annotation(
        self, image_id: int, label_id: int, box: Sequence[float] | None, difficult: bool, truncated: bool
    ) -> None:
        """Queue an annotation row (the image may still be queued too)."""
        values = (None,) * 4 if box is None else tuple(box)
        self._annotations.append((image_id, label_id, *values, int(difficult), int(truncated)))

    def flush(self) -> None:
        """Write what is queued (images before the annotations that refer to them)."""
        db = self.project._db
        if self._images:
            db.executemany(
                "INSERT INTO images (id, sha256, width, height, format, source, grouping, annotated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._images,
            )
            db.executemany("INSERT INTO image_data (image_id, data) VALUES (?, ?)", self._blobs)
            self._images, self._blobs = [], []
        if self._annotations:
            db.executemany(
                "INSERT INTO annotations (image_id, label_id, x, y, width, height, difficult, truncated) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                self._annotations,
            )
            self._annotations = []


class _Transaction:
    """The context manager behind `Project.transaction` (a class: importers enter it per row)."""

    __slots__ = ("project",)

    def __init__(self, project: Project):
        self.project = project

    def __enter__(self) -> Project:
        project = self.project
        project._lock.acquire()
        try:
            if project._depth == 0:
                project._db.execute("BEGIN IMMEDIATE")
        except BaseException:
            project._lock.release()
            raise
        project._depth += 1
        return project

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        project = self.project
        try:
            project._depth -= 1
            if project._depth == 0:
                if exc_type is None:
                    try:
                        project._db.execute("COMMIT")
                    except BaseException:
                        project._db.execute("ROLLBACK")
                        raise
                else:
                    project._db.execute("ROLLBACK")
        finally:
            project._lock.release()
        return False


def create_project(path: str | os.PathLike) -> Project:
    """Create a new, empty project file (refuses to overwrite)."""
    return Project(path, create=True)


def open_project(path: str | os.PathLike, *, create: bool = False) -> Project:
    """Open an existing project; with ``create`` make it when missing."""
    if create and not Path(path).exists():
        return Project(path, create=True)
    return Project(path)
