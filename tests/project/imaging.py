"""Tiny test images made in memory, and file snapshots for byte-for-byte comparisons."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from PIL import Image

RED = (220, 20, 20)
BLUE = (20, 40, 220)


def encode_image(
    fmt: str = "PNG",
    size: tuple[int, int] = (32, 24),
    color: tuple[int, int, int] = RED,
    *,
    box: tuple[int, int, int, int] | None = None,
    box_color: tuple[int, int, int] = BLUE,
    mode: str = "RGB",
) -> bytes:
    """Encode a `size` = (width, height) image of one colour, optionally with a filled box.

    `box` is (x, y, width, height) in pixels, painted in `box_color`.
    """
    width, height = size
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[...] = color
    if box is not None:
        x, y, w, h = box
        pixels[y : y + h, x : x + w] = box_color
    image = Image.fromarray(pixels, "RGB")
    if mode != "RGB":
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, fmt)
    return out.getvalue()


def noise_image(seed: int, size: tuple[int, int] = (32, 24), fmt: str = "PNG") -> bytes:
    """A distinct image per seed (random pixels), so sha256 values differ."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(out, fmt)
    return out.getvalue()


def snapshot(path: Path) -> tuple[bytes, list[str]]:
    """A file's bytes and the names beside it (to spot stray -wal / -shm files)."""
    data = path.read_bytes() if path.is_file() else b""
    return data, sorted(os.listdir(path.parent))
