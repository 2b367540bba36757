"""The Model Tool's convert form: every converter option (the guide's Tables 4.2 and 4.3: names, shapes, labels,
quantization, calibration samples, Vela configuration, plugin), run through the same `convert` the CLI calls.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..convert.tflite import IO_TYPES
from ..errors import InputError
from .base import Panel

#: Output formats of the guide's conversion dialog: suffix and whether the int8 TFLite is compiled by Vela.
OUTPUTS = {"TF Lite": (".tflite", False), "TF Lite Vela": (".tflite", True), "ONNX": (".onnx", False),
           "RTM": (".rtm", False)}  # fmt: skip


def _text(description: str, placeholder: str = "", value: str = "") -> w.Text:
    return w.Text(value=value, description=description, placeholder=placeholder, style={"description_width": "150px"},
                  layout=w.Layout(width="520px"))  # fmt: skip


class ConvertForm(Panel):
    """Convert one model file; `on_converted(path)` gets the written file (the Model Tool opens it)."""

    title = "Convert"

    def __init__(self, path: str | Path | None = None):
        from ..convert import registry

        self.path = Path(path) if path else None
        self.on_converted: Callable[[Path], Any] | None = None
        wide = {"style": {"description_width": "150px"}}
        self.format = w.Dropdown(options=list(OUTPUTS), description="Output format", **wide)
        self.output = _text("Output file", "default: beside the model")
        self.labels = _text("Labels file", "labels.txt to embed")
        self.input_names = _text("Input names", "NAME[:INDEX][:NEWNAME], comma-separated (trims)")
        self.output_names = _text("Output names", "NAME[:INDEX][:NEWNAME], comma-separated (trims)")
        self.input_shape = _text("Input shape", "for dynamic inputs, e.g. 1,224,224,3")
        self.model_name = _text("Model name")
        self.quantize = w.Checkbox(description="Quantize (post-training int8)", value=False)
        self.quantize_format = w.Dropdown(options=["int8", "uint8"], description="Weights", **wide)
        self.per_tensor = w.Checkbox(description="Per tensor (default: per channel)", value=False)
        self.input_type = w.Dropdown(options=IO_TYPES, description="Input type", **wide)
        self.output_type = w.Dropdown(options=IO_TYPES, description="Output type", **wide)
        self.normalization = w.Dropdown(options=["signed", "unsigned", "none"], description="Normalization", **wide)
        self.samples = _text("Samples", "a folder of images, a .eiqp project, or N random")
        self.num_samples = w.BoundedIntText(value=10, min=1, max=100000, description="Number of samples", **wide)
        self.vela_config = _text("Vela configuration", "imx93, ethos-u55-256, ... or a .ini file", "imx93")
        ready = [p.name for p in registry.plugins() if p.status == registry.READY]
        self.plugin = w.Dropdown(
            options=[("(automatic)", None), *[(n, n) for n in ready]], description="Plugin", **wide
        )
        self.button = w.Button(description="Convert", button_style="primary", icon="exchange")
        self.button.add_class("eiq-convert-run")
        self.button.on_click(self.guarded(lambda _: self.start()))
        self.result = w.HTML()
        self.result.add_class("eiq-convert-result")
        self.quant_box = w.VBox([self.quantize_format, self.per_tensor, self.input_type, self.output_type,
                                 self.normalization, self.samples, self.num_samples])  # fmt: skip
        for control in (self.quantize, self.format):
            control.observe(lambda _: self._toggle(), "value")
        self._toggle()
        super().__init__([
            self.format, self.output, self.labels, self.input_names, self.output_names, self.input_shape,
            self.model_name, self.plugin, self.quantize, self.quant_box, self.vela_config, self.button, self.result,
        ])  # fmt: skip
        self.add_class("eiq-convert")

    def _toggle(self) -> None:
        vela = OUTPUTS[self.format.value][1]
        if vela:
            self.quantize.value = True  # Vela compiles int8 models only
        self.quant_box.layout.display = "flex" if self.quantize.value else "none"
        self.vela_config.layout.display = "flex" if vela else "none"

    def set_model(self, path: str | Path) -> None:
        self.path = Path(path)
        self.result.value = ""

    def destination(self) -> Path:
        """The output file: as typed, else ``<model>_converted<suffix>`` beside the model."""
        if self.path is None:
            raise InputError("open a model first")
        suffix, _ = OUTPUTS[self.format.value]
        if self.output.value.strip():
            out = Path(self.output.value.strip()).expanduser()
            if out.suffix != suffix:
                raise InputError(f"output {out} must end in {suffix} for {self.format.value}")
            return out
        return self.path.with_name(f"{self.path.stem.removesuffix('.tflite')}_converted{suffix}")

    def params(self) -> dict[str, Any]:
        """The converter parameters the form gives (options left empty are left out)."""
        params: dict[str, Any] = {}
        for key, field in (("labels", self.labels), ("input_names", self.input_names),
                           ("output_names", self.output_names), ("input_shape", self.input_shape),
                           ("name", self.model_name)):  # fmt: skip
            if field.value.strip():
                params[key] = field.value.strip()
        if self.quantize.value:
            params.update(quantize=True, quantize_format=self.quantize_format.value,
                          quant_channel=not self.per_tensor.value, input_type=self.input_type.value,
                          output_type=self.output_type.value, quant_normalization=self.normalization.value,
                          num_samples=self.num_samples.value)  # fmt: skip
            if self.samples.value.strip():
                params["samples"] = self.samples.value.strip()
        if OUTPUTS[self.format.value][1]:
            params["vela_config"] = self.vela_config.value.strip() or "imx93"
        return params

    def start(self) -> Any:
        """Convert on a background thread; the result (or the converter's message) shows below the form."""
        from ..convert.registry import convert

        src, dst, params, plugin = self.path, self.destination(), self.params(), self.plugin.value

        def work(progress: Any) -> Any:
            progress.start("convert", total=None, message=f"{src.name} -> {dst.name}")
            return convert(src, dst, params, plugin=plugin)

        return self.run(work, on_done=self._done, busy=[self.button])

    def _done(self, result: Any) -> None:
        rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(str(v))}</td></tr>"
                       for k, v in result.to_dict().items() if v not in ("", None))  # fmt: skip
        self.result.value = f"<table class='eiq-table'>{rows}</table>"
        self.say(f"wrote {result.dst} ({result.bytes:,} bytes) in {result.seconds:.1f} s", "ok")
        if self.on_converted is not None:
            self.on_converted(result.dst)
