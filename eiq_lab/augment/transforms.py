"""The image transforms behind the augmentation operators: OpenCV and numpy on uint8 images.

Each takes a uint8 [H, W, C] array (C 1 or 3) and a `numpy.random.Generator` to draw from, and returns a
uint8 array of the same shape. They work on 8-bit pixels as albumentations (which eIQ Portal's
augmentation follows) does, with OpenCV's own interpolation and border codes, so every code the
guide's fields offer is exact. Pixel-wise operators are lookup tables (256 values computed once per
image), which is why a pipeline costs tens of microseconds per small image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

#: OpenCV's codes, as the guide's Interpolation and Border Mode fields take them.
INTERPOLATIONS = {0: "nearest", 1: "linear", 2: "cubic", 3: "area", 4: "lanczos"}
BORDER_MODES = {0: "constant", 1: "replicate", 2: "reflect", 3: "wrap", 4: "reflect_101"}

_LEVELS = np.arange(256, dtype=np.float32)


def cv2() -> Any:
    """The `cv2` module, imported on first use (importing eiq_lab.augment stays light)."""
    import cv2 as module

    return module


def uniform(rng: np.random.Generator, limits: Any) -> float:
    """A value drawn uniformly in [lower, upper) (exactly lower when they are equal)."""
    lower, upper = (float(v) for v in limits)
    return lower if lower == upper else float(rng.uniform(lower, upper))


def _as_image(result: np.ndarray, channels: int) -> np.ndarray:
    # OpenCV drops the channel axis of one-channel images
    return result[:, :, None] if result.ndim == 2 and channels == 1 else result


def _lut(image: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Map every pixel through `table` (256 float values, rounded and clipped to 0..255).

    A [256, C] table maps each channel through its own column.
    """
    table = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    channels = image.shape[2]
    if table.ndim == 2 and channels > 1:
        return cv2().LUT(image, np.ascontiguousarray(table[:, None, :channels]))
    return _as_image(cv2().LUT(image, table.reshape(-1)[:256]), channels)


# -- geometry ------------------------------------------------------------------------------


def horizontal_flip(image: np.ndarray, boxes: Any, params: dict, rng: np.random.Generator) -> tuple:
    """Mirror left-right; boxes (ymin, xmin, ymax, xmax) follow exactly."""
    flipped = _as_image(cv2().flip(image, 1), image.shape[2])  # 30x faster than copying a reversed view
    if boxes is None:
        return flipped, None, None
    return flipped, np.stack([boxes[:, 0], 1.0 - boxes[:, 3], boxes[:, 2], 1.0 - boxes[:, 1]], axis=1), None


def vertical_flip(image: np.ndarray, boxes: Any, params: dict, rng: np.random.Generator) -> tuple:
    """Mirror top-bottom; boxes follow exactly."""
    flipped = _as_image(cv2().flip(image, 0), image.shape[2])
    if boxes is None:
        return flipped, None, None
    return flipped, np.stack([1.0 - boxes[:, 2], boxes[:, 1], 1.0 - boxes[:, 0], boxes[:, 3]], axis=1), None


def fill_color(color: Any, channels: int) -> tuple[float, ...]:
    """The fill colour for an image of `channels`: RGB, or its luma (BT.601) for grey images."""
    red, green, blue = (float(c) for c in color)
    if channels == 1:
        return (float(round(0.299 * red + 0.587 * green + 0.114 * blue)),)
    return (red, green, blue)


def rotate(image: np.ndarray, boxes: Any, params: dict, rng: np.random.Generator) -> tuple:
    """Rotate about the centre by an angle drawn from ``limit`` (degrees; positive turns counter-clockwise
    as displayed, as OpenCV's getRotationMatrix2D does); the output keeps the input's size.

    Boxes become the axis-aligned box around their rotated corners, clipped to the image; the third
    value is the visible fraction of each (clipped area over unclipped area).
    """
    degrees = uniform(rng, params["limit"])
    height, width, channels = image.shape
    # the centre of the pixel grid (pixel centres at integer coordinates)
    matrix = cv2().getRotationMatrix2D(((width - 1) / 2.0, (height - 1) / 2.0), degrees, 1.0)
    border = int(params["border_mode"])
    rotated = cv2().warpAffine(
        image,
        matrix,
        (width, height),
        flags=int(params["interpolation"]),
        borderMode=border,
        borderValue=fill_color(params["fill_color"], channels) if border == 0 else 0,
    )
    rotated = _as_image(rotated, channels)
    if boxes is None:
        return rotated, None, None
    return rotated, *rotate_boxes(boxes, degrees, height, width)


