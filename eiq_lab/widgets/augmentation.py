"""The Augmentation panel (the guide's "Augmentation Pipeline" workspace): the pipelines list, the selected
pipeline's steps with a control for every parameter, and a preview grid of project images augmented by it.
"""

from __future__ import annotations

import html
import io
import itertools
import random
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..augment import (
    Parameter,
    Pipeline,
    add_step,
    create_pipeline,
    delete_pipeline,
    get_pipeline,
    is_preset,
    move_step,
    operator,
    operators,
    pipeline_names,
    remove_step,
    rename_pipeline,
    update_step,
)
from ..augment.preview import PreviewSample, preview_project
from ..errors import InputError
from ..train.drafts import load_draft, save_draft
from .base import Job, Panel

#: Box colours of labels that have none of their own (cycled in label order).
_PALETTE = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#42d4f4", "#f032e6", "#bfef45")
#: The longer side of a preview tile on the page, in pixels.
TILE = 160


def control_for(parameter: Parameter, value: Any) -> w.Widget:
    """The widget that edits one operator parameter, built from its description (kind, limits, step).

    Args:
        parameter: the operator's parameter.
        value: its current (stored) value.

    Returns:
        A slider for numbers and ranges, a dropdown for choices, a colour picker for colours; its `value` is
        what `Parameter.check` accepts.
    """
    common = dict(description=parameter.title, tooltip=parameter.help, style={"description_width": "140px"})
    layout = w.Layout(width="420px")
    if parameter.kind in ("int", "int_range"):
        cls = w.IntSlider if parameter.kind == "int" else w.IntRangeSlider
        stored = int(value) if parameter.kind == "int" else tuple(int(v) for v in value)
        control = cls(
            value=stored,
            min=int(parameter.minimum),
            max=int(parameter.maximum),
            step=max(1, int(parameter.step)),
            continuous_update=False,
            layout=layout,
            **common,
        )
    elif parameter.kind in ("float", "float_range"):
        cls = w.FloatSlider if parameter.kind == "float" else w.FloatRangeSlider
        stored = float(value) if parameter.kind == "float" else tuple(float(v) for v in value)
        decimals = max(0, -int(f"{parameter.step:e}".split("e")[1]))
        control = cls(
            value=stored,
            min=float(parameter.minimum),
            max=float(parameter.maximum),
            step=float(parameter.step),
            readout_format=f".{decimals}f",
            continuous_update=False,
            layout=layout,
            **common,
        )
    elif parameter.kind == "choice":
        control = w.Dropdown(
            options=[(f"{label} ({code})", code) for code, label in parameter.choices],
            value=int(value),
            layout=layout,
            **common,
        )
    else:  # colour
        red, green, blue = (int(v) for v in value)
        control = w.ColorPicker(value=f"#{red:02x}{green:02x}{blue:02x}", concise=False, layout=layout, **common)
    control.add_class("eiq-augmentation-param")
    control.add_class(f"eiq-augmentation-param-{parameter.name}")
    return control


def stored_value(parameter: Parameter, control_value: Any) -> Any:
    """A control's value in the form `update_step` takes (ranges as lists)."""
    if parameter.kind in ("int_range", "float_range"):
        return list(control_value)
    return control_value


