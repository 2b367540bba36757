"""The Model Tool's profiling view: a target picker (this host's engines, Vela's estimate, saved remote devices),
per-layer bqplot bars with a selector of the collected statistics, per-operator-type bars, the runtime layers
mapped to the original model's layers, and the total model statistics.
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as w

from .base import Panel

HOST_TARGETS = {
    "this host: LiteRT": ("tflite", None),
    "this host: ONNX Runtime": ("onnx", None),
    "Vela estimate (i.MX 93, Ethos-U65)": ("vela", None),
}


def target_options() -> list[tuple[str, tuple[str, str | None]]]:
    """What the model can be profiled on: this host's engines, then each saved device marked for profiling."""
    from ..runner.targets import list_targets

    options = list(HOST_TARGETS.items())
    for target in list_targets():
        mark = "" if target.profile else " (not marked for profiling)"
        options.append((f"device {target.name}: {target.uri}{mark}", ("remote", target.uri)))
    return options


class ProfileView(Panel):
    """Profile one model file and chart where its time goes.

    Args:
        path: the model file (.tflite or .onnx; Vela takes an int8 .tflite).
    """

    title = "Profiling"

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path else None
        self.profile: Any = None
        self.target = w.Dropdown(options=target_options(), description="Target")
        self.runs = w.BoundedIntText(value=10, min=1, max=10000, description="Runs")
        self.threads = w.BoundedIntText(value=1, min=1, max=64, description="Threads")
        self.xnnpack = w.Checkbox(value=True, description="XNNPACK (LiteRT)")
        self.button = w.Button(description="Profile model", button_style="primary", icon="tachometer")
        self.button.add_class("eiq-profile-run")
        self.button.on_click(self.guarded(lambda _: self.start()))
        self.statistic = w.ToggleButtons(options=["time (us)"], description="Statistic")
        self.statistic.observe(lambda _: self._draw(), "value")
        self.x_layers, self.y_layers = bq.OrdinalScale(), bq.LinearScale(min=0)
        tooltip = bq.Tooltip(fields=["x", "y"], labels=["layer", "value"], formats=["", ".2f"])
        self.layer_bars = bq.Bars(x=[], y=[], scales={"x": self.x_layers, "y": self.y_layers}, tooltip=tooltip,
                                  colors=["#1f77b4"])  # fmt: skip
        self.layer_chart = bq.Figure(
            marks=[self.layer_bars],
            axes=[bq.Axis(scale=self.x_layers, tick_rotate=-60, tick_style={"font-size": "8px"}),
                  bq.Axis(scale=self.y_layers, side="left", label="time (us)")],
            title="per layer", layout=w.Layout(height="340px", width="100%"),
            fig_margin={"top": 30, "bottom": 110, "left": 60, "right": 10},
        )  # fmt: skip
        self.layer_chart.add_class("eiq-profile-layers")
        self.x_types, self.y_types = bq.OrdinalScale(), bq.LinearScale(min=0)
        self.type_bars = bq.Bars(
            x=[],
            y=[],
            scales={"x": self.x_types, "y": self.y_types},
            colors=["#ff7f0e"],
            tooltip=bq.Tooltip(fields=["x", "y"], labels=["type", "us"], formats=["", ".1f"]),
        )
        self.type_chart = bq.Figure(
            marks=[self.type_bars],
            axes=[bq.Axis(scale=self.x_types, tick_rotate=-30),
                  bq.Axis(scale=self.y_types, side="left", label="us per inference")],
            title="per operator type", layout=w.Layout(height="280px", width="100%"),
            fig_margin={"top": 30, "bottom": 70, "left": 60, "right": 10},
        )  # fmt: skip
        self.totals = w.HTML()
        self.totals.add_class("eiq-profile-totals")
        self.mapping = w.HTML()
        self.mapping.add_class("eiq-profile-mapping")
        results = w.Tab([w.VBox([self.statistic, self.layer_chart]), self.type_chart, self.mapping, self.totals])
        for i, name in enumerate(["Layers", "Operator types", "Runtime -> original", "Total model statistics"]):
            results.set_title(i, name)
        self.results = results
        self.results.layout.display = "none"
        super().__init__([w.HBox([self.target, self.runs]), w.HBox([self.threads, self.xnnpack, self.button]),
                          self.results])  # fmt: skip
        self.add_class("eiq-profile")

    def set_model(self, path: str | Path) -> None:
        """Profile `path` next; the target starts on this host's engine for its format."""
        self.path = Path(path)
        self.profile = None
        self.results.layout.display = "none"
        engine = "onnx" if self.path.suffix.lower() == ".onnx" else "tflite"
        if self.target.value[0] in ("tflite", "onnx"):
            self.target.value = next(value for value in HOST_TARGETS.values() if value[0] == engine)

    def start(self) -> Any:
        """Profile the model on the chosen target (long work, on a background thread)."""
        from ..errors import InputError

        if self.path is None:
            raise InputError("open a model first")
        engine, uri = self.target.value
        path, runs, threads, xnnpack = self.path, self.runs.value, self.threads.value, self.xnnpack.value

        def work(progress: Any) -> Any:
            progress.start("profile", total=None, message=f"{path.name} on {self.target.label}")
            if engine == "remote":
                from ..runner.remote import profile_remote

                return profile_remote(uri, path, runs=runs)
            from ..runner.profiling import profile_model

            return profile_model(path, engine, runs=runs, threads=threads, xnnpack=xnnpack)

        return self.run(work, on_done=self.show, busy=[self.button])

    def show(self, profile: Any) -> None:
        """Chart a `Profile` (also usable with one computed elsewhere)."""
        self.profile = profile
        stats = profile.layer_statistics()
        self.statistic.options = list(stats)
        self._draw()
        by_type = profile.by_op_type()
        self.type_bars.x = list(by_type)
        self.type_bars.y = [total / 1e3 for _, total, _ in by_type.values()]
        rows = "".join(
            f"<tr><td>{html.escape(layer.name)}</td><td>{html.escape(layer.type)}</td>"
            f"<td>{layer.avg_ns / 1e3:.1f}</td>"
            f"<td>{html.escape(', '.join(layer.original) or '(runtime only)')}</td></tr>"
            for layer in profile.layers
        )
        self.mapping.value = (
            "<table class='eiq-table'><tr><th>runtime layer</th><th>type</th><th>us</th><th>original layers</th></tr>"
            f"{rows}</table>"
        )
        totals = "".join(
            f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
            for k, v in profile.statistics().items()
        )
        self.totals.value = f"<table class='eiq-table'><tr><th colspan=2>Model statistics</th></tr>{totals}</table>"
        self.results.layout.display = "flex"
        self.say(f"{profile.model}: {profile.total_ns / 1e3:.1f} us per inference on {profile.engine}", "ok")

    def _draw(self) -> None:
        if self.profile is None:
            return
        stats = self.profile.layer_statistics()
        values = stats.get(self.statistic.value) or next(iter(stats.values()))
        names = [f"{i}:{layer.name[-28:]}" for i, layer in enumerate(self.profile.layers)]
        with self.layer_bars.hold_sync():
            self.layer_bars.x, self.layer_bars.y = names, [float(v) for v in values]
        self.layer_chart.axes[1].label = self.statistic.value
