"""The base classification models: MobileNet v1, v2, v3 small and v3 large from Keras' applications.

Each is the ImageNet-shaped backbone without its top, global average pooling, dropout and a softmax layer.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from ..errors import InputError
from .interfaces import (
    ImageClassificationInterface,
    check_imagenet_channels,
    format_shape,
    parse_shape,
    resolve_weights,
)
from .weights import build_with_imagenet, load_weights_file

#: Smallest height and width the MobileNets take (five stride-2 stages leave a 1x1 map).
MIN_SIZE = 32
#: Shapes offered in the GUI; any height and width >= MIN_SIZE work.
OFFERED_SIZES = (32, 64, 96, 128, 160, 192, 224)
#: Dropout before the softmax: Keras' own MobileNetV3 top uses 0.2, as does TensorFlow's transfer-learning
#: tutorial; a fresh head on a few hundred images overfits quickly, and 0.2 slows that without starving it.
DEFAULT_DROPOUT = 0.2
#: The guide's recommended alpha (3.7.5); a model without ImageNet weights at 0.5 defaults to the nearest.
PREFERRED_ALPHA = 0.5
_KERAS_SOURCE = "Keras Applications (storage.googleapis.com/tensorflow/keras-applications)"


def _alpha_text(alpha: float) -> str:
    return str(float(alpha))


#: Batch-norm momentum of base models built with random weights (see `_KerasMobileNet.get_model`).
RANDOM_INIT_BN_MOMENTUM = 0.9


class _KerasMobileNet(ImageClassificationInterface):
    """What the four MobileNets share; subclasses name their Keras application and published weights."""

    name: ClassVar[str] = ""
    application: ClassVar[str] = ""  # the function in keras.applications
    alphas: ClassVar[tuple[float, ...]] = ()
    pretrained_alphas: ClassVar[tuple[float, ...]] = ()
    #: sizes with their own ImageNet checkpoint; others load the 224 one (convolutions do not depend on size)
    pretrained_sizes: ClassVar[tuple[int, ...]] = (224,)

    def get_name(self) -> str:
        return self.name

    def is_base(self) -> bool:
        return True

    def default_alpha(self) -> float:
        """0.5 when it has ImageNet weights (the guide's default), else the nearest alpha that has."""
        candidates = self.pretrained_alphas or self.alphas
        return min(candidates, key=lambda a: (abs(a - PREFERRED_ALPHA), -a))

    def get_exposed_parameters(self) -> list[dict[str, Any]]:
        published = ", ".join(map(_alpha_text, self.pretrained_alphas))
        return [
            {
                "name": "alpha",
                "type": "choice",
                "default": self.default_alpha(),
                "choices": list(self.alphas),
                "help": "width multiplier: scales the number of filters of every layer (smaller is faster, "
                f"less accurate); ImageNet weights exist for {published}",
            },
            {
                "name": "dropout",
                "type": "float",
                "default": DEFAULT_DROPOUT,
                "min": 0.0,
                "max": 0.9,
                "help": "fraction of the pooled features dropped at random before the softmax while training",
            },
        ]

    def get_allowed_dimensions(self) -> list[tuple[int, int, int]]:
        """The shapes the GUI offers; any (H, W, C) with H, W >= 32 and C in (1, 3) is accepted."""
        return [(size, size, channels) for channels in (3, 1) for size in OFFERED_SIZES]

    def get_pretrained_dimensions(self) -> list[dict[str, Any]]:
        alphas = list(self.pretrained_alphas)
        return [
            {
                "shape": (size, size, 3),
                "weights": "imagenet",
                "source": f"{_KERAS_SOURCE}, keras.applications.{self.application}",
                "alphas": alphas,
            }
            for size in self.pretrained_sizes
        ]

    def get_metadata(self) -> dict[str, Any]:
        return {**super().get_metadata(), "architecture": self.application, "output": "softmax"}

    # -- checks -----------------------------------------------------------------------------------------

    def check_input_shape(self, shape: Any, weights: Any = None) -> tuple[int, int, int]:
        """Height and width at least 32, channels 1 or 3; ImageNet weights need 3 channels.

        Raises:
            InputError: the shape is not one the model takes with these weights.
        """
        shape = parse_shape(shape)
        height, width, channels = shape
        if height < MIN_SIZE or width < MIN_SIZE or channels not in (1, 3):
            raise InputError(
                f"input size must be (H, W, C) with H, W >= {MIN_SIZE} and C in (1, 3) for {self.name}; "
                f"received {format_shape(shape)}"
            )
        check_imagenet_channels(shape, weights, self.name)
        return shape

    def check_imagenet(self, params: Mapping[str, Any]) -> None:
        """Raise InputError when ImageNet weights were never published for these parameters."""
        alpha = params["alpha"]
        if not any(abs(alpha - a) < 1e-9 for a in self.pretrained_alphas):
            published = ", ".join(map(_alpha_text, self.pretrained_alphas))
            raise InputError(
                f"{self.name} has ImageNet weights only for alpha {published}; received alpha {_alpha_text(alpha)}: "
                "choose one of those, or weights=None for random initialization"
            )

    def pretrained_note(self, shape: Sequence[int]) -> str | None:
        """Why ImageNet weights for another size are used for `shape`, or None when it has its own."""
        height, width = shape[0], shape[1]
        if height == width and height in self.pretrained_sizes:
            return None
        sizes = ", ".join(map(str, self.pretrained_sizes))
        return (
            f"{self.name} has ImageNet weights for {sizes} px square inputs; for {height}x{width} the 224x224 "
            "weights are loaded (the convolutions do not depend on the input size, but accuracy may start lower)"
        )

    def weights_file_name(self, params: Mapping[str, Any], shape: Sequence[int]) -> str:
        """The ImageNet file (without the classifier top) Keras downloads for these parameters."""
        raise NotImplementedError(f"{type(self).__name__} must name the ImageNet file Keras downloads for it")

    # -- building ---------------------------------------------------------------------------------------

    def _backbone(self, keras: Any, shape: tuple[int, int, int], params: Mapping[str, Any], weights: Any) -> Any:
        build = getattr(keras.applications, self.application)
        return build(input_shape=shape, alpha=params["alpha"], include_top=False, weights=weights, pooling="avg")

    def get_model(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        weights: Any = None,
        named_params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Build the classifier: backbone, global average pooling, dropout, dense softmax.

        The model is flat (the backbone's layers are the model's own, as quantization-aware training
        needs) and takes images preprocessed as x / 127.5 - 1.

        Args:
            input_shape: (height, width, channels), H and W >= 32, C in (1, 3).
            num_classes: number of labels (the softmax width).
            weights: ``"imagenet"``, None (random) or a file saved from this model (or from its backbone alone).
            named_params: alpha, dropout (and minimalistic for v3); see `get_exposed_parameters()`.

        Returns:
            An uncompiled Keras 2 model with output shape (batch, num_classes).

        Raises:
            InputError: a bad shape, parameter, alpha without ImageNet weights, or a weights file that does not
                match (the message names the file and the mismatch).
            EiqError: the ImageNet weights could not be downloaded (the message says where to place them).
        """
        source = resolve_weights(weights)
        shape = self.check_input_shape(input_shape, source)
        params = self.validate_params(named_params)
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise InputError(f"num_classes must be a positive integer; received {num_classes!r}")
        if source == "imagenet":
            self.check_imagenet(params)
        from .. import framework

        keras = framework.keras()
        if source == "imagenet":
            note = self.pretrained_note(shape)
            if note:
                warnings.warn(note, UserWarning, stacklevel=2)
            what = f"{self.name} (alpha {_alpha_text(params['alpha'])})"
            file_name = self.weights_file_name(params, shape)
            base = build_with_imagenet(lambda: self._backbone(keras, shape, params, "imagenet"), what, file_name)
        else:
            base = self._backbone(keras, shape, params, None)
            # Keras builds these with batch-norm momentum 0.999, right for fine-tuning ImageNet statistics but
            # far too slow for training from scratch: after a few hundred steps the moving statistics are still
            # near their initial values and the model predicts one class at test time. 0.9 tracks within ~20 steps.
            for layer in base.layers:
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.momentum = RANDOM_INIT_BN_MOMENTUM
        x = keras.layers.Dropout(params["dropout"], name="head_dropout")(base.output)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="predictions")(x)
        model = keras.Model(base.input, outputs, name=self.name)
        if source not in (None, "imagenet"):
            description = f"{self.name} (alpha {_alpha_text(params['alpha'])}, input {format_shape(shape)}, "
            description += f"{num_classes} classes)"
            load_weights_file(model, source, description, backbone=base)
        return model


class MobileNetV1(_KerasMobileNet):
    """MobileNet v1 (Howard et al. 2017): depthwise-separable convolutions, no residuals; NPU- and MCU-friendly."""

    name = "mobilenet_v1"
    application = "MobileNet"
    alphas = (0.25, 0.5, 0.75, 1.0)
    pretrained_alphas = (0.25, 0.5, 0.75, 1.0)
    pretrained_sizes = (128, 160, 192, 224)

    def weights_file_name(self, params: Mapping[str, Any], shape: Sequence[int]) -> str:
        rows = shape[0] if shape[0] == shape[1] and shape[0] in self.pretrained_sizes else 224
        alpha_text = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}[params["alpha"]]
        return f"mobilenet_{alpha_text}_{rows}_tf_no_top.h5"


class MobileNetV2(_KerasMobileNet):
    """MobileNet v2 (Sandler et al. 2018): inverted residuals with linear bottlenecks; the guide's default."""

    name = "mobilenet_v2"
    application = "MobileNetV2"
    alphas = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    pretrained_alphas = (0.35, 0.5, 0.75, 1.0, 1.3, 1.4)
    pretrained_sizes = (96, 128, 160, 192, 224)

    def weights_file_name(self, params: Mapping[str, Any], shape: Sequence[int]) -> str:
        rows = shape[0] if shape[0] == shape[1] and shape[0] in self.pretrained_sizes else 224
        return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_{float(params['alpha'])}_{rows}_no_top.h5"


class _MobileNetV3(_KerasMobileNet):
    """MobileNet v3 (Howard et al. 2019): searched blocks with squeeze-excite and hard-swish; fast on CPUs."""

    alphas = (0.35, 0.5, 0.75, 1.0)
    pretrained_alphas = (0.75, 1.0)
    pretrained_sizes = (224,)
    size: ClassVar[str] = ""  # "small" or "large"

    def get_exposed_parameters(self) -> list[dict[str, Any]]:
        return [
            *super().get_exposed_parameters(),
            {
                "name": "minimalistic",
                "type": "bool",
                "default": False,
                "help": "plain 3x3 convolutions and ReLU, no squeeze-excite or hard-swish: a little less accurate, "
                "friendlier to NPUs and int8 (ImageNet weights only for alpha 1.0)",
            },
        ]

    def check_imagenet(self, params: Mapping[str, Any]) -> None:
        super().check_imagenet(params)
        if params["minimalistic"] and params["alpha"] != 1.0:
            raise InputError(
                f"{self.name} minimalistic has ImageNet weights only for alpha 1; received alpha "
                f"{_alpha_text(params['alpha'])}: use alpha 1.0, minimalistic false, or weights=None"
            )

    def pretrained_note(self, shape: Sequence[int]) -> str | None:
        if shape[0] == shape[1] == 224:
            return None
        return (
            f"{self.name} has ImageNet weights trained at 224x224; without the classifier top they load at any "
            f"size, {shape[0]}x{shape[1]} included (accuracy may start lower than at 224)"
        )

    def weights_file_name(self, params: Mapping[str, Any], shape: Sequence[int]) -> str:
        kind = f"{self.size}{'_minimalistic' if params['minimalistic'] else ''}"
        return f"weights_mobilenet_v3_{kind}_224_{float(params['alpha'])}_float_no_top_v2.h5"

    def _backbone(self, keras: Any, shape: tuple[int, int, int], params: Mapping[str, Any], weights: Any) -> Any:
        build = getattr(keras.applications, self.application)
        return build(
            input_shape=shape,
            alpha=params["alpha"],
            minimalistic=params["minimalistic"],
            include_top=False,
            weights=weights,
            pooling="avg",
            include_preprocessing=False,  # every base model takes x / 127.5 - 1 from the same preprocess
        )


class MobileNetV3Small(_MobileNetV3):
    """MobileNet v3 small: the fastest of the family on mobile CPUs."""

    name = "mobilenet_v3_small"
    application = "MobileNetV3Small"
    size = "small"


class MobileNetV3Large(_MobileNetV3):
    """MobileNet v3 large: v3's accurate variant (ImageNet top-1 75 % at alpha 1.0, 224 px)."""

    name = "mobilenet_v3_large"
    application = "MobileNetV3Large"
    size = "large"


#: The plugins of this module, in the order the registry lists them.
PLUGINS = (MobileNetV1, MobileNetV2, MobileNetV3Small, MobileNetV3Large)
