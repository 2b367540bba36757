"""One import into one project: a single transaction, box checks, duplicates, and one report type.

Format readers feed images, objects and groups by key in any order; the session joins them.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EiqError, ImportAborted, InputError
from ..events import Observer, Progress, as_progress
from ..project import Project, normalize_group
from ..project.imagefile import CheckedImage, check_image
from ..project.store import BulkWriter, open_project

#: Boxes may overshoot the image by this many pixels (rounding, VOC's 1-based corners) unreported.
BOX_TOLERANCE = 1.0

DUPLICATE_POLICIES = ("skip", "keep")


@dataclass(frozen=True)
class LabelledObject:
    """One label found in a dataset: a full-image label (``box=None``) or a box.

    ``box`` is (x, y, width, height): in pixels, or in fractions of the image when ``normalized``.
    """

    label: str
    box: tuple[float, float, float, float] | None = None
    difficult: bool = False
    truncated: bool = False
    normalized: bool = False


def corners(xmin: float, ymin: float, xmax: float, ymax: float) -> tuple[float, float, float, float]:
    """(x, y, width, height) from corner coordinates, unchecked (the session checks)."""
    return (float(xmin), float(ymin), float(xmax) - float(xmin), float(ymax) - float(ymin))


_SPLIT_NAME = re.compile(r"^(?:obj_)?(train|training|val|valid|validation|test|testing)(?:[_-]?\d+|_data)?$", re.I)


def split_group(name: str) -> str | None:
    """The group a dataset's split name stands for (a folder or file-name part), or ``None``.

    Examples:
        >>> [split_group(n) for n in ("train2017", "val", "valid", "test", "obj_train_data", "images")]
        ['train', 'test', 'test', 'test', 'train', None]
    """
    found = _SPLIT_NAME.match(name)
    if found is None:
        return None
    return "train" if found.group(1).lower().startswith("train") else "test"


@dataclass
class Problem:
    """A per-file problem: what, where, and whether data was skipped (error) or adjusted (warning)."""

    file: str
    reason: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.file}: {self.reason}"


@dataclass
class ImportReport:
    """What an import did (or, for a listing, would do)."""

    format: str
    source: str
    project: str | None
    listed_only: bool = False
    images: int = 0
    duplicates: int = 0
    transcoded: int = 0
    skipped: int = 0
    unlabeled: int = 0
    boxes: int = 0
    full_image: int = 0
    labels: Counter = field(default_factory=Counter)
    groups: Counter = field(default_factory=Counter)
    excluded: Counter = field(default_factory=Counter)
    problems: list[Problem] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "source": self.source,
            "project": self.project,
            "listed_only": self.listed_only,
            "images": self.images,
            "duplicates_skipped": self.duplicates,
            "transcoded_to_png": self.transcoded,
            "files_skipped": self.skipped,
            "unlabeled": self.unlabeled,
            "boxes": self.boxes,
            "full_image_labels": self.full_image,
            "labels": dict(sorted(self.labels.items())),
            "groups": {g: self.groups.get(g, 0) for g in ("train", "test", "none")},
            "excluded": dict(self.excluded),
            "problems": [{"file": p.file, "reason": p.reason, "severity": p.severity} for p in self.problems],
            "seconds": round(self.seconds, 3),
        }

    def summary(self, max_problems: int = 20) -> str:
        """A few human lines: what was imported, per label, and the first problems."""
        verb = "found" if self.listed_only else "imported"
        lines = [
            f"{verb} {self.images} image(s) from {self.source} ({self.format})"
            + ("" if self.listed_only else f" into {self.project}")
            + f": train {self.groups.get('train', 0)}, test {self.groups.get('test', 0)}, "
            f"no group {self.groups.get('none', 0)}; {self.boxes} box(es), {self.full_image} full-image label(s), "
            f"{self.unlabeled} unlabeled"
        ]
        if self.labels:
            width = max(len(name) for name in self.labels)
            lines.append("labels:")
            lines += [f"  {name:<{width}}  {n}" for name, n in sorted(self.labels.items())]
        extras = []
        if self.duplicates:
            extras.append(f"{self.duplicates} duplicate image(s) already in the project skipped")
        if self.transcoded:
            extras.append(f"{self.transcoded} image(s) converted to PNG")
        for kind, n in sorted(self.excluded.items()):
            extras.append(f"{n} {kind} object(s) left out (use --{kind} to include them)")
        if self.skipped:
            extras.append(f"{self.skipped} file(s) skipped")
        lines += extras
        if self.problems:
            lines.append(f"{len(self.errors)} problem(s), {len(self.warnings)} warning(s):")
            lines += [f"  {p.severity}: {p}" for p in self.problems[:max_problems]]
            if len(self.problems) > max_problems:
                lines.append(f"  ... and {len(self.problems) - max_problems} more (see --json)")
        return "\n".join(lines)


class ImportSession:
    """Collects one dataset's images, objects and groups into a project in one transaction.

    Readers call `image`, `objects` and `group` with a key of their own (a file stem, a COCO id)
    in whatever order the dataset stores them; `finish` joins what arrived apart, applies groups
    and reports annotations whose image never came. With ``project=None`` nothing is stored and
    the report lists what the dataset holds (the importer's ``-list``).

    Args:
        project: the open project, or ``None`` to list only.
        format: format name for the report.
        source: dataset path for the report.
        group: force every image into this group (``None``: keep the groups the format carries).
        difficult / truncated: include objects flagged so.
        strict: abort (and keep nothing) at the first per-file error.
        duplicates: ``"skip"`` images whose bytes are already in the project, or ``"keep"`` them.
        decode: decode every pixel of every image to check it (slower).
        progress: a `Progress` or observer for events.
    """

    def __init__(
        self,
        project: Project | None,
        *,
        format: str,
        source: str | os.PathLike,
        group: str | None = None,
        difficult: bool = False,
        truncated: bool = False,
        strict: bool = False,
        duplicates: str = "skip",
        decode: bool = False,
        progress: Progress | Observer | None = None,
    ):
        if duplicates not in DUPLICATE_POLICIES:
            raise InputError(f"duplicates must be one of {', '.join(DUPLICATE_POLICIES)}; received {duplicates!r}")
        self.project = project
        self.forced_group = normalize_group(group)
        self.include = {"difficult": difficult, "truncated": truncated}
        self.strict = strict
        self.skip_duplicates = duplicates == "skip"
        self.decode = decode
        self.progress = as_progress(progress)
        self.report = ImportReport(
            format, str(source), None if project is None else str(project.path), listed_only=project is None
        )
        self._images: dict[Any, tuple[int | None, int, int, str | None]] = {}  # key -> id, w, h, group
        self._pending: dict[Any, list[tuple[str, list[LabelledObject]]]] = {}
        self._groups: dict[Any, str | None] = {}
        self._labelled: set[Any] = set()
        self._labels: dict[str, Any] = {}
        self._hashes: set[int] = set()  # 64-bit prefixes of the images this import added
        self._project_had_images = False
        self._started = time.monotonic()
        self._tx = None

    # -- context: one transaction --------------------------------------------------------------

    def __enter__(self) -> ImportSession:
        if self.project is not None:
            self._tx = self.project.transaction()
            self._tx.__enter__()
            self._project_had_images = bool(self.project.images(limit=1))  # O(1), unlike a count
            self._writer = BulkWriter(self.project)
        self.progress.start("import" if self.project is not None else "list")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc_type is None:
                self._finish()
        except BaseException as failure:
            if self._tx is not None:
                self._tx.__exit__(type(failure), failure, failure.__traceback__)
                self._tx = None
            raise
        if self._tx is not None:
            self._tx.__exit__(exc_type, exc, tb)
        self.report.seconds = time.monotonic() - self._started
        if exc_type is None:
            self.progress.end(self.report.summary(max_problems=0).splitlines()[0])
        return False

    # -- what readers call -----------------------------------------------------------------------

    @property
    def listing(self) -> bool:
        """True when only listing: readers need not read image bytes."""
        return self.project is None

    def problem(self, file: str, reason: str, severity: str = "error", *, skipped_file: bool = False) -> None:
        """Record a per-file problem; in strict mode an error aborts the import."""
        self.report.problems.append(Problem(file, reason, severity))
        if skipped_file:
            self.report.skipped += 1
        self.progress.problem(file, reason, severity)
        if self.strict and severity == "error":
            raise ImportAborted(f"{file}: {reason} (--strict: the import stopped and nothing was kept)")

    def expect(self, total: int | None) -> None:
        """Tell the progress display how many images to expect."""
        self.progress.set_total(total)

    def image(self, key: Any, data: bytes | None, *, name: str, group: str | None = None) -> int | None:
        """Add one image (``data`` may be ``None`` when listing only).

        Args:
            key: the reader's key joining this image to its objects and group.
            data: encoded bytes.
            name: the file name in the dataset (for the report and the image's source).
            group: the group the format gives this image, if any.

        Returns:
            The new image id, or ``None`` if the image was skipped or only listed.
        """
        if self.project is None:
            if self._claim(key, name):
                group = self._group_for(key, group)
                self._images[key] = (None, 0, 0, group)
                self.report.images += 1
                self.progress.advance()
                for file, objects in self._pending.pop(key, []):
                    self._store(key, None, self._accept(objects, 0, 0, file))
            return None
        try:
            checked = check_image(data, decode=self.decode)
        except EiqError as exc:
            self.bad_image(key, name, str(exc))
            return None
        return self.checked_image(key, checked, hashlib.sha256(checked.data).hexdigest(), name=name, group=group)

    def checked_image(
        self, key: Any, checked: CheckedImage, sha256: str, *, name: str, group: str | None = None
    ) -> int | None:
        """Add an image already checked and hashed (by `image`, or by a reader in another process)."""
        if not self._claim(key, name):
            return None
        group = self._group_for(key, group)
        pending = self._pending.pop(key, [])
        if self.skip_duplicates and self._seen(sha256):
            self.report.duplicates += 1
            self._images[key] = (None, 0, 0, None)
            self.progress.advance()
            return None
        # objects that arrived first are checked before the image row is written, so the row is
        # born with its annotation state and the trigger has nothing to update
        rows = [row for file, objects in pending for row in self._accept(objects, checked.width, checked.height, file)]
        image_id = self._writer.add_image(checked, sha256, group, name, bool(rows))
        self._hashes.add(int(sha256[:16], 16))
        self.report.transcoded += checked.transcoded_from is not None
        self._images[key] = (image_id, checked.width, checked.height, group)
        self.report.images += 1
        self._store(key, image_id, rows)
        self.progress.advance()
        return image_id

    def bad_image(self, key: Any, name: str, reason: str) -> None:
        """Record an image that could not be used (reported, skipped, its annotations dropped)."""
        if not self._claim(key, name):
            return
        self._pending.pop(key, None)
        self._images[key] = (None, 0, 0, None)
        self.problem(name, f"{reason}: skipped", skipped_file=True)
        self.progress.advance()

    def _seen(self, sha256: str) -> bool:
        """Whether these bytes are already in the project. The project is asked only when it held
        images before this import or a 64-bit prefix of the hash was already added by it."""
        if not self._project_had_images and int(sha256[:16], 16) not in self._hashes:
            return False
        self._writer.flush()  # queued images must be visible to the query
        return bool(self.project.image_ids_with_sha256(sha256))

    def _claim(self, key: Any, name: str) -> bool:
        if key in self._images:
            self.problem(name, "a second image with the same name: skipped", skipped_file=True)
            return False
        return True

    def image_size(self, key: Any) -> tuple[int, int] | None:
        """(width, height) of the image added under `key`; ``None`` if none was added (or listing)."""
        image_id, width, height, _ = self._images.get(key, (None, 0, 0, None))
        return None if image_id is None else (width, height)

    def objects(self, key: Any, objects: list[LabelledObject], *, name: str) -> None:
        """Attach labels and boxes to the image with this key (now, or when it arrives)."""
        if key in self._images:
            self._add_objects(key, objects, name)
        else:
            self._pending.setdefault(key, []).append((name, list(objects)))

    def group(self, key: Any, group: str | None) -> None:
        """Record the group the format gives an image (ignored when a group is forced)."""
        self._groups[key] = normalize_group(group)

    # -- inside ----------------------------------------------------------------------------------

    def _group_for(self, key: Any, group: str | None) -> str | None:
        if self.forced_group is not None:
            return self.forced_group
        return self._groups.get(key, normalize_group(group))

    def _add_objects(self, key: Any, objects: list[LabelledObject], name: str) -> None:
        image_id, width, height, _ = self._images[key]
        if image_id is None and self.project is not None:
            return  # the image was skipped (bad or duplicate); its problem is already reported
        self._store(key, image_id, self._accept(objects, width, height, name))

    def _accept(
        self, objects: list[LabelledObject], width: int, height: int, name: str
    ) -> list[tuple[LabelledObject, tuple | None]]:
        """The objects to keep, with boxes in pixels fitted to the image (listing: unchecked)."""
        kept = []
        for obj in objects:
            excluded = [kind for kind in ("difficult", "truncated") if getattr(obj, kind) and not self.include[kind]]
            if excluded:
                self.report.excluded[excluded[0]] += 1
                continue
            box = obj.box
            if box is not None and self.project is not None:
                box = self._fit_box(obj, width, height, name)
                if box is None:
                    continue
            kept.append((obj, box))
        return kept

    def _store(self, key: Any, image_id: int | None, rows: list[tuple[LabelledObject, tuple | None]]) -> None:
        for obj, box in rows:
            if self.project is not None:
                label = self._labels.get(obj.label)
                if label is None:
                    label = self._labels[obj.label] = self.project.add_label(obj.label)
                self._writer.add_annotation(image_id, label.id, box, obj.difficult, obj.truncated)
            self.report.labels[obj.label] += 1
            if box is None:
                self.report.full_image += 1
            else:
                self.report.boxes += 1
            self._labelled.add(key)

    def _fit_box(self, obj: LabelledObject, width: int, height: int, name: str):
        x, y, w, h = obj.box
        if obj.normalized:
            x, y, w, h = x * width, y * height, w * width, h * height
        x0, y0, x1, y1 = x, y, x + w, y + h
        where = f"box of {obj.label!r} (xmin {x0:g}, ymin {y0:g}, xmax {x1:g}, ymax {y1:g})"
        if not (w > 0 and h > 0):
            self.problem(name, f"{where} has xmin >= xmax or ymin >= ymax: object skipped")
            return None
        cx0, cy0 = max(x0, 0.0), max(y0, 0.0)
        cx1, cy1 = min(x1, float(width)), min(y1, float(height))
        if cx1 <= cx0 or cy1 <= cy0:
            self.problem(name, f"{where} lies outside the {width}x{height} image: object skipped")
            return None
        if (cx0, cy0, cx1, cy1) == (x0, y0, x1, y1):
            return (x, y, w, h)  # inside: keep the values as given ((x + w) - x may differ from w)
        overshoot = max(cx0 - x0, cy0 - y0, x1 - cx1, y1 - cy1)
        if overshoot > BOX_TOLERANCE:
            self.problem(
                name,
                f"{where} extends outside the {width}x{height} image: clipped to "
                f"(xmin {cx0:g}, ymin {cy0:g}, xmax {cx1:g}, ymax {cy1:g})",
                severity="warning",
            )
        return (cx0, cy0, cx1 - cx0, cy1 - cy0)

    def _finish(self) -> None:
        if self.project is not None:
            self._writer.flush()
        for entries in self._pending.values():
            for name, _ in entries:
                self.problem(name, "annotation without its image: skipped", skipped_file=True)
        self._pending.clear()
        late = []
        for key, (image_id, _, _, group) in list(self._images.items()):
            if image_id is None and self.project is not None:
                continue
            final = self._group_for(key, group)
            if final != group:
                late.append((image_id, final))
                self._images[key] = (image_id, 0, 0, final)
            self.report.groups[final or "none"] += 1
            self.report.unlabeled += key not in self._labelled
        if late and self.project is not None:
            for group in {g for _, g in late}:
                self.project.set_grouping([i for i, g in late if g == group], group)


@contextmanager
def project_for_import(project: Project | str | os.PathLike, *, create: bool = True) -> Iterator[Project]:
    """Open (or create) the project an import writes to; a project created here is removed if the
    import fails, so a failed import leaves the disk as it was."""
    if isinstance(project, Project):
        yield project
        return
    path = Path(project)
    created = create and not path.exists()
    opened = open_project(path, create=create)
    try:
        yield opened
    except BaseException:
        opened.close()
        if created:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(str(path) + suffix).unlink(missing_ok=True)
        raise
    opened.close()


@contextmanager
def import_session(project: Project | str | os.PathLike, **options: Any) -> Iterator[ImportSession]:
    """`project_for_import` and an `ImportSession` on it: the frame of every importer.

    Args:
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        **options: `ImportSession` keywords (format, source, group, strict, ...).
    """
    with project_for_import(project) as opened, ImportSession(opened, **options) as session:
        yield session
