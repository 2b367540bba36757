"""An augmentation pipeline: an ordered list of steps (operator, probability, parameters) and how it runs.

`Pipeline.apply` augments a uint8 numpy image with OpenCV, seeded so a run can be repeated; `Pipeline.apply_tf`
wraps it as a TensorFlow op for `tf.data` maps.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

import numpy as np

from ..errors import InputError
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

    def apply(self, image: Any, seed: Any) -> np.ndarray:
        """Augment one image; everything drawn comes from `seed`, so the same seed gives the same image.

        Args:
            image: a uint8 array [H, W, C], C 1 or 3 (or anything `numpy.asarray` makes one of).
            seed: two non-negative integers (an int is taken as ``[seed, 0]``).

        Returns:
            A new uint8 array of the same shape.

        Raises:
            InputError: the image is not uint8 [H, W, C] with C 1 or 3, or the seed is not two integers.
        """
        image, _, _ = self._run(image, None, seed)
        return image

    def apply_with_boxes(
        self, image: Any, boxes: Any, seed: Any, min_visibility: float = MIN_BOX_VISIBILITY
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Augment an image and its boxes together: flips and rotations move the boxes with the pixels.

        The image is exactly what `apply` gives for the same seed. A rotated box becomes the axis-aligned
        box around its rotated corners, clipped to the image.

        Args:
            image: a uint8 array [H, W, C], C 1 or 3.
            boxes: [N, 4] normalised (ymin, xmin, ymax, xmax) in 0..1.
            seed: two non-negative integers.
            min_visibility: the least fraction of a box (clipped area over the area it had before
                clipping, multiplied over the steps that clip) that keeps it; see `MIN_BOX_VISIBILITY`.

        Returns:
            ``(image, boxes, keep)``: the uint8 image, float32 [N, 4] boxes, and a bool [N] mask of the
            boxes still visible enough to keep.
        """
        if not 0.0 <= float(min_visibility) <= 1.0:
            raise InputError(f"min_visibility must be from 0 to 1; received {min_visibility!r}")
        boxes = np.asarray(boxes, np.float32)
        if boxes.size == 0:
            boxes = boxes.reshape(0, 4)
        if boxes.ndim != 2 or boxes.shape[1] != 4:
            raise InputError(f"boxes must be [N, 4] (ymin, xmin, ymax, xmax); received shape {boxes.shape}")
        image, boxes, visible = self._run(image, boxes, seed)
        return image, boxes, visible >= float(min_visibility)

    def apply_tf(self, image: Any, seed: Any, boxes: Any = None, *, nice: int = 0) -> Any:
        """`apply` (or, with `boxes`, `apply_with_boxes`) as a TensorFlow op, for `tf.data` maps.

        Args:
            image: a uint8 tensor [H, W, C].
            seed: an integer tensor of shape [2].
            boxes: a float32 tensor [N, 4], or None.
            nice: raise the niceness of each input thread that augments by this much (once per thread;
                where the OS allows it), so augmenting takes the CPU time a training step leaves idle
                instead of pre-empting the step's own threads.

        Returns:
            The uint8 image tensor (shape kept), or ``(image, boxes, keep)`` with boxes.
        """
        tf = _tensorflow()
        image = tf.convert_to_tensor(image)
        seed = tf.cast(seed, tf.int64)
        apply, apply_with_boxes = (self.apply, self.apply_with_boxes) if not nice else _niced(self, nice)
        if boxes is None:
            out = tf.numpy_function(apply, [image, seed], tf.uint8, stateful=False)
            out.set_shape(image.shape)
            return out
        boxes = tf.convert_to_tensor(boxes, tf.float32)
        out, moved, keep = tf.numpy_function(
            apply_with_boxes, [image, boxes, seed], (tf.uint8, tf.float32, tf.bool), stateful=False
        )
        out.set_shape(image.shape)
        moved.set_shape(boxes.shape)
        keep.set_shape(boxes.shape[:1])
        return out, moved, keep

    def _run(self, image: Any, boxes: np.ndarray | None, seed: Any) -> tuple[np.ndarray, Any, Any]:
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (1, 3):
            raise InputError(
                f"an image to augment must be uint8 [H, W, C] with C 1 or 3; received {image.dtype.name} "
                f"of shape {image.shape}"
            )
        rng = _generator(seed)
        visible = None if boxes is None else np.ones(len(boxes), np.float32)
        active = [step for step in self.steps if step.probability > 0]  # 0 is exactly the identity
        # the gates are drawn first, one per step, so which steps run never depends on what ran before
        gates = rng.random(len(active))
        pixels = image
        for step, gate in zip(active, gates):
            if gate >= step.probability:
                continue
            if not pixels.flags.c_contiguous:
                pixels = np.ascontiguousarray(pixels)
            pixels, new_boxes, seen = step.operator.apply(pixels, boxes, step.params, rng)
            if pixels.shape != image.shape or pixels.dtype != np.uint8:
                raise InputError(
                    f"augmentation operator {step.op!r} returned {pixels.dtype.name} of shape {pixels.shape}; "
                    f"operators must return uint8 of the input's shape {image.shape}"
                )
            if boxes is not None:
                boxes = np.asarray(new_boxes, np.float32)
                if seen is not None:
                    visible = visible * seen
        return (pixels.copy() if pixels is image else pixels), boxes, visible


