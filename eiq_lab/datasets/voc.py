"""Pascal VOC datasets: import (the VOCdevkit layout and the guide's Annotations + JPEGImages layout,
from a folder, tar or zip, in one pass) and export (Annotations, JPEGImages, ImageSets/Main).
"""

from __future__ import annotations

import io
import math
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import defusedxml
import defusedxml.ElementTree as SafeET

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from ..project import Annotation, Project, ProjectImage, normalize_group
from .export import ExportReport, image_filename, images_with_annotations, prepare_output
from .parallel import feed, worth_parallel
from .session import ImportReport, ImportSession, LabelledObject, corners, import_session
from .sources import Entry, Source

#: Files directly inside a ``JPEGImages`` folder with these suffixes are the dataset's images.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")

#: ImageSets/Main lists and the group each gives (``trainval`` only counts when a root has neither
#: ``train.txt`` nor ``val.txt``; see `_VocReader.finish`).
IMAGE_SETS = {"train": "train", "val": "test", "test": "test", "trainval": "train"}

_ATTACK = "refused XML with a DOCTYPE or entity declarations (possible XML attack): skipped"


@dataclass
class VocAnnotation:
    """What one annotation file says: the image file it names (if any) and its objects."""

    filename: str | None
    objects: list[LabelledObject] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # per-object reasons; those objects are left out


def _parse_xml(data: bytes) -> ET.Element:
    """Parse without a DTD. In an ASCII-compatible encoding a DTD must spell ``<!DOCTYPE`` literally,
    so its absence proves there are no entity declarations to expand or fetch, and the C parser is
    safe (and ten times faster than defusedxml's Python handlers); anything else goes through defusedxml."""
    if b"\x00" not in data[:4] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
            raise defusedxml.DTDForbidden(None, None, None)
        return ET.fromstring(data)
    return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)


def parse_annotation(data: bytes) -> VocAnnotation:
    """Read one VOC annotation file safely.

    Only direct ``object`` children of the root are objects (``part`` elements inside an object are
    not). An object with only a ``name`` is a full-image label; with a ``bndbox`` it is a box
    (x = xmin, y = ymin, width = xmax - xmin, height = ymax - ymin, decimals kept).

    Args:
        data: the XML file's bytes.

    Returns:
        A `VocAnnotation`; objects that cannot be read are left out and described in ``problems``.

    Raises:
        InputError: the file is refused as a whole (DTD or entities, malformed XML, not ``<annotation>``).

    Example:
        >>> ann = parse_annotation(b"<annotation><object><name>flower</name></object></annotation>")
        >>> ann.objects
        [LabelledObject(label='flower', box=None, difficult=False, truncated=False, normalized=False)]
    """
    try:
        root = _parse_xml(data)
    except defusedxml.DefusedXmlException:
        raise InputError(_ATTACK) from None
    except ET.ParseError as exc:
        raise InputError(f"malformed XML: {exc}: skipped") from None
    tag = _local(root.tag)
    if tag != "annotation":
        raise InputError(f"not a VOC annotation: the root element is <{tag}>, expected <annotation>: skipped")
    filename = _text(root.find("filename"))
    result = VocAnnotation(filename or None)
    for number, element in enumerate(root.findall("object"), 1):
        name = _text(element.find("name"))
        if not name:
            result.problems.append(f"object {number} has no <name>: object skipped")
            continue
        flags = {kind: _flag(element.find(kind)) for kind in ("difficult", "truncated")}
        bndbox = element.find("bndbox")
        if bndbox is None:
            result.objects.append(LabelledObject(name, None, **flags))
            continue
        values = []
        for corner in ("xmin", "ymin", "xmax", "ymax"):
            text = _text(bndbox.find(corner))
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                shown = "missing" if not text else f"not a number ({text[:40]!r})"
                result.problems.append(f"object {number} ({name!r}): bndbox {corner} is {shown}: object skipped")
                break
            values.append(value)
        else:
            result.objects.append(LabelledObject(name, corners(*values), **flags))
    return result


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else str(tag)


def _text(element: ET.Element | None) -> str:
    return "" if element is None or element.text is None else element.text.strip()


