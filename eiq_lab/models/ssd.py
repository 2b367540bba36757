"""The built-in object detector: SSDLite on a MobileNet v2 backbone (`ssd_mobilenet_v2`), with its multibox loss.

The model ends in one `detections` tensor of box offsets and class logits; anchors, encoder and decoder are in boxes.py.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import InputError
from . import boxes
from .interfaces import ObjectDetectionInterface, check_imagenet_channels, format_shape, parse_shape, resolve_weights
from .mobilenet import RANDOM_INIT_BN_MOMENTUM, MobileNetV2
from .weights import build_with_imagenet, load_weights_file

#: Input sizes must be multiples of the backbone's largest stride ...
STRIDE = 32
#: ... and at least this (a 3x3 map at stride 32, hence at least four feature maps).
MIN_SIZE = 96
#: Square sizes offered in the GUI (any multiple of 32 from 96 up is accepted).
OFFERED_SIZES = tuple(range(96, 321, 32))
#: Width multipliers offered (all have ImageNet weights for the backbone).
ALPHAS = (0.35, 0.5, 0.75, 1.0)
#: Backbone layers feeding the detection heads: stride 16 (the expansion of block 13, as SSDLite) and stride 32.
FEATURE_LAYERS = ("block_13_expand_relu", "out_relu")
#: Output channels of the extra feature layers (times alpha; the last repeats for very large inputs).
EXTRA_DEPTHS = (512, 256, 256, 128)
#: Name of the model's single output.
OUTPUT_NAME = "detections"
#: Hard negative mining: background anchors kept per positive, and per image at least (images without objects).
NEG_POS_RATIO, MIN_NEGATIVES = 3.0, 3
_BACKBONE_SIZES = (96, 128, 160, 192, 224)  # sizes with their own ImageNet file (others load the 224 one)
_OUTPUT_LAYOUT = (
    "one float32 output 'detections' [batch, num_anchors, 4 + 1 + num_classes]; row i belongs to anchors[i]. "
    "Columns 0-3: box offsets (ty, tx, th, tw) against the anchor (cy, cx, h, w): cy = ty*0.1*h_a + cy_a, "
    "cx = tx*0.1*w_a + cx_a, h = exp(th*0.2)*h_a, w = exp(tw*0.2)*w_a (box_variances). Columns 4..: class "
    "LOGITS, background first (column 4), then class c at column 5 + c; apply a softmax. No NMS in the model: "
    "decode with eiq_lab.models.boxes.decode"
)


def _make_divisible(value: float, divisor: int = 8, minimum: int = 16) -> int:
    """`value` rounded to a multiple of `divisor` (at least `minimum`), as MobileNet rounds its widths."""
    rounded = max(minimum, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def feature_map_sizes(input_shape: Sequence[int]) -> list[tuple[int, int]]:
    """(height, width) of each feature map the heads read: stride 16, stride 32, then halved down to 1x1.

    The extra layers use 'same' padding and stride 2, so each map is ceil(previous / 2).

    Args:
        input_shape: (H, W, C) already checked (`SSDMobileNetV2.check_input_shape`): H, W multiples of 32.

    Returns:
        The maps' (height, width), finest first; e.g. 96 px: 6x6, 3x3, 2x2, 1x1.
    """
    height, width = int(input_shape[0]), int(input_shape[1])
    sizes = [(height // 16, width // 16), (height // 32, width // 32)]
    while sizes[-1] != (1, 1):
        h, w = sizes[-1]
        sizes.append(((h + 1) // 2, (w + 1) // 2))
    return sizes


def multibox_loss(
    neg_pos_ratio: float = NEG_POS_RATIO, min_negatives: int = MIN_NEGATIVES, delta: float = 1.0
) -> Callable[[Any, Any], Any]:
    """The SSD multibox loss on `detections` tensors [B, A, 4 + 1 + C] (targets from `boxes.encode_boxes`).

    Per image: Huber (smooth L1, `delta`) summed over the 4 offsets of the positive anchors, plus softmax
    cross-entropy over the class logits of the positives and of the hardest background anchors (highest
    cross-entropy), ``neg_pos_ratio`` per positive and at least `min_negatives` (so an image without objects
    still teaches background), all divided by the number of positives (at least 1). Ignored anchors (all-zero
    class vector) contribute nothing. Returns one value per image; Keras averages them over the batch.
    Pure tensor ops: it runs in graph mode and under tf.distribute.

    Args:
        neg_pos_ratio: background anchors kept per positive anchor.
        min_negatives: background anchors kept in every image, positives or not.
        delta: the Huber transition point.

    Returns:
        ``loss(y_true, y_pred) -> [B]``, named ``ssd_multibox``.
    """
    from .. import framework

    def ssd_multibox(y_true: Any, y_pred: Any) -> Any:
        tf = framework.tf()
        y_true = tf.cast(y_true, tf.float32)
        y_pred = tf.cast(y_pred, tf.float32)
        true_classes = y_true[..., 4:]
        positive = tf.reduce_sum(true_classes[..., 1:], axis=-1) > 0.5
        background = true_classes[..., 0] > 0.5
        positives = tf.cast(positive, tf.float32)
        num_positives = tf.reduce_sum(positives, axis=1)

        error = tf.abs(y_pred[..., :4] - y_true[..., :4])
        huber = tf.where(error < delta, 0.5 * tf.square(error), delta * (error - 0.5 * delta))
        localisation = tf.reduce_sum(tf.reduce_sum(huber, axis=-1) * positives, axis=1)

        # zero for ignored anchors: their label vector is all zeros
        cross_entropy = tf.nn.softmax_cross_entropy_with_logits(labels=true_classes, logits=y_pred[..., 4:])
        ranked = tf.where(background, tf.stop_gradient(cross_entropy), -1.0)
        order = tf.argsort(ranked, axis=1, direction="DESCENDING", stable=True)
        rank = tf.cast(tf.argsort(order, axis=1, stable=True), tf.float32)
        num_background = tf.reduce_sum(tf.cast(background, tf.float32), axis=1)
        wanted = tf.minimum(tf.maximum(neg_pos_ratio * num_positives, float(min_negatives)), num_background)
        hard_negative = background & (rank < wanted[:, None])
        chosen = tf.cast(positive | hard_negative, tf.float32)
        classification = tf.reduce_sum(cross_entropy * chosen, axis=1)
        return (localisation + classification) / tf.maximum(num_positives, 1.0)

    return ssd_multibox


class SSDMobileNetV2(ObjectDetectionInterface):
    """SSDLite MobileNet v2 (Sandler et al. 2018; Liu et al. 2016): a MobileNet v2 backbone, extra stride-2
    layers down to 1x1 and depthwise-separable box and class heads on each feature map.

    The graph holds only convolutions, depthwise convolutions, batch normalization (folded on export), ReLU6,
    reshapes and concatenations, all TFLite builtins; decoding and NMS run outside it (`decoder()`), with the
    anchors saved beside the model (`get_metadata()["anchors"]`).
    """

    def __init__(self) -> None:
        #: (input shape, num_classes, parameters) of the last get_model call: what encoder()/decoder() default to
        self._built: tuple[tuple[int, int, int], int, dict[str, Any]] | None = None

    def get_name(self) -> str:
        return "ssd_mobilenet_v2"

    def is_base(self) -> bool:
        return True

    def get_exposed_parameters(self) -> list[dict[str, Any]]:
        return [
            {
                "name": "alpha",
                "type": "choice",
                "default": 0.5,
                "choices": list(ALPHAS),
                "help": "width multiplier of the MobileNet v2 backbone and of the detection layers (smaller is "
                "faster, less accurate); ImageNet weights exist for all",
            },
            {
                "name": "max_detections",
                "type": "int",
                "default": 20,
                "min": 1,
                "max": 300,
                "help": "most boxes the decoder returns per image",
            },
            {
                "name": "score_threshold",
                "type": "float",
                "default": 0.3,
                "min": 0.0,
                "max": 1.0,
                "help": "lowest class probability of a box the decoder returns",
            },
            {
                "name": "iou_threshold",
                "type": "float",
                "default": 0.5,
                "min": 0.0,
                "max": 1.0,
                "help": "non-maximum suppression: of two boxes of a class overlapping more than this, the weaker goes",
            },
        ]

    def get_allowed_dimensions(self) -> list[tuple[int, int, int]]:
        """The square shapes the GUI offers; any H, W that are multiples of 32 from 96 up (C 1 or 3) are accepted."""
        return [(size, size, 3) for size in OFFERED_SIZES]

    def get_pretrained_dimensions(self) -> list[dict[str, Any]]:
        return [
            {
                "shape": (size, size, 3),
                "weights": "imagenet",
                "source": "Keras Applications (storage.googleapis.com/tensorflow/keras-applications), "
                "keras.applications.MobileNetV2: the backbone only; the detection layers start random",
                "alphas": list(ALPHAS),
            }
            for size in _BACKBONE_SIZES
        ]

    def get_losses(self) -> list[str]:
        return ["ssd_multibox"]

    def get_metrics(self) -> list[str]:
        return []

    def get_metadata(self) -> dict[str, Any]:
        params = self._built[2] if self._built else self.validate_params()
        meta = {
            **super().get_metadata(),
            "architecture": "ssdlite_mobilenet_v2",
            "box_format": "ymin,xmin,ymax,xmax normalised",
            "output_name": OUTPUT_NAME,
            "output_layout": _OUTPUT_LAYOUT,
            "box_variances": list(boxes.VARIANCES),
            "anchor_format": "cy,cx,h,w",
            "class_activation": "softmax",
            "background_class": 0,
            "score_threshold": params["score_threshold"],
            "iou_threshold": params["iou_threshold"],
            "max_detections": params["max_detections"],
        }
        if self._built:
            shape, num_classes, _ = self._built
            anchors = self.anchors(shape)
            meta.update(
                anchors=anchors.tolist(),
                num_anchors=len(anchors),
                num_classes=num_classes,
                feature_maps=[list(size) for size in feature_map_sizes(shape)],
            )
        return meta

    def get_loss_named_params(self) -> dict[str, Any]:
        """Box variances, matching thresholds and mining ratio; anchors (list of [cy, cx, h, w]) once built."""
        params: dict[str, Any] = {
            "variances": list(boxes.VARIANCES),
            "positive_iou": boxes.POSITIVE_IOU,
            "negative_iou": boxes.NEGATIVE_IOU,
            "neg_pos_ratio": NEG_POS_RATIO,
            "min_negatives": MIN_NEGATIVES,
        }
        if self._built:
            params["anchors"] = self.anchors(self._built[0]).tolist()
        return params

    # -- checks -----------------------------------------------------------------------------------------

    def check_input_shape(self, shape: Any, weights: Any = None) -> tuple[int, int, int]:
        """H and W multiples of 32 and at least 96, C 1 or 3 (3 with ImageNet weights).

        Raises:
            InputError: a shape the backbone does not allow (the message gives the rule and the shape).
        """
        shape = parse_shape(shape)
        height, width, channels = shape
        if height % STRIDE or width % STRIDE or min(height, width) < MIN_SIZE or channels not in (1, 3):
            raise InputError(
                f"input size must be (H, W, C) with H and W multiples of {STRIDE}, at least {MIN_SIZE} (e.g. 96, "
                f"128, ..., 320), and C in (1, 3) for {self.get_name()}; received {format_shape(shape)}"
            )
        check_imagenet_channels(shape, weights, self.get_name())
        return shape

    # -- anchors, encoder, decoder, loss ----------------------------------------------------------------

    def anchors(self, input_shape: Sequence[int]) -> np.ndarray:
        """The anchors of the model for `input_shape`, in the order of its output rows.

        Feature maps as `feature_map_sizes`; per location 4 anchors (scales linear from 0.2 to 0.95 over the
        maps; aspect ratios 1, 2, 1/2 and an extra square sqrt(s_k * s_k+1)), 3 on the first map (a 0.1 square
        and 0.2 at 2 and 1/2); see `boxes.anchor_shapes`.

        Returns:
            float32 [A, 4] (cy, cx, h, w) normalised to the image (eIQ's anchor_boxes.npy layout).

        Raises:
            InputError: a shape the model does not take.
        """
        return boxes.grid_anchors(feature_map_sizes(self.check_input_shape(input_shape)))

    def _resolve(self, input_shape: Any, num_classes: Any, what: str) -> tuple[tuple[int, int, int], int]:
        if input_shape is None or num_classes is None:
            if self._built is None:
                raise InputError(
                    f"{self.get_name()}'s {what} needs the model's input size and number of classes: pass "
                    f"input_shape=(H, W, C) and num_classes=N, or call get_model(...) first; received "
                    f"input_shape={input_shape!r}, num_classes={num_classes!r} and no model built"
                )
            input_shape = self._built[0] if input_shape is None else input_shape
            num_classes = self._built[1] if num_classes is None else num_classes
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
            raise InputError(f"num_classes must be a positive integer; received {num_classes!r}")
        return self.check_input_shape(input_shape), int(num_classes)

    def encoder(self, input_shape: Sequence[int] | None = None, num_classes: int | None = None) -> Callable[..., Any]:
        """``encode(boxes [N, 4], classes [N]) -> target [A, 4 + 1 + C]``: `boxes.encode_boxes` with this model's
        anchors (numpy arrays in and out; the trainer calls it in its input threads).

        Args:
            input_shape: (H, W, C); default: that of the last `get_model` call.
            num_classes: default: that of the last `get_model` call.

        Raises:
            InputError: neither given nor a model built, or values the model does not take.
        """
        shape, num_classes = self._resolve(input_shape, num_classes, "encoder")
        anchors = self.anchors(shape)

        def encode(gt_boxes: Any, gt_classes: Any) -> Any:
            return boxes.encode_boxes(gt_boxes, gt_classes, anchors, num_classes)

        return encode

    def decoder(
        self,
        input_shape: Sequence[int] | None = None,
        num_classes: int | None = None,
        score_threshold: float | None = None,
        iou_threshold: float | None = None,
        max_detections: int | None = None,
    ) -> Callable[..., Any]:
        """``decode(raw) -> (boxes, scores, classes)`` (a list of them for a batch): `boxes.decode` with this
        model's anchors; numpy, outside the graph.

        Args:
            input_shape: (H, W, C); default: that of the last `get_model` call.
            num_classes: default: that of the last `get_model` call.
            score_threshold: default: the model parameter of the last `get_model` call (else 0.3).
            iou_threshold: default: likewise (else 0.5).
            max_detections: default: likewise (else 20).

        Raises:
            InputError: neither given nor a model built, or values out of range.
        """
        shape, num_classes = self._resolve(input_shape, num_classes, "decoder")
        given = {"score_threshold": score_threshold, "iou_threshold": iou_threshold, "max_detections": max_detections}
        defaults = self._built[2] if self._built else {}
        params = self.validate_params({k: v for k, v in {**defaults, **given}.items() if v is not None})
        anchors = self.anchors(shape)
        width = 4 + 1 + num_classes

        def decode(raw: Any) -> Any:
            raw = np.asarray(raw, dtype=np.float32)
            if raw.ndim not in (2, 3) or raw.shape[-2:] != (len(anchors), width):
                raise InputError(
                    f"{self.get_name()} output for input {format_shape(shape)} and {num_classes} classes must be "
                    f"[{len(anchors)}, {width}] or [B, {len(anchors)}, {width}]; received shape {raw.shape}"
                )
            return boxes.decode(
                raw, anchors, params["score_threshold"], params["iou_threshold"], params["max_detections"]
            )

        return decode

    def loss(self) -> Callable[[Any, Any], Any]:
        """The multibox loss for `encoder()` targets (see `multibox_loss`); named ``ssd_multibox``."""
        return multibox_loss()

    # -- building ---------------------------------------------------------------------------------------

    def get_model(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        weights: Any = None,
        named_params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Build the detector: MobileNet v2 backbone, extra layers down to 1x1, SSDLite heads, one output.

        Args:
            input_shape: (height, width, channels): H, W multiples of 32, at least 96; C 1 or 3.
            num_classes: number of object classes (background excluded).
            weights: ``"imagenet"`` (backbone only), None (random) or a file saved from this model (or a
                legacy .h5 of the MobileNet v2 backbone alone).
            named_params: alpha, max_detections, score_threshold, iou_threshold.

        Returns:
            An uncompiled Keras 2 model whose one output `detections` is [batch, A, 4 + 1 + num_classes]
            (see `get_metadata()["output_layout"]`), A = len(anchors(input_shape)).

        Raises:
            InputError: a bad shape, parameter or number of classes, or a weights file that does not match.
            EiqError: the ImageNet weights could not be downloaded (the message says where to place them).
        """
        source = resolve_weights(weights)
        shape = self.check_input_shape(input_shape, source)
        params = self.validate_params(named_params)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer) or num_classes < 1:
            raise InputError(f"num_classes must be a positive integer; received {num_classes!r}")
        num_classes = int(num_classes)
        from .. import framework

        keras = framework.keras()
        alpha = float(params["alpha"])

        def backbone(backbone_weights: Any) -> Any:
            return keras.applications.MobileNetV2(
                input_shape=shape, alpha=alpha, include_top=False, weights=backbone_weights
            )

        if source == "imagenet":
            if not (shape[0] == shape[1] and shape[0] in _BACKBONE_SIZES):
                warnings.warn(
                    f"MobileNet v2 has ImageNet weights for 96, 128, 160, 192, 224 px square inputs; for "
                    f"{shape[0]}x{shape[1]} the 224x224 weights are loaded (the convolutions do not depend on the "
                    "input size)",
                    UserWarning,
                    stacklevel=2,
                )
            file_name = MobileNetV2().weights_file_name(params, shape)
            base = build_with_imagenet(lambda: backbone("imagenet"), f"{self.get_name()} (alpha {alpha})", file_name)
        else:
            base = backbone(None)
            # as mobilenet.py: Keras' 0.999 is for fine-tuning; from scratch the statistics would lag far behind
            for layer in base.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = RANDOM_INIT_BN_MOMENTUM
        outputs = _detection_layers(keras, base, shape, num_classes, alpha)
        model = keras.Model(base.input, outputs, name=self.get_name())
        if source not in (None, "imagenet"):
            description = f"{self.get_name()} (alpha {alpha}, input {format_shape(shape)}, {num_classes} classes)"
            load_weights_file(model, source, description, backbone=base)
        self._built = (shape, num_classes, params)
        return model


