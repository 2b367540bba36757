"""The Export panel (the guide's Export Model workspace): a summary of the run, its validation and the project, then
the export itself (format, int8 or float, destination), its file, size, SHA-256 and parity check, and the export list.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..convert.export import FORMATS, QUANTIZABLE
from ..errors import InputError
from .base import Panel
from .contributions import contributions
from .quantization import QuantizationControls
from .validation import _percent, choose_finished_run

#: What each format is called in the format list.
FORMAT_NAMES = {
    "tflite": "TensorFlow Lite (.tflite)",
    "onnx": "ONNX (.onnx)",
    "keras": "Keras (.keras)",
    "h5": "Keras H5 (.h5)",
    "savedmodel": "TensorFlow SavedModel (folder)",
}


def parity_text(parity: dict[str, Any] | None) -> str:
    """One line saying how an export compares with the run's Keras model."""
    if not parity:
        return "not checked against the Keras model"
    text = (
        f"checked against the Keras model on {parity['images']} images: max |difference| "
        f"{parity['max_abs_diff']:.3g}, mean {parity['mean_abs_diff']:.3g} (outputs span {parity['output_range']:.3g})"
    )
    if "top1_agreement" in parity:
        text += f", top-1 agreement {_percent(parity['top1_agreement'])}"
    return text


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table class='eiq-table'>{cells}</table>"


