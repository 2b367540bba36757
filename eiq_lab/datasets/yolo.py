"""YOLO detection datasets (Ultralytics ``data.yaml`` layouts and Darknet ``obj.names`` folders):
import from a folder or archive in one pass, and export a project in the Ultralytics layout.
"""

from __future__ import annotations

import math
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import yaml

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from ..project import Project
from .export import ExportReport, image_filename, images_with_annotations, prepare_output
from .folders import IMAGE_SUFFIXES
from .session import ImportReport, ImportSession, LabelledObject, import_session, split_group
from .sources import Entry, Source

#: Files that name the classes, by priority: an Ultralytics YAML, then Darknet's names files.
YAML_SUFFIXES = (".yaml", ".yml")
NAMES_SUFFIX = ".names"
CLASSES_TXT = "classes.txt"

#: Class-name files larger than this are not read (a names list is a few kilobytes).
MAX_NAMES_BYTES = 16 * 1024 * 1024

#: Export: project group -> Ultralytics split folder (our test set is what Ultralytics validates on).
SPLIT_FOLDERS = (("train", "train"), ("test", "val"), (None, "unassigned"))

ClassNames = dict[int, str]


def import_yolo(
    source: str | os.PathLike,
    project: Project | str | os.PathLike,
    *,
    group: str | None = None,
    classes: Sequence[str] | str | os.PathLike | None = None,
    strict: bool = False,
    duplicates: str = "skip",
    decode: bool = False,
    progress: Progress | Observer | None = None,
) -> ImportReport:
    """Import a YOLO dataset (folder, tar or zip) in one pass over its files.

    Layouts: Ultralytics (``data.yaml`` with ``names`` as a list or ``{id: name}``;
    ``images/<split>/...`` with ``labels/<split>/...``, or ``<split>/images`` with
    ``<split>/labels``) and Darknet (``obj.names`` or ``classes.txt``; each image's ``.txt`` beside
    it or under ``labels/``). An image and its label file are joined by their path with the
    ``images`` / ``labels`` folder left out. The group is the last folder naming a split
    (``train``... -> train; ``val``, ``valid``, ``test``... -> test; anything else -> none).

    A label line is ``class cx cy w h``, normalized to the image size. A malformed line (field
    count, a number, a class id not in the names) is reported with its file and line number and
    skipped; an empty label file is an image with no objects; an image without a label file is
    imported unlabeled; a label file under ``labels/`` without its image is reported. Image bytes
    are never held back: label files are kept (parsed, small) until the class names are known.

    Args:
        source: dataset folder or archive.
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        group: force every image into ``"train"``, ``"test"`` or none.
        classes: class names in id order, or a names file (``.yaml`` with ``names``, or one name
            per line), used instead of the dataset's own.
        strict: abort at the first bad file or line, keeping nothing.
        duplicates: ``"skip"`` images already in the project, or ``"keep"`` them.
        decode: decode every pixel to check it.
        progress: a `Progress` or observer.

    Returns:
        The `ImportReport`.

    Raises:
        InputError: the source does not exist; no class names are found though labels are.
        ImportAborted: a bad file or line with ``strict``; the project is as it was.
    """
    given = _given_classes(classes)
    reader = Source(source)
    with import_session(
        project,
        format="yolo",
        source=source,
        group=group,
        strict=strict,
        duplicates=duplicates,
        decode=decode,
        progress=progress,
    ) as session:
        reader.on_problem = lambda file, reason: session.problem(file, reason, skipped_file=True)
        dataset = _YoloReader(session, given)
        for entry in reader.entries():
            dataset.take(entry)
        dataset.finish(str(source))
    return session.report


# -- class names -------------------------------------------------------------------------------------


def _given_classes(classes: Sequence[str] | str | os.PathLike | None) -> ClassNames | None:
    if classes is None:
        return None
    if isinstance(classes, (str, os.PathLike)):
        path = Path(classes)
        if not path.is_file():
            raise InputError(f"classes file {path} does not exist")
        names, reason = _names_in_file(path.name, path.read_bytes())
        if names is None:
            raise InputError(f"classes file {path.name}: {reason or 'no names key'}")
        return names
    names = [str(name).strip() for name in classes]
    if not names or not all(names):
        raise InputError(f"classes must be a non-empty list of non-empty names; received {list(classes)!r}")
    return dict(enumerate(names))


