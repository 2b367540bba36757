"""Anchors, IoU, the SSD target encoder, the decoder and NMS, against values worked out by hand (or by numpy
IoU for the encoder's matching)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from eiq_lab.errors import InputError
from eiq_lab.models import boxes
from eiq_lab.models.boxes import decode, encode_boxes, grid_anchors, iou, nms

#: The feature maps of a 96 px ssd_mobilenet_v2: strides 16 and 32, then two extra layers.
MAPS_96 = [(6, 6), (3, 3), (2, 2), (1, 1)]


@pytest.fixture(scope="module")
def anchors():
    return grid_anchors(MAPS_96)


def corners(anchor):
    """(cy, cx, h, w) -> (ymin, xmin, ymax, xmax), written out."""
    cy, cx, h, w = (float(v) for v in anchor)
    return [cy - h / 2, cx - w / 2, cy + h / 2, cx + w / 2]


# -- anchors ---------------------------------------------------------------------------------------------


def test_anchor_count_and_grid(anchors):
    # 3 anchors per cell on the first map, 4 on the others
    assert anchors.shape == (6 * 6 * 3 + 3 * 3 * 4 + 2 * 2 * 4 + 1 * 4, 4) == (164, 4)
    assert anchors.dtype == np.float32
    first = anchors[:108].reshape(6, 6, 3, 4)
    for i in range(6):
        for j in range(6):
            np.testing.assert_allclose(first[i, j, :, 0], (i + 0.5) / 6, rtol=1e-6)
            np.testing.assert_allclose(first[i, j, :, 1], (j + 0.5) / 6, rtol=1e-6)
    second = anchors[108:144].reshape(3, 3, 4, 4)
    np.testing.assert_allclose(second[2, 1, 0, :2], [2.5 / 3, 1.5 / 3], rtol=1e-6)
    np.testing.assert_allclose(anchors[-4:, :2], 0.5)
    assert np.all((anchors[:, :2] > 0) & (anchors[:, :2] < 1)) and np.all(anchors[:, 2:] > 0)
    assert np.all(anchors[:, 2:] <= 0.95 * math.sqrt(2) + 1e-6)  # the widest: scale 0.95 at aspect 2
    assert np.array_equal(grid_anchors(MAPS_96), anchors)  # deterministic


def test_anchor_shapes_follow_the_ssd_scales(anchors):
    # four maps: scales 0.2, 0.45, 0.7, 0.95 (linear), then 1.0 for the last extra square
    r2 = math.sqrt(2)
    expected_first = [(0.1, 0.1), (0.2 / r2, 0.2 * r2), (0.2 * r2, 0.2 / r2)]
    np.testing.assert_allclose(anchors[:3, 2:], expected_first, rtol=1e-6)
    s, extra = 0.45, math.sqrt(0.45 * 0.7)
    np.testing.assert_allclose(anchors[108:112, 2:], [(s, s), (s / r2, s * r2), (s * r2, s / r2), (extra, extra)], 1e-6)
    np.testing.assert_allclose(anchors[-1, 2:], [math.sqrt(0.95), math.sqrt(0.95)], rtol=1e-6)
    assert boxes.ssd_scales(1) == [0.2]
    # all four anchors per cell without the reduced first map
    assert len(grid_anchors(MAPS_96, reduce_first=False)) == 4 * (36 + 9 + 4 + 1)


def test_non_square_maps():
    a = grid_anchors([(2, 4), (1, 1)])
    assert len(a) == 2 * 4 * 3 + 4
    np.testing.assert_allclose(a[3 * 3, :2], [0.25, 7 / 8])  # row 0, column 3
    with pytest.raises(InputError, match=r"feature map size must be two positive integers; received \(0, 3\)"):
        grid_anchors([(0, 3)])


# -- IoU -------------------------------------------------------------------------------------------------


def test_iou_by_hand():
    a = [[0, 0, 1, 1], [0.2, 0.2, 0.2, 0.6]]  # the second has no area
    b = [[0, 0, 0.5, 1], [0.5, 0.5, 1.5, 1.5], [2, 2, 3, 3], [0.2, 0.2, 0.2, 0.6]]
    np.testing.assert_allclose(iou(a, b), [[0.5, 0.25 / 1.75, 0, 0], [0, 0, 0, 0]], atol=1e-7)
    assert iou(np.zeros((0, 4)), b).shape == (0, 4)
    with pytest.raises(InputError, match=r"a must be an array \[N, 4\]; received shape \(2, 3\)"):
        iou(np.zeros((2, 3)), b)


# -- encoder ---------------------------------------------------------------------------------------------


def test_a_box_equal_to_an_anchor_is_positive_with_zero_offsets(anchors):
    index = 108 + 4 * 4 + 1  # second map, centre cell, the aspect-2 anchor
    target = encode_boxes([corners(anchors[index])], [2], anchors, 3)
    assert target.shape == (164, 4 + 1 + 3) and target.dtype == np.float32
    np.testing.assert_allclose(target[index, :4], 0, atol=1e-6)
    np.testing.assert_array_equal(target[index, 4:], [0, 0, 0, 1])  # class 2 at column 4 + 1 + 2


def test_offsets_by_hand(anchors):
    cy, cx, h, w = (float(v) for v in anchors[108 + 4 * 4])  # (0.5, 0.5, 0.45, 0.45)
    gy, gx, gh, gw = cy + 0.02, cx - 0.03, h * 1.1, w * 0.9
    box = [gy - gh / 2, gx - gw / 2, gy + gh / 2, gx + gw / 2]
    target = encode_boxes([box], [0], anchors, 1)
    row = target[108 + 4 * 4]
    expected = [0.02 / h / 0.1, -0.03 / w / 0.1, math.log(1.1) / 0.2, math.log(0.9) / 0.2]
    np.testing.assert_allclose(row[:4], expected, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(row[4:], [0, 1])


def test_matching_agrees_with_numpy_iou(anchors):
    gt = np.array([[0.05, 0.1, 0.45, 0.6], [0.3, 0.3, 0.75, 0.7], [0.02, 0.8, 0.1, 0.88]], np.float32)
    target = encode_boxes(gt, [0, 1, 1], anchors, 2)
    overlaps = iou(np.array([corners(a) for a in anchors]), gt)  # [A, 3]
    best = overlaps.max(axis=1)
    forced = np.zeros(len(anchors), bool)
    forced[overlaps.argmax(axis=0)] = True  # each box's own best anchor
    positive = (best >= 0.5) | forced
    ignored = ~positive & (best >= 0.4)
    background = ~positive & ~ignored
    assert ignored.sum() >= 3 and positive.sum() >= 5  # every kind of anchor is exercised
    classes = target[:, 4:]
    np.testing.assert_array_equal(classes[:, 1:].sum(axis=1) == 1, positive)
    np.testing.assert_array_equal(classes[:, 0] == 1, background)
    np.testing.assert_array_equal(np.abs(target[ignored]).sum(axis=1), 0)  # ignore: all zero, offsets too
    assert np.all(target[background, :4] == 0)
    # the tiny third box (smaller than any anchor at IoU 0.5) still has its anchor, with the right class
    own = overlaps[:, 2].argmax()
    assert overlaps[own, 2] < 0.5 and classes[own, 2] == 1
    labels = classes[positive, 1:].argmax(axis=1)
    np.testing.assert_array_equal(labels, np.array([0, 1, 1])[overlaps[positive].argmax(axis=1)])


def test_encode_then_decode_gives_the_boxes_back(anchors):
    gt = np.array([[0.1, 0.15, 0.45, 0.5], [0.5, 0.55, 0.9, 0.8]], np.float32)
    target = encode_boxes(gt, [1, 0], anchors, 2)
    raw = target.copy()
    raw[:, 4:] *= 20.0  # one-hot -> confident logits; ignored rows get uniform probabilities (1/3)
    found, scores, classes = decode(raw, anchors, score_threshold=0.5)
    order = np.argsort(found[:, 0])
    np.testing.assert_allclose(found[order], gt, atol=1e-5)
    np.testing.assert_array_equal(classes[order], [1, 0])
    assert np.all(scores > 0.99)


def test_no_boxes_and_degenerate_boxes_are_all_background(anchors):
    for gt, labels in (
        (np.zeros((0, 4), np.float32), np.zeros(0, np.int32)),
        ([[0.3, 0.3, 0.3, 0.6], [0.5, 0.5, 0.7, 0.5], [0.6, 0.6, 0.4, 0.8]], [0, 1, 0]),  # flat, thin, upside down
        ([[0.2, np.nan, 0.4, 0.5]], [0]),
    ):
        target = encode_boxes(gt, labels, anchors, 2)
        assert np.all(np.isfinite(target))
        np.testing.assert_array_equal(target[:, 4], 1)
        assert np.count_nonzero(target) == len(anchors)
    box = [0.1, 0.1, 0.5, 0.4]
    alone = encode_boxes([box], [1], anchors, 2)
    with_degenerate = encode_boxes([[0.2, 0.2, 0.2, 0.9], box], [0, 1], anchors, 2)
    np.testing.assert_array_equal(alone, with_degenerate)


def test_the_encoder_takes_any_number_of_boxes_and_is_cheap(anchors):
    gt = np.array([[0.1, 0.1, 0.5, 0.4], [0.5, 0.5, 0.9, 0.9]], np.float32)
    assert encode_boxes(gt, [0, 1], anchors, 2).shape == (164, 7)
    assert encode_boxes(gt[:1], [0], anchors, 2).dtype == np.float32
    assert encode_boxes(np.zeros((0, 4), np.float32), np.zeros(0, np.int32), anchors, 2)[:, 4].sum() == len(anchors)


def test_encoder_checks(anchors):
    with pytest.raises(InputError, match=r"box classes must be from 0 to num_classes - 1 \(1\)"):
        encode_boxes([[0.1, 0.1, 0.5, 0.5]], [2], anchors, 2)
    with pytest.raises(InputError, match=r"0 < negative_iou <= positive_iou <= 1; received negative_iou=0.6"):
        encode_boxes([[0.1, 0.1, 0.5, 0.5]], [0], anchors, 2, negative_iou=0.6)
    with pytest.raises(InputError, match=r"num_classes must be a positive integer; received 0"):
        encode_boxes([[0.1, 0.1, 0.5, 0.5]], [0], anchors, 0)


# -- decoder and NMS ---------------------------------------------------------------------------------------

#: Four anchors; with zero offsets the decoded boxes are their corners: 0 and 1 overlap (IoU 0.14 / 0.18), 2 and 3
#: overlap nothing.
SMALL = np.array(
    [[0.5, 0.5, 0.4, 0.4], [0.5, 0.55, 0.4, 0.4], [0.15, 0.15, 0.2, 0.2], [0.85, 0.85, 0.2, 0.2]], np.float32
)


def raw_for(logits):
    """Zero offsets, the given class logits (background first)."""
    logits = np.asarray(logits, np.float32)
    return np.concatenate([np.zeros((len(logits), 4), np.float32), logits], axis=1)


def test_two_overlapping_boxes_of_one_class_leave_one():
    # softmax([0, ln 3, 0]) = (1/5, 3/5, 1/5); softmax([0, ln 2, 0]) = (1/4, 2/4, 1/4)
    found, scores, classes = decode(raw_for([[0, math.log(2), 0], [0, math.log(3), 0], [9, 0, 0], [9, 0, 0]]), SMALL)
    np.testing.assert_allclose(found, [[0.3, 0.35, 0.7, 0.75]], atol=1e-6)  # the higher-scoring anchor 1
    np.testing.assert_allclose(scores, [0.6], rtol=1e-6)
    assert classes.tolist() == [0]
    # by hand: intersection 0.4 x 0.35 = 0.14, union 0.16 + 0.16 - 0.14 = 0.18
    assert math.isclose(float(iou([[0.3, 0.3, 0.7, 0.7]], [[0.3, 0.35, 0.7, 0.75]])[0, 0]), 0.14 / 0.18, rel_tol=1e-5)
    # above that threshold both stay
    found, _, _ = decode(raw_for([[0, math.log(2), 0], [0, math.log(3), 0], [9, 0, 0], [9, 0, 0]]), SMALL, 0.3, 0.8)
    assert len(found) == 2


def test_overlapping_boxes_of_different_classes_both_stay():
    found, scores, classes = decode(raw_for([[0, 3, 0], [0, 0, 4], [9, 0, 0], [9, 0, 0]]), SMALL)
    assert classes.tolist() == [1, 0]  # highest score first: class 1 at anchor 1 (e^4 / (e^4 + 2))
    np.testing.assert_allclose(scores, [1 / (1 + 2 * math.exp(-4)), 1 / (1 + 2 * math.exp(-3))], rtol=1e-6)
    np.testing.assert_allclose(found, [[0.3, 0.35, 0.7, 0.75], [0.3, 0.3, 0.7, 0.7]], atol=1e-6)
    # one box, two classes above the threshold: softmax([0, 2, 2]) = (1, e^2, e^2) / (1 + 2 e^2)
    found, scores, classes = decode(raw_for([[0, 2, 2], [9, 0, 0], [9, 0, 0], [9, 0, 0]]), SMALL)
    assert sorted(classes.tolist()) == [0, 1] and np.array_equal(found[0], found[1])
    np.testing.assert_allclose(scores, math.exp(2) / (1 + 2 * math.exp(2)), rtol=1e-6)


def test_score_threshold_and_max_detections():
    logits = [[0, 2, 0], [9, 0, 0], [0, 3, 0], [0, 0, 1]]  # scores: 0.787, -, 0.909, 0.576
    expected = [1 / (1 + 2 * math.exp(-3)), 1 / (1 + 2 * math.exp(-2)), math.exp(1) / (2 + math.exp(1))]
    _, scores, classes = decode(raw_for(logits), SMALL, score_threshold=0.3)
    np.testing.assert_allclose(scores, expected, rtol=1e-6)
    assert classes.tolist() == [0, 0, 1]
    _, scores, _ = decode(raw_for(logits), SMALL, score_threshold=0.6)
    assert len(scores) == 2
    found, scores, _ = decode(raw_for(logits), SMALL, score_threshold=0.3, max_detections=2)
    np.testing.assert_allclose(scores, expected[:2], rtol=1e-6)
    np.testing.assert_allclose(found[0], [0.05, 0.05, 0.25, 0.25], atol=1e-6)
    _, scores, _ = decode(raw_for(logits), SMALL, score_threshold=0.95)
    assert scores.shape == (0,)


def test_decoded_boxes_are_clipped_and_batches_give_lists():
    raw = raw_for([[0, 5, 0], [9, 0, 0], [9, 0, 0], [9, 0, 0]])
    raw[0, 2:4] = math.log(4) / 0.2  # 4x the anchor: past the image
    batch = np.stack([raw, raw_for([[9, 0, 0]] * 4)])
    results = decode(batch, SMALL)
    assert isinstance(results, list) and len(results) == 2
    np.testing.assert_allclose(results[0][0], [[0, 0, 1, 1]])
    assert results[1][0].shape == (0, 4) and results[1][2].dtype == np.int64
    with pytest.raises(InputError, match=r"with A = 4 anchors and C >= 1; received shape \(3, 7\)"):
        decode(np.zeros((3, 7)), SMALL)
    with pytest.raises(InputError, match=r"score_threshold must be between 0 and 1; received 1.5"):
        decode(raw, SMALL, score_threshold=1.5)
    with pytest.raises(InputError, match=r"max_detections must be a positive integer; received 0"):
        decode(raw, SMALL, max_detections=0)


def test_many_candidates_stay_fast():
    rng = np.random.default_rng(0)
    a = np.tile(SMALL[:1], (3000, 1))
    a[:, :2] += rng.uniform(-0.01, 0.01, (3000, 2)).astype(np.float32)
    raw = raw_for(np.stack([np.zeros(3000), rng.uniform(1, 5, 3000), np.zeros(3000)], axis=1))
    found, _, _ = decode(raw, a)
    assert len(found) == 1  # all overlap: one survives NMS among the top candidates
    assert nms([[0, 0, 1, 1], [0, 0, 1, 1], [0, 0, 0.1, 0.1]], [0.5, 0.9, 0.1]).tolist() == [1, 2]
