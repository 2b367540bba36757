"""The Model selection panel (the guide's "Model Selection" workspace): the wizard with its reason, base and user
models with their parameters and input sizes, and restoring a run's checkpoint; choices go into the draft settings.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import InputError
from ..models import recommend, registry
from ..models.interfaces import format_shape
from ..models.registry import normalize_name
from ..models.wizard import PRIORITIES, TARGETS
from ..train.drafts import load_draft, save_draft
from ..train.settings import TASKS, TrainingSettings
from .base import Job, Panel

SECTIONS = ("Wizard", "Base models", "User models", "Restore model")


def parameter_control(spec: dict[str, Any], value: Any) -> w.Widget:
    """The widget for one exposed model parameter (``{"name", "type", "default", "choices", "min", "max",
    "help"}``): a slider for a bounded number, a box for an open one, a checkbox, a dropdown or a text field."""
    kind = spec.get("type", "str")
    low, high = spec.get("min"), spec.get("max")
    common = dict(
        description=spec["name"],
        tooltip=spec.get("help", ""),
        style={"description_width": "140px"},
        layout=w.Layout(width="420px"),
    )
    if kind == "choice":
        choices = list(spec.get("choices") or [])
        control = w.Dropdown(
            options=[(str(c), c) for c in choices], value=value if value in choices else None, **common
        )
    elif kind == "bool":
        control = w.Checkbox(value=bool(value), indent=False, **common)
    elif kind == "int" and low is not None and high is not None:
        control = w.IntSlider(value=int(value), min=int(low), max=int(high), continuous_update=False, **common)
    elif kind == "float" and low is not None and high is not None:
        step = (float(high) - float(low)) / 100 or 0.01
        control = w.FloatSlider(
            value=float(value), min=float(low), max=float(high), step=step, continuous_update=False, **common
        )
    elif kind in ("int", "float"):
        control = (w.IntText if kind == "int" else w.FloatText)(value=value if value is not None else 0, **common)
    else:
        control = w.Text(value="" if value is None else str(value), **common)
    control.add_class("eiq-model-param")
    control.add_class(f"eiq-model-param-{spec['name']}")
    return control


def _button(text: str, icon: str, tooltip: str, css: str) -> w.Button:
    button = w.Button(description=text, icon=icon, tooltip=tooltip, layout=w.Layout(width="fit-content"))
    button.add_class(css)
    return button


class ModelSelection(Panel):
    """Choose the model to train: by the wizard, from the base or user models, or by restoring a checkpoint.

    A chosen model (with its parameters and input size) is saved into the project's draft training settings.

    Args:
        project: an open `Project`.

    Attributes:
        on_selected: called with the saved `TrainingSettings` after a model was chosen (the Portal opens the
            Training workspace with them).
        on_restore: called with ``(run, epoch)`` when a checkpoint is chosen to continue from (the Training
            panel starts the restored run); alone, the panel says how to continue it.

    Example:
        >>> ModelSelection(project)      # doctest: +SKIP
    """

    title = "Model selection"

    def __init__(self, project: Any):
        self.project = project
        self.on_selected: Callable[[TrainingSettings], None] | None = None
        self.on_restore: Callable[[int, int], None] | None = None
        self.recommendation: Any = None
        self.model_name: str | None = None
        self._controls: dict[str, w.Widget] = {}
        self._filling = False
        self._draft_problem: BaseException | None = None
        draft = self._draft()

        self.sections = w.ToggleButtons(options=SECTIONS, value=SECTIONS[0])
        self.sections.add_class("eiq-model-sections")
        self.task = w.ToggleButtons(options=[(t.capitalize(), t) for t in TASKS], value=draft.task, description="Task")
        self.task.add_class("eiq-model-task")

        # wizard
        self.priority = w.ToggleButtons(
            options=[(p.capitalize(), p) for p in PRIORITIES], value="balanced", description="Priority"
        )
        self.priority.add_class("eiq-model-priority")
        self.priority.tooltips = [
            "a very fast model for small problems",
            "a tradeoff between speed and accuracy",
            "the most accurate model",
        ]
        self.target = w.ToggleButtons(options=[(t.upper(), t) for t in TARGETS], value="npu", description="Target")
        self.target.add_class("eiq-model-target")
        self.reason = w.HTML("")
        self.reason.add_class("eiq-model-reason")
        self.use_recommendation = _button(
            "Use this model", "check", "save the recommended model into the training settings", "eiq-model-use-wizard"
        )
        self.wizard = w.VBox([self.priority, self.target, self.reason, self.use_recommendation])

        # base and user models
        self.base_list = w.Select(rows=8, layout=w.Layout(width="260px"))
        self.base_list.add_class("eiq-model-base-list")
        self.user_list = w.Select(rows=8, layout=w.Layout(width="260px"))
        self.user_list.add_class("eiq-model-user-list")
        self.folders = w.HTML("")
        self.problems = w.HTML("")
        self.problems.add_class("eiq-model-problems")
        self.rescan = _button("Rescan plugins", "refresh", "read the plugin folders again", "eiq-model-rescan")
        self.details = w.VBox([])
        self.details.add_class("eiq-model-details")
        self.input_size = w.Dropdown(
            description="Input size (H, W, C)", style={"description_width": "140px"}, layout=w.Layout(width="420px")
        )
        self.input_size.add_class("eiq-model-input-size")
        self.use_model = _button(
            "Use this model", "check", "save this model and its settings into the training settings", "eiq-model-use"
        )
        self.catalog = w.HBox([])

        # restore
        self.runs = w.Select(rows=6, layout=w.Layout(width="420px"))
        self.runs.add_class("eiq-model-runs")
        self.checkpoints = w.Select(rows=6, layout=w.Layout(width="520px"))
        self.checkpoints.add_class("eiq-model-checkpoints")
        self.restore_button = _button(
            "Restore model", "history", "continue training from the chosen checkpoint", "eiq-model-restore"
        )
        self.restore = w.VBox(
            [
                w.HTML("<b>1.</b> the trained model"),
                self.runs,
                w.HTML("<b>2.</b> the checkpoint to restore"),
                self.checkpoints,
                self.restore_button,
            ]
        )

        self.body = w.VBox([])
        self.sections.observe(lambda _: self.guarded(self._show_section)(), "value")
        self.task.observe(lambda _: self.guarded(self._task_changed)(), "value")
        for toggle in (self.priority, self.target):
            toggle.observe(lambda _: self.guarded(self.update_wizard)(), "value")
        self.base_list.observe(lambda change: self._picked(change, "base"), "value")
        self.user_list.observe(lambda change: self._picked(change, "user"), "value")
        self.runs.observe(lambda _: self.guarded(self._show_checkpoints)(), "value")
        self.use_recommendation.on_click(self.guarded(lambda _: self.use_wizard()))
        self.use_model.on_click(self.guarded(lambda _: self.use()))
        self.rescan.on_click(self.guarded(lambda _: self.refresh(rescan=True)))
        self.restore_button.on_click(self.guarded(lambda _: self.restore_checkpoint()))

        self.current = w.HTML("")
        self.current.add_class("eiq-model-current")
        super().__init__([self.current, self.sections, self.task, self.body])
        self.add_class("eiq-model")
        self.guarded(self.refresh)()
        if self._draft_problem is not None:
            self.fail(self._draft_problem)

    # -- shared ----------------------------------------------------------------------------------

    def _draft(self) -> TrainingSettings:
        try:
            return load_draft(self.project)
        except Exception as exc:  # an unreadable draft: say so, start from the defaults (saving replaces it)
            self._draft_problem = exc
            return TrainingSettings()

    def refresh(self, rescan: bool = False) -> None:
        """Read the model registry (again, with `rescan`: after adding a plugin file), the runs and the draft."""
        self.registry = registry(refresh=rescan)
        self._fill_lists()
        self._fill_runs()
        self._show_current()
        self._show_section()
        if rescan:
            problems = len(self.registry.problems)
            self.say(f"{len(self.registry.names())} model(s) found" + (f", {problems} broken" if problems else ""))

    def _show_current(self) -> None:
        d = self._draft()
        model = d.model or "the wizard's balanced choice"
        alpha = f", alpha {d.alpha:g}" if d.alpha is not None else ""
        self.current.value = (
            f"Training settings: <b>{html.escape(model)}</b> ({d.task}{alpha}, input {format_shape(d.input_size)}, "
            f"augmentation {html.escape(d.augmentation)})"
        )

    def _show_section(self) -> None:
        section = self.sections.value
        if section == "Wizard":
            self.update_wizard()
            self.body.children = [self.wizard]
        elif section == "Restore model":
            self.body.children = [self.restore]
        else:
            self.body.children = [self.catalog]
            self._show_catalog(base=section == "Base models")
        self.task.layout.display = "none" if section == "Restore model" else ""

    def _task_changed(self) -> None:
        self._fill_lists()
        self._show_section()

    def _saved(self, settings: TrainingSettings, what: str) -> None:
        self._show_current()
        self.say(f"training settings saved: {what}", "ok")
        if self.on_selected is not None:
            self.on_selected(settings)

    # -- wizard ----------------------------------------------------------------------------------

    def update_wizard(self) -> None:
        """Ask the wizard for the task, priority and target shown, and show its choice with the reason.

        For an MCU target the int8 flash and RAM estimate (which builds the model) follows on a background
        thread (`self.job`).
        """
        rec = recommend(self.task.value, self.priority.value, self.target.value, estimate=False)
        self.recommendation = rec
        estimating = rec.target == "mcu" and rec.available
        self._show_recommendation(rec, estimating)
        self.use_recommendation.disabled = not rec.available
        if estimating:
            key = (rec.task, rec.priority, rec.target)

            def done(full: Any) -> None:
                current = self.recommendation
                if current is not None and (current.task, current.priority, current.target) == key:
                    self.recommendation = full
                    self._show_recommendation(full, False)

            self.job = Job(lambda progress: recommend(*key, estimate=True), on_done=done, on_error=self.fail)

    def _show_recommendation(self, rec: Any, estimating: bool) -> None:
        q = rec.quantization
        granularity = {True: "per-channel", False: "per-tensor", None: ""}[q.get("per_channel")]
        quant = f"{q['type']} {granularity}".strip() + f", input {q['input_type']}, output {q['output_type']}"
        if q.get("qat"):
            quant += ", quantization-aware training advised"
        memory = ""
        if rec.flash_bytes is not None and rec.ram_bytes is not None:
            memory = f"<br>int8 estimate: flash {rec.flash_bytes / 1024:.0f} KiB, RAM {rec.ram_bytes / 1024:.0f} KiB"
        elif estimating:
            memory = "<br><i>estimating flash and RAM (building the model)...</i>"
        note = f"<p style='color:#9a6700'><small>{html.escape(rec.note)}</small></p>" if rec.note else ""
        self.reason.value = (
            f"<div style='border:1px solid #ccc;padding:6px;max-width:720px'>"
            f"<b>{html.escape(rec.model)}</b>, input {format_shape(rec.input_size)}, alpha {rec.alpha:g}<br>"
            f"quantization: {html.escape(quant)}{memory}<p><i>Why:</i> {html.escape(rec.reason)}</p>{note}</div>"
        )

    def use_wizard(self) -> TrainingSettings:
        """Save the wizard's recommendation into the draft settings (the wizard's "use this model")."""
        rec = self.recommendation
        if rec is None or not rec.available:
            raise InputError("the wizard's model is not in the registry; choose a base or user model instead")
        plugin = self.registry.get(rec.model, task=rec.task)
        exposed = {spec["name"] for spec in plugin.get_exposed_parameters()}
        settings = save_draft(
            self.project,
            task=rec.task,
            model=rec.model,
            alpha=rec.alpha if "alpha" in exposed else None,
            model_params={},
            input_size=tuple(rec.input_size),
        )
        self._saved(settings, f"{rec.model}, alpha {rec.alpha:g}, input {format_shape(rec.input_size)}")
        return settings

    # -- base and user models --------------------------------------------------------------------

    def _fill_lists(self) -> None:
        entries = self.registry.plugins(self.task.value)
        for widget, base in ((self.base_list, True), (self.user_list, False)):
            names = [e.name for e in entries if e.base == base]
            keep = widget.value if widget.value in names else None
            self._filling = True
            try:
                widget.options = names
                widget.value = keep
            finally:
                self._filling = False
        folders = [f for f in self.registry.folders or [] if f[0] == "user"]
        self.folders.value = (
            "User model folders: " + "; ".join(f"{html.escape(str(folder))} ({var})" for _, folder, var in folders)
            if folders
            else "No user model folder: set EIQ_PLUGINS_USER (or the guide's DEEPVIEW_PLUGINS_USER) to a folder "
            "holding <code>classification/image/&lt;Family&gt;/*.py</code> or <code>detection/boxes/...</code>"
        )
        problems = self.registry.problems
        self.problems.value = (
            "<b style='color:#b3261e'>Plugins that could not be loaded:</b><ul>"
            + "".join(f"<li><code>{html.escape(p.source)}</code>: {html.escape(p.message)}</li>" for p in problems)
            + "</ul>"
            if problems
            else ""
        )

    def _show_catalog(self, base: bool) -> None:
        listing = self.base_list if base else self.user_list
        left = [listing]
        if not base:
            left = [listing, self.rescan]
            if not listing.options:
                left.insert(0, w.HTML(f"<i>no user {self.task.value} models</i>"))
        column = w.VBox(left)
        info = [] if base else [self.folders, self.problems]
        if listing.value is None and listing.options:
            draft = self._draft()
            self._filling = True
            try:
                listing.value = draft.model if draft.model in listing.options else listing.options[0]
            finally:
                self._filling = False
        if listing.value is None:
            self.model_name = None
            self.details.children = []
        else:
            self.show_model(listing.value)
        self.catalog.children = [column, w.VBox([*info, self.details], layout=w.Layout(margin="0 16px"))]

    def _picked(self, change: dict, kind: str) -> None:
        if not self._filling and change["new"] is not None:
            self.guarded(self.show_model)(change["new"])

    def show_model(self, name: str) -> None:
        """Show a model's description, parameter controls and input sizes (values from the draft if it is the
        draft's model, else the defaults)."""
        entry = self.registry.entry(name)
        plugin = entry.create()
        draft = self._draft()
        mine = draft.model is not None and normalize_name(draft.model) == normalize_name(entry.name)
        values = dict(draft.model_params) if mine else {}
        if mine and draft.alpha is not None:
            values.setdefault("alpha", draft.alpha)
        specs = plugin.get_exposed_parameters()
        self._controls = {
            spec["name"]: parameter_control(spec, values.get(spec["name"], spec.get("default"))) for spec in specs
        }
        pretrained = {tuple(p["shape"]) for p in plugin.get_pretrained_dimensions()}
        sizes = [tuple(s) for s in plugin.get_allowed_dimensions()]
        self.input_size.options = [
            (format_shape(s) + ("  \u2605 pretrained" if s in pretrained else ""), s) for s in sizes
        ]
        wanted = tuple(draft.input_size)
        if wanted in sizes:
            self.input_size.value = wanted
        elif sizes:
            self.input_size.value = next((s for s in sizes if s in pretrained), sizes[0])
        doc = (entry.plugin_class.__doc__ or "").strip().splitlines()
        kind = "base model" if entry.base else "user model"
        header = w.HTML(
            f"<b>{html.escape(entry.name)}</b> ({entry.task}, {kind})<br><small>{html.escape(doc[0] if doc else '')}"
            f"<br>from {html.escape(entry.source)}</small>"
        )
        params = list(self._controls.values()) or [w.HTML("<i>this model exposes no parameters</i>")]
        sizes_note = w.HTML(
            "<small>input sizes the model offers; \u2605 marks sizes with pretrained (ImageNet) weights</small>"
            if pretrained
            else "<small>no pretrained weights: the model trains from random initialisation</small>"
        )
        self.model_name = entry.name
        self.details.children = [
            header,
            w.HTML("<b>Model parameters</b>"),
            *params,
            self.input_size,
            sizes_note,
            self.use_model,
        ]

    def use(self) -> TrainingSettings:
        """Save the model shown, its parameter values and input size into the draft settings.

        Raises:
            InputError: no model shown, or a parameter value or input size the model refuses (nothing is saved).
        """
        if self.model_name is None:
            raise InputError("choose a model from the list first")
        entry = self.registry.entry(self.model_name)
        plugin = entry.create()
        values = plugin.validate_params({name: control.value for name, control in self._controls.items()})
        draft = self._draft()
        if self.input_size.value is None:
            raise InputError(f"model {entry.name} offers no input size (its get_allowed_dimensions() is empty)")
        size = plugin.check_input_shape(tuple(self.input_size.value), draft.weights)
        alpha = values.pop("alpha", None)
        settings = save_draft(
            self.project, draft, task=entry.task, model=entry.name, alpha=alpha, model_params=values, input_size=size
        )
        chosen = ({"alpha": alpha} if alpha is not None else {}) | values
        described = "".join(f", {name} {value}" for name, value in chosen.items())
        self._saved(settings, f"{entry.name}{described}, input {format_shape(size)}")
        return settings

    # -- restore ---------------------------------------------------------------------------------

    def _fill_runs(self) -> None:
        runs = self.project.runs()
        keep = self.runs.value
        self.runs.options = [
            (f"run {r.id}: {r.model} ({r.task}), {r.state}, {r.epochs} checkpoint(s)", r.id) for r in reversed(runs)
        ]
        self.runs.value = keep if keep in [r.id for r in runs] else (runs[-1].id if runs else None)
        self._show_checkpoints()
        self.restore_button.disabled = not runs

    def _show_checkpoints(self) -> None:
        run = self.runs.value
        if run is None:
            self.checkpoints.options = []
            return
        options = []
        for record in self.project.checkpoints(run):
            metrics = ", ".join(f"{k} {v:.3g}" for k, v in sorted(record.metrics.items()))
            options.append(
                (f"epoch {record.epoch} ({record.phase})" + (f": {metrics}" if metrics else ""), record.epoch)
            )
        self.checkpoints.options = options
        self.checkpoints.value = options[-1][1] if options else None

    def restore_checkpoint(self) -> tuple[int, int]:
        """Hand the chosen run and checkpoint to `on_restore` (the Training panel continues from it).

        Raises:
            InputError: no run or checkpoint chosen.
        """
        run, epoch = self.runs.value, self.checkpoints.value
        if run is None:
            raise InputError("this project has no training runs yet; train one first")
        if epoch is None:
            raise InputError(f"run {run} has no checkpoint to restore; choose another run")
        if self.on_restore is not None:
            self.on_restore(run, epoch)
            self.say(f"restoring run {run} at epoch {epoch}", "ok")
        else:
            self.say(
                f"checkpoint {run}:{epoch} chosen: continue it in the Training panel, or run "
                f"eiq train {self.project.path.name} --restore {run}:{epoch}",
                "ok",
            )
        return run, epoch
