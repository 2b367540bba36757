"""Detection metrics over a set of images: mAP@0.5 with all-point interpolation (PASCAL VOC 2010 and
later), COCO mAP@[.5:.95] with 101 recall points (as pycocotools), per-class AP and the
precision-recall curve at IoU 0.5.

Matching follows each benchmark. Detections are taken in descending score order per image; VOC
matches a detection to the ground-truth box it overlaps most and counts a second detection of a box
as a false positive; COCO matches it to the best-overlapping box not yet matched at that IoU
threshold, and keeps at most `max_detections` per image and class (100, as COCO). IoU is computed on
continuous coordinates for both (VOC's devkit adds one pixel to widths, which has no meaning for
normalised boxes). Classes without ground truth have no AP and are left out of the means, as both
benchmarks do.

All images are matched at once, one detection rank at a time, in arrays [images, thresholds, boxes]:
10,000 images of predictions take well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError

#: COCO's IoU thresholds: 0.5, 0.55, ..., 0.95.
COCO_IOUS = np.linspace(0.5, 0.95, 10)
_RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass
class ImageBoxes:
    """Boxes of one image: ground truth (no scores) or predictions.

    Attributes:
        boxes: float [N, 4] as (ymin, xmin, ymax, xmax), normalised or in pixels (the same for all).
        classes: int [N] class indices.
        scores: float [N] confidences (predictions only).
    """

    boxes: Any
    classes: Any
    scores: Any = None

    def arrays(self, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4) if len(self.boxes) else np.zeros((0, 4))
        classes = np.asarray(self.classes, np.int64).reshape(-1)
        scores = np.ones(len(classes)) if self.scores is None else np.asarray(self.scores, np.float64).reshape(-1)
        if len(boxes) != len(classes) or len(scores) != len(classes):
            raise InputError(
                f"{what}: {len(boxes)} boxes, {len(classes)} classes and {len(scores)} scores; they must match"
            )
        if len(boxes) and not np.isfinite(boxes).all():
            raise InputError(f"{what}: boxes must be finite numbers")
        return boxes, classes, scores


@dataclass
class DetectionReport:
    """What `detection_metrics` measured.

    Attributes:
        map50: mean over classes of the VOC all-point AP at IoU 0.5.
        coco_map: mean over classes and COCO_IOUS of the COCO 101-point AP.
        per_class: class name -> {"ap50", "coco_ap", "ground_truth", "detections"} (APs ``None``
            for a class without ground truth).
        curves: class name -> (precision, recall) arrays at IoU 0.5, in descending score order.
    """

    map50: float
    coco_map: float
    per_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"task": "detection", "map50": self.map50, "coco_map": self.coco_map, "per_class": self.per_class}


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [..., D, 4] against b [..., G, 4] -> [..., D, G]."""
    a, b = a[..., :, None, :], b[..., None, :, :]
    h = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    w = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = h * w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    union = area_a + area_b - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def _pad(rows: list[np.ndarray], width: int, fill: float, tail: tuple[int, ...] = ()) -> np.ndarray:
    out = np.full((len(rows), width, *tail), fill, dtype=np.float64)
    for i, row in enumerate(rows):
        out[i, : len(row)] = row
    return out


def _match(truth: list, predicted: list, thresholds: np.ndarray, voc: bool) -> tuple[np.ndarray, ...]:
    """Match the predictions of every image; returns flat (image, class, score, matched [T]) arrays."""
    images = len(truth)
    g_max = max((len(t[0]) for t in truth), default=0)
    d_max = max((len(p[0]) for p in predicted), default=0)
    gt_boxes = _pad([t[0] for t in truth], g_max, 0.0, (4,))
    gt_classes = _pad([t[1] for t in truth], g_max, -1).astype(np.int64)
    # predictions per image in descending score (stable: input order among equal scores)
    orders = [np.argsort(-p[2], kind="mergesort") for p in predicted]
    dt_boxes = _pad([p[0][o] for p, o in zip(predicted, orders)], d_max, 0.0, (4,))
    dt_classes = _pad([p[1][o] for p, o in zip(predicted, orders)], d_max, -2).astype(np.int64)
    dt_scores = _pad([p[2][o] for p, o in zip(predicted, orders)], d_max, -np.inf)
    ious = _iou(dt_boxes, gt_boxes)  # [I, D, G]
    same = dt_classes[:, :, None] == gt_classes[:, None, :]
    ious = np.where(same, ious, -1.0)
    t_count = len(thresholds)
    limits = np.minimum(thresholds, 1 - 1e-10)[None, :, None]
    taken = np.zeros((images, t_count, g_max), bool)
    matched = np.zeros((images, d_max, t_count), bool)
    rows = np.arange(images)
    for d in range(d_max):
        overlap = ious[:, d, :]  # [I, G]
        if not g_max:
            break
        if voc:  # the most-overlapping box of the class; a second detection of it is a false positive
            best = np.argmax(overlap, axis=1)
            best_iou = overlap[rows, best]
            free = ~taken[rows, :, best]  # [I, T]
            hit = (best_iou[:, None] >= limits[..., 0]) & free
            taken[rows[:, None], np.arange(t_count)[None, :], best[:, None]] |= hit
        else:  # the most-overlapping box not matched yet at this threshold
            candidates = np.where(taken, -1.0, overlap[:, None, :])  # [I, T, G]
            best = np.argmax(candidates, axis=2)
            best_iou = np.take_along_axis(candidates, best[..., None], axis=2)[..., 0]
            hit = best_iou >= limits[..., 0]
            np.put_along_axis(
                taken, best[..., None], (hit | np.take_along_axis(taken, best[..., None], 2)[..., 0])[..., None], axis=2
            )
        matched[:, d, :] = hit
    real = dt_classes >= 0
    image_index = np.broadcast_to(rows[:, None], real.shape)
    return image_index[real], dt_classes[real], dt_scores[real], matched[real]