def _flag(element: ET.Element | None) -> bool:
    text = _text(element).lower()
    try:
        return float(text) != 0
    except ValueError:
        return text in ("true", "yes")


class _VocReader:
    """One pass over a dataset's entries, feeding a session.

    Keys are (dataset root, file stem): the root is the folder holding Annotations/JPEGImages/ImageSets,
    so several VOC years in one archive (VOC2007 and VOC2012 both have 000001) stay apart.
    """

    def __init__(self, session: ImportSession, *, read_groups: bool):
        self.session = session
        self.read_groups = read_groups
        self.images: set[tuple[str, str]] = set()
        self.annotated: set[tuple[str, str]] = set()
        self.deferred: list[tuple[tuple[str, str], tuple[str, str], list[LabelledObject], str]] = []
        self.trainval: dict[str, list[str]] = {}
        self.split_roots: set[str] = set()
        self.listed: set[tuple[str, str]] = set()  # ids a train/val/test list named (trainval never overrides)
        self.roots: dict[str, str] = {}
        self.found = 0

    def take(self, entry: Entry) -> None:
        parts = entry.parts
        if len(parts) < 2 or parts[-1].startswith("._"):  # macOS resource forks beside the real files
            return
        stem, dot, suffix = parts[-1].rpartition(".")
        if not dot or not stem:
            stem, suffix = parts[-1], ""
        suffix, folder = f".{suffix.lower()}" if suffix else "", parts[-2].lower()
        if folder == "jpegimages" and suffix in IMAGE_SUFFIXES:
            self._image(entry, (self._root(parts[:-2]), stem))
        elif folder == "annotations" and suffix == ".xml":
            self._annotation(entry, (self._root(parts[:-2]), stem))
        elif self.read_groups and suffix == ".txt" and stem.lower() in IMAGE_SETS and _in_image_sets_main(parts):
            self._image_set(entry, self._root(parts[:-3]), stem.lower())

    def _root(self, folders: tuple[str, ...]) -> str:
        """One string object per dataset root, however many keys hold it."""
        path = "/".join(folders)
        return self.roots.setdefault(path, path)

    def _image(self, entry: Entry, key: tuple[str, str]) -> None:
        self.found += 1
        self.images.add(key)
        self.session.image(key, None if self.session.listing else entry.read(), name=entry.path)

    def _annotation(self, entry: Entry, key: tuple[str, str]) -> None:
        self.found += 1
        try:
            parsed = parse_annotation(entry.read())
        except InputError as exc:
            self.session.problem(entry.path, str(exc), skipped_file=True)
            return
        for reason in parsed.problems:
            self.session.problem(entry.path, reason)
        self.annotated.add(key)
        named = PurePosixPath(parsed.filename.replace("\\", "/")).stem if parsed.filename else key[1]
        if named != key[1] and key not in self.images:
            # The XML's own stem wins (the guide: shark.xml <-> shark.jpg); only when no image has that
            # stem does <filename> name the image, which is known once every entry has been seen.
            self.deferred.append((key, (key[0], named), parsed.objects, entry.path))
        else:
            self.session.objects(key, parsed.objects, name=entry.path)

    def _image_set(self, entry: Entry, root: str, which: str) -> None:
        ids = [line.split()[0] for line in entry.read().decode("utf-8", "replace").splitlines() if line.strip()]
        if which == "trainval":
            self.trainval.setdefault(root, []).extend(ids)
            return
        if which in ("train", "val"):
            self.split_roots.add(root)
        for image_id in ids:
            self.listed.add((root, image_id))
            self.session.group((root, image_id), IMAGE_SETS[which])

    def finish(self, source: str) -> None:
        for key, named, objects, name in self.deferred:
            target = named if key not in self.images and named in self.images and named not in self.annotated else key
            self.session.objects(target, objects, name=name)
        for root, ids in self.trainval.items():
            if root not in self.split_roots:
                for image_id in ids:
                    if (root, image_id) not in self.listed:
                        self.session.group((root, image_id), "train")
        if not self.found:
            raise InputError(
                f"no VOC files found in {source}: a VOC dataset holds Annotations/*.xml and JPEGImages/*.jpg "
                "(optionally inside VOCdevkit/VOC<year>/)"
            )


