"""Named augmentation pipelines: the read-only presets and a project's stored ones; finding and editing them.

Every edit is checked first and saved in one transaction, so a refused edit leaves the project as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from ..errors import InputError, NotFoundError
from .pipeline import DEFAULT_PROBABILITY, Pipeline, Step


def _preset(name: str, steps: Iterable[Step]) -> Pipeline:
    return Pipeline(tuple(steps), name, preset=True)


#: Read-only pipelines every project offers. ``none``: no augmentation. ``default`` (what training
#: uses unless told otherwise): mild changes that keep any label true for everyday photos:
#: half the images mirrored, a third turned by up to 15 degrees (linear, grey corners), half with
#: brightness and half with contrast changed by up to 20 %. ``strong``: every photometric operator
#: plus flips and turns of up to 30 degrees, for small datasets that overfit. None flips vertically:
#: most scenes have an up.
PRESETS: Mapping[str, Pipeline] = MappingProxyType(
    {
        "none": _preset("none", ()),
        "default": _preset(
            "default",
            (
                Step("horizontal_flip", 0.5),
                Step("rotate", 0.3, {"limit": [-15, 15], "interpolation": 1}),
                Step("random_brightness", 0.5, {"limit": [-0.2, 0.2]}),
                Step("random_contrast", 0.5, {"limit": [-0.2, 0.2]}),
            ),
        ),
        "strong": _preset(
            "strong",
            (
                Step("horizontal_flip", 0.5),
                Step("rotate", 0.5, {"limit": [-30, 30], "interpolation": 1}),
                Step("random_blur", 0.2, {"blur_limit": [3, 5]}),
                Step("gaussian_noise", 0.2, {"var_limit": [10.0, 50.0]}),
                Step("hue_saturation_value", 0.3),
                Step("random_brightness", 0.5, {"limit": [-0.3, 0.3]}),
                Step("random_contrast", 0.5, {"limit": [-0.3, 0.3]}),
                Step("random_gamma", 0.3, {"gamma_limit": [80, 120]}),
            ),
        ),
    }
)


def is_preset(name: str) -> bool:
    """Whether `name` is (in any letter case) a preset's name."""
    return str(name).strip().casefold() in PRESETS


def _refuse_preset(name: str, action: str) -> None:
    if is_preset(name):
        preset = str(name).strip().casefold()
        raise InputError(
            f"{preset!r} is a preset and cannot be {action}; create a copy with "
            f"create_pipeline(project, 'my-{preset}', copy_from={preset!r}) "
            f"(eiq augment create PROJECT my-{preset} --from {preset}) and edit that"
        )


def pipeline_names(project: Any = None) -> list[str]:
    """The presets' names, then the project's stored pipelines (in the order they were created).

    A stored pipeline named like a preset (say, from an older file) is hidden by the preset and left out.
    """
    names = list(PRESETS)
    if project is not None:
        names += [name for name in project.pipelines() if not is_preset(name)]
    return names


def get_pipeline(project: Any, name: str) -> Pipeline:
    """The pipeline called `name`: a preset, else one stored in `project`.

    Args:
        project: an open `Project`, or ``None`` for presets only.
        name: a preset's or a stored pipeline's name.

    Raises:
        NotFoundError: no such pipeline (naming the ones there are).
        InputError: the stored pipeline no longer checks (the message names the step).
    """
    key = str(name).strip()
    if is_preset(key):
        return PRESETS[key.casefold()]
    stored = project.pipelines() if project is not None else {}
    if key not in stored:
        raise NotFoundError(f"no augmentation pipeline {key!r}; available: {', '.join(pipeline_names(project))}")
    return Pipeline.from_json(stored[key], key)


def _stored(project: Any, name: str, action: str) -> Pipeline:
    _refuse_preset(name, action)
    return get_pipeline(project, name)


def _save(project: Any, pipeline: Pipeline, create: bool) -> Pipeline:
    project.save_pipeline(pipeline.name, pipeline.to_json(), create=create)
    return pipeline


def create_pipeline(
    project: Any, name: str, steps: Iterable[Step | Mapping[str, Any]] = (), copy_from: str | None = None
) -> Pipeline:
    """Store a new pipeline, empty, with `steps`, or as a copy of another (a preset or a stored one).

    Args:
        project: an open `Project`.
        name: the new name (not a preset's, not taken).
        steps: its steps (`Step` objects or their JSON forms), when not copying.
        copy_from: the name of a pipeline (preset or stored) whose steps to copy instead.

    Returns:
        The stored pipeline.

    Raises:
        InputError: the name is a preset's, empty or taken; both `steps` and `copy_from`; a bad step.
        NotFoundError: `copy_from` does not exist.
    """
    clean = str(name).strip()
    if not clean:
        raise InputError("a pipeline name cannot be empty")
    if is_preset(clean):
        raise InputError(f"{clean!r} is the name of a preset; choose another name")
    steps = tuple(steps)
    if copy_from is not None and steps:
        raise InputError("give either steps or copy_from, not both")
    with project.transaction():
        source = get_pipeline(project, copy_from).steps if copy_from is not None else steps
        return _save(project, Pipeline(source, clean), create=True)


