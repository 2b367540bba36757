"""Previews of a pipeline: N augmented versions of one image, or several of a project's images with their
boxes (what the Portal's "generate new random augmentation" shows), the same for the same seed.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class PreviewSample:
    """One project image as training would see it after augmentation.

    Attributes:
        image_id: the image's id in the project.
        pixels: the augmented uint8 image [H, W, C].
        boxes: float32 [N, 4] normalised (ymin, xmin, ymax, xmax) of the boxes still visible enough to train on.
        box_labels: the label of each of `boxes`.
        labels: the image's full-image labels.
    """

    image_id: int
    pixels: np.ndarray
    boxes: np.ndarray
    box_labels: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)


def preview_project(
    project: Any,
    pipeline: Pipeline | list[dict[str, Any]],
    n: int = 8,
    seed: int = 0,
    *,
    group: str | None = "train",
    size: tuple[int, int] | None = None,
    channels: int | None = None,
) -> list[PreviewSample]:
    """Up to `n` of a project's images (drawn by `seed`) augmented with their boxes, as training augments them.

    Training resizes each image to the model's input size before augmenting it, so pass `size` to see exactly
    what the model will see (a blur kernel or a noise variance acts on those pixels). Image ``k`` is augmented
    with seed ``[seed, k]`` (`k` its id): the same seed shows the same images the same way.

    Args:
        project: an open `Project`.
        pipeline: a `Pipeline` (or its JSON list of steps).
        n: how many images (1 .. `MAX_PREVIEWS`; fewer when the group has fewer).
        seed: draws the images and their augmentation.
        group: the images to draw from (``"train"``: what augmentation applies to); when the group has none,
            every image of the project.
        size: (height, width) to resize to before augmenting, or ``None`` for the stored size.
        channels: 1 or 3 to convert to, or ``None`` for the stored channels.

    Returns:
        The samples in image id order.

    Raises:
        InputError: a bad pipeline, `n`, `seed`, `size` or `channels`, or a project without images.
    """
    from PIL import Image

    if not isinstance(pipeline, Pipeline):
        pipeline = Pipeline.from_json(pipeline)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_PREVIEWS:
        raise InputError(f"n must be an integer from 1 to {MAX_PREVIEWS}; received {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise InputError(f"seed must be a non-negative integer; received {seed!r}")
    if size is not None and (len(size) != 2 or min(int(v) for v in size) < 1):
        raise InputError(f"size must be (height, width), two positive integers; received {size!r}")
    if channels not in (None, 1, 3):
        raise InputError(f"channels must be 1 or 3; received {channels!r}")
    from ..project import ANY

    total = project.count_images(group=group)
    if total == 0 and group != ANY:
        group, total = ANY, project.count_images(group=ANY)
    if total == 0:
        raise InputError(f"{project.path.name} has no images to preview; import some first")
    offsets = np.sort(np.random.default_rng(int(seed)).choice(total, size=min(n, total), replace=False))
    images = [project.images(group=group, offset=int(offset), limit=1)[0] for offset in offsets]
    annotations = project.annotations_for_images(images)
    samples = []
    for image in images:
        decoded = Image.open(io.BytesIO(project.image_data(image.id)))
        decoded.load()
        grey = decoded.mode in ("1", "L", "LA", "I", "I;16", "F")
        mode = {1: "L", 3: "RGB"}.get(channels or 0, "L" if grey else "RGB")
        decoded = decoded.convert(mode)
        if size is not None:
            decoded = decoded.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)
        pixels = np.asarray(decoded, dtype=np.uint8)
        pixels = np.ascontiguousarray(pixels[:, :, None] if pixels.ndim == 2 else pixels)
        found = annotations.get(image.id, [])
        boxed = [a for a in found if a.box is not None]
        boxes = np.array(
            [
                [b.y / image.height, b.x / image.width, (b.y + b.height) / image.height, (b.x + b.width) / image.width]
                for b in (a.box for a in boxed)
            ],
            np.float32,
        ).reshape(-1, 4)
        augmented, moved, keep = pipeline.apply_with_boxes(pixels, np.clip(boxes, 0.0, 1.0), [int(seed), image.id])
        samples.append(
            PreviewSample(
                image.id,
                augmented,
                moved[keep],
                [str(a.label) for a, kept in zip(boxed, keep) if kept],
                [str(a.label) for a in found if a.box is None],
            )
        )
    return samples