def _in_image_sets_main(parts: tuple[str, ...]) -> bool:
    """ImageSets/Main lists detection ids; ImageSets/Layout, /Segmentation and /Action are other tasks' lists."""
    return len(parts) >= 3 and parts[-2].lower() == "main" and parts[-3].lower() == "imagesets"


def _read(session: ImportSession, path: str | os.PathLike, read_groups: bool) -> None:
    """Feed a VOC dataset to a session (or, in a reader process, to a `RecordingSink`)."""
    source = Source(path, on_problem=lambda file, reason: session.problem(file, reason, skipped_file=True))
    reader = _VocReader(session, read_groups=read_groups)
    for entry in source.entries():
        reader.take(entry)
    reader.finish(str(source.path))


def import_voc(
    source: str | os.PathLike,
    project: Project | str | os.PathLike,
    *,
    group: str | None = None,
    difficult: bool = False,
    truncated: bool = False,
    strict: bool = False,
    duplicates: str = "skip",
    decode: bool = False,
    progress: Progress | Observer | None = None,
    parallel: bool | None = None,
) -> ImportReport:
    """Import a Pascal VOC dataset (folder, tar of any compression, or zip) into a project.

    Both the VOCdevkit layout (``VOCdevkit/VOC2008/{Annotations,JPEGImages,ImageSets/Main}``) and the
    guide's custom layout (``top/Annotations/*.xml`` + ``top/JPEGImages/*.jpg``) are read in one pass,
    whatever order the archive stores them in. Without ``group``, ImageSets/Main gives the groups:
    ``train.txt`` -> train, ``val.txt`` and ``test.txt`` -> test, ``trainval.txt`` -> train when there is
    no ``train.txt``/``val.txt``; other images stay in no group.

    Args:
        source: the dataset folder or archive.
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        group: force every image into ``"train"`` or ``"test"`` (the guide's ``-group``).
        difficult: include objects flagged difficult.
        truncated: include objects flagged truncated.
        strict: abort at the first problem, keeping nothing.
        duplicates: ``"skip"`` images already in the project, or ``"keep"`` them.
        decode: decode every pixel to check the images (slower).
        progress: a `Progress` or observer.
        parallel: read the dataset in a second process while this one writes (``None``: when the
            dataset is at least 32 MB).

    Returns:
        The `ImportReport` (problems per file; difficult/truncated objects left out in ``excluded``).

    Raises:
        InputError: the source is missing, not a folder/tar/zip, or holds no VOC files.
        ImportAborted: ``strict`` and a problem was found (the project is as it was).

    Example:
        >>> report = import_voc("VOCtrainval_14-Jul-2008.tar", "voc.eiqp", group="train")  # doctest: +SKIP
        >>> print(report.summary())  # doctest: +SKIP
    """
    forced = normalize_group(group)
    Source(source)  # a missing or unreadable dataset is refused before any project is made
    with import_session(
        project,
        format="voc",
        source=source,
        group=forced,
        difficult=difficult,
        truncated=truncated,
        strict=strict,
        duplicates=duplicates,
        decode=decode,
        progress=progress,
    ) as session:
        feed(session, _read, source, forced is None, parallel=worth_parallel(source, parallel))
    return session.report


def list_voc(
    source: str | os.PathLike,
    *,
    difficult: bool = False,
    truncated: bool = False,
    progress: Progress | Observer | None = None,
) -> ImportReport:
    """Summarise a VOC dataset's labels and groups without importing it (the guide's ``-list``).

    Image bytes are not read, so image problems are not found; annotation problems are.

    Returns:
        An `ImportReport` with ``listed_only`` set.
    """
    Source(source)
    with ImportSession(
        None, format="voc", source=source, difficult=difficult, truncated=truncated, progress=progress
    ) as session:
        _read(session, source, True)
    return session.report


# -- export ------------------------------------------------------------------------------------


def _number(value: float) -> str:
    """A coordinate as VOC text: integers without a point, decimals in their shortest form.

    Rounding to 9 decimals drops float noise from xmin + width, so an imported xmax comes back as written.
    """
    value = round(float(value), 9)
    return str(int(value)) if value.is_integer() else repr(value)


