"""The guide's structured-folders dataset: images at the root have no label and no group, `train/`
and `test/` give the group, and a subfolder's name is the label of the images inside it.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..events import Observer, Progress
from ..project import Project
from .parallel import feed, worth_parallel
from .session import ImportReport, ImportSession, LabelledObject, import_session
from .sources import Source

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
GROUP_FOLDERS = {"train": "train", "test": "test", "val": "test", "valid": "test", "validation": "test"}


def classify_path(path: str) -> tuple[str | None, str | None]:
    """(group, label) the guide's layout gives a file at this relative path.

    Examples:
        >>> classify_path("50.jpg")
        (None, None)
        >>> classify_path("test/shark.jpg")
        ('test', None)
        >>> classify_path("train/cat/cat.jpg")
        ('train', 'cat')
        >>> classify_path("dog/d1.jpg")
        (None, 'dog')
    """
    folders = path.split("/")[:-1]
    group = None
    if folders and folders[0].lower() in GROUP_FOLDERS:
        group = GROUP_FOLDERS[folders[0].lower()]
        folders = folders[1:]
    label = folders[0] if folders else None
    return group, label


def import_folders(
    source: str | os.PathLike,
    project: Project | str | os.PathLike,
    *,
    group: str | None = None,
    strict: bool = False,
    duplicates: str = "skip",
    decode: bool = False,
    progress: Progress | Observer | None = None,
    parallel: bool | None = None,
) -> ImportReport:
    """Import a structured-folders dataset (a folder, or a tar/zip of one).

    ``train/``, ``test/`` (and ``val/``, ``valid/``, ``validation/`` as test) set the group; the next
    folder level is the label; deeper folders keep that label. Files without an image suffix
    (README.txt, Thumbs.db) are ignored.

    Args:
        source: the root folder (or archive).
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        group: force every image into this group instead of the folders' groups.
        strict: abort at the first bad file, keeping nothing.
        duplicates: ``"skip"`` images already in the project, or ``"keep"`` them.
        decode: decode every pixel to check it.
        progress: a `Progress` or observer.
        parallel: read in a second process while this one writes (``None``: for archives of 32 MB
            or more; a plain folder is read here, which measures faster).

    Returns:
        The `ImportReport`.
    """
    Source(source)  # a missing or unreadable dataset is refused before any project is made
    with import_session(
        project,
        format="folders",
        source=source,
        group=group,
        strict=strict,
        duplicates=duplicates,
        decode=decode,
        progress=progress,
    ) as session:
        if parallel is None and not Path(source).is_file():
            # files in a folder cost little to read: handing them to this process over a pipe
            # costs more than reading them here (measured); archives are worth it
            parallel = False
        feed(session, _read, source, parallel=worth_parallel(source, parallel))
    return session.report


def _read(session: ImportSession, path: str | os.PathLike) -> None:
    """Feed a structured-folders dataset to a session (or to a reader process's sink)."""
    reader = Source(path, on_problem=lambda f, r: session.problem(f, r, skipped_file=True))
    root = _single_top_folder(Source(path)) if reader.kind != "folder" else ""
    for entry in reader.entries():
        rel = entry.path[len(root) :] if root and entry.path.startswith(root) else entry.path
        if not rel.lower().endswith(IMAGE_SUFFIXES) or entry.name.startswith("._"):
            continue
        folder_group, label = classify_path(rel)
        if label:  # objects first: the image row is then written with its annotation state
            session.objects(entry.path, [LabelledObject(label)], name=entry.path)
        session.image(entry.path, entry.read(), name=entry.path, group=folder_group)


def _single_top_folder(reader: Source) -> str:
    """For an archive holding one top folder (``imgs/...``), that folder's prefix; else ``""``.

    A first pass over names only (its problems are reported by the import pass).
    """
    tops = set()
    for entry in reader.entries():
        tops.add(entry.parts[0] if len(entry.parts) > 1 else "")
        if len(tops) > 1:
            return ""
    top = next(iter(tops), "")
    if top.lower() in GROUP_FOLDERS:
        return ""
    return f"{top}/" if top else ""
