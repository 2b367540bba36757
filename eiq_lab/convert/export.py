"""Export a training run's model: TFLite (float32 or int8), ONNX, Keras (.keras, .h5), with its labels
and, for a detector, its anchors, both embedded and beside the file.

A detector is exported with its raw outputs (box offsets and class logits per anchor) and the decoder
outside the graph: the graph stays plain convolutions, which int8 quantization keeps exact and an NPU
(Vela for Ethos-U) maps whole, where TFLite's detection post-processing is a custom op that neither ONNX
nor NPUs run. The decoder needs the anchors, so they travel with the model in three ways:

- ``anchor_boxes.npy`` beside the model (float32 [A, 4], cy, cx, h, w), as the guide's SSD example;
- TFLite: the ``ssd_anchor_boxes`` metadata entry (the same float32 bytes; the guide's constant name),
  plus ``eiq_metadata`` (JSON) and ``labels`` (labels.txt text) entries in the flatbuffer's metadata table;
- ONNX: ``eiq_metadata`` (JSON with the anchors) and ``labels`` in metadata_props.

``eiq_metadata`` holds the model's `get_metadata()` (task, normalization, preprocessing, output layout,
box variances, anchors) plus labels, input size, model name, run and quantization, so the runner and the
validator can preprocess inputs and print boxes from the file alone.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: Formats `export_run` writes, by name, with their file suffix.
FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras", "h5": ".h5"}
#: Calibration images taken from the train group for int8 quantization, unless told otherwise.
DEFAULT_SAMPLES = 100


@dataclass
class ExportResult:
    """What `export_run` wrote: the model file, the files beside it, and the metadata it embeds."""

    path: Path
    beside: list[Path] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


def run_metadata(project: Any, run: int | str, plugin: Any, settings: Any) -> dict[str, Any]:
    """The metadata an exported model carries (see the module's docstring)."""
    record = project.run(run)
    metadata = dict(plugin.get_metadata())
    if settings.task == "detection":  # the anchors follow from the input size alone
        anchors = plugin.anchors(tuple(settings.input_size))
        metadata.update(anchors=anchors.astype(np.float64).tolist(), num_classes=len(record.labels))  # exact
    metadata.update(
        labels=list(record.labels), input_size=list(settings.input_size), model=settings.model, run=record.id
    )
    return metadata


def export_run(
    project: Any,
    run: int | str = "last",
    fmt: str = "tflite",
    output: str | os.PathLike | None = None,
    *,
    quantize: bool = False,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    num_samples: int = DEFAULT_SAMPLES,
) -> ExportResult:
    """Export a finished run's model.

    Args:
        project: an open `Project`.
        run: the run (number or ``"last"``).
        fmt: one of `FORMATS`.
        output: the model file to write (default: ``<project stem>_run<N>.<suffix>`` beside the project);
            ``labels.txt`` and, for a detector, ``anchor_boxes.npy`` are written in the same folder.
        quantize: TFLite only: post-training int8, calibrated on `num_samples` train images.
        per_channel: int8 weights with one scale per channel (False: per tensor).
        input_type, output_type: the quantized model's interface types (float32, int8, uint8).

    Raises:
        InputError: an unknown format, quantization of a format other than TFLite, or a run without a model.
    """
    from ..models import registry
    from ..train import TrainingSettings, load_run_model
    from ..train.trainer import plugin_params

    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}; received {fmt!r}")
    if quantize and fmt != "tflite":
        raise InputError(f"int8 quantization here is for TFLite; {fmt} models are exported in float32")
    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    plugin_params(plugin, settings)  # the stored parameters still fit the plugin
    path = Path(output) if output is not None else project.path.with_name(f"{project.path.stem}_run{record.id}")
    if output is None or path.suffix == "":
        path = path.with_suffix(FORMATS[fmt])
    path.parent.mkdir(parents=True, exist_ok=True)
    model = load_run_model(project, record.id)
    metadata = run_metadata(project, record.id, plugin, settings)
    metadata["quantization"] = (
        {"type": "int8", "per_channel": per_channel, "input_type": input_type, "output_type": output_type}
        if quantize
        else {"type": "float32"}
    )
    text = json.dumps(metadata)
    labels = "\n".join(record.labels) + "\n"
    if fmt == "tflite":
        from .tflite import to_tflite, with_metadata

        samples = _calibration(project, settings, plugin, record.labels, num_samples) if quantize else None
        data = to_tflite(
            model, quantize=quantize, samples=samples, per_channel=per_channel,
            input_type=input_type, output_type=output_type,
        )  # fmt: skip
        entries = {"eiq_metadata": text.encode(), "labels": labels.encode()}
        if "anchors" in metadata:
            entries["ssd_anchor_boxes"] = np.asarray(metadata["anchors"], np.float32).tobytes()
        path.write_bytes(with_metadata(data, entries))
    elif fmt == "onnx":
        from .onnx import to_onnx

        path.write_bytes(to_onnx(model, {"eiq_metadata": text, "labels": labels}))
    else:
        model.save(path)
    beside = [path.with_name("labels.txt")]
    beside[0].write_text(labels)
    if "anchors" in metadata:
        beside.append(path.with_name("anchor_boxes.npy"))
        np.save(beside[-1], np.asarray(metadata["anchors"], np.float32))
    return ExportResult(path, beside, metadata)


def _calibration(project: Any, settings: Any, plugin: Any, classes: list[str], count: int) -> Any:
    """A function giving `count` preprocessed train images of the run (calibration samples)."""
    from ..evaluate.runs import run_input

    inputs = run_input(project, settings, plugin, classes)
    return lambda: inputs.preprocessed("train", count)
