"""What every exporter shares: the output folder, stable file names and the export report.

Format modules (voc, coco, yolo) write their layout; `export_project` picks one by name.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from ..project import ANY, Annotation, Project, ProjectImage

EXPORT_FORMATS = ("coco", "voc", "yolo")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass
class ExportReport:
    """What an export wrote."""

    format: str
    project: str
    output: str
    images: int = 0
    boxes: int = 0
    full_image: int = 0
    labels: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "project": self.project,
            "output": self.output,
            "images": self.images,
            "boxes": self.boxes,
            "full_image_labels": self.full_image,
            "labels": self.labels,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        lines = [
            f"exported {self.images} image(s), {self.boxes} box(es), {self.full_image} full-image label(s) "
            f"as {self.format} to {self.output}"
        ]
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)


def prepare_output(out_dir: str | os.PathLike) -> Path:
    """Create the output folder; refuse a non-empty one so nothing of the user's is overwritten."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} is a file; give a folder to export into")
    if out.is_dir() and any(out.iterdir()):
        raise InputError(f"output folder {out} is not empty; give a new or empty folder")
    out.mkdir(parents=True, exist_ok=True)
    return out


def image_filename(image: ProjectImage) -> str:
    """A unique, filesystem-safe file name: the id, then the source's stem, then the format's suffix."""
    stem = Path(image.source or "").stem
    stem = _UNSAFE.sub("_", stem).strip("._")[:80]
    suffix = ".jpg" if image.format == "jpeg" else ".png"
    return f"{image.id:08d}{'_' + stem if stem else ''}{suffix}"


def images_with_annotations(
    project: Project, *, group: str | None = ANY, batch: int = 500
) -> Iterator[tuple[ProjectImage, list[Annotation]]]:
    """Every image (in id order) with its annotations, fetched in batches."""
    page: list[ProjectImage] = []
    for image in project.iter_images(group=group, batch=batch):
        page.append(image)
        if len(page) == batch:
            yield from _with_annotations(project, page)
            page = []
    if page:
        yield from _with_annotations(project, page)


def _with_annotations(project: Project, page: list[ProjectImage]):
    by_image = project.annotations_for_images([i.id for i in page])
    for image in page:
        yield image, by_image.get(image.id, [])


def export_project(
    project: Project | str | os.PathLike,
    format: str,
    out_dir: str | os.PathLike,
    *,
    progress: Progress | Observer | None = None,
) -> ExportReport:
    """Write a project as a COCO, VOC or YOLO dataset.

    Raises:
        InputError: unknown format, or a non-empty output folder.
    """
    import importlib

    name = str(format).lower()
    if name not in EXPORT_FORMATS:
        raise InputError(f"unknown export format {format!r}; choose one of {', '.join(EXPORT_FORMATS)}")
    writer = getattr(importlib.import_module(f"{__package__}.{name}"), f"export_{name}")
    opened = project if isinstance(project, Project) else Project(project)
    started = time.monotonic()
    try:
        report = writer(opened, out_dir, progress=as_progress(progress))
    finally:
        if opened is not project:
            opened.close()
    report.seconds = time.monotonic() - started
    return report