def _index(pipeline: Pipeline, index: int, what: str = "index", end: bool = False) -> int:
    count = len(pipeline.steps) + (1 if end else 0)
    if isinstance(index, bool) or not isinstance(index, int) or not -count <= index < count:
        if count == 0:
            raise InputError(f"pipeline {pipeline.name!r} has no steps; {what} {index!r} does not exist")
        raise InputError(
            f"{what} must be an integer from 0 to {count - 1} (the step's position in {pipeline.name!r}, "
            f"negative counts from the end); received {index!r}"
        )
    return index % count


def add_step(
    project: Any,
    name: str,
    op: str,
    probability: float = DEFAULT_PROBABILITY,
    *,
    index: int | None = None,
    **params: Any,
) -> Pipeline:
    """Add a step to a stored pipeline (at the end, or before position `index`).

    Args:
        project: an open `Project`.
        name: a stored pipeline (not a preset).
        op: the operator id.
        probability: its chance per image, 0..1.
        index: where to insert it (0-based; default the end).
        **params: operator parameters; the rest take their defaults.

    Returns:
        The pipeline as stored now.

    Raises:
        InputError: a preset, an unknown operator or parameter, a value out of range.
        NotFoundError: no such pipeline.

    Example:
        >>> add_step(project, "mine", "rotate", 0.3, limit=[-10, 10])  # doctest: +SKIP
    """
    with project.transaction():
        pipeline = _stored(project, name, "edited")
        step = Step(op, probability, params)
        steps = list(pipeline.steps)
        at = len(steps) if index is None else _index(pipeline, index, end=True)
        steps.insert(at, step)
        return _save(project, pipeline.with_steps(steps), create=False)


def update_step(project: Any, name: str, index: int, *, probability: float | None = None, **params: Any) -> Pipeline:
    """Change a step's probability and/or some of its parameters.

    Raises:
        InputError: a preset, an index out of range, a bad value.
        NotFoundError: no such pipeline or parameter.
    """
    with project.transaction():
        pipeline = _stored(project, name, "edited")
        at = _index(pipeline, index)
        steps = list(pipeline.steps)
        steps[at] = steps[at].with_changes(probability, **params)
        return _save(project, pipeline.with_steps(steps), create=False)


def remove_step(project: Any, name: str, index: int) -> Pipeline:
    """Remove the step at `index` (0-based; negative counts from the end).

    Raises:
        InputError: a preset, or an index out of range.
        NotFoundError: no such pipeline.
    """
    with project.transaction():
        pipeline = _stored(project, name, "edited")
        at = _index(pipeline, index)
        steps = [step for i, step in enumerate(pipeline.steps) if i != at]
        return _save(project, pipeline.with_steps(steps), create=False)


def move_step(project: Any, name: str, index: int, new_index: int) -> Pipeline:
    """Move the step at `index` to position `new_index` (both 0-based), shifting the others.

    Raises:
        InputError: a preset, or an index out of range.
        NotFoundError: no such pipeline.
    """
    with project.transaction():
        pipeline = _stored(project, name, "edited")
        at = _index(pipeline, index)
        to = _index(pipeline, new_index, "new_index")
        steps = list(pipeline.steps)
        steps.insert(to, steps.pop(at))
        return _save(project, pipeline.with_steps(steps), create=False)


def rename_pipeline(project: Any, name: str, new_name: str) -> Pipeline:
    """Rename a stored pipeline (neither name may be a preset's).

    Raises:
        InputError: a preset, or the new name is empty or taken.
        NotFoundError: no such pipeline.
    """
    with project.transaction():
        pipeline = _stored(project, name, "renamed")
        if is_preset(new_name):
            raise InputError(f"{str(new_name).strip()!r} is the name of a preset; choose another name")
        project.rename_pipeline(pipeline.name, new_name)
        return get_pipeline(project, str(new_name).strip())


def delete_pipeline(project: Any, name: str) -> None:
    """Delete a stored pipeline.

    Raises:
        InputError: a preset.
        NotFoundError: no such pipeline.
    """
    _refuse_preset(name, "deleted")
    project.delete_pipeline(str(name).strip())