class Export(Panel):
    """Export a training run's model.

    Args:
        project: an open `Project`.
        run: the run to export (number or ``"last"``; default: the last finished run).
        report: the run's validation report to summarise (the Validation panel's, when it opens this panel).

    Attributes:
        result: the last `ExportResult`.
        on_open_model: called with the exported model's path by "Open in Model Tool" (hidden while unset).
    """

    title = "Export model"

    def __init__(self, project: Any, run: int | str | None = None, report: Any = None, *, extensions: Any = None):
        self.project = project
        # the guide's deploy/export-settings location: extensions' buttons, shown as their when clause says
        self.contributions = contributions(project, "deploy/export-settings", extensions)
        self.result: Any = None
        self._on_open_model: Callable[[str], None] | None = None
        self._destination_auto = True
        wide = {"description_width": "120px"}
        self.run_choice = w.Dropdown(description="Run", style=wide, layout=w.Layout(width="420px"))
        self.summary = w.HTML()
        self.format = w.Dropdown(
            options=[(FORMAT_NAMES.get(name, name), name) for name in FORMATS], value="tflite", description="Format",
            style=wide, layout=w.Layout(width="420px"),
        )  # fmt: skip
        quantization = QuantizationControls("Export quantized model (int8)", wide)
        (self.quantize, self.granularity, self.input_type, self.output_type, self.samples,
         self.quant_options) = quantization.widgets()  # fmt: skip
        self.labels_note = w.HTML()
        self.destination = w.Text(description="Destination", style=wide, layout=w.Layout(width="640px"))
        self.parity_images = w.BoundedIntText(value=32, min=0, max=10000, description="Parity images", style=wide)
        self.export_button = w.Button(description="Export model", button_style="primary", icon="download")
        self.open_button = w.Button(description="Open in Model Tool", icon="external-link")
        self.open_button.layout.display = "none"
        self.result_view = w.HTML()
        self.exports_view = w.HTML()
        for widget, name in (
            (self.run_choice, "run"), (self.summary, "summary"), (self.format, "format"), (self.quantize, "quantize"),
            (self.granularity, "granularity"), (self.input_type, "input-type"), (self.output_type, "output-type"),
            (self.samples, "samples"), (self.destination, "destination"), (self.parity_images, "parity-images"),
            (self.export_button, "export"), (self.open_button, "open"), (self.result_view, "result"),
            (self.exports_view, "list"),
        ):  # fmt: skip
            widget.add_class(f"eiq-export-{name}")
        self.run_choice.observe(lambda _: self._run_changed(), "value")
        self.format.observe(lambda _: self._format_changed(), "value")
        self.quantize.observe(lambda _: self._format_changed(), "value")
        self.destination.observe(self._destination_typed, "value")
        self.export_button.on_click(self.guarded(lambda _: self.export()))
        self.open_button.on_click(self.guarded(lambda _: self._open()))
        super().__init__(
            [
                self.run_choice, self.summary, w.HTML("<h4 style='margin:6px 0'>Export settings</h4>"), self.format,
                self.quantize, self.quant_options, self.labels_note, self.destination, self.parity_images,
                w.HBox([self.export_button, self.open_button]), self.contributions, self.result_view,
                self.exports_view,
            ]
        )  # fmt: skip
        self.add_class("eiq-export")
        self._report_run: int | None = None
        self.report = None
        self.refresh(run)
        if report is not None:  # the report of the run shown first
            self.report, self._report_run = report, self.run_choice.value
            self._run_changed()

    # -- the Model Tool hand-off -----------------------------------------------------------

    @property
    def on_open_model(self) -> Callable[[str], None] | None:
        """Called with the exported model's path; the "Open in Model Tool" button shows once it is set."""
        return self._on_open_model

    @on_open_model.setter
    def on_open_model(self, callback: Callable[[str], None] | None) -> None:
        self._on_open_model = callback
        self.open_button.layout.display = "inline-flex" if callback is not None and self.result is not None else "none"

    def _open(self) -> None:
        if self.result is None or self._on_open_model is None:
            raise InputError("export a model first")
        self._on_open_model(str(self.result.path))

    # -- state ---------------------------------------------------------------------------

    def refresh(self, run: int | str | None = None) -> None:
        """Reload the finished runs and the export list; select `run` (default: the run chosen, if it is still
        there, else the last finished run)."""
        finished = choose_finished_run(self.project, self.run_choice, run)
        if not finished:
            self.say("no finished training run to export yet", "warning")
        self._run_changed()

    def _run_changed(self) -> None:
        run = self.run_choice.value
        if self.report is not None and self._report_run != run:
            self.report = None  # a report belongs to the run it validated
        self.summary.value = self._summary(run) if run is not None else ""
        self._format_changed()
        self._show_exports()

    def _format_changed(self) -> None:
        fmt = self.format.value
        quantizable = fmt in QUANTIZABLE
        if not quantizable and self.quantize.value:
            self.quantize.value = False
        self.quantize.disabled = not quantizable
        self.quant_options.layout.display = "flex" if self.quantize.value else "none"
        onnx = fmt == "onnx"
        for widget in (self.input_type, self.output_type):
            if onnx:
                widget.value = "float32"
            widget.disabled = onnx  # ONNX QDQ keeps float32 inputs and outputs
        where = {"tflite": "the TFLite metadata", "onnx": "metadata_props", "savedmodel": "assets/labels.txt"}
        embedded = f"embedded in {where[fmt]} and " if fmt in where else ""
        self.labels_note.value = f"<i>labels: {embedded}written beside the model as labels.txt</i>"
        if self._destination_auto:
            self._set_destination(self._default_destination())

    def _default_destination(self) -> str:
        run = self.run_choice.value
        if run is None:
            return ""
        stem = self.project.path.with_name(f"{self.project.path.stem}_run{run}")
        suffix = FORMATS[self.format.value]
        if self.quantize.value:
            stem = stem.with_name(stem.name + "_int8")
        return str(stem.with_name(stem.name + suffix))

    def _set_destination(self, value: str) -> None:
        self._setting = True
        try:
            self.destination.value = value
        finally:
            self._setting = False

    def _destination_typed(self, change: dict) -> None:
        if not getattr(self, "_setting", False):
            self._destination_auto = not change["new"].strip()

    # -- summary -------------------------------------------------------------------------

    def _summary(self, run: int) -> str:
        record = self.project.run(run)
        s = record.settings
        metrics = self.project.run_metrics(run)
        final = metrics[-1][2] if metrics else {}
        optimizing = [name for name in ("prune", "cluster") if s.get(name)]
        if s.get("qat_epochs"):
            optimizing.append(f"QAT {s['qat_epochs']} epochs")
        training = [
            ("model", html.escape(f"{record.model} ({record.task})")),
            ("input size (H, W, C)", html.escape(str(tuple(s.get("input_size", ()))))),
            ("weights", html.escape(str(s.get("weights")))),
            (
                "optimizer, learning rate, batch",
                html.escape(f"{s.get('optimizer')}, {s.get('learning_rate')}, {s.get('batch_size')}"),
            ),
            ("augmentation", html.escape(str(s.get("augmentation")))),
            ("epochs", f"{record.last_epoch} of {s.get('epochs') or 'until the stop condition'}"),
            ("optimization", html.escape(", ".join(optimizing) or "none")),
            ("final metrics", html.escape(", ".join(f"{k} {v:.4g}" for k, v in sorted(final.items())) or "none")),
        ]
        info = self.project.info()
        groups = info["groups"]
        split = groups["train"] + groups["test"]
        holdout = f"{100 * groups['test'] / split:.0f} %" if split else "-"
        project = [
            ("file", html.escape(str(self.project.path))),
            ("labels", html.escape(", ".join(record.labels))),
            ("images", f"{info['images']} (train {groups['train']}, test {groups['test']}, none {groups['none']})"),
            ("test holdout", holdout),
        ]
        return (
            f"<h4 style='margin:6px 0'>Training (run {record.id})</h4>{_table(training)}"
            f"<h4 style='margin:6px 0'>Validation</h4>{self._validation_text()}"
            f"<h4 style='margin:6px 0'>Project</h4>{_table(project)}"
        )

    def _validation_text(self) -> str:
        report = self.report
        if report is None:
            return "<i>not validated here yet (the Validation panel's Deploy brings its results)</i>"
        if hasattr(report, "map50"):
            return _table([("mAP@0.5", _percent(report.map50)), ("COCO mAP@[.5:.95]", _percent(report.coco_map))])
        rows = [
            ("accuracy", f"{_percent(report.accuracy)} on {len(report.image_ids)} test images"),
            ("softmax threshold", f"{report.threshold:.2f} ({report.background} images in the background column)"),
        ]
        rows += [
            (name, f"precision {_percent(m['precision'])}, recall {_percent(m['recall'])}")
            for name, m in report.per_class.items()
        ]
        return _table(rows)

    def _show_exports(self) -> None:
        records = self.project.exports()
        if not records:
            self.exports_view.value = "<i>no exports yet</i>"
            return
        rows = "".join(
            f"<tr><td>{r.id}</td><td>{r.run if r.run is not None else '-'}</td><td>{html.escape(r.format)}</td>"
            f"<td>{html.escape(str(r.settings.get('type', 'float32')))}</td><td>{r.size:,}</td>"
            f"<td><code>{html.escape(r.path)}</code></td></tr>"
            for r in records
        )
        self.exports_view.value = (
            "<h4 style='margin:6px 0'>Exports of this project</h4><table class='eiq-table'><tr><th>#</th><th>run</th>"
            f"<th>format</th><th>type</th><th>bytes</th><th>path</th></tr>{rows}</table>"
        )

    # -- export --------------------------------------------------------------------------

    def export(self) -> Any:
        """Export the chosen run with the chosen settings (long work: returns the `Job`).

        Raises:
            InputError: no run, no destination, or a destination inside a file.
        """
        from ..convert import export_run

        run = self.run_choice.value
        if run is None:
            raise InputError("choose a finished training run to export")
        destination = self.destination.value.strip()
        if not destination:
            raise InputError("give the destination: the model file to write (a folder for a SavedModel)")
        path = Path(destination).expanduser()
        for parent in path.parents:
            if parent.exists():
                if not parent.is_dir():
                    raise InputError(f"destination {path}: {parent} is a file, not a folder; choose another place")
                break
        fmt = self.format.value
        if path.is_dir() and fmt != "savedmodel":  # a folder chosen: the default file name inside it
            path = path / Path(self._default_destination()).name
        options = dict(
            quantize=self.quantize.value, per_channel=self.granularity.value, input_type=self.input_type.value,
            output_type=self.output_type.value, num_samples=self.samples.value, parity_images=self.parity_images.value,
        )  # fmt: skip

        def work(progress: Any) -> Any:
            progress.start(f"exporting run {run} as {fmt}" + (" (int8)" if options["quantize"] else ""))
            result = export_run(self.project, run, fmt, path, **options)
            progress.end()
            return result

        busy = [self.export_button, self.run_choice, self.format, self.quantize, self.destination]
        return self.run(work, on_done=self._exported, busy=busy)

    def _exported(self, result: Any) -> None:
        self.result = result
        record = result.record
        kind = record.settings.get("type", "float32")
        beside = ", ".join(html.escape(p.name) for p in result.beside)
        self.result_view.value = _table(
            [
                ("file", f"<code>{html.escape(str(result.path))}</code>"),
                ("format", html.escape(f"{record.format}, {kind}")),
                ("size", f"{record.size:,} bytes"),
                ("SHA-256", f"<code>{record.sha256}</code>"),
                ("parity", html.escape(parity_text(result.parity))),
                ("beside it", beside or "-"),
            ]
        )
        self.on_open_model = self._on_open_model  # shows the button when a Model Tool is wired
        self.contributions.refresh()  # the context keys follow the export just recorded
        self._show_exports()
        self.say(f"exported {result.path.name} ({record.size:,} bytes; export {record.id})", "ok")
