"""The post-training quantization controls the Validation and Export panels share: the toggle, per channel or per
tensor, the quantized model's input and output types, and the number of calibration images.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from ..convert.tflite import IO_TYPES


class QuantizationControls:
    """The controls, and a box with the options shown only while the toggle is on.

    Args:
        label: the toggle's text.
        style: the description style of the dropdowns (their label width).
    """

    def __init__(self, label: str, style: dict[str, Any]):
        self.quantize = w.Checkbox(value=False, description=label, indent=False)
        self.granularity = w.ToggleButtons(options=[("per channel", True), ("per tensor", False)], value=True)
        self.granularity.style.button_width = "100px"
        self.input_type = w.Dropdown(options=IO_TYPES, value="float32", description="Input type", style=style)
        self.output_type = w.Dropdown(options=IO_TYPES, value="float32", description="Output type", style=style)
        self.samples = w.BoundedIntText(value=100, min=1, max=100000, description="Calibration images", style=style)
        self.options = w.VBox([self.granularity, w.HBox([self.input_type, self.output_type]), self.samples])
        self.options.layout.display = "none"

    def widgets(self) -> tuple[w.Checkbox, w.ToggleButtons, w.Dropdown, w.Dropdown, w.BoundedIntText, w.VBox]:
        """(toggle, granularity, input type, output type, samples, options box), for a panel's own names."""
        return self.quantize, self.granularity, self.input_type, self.output_type, self.samples, self.options