def _voc_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """All-point interpolated AP (VOC 2010+): the area under the precision envelope."""
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.concatenate([[0.0], precision, [0.0]])
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _coco_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """101-point interpolated AP (pycocotools): the envelope read at recall 0, 0.01, ..., 1 (0 past the
    highest recall reached)."""
    if not len(precision):
        return 0.0
    envelope = np.append(np.maximum.accumulate(precision[::-1])[::-1], 0.0)
    at = np.searchsorted(recall, _RECALL_POINTS, side="left")
    return float(np.mean(envelope[np.minimum(at, len(precision))]))


def _curve(scores: np.ndarray, hits: np.ndarray, positives: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(-scores, kind="mergesort")
    tp = np.cumsum(hits[order])
    fp = np.cumsum(~hits[order])
    return tp / np.maximum(tp + fp, np.finfo(float).eps), tp / positives


def detection_metrics(
    truth: Sequence[ImageBoxes],
    predictions: Sequence[ImageBoxes],
    classes: Sequence[str],
    *,
    max_detections: int = 100,
) -> DetectionReport:
    """VOC mAP@0.5, COCO mAP@[.5:.95], per-class AP and PR curves of predictions against ground truth.

    Args:
        truth: ground-truth boxes per image.
        predictions: predicted boxes (with scores) per image, in the same order.
        classes: class names by index.
        max_detections: COCO keeps this many highest-scoring detections per image and class.

    Raises:
        InputError: different numbers of images, mismatched arrays, or a class index out of range.
    """
    if len(truth) != len(predictions):
        raise InputError(f"{len(truth)} images of ground truth but {len(predictions)} of predictions")
    gt = [t.arrays(f"ground truth of image {i + 1}") for i, t in enumerate(truth)]
    dt = [p.arrays(f"predictions of image {i + 1}") for i, p in enumerate(predictions)]
    for what, rows in (("ground truth", gt), ("predictions", dt)):
        for i, (_, cls, _) in enumerate(rows):
            if len(cls) and (cls.min() < 0 or cls.max() >= len(classes)):
                raise InputError(f"{what} of image {i + 1}: class index {int(cls.max())} outside 0..{len(classes) - 1}")
    coco_dt = [_top_per_class(p, max_detections) for p in dt]
    _, voc_cls, voc_scores, voc_hits = _match(gt, dt, np.array([0.5]), voc=True)
    _, coco_cls, coco_scores, coco_hits = _match(gt, coco_dt, COCO_IOUS, voc=False)
    positives = np.bincount(np.concatenate([g[1] for g in gt]) if gt else np.zeros(0, np.int64), minlength=len(classes))
    per_class: dict[str, dict[str, Any]] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    ap50s, coco_aps = [], []
    for k, name in enumerate(classes):
        mine = voc_cls == k
        entry: dict[str, Any] = {
            "ground_truth": int(positives[k]),
            "detections": int(mine.sum()),
            "ap50": None,
            "coco_ap": None,
        }
        if positives[k]:
            precision, recall = _curve(voc_scores[mine], voc_hits[mine, 0], int(positives[k]))
            curves[name] = (precision, recall)
            entry["ap50"] = _voc_ap(precision, recall)
            theirs = coco_cls == k
            per_iou = [
                _coco_ap(*_curve(coco_scores[theirs], coco_hits[theirs, t], int(positives[k])))
                for t in range(len(COCO_IOUS))
            ]
            entry["coco_ap"] = float(np.mean(per_iou))
            ap50s.append(entry["ap50"])
            coco_aps.append(entry["coco_ap"])
        per_class[name] = entry
    return DetectionReport(
        float(np.mean(ap50s)) if ap50s else 0.0, float(np.mean(coco_aps)) if coco_aps else 0.0, per_class, curves
    )


def _top_per_class(rows: tuple[np.ndarray, np.ndarray, np.ndarray], limit: int) -> tuple[np.ndarray, ...]:
    boxes, classes, scores = rows
    if len(scores) <= limit:
        return rows
    keep = np.zeros(len(scores), bool)
    for k in np.unique(classes):
        index = np.nonzero(classes == k)[0]
        keep[index[np.argsort(-scores[index], kind="mergesort")[:limit]]] = True
    return boxes[keep], classes[keep], scores[keep]
