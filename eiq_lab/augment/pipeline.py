"""An augmentation pipeline: an ordered list of steps (operator, probability, parameters) and how it runs.

`Pipeline.apply` runs inside `tf.data` maps (graph mode, no Python per image), seeded so a run can be repeated.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from ..errors import InputError
from . import transforms
from .operators import Operator, operator

#: The probability a new step gets (the guide's Portal starts its sliders at 0.5).
DEFAULT_PROBABILITY = 0.5

#: Boxes less visible than this after a rotation (clipped area over the area of the box around the
#: rotated corners) are dropped. A quarter: below it what stays in the frame is a sliver of the
#: object or the empty corners of the enclosing box, and teaching a detector to call a sliver an
#: object breeds false positives; much higher and it never sees objects cut by the frame, which real
#: cameras show all the time. (albumentations' min_visibility, which defaults to 0, means the same.)
MIN_BOX_VISIBILITY = 0.25

_STEP_KEYS = ("op", "probability", "params")


@dataclass(frozen=True)
class Step:
    """One operator of a pipeline, applied to each image with `probability`.

    Construction checks everything and completes `params` with the operator's defaults.

    Args:
        op: the operator id (``"rotate"``).
        probability: the chance, 0..1, that an image gets this step (0: never, 1: always).
        params: some or all of the operator's parameters.

    Raises:
        InputError: unknown operator or parameter, a value out of range, probability outside 0..1.
    """

    op: str
    probability: float = DEFAULT_PROBABILITY
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        op = operator(self.op)
        p = self.probability
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or not 0 <= p <= 1:
            raise InputError(f"{op.id}: probability must be a number from 0 to 1; received {p!r}")
        # read-only (ranges and colours as tuples) so a checked step cannot be changed unchecked
        checked = {k: tuple(v) if isinstance(v, list) else v for k, v in op.check_params(self.params).items()}
        object.__setattr__(self, "op", op.id)
        object.__setattr__(self, "probability", float(p))
        object.__setattr__(self, "params", MappingProxyType(checked))

    def __hash__(self) -> int:
        return hash((self.op, self.probability, tuple(self.params.items())))

    @property
    def operator(self) -> Operator:
        """The registered `Operator` of this step."""
        return operator(self.op)

    def to_json(self) -> dict[str, Any]:
        """``{"op": ..., "probability": ..., "params": {every parameter}}``."""
        return {"op": self.op, "probability": self.probability, "params": {k: _copy(v) for k, v in self.params.items()}}

    @classmethod
    def from_json(cls, value: Mapping[str, Any]) -> Step:
        """A step from its JSON form (``params`` and ``probability`` may be left out: defaults).

        Raises:
            InputError: not an object with ``op``, an unknown key, or what `Step` refuses.
        """
        if not isinstance(value, Mapping) or "op" not in value:
            raise InputError(
                f'a step must be an object like {{"op": "rotate", "probability": 0.5}}; received {value!r}'
            )
        unknown = sorted(set(value) - set(_STEP_KEYS))
        if unknown:
            raise InputError(f"a step has keys {', '.join(_STEP_KEYS)}; received unknown {', '.join(unknown)}")
        return cls(value["op"], value.get("probability", DEFAULT_PROBABILITY), value.get("params") or {})

    def with_changes(self, probability: float | None = None, **params: Any) -> Step:
        """A copy with a new probability and/or some parameters changed (checked again)."""
        return Step(self.op, self.probability if probability is None else probability, {**self.params, **params})


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, (list, tuple)) else value


@dataclass(frozen=True)
class Pipeline:
    """An ordered augmentation pipeline; each image meets each step independently with its probability.

    Args:
        steps: `Step` objects (or their JSON forms) in order.
        name: its name in the project or the presets (for messages and display).
        preset: whether it is a read-only preset.

    Example:
        >>> p = Pipeline([Step("horizontal_flip", 0.5), Step("rotate", 0.3, {"limit": [-10, 10]})])
        >>> p.to_json()[0]
        {'op': 'horizontal_flip', 'probability': 0.5, 'params': {}}
    """

    steps: tuple[Step, ...] = ()
    name: str = ""
    preset: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.steps, (str, bytes, Mapping)) or not isinstance(self.steps, Iterable):
            raise InputError(f"{self._where()}steps must be a list of steps; received {self.steps!r}")
        steps = []
        for index, step in enumerate(self.steps, 1):
            try:
                steps.append(step if isinstance(step, Step) else Step.from_json(step))
            except InputError as exc:
                raise type(exc)(f"{self._where()}step {index}: {exc}") from None
        object.__setattr__(self, "steps", tuple(steps))

    def _where(self) -> str:
        return f"pipeline {self.name!r} " if self.name else ""

    @classmethod
    def from_json(cls, operators: Any, name: str = "", preset: bool = False) -> Pipeline:
        """A pipeline from the JSON list a project stores (see `Step.to_json`).

        Raises:
            InputError: not a list, or a step that `Step` refuses (the message names the step).
        """
        if not isinstance(operators, (list, tuple)):
            where = f"pipeline {name!r}" if name else "a pipeline"
            raise InputError(f"{where} must be a list of steps; received {operators!r}")
        return cls(tuple(operators), name, preset)

    def to_json(self) -> list[dict[str, Any]]:
        """The steps as the JSON list a project stores."""
        return [step.to_json() for step in self.steps]

    def validate(self) -> Pipeline:
        """Check every step again (against the operators registered now); returns itself.

        Raises:
            InputError: a step no longer valid (the message names it).
        """
        Pipeline(tuple(step.to_json() for step in self.steps), self.name, self.preset)
        return self

    def with_steps(self, steps: Iterable[Step | Mapping[str, Any]]) -> Pipeline:
        """A copy holding other steps (checked)."""
        return replace(self, steps=tuple(steps))

    # -- running -----------------------------------------------------------------------------

    def apply(self, image: Any, seed: Any) -> Any:
        """Augment one image; everything drawn comes from `seed`, so the same seed gives the same image.

        Works eagerly and inside `tf.data` maps and `tf.function`s (graph mode, stateless random ops).

        Args:
            image: a uint8 tensor [H, W, C], C 1 or 3 (H, W may be dynamic).
            seed: an integer tensor of shape [2] (int32 or int64: the same values draw the same; an int
                is taken as ``[seed, 0]``).

        Returns:
            A uint8 tensor of the same shape.

        Raises:
            InputError: the image is not uint8 [H, W, C] with C 1 or 3, or the seed is not of shape [2].
        """
        tf = transforms.tensorflow()
        image, _, _ = tf.autograph.experimental.do_not_convert(self._run)(image, None, seed)
        return image

    def apply_with_boxes(
        self, image: Any, boxes: Any, seed: Any, min_visibility: float = MIN_BOX_VISIBILITY
    ) -> tuple[Any, Any, Any]:
        """Augment an image and its boxes together: flips and rotations move the boxes with the pixels.

        The image is exactly what `apply` gives for the same seed. A rotated box becomes the axis-aligned
        box around its rotated corners, clipped to the image.

        Args:
            image: a uint8 tensor [H, W, C], C 1 or 3.
            boxes: float32 [N, 4], normalised (ymin, xmin, ymax, xmax) in 0..1.
            seed: an int tensor of shape [2].
            min_visibility: the least fraction of a box (clipped area over the area it had before
                clipping, multiplied over the steps that clip) that keeps it; see `MIN_BOX_VISIBILITY`.

        Returns:
            ``(image, boxes, keep)``: the uint8 image, float32 [N, 4] boxes, and a bool [N] mask of the
            boxes still visible enough to keep.
        """
        if not 0.0 <= float(min_visibility) <= 1.0:
            raise InputError(f"min_visibility must be from 0 to 1; received {min_visibility!r}")
        tf = transforms.tensorflow()
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        if boxes.shape.rank is not None and (boxes.shape.rank != 2 or boxes.shape[-1] not in (None, 4)):
            raise InputError(f"boxes must be [N, 4] (ymin, xmin, ymax, xmax); received shape {boxes.shape}")
        run = tf.autograph.experimental.do_not_convert(self._run)  # plain TF ops: nothing to convert
        image, boxes, visible = run(image, tf.reshape(boxes, [-1, 4]), seed)
        return image, boxes, visible >= float(min_visibility)

    def _run(self, image: Any, boxes: Any, seed: Any) -> tuple[Any, Any, Any]:
        tf = transforms.tensorflow()
        image = tf.convert_to_tensor(image)
        if image.dtype != tf.uint8 or image.shape.rank != 3 or image.shape[-1] not in (None, 1, 3):
            raise InputError(
                f"an image to augment must be uint8 [H, W, C] with C 1 or 3; received {image.dtype.name} "
                f"of shape {image.shape}"
            )
        seed = _seed(seed)
        visible = None if boxes is None else tf.ones(tf.shape(boxes)[:1], tf.float32)
        active = [step for step in self.steps if step.probability > 0]  # 0 is exactly the identity
        if not active:
            return tf.identity(image), boxes, visible
        pixels = tf.cast(image, tf.float32)
        # every step's seed is derived from its index, so a step draws the same whatever others do
        step_seeds = transforms.seeds(seed, len(self.steps))
        for index, step in enumerate(self.steps):
            if step.probability <= 0:
                continue
            gate_seed, op_seed = transforms.seeds(step_seeds[index], 2)
            op, params = step.operator, step.params

            def augment(pixels=pixels, boxes=boxes, visible=visible, op=op, params=params, op_seed=op_seed):
                new_pixels, new_boxes, seen = op.apply(pixels, boxes, params, op_seed)
                new_pixels = tf.reshape(new_pixels, tf.shape(pixels))
                if boxes is None:
                    return new_pixels
                return new_pixels, new_boxes, visible if seen is None else visible * seen

            def unchanged(pixels=pixels, boxes=boxes, visible=visible):
                return pixels if boxes is None else (pixels, boxes, visible)

            if step.probability >= 1:
                result = augment()
            else:
                drawn = tf.random.stateless_uniform([], seed=gate_seed)
                result = tf.cond(drawn < step.probability, augment, unchanged)
            if boxes is None:
                pixels = result
            else:
                pixels, boxes, visible = result
            pixels.set_shape(image.shape)
        out = tf.cast(tf.round(tf.clip_by_value(pixels, 0.0, 255.0)), tf.uint8)
        out.set_shape(image.shape)
        return out, boxes, visible


def _seed(seed: Any) -> Any:
    tf = transforms.tensorflow()
    value = tf.convert_to_tensor(seed)
    if not value.dtype.is_integer:
        raise InputError(f"an augmentation seed must be integers; received {value.dtype.name}")
    # one dtype: stateless ops draw differently from an int32 and an int64 seed of the same values
    value = tf.cast(value, tf.int64)
    if value.shape.rank == 0:
        value = tf.stack([value, tf.constant(0, tf.int64)])
    if value.shape.rank != 1 or value.shape[0] not in (None, 2):
        raise InputError(f"an augmentation seed must have shape [2] (or be one integer); received {value.shape}")
    return value
