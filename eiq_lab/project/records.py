"""The objects a project hands out: images, labels and annotations.

They are snapshots of rows; an image fetches its bytes from the project only when asked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from ..errors import InputError

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

    from .store import Project

GROUPS = ("train", "test")

#: Pass as ``group=`` to mean "whatever the group"; ``None`` means "in no group".
ANY = "any"


def normalize_group(group: str | None) -> str | None:
    """Map user spellings of a group to ``"train"``, ``"test"`` or ``None`` (no group).

    Raises:
        InputError: for any other name.
    """
    if group is None:
        return None
    value = str(group).strip().lower()
    if value in ("", "none", "null", "ungrouped"):
        return None
    if value in ("validation", "val", "valid"):
        return "test"
    if value not in GROUPS:
        raise InputError(f"group must be 'train', 'test' or none; received {group!r}")
    return value


class Box(NamedTuple):
    """A box in pixels: top-left corner, width and height (decimals kept)."""

    x: float
    y: float
    width: float
    height: float


class Label(str):
    """A label name that also carries its id, so ``"cat" in project.labels()`` works."""

    id: int
    color: str | None

    def __new__(cls, name: str, id: int, color: str | None = None) -> Label:
        obj = super().__new__(cls, name)
        obj.id = id
        obj.color = color
        return obj

    @property
    def name(self) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"Label({str(self)!r}, id={self.id})"


@dataclass(frozen=True)
class Annotation:
    """A full-image label (``box is None``) or a labelled box on one image."""

    id: int
    image_id: int
    label: Label
    box: Box | None
    difficult: bool = False
    truncated: bool = False

    def as_pair(self) -> tuple[str, tuple[float, float, float, float] | None]:
        """The guide's ``(label, box_or_None)`` form."""
        return (str(self.label), tuple(self.box) if self.box else None)


@dataclass(frozen=True)
class ProjectImage:
    """One image of a project (metadata; bytes and pixels on demand)."""

    id: int
    width: int
    height: int
    format: str
    sha256: str
    source: str | None
    grouping: str | None
    annotated: bool
    project: Project | None = field(default=None, repr=False, compare=False)

    def data(self) -> bytes:
        """The encoded bytes as stored."""
        return self._project().image_data(self.id)

    def get_size(self) -> tuple[int, int]:
        """(width, height) in pixels, as the guide's datastore API returns it."""
        return (self.width, self.height)

    def pil(self) -> PILImage:
        """The decoded image (RGB or L as stored)."""
        from PIL import Image

        image = Image.open(io.BytesIO(self.data()))
        image.load()
        return image

    def scaled(self, width: int, height: int) -> PILImage:
        """The image resized to (width, height), converted to RGB."""
        from PIL import Image

        return self.pil().convert("RGB").resize((int(width), int(height)), Image.Resampling.BILINEAR)

    def annotations(self) -> list[Annotation]:
        return self._project().annotations(image=self.id)

    def _project(self) -> Project:
        if self.project is None:
            raise RuntimeError("this image record is not attached to an open project")
        return self.project


def id_of(obj: Any) -> int:
    """The id of a project object, or the value itself if it is an id."""
    value = getattr(obj, "id", obj)
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            return int(value)
        except (TypeError, ValueError):
            raise InputError(f"expected an id or a project object; received {obj!r}") from None
    return value