def lower_thread_priority(nice: int) -> None:
    """Make the calling thread's nice value the process's plus `nice` (at most 19), where the OS allows it.

    For input threads: they then take the CPU time the training step leaves idle instead of pre-empting
    the step's own threads. Calling it again on the same thread changes nothing (cheap: it reads the
    thread's nice value; a `threading.local` flag would not do, as TensorFlow gives each of its calls into
    Python a new thread state, so the flag was lost and the priority lowered again on every call).
    """
    if not nice:
        return
    try:  # Linux: a thread is a task with its own nice value; elsewhere this may apply to the process
        thread = threading.get_native_id()
        wanted = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + int(nice))
        if os.getpriority(os.PRIO_PROCESS, thread) < wanted:
            os.setpriority(os.PRIO_PROCESS, thread, wanted)
    except (AttributeError, OSError):  # no setpriority (Windows) or not allowed: run at normal priority
        return


def _niced(pipeline: Pipeline, nice: int) -> tuple[Any, Any]:
    """`apply` and `apply_with_boxes` of `pipeline` that first lower their thread's priority by `nice`."""

    def apply(image: Any, seed: Any) -> np.ndarray:
        lower_thread_priority(nice)
        return pipeline.apply(image, seed)

    def apply_with_boxes(image: Any, boxes: Any, seed: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        lower_thread_priority(nice)
        return pipeline.apply_with_boxes(image, boxes, seed)

    return apply, apply_with_boxes


def _tensorflow() -> Any:
    """The `tensorflow` module, through `eiq_lab.framework` (only `Pipeline.apply_tf` needs it)."""
    from .. import framework

    return framework.tf()


def _generator(seed: Any) -> np.random.Generator:
    """The random generator of one augmented image: Philox keyed by the seed's two integers.

    Raises:
        InputError: the seed is not one integer or two.
    """
    try:
        value = np.asarray(seed)
    except (TypeError, ValueError):
        value = np.asarray(None)
    if value.dtype.kind not in "iu":
        raise InputError(f"an augmentation seed must be integers; received {seed!r}")
    if value.ndim == 0:
        value = np.stack([value, np.zeros_like(value)])
    if value.shape != (2,):
        raise InputError(f"an augmentation seed must have shape [2] (or be one integer); received shape {value.shape}")
    key = [int(v) & 0xFFFFFFFFFFFFFFFF for v in value]
    # re-keying this thread's generator costs a quarter of making a new one (which hashes a seed sequence)
    thread = threading.get_native_id()
    cached = _generators.get(thread)
    if cached is None:
        if len(_generators) >= 256:  # threads come and go (tf.data makes new ones per dataset)
            _generators.clear()
        cached = _generators[thread] = np.random.Generator(np.random.Philox(key=key))
    bits = cached.bit_generator
    state = bits.state
    state["state"]["key"][:] = key
    state["state"]["counter"][:] = 0
    state["buffer"][:] = 0
    state["buffer_pos"] = 4
    state["has_uint32"] = state["uinteger"] = 0
    bits.state = state
    return cached


#: one generator per OS thread (tf.data runs `Pipeline.apply_tf` on several threads at once), by native id:
#: a `threading.local` is emptied at every call TensorFlow makes into Python (each gets a new thread state)
_generators: dict[int, np.random.Generator] = {}
