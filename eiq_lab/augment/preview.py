"""Previews of a pipeline: N augmented versions of one image, the same for the same seed.

What the Portal's "generate new random augmentation" button shows; version i is drawn from seed ``[seed, i]``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .pipeline import Pipeline

#: The most versions one preview makes.
MAX_PREVIEWS = 256


def load_image(image: bytes | str | os.PathLike | np.ndarray) -> np.ndarray:
    """An image as a uint8 [H, W, C] array with C 1 or 3.

    Args:
        image: encoded bytes (JPEG, PNG, ... anything Pillow reads), a file path, or an array
            [H, W], [H, W, 1], [H, W, 3] or [H, W, 4] (alpha is dropped).

    Raises:
        InputError: unreadable, undecodable, or an array of another shape or type.
    """
    if isinstance(image, np.ndarray):
        array = image
        if array.dtype != np.uint8:
            raise InputError(f"an image array must be uint8; received {array.dtype}")
        if array.ndim == 2:
            array = array[:, :, None]
        if array.ndim != 3 or array.shape[2] not in (1, 3, 4) or 0 in array.shape:
            raise InputError(f"an image array must be [H, W, C] with C 1 or 3; received shape {array.shape}")
        return np.ascontiguousarray(array[:, :, :3])
    if isinstance(image, (str, os.PathLike)):
        try:
            image = Path(image).read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read image {image}: {exc.strerror}") from None
    if not isinstance(image, (bytes, bytearray, memoryview)):
        raise InputError(
            f"an image must be encoded bytes, a file path or a uint8 array; received {type(image).__name__}"
        )
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(bytes(image))) as decoded:
            decoded.load()
            grey = decoded.mode in ("1", "L", "LA", "I", "I;16", "F")
            converted = decoded.convert("L" if grey else "RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"cannot decode the image: {exc}") from None
    array = np.asarray(converted, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def preview(
    pipeline: Pipeline | list[dict[str, Any]],
    image: bytes | str | os.PathLike | np.ndarray,
    n: int = 8,
    seed: int = 0,
) -> list[np.ndarray]:
    """`n` augmented versions of an image, exactly reproducible from `seed`.

    Args:
        pipeline: a `Pipeline` (or its JSON list of steps).
        image: encoded bytes, a file path, or a uint8 [H, W, C] array.
        n: how many versions (1 .. `MAX_PREVIEWS`).
        seed: version i is augmented with seed ``[seed, i]``.

    Returns:
        `n` uint8 arrays [H, W, C] (C as decoded: 1 for grey images, else 3).

    Raises:
        InputError: a bad pipeline, image, `n` or `seed`.

    Example:
        >>> from eiq_lab.augment import PRESETS, preview
        >>> versions = preview(PRESETS["default"], "cat.jpg", n=4, seed=1)  # doctest: +SKIP
    """
    if not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.from_json(pipeline)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PREVIEWS:
        raise InputError(f"n must be an integer from 1 to {MAX_PREVIEWS}; received {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise InputError(f"seed must be a non-negative integer; received {seed!r}")
    pixels = load_image(image)
    return [pipeline.apply(pixels, [int(seed), i]) for i in range(n)]
