"""The exception family every part of eiq-lab raises for problems a user can act on.

Faces (CLI, widgets) print the message of an `EiqError` without a traceback.
"""

from __future__ import annotations


class EiqError(Exception):
    """A problem the user can act on; the message names the problem and the fix."""


class ProjectError(EiqError):
    """The project file cannot be opened, is not a project, or is newer than this code."""


class InputError(EiqError):
    """An argument or an input file is not what was expected."""


class NotFoundError(InputError):
    """A named thing (image id, label, dataset, split, feature) does not exist."""


class ImportAborted(EiqError):
    """An import stopped before committing; the project is exactly as it was before."""


class Stopped(EiqError):
    """Long work was stopped by the user; nothing it had started is kept."""
