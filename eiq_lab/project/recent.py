"""The recently opened projects, kept in the user's config (``$EIQ_HOME/recent_projects.json``) so the Portal's
Home lists them; the file is rewritten whole through a temporary file, like the targets list.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

FILE_NAME = "recent_projects.json"
#: how many projects the list keeps (the most recent first)
KEEP = 10


def recent_path() -> Path:
    """The list's file: ``$EIQ_HOME/recent_projects.json`` (``EIQ_HOME`` defaults to ``~/.local/share/eiq-lab``)."""
    from ..convert.environments import home

    return home() / FILE_NAME


def recent_projects(*, existing: bool = True) -> list[Path]:
    """The recently opened projects, most recent first.

    Args:
        existing: leave out projects whose file is gone.

    Returns:
        Absolute paths; an unreadable list counts as empty (it is only a convenience).
    """
    try:
        document = json.loads(recent_path().read_text(encoding="utf-8"))
        paths = [Path(p) for p in document["projects"] if isinstance(p, str)]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    return [p for p in paths if p.is_file()] if existing else paths


def remember_project(path: str | os.PathLike) -> list[Path]:
    """Put `path` first in the list (absolute; at most `KEEP` entries) and return the new list."""
    path = Path(path).expanduser().resolve()
    paths = [path, *(p for p in recent_projects(existing=False) if p != path)][:KEEP]
    _save(paths)
    return paths


def forget_project(path: str | os.PathLike) -> list[Path]:
    """Remove `path` from the list and return the new list."""
    path = Path(path).expanduser().resolve()
    paths = [p for p in recent_projects(existing=False) if p != path]
    _save(paths)
    return paths


def _save(paths: list[Path]) -> None:
    from ..files import write_atomic

    text = json.dumps({"version": 1, "projects": [str(p) for p in paths]}, indent=2) + "\n"
    write_atomic(recent_path(), text.encode("utf-8"))
