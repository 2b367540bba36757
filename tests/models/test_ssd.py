"""The ssd_mobilenet_v2 plugin: the model's shape and layers, input checks, registry and wizard, metadata, the
encoder/decoder defaults, the multibox loss against values worked out by hand, and a short real training run."""

from __future__ import annotations

import json
import math
import urllib.request

import numpy as np
import pytest

from eiq_lab import framework
from eiq_lab.errors import EiqError, InputError
from eiq_lab.models import recommend, registry, table
from eiq_lab.models.boxes import iou
from eiq_lab.models.ssd import SSDMobileNetV2, feature_map_sizes, multibox_loss

SHAPE = (96, 96, 3)
#: 6x6 cells x 3 anchors, then 3x3, 2x2 and 1x1 cells x 4 anchors
ANCHORS_96 = 6 * 6 * 3 + 3 * 3 * 4 + 2 * 2 * 4 + 1 * 4
#: What a TFLite builtin kernel (or batch-norm folding) covers; no NMS or custom op may sneak in.
BUILTIN_LAYERS = {
    "InputLayer",
    "Conv2D",
    "DepthwiseConv2D",
    "BatchNormalization",
    "ReLU",
    "ZeroPadding2D",
    "Add",
    "Reshape",
    "Concatenate",
}


@pytest.fixture(scope="module")
def built():
    plugin = SSDMobileNetV2()
    return plugin, plugin.get_model(SHAPE, 3, None, {"alpha": 0.35})


def test_the_model_has_one_detections_output_row_per_anchor(built):
    keras = framework.keras()
    plugin, model = built
    assert len(plugin.anchors(SHAPE)) == ANCHORS_96 == 164
    assert model.output_names == ["detections"] and model.output_shape == (None, ANCHORS_96, 4 + 1 + 3)
    batch = np.random.default_rng(0).uniform(-1, 1, (1, *SHAPE)).astype(np.float32)
    out = model(batch, training=False).numpy()
    assert out.shape == (1, ANCHORS_96, 8) and np.all(np.isfinite(out))
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)  # flat
    assert {type(layer).__name__ for layer in model.layers} <= BUILTIN_LAYERS
    assert model.get_layer("block_13_expand_relu").output.shape[1:3] == (6, 6)
    assert model.get_layer("out_relu").output.shape[1:3] == (3, 3)
    bn = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert bn and all(layer.momentum == 0.9 for layer in bn)  # random init: statistics that keep up


def test_other_shapes_and_one_channel():
    assert feature_map_sizes((320, 320, 3)) == [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2), (1, 1)]
    assert feature_map_sizes((128, 128, 3)) == [(8, 8), (4, 4), (2, 2), (1, 1)]
    plugin = SSDMobileNetV2()
    # 6x10, 3x5, 2x3, 1x2, 1x1 cells
    assert len(plugin.anchors((96, 160, 1))) == 60 * 3 + (15 + 6 + 2 + 1) * 4
    model = plugin.get_model((96, 160, 1), 1, None, {"alpha": 0.35})
    assert model.output_shape == (None, 60 * 3 + 24 * 4, 6)


@pytest.mark.parametrize(
    ("shape", "weights", "message"),
    [
        (
            (100, 100, 3),
            None,
            r"H and W multiples of 32, at least 96 .* for ssd_mobilenet_v2; received \(100, 100, 3\)",
        ),
        ((64, 64, 3), None, r"multiples of 32, at least 96.*received \(64, 64, 3\)"),
        ((96, 96, 2), None, r"C in \(1, 3\).*received \(96, 96, 2\)"),
        ((96, 96, 1), "imagenet", r"C = 3 for ImageNet weights.*received \(96, 96, 1\)"),
        ((96, 96), None, r"input size must be \(H, W, C\).*received \(96, 96\)"),
    ],
)
def test_input_sizes_the_backbone_does_not_allow_are_refused(shape, weights, message):
    with pytest.raises(InputError, match=message):
        SSDMobileNetV2().get_model(shape, 3, weights, {"alpha": 0.35})


def test_parameters():
    plugin = SSDMobileNetV2()
    assert plugin.validate_params() == {
        "alpha": 0.5,
        "max_detections": 20,
        "score_threshold": 0.3,
        "iou_threshold": 0.5,
    }
    assert plugin.validate_params({"alpha": "0.75", "max_detections": "300"})["max_detections"] == 300
    with pytest.raises(InputError, match=r"'max_detections' of 'ssd_mobilenet_v2' must be at least 1; received 0"):
        plugin.validate_params({"max_detections": 0})
    with pytest.raises(InputError, match=r"'alpha'"):
        plugin.validate_params({"alpha": 1.4})
    with pytest.raises(InputError, match=r"num_classes must be a positive integer; received 0"):
        plugin.get_model(SHAPE, 0)
    assert plugin.get_allowed_dimensions() == [(s, s, 3) for s in (96, 128, 160, 192, 224, 256, 288, 320)]
    assert plugin.get_losses() == ["ssd_multibox"] and plugin.get_metrics() == []
    assert plugin.loss().__name__ == "ssd_multibox"


