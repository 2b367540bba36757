"""The Model Tool: open a model file (Keras, SavedModel, TFLite, ONNX), see its graph in netron and its layers
(shapes, per-tensor / per-channel quantization, weight statistics and histogram), convert it, profile it on a
target; a layer-selection mode gives the Training panel the layers to prune or cluster.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bqplot as bq
import ipywidgets as w

from .base import Panel
from .convert_form import ConvertForm
from .netron_view import NetronView
from .profile_view import ProfileView

#: Per-channel scales shown in a tensor's details before "... (N more)".
SHOWN_CHANNELS = 8


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def _tensor_rows(tensors: list[Any]) -> str:
    rows = []
    for t in tensors:
        scales = ", ".join(f"{s:.3g}" for s in t.scales[:SHOWN_CHANNELS])
        zeros = ", ".join(str(z) for z in t.zero_points[:SHOWN_CHANNELS])
        more = f" ... ({len(t.scales) - SHOWN_CHANNELS} more)" if len(t.scales) > SHOWN_CHANNELS else ""
        rows.append(
            f"<tr><td>{html.escape(t.name)}</td><td>{'x'.join(map(str, t.shape))}</td><td>{t.dtype}</td>"
            f"<td>{html.escape(t.quantization)}</td><td>{scales}{more}</td><td>{zeros}{more}</td></tr>"
        )
    return "".join(rows)


class ModelTool(Panel):
    """The Model Tool for one model file at a time.

    Args:
        path: the model to open (a file or a SavedModel folder); none: type one in.
        select: layer-selection mode: pick layers (with weights) for pruning or clustering; `selected_layers`
            holds them and `on_selection(names)` is called on each change.
        trust_code: let a Keras file run the Python code it carries (its Lambda layers); off by default.
        graph: show the netron graph (off for a table-only view, e.g. in tests without a browser).
    """

    title = "Model Tool"

    def __init__(self, path: str | Path | None = None, *, select: bool = False, trust_code: bool = False,
                 graph: bool = True):  # fmt: skip
        self.info: Any = None
        self.on_selection: Callable[[list[str]], Any] | None = None
        self.on_open: Callable[[Path], Any] | None = None
        self.path_box = w.Text(value=str(path or ""), placeholder=".tflite, .onnx, .h5, .keras or a SavedModel folder",
                               description="Model", layout=w.Layout(width="520px"))  # fmt: skip
        self.path_box.add_class("eiq-model-path")
        self.trust = w.Checkbox(
            value=trust_code,
            description="trust the file's code (Keras Lambda layers)",
            indent=False,
            layout=w.Layout(width="auto"),
        )
        self.open_button = w.Button(description="Open", button_style="primary", icon="folder-open")
        self.open_button.add_class("eiq-model-open")
        self.open_button.on_click(self.guarded(lambda _: self.open_model(self.path_box.value)))
        self.summary = w.HTML()
        self.summary.add_class("eiq-model-summary")
        self.graph = NetronView() if graph else None
        self.table = w.HTML()
        self.table.add_class("eiq-layer-table")
        self.layer = w.Dropdown(description="Layer", options=[], layout=w.Layout(width="520px"))
        self.layer.add_class("eiq-layer-pick")
        self.layer.observe(lambda _: self._show_layer(), "value")
        self.details = w.HTML()
        self.details.add_class("eiq-layer-details")
        self.x_hist, self.y_hist = bq.LinearScale(), bq.LinearScale(min=0)
        self.hist_bars = bq.Bars(
            x=[],
            y=[],
            scales={"x": self.x_hist, "y": self.y_hist},
            colors=["#2ca02c"],
            tooltip=bq.Tooltip(fields=["x", "y"], labels=["weight", "count"], formats=[".3g", ""]),
        )
        self.histogram = bq.Figure(
            marks=[self.hist_bars], title="weights",
            axes=[bq.Axis(scale=self.x_hist, label="value"), bq.Axis(scale=self.y_hist, side="left")],
            layout=w.Layout(height="260px", width="100%"),
            fig_margin={"top": 30, "bottom": 40, "left": 50, "right": 10},
        )  # fmt: skip
        self.selection = w.SelectMultiple(options=[], description="Select", rows=12, layout=w.Layout(width="520px"))
        self.selection.add_class("eiq-layer-select")
        self.selection.observe(lambda _: self._selected(), "value")
        self.selection.layout.display = "flex" if select else "none"
        self.convert = ConvertForm()
        self.convert.on_converted = self._converted
        self.profile = ProfileView()
        layers = w.VBox([self.selection, self.table, self.layer, self.details, self.histogram])
        pages = ([self.graph] if self.graph else []) + [layers, self.convert, self.profile]
        titles = (["Graph"] if self.graph else []) + ["Layers", "Convert", "Profile"]
        self.tabs = w.Tab(pages)
        for i, name in enumerate(titles):
            self.tabs.set_title(i, name)
        super().__init__([w.HBox([self.path_box, self.open_button]), self.trust, self.summary, self.tabs])
        self.add_class("eiq-model-tool")
        if path:
            self.guarded(self.open_model)(path)

    @property
    def selected_layers(self) -> list[str]:
        return list(self.selection.value)

    def open_model(self, path: str | Path) -> Any:
        """Open a model: summary, layer table, graph; convert and profile point at it.

        Raises:
            InputError: no such file or not a model (the message names the formats).
        """
        from ..convert.inspection import inspect_model

        source = Path(str(path).strip()).expanduser()
        info = inspect_model(source, trust_code=self.trust.value)
        self.info = info
        self.path_box.value = str(source)
        inputs = "; ".join(f"{html.escape(t.name)} {'x'.join(map(str, t.shape))} {t.dtype}" for t in info.inputs)
        outputs = "; ".join(f"{html.escape(t.name)} {'x'.join(map(str, t.shape))} {t.dtype}" for t in info.outputs)
        labels = info.metadata.get("labels") or []
        self.summary.value = (
            f"<b>{html.escape(source.name)}</b>: {info.format}, {info.size:,} bytes, {len(info.layers)} layers, "
            f"{info.params:,} parameters, {'quantized' if info.quantized else 'float'}"
            f"{f', {len(labels)} labels' if labels else ''}<br>inputs: {inputs}<br>outputs: {outputs}"
        )
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_number(row[k]))}</td>" for k in
                             ("index", "name", "type", "inputs", "output", "dtype", "quantization", "params", "min",
                              "max", "mean", "std", "zeros")) + "</tr>"
            for row in info.rows()
        )  # fmt: skip
        head = "".join(f"<th>{h}</th>" for h in ("#", "name", "type", "inputs", "output", "dtype", "quantization",
                                                  "params", "min", "max", "mean", "std", "zeros"))  # fmt: skip
        self.table.value = (
            f"<div style='max-height:320px;overflow:auto'><table class='eiq-table'><tr>{head}</tr>{rows}</table></div>"
        )
        names = [layer.name for layer in info.layers]
        weighted = [layer.name for layer in info.layers if layer.weights]
        self.layer.options = names
        self.layer.value = weighted[0] if weighted else (names[0] if names else None)
        self.selection.value = ()
        self.selection.options = weighted
        self.convert.set_model(source)
        self.profile.set_model(source)
        if self.graph is not None:
            self.graph.show(source)
        self.say(f"opened {source}", "ok")
        if self.on_open is not None:
            self.on_open(source)
        return info

    def _show_layer(self) -> None:
        if self.info is None or not self.layer.value:
            return
        layer = self.info.layer(self.layer.value)
        stats = layer.stats
        numbers = (
            f"{stats.count:,} weights, min {stats.min:.4g}, max {stats.max:.4g}, mean {stats.mean:.4g}, "
            f"std {stats.std:.4g}, zeros {100 * stats.zeros:.1f} %"
            if stats
            else "no weights"
        )
        columns = ("tensor", "shape", "dtype", "quantization", "scales", "zero points")
        head = "<tr>" + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"
        self.details.value = (
            f"<b>{html.escape(layer.name)}</b> ({html.escape(layer.type)}): {numbers}<table class='eiq-table'>{head}"
            f"<tr><td colspan=6><i>inputs</i></td></tr>{_tensor_rows([t for t in layer.inputs if not t.constant])}"
            f"<tr><td colspan=6><i>weights</i></td></tr>{_tensor_rows(layer.weights)}"
            f"<tr><td colspan=6><i>outputs</i></td></tr>{_tensor_rows(layer.outputs)}</table>"
        )
        counts, edges = self.info.histogram(layer)
        with self.hist_bars.hold_sync():
            self.hist_bars.x = [float(x) for x in (edges[:-1] + edges[1:]) / 2] if len(edges) else []
            self.hist_bars.y = [int(c) for c in counts]
        self.histogram.title = f"weights of {layer.name}"

    def _selected(self) -> None:
        if self.on_selection is not None:
            self.on_selection(self.selected_layers)

    def _converted(self, path: Path) -> None:
        self.convert.say(f"converted to {path}; open it here with Open", "ok")
        self.path_box.value = str(path)

    def close(self) -> None:
        if self.graph is not None:
            self.graph.stop()
        super().close()
