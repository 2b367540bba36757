"""Boxes of SSD-style detectors: anchors, IoU, the training-target encoder, the decoder and non-maximum suppression.

Numpy only: the trainer (in its input threads), the evaluator, the exporter and the runner use it without
TensorFlow.

Conventions: boxes are (ymin, xmin, ymax, xmax) normalised to 0..1; anchors are (cy, cx, h, w) normalised, the
layout of TFLite's Detection_PostProcess and eIQ's ``anchor_boxes.npy``. A row of the model's output (and of an
encoded target) holds 4 box offsets then ``num_classes + 1`` class values, background first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import InputError

#: Divisors of the encoded offsets (ty, tx, th, tw), as in the SSD paper and TFLite's Detection_PostProcess.
VARIANCES = (0.1, 0.1, 0.2, 0.2)
#: Aspect ratios (width / height) of the anchors at every location; 1.0 must be first.
ASPECT_RATIOS = (1.0, 2.0, 0.5)
#: Anchor scales grow linearly from the first feature map to the last (SSD paper, section 2.2).
MIN_SCALE, MAX_SCALE = 0.2, 0.95
#: The extra small square anchor of the first feature map (see `anchor_shapes`).
FIRST_MAP_SCALE = 0.1
#: An anchor matched with at least this IoU is positive; below NEGATIVE_IOU it is background; between: ignored.
POSITIVE_IOU, NEGATIVE_IOU = 0.5, 0.4
#: Candidates per class that enter non-maximum suppression (the highest scores); keeps decoding fast.
NMS_CANDIDATES = 200
#: Largest decoded log-scale of a box against its anchor (a box 62x its anchor): keeps exp() finite.
MAX_LOG_SCALE = math.log(1000.0 / 16.0)


# -- anchors ---------------------------------------------------------------------------------------------


def ssd_scales(num_maps: int, min_scale: float = MIN_SCALE, max_scale: float = MAX_SCALE) -> list[float]:
    """Anchor scale s_k of each of `num_maps` feature maps: linear from `min_scale` to `max_scale`.

    Raises:
        InputError: `num_maps` is not a positive integer.
    """
    if isinstance(num_maps, bool) or not isinstance(num_maps, int) or num_maps < 1:
        raise InputError(f"num_maps must be a positive integer; received {num_maps!r}")
    if num_maps == 1:
        return [float(min_scale)]
    return [min_scale + (max_scale - min_scale) * k / (num_maps - 1) for k in range(num_maps)]


def anchor_shapes(
    num_maps: int, min_scale: float = MIN_SCALE, max_scale: float = MAX_SCALE, reduce_first: bool = True
) -> list[list[tuple[float, float]]]:
    """The (h, w) of the anchors at one location of each feature map, in the order the model predicts them.

    Map k has scale s_k (`ssd_scales`): aspect ratios 1, 2 and 1/2 (h = s/sqrt(a), w = s*sqrt(a)) and an extra
    square of side sqrt(s_k * s_{k+1}) (s after the last map is 1.0): 4 anchors per location. The first map,
    the finest, has 3 when `reduce_first` (as the original SSD and TensorFlow's SSD MobileNets): a small square
    of side 0.1 (`FIRST_MAP_SCALE`) and s_0 at aspect 2 and 1/2, so small objects get an anchor of their size.

    Returns:
        One list of (h, w) per feature map, normalised to the image.
    """
    scales = [*ssd_scales(num_maps, min_scale, max_scale), 1.0]
    shapes = []
    for k in range(num_maps):
        scale = scales[k]
        ratios = [(scale / math.sqrt(a), scale * math.sqrt(a)) for a in ASPECT_RATIOS]
        if k == 0 and reduce_first:
            shapes.append([(FIRST_MAP_SCALE, FIRST_MAP_SCALE), *ratios[1:]])
        else:
            extra = math.sqrt(scale * scales[k + 1])
            shapes.append([*ratios, (extra, extra)])
    return shapes


def grid_anchors(
    feature_maps: Sequence[tuple[int, int]],
    min_scale: float = MIN_SCALE,
    max_scale: float = MAX_SCALE,
    reduce_first: bool = True,
) -> np.ndarray:
    """Anchors (cy, cx, h, w) of every location of every feature map, row by row, the shapes of `anchor_shapes`.

    The centre of cell (i, j) of an H x W map is ((i + 0.5) / H, (j + 0.5) / W). Sizes are not clipped to the
    image: the widest anchors of the last maps reach past it, as in SSD.

    Args:
        feature_maps: (height, width) of each map, finest first.
        min_scale: scale of the first map.
        max_scale: scale of the last map.
        reduce_first: 3 anchors per location on the first map instead of 4 (see `anchor_shapes`).

    Returns:
        float32 array [A, 4]: map by map, location by location (row-major), anchor shape by shape.

    Raises:
        InputError: a map size that is not two positive integers.
    """
    sizes = []
    for size in feature_maps:
        try:
            height, width = (int(v) for v in size)
        except (TypeError, ValueError):
            raise InputError(f"a feature map size must be (height, width); received {size!r}") from None
        if height < 1 or width < 1:
            raise InputError(f"a feature map size must be two positive integers; received {size!r}")
        sizes.append((height, width))
    if not sizes:
        raise InputError("grid_anchors needs at least one feature map size; received none")
    parts = []
    for (height, width), shapes in zip(sizes, anchor_shapes(len(sizes), min_scale, max_scale, reduce_first)):
        cy, cx = np.meshgrid((np.arange(height) + 0.5) / height, (np.arange(width) + 0.5) / width, indexing="ij")
        hw = np.asarray(shapes, dtype=np.float64)  # [K, 2]
        grid = np.empty((height, width, len(shapes), 4), dtype=np.float64)
        grid[..., 0] = cy[:, :, None]
        grid[..., 1] = cx[:, :, None]
        grid[..., 2] = hw[:, 0]
        grid[..., 3] = hw[:, 1]
        parts.append(grid.reshape(-1, 4))
    return np.concatenate(parts).astype(np.float32)


# -- numpy box arithmetic --------------------------------------------------------------------------------


def _boxes_array(boxes: Any, what: str) -> np.ndarray:
    array = np.asarray(boxes, dtype=np.float32)
    if array.ndim == 1 and array.size == 0:
        array = array.reshape(0, 4)
    if array.ndim != 2 or array.shape[1] != 4:
        raise InputError(f"{what} must be an array [N, 4]; received shape {array.shape}")
    return array


def to_corners(anchors: Any) -> np.ndarray:
    """(cy, cx, h, w) -> (ymin, xmin, ymax, xmax), float32 [N, 4]."""
    a = _boxes_array(anchors, "anchors")
    half = a[:, 2:] / 2
    return np.concatenate([a[:, :2] - half, a[:, :2] + half], axis=1)


def iou(a: Any, b: Any) -> np.ndarray:
    """Intersection over union of every box of `a` with every box of `b` (corner form).

    Args:
        a: [N, 4] boxes (ymin, xmin, ymax, xmax).
        b: [M, 4] boxes.

    Returns:
        float32 [N, M]; 0 where the union is empty (two degenerate boxes).

    Raises:
        InputError: an input is not [N, 4].
    """
    a, b = _boxes_array(a, "a"), _boxes_array(b, "b")
    top = np.maximum(a[:, None, 0], b[None, :, 0])
    left = np.maximum(a[:, None, 1], b[None, :, 1])
    bottom = np.minimum(a[:, None, 2], b[None, :, 2])
    right = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(bottom - top, 0, None) * np.clip(right - left, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0).astype(np.float32)


def decode_offsets(offsets: Any, anchors: Any, variances: Sequence[float] = VARIANCES) -> np.ndarray:
    """Offsets (ty, tx, th, tw) relative to `anchors` -> boxes (ymin, xmin, ymax, xmax), not clipped.

    The inverse of the encoding in `encode_boxes`: cy = ty*v0*ah + ay, h = exp(th*v2)*ah (the log-scale is
    capped at `MAX_LOG_SCALE` so wild outputs stay finite).

    Args:
        offsets: [..., A, 4].
        anchors: [A, 4] (cy, cx, h, w).
        variances: the four divisors used when encoding.

    Returns:
        float32 [..., A, 4].
    """
    t = np.asarray(offsets, dtype=np.float64)
    a = _boxes_array(anchors, "anchors").astype(np.float64)
    v = np.asarray(variances, dtype=np.float64)
    cy = t[..., 0] * v[0] * a[:, 2] + a[:, 0]
    cx = t[..., 1] * v[1] * a[:, 3] + a[:, 1]
    h = np.exp(np.minimum(t[..., 2] * v[2], MAX_LOG_SCALE)) * a[:, 2]
    w = np.exp(np.minimum(t[..., 3] * v[3], MAX_LOG_SCALE)) * a[:, 3]
    return np.stack([cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2], axis=-1).astype(np.float32)


def nms(boxes: Any, scores: Any, iou_threshold: float = 0.5, max_output: int | None = None) -> np.ndarray:
    """Greedy non-maximum suppression: indices of the boxes kept, highest score first.

    A box is dropped when its IoU with a kept box of higher score is above `iou_threshold`. The IoU of all
    pairs is computed at once, so call it with a bounded number of boxes (`decode` takes the top
    `NMS_CANDIDATES` of each class).

    Args:
        boxes: [N, 4] corner boxes.
        scores: [N].
        iou_threshold: overlap above which the lower-scoring box goes.
        max_output: keep at most this many (None: all survivors).

    Returns:
        int64 indices into `boxes`.
    """
    boxes = _boxes_array(boxes, "boxes")
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    order = np.argsort(-scores, kind="stable")
    overlaps = iou(boxes[order], boxes[order])
    suppressed = np.zeros(len(order), dtype=bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(i)
        if max_output is not None and len(keep) >= max_output:
            break
        suppressed |= overlaps[i] > iou_threshold
    return order[np.asarray(keep, dtype=np.int64)]


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def decode(
    raw: Any,
    anchors: Any,
    score_threshold: float = 0.3,
    iou_threshold: float = 0.5,
    max_detections: int = 20,
    variances: Sequence[float] = VARIANCES,
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Turn the model's raw output into boxes, scores and classes (numpy; runs outside the model's graph).

    Per image: offsets are decoded against the anchors and clipped to 0..1, a softmax turns the class logits
    into probabilities, and for each class the anchors scoring at least `score_threshold` (the top
    `NMS_CANDIDATES` of them) go through greedy NMS. The survivors of all classes are sorted by score and the
    first `max_detections` returned.

    Args:
        raw: the model's output, LOGITS (not probabilities): [A, 4 + 1 + C] for one image or [B, A, 4 + 1 + C].
        anchors: [A, 4] (cy, cx, h, w), in the order of the output's rows.
        score_threshold: lowest class probability kept.
        iou_threshold: NMS overlap above which the lower-scoring box of a class is dropped.
        max_detections: most boxes returned per image.
        variances: the divisors the offsets were encoded with.

    Returns:
        For one image ``(boxes [n, 4] float32 (ymin, xmin, ymax, xmax) in 0..1, scores [n] float32, classes [n]
        int64 0-based, background excluded)``, highest score first; for a batch a list of those.

    Raises:
        InputError: `raw` does not fit the anchors, or a threshold or `max_detections` is out of range.
    """
    values = np.asarray(raw, dtype=np.float32)
    anchors = _boxes_array(anchors, "anchors")
    if values.ndim not in (2, 3) or values.shape[-2] != len(anchors) or values.shape[-1] < 6:
        raise InputError(
            f"raw detections must be [A, 4 + 1 + C] or [B, A, 4 + 1 + C] with A = {len(anchors)} anchors and "
            f"C >= 1; received shape {values.shape}"
        )
    for name, value in (("score_threshold", score_threshold), ("iou_threshold", iou_threshold)):
        if not 0.0 <= float(value) <= 1.0:
            raise InputError(f"{name} must be between 0 and 1; received {value!r}")
    if isinstance(max_detections, bool) or int(max_detections) != max_detections or max_detections < 1:
        raise InputError(f"max_detections must be a positive integer; received {max_detections!r}")
    batch = values if values.ndim == 3 else values[None]
    boxes = np.clip(decode_offsets(batch[..., :4], anchors, variances), 0.0, 1.0)
    probabilities = _softmax(batch[..., 4:].astype(np.float64)).astype(np.float32)
    results = [
        _select(boxes[i], probabilities[i, :, 1:], score_threshold, iou_threshold, int(max_detections))
        for i in range(len(batch))
    ]
    return results if values.ndim == 3 else results[0]


def _select(
    boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float, max_detections: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class NMS of one image; `scores` [A, C] without the background column."""
    kept_boxes, kept_scores, kept_classes = [], [], []
    for label in range(scores.shape[1]):
        column = scores[:, label]
        candidates = np.flatnonzero(column >= score_threshold)
        if candidates.size == 0:
            continue
        if candidates.size > NMS_CANDIDATES:
            top = np.argpartition(-column[candidates], NMS_CANDIDATES - 1)[:NMS_CANDIDATES]
            candidates = candidates[top]
        keep = candidates[nms(boxes[candidates], column[candidates], iou_threshold, max_detections)]
        kept_boxes.append(boxes[keep])
        kept_scores.append(column[keep])
        kept_classes.append(np.full(len(keep), label, dtype=np.int64))
    if not kept_boxes:
        return np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int64)
    all_boxes, all_scores = np.concatenate(kept_boxes), np.concatenate(kept_scores)
    all_classes = np.concatenate(kept_classes)
    order = np.argsort(-all_scores, kind="stable")[:max_detections]
    return all_boxes[order], all_scores[order], all_classes[order]


# -- the training-target encoder ---------------------------------------------------------------


def encode_boxes(
    boxes: Any,
    classes: Any,
    anchors: Any,
    num_classes: int,
    variances: Sequence[float] = VARIANCES,
    positive_iou: float = POSITIVE_IOU,
    negative_iou: float = NEGATIVE_IOU,
) -> Any:
    """The training target of one image: per anchor its box offsets and its class, as the model predicts them.

    Each anchor is matched to the ground-truth box it overlaps most. It is positive when that IoU is at least
    `positive_iou`; besides, every ground-truth box makes its own best-overlapping anchor positive (so a small
    or oddly shaped object always has one). An anchor below `negative_iou` is background; one in between is
    ignored. Offsets of positives are encoded as in SSD: ((gy-ay)/ah/v0, (gx-ax)/aw/v1, log(gh/ah)/v2,
    log(gw/aw)/v3) with (gy, gx, gh, gw) the box centre and size; other rows have zero offsets.

    The class part is one-hot over ``num_classes + 1`` (index 0 = background, class c at c + 1); an ignored
    anchor has an ALL-ZERO class vector, which the loss reads as "contributes nothing".

    Boxes with zero or negative height or width (or non-finite coordinates) are treated as absent: they should
    have been dropped before, and they would give infinite log-sizes (all-zero rows used as padding are dropped
    the same way). No boxes at all (N = 0) gives an all-background target. Numpy (~0.1 ms for a few hundred
    anchors): the trainer runs it in its low-priority input threads, with the augmentation.

    Args:
        boxes: [N, 4] float (ymin, xmin, ymax, xmax) normalised to 0..1.
        classes: [N] int, 0-based.
        anchors: [A, 4] numpy array (cy, cx, h, w), a constant of the model.
        num_classes: C, the number of object classes.
        variances: offset divisors (v0, v1, v2, v3).
        positive_iou: lowest IoU of a positive anchor.
        negative_iou: IoU below which an anchor is background.

    Returns:
        A float32 array [A, 4 + 1 + C].

    Raises:
        InputError: bad anchors, `num_classes`, variances or thresholds, or a class outside 0..C-1.
    """
    anchors = _boxes_array(anchors, "anchors")
    if len(anchors) == 0 or not np.all(anchors[:, 2:] > 0):
        raise InputError(
            f"anchors must be a non-empty [A, 4] array of (cy, cx, h, w) with h, w > 0; got {anchors.shape}"
        )
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
        raise InputError(f"num_classes must be a positive integer; received {num_classes!r}")
    if len(variances) != 4 or min(variances) <= 0:
        raise InputError(f"variances must be four positive numbers; received {variances!r}")
    if not 0.0 < negative_iou <= positive_iou <= 1.0:
        raise InputError(
            "the IoU thresholds must satisfy 0 < negative_iou <= positive_iou <= 1; received "
            f"negative_iou={negative_iou!r}, positive_iou={positive_iou!r}"
        )
    num_classes = int(num_classes)
    boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
    classes = np.asarray(classes).reshape(-1).astype(np.int64)
    if len(classes) != len(boxes):
        raise InputError(f"{len(boxes)} boxes and {len(classes)} classes; they must match")
    if len(classes) and (classes.min() < 0 or classes.max() >= num_classes):
        raise InputError(f"box classes must be from 0 to num_classes - 1 ({num_classes - 1}); received {classes}")
    with np.errstate(invalid="ignore"):
        valid = np.all(boxes[:, 2:] - boxes[:, :2] > 0, axis=1) & np.all(np.isfinite(boxes), axis=1)
    boxes, classes = boxes[valid], classes[valid]
    target = np.zeros((len(anchors), 4 + 1 + num_classes), np.float32)
    target[:, 4] = 1.0  # background, unless matched or ignored below
    if not len(boxes):
        return target
    overlaps = iou(to_corners(anchors), boxes)  # [A, N]
    matched = overlaps.argmax(axis=1)
    best_iou = overlaps[np.arange(len(anchors)), matched]
    # every ground truth owns its best anchor; an anchor that is the best of several goes to the one it
    # overlaps most (the later-written owner of an anchor is overwritten only by a larger overlap)
    best_anchor = overlaps.argmax(axis=0)  # [N]
    forced = np.zeros(len(anchors), bool)
    for n in np.argsort(overlaps[best_anchor, np.arange(len(boxes))], kind="stable"):
        if overlaps[best_anchor[n], n] > 0:
            forced[best_anchor[n]] = True
            matched[best_anchor[n]] = n
    positive = forced | (best_iou >= positive_iou)
    ignored = ~positive & (best_iou >= negative_iou)
    g = boxes[matched[positive]]
    a = anchors[positive]
    v = np.asarray(variances, np.float32)
    target[positive, :2] = ((g[:, :2] + g[:, 2:]) / 2 - a[:, :2]) / a[:, 2:] / v[:2]
    target[positive, 2:4] = np.log((g[:, 2:] - g[:, :2]) / a[:, 2:]) / v[2:]
    target[positive, 4] = 0.0
    target[np.flatnonzero(positive), 5 + classes[matched[positive]]] = 1.0
    target[ignored, 4:] = 0.0
    return target
