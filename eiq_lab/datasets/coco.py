"""COCO detection datasets: import an instances JSON with its images, and export a project as one.

Boxes are COCO's ``[x, y, width, height]`` in pixels; full-image labels travel in a non-standard
``"labels"`` list of names on each image record (COCO has none of its own).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import posixpath
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from ..project import Project
from .export import ExportReport, image_filename, images_with_annotations, prepare_output
from .session import ImportReport, ImportSession, LabelledObject, import_session, split_group
from .sources import Source, max_member_bytes

#: Instances files larger than this are refused before parsing (json.load holds all of it in memory).
MAX_JSON_BYTES = 2 * 1024**3

REQUIRED_KEYS = ("images", "annotations", "categories")

#: Export layout: OUT/images/<file> and OUT/annotations/instances_<name>.json, one file per group.
IMAGES_FOLDER = "images"
ANNOTATIONS_FOLDER = "annotations"
GROUP_FILES = (("train", "train"), ("test", "test"), (None, "ungrouped"))

_DRIVE = re.compile(r"^[A-Za-z]:")


def read_instances(path: str | os.PathLike) -> dict[str, Any]:
    """Load a COCO instances file and check its top-level structure.

    Raises:
        InputError: missing, too large, not JSON, or without the ``images``, ``annotations`` and
            ``categories`` lists (the message names the key).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"COCO annotations file {path} does not exist (give the instances .json file)")
    size = path.stat().st_size
    if size > MAX_JSON_BYTES:
        raise InputError(
            f"{path.name} is {size:,} bytes, over the {MAX_JSON_BYTES:,}-byte limit for a COCO annotations "
            "file; split it into several files and import each"
        )
    try:
        with open(path, encoding="utf-8-sig") as handle:
            data = json.load(handle)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path.name} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}") from None
    except UnicodeDecodeError:
        raise InputError(f"{path.name} is not a UTF-8 text file; expected a COCO instances .json") from None
    except RecursionError:
        raise InputError(f"{path.name} is nested too deeply to be a COCO instances file") from None
    if not isinstance(data, dict):
        raise InputError(
            f"{path.name}: expected a JSON object with 'images', 'annotations' and 'categories'; "
            f"received a JSON {type(data).__name__}"
        )
    for key in REQUIRED_KEYS:
        if key not in data:
            raise InputError(
                f"{path.name}: missing key {key!r} (a COCO instances file has 'images', 'annotations' and 'categories')"
            )
        if not isinstance(data[key], list):
            raise InputError(f"{path.name}: {key!r} must be a list; received a JSON {type(data[key]).__name__}")
    return data


def import_coco(
    annotations_json: str | os.PathLike,
    project: Project | str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    group: str | None = None,
    crowd: bool = False,
    strict: bool = False,
    duplicates: str = "skip",
    decode: bool = False,
    progress: Progress | Observer | None = None,
) -> ImportReport:
    """Import a COCO instances file and its images.

    Each image record's ``file_name`` is read from ``images`` (a folder, or a tar/zip whose members
    are the file names, optionally under one top folder). Boxes are ``bbox`` = [x, y, width, height]
    in pixels. The group comes from the file's name (``instances_train2017.json`` -> train,
    ``..._val...`` / ``..._test...`` -> test, otherwise none) unless ``group`` forces one.
    A ``"labels": [name, ...]`` list on an image record (written by `export_coco`) gives
    full-image labels.

    Problems with one record (a ``file_name`` that is absolute or contains ``..``, a missing or bad
    image file, an annotation naming an unknown image or category, a malformed ``bbox``) are
    reported and that record skipped, or abort the import with ``strict``.

    Args:
        annotations_json: the instances ``.json`` file.
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        images: the image folder or archive. Default: the JSON's folder, or, when that folder is
            named ``annotations`` and has an ``images`` folder beside it (the layout `export_coco`
            writes), that one.
        group: force every image into ``"train"``, ``"test"`` or none.
        crowd: include ``iscrowd: 1`` boxes (stored flagged difficult, so evaluation can ignore
            them as COCO's does); left out by default and counted in ``report.excluded["crowd"]``.
        strict: abort at the first bad record, keeping nothing.
        duplicates: ``"skip"`` images already in the project, or ``"keep"`` them.
        decode: decode every pixel to check it.
        progress: a `Progress` or observer.

    Returns:
        The `ImportReport`.

    Raises:
        InputError: the JSON is missing, malformed or lacks a required key; the image location
            does not exist.
        ImportAborted: a bad record with ``strict``; the project is as it was.
    """
    path = Path(annotations_json)
    data = read_instances(path)
    location = Path(images) if images is not None else _default_images(path)
    if not location.exists():
        raise InputError(f"image folder {location} does not exist; give the folder (or archive) with images=")
    source = Source(location)  # refuses a location that is neither a folder nor an archive
    with import_session(
        project,
        format="coco",
        source=path,
        group=group,
        difficult=crowd,
        strict=strict,
        duplicates=duplicates,
        decode=decode,
        progress=progress,
    ) as session:
        index = _Index(session, path.name, split_group_of_file(path))
        index.read(data)
        del data
        session.expect(len(index.wanted))
        if source.kind == "folder":
            index.read_folder(source.path)
        else:
            index.read_archive(source)
        index.report_missing(str(location))
    report = session.report
    if "difficult" in report.excluded:  # COCO's word for it, and the CLI's flag (--crowd)
        report.excluded["crowd"] = report.excluded.pop("difficult")
    return report


