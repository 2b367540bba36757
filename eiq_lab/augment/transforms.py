"""The TensorFlow image transforms behind the augmentation operators: stateless, graph-friendly, seeded.

Each takes a float32 [H, W, C] image in 0..255 (C 1 or 3, H and W possibly dynamic) and returns one in 0..255.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from .. import framework

# OpenCV's codes (the guide's Interpolation field) -> ImageProjectiveTransformV3's modes. TF offers
# nearest and bilinear only: cubic and Lanczos are approximated by bilinear; OpenCV's warpAffine
# itself treats INTER_AREA as bilinear, so 3 is no approximation.
INTERPOLATIONS = {0: "NEAREST", 1: "BILINEAR", 2: "BILINEAR", 3: "BILINEAR", 4: "BILINEAR"}
# OpenCV's border codes (the guide's Border Mode field) -> TF fill modes. Constant is composited per
# channel below (TF's fill value is one scalar); BORDER_REPLICATE is TF's "nearest", BORDER_REFLECT
# (edge pixel repeated) is TF's "reflect", BORDER_WRAP is "wrap". BORDER_REFLECT_101 (edge pixel
# not repeated) has no TF mode: it is approximated by "reflect", one pixel off along the mirror line.
BORDER_MODES = {0: "CONSTANT", 1: "NEAREST", 2: "REFLECT", 3: "WRAP", 4: "REFLECT"}

#: Which OpenCV codes TF can only approximate (documented in the operator's help).
APPROXIMATED = {"interpolation": (2, 4), "border_mode": (4,)}


def tensorflow() -> Any:
    """The `tensorflow` module: from `sys.modules` once loaded, else through `eiq_lab.framework`.

    (AutoGraph converts what a `tf.data` map calls; the framework's environment set-up is not
    convertible and would only warn, and it has nothing left to do once TensorFlow is loaded.)
    """
    module = sys.modules.get("tensorflow")
    return module if module is not None else framework.tf()


_tf = tensorflow


def seeds(seed: Any, count: int) -> list[Any]:
    """`count` independent seeds (shape [2]) derived from one."""
    tf = _tf()
    split = tf.random.experimental.stateless_split(seed, num=count)
    return [split[i] for i in range(count)]


def uniform(seed: Any, limits: list[float]) -> Any:
    """A float32 scalar drawn uniformly in [lower, upper) (exactly lower when they are equal)."""
    tf = _tf()
    lower, upper = (float(v) for v in limits)
    if lower == upper:
        return tf.constant(lower, tf.float32)
    return tf.random.stateless_uniform([], seed=seed, minval=lower, maxval=upper, dtype=tf.float32)


def _clip(image: Any) -> Any:
    return _tf().clip_by_value(image, 0.0, 255.0)


def _channels(image: Any) -> int | None:
    return image.shape[-1] if image.shape.rank is not None else None


def _by_channels(image: Any, gray: Any, rgb: Any) -> Any:
    """`gray(image)` for one channel, `rgb(image)` for three; decided in the graph when C is unknown."""
    tf = _tf()
    channels = _channels(image)
    if channels == 1:
        return gray(image)
    if channels == 3:
        return rgb(image)
    return tf.cond(tf.equal(tf.shape(image)[-1], 1), lambda: gray(image), lambda: rgb(image))


# -- geometry ------------------------------------------------------------------------------


def horizontal_flip(image: Any, boxes: Any, params: dict, seed: Any) -> tuple[Any, Any, Any]:
    """Mirror left-right; boxes (ymin, xmin, ymax, xmax) follow exactly."""
    tf = _tf()
    image = tf.reverse(image, axis=[1])
    if boxes is None:
        return image, None, None
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return image, tf.stack([ymin, 1.0 - xmax, ymax, 1.0 - xmin], axis=-1), None


def vertical_flip(image: Any, boxes: Any, params: dict, seed: Any) -> tuple[Any, Any, Any]:
    """Mirror top-bottom; boxes follow exactly."""
    tf = _tf()
    image = tf.reverse(image, axis=[0])
    if boxes is None:
        return image, None, None
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return image, tf.stack([1.0 - ymax, xmin, 1.0 - ymin, xmax], axis=-1), None


def _fill_color(color: list[int], image: Any) -> Any:
    """The fill colour as a [C] vector: RGB for colour images, its luma (BT.601) for grey ones."""
    tf = _tf()
    red, green, blue = (float(c) for c in color)
    luma = round(0.299 * red + 0.587 * green + 0.114 * blue)
    channels = _channels(image)
    if channels == 1:
        return tf.constant([luma], tf.float32)
    if channels == 3:
        return tf.constant([red, green, blue], tf.float32)
    return tf.cond(
        tf.equal(tf.shape(image)[-1], 1),
        lambda: tf.constant([luma], tf.float32),
        lambda: tf.constant([red, green, blue], tf.float32),
    )


def rotate(image: Any, boxes: Any, params: dict, seed: Any) -> tuple[Any, Any, Any]:
    """Rotate about the centre by an angle drawn from ``limit`` (degrees; positive turns counter-clockwise
    as displayed, as OpenCV's getRotationMatrix2D does); the output keeps the input's size.

    Boxes become the axis-aligned box around their rotated corners, clipped to the image; the third
    value is the visible fraction of each (clipped area over unclipped area).
    """
    tf = _tf()
    angle = uniform(seed, params["limit"]) * (math.pi / 180.0)
    cos, sin = tf.cos(angle), tf.sin(angle)
    size = tf.shape(image)[:2]
    height, width = tf.cast(size[0], tf.float32), tf.cast(size[1], tf.float32)
    # the op maps each output pixel (x, y) to the input point it samples: the inverse rotation about
    # the centre of the pixel grid (pixel centres at integer coordinates)
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    transform = tf.stack([cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, 0.0, 0.0])
    border = int(params["border_mode"])
    # TF fills with one scalar: for a constant border a channel of ones is warped along, telling how
    # much of each output pixel came from inside the image; the rest is the (per-channel) fill colour
    pixels = tf.concat([image, tf.ones_like(image[..., :1])], axis=-1) if border == 0 else image
    rotated = tf.raw_ops.ImageProjectiveTransformV3(
        images=pixels[None],
        transforms=transform[None],
        output_shape=size,
        fill_value=0.0,
        interpolation=INTERPOLATIONS[int(params["interpolation"])],
        fill_mode=BORDER_MODES[border],
    )[0]
    if border == 0:
        inside = rotated[..., -1:]
        rotated = rotated[..., :-1] + (1.0 - inside) * _fill_color(params["fill_color"], image)
    rotated = _clip(rotated)
    if boxes is None:
        return rotated, None, None
    # boxes in continuous pixel coordinates (edges at 0 and W), turned forward about the same centre
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    xs = tf.stack([xmin, xmax, xmin, xmax], axis=-1) * width - width / 2.0
    ys = tf.stack([ymin, ymin, ymax, ymax], axis=-1) * height - height / 2.0
    new_x = cos * xs + sin * ys + width / 2.0
    new_y = -sin * xs + cos * ys + height / 2.0
    x0, x1 = tf.reduce_min(new_x, axis=-1), tf.reduce_max(new_x, axis=-1)
    y0, y1 = tf.reduce_min(new_y, axis=-1), tf.reduce_max(new_y, axis=-1)
    area = (x1 - x0) * (y1 - y0)
    seen_w = tf.minimum(x1, width) - tf.maximum(x0, 0.0)
    seen_h = tf.minimum(y1, height) - tf.maximum(y0, 0.0)
    inside_frame = tf.logical_and(seen_w >= 0.0, seen_h >= 0.0)
    seen = tf.maximum(seen_w, 0.0) * tf.maximum(seen_h, 0.0)
    # a box of no area (a point or a line) counts as visible while it is inside the frame
    visible = tf.where(area > 0.0, seen / tf.maximum(area, 1e-12), tf.cast(inside_frame, tf.float32))
    clipped = tf.stack(
        [
            tf.clip_by_value(y0, 0.0, height) / height,
            tf.clip_by_value(x0, 0.0, width) / width,
            tf.clip_by_value(y1, 0.0, height) / height,
            tf.clip_by_value(x1, 0.0, width) / width,
        ],
        axis=-1,
    )
    return rotated, clipped, visible


# -- pixels --------------------------------------------------------------------------------


def blur_sizes(limits: list[int]) -> tuple[int, int]:
    """The odd kernel sizes a blur limit allows: an even lower bound rounds up, an even upper bound
    down, and the upper never falls below the lower (so ``[4, 4]`` means 5)."""
    lower = int(limits[0]) | 1
    upper = max(lower, int(limits[1]) - (1 - int(limits[1]) % 2))
    return lower, upper


def random_blur(image: Any, params: dict, seed: Any) -> Any:
    """A box (mean) filter of an odd size drawn from ``blur_limit``, as OpenCV's ``blur`` with its
    default border (reflect-101); the size is clamped so the border fits inside small images."""
    tf = _tf()
    lower, upper = blur_sizes(params["blur_limit"])
    choices = (upper - lower) // 2 + 1
    if choices == 1:
        size = tf.constant(lower, tf.int32)
    else:
        size = lower + 2 * tf.random.stateless_uniform([], seed=seed, minval=0, maxval=choices, dtype=tf.int32)
    shape = tf.shape(image)
    size = tf.minimum(size, 2 * tf.reduce_min(shape[:2]) - 1)
    pad = size // 2
    padded = tf.pad(image, tf.stack([[pad, pad], [pad, pad], [0, 0]]), mode="REFLECT")
    weight = 1.0 / tf.cast(size, tf.float32)
    rows = tf.fill(tf.stack([size, 1, shape[2], 1]), weight)
    cols = tf.fill(tf.stack([1, size, shape[2], 1]), weight)
    out = tf.nn.depthwise_conv2d(padded[None], rows, [1, 1, 1, 1], "VALID")
    out = tf.nn.depthwise_conv2d(out, cols, [1, 1, 1, 1], "VALID")[0]
    return _clip(tf.reshape(out, shape))


def gaussian_noise(image: Any, params: dict, seed: Any) -> Any:
    """Add per-pixel, per-channel normal noise: variance drawn from ``var_limit`` (0-255 units squared),
    mean ``mean``; then clip to 0..255."""
    tf = _tf()
    var_seed, noise_seed = seeds(seed, 2)
    sigma = tf.sqrt(uniform(var_seed, params["var_limit"]))
    noise = tf.random.stateless_normal(tf.shape(image), seed=noise_seed, mean=float(params["mean"]), stddev=sigma)
    return _clip(image + noise)


def hue_saturation_value(image: Any, params: dict, seed: Any) -> Any:
    """Shift hue, saturation and value as albumentations does on 8-bit images: hue in OpenCV's units
    (180 a full turn), saturation and value in 0..255 units, clipped. A grey image gets the value shift only."""
    tf = _tf()
    hue_seed, sat_seed, val_seed = seeds(seed, 3)
    hue = uniform(hue_seed, params["hue_shift_limit"]) / 180.0
    sat = uniform(sat_seed, params["sat_shift_limit"]) / 255.0
    val = uniform(val_seed, params["val_shift_limit"])

    def rgb(pixels: Any) -> Any:
        h, s, v = tf.unstack(tf.image.rgb_to_hsv(pixels / 255.0), axis=-1)
        h = tf.math.floormod(h + hue, 1.0)
        s = tf.clip_by_value(s + sat, 0.0, 1.0)
        v = tf.clip_by_value(v + val / 255.0, 0.0, 1.0)
        return _clip(tf.image.hsv_to_rgb(tf.stack([h, s, v], axis=-1)) * 255.0)

    return _by_channels(image, lambda pixels: _clip(pixels + val), rgb)


def random_brightness(image: Any, params: dict, seed: Any) -> Any:
    """Add a fraction of full scale drawn from ``limit`` (0.2 adds 51 grey levels), as albumentations'
    brightness (by max)."""
    return _clip(image + uniform(seed, params["limit"]) * 255.0)


def random_contrast(image: Any, params: dict, seed: Any) -> Any:
    """Scale each channel about its mean by 1 + a factor drawn from ``limit``, as tf.image.adjust_contrast.

    (albumentations scales about 0, which also darkens or brightens; about the mean only contrast changes.)
    """
    tf = _tf()
    mean = tf.reduce_mean(image, axis=[0, 1], keepdims=True)
    return _clip((image - mean) * (1.0 + uniform(seed, params["limit"])) + mean)


def random_gamma(image: Any, params: dict, seed: Any) -> Any:
    """Raise to a power drawn from ``gamma_limit`` / 100 (albumentations' units): 255 * (x / 255) ** gamma;
    gamma > 1 darkens, < 1 brightens."""
    tf = _tf()
    gamma = uniform(seed, params["gamma_limit"]) / 100.0
    return _clip(255.0 * tf.pow(image / 255.0, gamma))