def _depth(data: bytes) -> int:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return len(image.getbands())
    except Exception:  # the bytes were checked on import; a header Pillow cannot read still exports
        return 3


def annotation_xml(image: ProjectImage, filename: str, annotations: list[Annotation], depth: int) -> bytes:
    """The VOC annotation file for one image (boxes as objects with ``bndbox``, full-image labels as
    objects with only a ``name``)."""
    root = ET.Element("annotation")
    ET.SubElement(root, "folder").text = "JPEGImages"
    ET.SubElement(root, "filename").text = filename
    size = ET.SubElement(root, "size")
    for tag, value in (("width", image.width), ("height", image.height), ("depth", depth)):
        ET.SubElement(size, tag).text = str(value)
    ET.SubElement(root, "segmented").text = "0"
    for ann in annotations:
        obj = ET.SubElement(root, "object")
        ET.SubElement(obj, "name").text = str(ann.label)
        if ann.box is None:
            for kind in ("truncated", "difficult"):
                if getattr(ann, kind):
                    ET.SubElement(obj, kind).text = "1"
            continue
        ET.SubElement(obj, "truncated").text = str(int(ann.truncated))
        ET.SubElement(obj, "difficult").text = str(int(ann.difficult))
        x, y, w, h = ann.box
        bndbox = ET.SubElement(obj, "bndbox")
        for tag, value in (("xmin", x), ("ymin", y), ("xmax", x + w), ("ymax", y + h)):
            ET.SubElement(bndbox, tag).text = _number(value)
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=False) + b"\n"


def export_voc(
    project: Project | str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    progress: Progress | Observer | None = None,
) -> ExportReport:
    """Write a project as a Pascal VOC dataset.

    ``OUT/Annotations/<name>.xml``, ``OUT/JPEGImages/<name>.jpg`` (or ``.png``: bytes exactly as
    stored) and ``OUT/ImageSets/Main/{train,test}.txt`` for the groups; images in no group are in
    neither list. Importing the folder again gives the same labels, boxes, groups and bytes.

    Args:
        project: an open `Project` or a project path.
        out_dir: a new or empty folder.
        progress: a `Progress` or observer (stage ``"export"``).

    Returns:
        The `ExportReport`.

    Raises:
        InputError: the output folder is a file or not empty.
    """
    opened = project if isinstance(project, Project) else Project(project)
    try:
        return _export(opened, out_dir, as_progress(progress))
    finally:
        if opened is not project:
            opened.close()


def _export(project: Project, out_dir: str | os.PathLike, progress: Progress) -> ExportReport:
    out = prepare_output(out_dir)
    annotations_dir, images_dir, sets_dir = out / "Annotations", out / "JPEGImages", out / "ImageSets" / "Main"
    for folder in (annotations_dir, images_dir, sets_dir):
        folder.mkdir(parents=True)
    report = ExportReport("voc", str(project.path), str(out), labels=[str(label) for label in project.labels()])
    progress.start("export", project.count_images())
    pngs = 0
    with (
        open(sets_dir / "train.txt", "w", encoding="utf-8") as train,
        open(sets_dir / "test.txt", "w", encoding="utf-8") as test,
    ):
        lists = {"train": train, "test": test}
        for image, annotations in images_with_annotations(project):
            filename = image_filename(image)
            name = Path(filename).stem
            data = image.data()
            (images_dir / filename).write_bytes(data)
            (annotations_dir / f"{name}.xml").write_bytes(annotation_xml(image, filename, annotations, _depth(data)))
            if image.grouping in lists:
                lists[image.grouping].write(name + "\n")
            pngs += image.format == "png"
            report.images += 1
            report.boxes += sum(a.box is not None for a in annotations)
            report.full_image += sum(a.box is None for a in annotations)
            progress.advance()
    if pngs:
        report.notes.append(
            f"{pngs} PNG image(s) written to JPEGImages with a .png suffix (as stored; tools that expect only "
            ".jpg may skip them)"
        )
    progress.end(report.summary().splitlines()[0])
    return report