def split_group_of_file(path: str | os.PathLike) -> str | None:
    """The group an instances file's name gives: the last part naming a split, else ``None``.

    Examples:
        >>> split_group_of_file("instances_val2017.json"), split_group_of_file("instances_ungrouped.json")
        ('test', None)
    """
    group = None
    for part in re.split(r"[_\-. ]+", Path(path).stem):
        group = split_group(part) or group
    return group


def _default_images(annotations_json: Path) -> Path:
    folder = annotations_json.resolve().parent
    beside = folder.parent / IMAGES_FOLDER
    if folder.name.lower() == ANNOTATIONS_FOLDER and beside.is_dir():
        return beside
    return folder


def _unsafe_file_name(name: str) -> str | None:
    """Why an image record's file_name may not be read, or ``None`` when it stays in the folder."""
    if not name or "\x00" in name:
        return "file_name is empty or holds a NUL character"
    posix = name.replace("\\", "/")
    if posix.startswith("/") or _DRIVE.match(posix):
        return "file_name is an absolute path; it must be relative to the image folder"
    if ".." in posix.split("/"):
        return "file_name contains '..' and would escape the image folder"
    return None


def _is_id(value: Any) -> bool:
    return (isinstance(value, int) and not isinstance(value, bool)) or (isinstance(value, str) and value != "")


def _finite(values: Any, count: int) -> bool:
    return (
        isinstance(values, (list, tuple))
        and len(values) == count
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values)
    )


@dataclass
class _Wanted:
    """One image file the records ask for, with what goes on it."""

    size: tuple[int, int] | None
    labels: list[str] = field(default_factory=list)
    objects: list[tuple[str, LabelledObject]] = field(default_factory=list)


