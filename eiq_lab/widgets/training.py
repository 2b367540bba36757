"""The Training panel (eIQ Portal's Trainer): every training setting over the project's draft, start / stop /
continue / restore runs on a background thread, live accuracy and loss charts, pruning and clustering layers.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import ipywidgets as w

from ..errors import EiqError, InputError
from ..train.settings import TrainingSettings
from .base import Panel
from .charts import TrainingChart
from .training_form import TrainingForm, shown


def run_points(project: Any, run: int | str) -> list[dict[str, Any]]:
    """A run's recorded epochs as chart points (``{"step", "epoch", "phase", **metrics}``), oldest first.

    Read from its checkpoints, which keep each epoch's global step and phase; the same values the trainer's
    ``epoch`` events carry.
    """
    return [{"step": c.step, "epoch": c.epoch, "phase": c.phase, **c.metrics} for c in project.checkpoints(run)]


class Training(Panel):
    """Edit the draft training settings, train, stop, continue, and watch accuracy and loss live.

    Every edit is checked and saved to the project's draft at once (an invalid value is named in the status
    line and not saved); Start trains with the form's settings. `restore(run, epoch)` makes the next Start
    train from a checkpoint. `on_trained(run)` is called (from the training thread) when a run finishes, and
    again when the user presses Validate (the Portal opens Validation); `refresh()` re-reads the draft.

    Args:
        project: an open `Project`.

    Example:
        >>> Training(project)        # doctest: +SKIP
    """

    title = "Training"

    def __init__(self, project: Any):
        self.project = project
        self.on_trained: Callable[[int], Any] | None = None
        self.restore_from: str | None = None
        self._restore_base: TrainingSettings | None = None
        self._training = False
        self.chart = TrainingChart()
        self.model_line = w.HTML()
        self.model_line.add_class("eiq-training-model")
        self.list_layers = w.Button(description="List the model's layers", icon="list", layout=w.Layout(width="300px"))
        self.list_layers.add_class("eiq-training-list-layers")
        self.list_layers.on_click(self.guarded(self._list_layers))
        self.pick_layers = w.Button(description="Choose in the Model Tool", icon="sitemap",
                                    layout=w.Layout(width="300px"))  # fmt: skip
        self.pick_layers.add_class("eiq-training-pick-layers")
        self.pick_layers.on_click(self.guarded(self._pick_layers))
        self.model_tool_area = w.VBox()
        self.layer_table = w.HTML(layout=w.Layout(width="300px"))
        self.layer_table.add_class("eiq-training-layers")
        layer_help = w.HTML(
            "<div style='font-size:12px;line-height:1.3'>No layer chosen: every layer that can be pruned / "
            "clustered is. Layers named by Keras (conv2d_3) cannot be chosen: their names change between "
            "builds.</div>",
            layout=w.Layout(width="300px"),
        )
        self.form = TrainingForm([self.list_layers, self.pick_layers, layer_help, self.layer_table])
        self.form.layout = w.Layout(width="360px", min_width="340px")
        self.form.on_edit = self._edited
        self._build_actions()
        right = w.VBox(
            [self.actions, self.restore_box, self.chart, self.summary, self.notes, self.compare, self.model_tool_area],
            layout=w.Layout(flex="1 1 480px", min_width="420px"),
        )
        super().__init__([self.model_line, w.HBox([self.form, right], layout=w.Layout(flex_flow="row wrap"))])
        self.add_class("eiq-training")
        self.refresh()
        runs = project.runs()
        if runs:  # a reopened panel shows where the last run stands
            self.chart.show_run(run_points(project, runs[-1].id))
            self.summary.value = f"<small>chart: run {runs[-1].id} ({html.escape(runs[-1].state)})</small>"

    def _build_actions(self) -> None:
        def button(text: str, icon: str, css: str, action: Callable[[], Any], style: str = "") -> w.Button:
            b = w.Button(description=text, icon=icon, button_style=style)
            b.add_class(f"eiq-training-{css}")
            b.on_click(self.guarded(lambda _: action()))
            return b

        self.start_button = button("Start training", "play", "start", self.start, "primary")
        self.stop_button = button("Stop", "stop", "stop", self.stop, "warning")
        self.stop_button.disabled = True  # enabled while a run trains
        self.continue_button = button("Continue training", "forward", "continue", self.continue_training)
        self.validate_button = button("Validate", "check", "validate", self.validate, "success")
        self.actions = w.HBox([self.start_button, self.stop_button, self.continue_button, self.validate_button])
        self.restore_line = w.HTML()
        self.restore_line.add_class("eiq-training-restore")
        self.clear_restore = button("Start fresh instead", "times", "clear-restore", self.clear_restore_request)
        self.restore_box = w.HBox([self.restore_line, self.clear_restore])
        self.summary = w.HTML()
        self.summary.add_class("eiq-training-summary")
        self.notes = w.HTML()
        self.compare = w.SelectMultiple(
            description="Compare runs", rows=4, layout=w.Layout(width="98%"), style={"description_width": "100px"}
        )
        self.compare.add_class("eiq-training-compare")
        self.compare.observe(lambda _: self.guarded(self._show_past)(), "value")

    # -- draft <-> form --------------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the form, pipelines and runs from the project (the Portal calls it when the panel shows)."""
        from ..augment import pipeline_names
        from ..train.drafts import load_draft

        self.form.augmentation.options = pipeline_names(self.project)
        try:
            settings = self._restore_base or load_draft(self.project)
        except EiqError as exc:
            self.fail(exc)
            settings = TrainingSettings()
        self._show(settings)
        self._refresh_runs()

    def _show(self, settings: TrainingSettings) -> None:
        self._show_model(settings)
        self.form.load(settings)
        shown(self.restore_box, self.restore_from is not None)

    def _show_model(self, s: TrainingSettings) -> None:
        from ..models import registry, wizard

        name = s.model or wizard.default_model(s.task)
        model = name if s.model else f"{name} (the wizard's default)"
        try:
            exposed = registry().get(name, task=s.task).get_exposed_parameters()
        except EiqError as exc:  # a plugin that went away: Start names it too
            exposed, model = [], f"{model} ({exc})"
        params = ", ".join(f"{p['name']} ({p.get('default')})" for p in exposed if p["name"] != "alpha")
        alpha = "" if any(p["name"] == "alpha" for p in exposed) else "; it has no alpha (the setting is ignored)"
        self.model_line.value = (
            f"<b>Model:</b> {html.escape(model)} &middot; {html.escape(s.task)} <small>(chosen in Model selection)"
            f"{'; parameters: ' + html.escape(params) if params else ''}{alpha}</small>"
        )

    def _edited(self, name: str) -> None:
        self.guarded(self._save_setting)(name)

    def _save_setting(self, name: str) -> None:
        from ..train.drafts import save_draft

        value = self.form.read(name)
        save_draft(self.project, **{name: value})
        self.say(f"saved {name.replace('_', ' ')}", "ok")

    def settings(self) -> TrainingSettings:
        """The settings the form shows, checked: the draft (or the restored run's) with every edit applied.

        Raises:
            InputError: a value is invalid (named in the message).
        """
        from ..train.drafts import load_draft

        return self.form.settings(self._restore_base or load_draft(self.project))

    # -- runs ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Train a new run with the form's settings (from the restore checkpoint, if one was chosen)."""
        from ..train import Trainer
        from ..train.drafts import save_draft

        settings = self.settings()
        trainer = Trainer(self.project, settings.replace(), restore=self.restore_from)
        save_draft(self.project, settings)
        self._launch(trainer, [])

    def continue_training(self) -> None:
        """Continue the last run from its last checkpoint (its own settings)."""
        from ..train import Trainer

        trainer = Trainer.resume(self.project, "last")
        self._launch(trainer, run_points(self.project, trainer.run_id))

    def stop(self) -> None:
        """Ask the running training to stop at its next step (the finished epochs are kept)."""
        if not self.busy:
            self.say("nothing is training", "warning")
            return
        self.job.stop()
        self.say("stopping at the next step...", "warning")

    def restore(self, run: int | str, epoch: int | str = "last") -> None:
        """Make the next Start train from a checkpoint (the Model selection panel's "restore").

        The form shows that run's settings (its model, alpha, input size and classes are kept).

        Raises:
            NotFoundError: no such run or checkpoint.
        """
        record = self.project.checkpoint(run, epoch)
        source = self.project.run(record.run)
        self.restore_from = f"{record.run}:{record.epoch}"
        self._restore_base = TrainingSettings.from_json(source.settings).replace(seed=None)
        self.restore_line.value = (
            f"Next run starts from checkpoint <b>{self.restore_from}</b> (run {record.run}, {record.phase} epoch "
            f"{record.epoch}, model {html.escape(source.model)})"
        )
        self._show(self._restore_base)
        self.say(f"restoring checkpoint {self.restore_from}: press Start training", "info")

    def clear_restore_request(self) -> None:
        """Forget the restore request: the next Start trains from the draft's settings."""
        self.restore_from, self._restore_base = None, None
        self.refresh()

    def validate(self) -> None:
        """Hand the last finished run to `on_trained` (the Portal opens it in Validation)."""
        finished = [run for run in self.project.runs() if run.state == "finished"]
        if not finished:
            raise InputError("no finished run to validate yet; train one first")
        if self.on_trained is None:
            self.say(f"run {finished[-1].id} is ready: open Validation(project) to validate it", "info")
            return
        self.on_trained(finished[-1].id)

    def _launch(self, trainer: Any, points: list[dict[str, Any]]) -> None:
        self.chart.show_run(points)
        self.summary.value = ""
        self.notes.value = ""

        def work(progress: Any) -> Any:
            try:
                return trainer.fit(progress=progress)
            except EiqError as exc:
                if "could not download the ImageNet weights" not in str(exc):
                    raise
                raise EiqError(
                    f"ImageNet weights need network, and this machine could not download them. {exc}. In this "
                    "panel: Weights -> Random, or File with a weights file you have."
                ) from exc
            finally:
                self._training = False
                self.stop_button.disabled = True
                self._refresh_runs()

        if trainer.settings.weights == "imagenet" and trainer.run_id is None and trainer.restore is None:
            self.notes.value = (
                "<div class='eiq-training-note'>ImageNet weights: Keras downloads them on first use "
                "(needs network), then keeps them in its cache.</div>"
            )

        # Continue and Validate follow the runs' states (set when the work ends), not the busy list
        self.continue_button.disabled = self.validate_button.disabled = True
        busy = [*self.form.widgets, self.start_button, self.list_layers, self.clear_restore]
        # before the thread starts: its end undoes both
        self.stop_button.disabled, self._training = False, True
        try:
            self.run(work, on_done=self._trained, observers=[self._on_event], busy=busy)
        except EiqError:
            self.stop_button.disabled, self._training = True, False
            raise

    def _on_event(self, event: Any) -> None:
        if event.kind == "epoch":
            self.chart.add_epoch(event.data)
        elif event.kind == "message":
            self.notes.value += f"<div class='eiq-training-note'>note: {html.escape(event.message)}</div>"

    def _trained(self, result: Any) -> None:
        self.summary.value = _summary_html(result)
        if result.stopped:
            self.say(f"run {result.run} {result.message}; Continue training resumes it", "warning")
            return
        self.restore_from, self._restore_base = None, None
        shown(self.restore_box, False)
        self.say(f"run {result.run} finished: {result.message}", "ok")
        if self.on_trained is not None:
            self.on_trained(result.run)

    def _refresh_runs(self) -> None:
        runs = self.project.runs()
        self.continue_button.disabled = self._training or not runs or runs[-1].state == "finished"
        self.validate_button.disabled = self._training or not any(run.state == "finished" for run in runs)
        chosen = self.compare.value
        self.compare.options = [(f"run {r.id}: {r.model}, {r.state}, {r.last_epoch} epochs", r.id) for r in runs]
        self.compare.value = tuple(run for run in chosen if run in {r.id for r in runs})

    def _show_past(self) -> None:
        self.chart.set_past({run: run_points(self.project, run) for run in self.compare.value})

    # -- layers ----------------------------------------------------------------------------------

    def _list_layers(self, _: Any = None) -> None:
        from ..train.layers import settings_layers

        settings = self.settings()
        self.say("building the model to list its layers...")
        work = lambda progress: settings_layers(self.project, settings)  # noqa: E731
        self.run(work, on_done=self._show_layers, busy=[self.list_layers, self.start_button])

    def _pick_layers(self, _: Any = None) -> None:
        """Open the draft's model in the Model Tool's layer-selection mode; its choice fills the pruning and
        clustering layer lists (the layers each can take)."""
        import tempfile
        from pathlib import Path

        from ..train.layers import model_layers, settings_model

        settings = self.settings()
        folder = Path(tempfile.mkdtemp(prefix="eiq-layers-"))

        def work(progress: Any) -> tuple[Path, list[Any]]:
            progress.start("model", total=None, message="building the model to choose its layers")
            model = settings_model(self.project, settings)
            path = folder / f"{model.name or 'model'}.h5"
            model.save(path)
            return path, model_layers(model)

        def show(result: tuple[Path, list[Any]]) -> None:
            from .model_tool import ModelTool

            path, layers = result
            self._show_layers(layers)
            tool = ModelTool(path, select=True)
            tool.on_selection = self._layers_chosen
            self.model_tool_area.children = [tool]

        self.run(work, on_done=show, busy=[self.pick_layers, self.list_layers, self.start_button])

    def _layers_chosen(self, names: list[str]) -> None:
        for field in (self.form.prune_layers, self.form.cluster_layers):
            allowed = {value for _, value in field.options}
            field.value = tuple(name for name in names if name in allowed)

    def _show_layers(self, layers: list[Any]) -> None:
        self.form.show_layers(layers)
        check = "&#10003;"
        rows = "".join(
            f"<tr><td>{html.escape(layer.name)}</td><td>{layer.type}</td><td style='text-align:right'>"
            f"{layer.params:,}</td><td>{check if layer.prunable else ''}</td><td>{check if layer.clusterable else ''}"
            "</td></tr>"
            for layer in layers
        )
        self.layer_table.value = (
            "<div style='max-height:240px;overflow:auto;font-size:11px;line-height:1.25;word-break:break-word'>"
            "<table style='width:100%'><tr><th>layer</th><th>type</th><th>weights</th><th title='can be pruned'>P"
            f"</th><th title='can be clustered'>C</th></tr>{rows}</table></div>"
        )
        self.say(f"{len(layers)} layers; choose those to prune or cluster (none: all that can be)", "ok")


def _summary_html(result: Any) -> str:
    """A run's result as a short table: state, epochs, best values, sparsity or clusters."""
    rows = [("run", result.run), ("state", result.state), ("last epoch", result.epoch), ("ended", result.message)]
    rows += [(key, f"{value:.4f}") for key, value in result.metrics.items()]
    for key, best in result.summary.items():
        if key.startswith("best_") and isinstance(best, dict):
            rows.append((key.replace("_", " "), f"{best['value']:.4f} (epoch {best['epoch']})"))
    if "sparsity" in result.summary:
        rows.append(("sparsity", f"{result.summary['sparsity']['sparsity']:.1%}"))
    if "distinct_values" in result.summary:
        rows.append(("distinct values", ", ".join(f"{k}: {v}" for k, v in result.summary["distinct_values"].items())))
    body = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>"
        for k, v in rows
    )
    return f"<table class='eiq-training-result' style='font-size:13px'>{body}</table>"