def rotate_boxes(boxes: np.ndarray, degrees: float, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Boxes (normalised ymin, xmin, ymax, xmax) turned counter-clockwise by `degrees` about the image centre:
    the axis-aligned boxes around their turned corners, clipped to the image, and the visible fraction of each."""
    angle = math.radians(degrees)
    cos, sin = math.cos(angle), math.sin(angle)
    # in continuous pixel coordinates (edges at 0 and W), about the centre
    xs = boxes[:, [1, 3, 1, 3]] * width - width / 2.0
    ys = boxes[:, [0, 0, 2, 2]] * height - height / 2.0
    new_x = cos * xs + sin * ys + width / 2.0
    new_y = -sin * xs + cos * ys + height / 2.0
    x0, x1 = new_x.min(axis=1), new_x.max(axis=1)
    y0, y1 = new_y.min(axis=1), new_y.max(axis=1)
    area = (x1 - x0) * (y1 - y0)
    seen_w = np.minimum(x1, width) - np.maximum(x0, 0.0)
    seen_h = np.minimum(y1, height) - np.maximum(y0, 0.0)
    inside_frame = (seen_w >= 0.0) & (seen_h >= 0.0)
    seen = np.maximum(seen_w, 0.0) * np.maximum(seen_h, 0.0)
    # a box of no area (a point or a line) counts as visible while it is inside the frame
    with np.errstate(divide="ignore", invalid="ignore"):
        visible = np.where(area > 0.0, seen / np.maximum(area, 1e-12), inside_frame.astype(np.float32))
    clipped = np.stack(
        [
            np.clip(y0, 0.0, height) / height,
            np.clip(x0, 0.0, width) / width,
            np.clip(y1, 0.0, height) / height,
            np.clip(x1, 0.0, width) / width,
        ],
        axis=1,
    )
    return clipped.astype(np.float32), visible.astype(np.float32)


# -- pixels --------------------------------------------------------------------------------


def blur_sizes(limits: Any) -> tuple[int, int]:
    """The odd kernel sizes a blur limit allows: an even lower bound rounds up, an even upper bound
    down, and the upper never falls below the lower (so ``[4, 4]`` means 5)."""
    lower = int(limits[0]) | 1
    upper = max(lower, int(limits[1]) - (1 - int(limits[1]) % 2))
    return lower, upper


def random_blur(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """A box (mean) filter of an odd size drawn from ``blur_limit``: OpenCV's ``blur`` with its default
    border (reflect-101); the size is clamped so the border fits inside small images."""
    lower, upper = blur_sizes(params["blur_limit"])
    size = lower + 2 * int(rng.integers(0, (upper - lower) // 2 + 1))
    size = min(size, 2 * min(image.shape[:2]) - 1)
    if size <= 1:
        return image.copy()
    return _as_image(cv2().blur(image, (size, size)), image.shape[2])


def gaussian_noise(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Add per-pixel, per-channel normal noise: variance drawn from ``var_limit`` (0-255 units squared),
    mean ``mean``; then round and clip to 0..255."""
    sigma = math.sqrt(uniform(rng, params["var_limit"]))
    noise = rng.standard_normal(image.shape, dtype=np.float32)
    noisy = image.astype(np.float32) + (noise * np.float32(sigma) + np.float32(params["mean"]))
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def hue_saturation_value(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Shift hue, saturation and value as albumentations does on 8-bit images: OpenCV's HSV (hue 0..179,
    180 a full turn; saturation and value 0..255), hue wrapped, saturation and value clipped. A grey image
    gets the value shift only."""
    hue = uniform(rng, params["hue_shift_limit"])
    sat = uniform(rng, params["sat_shift_limit"])
    val = uniform(rng, params["val_shift_limit"])
    if image.shape[2] == 1:
        return _lut(image, _LEVELS + val)
    cv = cv2()
    h, s, v = cv.split(cv.cvtColor(image, cv.COLOR_RGB2HSV))
    h = cv.LUT(h, np.mod(_LEVELS + round(hue), 180).astype(np.uint8))
    s = cv.LUT(s, np.clip(np.rint(_LEVELS + sat), 0, 255).astype(np.uint8))
    v = cv.LUT(v, np.clip(np.rint(_LEVELS + val), 0, 255).astype(np.uint8))
    return cv.cvtColor(cv.merge([h, s, v]), cv.COLOR_HSV2RGB)


def random_brightness(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Add a fraction of full scale drawn from ``limit`` (0.2 adds 51 grey levels), as albumentations'
    brightness (by max)."""
    return _lut(image, _LEVELS + uniform(rng, params["limit"]) * 255.0)


def random_contrast(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Scale each channel about its mean by 1 + a factor drawn from ``limit``, as tf.image.adjust_contrast.

    (albumentations scales about 0, which also darkens or brightens; about the mean only contrast changes.)
    """
    factor = 1.0 + uniform(rng, params["limit"])
    means = np.asarray(cv2().mean(image)[: image.shape[2]], np.float32)
    return _lut(image, (_LEVELS[:, None] - means) * factor + means)


def random_gamma(image: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """Raise to a power drawn from ``gamma_limit`` / 100 (albumentations' units): 255 * (x / 255) ** gamma;
    gamma > 1 darkens, < 1 brightens."""
    gamma = uniform(rng, params["gamma_limit"]) / 100.0
    return _lut(image, 255.0 * np.power(_LEVELS / 255.0, gamma))
