"""Thumbnails of project images: small JPEGs decoded cheaply (JPEG draft mode) for one page of a grid,
kept in a bounded in-memory cache keyed by the image's content hash.
"""

from __future__ import annotations

import io
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..errors import InputError
from .records import ProjectImage, id_of

if TYPE_CHECKING:
    from .store import Project

#: Longest side of a thumbnail (pixels) unless asked otherwise.
DEFAULT_SIZE = 128

#: Bytes of encoded thumbnails the shared cache keeps (about 8,000 thumbnails of 128 px).
DEFAULT_CACHE_BYTES = 32 * 1024 * 1024


def make_thumbnail(data: bytes, size: int = DEFAULT_SIZE, *, quality: int = 80) -> bytes:
    """A JPEG of the image scaled so its longer side is at most `size` (never enlarged).

    JPEGs are decoded at a reduced scale (1/2, 1/4 or 1/8: Pillow's draft mode), so a thumbnail of
    a large photo costs a fraction of a full decode. Transparent PNGs are flattened on white.

    Args:
        data: encoded JPEG or PNG bytes as stored in a project.
        size: longest side in pixels.
        quality: JPEG quality of the thumbnail.

    Returns:
        The thumbnail's JPEG bytes.

    Raises:
        InputError: `size` is not positive, or the data cannot be decoded (the message says why).
    """
    from PIL import Image

    if int(size) < 1:
        raise InputError(f"thumbnail size must be a positive number of pixels; received {size!r}")
    size = int(size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = Image.open(io.BytesIO(data))
            if image.format == "JPEG":
                image.draft("RGB", (size, size))
            image.load()
        except Exception as exc:  # Pillow raises many types for damaged data
            raise InputError(f"cannot decode image data for a thumbnail ({exc})") from None
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        image = Image.new("RGB", rgba.size, (255, 255, 255))
        image.paste(rgba, mask=rgba.getchannel("A"))
    elif image.mode not in ("RGB", "L"):
        image = image.convert("RGB")
    image.thumbnail((size, size), Image.Resampling.BILINEAR, reducing_gap=None)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


class ThumbnailCache:
    """Thumbnails of project images, built on demand and kept up to `max_bytes` (least recently used go first).

    Entries are keyed by (content hash, size): identical images share one thumbnail, and an image whose
    bytes change gets a new one.

    Args:
        size: longest side of the thumbnails (pixels).
        max_bytes: bound on the encoded bytes kept.

    Example:
        >>> cache = ThumbnailCache(size=96)
        >>> page = project.images(limit=48)  # doctest: +SKIP
        >>> jpegs = cache.for_images(project, page)  # doctest: +SKIP
    """

    def __init__(self, size: int = DEFAULT_SIZE, max_bytes: int = DEFAULT_CACHE_BYTES):
        if int(size) < 1:
            raise InputError(f"thumbnail size must be a positive number of pixels; received {size!r}")
        self.size = int(size)
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Encoded bytes held now."""
        return self._bytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _get(self, key: tuple[str, int]) -> bytes | None:
        with self._lock:
            value = self._entries.get(key)
            if value is not None:
                self._entries.move_to_end(key)
            return value

    def _put(self, key: tuple[str, int], value: bytes) -> None:
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self._bytes -= len(old)
            self._entries[key] = value
            self._bytes += len(value)
            while self._bytes > self.max_bytes and len(self._entries) > 1:
                _, dropped = self._entries.popitem(last=False)
                self._bytes -= len(dropped)

    def for_images(self, project: Project, images: Sequence[ProjectImage]) -> dict[int, bytes | None]:
        """Thumbnails of `images` (one page): cached ones at once, the others read in one query and decoded.

        Args:
            project: the open project the images belong to.
            images: image records (from `project.images(...)`).

        Returns:
            ``{image_id: jpeg_bytes}``; ``None`` for an image whose stored data cannot be decoded.
        """
        out: dict[int, bytes | None] = {}
        missing: dict[int, ProjectImage] = {}
        for image in images:
            cached = self._get((image.sha256, self.size))
            if cached is None:
                missing[image.id] = image
            else:
                out[image.id] = cached
        if missing:
            for image_id, data in image_data_many(project, list(missing)).items():
                try:
                    thumb = make_thumbnail(data, self.size)
                except InputError:
                    out[image_id] = None
                    continue
                self._put((missing[image_id].sha256, self.size), thumb)
                out[image_id] = thumb
        return {image.id: out.get(image.id) for image in images}


def image_data_many(project: Project, images: Sequence[int | ProjectImage]) -> dict[int, bytes]:
    """The stored bytes of several images in one query (ids that do not exist are left out)."""
    ids = [id_of(i) for i in images]
    out: dict[int, bytes] = {}
    for start in range(0, len(ids), 900):
        chunk = ids[start : start + 900]
        marks = ",".join("?" * len(chunk))
        for image_id, data in project._query(
            f"SELECT image_id, data FROM image_data WHERE image_id IN ({marks})", chunk
        ):
            out[image_id] = bytes(data)
    return out


_SHARED: dict[int, ThumbnailCache] = {}
_SHARED_LOCK = threading.Lock()


def shared_cache(size: int = DEFAULT_SIZE) -> ThumbnailCache:
    """The process-wide cache for thumbnails of `size` (panels reopened on a project reuse it)."""
    with _SHARED_LOCK:
        cache = _SHARED.get(int(size))
        if cache is None:
            cache = _SHARED[int(size)] = ThumbnailCache(size)
        return cache
