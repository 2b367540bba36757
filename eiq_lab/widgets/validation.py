"""The Validation panel: a run's model (or a model file) evaluated on the test group, on this host or a remote device,
float or post-training int8; the confusion matrix with its softmax threshold and cell images, or a detector's mAP.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

from ..errors import InputError
from ..events import Progress
from .base import Panel
from .matrix import ConfusionMatrix
from .quantization import QuantizationControls

#: Thumbnails shown for a cell (its other images are listed by id).
CELL_THUMBNAILS = 48
THUMBNAIL_SIZE = 96


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f} %"


def choose_finished_run(project: Any, choice: w.Dropdown, run: int | str | None, extra: tuple[str, ...] = ()) -> list:
    """Offer the project's finished runs in `choice` (plus an `extra` option with value None) and select `run`,
    else the run already chosen if it is still there, else the last; returns the finished runs."""
    finished = [r for r in project.runs() if r.state == "finished"]
    options = [(f"run {r.id}: {r.model}, {r.last_epoch} epochs ({r.task})", r.id) for r in finished]
    options += [(label, None) for label in extra]
    ids = [r.id for r in finished]
    if run not in (None, ""):
        wanted = project.resolve_run(run)
    else:
        wanted = choice.value if choice.value in ids else (ids[-1] if ids else None)
    choice.options = options
    choice.value = wanted if any(value == wanted for _, value in options) else None
    return finished


class Validation(Panel):
    """Evaluate a model on the project's test group and explore the result.

    Args:
        project: an open `Project`.
        run: the run to validate (number or ``"last"``; default: the last finished run).

    Attributes:
        report: the report shown (a `ClassificationReport` at the slider's threshold, or a `DetectionReport`).
        on_deploy: called with ``(run, report)`` by the Deploy button (the Portal opens Export); alone, the
            panel shows an Export panel below itself.
    """

    title = "Validation"

    def __init__(self, project: Any, run: int | str | None = None):
        self.project = project
        self.report: Any = None
        self.on_deploy: Callable[[int | None, Any], None] | None = None
        self._cell: tuple[int, int] | None = None
        self._thumbs: dict[int, w.Widget] = {}
        self._build_controls()
        self._build_results()
        super().__init__([self.controls, self.results_box, self.below])
        self.add_class("eiq-validation")
        self.refresh(run)

    # -- widgets -------------------------------------------------------------------------

    def _build_controls(self) -> None:
        wide = {"description_width": "110px"}
        self.run_choice = w.Dropdown(description="Run", style=wide, layout=w.Layout(width="420px"))
        self.model_file = w.Text(
            description="Model file", placeholder="optional: .tflite, .onnx, .h5 (default: the run's model)",
            style=wide, layout=w.Layout(width="420px"),
        )  # fmt: skip
        self.target = w.Dropdown(description="Target", style=wide, layout=w.Layout(width="420px"))
        self.refresh_button = w.Button(icon="refresh", tooltip="reload runs and targets", layout=w.Layout(width="40px"))
        quantization = QuantizationControls("Post-training quantization (int8)", wide)
        (self.quantize, self.granularity, self.input_type, self.output_type, self.samples,
         self.quant_options) = quantization.widgets()  # fmt: skip
        self.validate_button = w.Button(description="Validate", button_style="primary", icon="play")
        self.deploy_button = w.Button(description="Deploy", icon="upload", tooltip="export this run's model")
        self.deploy_button.add_class("eiq-validation-deploy")
        self.deploy_button.on_click(self.guarded(lambda _: self.deploy()))
        for widget, name in (
            (self.run_choice, "run"), (self.model_file, "model"), (self.target, "target"),
            (self.refresh_button, "refresh"), (self.quantize, "quantize"), (self.granularity, "granularity"),
            (self.input_type, "input-type"), (self.output_type, "output-type"), (self.samples, "samples"),
            (self.validate_button, "validate"),
        ):  # fmt: skip
            widget.add_class(f"eiq-validation-{name}")
        self.quantize.observe(self._toggle_quantize, "value")
        self.refresh_button.on_click(self.guarded(lambda _: self.refresh()))
        self.validate_button.on_click(self.guarded(lambda _: self.validate()))
        self.controls = w.VBox(
            [
                w.HBox([self.run_choice, self.refresh_button]), self.model_file, self.target, self.quantize,
                self.quant_options, w.HBox([self.validate_button, self.deploy_button]),
            ]
        )  # fmt: skip

    def _build_results(self) -> None:
        self.threshold = w.FloatSlider(
            value=0.0, min=0.0, max=1.0, step=0.01, description="Softmax threshold", readout_format=".2f",
            continuous_update=True, style={"description_width": "130px"}, layout=w.Layout(width="420px"),
        )  # fmt: skip
        self.threshold.add_class("eiq-validation-threshold")
        self.threshold.observe(self._rethreshold, "value")
        self.matrix = ConfusionMatrix()
        self.matrix.on_select = self.show_cell
        self.summary = w.HTML()
        self.summary.add_class("eiq-validation-summary")
        self.metrics = w.HTML()
        self.metrics.add_class("eiq-validation-metrics")
        self.cell_ids = w.HTML("<i>click a cell to see its images</i>")
        self.cell_ids.add_class("eiq-validation-cell-ids")
        self.cell_images = w.Box(layout=w.Layout(flex_flow="row wrap"))
        self.cell_images.add_class("eiq-validation-cell-images")
        self.classification = w.VBox(
            [self.threshold, self.summary, w.HBox([self.matrix, self.metrics]), self.cell_ids, self.cell_images]
        )
        self.classification.add_class("eiq-validation-classification")
        self.detection_metrics = w.HTML()
        self.detection_metrics.add_class("eiq-validation-detection-metrics")
        self.pr_x, self.pr_y = bq.LinearScale(min=0.0, max=1.0), bq.LinearScale(min=0.0, max=1.05)
        self.pr_figure = bq.Figure(
            marks=[], title="precision-recall at IoU 0.5",
            axes=[bq.Axis(scale=self.pr_x, label="recall"),
                  bq.Axis(scale=self.pr_y, label="precision", side="left")],
            legend_location="bottom-left", layout=w.Layout(width="460px", height="360px"),
        )  # fmt: skip
        self.pr_figure.add_class("eiq-validation-pr")
        self.detection = w.VBox([self.detection_metrics])
        self.detection.add_class("eiq-validation-detection")
        # filled when there are results: a bqplot figure drawn while hidden comes out with no size
        self.results_box = w.VBox()
        self.below = w.VBox()

    # -- choices -------------------------------------------------------------------------

    def refresh(self, run: int | str | None = None) -> None:
        """Reload the finished runs and the remote devices; select `run` (default: the run chosen, if it is still
        there, else the last finished run)."""
        alone = ("none: the model file alone (its own labels)",)
        finished = choose_finished_run(self.project, self.run_choice, run, alone)
        targets: list[tuple[str, str]] = [("this host", "")]
        try:
            from ..runner.targets import list_targets

            targets += [(f"{t.name} ({t.uri})", t.name) for t in list_targets()]
        except InputError as exc:
            self.fail(exc)
        current = self.target.value
        self.target.options = targets
        self.target.value = current if any(value == current for _, value in targets) else ""
        if not finished:
            self.say("no finished training run yet: train one, or give a model file with run 'none'", "warning")

    def _toggle_quantize(self, change: dict) -> None:
        self.quant_options.layout.display = "flex" if change["new"] else "none"

    # -- validation ----------------------------------------------------------------------

    def validate(self) -> Any:
        """Evaluate the chosen model with the chosen target and quantization (long work: returns the `Job`).

        Raises:
            InputError: quantization of a model file, or neither a run nor a model file chosen.
        """
        run, model = self.run_choice.value, self.model_file.value.strip() or None
        if run is None and model is None:
            raise InputError("choose a run, or give a model file to validate")
        if self.quantize.value and (model is not None or run is None):
            raise InputError(
                "post-training quantization applies to a run's model; a model file is validated as it is "
                "(clear the model file, or turn quantization off)"
            )
        quant = None
        if self.quantize.value:
            quant = {
                "per_channel": self.granularity.value, "input_type": self.input_type.value,
                "output_type": self.output_type.value, "num_samples": self.samples.value,
            }  # fmt: skip
        target, threshold = self.target.value, self.threshold.value
        busy = [self.validate_button, self.deploy_button, self.run_choice, self.quantize]
        return self.run(
            lambda progress: self._evaluate(run, model, target, quant, threshold, progress),
            on_done=self._evaluated, busy=busy,
        )  # fmt: skip

    def _evaluate(
        self, run: int | None, model: str | None, target: str, quant: dict | None, threshold: float, progress: Progress
    ) -> Any:
        from ..evaluate import evaluate_run

        executor = None
        where = "this host"
        if target:
            from ..runner.remote import RemoteExecutor
            from ..runner.targets import get_target

            device = get_target(target)
            where = device.name
            upload: Any = model
            if model is None:
                from ..convert.export import run_tflite

                progress.start("converting the model for the device", total=1)
                upload = run_tflite(self.project, run, quantize=quant is not None, **(quant or {}))
                progress.advance()
            progress.start(f"uploading the model to {device.name}", total=1)
            model = RemoteExecutor(device.uri, upload)
            progress.advance()
        elif quant is not None:
            from ..convert import quantized_executor

            progress.start("quantizing the model (int8)", total=1)
            executor = quantized_executor(self.project, run, **quant)
            progress.advance()
        progress.message(f"evaluating on {where}")
        report = evaluate_run(self.project, run, model=model, executor=executor, threshold=threshold, progress=progress)
        what = f"run {run}" if run is not None else "the model file"
        if quant is not None:
            what += f" int8 {'per channel' if quant['per_channel'] else 'per tensor'}"
        report.source = f"{what} on {where}"
        return report

    def _evaluated(self, report: Any) -> None:
        self.show_report(report)
        if hasattr(report, "accuracy"):
            self.say(f"accuracy {_percent(report.accuracy)} on {len(report.image_ids)} test images "
                     f"({getattr(report, 'source', '')})", "ok")  # fmt: skip
        else:
            self.say(f"mAP@0.5 {_percent(report.map50)} ({getattr(report, 'source', '')})", "ok")

    # -- results -------------------------------------------------------------------------

    def show_report(self, report: Any) -> None:
        """Show a `ClassificationReport` (matrix, threshold, metrics) or a `DetectionReport` (mAP, PR curves)."""
        self.report = report
        self._cell = None
        detection = hasattr(report, "map50")
        self.results_box.children = [self.detection if detection else self.classification]
        if detection:
            self._show_detection(report)
            return
        self.cell_ids.value, self.cell_images.children = "<i>click a cell to see its images</i>", ()
        if abs(self.threshold.value - report.threshold) > 1e-9:
            self.threshold.value = report.threshold  # re-thresholds from the cache: the same report
        self._show_classification(report)

    def _rethreshold(self, change: dict) -> None:
        report = self.report
        if report is None or getattr(report, "results", None) is None:
            return
        self.report = report.results.report(change["new"])
        self._show_classification(self.report)
        if self._cell is not None:
            self.show_cell(*self._cell)

    def _show_classification(self, report: Any) -> None:
        columns = list(report.classes)
        columns.append("background" if "background" not in columns else "background (below threshold)")
        self.matrix.show(report.classes, columns, report.confusion)
        self.summary.value = (
            f"<b>accuracy {_percent(report.accuracy)}</b> on {len(report.image_ids)} test images &middot; "
            f"softmax threshold {report.threshold:.2f} &middot; background column: {report.background} images"
        )
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{_percent(m['precision'])}</td><td>{_percent(m['recall'])}</td>"
            f"<td>{m['support']}</td></tr>"
            for name, m in report.per_class.items()
        )
        self.metrics.value = (
            "<table class='eiq-table'><tr><th>class</th><th>precision</th><th>recall</th><th>images</th></tr>"
            f"{rows}</table>"
        )

    def show_cell(self, true: int, predicted: int) -> None:
        """Show the images of one cell of the matrix (row `true`, column `predicted`; the last is background)."""
        report = self.report
        ids = [int(i) for i in report.cell(true, predicted)]
        self._cell = (true, predicted)
        column = report.columns[predicted]
        shown = ids[:CELL_THUMBNAILS]
        more = f" (the first {len(shown)} shown)" if len(ids) > len(shown) else ""
        listed = ", ".join(str(i) for i in ids) or "none"
        self.cell_ids.value = (
            f"<b>true {html.escape(report.classes[true])}, predicted {html.escape(column)}</b>: "
            f"{len(ids)} images{more} &middot; ids <span class='eiq-validation-ids'>{listed}</span>"
        )
        self.cell_images.children = self._thumbnails(shown)

    def _thumbnails(self, ids: list[int]) -> list[w.Widget]:
        """One small box per image (thumbnail and id), built once per image and reused as the threshold moves."""
        from ..project.thumbnails import shared_cache

        missing = [i for i in ids if i not in self._thumbs]
        if missing:
            thumbs = shared_cache(THUMBNAIL_SIZE).for_images(self.project, [self.project.image(i) for i in missing])
            for image_id in missing:
                data = thumbs.get(image_id)
                picture = (
                    w.Image(value=data, format="jpeg", layout=w.Layout(min_width="48px"))
                    if data is not None
                    else w.HTML("<i>unreadable</i>")
                )
                box = w.VBox([picture, w.Label(f"#{image_id}")], layout=w.Layout(margin="2px", align_items="center"))
                box.add_class("eiq-validation-thumb")
                self._thumbs[image_id] = box
        return [self._thumbs[i] for i in ids]

    def _show_detection(self, report: Any) -> None:
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{m['ground_truth']}</td><td>{m['detections']}</td>"
            f"<td>{_percent(m['ap50'])}</td><td>{_percent(m['coco_ap'])}</td></tr>"
            for name, m in report.per_class.items()
        )
        self.detection_metrics.value = (
            f"<b>mAP@0.5 {_percent(report.map50)}</b> &middot; COCO mAP@[.5:.95] {_percent(report.coco_map)}"
            "<table class='eiq-table'><tr><th>class</th><th>objects</th><th>detections</th><th>AP@0.5</th>"
            f"<th>COCO AP</th></tr>{rows}</table>"
        )
        colors = bq.CATEGORY10
        self.detection.children = [self.detection_metrics, self.pr_figure]
        self.pr_figure.marks = [
            bq.Lines(
                x=np.concatenate([[0.0], recall]),
                y=np.concatenate([[precision[0] if len(precision) else 1.0], precision]),
                scales={"x": self.pr_x, "y": self.pr_y},
                labels=[name],
                display_legend=True,
                colors=[colors[k % len(colors)]],
            )
            for k, (name, (precision, recall)) in enumerate(report.curves.items())
        ]

    # -- deploy --------------------------------------------------------------------------

    def deploy(self) -> None:
        """The guide's DEPLOY: hand the run and its report to `on_deploy` (alone: show Export below)."""
        run = self.run_choice.value
        if run is None:
            raise InputError("a model file is exported with the converter; Deploy exports a training run's model")
        if self.on_deploy is not None:
            self.on_deploy(run, self.report)
            return
        from .export import Export

        self.below.children = [Export(self.project, run, report=self.report)]