def _bn_relu6(keras: Any, x: Any, name: str) -> Any:
    x = keras.layers.BatchNormalization(momentum=RANDOM_INIT_BN_MOMENTUM, epsilon=1e-3, name=f"{name}_bn")(x)
    return keras.layers.ReLU(6.0, name=f"{name}_relu")(x)


def _extra_layer(keras: Any, x: Any, depth: int, index: int) -> Any:
    """SSDLite extra layer: 1x1 to depth/2, 3x3 depthwise stride 2, 1x1 to depth (each BN + ReLU6)."""
    name = f"ssd_extra_{index}"
    x = keras.layers.Conv2D(depth // 2, 1, use_bias=False, name=f"{name}_expand")(x)
    x = _bn_relu6(keras, x, f"{name}_expand")
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = _bn_relu6(keras, x, f"{name}_dw")
    x = keras.layers.Conv2D(depth, 1, use_bias=False, name=f"{name}_project")(x)
    return _bn_relu6(keras, x, f"{name}_project")


def _head(keras: Any, x: Any, anchors: int, width: int, name: str) -> Any:
    """SSDLite predictor: 3x3 depthwise + BN + ReLU6, 1x1 conv to anchors * width, reshaped to [B, HWK, width]."""
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=f"{name}_dw")(x)
    x = _bn_relu6(keras, x, f"{name}_dw")
    x = keras.layers.Conv2D(anchors * width, 1, name=name)(x)
    height, width_px = x.shape[1], x.shape[2]
    return keras.layers.Reshape((height * width_px * anchors, width), name=f"{name}_reshape")(x)