def _names_in_file(filename: str, data: bytes) -> tuple[ClassNames | None, str | None]:
    """(names, None), or (None, why not); (None, None) for a YAML without ``names`` (not a data file)."""
    if len(data) > MAX_NAMES_BYTES:
        return None, f"file is over {MAX_NAMES_BYTES:,} bytes, too large for a list of class names"
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None, "not a UTF-8 text file"
    if not filename.lower().endswith(YAML_SUFFIXES):
        lines = text.splitlines()
        while lines and not lines[-1].strip():
            lines.pop()
        names = [line.strip() for line in lines]
        if not names:
            return None, "no class names in it"
        if not all(names):
            return None, f"line {names.index('') + 1} is empty; a names file has one class name per line"
        return dict(enumerate(names)), None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return None, f"not valid YAML ({str(exc).splitlines()[0]})"
    if not isinstance(doc, dict) or "names" not in doc:
        return None, None
    raw = doc["names"]
    if isinstance(raw, list):
        raw = dict(enumerate(raw))
    if (
        not isinstance(raw, dict)
        or not raw
        or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in raw)
        or not all(isinstance(v, (str, int, float)) and str(v).strip() for v in raw.values())
    ):
        return None, "'names' must be a list of class names or a mapping {id: name}"
    names = {k: str(v).strip() for k, v in raw.items()}
    count = doc.get("nc")
    if isinstance(count, int) and count != len(names):
        return names, f"'nc' is {count} but 'names' lists {len(names)} classes; the names were used"
    return names, None


# -- reading -------------------------------------------------------------------------------------------


def _kind(path: str) -> str | None:
    """What a dataset file is to this reader: image, labels, names, or nothing."""
    name = posixpath.basename(path).lower()
    if name.startswith("._"):
        return None  # macOS resource forks
    if name.endswith(IMAGE_SUFFIXES):
        return "image"
    if name == CLASSES_TXT or name.endswith((NAMES_SUFFIX, *YAML_SUFFIXES)):
        return "names"
    if name.endswith(".txt"):
        return "labels"
    return None


def _join_key(path: str, folder: str) -> tuple[str, tuple[str, ...]]:
    """(key, folders): the path without its suffix and its last ``folder`` component, and the folders left."""
    parts = path.split("/")
    folders = parts[:-1]
    lowered = [part.lower() for part in folders]
    if folder in lowered:
        at = len(lowered) - 1 - lowered[::-1].index(folder)
        folders = folders[:at] + folders[at + 1 :]
    stem = posixpath.splitext(parts[-1])[0]
    return "/".join([*folders, stem]), tuple(folders)