def test_registry_and_wizard():
    plugin = registry(refresh=True).get("SSD-MobileNet v2", task="detection")
    assert isinstance(plugin, SSDMobileNetV2) and plugin.is_base() and plugin.get_task() == "detection"
    assert registry().names("detection") == ["ssd_mobilenet_v2"] and registry().problems == []
    rows = [row for row in table() if row.task == "detection"]
    assert len(rows) == 12
    for row in rows:
        assert row.available and row.model == "ssd_mobilenet_v2" and not row.note, row
        plugin.validate_params(row.named_params)  # every recommended alpha is offered
        assert plugin.check_input_shape(row.input_size, "imagenet") == row.input_size
        assert row.input_size in plugin.get_allowed_dimensions()
    mcu = recommend("detection", "performance", "mcu")  # builds the model for its memory estimate
    assert mcu.available and mcu.flash_bytes > 100_000 and mcu.ram_bytes > 10_000, mcu.note


def test_metadata_encoder_and_decoder_follow_the_last_model(built):
    plugin, _ = built
    meta = plugin.get_metadata()
    assert meta["task"] == "detection" and meta["normalization"] == "signed" and meta["preprocess"] == "x/127.5-1"
    assert meta["box_variances"] == [0.1, 0.1, 0.2, 0.2] and meta["anchor_format"] == "cy,cx,h,w"
    assert meta["box_format"] == "ymin,xmin,ymax,xmax normalised" and "LOGITS" in meta["output_layout"]
    assert meta["num_classes"] == 3 and meta["num_anchors"] == ANCHORS_96
    np.testing.assert_array_equal(np.array(meta["anchors"], np.float32), plugin.anchors(SHAPE))
    json.dumps(meta)
    assert plugin.get_loss_named_params()["anchors"] == meta["anchors"]
    target = plugin.encoder()([[0.2, 0.2, 0.8, 0.8]], [2])
    assert target.shape == (ANCHORS_96, 8) and target[:, 7].sum() >= 1
    raw = target.copy()
    raw[:, 4:] *= 20
    found, _, classes = plugin.decoder()(raw)
    np.testing.assert_allclose(found, [[0.2, 0.2, 0.8, 0.8]], atol=1e-5)
    assert classes.tolist() == [2]
    with pytest.raises(InputError, match=r"must be \[164, 8\] or \[B, 164, 8\]; received shape \(164, 7\)"):
        plugin.decoder()(raw[:, :7])


def test_encoder_and_decoder_need_a_configuration():
    plugin = SSDMobileNetV2()
    assert "anchors" not in plugin.get_metadata() and "anchors" not in plugin.get_loss_named_params()
    for make in (plugin.encoder, plugin.decoder):
        with pytest.raises(InputError, match=r"pass input_shape=\(H, W, C\) and num_classes=N, or call get_model"):
            make()
    encode = plugin.encoder((128, 128, 3), 1)
    assert encode([[0.1, 0.1, 0.4, 0.4]], [0]).shape == (276, 6)
    decode = plugin.decoder((128, 128, 3), 1, max_detections=1, score_threshold=0.0)
    found, _, _ = decode(np.zeros((276, 6), np.float32))
    assert len(found) == 1
    with pytest.raises(InputError, match=r"received \(100, 100, 3\)"):
        plugin.encoder((100, 100, 3), 1)


def test_a_saved_model_loads_back(built, tmp_path):
    _, model = built
    path = tmp_path / "ssd.weights.h5"
    model.save_weights(path)
    loaded = SSDMobileNetV2().get_model(SHAPE, 3, str(path), {"alpha": 0.35})
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(expected, actual)


def test_offline_imagenet_names_the_backbone_file(tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")  # a closed port: the download fails at once
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "")
    monkeypatch.setattr(urllib.request, "_opener", None)
    with pytest.raises(EiqError, match=r"fetch mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top\.h5"):
        SSDMobileNetV2().get_model(SHAPE, 3, "imagenet", {"alpha": 0.35})


# -- the loss --------------------------------------------------------------------------------------------


def ce(logits, label):
    """Softmax cross-entropy, written out."""
    logits = np.asarray(logits, np.float64)
    return math.log(np.exp(logits).sum()) - logits[label]


