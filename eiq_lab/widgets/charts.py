"""Live training charts (bqplot): the metric or the loss of the train and test groups against the step, one
point per epoch as epochs end, values on hover, a start/end step range, and past runs' curves beside them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

#: Keys of an epoch's data that are not a value to chart.
_NOT_VALUES = ("phase", "epoch", "step", "seconds")
_COLORS = {"train": "#1f77b4", "test": "#ff7f0e"}
_PAST_COLORS = ("#7f7f7f", "#8c564b", "#9467bd", "#2ca02c", "#bcbd22", "#17becf")


def metric_name(points: Sequence[Mapping[str, Any]]) -> str | None:
    """The model's metric in epoch data (``accuracy``, ...): a train value that is not the loss; None if none."""
    for point in points:
        for key in point:
            if key not in _NOT_VALUES and key != "loss" and not key.startswith("test_"):
                return key
    return None


def series(points: Sequence[Mapping[str, Any]], key: str) -> tuple[np.ndarray, np.ndarray]:
    """(steps, values) of the points that carry `key`, in the order given."""
    kept = [(p["step"], p[key]) for p in points if key in p and "step" in p]
    if not kept:
        return np.zeros(0), np.zeros(0)
    steps, values = zip(*kept, strict=True)
    return np.asarray(steps, dtype=float), np.asarray(values, dtype=float)