class _Index:
    """The instances file's records, checked and joined by image file name."""

    def __init__(self, session: ImportSession, file: str, group: str | None):
        self.session = session
        self.file = file
        self.group = group
        self.wanted: dict[str, _Wanted] = {}  # normalized file_name -> what goes on it
        self.by_id: dict[Any, str | None] = {}  # image id -> file name (None: the record was refused)
        self.found: set[str] = set()

    def problem(self, where: str, reason: str, *, skipped_file: bool = False) -> None:
        self.session.problem(f"{self.file}: {where}", reason, skipped_file=skipped_file)

    # -- records ---------------------------------------------------------------------------------

    def read(self, data: dict[str, Any]) -> None:
        categories = self._categories(data["categories"])
        for position, record in enumerate(data["images"]):
            self._image(position, record)
        for position, record in enumerate(data["annotations"]):
            self._annotation(position, record, categories)

    def _categories(self, records: list[Any]) -> dict[Any, str]:
        names: dict[Any, str] = {}
        for position, record in enumerate(records):
            ident = record.get("id") if isinstance(record, dict) else None
            name = record.get("name") if isinstance(record, dict) else None
            if not _is_id(ident) or not isinstance(name, str) or not name.strip():
                raise InputError(
                    f"{self.file}: categories[{position}] needs an 'id' and a non-empty 'name'; "
                    f"received {json.dumps(record)[:120]}"
                )
            if ident in names:
                raise InputError(f"{self.file}: category id {ident!r} appears twice in 'categories'")
            names[ident] = name.strip()
        return names

    def _image(self, position: int, record: Any) -> None:
        ident = record.get("id") if isinstance(record, dict) else None
        name = record.get("file_name") if isinstance(record, dict) else None
        if not _is_id(ident) or not isinstance(name, str):
            self.problem(f"images[{position}]", "needs an 'id' and a 'file_name': skipped", skipped_file=True)
            return
        if ident in self.by_id:
            self.problem(f"image id {ident!r}", "appears twice in 'images': the second record is skipped")
            return
        unsafe = _unsafe_file_name(name)
        if unsafe:
            self.by_id[ident] = None
            self.session.problem(name, f"{unsafe}: skipped (image id {ident!r} in {self.file})", skipped_file=True)
            return
        key = posixpath.normpath(name.replace("\\", "/"))
        self.by_id[ident] = key
        width, height = record.get("width"), record.get("height")
        size = (width, height) if _finite((width, height), 2) else None
        wanted = self.wanted.get(key)
        if wanted is None:
            wanted = self.wanted[key] = _Wanted(size)
        labels = record.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(v, str) and v.strip() for v in labels):
            self.problem(f"image id {ident!r}", "'labels' must be a list of label names: its labels are skipped")
        else:
            wanted.labels += [v.strip() for v in labels]

    def _annotation(self, position: int, record: Any, categories: dict[Any, str]) -> None:
        if not isinstance(record, dict):
            self.problem(f"annotations[{position}]", "is not a JSON object: skipped")
            return
        ident = record.get("id", f"#{position}")
        where = f"annotation {ident}"
        image_id = record.get("image_id")
        if not _is_id(image_id) or image_id not in self.by_id:
            self.problem(where, f"image_id {image_id!r} is not in 'images': skipped")
            return
        key = self.by_id[image_id]
        if key is None:
            return  # its image record was refused, and reported
        category = record.get("category_id")
        if not _is_id(category) or category not in categories:
            self.problem(where, f"category_id {category!r} is not in 'categories': skipped")
            return
        bbox = record.get("bbox")
        if not _finite(bbox, 4):
            self.problem(where, f"bbox must be [x, y, width, height] in pixels; received {json.dumps(bbox)}: skipped")
            return
        crowd = bool(record.get("iscrowd", 0))
        obj = LabelledObject(categories[category], box=tuple(float(v) for v in bbox), difficult=crowd)
        self.wanted[key].objects.append((f"{key} ({where} in {self.file})", obj))

    # -- image files ------------------------------------------------------------------------------

    def read_folder(self, root: Path) -> None:
        limit = max_member_bytes()
        for key in list(self.wanted):
            path = root / key
            try:
                if not path.is_file():
                    continue  # reported as missing at the end
                if path.stat().st_size > limit:
                    self.session.problem(key, f"file is over the {limit:,}-byte limit: skipped", skipped_file=True)
                    self.found.add(key)
                    continue
                data = path.read_bytes()
            except OSError as exc:
                self.session.problem(key, f"cannot read: {exc.strerror}: skipped", skipped_file=True)
                self.found.add(key)
                continue
            self._feed(key, data)

    def read_archive(self, source: Source) -> None:
        source.on_problem = lambda file, reason: self.session.problem(file, reason, skipped_file=True)
        for entry in source.entries():
            key = self._match(entry.path)
            if key is not None and key not in self.found:
                self._feed(key, entry.read())

    def _match(self, path: str) -> str | None:
        """The wanted file name an archive member is: itself, or itself below one top folder."""
        if path in self.wanted:
            return path
        _, _, below = path.partition("/")
        return below if below in self.wanted else None

    def _feed(self, key: str, data: bytes) -> None:
        self.found.add(key)
        wanted = self.wanted[key]
        for name, obj in wanted.objects:  # objects first: the image row is written with its state
            self.session.objects(key, [obj], name=name)
        if wanted.labels:
            self.session.objects(key, [LabelledObject(label) for label in wanted.labels], name=key)
        self.session.image(key, data, name=key, group=self.group)
        size = self.session.image_size(key)
        if size is not None and wanted.size is not None:
            width, height = size
            if (width, height) != wanted.size:
                self.session.problem(
                    key,
                    f"the record says {wanted.size[0]}x{wanted.size[1]} but the file is {width}x{height}; "
                    "boxes were read as pixels of the file",
                    severity="warning",
                )

    def report_missing(self, location: str) -> None:
        for key, wanted in self.wanted.items():
            if key not in self.found:
                boxes = f" ({len(wanted.objects)} annotation(s) with it)" if wanted.objects else ""
                self.session.problem(key, f"image file not found in {location}: skipped{boxes}", skipped_file=True)