def test_the_loss_by_hand():
    # one image, 2 classes: a positive (class 1), four background anchors, one ignored
    y_true = np.zeros((2, 6, 7), np.float32)
    y_true[0, 0] = [0.5, -2.0, 0, 0, 0, 0, 1]
    y_true[0, 1:5, 4] = 1
    y_pred = np.zeros((2, 6, 7), np.float32)
    y_pred[0, 1:5, 4] = [2, 1, 0, -1]  # background logits: the last three are the hardest negatives
    y_pred[0, 5] = [9, 9, 9, 9, 5, -5, 3]  # ignored: whatever it predicts
    # the second image has no object: background everywhere, at least 3 negatives still count
    y_true[1, :, 4] = 1
    y_pred[1, :, 4] = [3, 2, 1, 0, 4, 5]
    loss = multibox_loss()(y_true, y_pred).numpy()
    huber = 0.5 * 0.5**2 + (2.0 - 0.5)
    first = huber + ce([0, 0, 0], 2) + sum(ce([b, 0, 0], 0) for b in (1, 0, -1))  # divided by 1 positive
    second = sum(ce([b, 0, 0], 0) for b in (0, 1, 2))
    np.testing.assert_allclose(loss, [first, second], rtol=1e-5)


@pytest.fixture(scope="module")
def targets():
    plugin = SSDMobileNetV2()
    encode = plugin.encoder(SHAPE, 3)
    with_objects = encode([[0.1, 0.1, 0.5, 0.4], [0.5, 0.5, 0.9, 0.95]], [0, 2])
    empty = encode(np.zeros((0, 4), np.float32), np.zeros(0, np.int32))
    return np.stack([with_objects, empty])


def test_the_loss_of_a_perfect_prediction_is_zero_and_wrong_classes_cost(targets):
    perfect = targets.copy()
    perfect[..., 4:] *= 30.0  # confident logits of the right class (ignored rows: anything)
    loss = multibox_loss()
    assert np.all(loss(targets, perfect).numpy() < 1e-6)
    wrong = perfect.copy()
    wrong[..., 4:] = np.roll(perfect[..., 4:], 1, axis=-1)  # every class one further (background included)
    assert np.all(loss(targets, wrong).numpy() > 10)
    shifted = perfect.copy()
    shifted[..., :4] += 0.5
    worse = loss(targets, shifted).numpy()
    assert worse[0] > 0.1 and worse[1] < 1e-6  # offsets count for positives only
    uncertain = loss(targets[1:], np.zeros_like(targets[1:])).numpy()
    np.testing.assert_allclose(uncertain, 3 * math.log(4), rtol=1e-5)  # no positives: 3 negatives at ln(C + 1)


def test_the_loss_runs_in_graph_mode_under_a_distribution_strategy(targets):
    tf = framework.tf()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    loss = multibox_loss()

    @tf.function
    def step(y_true, y_pred):
        return strategy.run(loss, args=(y_true, y_pred))

    values = step(tf.constant(targets), tf.zeros_like(targets)).numpy()
    assert values.shape == (2,) and np.all(np.isfinite(values))


# -- learning ----------------------------------------------------------------------------------------------


def shapes_dataset(count: int, size: int, seed: int = 0):
    """Noise images each with one bright filled square (class 0) or disc (class 1); boxes normalised."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 80, (count, size, size, 3)).astype(np.uint8)
    rows, cols = np.mgrid[0:size, 0:size] + 0.5
    gt, labels = [], []
    for i in range(count):
        side = int(rng.integers(size // 4, size // 2 + 1))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        label = i % 2
        if label == 0:
            images[i, top : top + side, left : left + side] = 230
        else:
            radius = side / 2
            images[i][(rows - top - radius) ** 2 + (cols - left - radius) ** 2 <= radius**2] = 230
        gt.append([top / size, left / size, (top + side) / size, (left + side) / size])
        labels.append(label)
    return images, np.array(gt, np.float32), np.array(labels, np.int32)


@pytest.mark.slow
def test_a_short_training_finds_the_shapes():
    """Anchors, encoder, loss and decoder agree: a few epochs from random weights locate the training objects."""
    keras = framework.keras()
    keras.utils.set_random_seed(0)
    images, gt, labels = shapes_dataset(64, 96)
    plugin = SSDMobileNetV2()
    model = plugin.get_model(SHAPE, 2, None, {"alpha": 0.35})
    encode = plugin.encoder()
    y = np.stack([encode(box[None], [label]) for box, label in zip(gt, labels)])
    x = images.astype(np.float32) / 127.5 - 1.0
    # the legacy Adam traces its update in a third of the time of the new one on this CPU
    model.compile(keras.optimizers.legacy.Adam(1e-3), loss=plugin.loss())
    history = model.fit(x, y, batch_size=8, epochs=15, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0] / 3
    detections = plugin.decoder(score_threshold=0.0, max_detections=1)(model.predict(x, verbose=0))
    overlaps = np.array([iou(found[:1], gt[i : i + 1])[0, 0] for i, (found, _, _) in enumerate(detections)])
    right = np.array([classes[0] == labels[i] for i, (_, _, classes) in enumerate(detections)])
    assert (overlaps > 0.3).mean() >= 0.75, overlaps
    assert right.mean() >= 0.75