class TrainingChart(w.VBox):
    """Train and test curves of one run, plus past runs', with a metric/loss switch and a step range.

    Points are epoch data dicts (``{"step": 27, "epoch": 3, "loss": .., "accuracy": .., "test_loss": ..}``),
    as the trainer's ``epoch`` events and `project.run_metrics` give them. `add_epoch` appends one point and
    updates the marks' data only (the figure is never rebuilt), so it is cheap to call from a training thread.

    Example:
        >>> chart = TrainingChart()
        >>> chart.add_epoch({"step": 9, "epoch": 1, "loss": 1.1, "accuracy": 0.4, "test_loss": 1.0,
        ...                  "test_accuracy": 0.5})
        >>> chart.counts
        {'train': 1, 'test': 1}
    """

    def __init__(self, **kwargs: Any):
        self.points: list[dict[str, Any]] = []
        self.past: dict[int, list[dict[str, Any]]] = {}
        self.x_scale = bq.LinearScale()
        self.y_scale = bq.LinearScale()
        tooltip = bq.Tooltip(fields=["x", "y"], labels=["step", "value"], formats=["", ".4f"])
        self.lines: dict[str, bq.Lines] = {}
        self.dots: dict[str, bq.Scatter] = {}
        scales = {"x": self.x_scale, "y": self.y_scale}
        for group, color in _COLORS.items():
            self.lines[group] = bq.Lines(
                x=[], y=[], scales=scales, colors=[color], labels=[group], display_legend=True, stroke_width=2
            )
            self.dots[group] = bq.Scatter(x=[], y=[], scales=scales, colors=[color], default_size=40, tooltip=tooltip)
        self.past_marks: list[bq.Lines] = []
        self.y_axis = bq.Axis(scale=self.y_scale, side="left", label="accuracy", tick_format=".3g")
        self.figure = bq.Figure(
            marks=self._marks(),
            axes=[bq.Axis(scale=self.x_scale, label="step", tick_format="d"), self.y_axis],
            legend_location="top-right",
            fig_margin={"top": 20, "bottom": 45, "left": 60, "right": 20},
            layout=w.Layout(width="100%", height="320px"),
        )
        self.figure.add_class("eiq-training-chart")
        self.metric = w.ToggleButtons(options=[("Accuracy", "metric"), ("Loss", "loss")], value="metric")
        self.metric.style.button_width = "90px"
        self.metric.add_class("eiq-training-metric")
        self.range = w.IntRangeSlider(
            value=(0, 1), min=0, max=1, description="Steps", continuous_update=False, layout=w.Layout(width="98%")
        )
        self.range.add_class("eiq-training-range")
        self.count = w.HTML()
        self.count.add_class("eiq-training-points")
        self.note = w.HTML()
        self._follow = True  # the range's end follows new points until the user moves it
        self._setting_range = False
        self._drawn_key = ""
        self.metric.observe(lambda _: self.redraw(), "value")
        self.range.observe(self._on_range, "value")
        super().__init__([w.HBox([self.metric, self.count]), self.figure, self.range, self.note], **kwargs)
        self._update_count()

    # -- what is shown -------------------------------------------------------------------------

    @property
    def key(self) -> str:
        """The value the chart shows for the train group (``accuracy``, ``loss``, ...)."""
        if self.metric.value == "loss":
            return "loss"
        return metric_name(self.points) or metric_name([p for run in self.past.values() for p in run]) or "loss"

    @property
    def counts(self) -> dict[str, int]:
        """How many points each group of the current run shows."""
        return {group: len(dots.x) for group, dots in self.dots.items()}

    def _marks(self) -> list[Any]:
        return [*self.past_marks, *self.lines.values(), *self.dots.values()]

    def _update_count(self) -> None:
        counts = self.counts
        self.count.value = (
            f"<span data-train='{counts['train']}' data-test='{counts['test']}'>"
            f"epochs charted: train {counts['train']}, test {counts['test']}</span>"
        )

    def _set_group(self, group: str, steps: np.ndarray, values: np.ndarray) -> None:
        for mark in (self.lines[group], self.dots[group]):
            with mark.hold_sync():
                mark.x, mark.y = steps, values

    # -- data ----------------------------------------------------------------------------------

    def show_run(self, points: Sequence[Mapping[str, Any]]) -> None:
        """Show a run's points (replacing the current run's; `[]` clears it for a new run)."""
        self.points = [dict(p) for p in points]
        self._follow = True
        self.redraw()

    def add_epoch(self, data: Mapping[str, Any]) -> None:
        """Append one finished epoch (the data of a trainer ``epoch`` event)."""
        point = dict(data)
        self.points.append(point)
        key = self.key
        if key != self._drawn_key:  # the first point says what the metric is called: relabel, rescale
            self.redraw()
            return
        for group, name in (("train", key), ("test", f"test_{key}")):
            if name in point:
                steps, values = series(self.points, name)
                self._set_group(group, steps, values)
        self._update_range()
        self._update_count()

    def set_past(self, runs: Mapping[int, Sequence[Mapping[str, Any]]]) -> None:
        """Show other runs' curves (run number -> points) in grey-ish tones behind the current run."""
        self.past = {run: [dict(p) for p in points] for run, points in runs.items()}
        self.redraw()

    def redraw(self) -> None:
        """Recompute every mark's data for the chosen value (after a switch, a new run or past runs)."""
        key = self._drawn_key = self.key
        for group, name in (("train", key), ("test", f"test_{key}")):
            self._set_group(group, *series(self.points, name))
        marks = []
        scales = {"x": self.x_scale, "y": self.y_scale}
        for index, (run, points) in enumerate(sorted(self.past.items())):
            color = _PAST_COLORS[index % len(_PAST_COLORS)]
            for name, style, label in ((key, "solid", "train"), (f"test_{key}", "dashed", "test")):
                steps, values = series(points, name)
                if steps.size:
                    marks.append(
                        bq.Lines(
                            x=steps,
                            y=values,
                            scales=scales,
                            colors=[color],
                            line_style=style,
                            opacities=[0.6],
                            labels=[f"run {run} {label}"],
                            display_legend=True,
                        )
                    )
        self.past_marks = marks
        self.figure.marks = self._marks()
        self.y_axis.label = key.replace("_", " ")
        # accuracy-like metrics live in [0, 1]; a loss has no fixed top
        bounded = key != "loss" and all(0 <= v <= 1 for p in self._all_points() for v in [p.get(key)] if v is not None)
        self.y_scale.min, self.y_scale.max = (0.0, 1.0) if bounded else (None, None)
        has_metric = metric_name(self.points) is not None or not self.points
        self.note.value = (
            ""
            if has_metric
            else "<i>This model reports no metric while training (a detector's quality is its "
            "mAP, from validation); the chart shows its loss.</i>"
        )
        self._update_range()
        self._update_count()

    def _all_points(self) -> list[Mapping[str, Any]]:
        return [*self.points, *(p for run in self.past.values() for p in run)]

    # -- step range ------------------------------------------------------------------------------

    def _update_range(self) -> None:
        """Stretch the slider to the steps shown; its end follows new points unless the user moved it."""
        steps = [p["step"] for p in self._all_points() if "step" in p]
        top = int(max(steps, default=1))
        low = self.range.value[0]
        self._setting_range = True
        try:
            if top > self.range.max:
                self.range.max = top
            elif top < self.range.max:  # a new run with fewer steps: shrink
                self.range.max = max(top, 1)
            if self._follow:
                self.range.value = (min(low, self.range.max), self.range.max)
        finally:
            self._setting_range = False
        self._apply_range()

    def _on_range(self, change: Any) -> None:
        if not self._setting_range:
            self._follow = change["new"][1] >= self.range.max
        self._apply_range()

    def _apply_range(self) -> None:
        low, high = self.range.value
        self.x_scale.min, self.x_scale.max = float(low), float(max(high, low + 1))

    def set_range(self, start: int, end: int) -> None:
        """Limit the x axis to steps `start`..`end` (the guide's Start Step / End Step)."""
        self.range.value = (int(start), int(end))
