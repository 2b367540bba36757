"""The model plugin interfaces (the guide's `ImageClassificationInterface`, `ObjectDetectionInterface`).

A plugin overrides what it needs; every method here has a sensible default, plus input/parameter checks.
"""

from __future__ import annotations

import math
import operator
import os
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from ..errors import InputError

#: The tasks a plugin can solve (the value of `get_task()`).
TASKS = ("classification", "detection")
#: Types a parameter of `get_exposed_parameters()` may declare.
PARAMETER_TYPES = ("int", "float", "bool", "str", "choice")
#: Optimizer names the trainer knows; Adam first: the guide's recommended setting (3.7.5).
OPTIMIZERS = ("adam", "sgd", "adagrad", "adadelta", "rmsprop", "adamax", "nadam")
#: Square sizes a plugin accepts unless it says otherwise.
COMMON_SIZES = (96, 128, 160, 192, 224)

_TFLITE_BOTH_GRANULARITIES = {"framework": "tflite", "per_channel": True, "per_tensor": True}
_IO_TYPES = ["int8", "uint8", "float32"]


def signed_normalization(image: Any) -> Any:
    """Map a uint8 HWC tensor to float32 in [-1, 1] (x / 127.5 - 1), what MobileNets expect."""
    from .. import framework

    tf = framework.tf()
    return tf.cast(image, tf.float32) / 127.5 - 1.0


def unsigned_normalization(image: Any) -> Any:
    """Map a uint8 HWC tensor to float32 in [0, 1] (x / 255)."""
    from .. import framework

    tf = framework.tf()
    return tf.cast(image, tf.float32) / 255.0


def no_normalization(image: Any) -> Any:
    """A uint8 HWC tensor as float32 pixels 0..255 (a model that scales its input itself)."""
    from .. import framework

    tf = framework.tf()
    return tf.cast(image, tf.float32)


#: normalization name (the converter's `quant_normalization`) -> (preprocess function, formula)
NORMALIZATIONS: dict[str, tuple[Callable[[Any], Any], str]] = {
    "signed": (signed_normalization, "x/127.5-1"),
    "unsigned": (unsigned_normalization, "x/255"),
    "none": (no_normalization, "x"),
}


def snake_case(name: str) -> str:
    """``"MyVGG16Model"`` -> ``"my_vgg16_model"`` (the default plugin name from its class name)."""
    name = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    name = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    return name.lower()


def format_shape(shape: Any) -> str:
    """A shape as users write it: ``(128, 128, 3)``."""
    try:
        return "(" + ", ".join(str(v) for v in shape) + ")"
    except TypeError:
        return repr(shape)


def parse_shape(shape: Any) -> tuple[int, int, int]:
    """Check that `shape` is (height, width, channels) of positive integers and return it as a tuple.

    Raises:
        InputError: it is not three positive integers.
    """
    problem = InputError(
        f"input size must be (H, W, C): three positive integers, e.g. (128, 128, 3); received {format_shape(shape)}"
    )
    if isinstance(shape, str | bytes) or (not isinstance(shape, Sequence) and not hasattr(shape, "__iter__")):
        raise problem
    values = []
    for value in shape:
        if isinstance(value, bool):
            raise problem
        try:
            values.append(operator.index(value))  # int, numpy integers; not floats
        except TypeError:
            raise problem from None
    if len(values) != 3 or min(values) <= 0:
        raise problem
    return (values[0], values[1], values[2])


def check_imagenet_channels(shape: tuple[int, int, int], weights: Any, model: str) -> None:
    """Refuse a non-RGB input with ImageNet weights (they were trained on 3-channel images).

    Raises:
        InputError: `weights` asks for ImageNet and the shape has other than 3 channels.
    """
    channels = shape[2]
    if resolve_weights(weights) == "imagenet" and channels != 3:
        raise InputError(
            f"input size must be (H, W, C) with C = 3 for ImageNet weights (they were trained on RGB images); "
            f"received {format_shape(shape)}: use weights=None to train a {channels}-channel {model}"
        )


def resolve_weights(weights: Any) -> str | Path | None:
    """Say what `weights` asks for: ``"imagenet"``, ``None`` (random) or the path of an existing file.

    ``"none"`` and ``"random"`` (any case) mean None, for command lines.

    Raises:
        InputError: a string that is none of these, or a file that does not exist.
    """
    if weights is None:
        return None
    if isinstance(weights, str) and weights.strip().lower() in ("none", "random", ""):
        return None
    if isinstance(weights, str) and weights.strip().lower() == "imagenet":
        return "imagenet"
    if isinstance(weights, str | os.PathLike):
        path = Path(weights).expanduser()
        if path.exists() or Path(f"{path}.index").exists():  # a TensorFlow checkpoint is a prefix
            return path
        raise InputError(
            f"weights file {path} does not exist; weights must be 'imagenet', None (random initialization) or "
            "an existing weights file (.h5, .keras, .weights.h5 or a TensorFlow checkpoint)"
        )
    raise InputError(f"weights must be 'imagenet', None or a file path; received {weights!r}")


