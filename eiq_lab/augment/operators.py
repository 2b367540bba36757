"""The registry of augmentation operators: the guide's nine, with their parameters, plus any a plugin adds.

`operator(id)` looks one up (failing with the valid ids), `operators()` lists them; OpenCV loads on first use.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from ..errors import InputError, NotFoundError
from . import transforms
from .parameters import Parameter

#: Entry-point group through which other packages add operators (each entry point loads an `Operator`).
ENTRY_POINT_GROUP = "eiq_lab.augment_operators"


@dataclass(frozen=True)
class Operator:
    """An augmentation operator: what it is, its parameters, and its implementation.

    Attributes:
        id: the name pipelines store (``"rotate"``).
        title: the guide's name (``"Rotate"``).
        description: what it simulates, for tooltips.
        parameters: its settings besides the probability, in display order.
        geometric: whether it moves pixels (then boxes move with them).
        transform: for a geometric operator ``fn(image, boxes, params, rng) -> (image, boxes, visible)``
            (`boxes` a float32 [N, 4] array of normalised ymin, xmin, ymax, xmax, or ``None``; `visible`
            the fraction of each box left in the frame, or ``None``); otherwise ``fn(image, params, rng)
            -> image``. Images are uint8 numpy arrays [H, W, C] (C 1 or 3) and must come back uint8 of the
            same shape; `rng` is the image's `numpy.random.Generator`: draw everything random from it.
    """

    id: str
    title: str
    description: str
    parameters: tuple[Parameter, ...]
    geometric: bool
    transform: Callable[..., Any]

    def parameter(self, name: str) -> Parameter:
        """The parameter called `name`.

        Raises:
            NotFoundError: no such parameter (naming the valid ones).
        """
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        valid = ", ".join(p.name for p in self.parameters) or "none (only the probability)"
        raise NotFoundError(f"{self.id} has no parameter {name!r}; its parameters: {valid}")

    def defaults(self) -> dict[str, Any]:
        """Every parameter's default value."""
        return {p.name: p.default for p in self.parameters}

    def check_params(self, params: Mapping[str, Any] | None, where: str = "") -> dict[str, Any]:
        """Complete `params` with the defaults and check every value.

        Args:
            params: some or all of this operator's parameters.
            where: what messages name first (default: the operator's id).

        Returns:
            Every parameter, in the order of `parameters`, in its stored form.

        Raises:
            InputError: an unknown name, or a value of the wrong kind or out of range.
        """
        where = where or self.id
        if params is not None and not isinstance(params, Mapping):
            raise InputError(f"{where}: params must be an object of name -> value; received {params!r}")
        params = dict(params or {})
        for name in params:
            try:
                self.parameter(name)
            except NotFoundError as exc:
                raise NotFoundError(f"{where}: {exc}") from None
        return {p.name: p.check(params.get(p.name, p.default), where) for p in self.parameters}

    def apply(self, image: Any, boxes: Any, params: Mapping[str, Any], rng: Any) -> tuple[Any, Any, Any]:
        """Run the transform on a uint8 image (and boxes, if any): ``(image, boxes, visible or None)``."""
        if self.geometric:
            return self.transform(image, boxes, params, rng)
        return self.transform(image, params, rng), boxes, None

    def to_dict(self) -> dict[str, Any]:
        """The description as JSON: id, title, description, geometric, parameters."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "geometric": self.geometric,
            "parameters": [p.to_dict() for p in self.parameters],
        }


_INTERPOLATION = ((0, "nearest"), (1, "linear"), (2, "cubic"), (3, "area"), (4, "lanczos"))
_BORDERS = ((0, "constant"), (1, "replicate"), (2, "reflect"), (3, "wrap"), (4, "reflect_101"))

_BUILTIN = (
    Operator(
        "rotate",
        "Rotate",
        "Turn the image about its centre, as a camera that is not level or objects lying in any "
        "orientation; corners the image no longer covers take the border mode (the fill colour for constant).",
        (
            Parameter(
                "limit",
                "Rotation Limit",
                "int_range",
                [-90, 90],
                -180,
                180,
                "lower and upper angle in degrees; each image turns by an angle drawn between them "
                "(positive: counter-clockwise)",
            ),
            Parameter(
                "interpolation",
                "Interpolation",
                "choice",
                0,
                0,
                4,
                "OpenCV's code: 0 nearest, 1 linear, 2 cubic, 3 area, 4 lanczos (OpenCV's warps treat area as linear)",
                choices=_INTERPOLATION,
            ),
            Parameter(
                "border_mode",
                "Border Mode",
                "choice",
                0,
                0,
                4,
                "OpenCV's code for uncovered corners: 0 constant (the fill colour), 1 replicate, 2 reflect, "
                "3 wrap, 4 reflect_101 (mirrored without repeating the edge pixel)",
                choices=_BORDERS,
            ),
            Parameter(
                "fill_color",
                "Fill Color",
                "color",
                [127, 127, 127],
                0,
                255,
                "red, green, blue of the corners with border mode 0 (grey images take its luma)",
            ),
        ),
        True,
        transforms.rotate,
    ),
    Operator(
        "horizontal_flip",
        "Horizontal Flip",
        "Mirror left-right, as a car driving either way.",
        (),
        True,
        transforms.horizontal_flip,
    ),
    Operator(
        "vertical_flip",
        "Vertical Flip",
        "Mirror top-bottom (for scenes without a natural up: aerial, microscope, conveyor).",
        (),
        True,
        transforms.vertical_flip,
    ),
    Operator(
        "random_blur",
        "Random Blur",
        "Average over a square kernel, as an out-of-focus or low-resolution camera.",
        (
            Parameter(
                "blur_limit",
                "Blur Limit",
                "int_range",
                [3, 7],
                3,
                63,
                "lower and upper kernel size in pixels; each image draws an odd size between them (even "
                "bounds round inwards, and never past the lower one: [4, 4] blurs with 5)",
            ),
        ),
        False,
        transforms.random_blur,
    ),
    Operator(
        "gaussian_noise",
        "Gaussian Noise",
        "Add normally distributed noise to every pixel and channel, as a camera in low light.",
        (
            Parameter(
                "var_limit",
                "Var Limit",
                "float_range",
                [10.0, 50.0],
                0,
                2500,
                "lower and upper variance of the noise in grey levels squared (0-255 units); each image "
                "draws one between them",
            ),
            Parameter("mean", "Mean", "float", 0.0, -128, 128, "mean of the noise in grey levels", step=0.5),
        ),
        False,
        transforms.gaussian_noise,
    ),
    Operator(
        "hue_saturation_value",
        "Hue Saturation Value",
        "Shift hue, saturation and value, as a camera whose colour control drifts.",
        (
            Parameter(
                "hue_shift_limit",
                "Hue Shift Limit",
                "int_range",
                [-20, 20],
                -180,
                180,
                "lower and upper hue shift in OpenCV's 8-bit hue units (180 a full turn, 2 degrees each)",
            ),
            Parameter(
                "sat_shift_limit",
                "Saturation Shift Limit",
                "int_range",
                [-30, 30],
                -255,
                255,
                "lower and upper saturation shift in 0-255 units",
            ),
            Parameter(
                "val_shift_limit",
                "Value Shift Limit",
                "int_range",
                [-20, 20],
                -255,
                255,
                "lower and upper value (brightness) shift in 0-255 units; grey images get this shift only",
            ),
        ),
        False,
        transforms.hue_saturation_value,
    ),
    Operator(
        "random_brightness",
        "Random Brightness",
        "Brighten or darken, as day and evening, sun and cloud.",
        (
            Parameter(
                "limit",
                "Limit",
                "float_range",
                [-0.2, 0.2],
                -1,
                1,
                "lower and upper change as a fraction of full scale (0.2 adds 51 grey levels)",
                step=0.01,
            ),
        ),
        False,
        transforms.random_brightness,
    ),
    Operator(
        "random_contrast",
        "Random Contrast",
        "Raise or lower contrast: each channel is scaled about its mean.",
        (
            Parameter(
                "limit",
                "Limit",
                "float_range",
                [-0.2, 0.2],
                -1,
                1,
                "lower and upper change of contrast: each image is scaled about its mean by 1 + a value "
                "drawn between them (-1 makes it flat grey)",
                step=0.01,
            ),
        ),
        False,
        transforms.random_contrast,
    ),
    Operator(
        "random_gamma",
        "Random Gamma",
        "Gamma correction V1 = 255 * (V0 / 255) ** gamma: above 1 darkens mid-tones, below 1 brightens them.",
        (
            Parameter(
                "gamma_limit",
                "Gamma Limit",
                "int_range",
                [80, 120],
                1,
                500,
                "lower and upper gamma in hundredths (80 .. 120 is gamma 0.8 .. 1.2)",
            ),
        ),
        False,
        transforms.random_gamma,
    ),
)

_registry: dict[str, Operator] = {op.id: op for op in _BUILTIN}
_plugins_loaded = False
_lock = threading.Lock()


def register_operator(op: Operator) -> None:
    """Add an operator (what an entry point in `ENTRY_POINT_GROUP` does for a plugin package).

    Raises:
        InputError: not an `Operator`, or its id is taken.
    """
    if not isinstance(op, Operator):
        raise InputError(f"an augmentation operator must be an eiq_lab.augment.Operator; received {op!r}")
    with _lock:
        if op.id in _registry:
            raise InputError(f"augmentation operator {op.id!r} already exists; choose another id")
        _registry[op.id] = op


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        try:
            register_operator(entry.load())
        except Exception as exc:  # a broken plugin must not take the built-in operators with it
            warnings.warn(
                f"augmentation operator plugin {entry.name!r} ({entry.value}) is skipped: {exc}", stacklevel=3
            )


def operators() -> list[Operator]:
    """Every operator: the guide's nine in its order, then plugins'."""
    _load_plugins()
    return list(_registry.values())


def operator(id: str) -> Operator:
    """The operator called `id`.

    Raises:
        NotFoundError: no such operator (naming the valid ones).
    """
    found = _registry.get(str(id).strip())
    if found is None and not _plugins_loaded:  # built-ins need no search of installed packages
        _load_plugins()
        found = _registry.get(str(id).strip())
    if found is None:
        raise NotFoundError(f"unknown augmentation operator {id!r}; valid operators: {', '.join(_registry)}")
    return found


#: The registry's one lookup, under the name every registry in eiq-lab uses.
get = operator