# -- export ----------------------------------------------------------------------------------------


def export_coco(
    project: Project, out_dir: str | os.PathLike, *, progress: Progress | Observer | None = None
) -> ExportReport:
    """Write a project as a COCO detection dataset.

    Layout: ``OUT/images/<file>`` and one instances file per group present:
    ``OUT/annotations/instances_train.json``, ``instances_test.json`` and ``instances_ungrouped.json``
    (images in no group). Category ids are 1, 2, ... in the project's label order (every label is
    listed in every file); image and annotation ids are the project's. Boxes are written with
    ``iscrowd: 0`` and an empty ``segmentation``; full-image labels go into the image record's
    non-standard ``"labels"`` list, which `import_coco` reads back. Files are written as they
    are read, so memory stays flat for large projects.

    Args:
        project: an open `Project`.
        out_dir: a new or empty folder.
        progress: a `Progress` or observer (one unit per image).

    Returns:
        The `ExportReport`; ``notes`` name the files written.

    Raises:
        InputError: ``out_dir`` is a file or a non-empty folder.
    """
    progress = as_progress(progress)
    out = prepare_output(out_dir)
    (out / IMAGES_FOLDER).mkdir()
    (out / ANNOTATIONS_FOLDER).mkdir()
    labels = project.labels()
    category_of = {label.id: position + 1 for position, label in enumerate(labels)}
    report = ExportReport("coco", str(project.path), str(out), labels=[str(label) for label in labels])
    header = {
        "info": {
            "description": f"{project.path.name}, exported by eiq-lab",
            "version": "1.0",
            "year": datetime.date.today().year,
            "date_created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        },
        "licenses": [],
        "categories": [{"id": category_of[lab.id], "name": str(lab), "supercategory": ""} for lab in labels],
    }
    progress.start("export", total=project.count_images())
    flagged = 0
    for group, suffix in GROUP_FILES:
        target = out / ANNOTATIONS_FOLDER / f"instances_{suffix}.json"
        written, flagged_here = _write_group(
            project, group, target, out / IMAGES_FOLDER, header, category_of, report, progress
        )
        flagged += flagged_here
        if written:
            report.notes.append(f"{written} {group or 'ungrouped'} image(s): {ANNOTATIONS_FOLDER}/{target.name}")
            progress.message(report.notes[-1])
        else:
            target.unlink()
    if flagged:
        report.notes.append(f"{flagged} difficult or truncated box(es) written as ordinary boxes (iscrowd 0)")
    progress.end(report.summary().splitlines()[0])
    return report


def _write_group(
    project: Project,
    group: str | None,
    target: Path,
    images_dir: Path,
    header: dict[str, Any],
    category_of: dict[int, int],
    report: ExportReport,
    progress: Progress,
) -> tuple[int, int]:
    """Stream one group's instances file; annotations wait in a temporary file. Returns
    (images written, flagged boxes)."""
    written = flagged = 0
    with (
        open(target, "w", encoding="utf-8") as handle,
        tempfile.TemporaryFile("w+", encoding="utf-8", dir=target.parent) as later,
    ):
        handle.write("{\n" + ",\n".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in header.items()))
        handle.write(',\n"images": [')
        boxes = 0
        for image, anns in images_with_annotations(project, group=group):
            name = image_filename(image)
            (images_dir / name).write_bytes(image.data())
            record: dict[str, Any] = {"id": image.id, "file_name": name, "width": image.width, "height": image.height}
            full = [str(a.label) for a in anns if a.box is None]
            if full:
                record["labels"] = full
            handle.write(("\n" if not written else ",\n") + json.dumps(record))
            written += 1
            report.images += 1
            report.full_image += len(full)
            for ann in anns:
                if ann.box is None:
                    continue
                x, y, w, h = ann.box
                row = {
                    "id": ann.id,
                    "image_id": image.id,
                    "category_id": category_of[ann.label.id],
                    "bbox": [x, y, w, h],
                    "area": w * h,
                    "iscrowd": 0,
                    "segmentation": [],
                }
                later.write(("\n" if not boxes else ",\n") + json.dumps(row))
                boxes += 1
                flagged += ann.difficult or ann.truncated
            progress.advance()
        report.boxes += boxes
        handle.write('\n],\n"annotations": [')
        later.seek(0)
        shutil.copyfileobj(later, handle)
        handle.write("\n]\n}\n")
    return written, flagged