class ModelInterface:
    """What every model plugin describes: how to build it and which settings the GUI may offer.

    Subclass `ImageClassificationInterface` or `ObjectDetectionInterface`, never this class.
    """

    #: The value of `get_task()`; set by the two task interfaces.
    task: ClassVar[str] = ""

    def get_model(
        self,
        input_shape: Sequence[int],
        num_classes: int,
        weights: str | None = None,
        named_params: Mapping[str, Any] | None = None,
    ) -> Any:
        """Build the Keras model (Keras 2, `eiq_lab.framework.keras()`).

        Args:
            input_shape: (height, width, channels).
            num_classes: number of labels.
            weights: ``"imagenet"``, ``None`` (random initialization) or a weights file path.
            named_params: values of the parameters from `get_exposed_parameters()`.

        Returns:
            A Keras model taking a batch of `input_shape` images preprocessed by `get_preprocess_function()`.

        Raises:
            NotImplementedError: always, here; every plugin implements it.
        """
        raise NotImplementedError(
            f"model plugin {self.get_name()!r} ({type(self).__module__}.{type(self).__name__}) does not implement "
            "get_model(self, input_shape, num_classes, weights, named_params); add that method returning a Keras model"
        )

    def get_exposed_parameters(self) -> list[dict[str, Any]]:
        """Parameters the user may set: ``{"name", "type", "default", "choices", "min", "max", "help"}`` each.

        `type` is one of int, float, bool, str, choice; the GUI builds its controls from this list.
        """
        return []

    def get_qat_support(self) -> list[dict[str, Any]]:
        """Quantization-aware training support: ``{"framework", "per_channel", "per_tensor", "input_types",
        "output_types"}`` per framework; empty when unsupported."""
        return [{**_TFLITE_BOTH_GRANULARITIES, "input_types": list(_IO_TYPES), "output_types": list(_IO_TYPES)}]

    def get_ptq_support(self) -> list[dict[str, Any]]:
        """Post-training quantization support, in the form of `get_qat_support()`."""
        return [{**_TFLITE_BOTH_GRANULARITIES, "input_types": list(_IO_TYPES), "output_types": list(_IO_TYPES)}]

    def get_allowed_dimensions(self) -> list[tuple[int, int, int]]:
        """Input shapes (height, width, channels) the model accepts (the GUI's choices)."""
        return [(size, size, 3) for size in COMMON_SIZES]

    def get_pretrained_dimensions(self) -> list[dict[str, Any]]:
        """Shapes with pretrained weights: ``{"shape": (h, w, c), "weights": "imagenet", "source": str}`` each."""
        return []

    def get_optimizers(self) -> list[str]:
        """Optimizer names the model trains with; the first is the default."""
        return list(OPTIMIZERS)

    def get_losses(self) -> list[str]:
        """Loss names; the first is the default."""
        return []

    def get_metrics(self) -> list[str]:
        """Keras metric names reported while training; the first is the one charts show."""
        return ["accuracy"]

    def get_task(self) -> str:
        """``"classification"`` or ``"detection"``."""
        return self.task

    def get_name(self) -> str:
        """The model's name in the registry, GUI and CLI (default: the class name in snake_case)."""
        return snake_case(type(self).__name__)

    def is_base(self) -> bool:
        """True for models shipped with the toolkit (base models), False for user models."""
        return False

    def get_metadata(self) -> dict[str, Any]:
        """Constants the converter embeds in the model (normalization, anchors, ...)."""
        _, formula = NORMALIZATIONS["signed"]
        return {"normalization": "signed", "preprocess": formula, "input_order": "HWC", "task": self.get_task()}

    def get_preprocess_function(self) -> Callable[[Any], Any]:
        """A function from a uint8 HWC image tensor to the float32 tensor the model takes.

        The default follows `get_metadata()["normalization"]` (signed: x / 127.5 - 1).
        """
        normalization = self.get_metadata().get("normalization", "signed")
        if normalization not in NORMALIZATIONS:
            raise InputError(
                f"model plugin {self.get_name()!r} declares normalization {normalization!r}; the default "
                f"preprocess function knows {', '.join(NORMALIZATIONS)}: override get_preprocess_function()"
            )
        return NORMALIZATIONS[normalization][0]

    def get_loss_named_params(self) -> dict[str, Any]:
        """Model constants the loss needs (anchors, strides, ...); empty by default."""
        return {}

    # -- checks (eiq-lab extensions of the guide's interface) --------------------------------------------

    def check_input_shape(self, shape: Any, weights: str | None = None) -> tuple[int, int, int]:
        """Check that the model can take `shape` (with these `weights`) and return it as a tuple.

        The default accepts the shapes of `get_allowed_dimensions()`.

        Raises:
            InputError: the shape is malformed or not one the model takes (the message lists those).
        """
        shape = parse_shape(shape)
        allowed = [tuple(s) for s in self.get_allowed_dimensions()]
        if allowed and shape not in allowed:
            listed = ", ".join(format_shape(s) for s in allowed)
            raise InputError(
                f"input size must be (H, W, C) with (H, W, C) one of {listed} for model {self.get_name()!r}; "
                f"received {format_shape(shape)}"
            )
        return shape

    def validate_params(self, named_params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Check `named_params` against `get_exposed_parameters()` and fill in the defaults.

        Values given as strings (from a command line) are converted to the declared type.

        Args:
            named_params: parameter name -> value; None means all defaults.

        Returns:
            Every exposed parameter with its checked value.

        Raises:
            InputError: an unknown name (the message lists the valid ones), a value of the wrong type, not
                among the choices or outside min/max.
        """
        specs = {spec["name"]: spec for spec in self.get_exposed_parameters()}
        given = dict(named_params or {})
        unknown = sorted(set(given) - set(specs))
        if unknown:
            valid = ", ".join(specs) or "none (this model exposes no parameters)"
            raise InputError(
                f"unknown model parameter(s) {', '.join(map(repr, unknown))} for model {self.get_name()!r}; "
                f"valid: {valid}"
            )
        values = {}
        for name, spec in specs.items():
            values[name] = _check_value(self.get_name(), spec, given[name]) if name in given else spec.get("default")
        return values


class ImageClassificationInterface(ModelInterface):
    """Base class of image classification plugins (one label per image, softmax output)."""

    task = "classification"

    def get_losses(self) -> list[str]:
        """Categorical cross-entropy on one-hot labels."""
        return ["categorical_crossentropy"]


class ObjectDetectionInterface(ModelInterface):
    """Base class of object detection plugins (boxes and labels); adds the box `encoder()`/`decoder()`."""

    task = "detection"

    def get_qat_support(self) -> list[dict[str, Any]]:
        """None by default: detection heads need care under QAT; a plugin that supports it says so."""
        return []

    def get_metrics(self) -> list[str]:
        """None by default: detection quality is mAP, computed by eiq_lab.evaluate, not a Keras metric."""
        return []

    def encoder(self) -> Callable[..., Any]:
        """A callable turning ground-truth boxes and labels into training targets of the model's outputs."""
        raise NotImplementedError(
            f"detection plugin {self.get_name()!r} ({type(self).__name__}) does not implement encoder(); "
            "add it, returning a callable from (boxes, labels) to the model's training targets"
        )

    def decoder(self) -> Callable[..., Any]:
        """A callable turning the model's outputs into boxes, scores and labels."""
        raise NotImplementedError(
            f"detection plugin {self.get_name()!r} ({type(self).__name__}) does not implement decoder(); "
            "add it, returning a callable from the model's outputs to (boxes, scores, labels)"
        )


_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _convert(value: Any, kind: str) -> Any:
    """`value` as `kind` (int, float, bool, str); raises ValueError when it cannot be."""
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError
    if kind == "int":
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, str):
            return int(value.strip())
        raise ValueError
    if kind == "float":
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, int | float):
            result = float(value)
        elif isinstance(value, str):
            result = float(value.strip())
        else:
            raise ValueError
        if not math.isfinite(result):
            raise ValueError
        return result
    if kind == "str":
        if isinstance(value, str):
            return value
        raise ValueError
    raise ValueError


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    if isinstance(a, str) and isinstance(b, str):
        return a.lower() == b.lower()
    return a == b


def _check_value(model: str, spec: Mapping[str, Any], value: Any) -> Any:
    name, kind = spec["name"], spec.get("type", "str")
    where = f"model parameter {name!r} of {model!r}"
    if kind == "choice":
        choices = list(spec.get("choices") or [])
        for choice in choices:
            kind_of_choice = {bool: "bool", int: "int", float: "float"}.get(type(choice), "str")
            try:
                if _same(_convert(value, kind_of_choice), choice):
                    return choice
            except ValueError:
                continue
        raise InputError(f"{where} must be one of {', '.join(map(str, choices))}; received {value!r}")
    if kind not in PARAMETER_TYPES:
        raise InputError(f"{where} declares type {kind!r}; types are {', '.join(PARAMETER_TYPES)}")
    try:
        converted = _convert(value, kind)
    except ValueError:
        raise InputError(f"{where} must be of type {kind}; received {value!r}") from None
    low, high = spec.get("min"), spec.get("max")
    if low is not None and converted < low:
        raise InputError(f"{where} must be at least {low}; received {converted!r}")
    if high is not None and converted > high:
        raise InputError(f"{where} must be at most {high}; received {converted!r}")
    return converted
