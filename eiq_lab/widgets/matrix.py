"""The confusion matrix as one bqplot figure: a coloured grid (green diagonal, red errors, darker for more images,
the background column last) with the count in every cell, redrawn in one message per mark; click a cell to pick it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import bqplot as bq
import ipywidgets as w
import numpy as np

#: Colours of the grid: errors, empty cells, right predictions (the status line's red and green).
ERROR_COLOR, EMPTY_COLOR, RIGHT_COLOR = "#b3261e", "#ffffff", "#1b7f3b"
#: Cells darker than this share of the largest count get white text.
_DARK = 0.55
# counts sit on top of the cells: clicks go through them to the cell below
_STYLE = (
    "<style>.eiq-validation-matrix .bqplot .label, .eiq-validation-matrix text.label {pointer-events: none}</style>"
)


def cell_colors(confusion: np.ndarray) -> np.ndarray:
    """The colour value of every cell of a confusion matrix [C, C + 1] in [-1, 1]: the count over the largest
    count, positive on the diagonal (right), negative elsewhere (errors and the background column)."""
    counts = np.asarray(confusion, np.float64)
    rows, columns = counts.shape
    largest = counts.max() if counts.size else 0.0
    share = counts / largest if largest else counts
    sign = -np.ones((rows, columns))
    sign[np.arange(rows), np.arange(rows)] = 1.0
    return share * sign


class ConfusionMatrix(w.VBox):
    """A confusion matrix view: rows the true classes, columns the predicted classes and the background column.

    `show(classes, columns, confusion)` draws a matrix; for the same classes only the colours and counts change
    (one update message for the grid, one for the counts). A click on a cell calls `on_select(row, column)`.
    """

    def __init__(self, **kwargs: Any):
        self.on_select: Callable[[int, int], None] | None = None
        self.rows: list[str] = []
        self.columns: list[str] = []
        self.confusion = np.zeros((0, 0), np.int64)
        self.row_scale = bq.OrdinalScale(reverse=True)
        self.column_scale = bq.OrdinalScale()
        self.color_scale = bq.ColorScale(min=-1.0, max=1.0, mid=0.0, colors=[ERROR_COLOR, EMPTY_COLOR, RIGHT_COLOR])
        self.grid = bq.GridHeatMap(
            color=np.zeros((2, 3)), row=["-", "--"], column=["-", "--", "background"],
            scales={"row": self.row_scale, "column": self.column_scale, "color": self.color_scale},
            selected_style={"stroke": "#111111", "stroke-width": "3"},
            stroke="#cccccc", null_color="#ffffff",
        )  # fmt: skip
        self.counts = bq.Label(
            x=["-"], y=["-"], text=np.array([""]), scales={"x": self.column_scale, "y": self.row_scale},
            align="middle", default_size=13.0, font_weight="bold", colors=["black"], y_offset=5,
        )  # fmt: skip
        self.figure = bq.Figure(
            marks=[self.grid, self.counts],
            axes=[
                bq.Axis(scale=self.column_scale, label="predicted class", side="bottom"),
                bq.Axis(scale=self.row_scale, label="true class", side="left"),
            ],
            fig_margin={"top": 10, "bottom": 60, "left": 90, "right": 10},
            padding_x=0.0, padding_y=0.0, layout=w.Layout(width="420px", height="360px"),
        )  # fmt: skip
        self.figure.add_class("eiq-validation-matrix")
        # a click arrives as the mark's element_click message (bqplot's own click selection breaks on the way
        # back to Python: bqplot issue 1632); the cell is then highlighted from here
        self.grid.on_element_click(self._clicked)
        super().__init__([w.HTML(_STYLE), self.figure], **kwargs)

    def show(self, classes: list[str], columns: list[str], confusion: np.ndarray) -> None:
        """Draw `confusion` [len(classes), len(columns)]; for the classes already shown only colours and counts move."""
        confusion = np.asarray(confusion)
        values = cell_colors(confusion)
        text = confusion.astype(str).ravel()
        colors = ["white" if abs(v) > _DARK else "black" for v in values.ravel()]
        if list(classes) != self.rows or list(columns) != self.columns:
            self._layout(list(classes), list(columns), values, text, colors)
        else:
            with self.grid.hold_sync():
                self.grid.color = values
            with self.counts.hold_sync():
                self.counts.text = text
                if colors != self.counts.colors:
                    self.counts.colors = colors
        self.confusion = confusion

    def _layout(self, rows: list[str], columns: list[str], values: np.ndarray, text: np.ndarray, colors: list) -> None:
        self.rows, self.columns = rows, columns
        side = max(300, 44 * len(columns) + 110)
        self.figure.layout.width, self.figure.layout.height = f"{side + 40}px", f"{side}px"
        self.grid.selected = None
        with self.grid.hold_sync():
            # bqplot checks the rows against the colours: both change in one step
            self.grid.set_trait("color", values)
            self.grid.row, self.grid.column = rows, columns
        with self.counts.hold_sync():
            self.counts.x = np.tile(np.asarray(columns), len(rows))
            self.counts.y = np.repeat(np.asarray(rows), len(columns))
            self.counts.text = text
            self.counts.colors = colors

    def select(self, row: int, column: int) -> None:
        """Pick a cell as a click on it does: highlight it and call `on_select(row, column)`."""
        self.grid.selected = np.array([[row, column]])
        if self.on_select is not None:
            self.on_select(row, column)

    def _clicked(self, _mark: Any, content: dict) -> None:
        cell = content.get("data") or {}
        if "rowNum" in cell and "columnNum" in cell:
            self.select(int(cell["rowNum"]), int(cell["columnNum"]))
