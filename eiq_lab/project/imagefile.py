"""Checks encoded image bytes before they enter a project: format, size, pixel limit, integrity.

JPEG and PNG are stored as given; other formats Pillow reads are transcoded to PNG once.
"""

from __future__ import annotations

import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass

from ..errors import InputError

#: Images above this many pixels are refused as possible decompression bombs
#: (override with the ``EIQ_MAX_IMAGE_PIXELS`` environment variable).
DEFAULT_MAX_PIXELS = 64_000_000

STORED_FORMATS = ("jpeg", "png")

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class BadImage(InputError):
    """The bytes are not a usable image; the message says why."""


@dataclass(frozen=True)
class CheckedImage:
    """Encoded bytes ready to store, with what was read from them."""

    data: bytes
    format: str  # "jpeg" or "png"
    width: int
    height: int
    transcoded_from: str | None = None


def max_pixels() -> int:
    """The pixel limit in force (``EIQ_MAX_IMAGE_PIXELS`` or the default)."""
    value = os.environ.get("EIQ_MAX_IMAGE_PIXELS")
    if value is None:
        return DEFAULT_MAX_PIXELS
    try:
        return int(value)
    except ValueError:
        raise InputError(f"EIQ_MAX_IMAGE_PIXELS must be an integer; received {value!r}") from None


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk JPEG markers up to the first start-of-frame and read its size."""
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise BadImage("corrupt JPEG: marker expected")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        if length < 2:
            raise BadImage("corrupt JPEG: bad segment length")
        if marker in _JPEG_SOF:
            if pos + 9 > n:
                break
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            if width == 0 or height == 0:
                raise BadImage("corrupt JPEG: zero width or height")
            return width, height
        if marker == 0xDA:  # scan before any frame header
            raise BadImage("corrupt JPEG: no frame header before image data")
        pos += 2 + length
    raise BadImage("truncated JPEG: no frame header")


def _jpeg_complete(data: bytes) -> bool:
    end = data.rstrip(b"\x00")
    return end.endswith(b"\xff\xd9")


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise BadImage("corrupt PNG: no IHDR header")
    (crc,) = struct.unpack(">I", data[29:33])
    if zlib.crc32(data[12:29]) != crc:
        raise BadImage("corrupt PNG: header checksum mismatch")
    width, height = struct.unpack(">II", data[16:24])
    if width == 0 or height == 0:
        raise BadImage("corrupt PNG: zero width or height")
    return width, height


def _png_complete(data: bytes) -> bool:
    return data.rstrip(b"\x00")[-12:] == b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _decode_fully(data: bytes) -> None:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
    except Exception as exc:  # Pillow raises many types for bad data
        raise BadImage(f"cannot decode image data ({exc})") from None


def _check_pixels(width: int, height: int, limit: int) -> None:
    if width * height > limit:
        raise BadImage(
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{limit:,} (a possible decompression bomb); raise EIQ_MAX_IMAGE_PIXELS to accept it"
        )


def check_image(data: bytes, *, decode: bool = False, limit: int | None = None) -> CheckedImage:
    """Check encoded image bytes and return them ready to store.

    JPEG and PNG are checked by their headers and structure (complete stream, header
    checksum) without decoding pixels; other formats are decoded and transcoded to PNG.

    Args:
        data: the encoded file content.
        decode: also decode every pixel (slower; catches damage inside the compressed data).
        limit: pixel limit; defaults to `max_pixels()`.

    Returns:
        A `CheckedImage`.

    Raises:
        BadImage: the data is empty, not an image, truncated, corrupt or too large.
    """
    limit = max_pixels() if limit is None else limit
    data = bytes(data)
    if not data:
        raise BadImage("empty file")
    if data[:3] == b"\xff\xd8\xff":
        width, height = _jpeg_size(data)
        _check_pixels(width, height, limit)
        if not _jpeg_complete(data):
            raise BadImage("truncated JPEG: the end-of-image marker is missing")
        if decode:
            _decode_fully(data)
        return CheckedImage(data, "jpeg", width, height)
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        width, height = _png_size(data)
        _check_pixels(width, height, limit)
        if not _png_complete(data):
            raise BadImage("truncated PNG: the IEND chunk is missing")
        if decode:
            _decode_fully(data)
        return CheckedImage(data, "png", width, height)
    return _transcode(data, limit)


def _transcode(data: bytes, limit: int) -> CheckedImage:
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            image = Image.open(io.BytesIO(data))
        except Exception:
            head = data[:16]
            hint = " (it looks like text)" if all(32 <= b < 127 or b in b"\r\n\t" for b in head) else ""
            raise BadImage(f"not an image file{hint}; expected JPEG, PNG, BMP, GIF, WebP or TIFF") from None
        with image:
            fmt = (image.format or "unknown").lower()
            _check_pixels(image.width, image.height, limit)
            try:
                image.load()
            except Exception as exc:
                raise BadImage(f"cannot decode {fmt.upper()} data ({exc})") from None
            if image.mode not in ("RGB", "RGBA", "L", "LA"):
                image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
            out = io.BytesIO()
            image.save(out, "PNG")
    return CheckedImage(out.getvalue(), "png", image.width, image.height, transcoded_from=fmt)