def tile_png(sample: PreviewSample, colors: dict[str, str], size: int = TILE) -> bytes:
    """A preview sample as a PNG tile: scaled so its longer side is `size`, its boxes drawn with their labels."""
    from PIL import Image, ImageDraw

    pixels = sample.pixels[:, :, 0] if sample.pixels.shape[2] == 1 else sample.pixels
    image = Image.fromarray(pixels).convert("RGB")
    scale = size / max(image.size)
    small = max(image.size) < size  # small images keep their pixels sharp when enlarged
    resample = Image.Resampling.NEAREST if small else Image.Resampling.BILINEAR
    image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), resample)
    draw = ImageDraw.Draw(image)
    for (ymin, xmin, ymax, xmax), label in zip(sample.boxes.tolist(), sample.box_labels):
        color = colors.get(label, _PALETTE[0])
        box = (xmin * image.width, ymin * image.height, xmax * image.width - 1, ymax * image.height - 1)
        draw.rectangle(box, outline=color, width=2)
        draw.text((box[0] + 3, box[1] + 2), label, fill=color)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Augmentation(Panel):
    """Edit a project's augmentation pipelines and preview them on its images.

    Presets are locked (duplicate one to edit a copy); stored pipelines can be created, renamed, deleted and
    edited step by step. Every change is saved in the project at once, checked by the engine: a refused value
    leaves the project unchanged and says why in the status line.

    Args:
        project: an open `Project`.
        count: how many images the preview grid shows.
        columns: tiles per row of the grid.

    Attributes:
        on_use: called with the pipeline's name after "Use for training" saved it into the draft settings.

    Example:
        >>> Augmentation(project)      # doctest: +SKIP
    """

    title = "Augmentation"

    def __init__(self, project: Any, *, count: int = 8, columns: int = 4):
        self.project = project
        self.count = count
        self.seed: int | None = None  # None: no preview shown yet
        self.on_use: Callable[[str], None] | None = None
        self._stale = False
        self._updating = False
        self._rng = random.Random()
        self.tiles: list[tuple[PreviewSample, bytes]] = []
        self.selected = self._initial_selection()

        self.pipelines = w.Select(rows=8, layout=w.Layout(width="240px"))
        self.pipelines.add_class("eiq-augmentation-pipelines")
        self.name = w.Text(placeholder="name of a new or renamed pipeline", layout=w.Layout(width="240px"))
        self.name.add_class("eiq-augmentation-name")
        self.new_button = self._button("New", "plus", "a new empty pipeline (named by the box above)", "new")
        self.duplicate_button = self._button(
            "Duplicate", "copy", "a copy of the selected pipeline, to edit", "duplicate"
        )
        self.rename_button = self._button("Rename", "i-cursor", "rename the selected pipeline", "rename")
        self.delete_button = self._button("Delete", "trash", "delete the selected pipeline", "delete")
        self.lock_note = w.HTML("")
        self.lock_note.add_class("eiq-augmentation-locked")

        self.operator = w.Dropdown(options=[(op.title, op.id) for op in operators()], layout=w.Layout(width="220px"))
        self.operator.add_class("eiq-augmentation-operator")
        self.operator_help = w.HTML("", layout=w.Layout(width="420px"))
        self.add_button = self._button("Add", "plus", "add the operator as the pipeline's last step", "add")
        self.steps = w.VBox([])
        self.steps.add_class("eiq-augmentation-steps")

        self.generate_button = self._button(
            "Generate new random augmentation", "random", "augment a new random draw of training images", "generate"
        )
        self.use_button = self._button(
            "Use for training", "check", "save this pipeline into the project's training settings", "use"
        )
        self.generate_button.layout.width = self.use_button.layout.width = "fit-content"
        self.grid = w.GridBox(layout=w.Layout(grid_template_columns=f"repeat({columns}, {TILE + 8}px)", grid_gap="6px"))
        self.grid.add_class("eiq-augmentation-grid")

        self.pipelines.observe(self._on_select, "value")
        self.operator.observe(lambda _: self._show_operator_help(), "value")
        for button, action in (
            (self.new_button, self._new),
            (self.duplicate_button, self._duplicate),
            (self.rename_button, self._rename),
            (self.delete_button, self._delete),
            (self.add_button, self._add),
            (self.generate_button, lambda: self.generate()),
            (self.use_button, self._use),
        ):
            button.on_click(self.guarded(lambda _, action=action: action()))

        left = w.VBox(
            [
                w.HTML("<b>Pipelines</b>"),
                self.pipelines,
                self.name,
                w.HBox([self.new_button, self.duplicate_button]),
                w.HBox([self.rename_button, self.delete_button]),
            ]
        )
        middle = w.VBox(
            [
                self.lock_note,
                w.HBox([w.HTML("<b>Augmentations</b>&nbsp;"), self.operator, self.add_button]),
                self.operator_help,
                self.steps,
            ],
            layout=w.Layout(margin="0 16px"),
        )
        right = w.VBox([w.HBox([self.generate_button, self.use_button]), self.grid])
        super().__init__([w.HBox([left, middle, right], layout=w.Layout(flex_flow="row wrap"))])
        self.add_class("eiq-augmentation")
        self._show_operator_help()
        self.refresh()

    # -- building --------------------------------------------------------------------------------

    def _button(self, text: str, icon: str, tooltip: str, name: str) -> w.Button:
        button = w.Button(description=text, icon=icon, tooltip=tooltip, layout=w.Layout(width="116px"))
        button.add_class(f"eiq-augmentation-{name}")
        return button

    def _initial_selection(self) -> str:
        try:
            wanted = load_draft(self.project).augmentation
        except Exception:  # an unreadable draft: the Training panel reports it; start from the default
            return "default"
        return wanted if wanted in pipeline_names(self.project) else "default"

    def _draft_augmentation(self) -> str | None:
        try:
            return load_draft(self.project).augmentation
        except Exception:
            return None

    def refresh(self) -> None:
        """Show the project's pipelines and the selected one's steps as stored now."""
        names = pipeline_names(self.project)
        if self.selected not in names:
            self.selected = "default"
        training = self._draft_augmentation()
        options = []
        for name in names:
            marks = [" (preset, locked)" if is_preset(name) else "", " \u2713 training" if name == training else ""]
            options.append((name + "".join(marks), name))
        self._updating = True
        try:
            self.pipelines.options = options
            self.pipelines.value = self.selected
        finally:
            self._updating = False
        self._show_steps()

    def pipeline(self) -> Pipeline:
        """The selected pipeline as stored in the project (or the preset)."""
        return get_pipeline(self.project, self.selected)

    @property
    def locked(self) -> bool:
        """Whether the selected pipeline is a preset (read-only)."""
        return is_preset(self.selected)

    def _show_steps(self) -> None:
        pipeline = self.pipeline()
        locked = self.locked
        self.lock_note.value = (
            f"<span style='color:#9a6700'>&#128274; <b>{html.escape(self.selected)}</b> is a preset: locked. "
            "Duplicate it to edit a copy.</span>"
            if locked
            else f"<b>{html.escape(self.selected)}</b>: {len(pipeline.steps)} step(s); changes are saved at once."
        )
        for widget in (self.add_button, self.operator, self.rename_button, self.delete_button):
            widget.disabled = locked
        editors = [self._step_editor(pipeline, index, locked) for index in range(len(pipeline.steps))]
        if not editors:
            editors = [w.HTML("<i>no steps: images are used as they are</i>")]
        self.steps.children = editors

    def _step_editor(self, pipeline: Pipeline, index: int, locked: bool) -> w.VBox:
        step = pipeline.steps[index]
        op = step.operator
        up = w.Button(icon="arrow-up", tooltip="move up", layout=w.Layout(width="36px"), disabled=locked or index == 0)
        down = w.Button(
            icon="arrow-down",
            tooltip="move down",
            layout=w.Layout(width="36px"),
            disabled=locked or index == len(pipeline.steps) - 1,
        )
        remove = w.Button(icon="trash", tooltip="remove this step", layout=w.Layout(width="36px"), disabled=locked)
        up.add_class("eiq-augmentation-up")
        down.add_class("eiq-augmentation-down")
        remove.add_class("eiq-augmentation-remove")
        up.on_click(self.guarded(lambda _: self.move(index, index - 1)))
        down.on_click(self.guarded(lambda _: self.move(index, index + 1)))
        remove.on_click(self.guarded(lambda _: self.remove(index)))

        probability = w.FloatSlider(
            value=step.probability,
            min=0.0,
            max=1.0,
            step=0.01,
            description="Probability",
            tooltip="the share of training images that get this step, drawn again for every image and epoch",
            style={"description_width": "140px"},
            continuous_update=False,
            disabled=locked,
            layout=w.Layout(width="420px"),
        )
        probability.add_class("eiq-augmentation-probability")
        probability.observe(lambda change: self._edit(index, probability=change["new"]), "value")
        controls = [probability]
        for parameter in op.parameters:
            control = control_for(parameter, step.params[parameter.name])
            control.disabled = locked
            control.observe(
                lambda change, p=parameter: self._edit(index, **{p.name: stored_value(p, change["new"])}), "value"
            )
            controls.append(control)
        header = w.HBox(
            [w.HTML(f"<b>{index + 1}. {html.escape(op.title)}</b>", layout=w.Layout(width="300px")), up, down, remove]
        )
        editor = w.VBox(
            [header, w.HTML(f"<small>{html.escape(op.description)}</small>"), *controls],
            layout=w.Layout(border="1px solid #ddd", padding="4px", margin="4px 0", width="450px"),
        )
        editor.add_class("eiq-augmentation-step")
        editor.add_class(f"eiq-augmentation-step-{op.id}")
        return editor

    def _show_operator_help(self) -> None:
        if self.operator.value is None:
            return
        self.operator_help.value = f"<small>{html.escape(operator(self.operator.value).description)}</small>"

    # -- pipelines -------------------------------------------------------------------------------

    def _on_select(self, change: dict) -> None:
        if self._updating or change["new"] is None:
            return
        self.selected = change["new"]
        self.guarded(self._after_change)(steps=True)

    def _unique(self, stem: str) -> str:
        names = {n.casefold() for n in pipeline_names(self.project)}
        for number in itertools.count(1):
            name = stem if number == 1 else f"{stem}-{number}"
            if name.casefold() not in names:
                return name
        raise AssertionError("unreachable")

    def _new(self) -> None:
        name = self.name.value.strip() or self._unique("pipeline")
        create_pipeline(self.project, name)
        self._select(name, f"created pipeline {name!r}: add augmentations to it")

    def _duplicate(self) -> None:
        source = self.selected
        name = self.name.value.strip() or self._unique(f"my-{source}")
        create_pipeline(self.project, name, copy_from=source)
        self._select(name, f"created {name!r}, a copy of {source!r}: edit it freely")

    def _rename(self) -> None:
        new = self.name.value.strip()
        if not new:
            raise InputError("type the new name in the name box, then press Rename")
        old = self.selected
        rename_pipeline(self.project, old, new)
        if self._draft_augmentation() == old:
            save_draft(self.project, augmentation=new)
        self._select(new, f"renamed {old!r} to {new!r}")

    def _delete(self) -> None:
        name = self.selected
        delete_pipeline(self.project, name)
        note = ""
        if self._draft_augmentation() == name:
            save_draft(self.project, augmentation="default")
            note = "; training will use the 'default' preset instead"
        self._select("default", f"deleted pipeline {name!r}{note}")

    def _select(self, name: str, message: str) -> None:
        self.selected = name
        self.name.value = ""
        self._after_change(steps=True)
        self.say(message, "ok")

    def select(self, name: str) -> None:
        """Show the pipeline called `name` (a preset or a stored one).

        Raises:
            NotFoundError: no such pipeline.
        """
        self.selected = get_pipeline(self.project, name).name
        self._after_change(steps=True)

    # -- steps -----------------------------------------------------------------------------------

    def add(self, op: str, probability: float | None = None, **params: Any) -> None:
        """Add a step to the selected pipeline (what the Add button does with the chosen operator).

        Raises:
            InputError: the pipeline is a preset, or a value is refused (nothing is stored).
        """
        extra = {} if probability is None else {"probability": probability}
        add_step(self.project, self.selected, op, **extra, **params)
        self._after_change(steps=True)
        self.say(f"added {operator(op).title} to {self.selected!r}", "ok")

    def _add(self) -> None:
        self.add(self.operator.value)

    def remove(self, index: int) -> None:
        """Remove the step at `index` (0-based) of the selected pipeline."""
        steps = self.pipeline().steps
        title = steps[index].operator.title if -len(steps) <= index < len(steps) else f"step {index + 1}"
        remove_step(self.project, self.selected, index)
        self._after_change(steps=True)
        self.say(f"removed {title} from {self.selected!r}", "ok")

    def move(self, index: int, new_index: int) -> None:
        """Move the step at `index` to `new_index` (both 0-based)."""
        move_step(self.project, self.selected, index, new_index)
        self._after_change(steps=True)

    def set_parameter(self, index: int, probability: float | None = None, **params: Any) -> None:
        """Change the probability and/or parameters of step `index`; what the step's controls do.

        A refused value is reported in the status line and the controls go back to the stored values.
        """
        self._edit(index, probability=probability, **params)

    def _edit(self, index: int, probability: float | None = None, **params: Any) -> None:
        if self._updating:
            return
        try:
            update_step(self.project, self.selected, index, probability=probability, **params)
        except Exception as exc:
            self.fail(exc)
            self.guarded(self._show_steps)()  # the controls show what is stored, not the refused value
            return
        what = "probability" if probability is not None else ", ".join(params)
        self.say(f"step {index + 1} of {self.selected!r}: {what} saved", "ok")
        self._after_change(steps=False)

    def _after_change(self, steps: bool) -> None:
        if steps:
            self.refresh()
        if self.seed is not None:
            self._start_preview()

    # -- preview and training --------------------------------------------------------------------

    def generate(self, seed: int | None = None) -> Job:
        """Preview the selected pipeline on a new random draw of training images (the generate button).

        Args:
            seed: draws the images and their augmentation (default: a new random seed).

        Returns:
            The background job making the tiles (`job.wait()` in scripts and tests).
        """
        self.seed = self._rng.randrange(2**31) if seed is None else int(seed)
        return self._start_preview()

    def _start_preview(self) -> Job:
        if self.job is not None and self.job.running:
            self._stale = True  # the running preview shows an older state: make another when it ends
            return self.job
        self._stale = False
        pipeline, seed = self.pipeline(), self.seed
        size, channels = self._input_shape()
        colors = self._label_colors()

        def work(progress: Any) -> list[tuple[PreviewSample, bytes]]:
            samples = preview_project(self.project, pipeline, self.count, seed, size=size, channels=channels)
            return [(sample, tile_png(sample, colors)) for sample in samples]

        self.job = Job(work, on_done=self._show_tiles, on_error=self.fail, name="eiq-augmentation-preview")
        return self.job

    def wait(self, timeout: float | None = 60) -> None:
        """Block until the preview (and any preview queued behind it by later edits) is shown."""
        while self.job is not None:
            job = self.job
            job.wait(timeout)
            if self.job is job:
                return

    def _input_shape(self) -> tuple[tuple[int, int] | None, int | None]:
        try:
            height, width, channels = load_draft(self.project).input_size
        except Exception:
            return None, None
        return (height, width), channels

    def _label_colors(self) -> dict[str, str]:
        labels = self.project.labels()
        return {str(label): label.color or _PALETTE[i % len(_PALETTE)] for i, label in enumerate(labels)}

    def _show_tiles(self, tiles: list[tuple[PreviewSample, bytes]]) -> None:
        cells = []
        for sample, png in tiles:
            image = w.Image(value=png, format="png", layout=w.Layout(max_width=f"{TILE}px"))
            named = sample.labels or sorted(set(sample.box_labels))
            caption = f"image {sample.image_id}" + (f": {', '.join(named)}" if named else "")
            if sample.box_labels:
                caption += f" ({len(sample.box_labels)} box{'es' if len(sample.box_labels) != 1 else ''})"
            cell = w.VBox([image, w.HTML(f"<small>{html.escape(caption)}</small>")])
            cell.add_class("eiq-augmentation-preview")
            cells.append(cell)
        self.grid.children = cells
        self.tiles = tiles
        if self._stale:
            self._start_preview()

    def _use(self) -> None:
        name = self.selected
        save_draft(self.project, augmentation=name)
        self.refresh()
        self.say(f"training will use the augmentation pipeline {name!r}", "ok")
        if self.on_use is not None:
            self.on_use(name)
