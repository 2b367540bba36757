"""Detection metrics against hand-computed cases and against pycocotools on the same predictions."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from eiq_lab.errors import InputError
from eiq_lab.evaluate import ImageBoxes, detection_metrics


def test_a_hand_computed_voc_case():
    # one class, 3 ground-truth boxes over two images; 4 detections:
    #   0.9 hits box A (TP), 0.8 hits box A again (FP: a duplicate), 0.7 misses (FP), 0.6 hits box C (TP)
    truth = [
        ImageBoxes([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0]),  # A, B (B is never found)
        ImageBoxes([[0, 0, 10, 10]], [0]),  # C
    ]
    predictions = [
        ImageBoxes([[0, 0, 10, 10], [0, 0, 10, 9], [50, 50, 60, 60]], [0, 0, 0], [0.9, 0.8, 0.7]),
        ImageBoxes([[0, 1, 10, 10]], [0], [0.6]),
    ]
    report = detection_metrics(truth, predictions, ["shape"])
    precision, recall = report.curves["shape"]
    np.testing.assert_allclose(precision, [1, 1 / 2, 1 / 3, 2 / 4])
    np.testing.assert_allclose(recall, [1 / 3, 1 / 3, 1 / 3, 2 / 3])
    # all-point: recall 0..1/3 at precision 1, 1/3..2/3 at the envelope 0.5
    assert report.map50 == pytest.approx(1 / 3 * 1 + 1 / 3 * 0.5)
    assert report.per_class["shape"] == {
        "ground_truth": 3,
        "detections": 4,
        "ap50": pytest.approx(0.5),
        "coco_ap": report.per_class["shape"]["coco_ap"],
    }
    # COCO at 0.5: 101 points; recall 0..0.33 (34 points) at 1, 0.34..0.66 (33 points) at 0.5, rest 0
    perfect_iou_only = detection_metrics(truth[:1], [ImageBoxes([[0, 0, 10, 10]], [0], [1.0])], ["shape"])
    assert perfect_iou_only.per_class["shape"]["coco_ap"] == pytest.approx(51 / 101)  # recall 0.5 at every IoU


def test_perfect_predictions_score_one_and_classes_without_truth_are_left_out():
    truth = [ImageBoxes([[0.1, 0.1, 0.5, 0.5]], [0]), ImageBoxes([[0.2, 0.2, 0.9, 0.6]], [1])]
    predictions = [ImageBoxes(t.boxes, t.classes, [0.9]) for t in truth]
    report = detection_metrics(truth, predictions, ["circle", "square", "star"])
    assert report.map50 == 1.0 and report.coco_map == 1.0
    assert report.per_class["star"]["ap50"] is None


def test_bad_input_is_named():
    with pytest.raises(InputError, match="2 images of ground truth but 1"):
        detection_metrics([ImageBoxes([], []), ImageBoxes([], [])], [ImageBoxes([], [], [])], ["a"])
    with pytest.raises(InputError, match=r"class index 3 outside 0\.\.1"):
        detection_metrics([ImageBoxes([[0, 0, 1, 1]], [3])], [ImageBoxes([], [], [])], ["a", "b"])
    with pytest.raises(InputError, match="2 boxes, 1 classes"):
        detection_metrics([ImageBoxes([[0, 0, 1, 1], [0, 0, 1, 1]], [0])], [ImageBoxes([], [], [])], ["a"])


def _random_case(rng, images=60, classes=3):
    truth, predictions = [], []
    for _ in range(images):
        n = rng.integers(0, 6)
        corner = rng.uniform(0, 80, (n, 2))
        size = rng.uniform(5, 40, (n, 2))
        boxes = np.concatenate([corner, corner + size], axis=1)
        labels = rng.integers(0, classes, n)
        truth.append(ImageBoxes(boxes, labels))
        # jittered copies of some boxes, some with the wrong class, plus pure false positives
        keep = rng.random(n) < 0.8
        jitter = boxes[keep] + rng.normal(0, 1.5, (int(keep.sum()), 4))
        wrong = np.where(rng.random(int(keep.sum())) < 0.1, (labels[keep] + 1) % classes, labels[keep])
        m = rng.integers(0, 4)
        noise_corner = rng.uniform(0, 80, (m, 2))
        noise = np.concatenate([noise_corner, noise_corner + rng.uniform(5, 40, (m, 2))], axis=1)
        predicted = np.concatenate([jitter, noise])
        predictions.append(
            ImageBoxes(predicted, np.concatenate([wrong, rng.integers(0, classes, m)]), rng.random(len(predicted)))
        )
    return truth, predictions


def _pycocotools_map(truth, predictions, classes):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def xywh(box):
        ymin, xmin, ymax, xmax = (float(v) for v in box)
        return [xmin, ymin, xmax - xmin, ymax - ymin]

    annotations, results = [], []
    for image, (t, p) in enumerate(zip(truth, predictions), 1):
        for box, label in zip(np.asarray(t.boxes).reshape(-1, 4), t.classes):
            x, y, w, h = xywh(box)
            annotations.append(
                {"id": len(annotations) + 1, "image_id": image, "category_id": int(label) + 1, "bbox": [x, y, w, h],
                 "area": w * h, "iscrowd": 0}
            )  # fmt: skip
        for box, label, score in zip(np.asarray(p.boxes).reshape(-1, 4), p.classes, p.scores):
            results.append({"image_id": image, "category_id": int(label) + 1, "bbox": xywh(box), "score": float(score)})
    ground = COCO()
    ground.dataset = {
        "images": [{"id": i} for i in range(1, len(truth) + 1)],
        "annotations": annotations,
        "categories": [{"id": k + 1, "name": name} for k, name in enumerate(classes)],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        ground.createIndex()
        evaluation = COCOeval(ground, ground.loadRes(results), "bbox")
        evaluation.params.areaRng = [[0, 1e10]]
        evaluation.params.areaRngLbl = ["all"]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, -1]  # [T, R, K] at area all, 100 detections
    per_iou = [precision[t][precision[t] > -1].mean() for t in range(precision.shape[0])]
    return float(np.mean(precision[precision > -1])), per_iou


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coco_map_agrees_with_pycocotools(seed):
    truth, predictions = _random_case(np.random.default_rng(seed))
    classes = ["a", "b", "c"]
    theirs, theirs_per_iou = _pycocotools_map(truth, predictions, classes)
    ours = detection_metrics(truth, predictions, classes)
    assert ours.coco_map == pytest.approx(theirs, abs=1e-9)
    assert 0.15 < ours.coco_map < 0.9  # a case that exercises misses, duplicates and wrong classes
    # at IoU 0.5 the two interpolations differ only by the 101-point sampling
    assert ours.map50 == pytest.approx(theirs_per_iou[0], abs=0.03)
