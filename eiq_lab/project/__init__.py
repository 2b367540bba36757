"""The project store: `.eiqp` / `.deepview` SQLite files of images, labels and annotations.

`create_project` and `open_project` are the entry points; `Project` is the open file.
"""

from .exports import ExportRecord
from .health import check_health
from .imagefile import BadImage, check_image
from .records import ANY, Annotation, Box, Label, ProjectImage, normalize_group
from .runs import CheckpointRecord, RunRecord
from .store import PROJECT_SUFFIXES, Project, create_project, open_project

__all__ = [
    "ANY",
    "PROJECT_SUFFIXES",
    "Annotation",
    "BadImage",
    "Box",
    "CheckpointRecord",
    "ExportRecord",
    "Label",
    "Project",
    "ProjectImage",
    "RunRecord",
    "check_health",
    "check_image",
    "create_project",
    "normalize_group",
    "open_project",
]