def _detection_layers(keras: Any, base: Any, shape: tuple[int, int, int], num_classes: int, alpha: float) -> Any:
    """Feature maps, extra layers and heads on `base`; returns the `detections` tensor."""
    maps = [base.get_layer(name).output for name in FEATURE_LAYERS]
    sizes = feature_map_sizes(shape)
    for index in range(len(sizes) - len(maps)):
        depth = _make_divisible(EXTRA_DEPTHS[min(index, len(EXTRA_DEPTHS) - 1)] * alpha)
        maps.append(_extra_layer(keras, maps[-1], depth, index))
    per_location = [len(shapes) for shapes in boxes.anchor_shapes(len(maps))]
    box_parts, class_parts = [], []
    for k, (feature, count) in enumerate(zip(maps, per_location)):
        if tuple(feature.shape[1:3]) != sizes[k]:  # the anchors' grid must be the map's grid
            raise AssertionError(f"feature map {k} is {feature.shape[1:3]}, anchors expect {sizes[k]}")
        box_parts.append(_head(keras, feature, count, 4, f"ssd_box_{k}"))
        class_parts.append(_head(keras, feature, count, num_classes + 1, f"ssd_class_{k}"))
    box_out = keras.layers.Concatenate(axis=1, name="ssd_boxes")(box_parts)
    class_out = keras.layers.Concatenate(axis=1, name="ssd_classes")(class_parts)
    return keras.layers.Concatenate(axis=-1, name=OUTPUT_NAME)([box_out, class_out])


#: The plugins of this module, for the registry.
PLUGINS = (SSDMobileNetV2,)