@dataclass
class _LabelFile:
    """A parsed label file: good rows (line, class, cx, cy, w, h) and bad lines (line, reason)."""

    path: str
    under_labels: bool
    rows: list[tuple[int, int, float, float, float, float]] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def parse_label_lines(text: str) -> tuple[list[tuple[int, int, float, float, float, float]], list[tuple[int, str]]]:
    """Parse ``class cx cy w h`` lines; blank lines are ignored.

    Returns:
        (rows, errors): rows are ``(line_number, class_id, cx, cy, w, h)``; errors are
        ``(line_number, reason)``.

    Example:
        >>> parse_label_lines("0 0.5 0.5 0.2 0.4\\n1 0.5\\n")
        ([(1, 0, 0.5, 0.5, 0.2, 0.4)], [(2, 'expected 5 fields (class cx cy w h), found 2')])
    """
    rows, errors = [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            errors.append((number, f"expected 5 fields (class cx cy w h), found {len(fields)}"))
            continue
        try:
            class_id = int(fields[0])
        except ValueError:
            errors.append((number, f"class id {fields[0]!r} is not a whole number"))
            continue
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            errors.append((number, f"{' '.join(fields[1:])!r} are not four numbers"))
            continue
        if not all(math.isfinite(v) for v in values):
            errors.append((number, "a coordinate is not a finite number"))
            continue
        rows.append((number, class_id, *values))
    return rows, errors


class _YoloReader:
    """Takes the dataset's files in any order; joins labels to images once the names are known."""

    def __init__(self, session: ImportSession, given: ClassNames | None):
        self.session = session
        self.given = given
        self.images: set[str] = set()
        self.labels: dict[str, list[_LabelFile]] = {}
        self.names: list[tuple[tuple[int, int, str], ClassNames]] = []  # (priority, depth, path), names

    def take(self, entry: Entry) -> None:
        kind = _kind(entry.path)
        if kind == "image":
            key, folders = _join_key(entry.path, "images")
            group = None
            for folder in folders:
                group = split_group(folder) or group
            self.images.add(key)
            self.session.image(key, entry.read(), name=entry.path, group=group)
        elif kind == "labels":
            key, _ = _join_key(entry.path, "labels")
            under = "labels" in (part.lower() for part in entry.parts[:-1])
            label_file = _LabelFile(entry.path, under)
            try:
                label_file.rows, label_file.errors = parse_label_lines(entry.read().decode("utf-8-sig"))
            except UnicodeDecodeError:
                label_file.errors = [(0, "not a UTF-8 text file")]
            self.labels.setdefault(key, []).append(label_file)
        elif kind == "names" and self.given is None:
            self._names(entry)

    def _names(self, entry: Entry) -> None:
        names, reason = _names_in_file(entry.name, entry.read())
        if reason:
            severity = "warning" if names is not None else "error"
            self.session.problem(entry.path, reason, severity=severity)
        if names is not None:
            lower = entry.name.lower()
            priority = 0 if lower.endswith(YAML_SUFFIXES) else 1 if lower.endswith(NAMES_SUFFIX) else 2
            self.names.append(((priority, len(entry.parts), entry.path), names))

    def _class_names(self) -> ClassNames | None:
        if self.given is not None:
            return self.given
        if not self.names:
            return None
        self.names.sort(key=lambda item: item[0])
        (_, _, chosen), names = self.names[0]
        for (_, _, other), other_names in self.names[1:]:
            if other_names != names:
                self.session.problem(other, f"lists other class names than {chosen}, which was used", "warning")
        return names

    def finish(self, source: str) -> None:
        names = self._class_names()
        if names is None and any(f.rows for files in self.labels.values() for f in files):
            raise InputError(
                f"no class names in {source}: expected a data.yaml with 'names', an obj.names or a classes.txt; "
                "or pass classes=[...]"
            )
        for key, files in self.labels.items():
            for label_file in files:
                self._attach(key, label_file, names or {})

    def _attach(self, key: str, label_file: _LabelFile, names: ClassNames) -> None:
        if key not in self.images and not label_file.under_labels and not label_file.rows:
            return  # a stray text file (README.txt, Darknet's train.txt list), not labels
        objects = []
        if key in self.images:  # a label file without its image is reported once, by the session
            known = f"0..{len(names) - 1}" if list(names) == list(range(len(names))) else sorted(names)
            lines = [(number, reason, None) for number, reason in label_file.errors]
            lines += [(row[0], None, row) for row in label_file.rows]
            for number, reason, row in sorted(lines, key=lambda line: line[0]):
                if row is not None and row[1] not in names:
                    reason = f"class id {row[1]} is not in the class names ({known})"
                if reason is not None:
                    where = f"line {number}: " if number else ""
                    self.session.problem(label_file.path, f"{where}{reason}: skipped")
                    continue
                _, class_id, cx, cy, w, h = row
                objects.append(LabelledObject(names[class_id], box=(cx - w / 2, cy - h / 2, w, h), normalized=True))
        self.session.objects(key, objects, name=label_file.path)


# -- export ----------------------------------------------------------------------------------------


def _number(value: float) -> str:
    text = f"{value:.8f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def export_yolo(
    project: Project, out_dir: str | os.PathLike, *, progress: Progress | Observer | None = None
) -> ExportReport:
    """Write a project as an Ultralytics YOLO dataset.

    Layout: ``OUT/data.yaml``, ``OUT/images/<split>/<file>`` and ``OUT/labels/<split>/<stem>.txt``
    (one label file per image, empty when it has no boxes). Splits: the train group -> ``train``,
    the test group -> ``val`` (what Ultralytics validates on), images in no group ->
    ``unassigned`` (kept apart, not named in data.yaml, so nothing unassigned is trained on; an
    import of the export gives them back no group). ``data.yaml`` names ``train`` and ``val`` when
    they hold images, and ``names`` in the project's label order (class id = position). It has no
    ``path`` key, so Ultralytics resolves the splits against the YAML's own folder.

    Full-image labels have no YOLO form and are left out; ``report.notes`` says how many, and
    records the other decisions above.

    Args:
        project: an open `Project`.
        out_dir: a new or empty folder.
        progress: a `Progress` or observer (one unit per image).

    Returns:
        The `ExportReport`.

    Raises:
        InputError: ``out_dir`` is a file or a non-empty folder.
    """
    progress = as_progress(progress)
    out = prepare_output(out_dir)
    labels = project.labels()
    class_of = {label.id: position for position, label in enumerate(labels)}
    report = ExportReport("yolo", str(project.path), str(out), labels=[str(label) for label in labels])
    progress.start("export", total=project.count_images())
    counts: dict[str, int] = {}
    left_out = flagged = 0
    for group, split in SPLIT_FOLDERS:
        images_dir, labels_dir = out / "images" / split, out / "labels" / split
        for image, anns in images_with_annotations(project, group=group):
            if split not in counts:
                images_dir.mkdir(parents=True)
                labels_dir.mkdir(parents=True)
                counts[split] = 0
            name = image_filename(image)
            (images_dir / name).write_bytes(image.data())
            lines = []
            for ann in anns:
                if ann.box is None:
                    left_out += 1
                    continue
                x, y, w, h = ann.box
                centre = ((x + w / 2) / image.width, (y + h / 2) / image.height)
                size = (w / image.width, h / image.height)
                lines.append(" ".join([str(class_of[ann.label.id]), *map(_number, (*centre, *size))]) + "\n")
                flagged += ann.difficult or ann.truncated
            (labels_dir / f"{PurePosixPath(name).stem}.txt").write_text("".join(lines), encoding="utf-8")
            counts[split] += 1
            report.images += 1
            report.boxes += len(lines)
            progress.advance()
    data = {split: f"images/{split}" for split in ("train", "val") if split in counts}
    data.update(nc=len(labels), names=[str(label) for label in labels])
    with open(out / "data.yaml", "w", encoding="utf-8") as handle:
        handle.write(f"# {project.path.name}, exported by eiq-lab (Ultralytics YOLO layout)\n")
        yaml.safe_dump(data, handle, sort_keys=False, allow_unicode=True)
    report.notes += _export_notes(counts, left_out, flagged)
    for note in report.notes:
        progress.message(note)
    progress.end(report.summary().splitlines()[0])
    return report


def _export_notes(counts: dict[str, int], left_out: int, flagged: int) -> list[str]:
    notes = []
    if counts.get("val"):
        notes.append(f"{counts['val']} test-group image(s) written as the val split (images/val)")
    if counts.get("unassigned"):
        notes.append(
            f"{counts['unassigned']} image(s) in no group written to images/unassigned, which data.yaml does not "
            "name; assign groups (eiq project split) to train or validate on them"
        )
    for split, group in (("train", "train"), ("val", "test")):
        if counts and not counts.get(split):
            notes.append(f"no {group}-group images: data.yaml has no '{split}' entry")
    if left_out:
        notes.append(f"{left_out} full-image label(s) left out: YOLO has no full-image labels")
    if flagged:
        notes.append(f"{flagged} difficult or truncated box(es) written as ordinary boxes")
    return notes
