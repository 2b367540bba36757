"""Export a training run's model: TFLite (float32 or int8), ONNX (float32 or int8 QDQ), Keras (.keras, .h5),
SavedModel, with its labels and, for a detector, its anchors, both embedded and beside the file; every
export is checked against the run's Keras model on project images and recorded in the project.

A detector is exported with its raw outputs (box offsets and class logits per anchor) and the decoder
outside the graph: the graph stays plain convolutions, which int8 quantization keeps exact and an NPU
(Vela for Ethos-U) maps whole, where TFLite's detection post-processing is a custom op that neither ONNX
nor NPUs run. The decoder needs the anchors, so they travel with the model in three ways:

- ``anchor_boxes.npy`` beside the model (float32 [A, 4], cy, cx, h, w), as the guide's SSD example;
- TFLite: the ``ssd_anchor_boxes`` metadata entry (the same float32 bytes; the guide's constant name),
  plus ``eiq_metadata`` (JSON) and ``labels`` (labels.txt text) entries in the flatbuffer's metadata table;
- ONNX: ``eiq_metadata`` (JSON with the anchors) and ``labels`` in metadata_props;
- SavedModel: ``assets/eiq_metadata.json`` and ``assets/labels.txt`` inside the folder.

``eiq_metadata`` holds the model's `get_metadata()` (task, normalization, preprocessing, output layout,
box variances, anchors) plus labels, input size, model name, run and quantization, so the runner and the
validator can preprocess inputs and print boxes from the file alone.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError

#: Formats `export_run` writes, by name, with their file suffix (a SavedModel is a folder).
FORMATS = {"tflite": ".tflite", "onnx": ".onnx", "keras": ".keras", "h5": ".h5", "savedmodel": ""}
#: Formats that hold an int8 model.
QUANTIZABLE = ("tflite", "onnx")
#: Calibration images taken from the train group for int8 quantization, unless told otherwise.
DEFAULT_SAMPLES = 100
#: Project images an export is compared on against the run's Keras model (test group first).
DEFAULT_PARITY_IMAGES = 32


@dataclass
class ExportResult:
    """What `export_run` wrote: the model file (or SavedModel folder), the files beside it, the metadata it
    embeds, its parity check against the run's Keras model, and its record in the project."""

    path: Path
    beside: list[Path] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    parity: dict[str, Any] | None = None
    record: Any = None


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


def _check_options(fmt: str, quantize: bool, input_type: str, output_type: str) -> None:
    if fmt not in FORMATS:
        raise InputError(f"format must be one of {', '.join(FORMATS)}; received {fmt!r}")
    if quantize and fmt not in QUANTIZABLE:
        raise InputError(
            f"{fmt} models hold float32 weights; an int8 model is exported as {' or '.join(QUANTIZABLE)} (--format)"
        )
    if fmt == "onnx" and (input_type, output_type) != ("float32", "float32"):
        raise InputError(
            "an ONNX model keeps float32 inputs and outputs (int8 QDQ quantizes inside the graph); leave the input "
            "and output types at float32"
        )


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
    parity_images: int = DEFAULT_PARITY_IMAGES,
) -> ExportResult:
    """Export a finished run's model, check it against the run's Keras model and record it in the project.

    Args:
        project: an open `Project`.
        run: the run (number or ``"last"``).
        fmt: one of `FORMATS`.
        output: the model file (a folder for ``savedmodel``) to write (default: ``<project stem>_run<N>.<suffix>``
            beside the project); ``labels.txt`` and, for a detector, ``anchor_boxes.npy`` are written in the same
            folder. Nothing is left half-written: the model is built and checked aside, then moved into place.
        quantize: post-training int8 (TFLite: integer-only; ONNX: QDQ), calibrated on `num_samples` train images.
        per_channel: int8 weights with one scale per channel (False: one per tensor).
        input_type, output_type: the quantized TFLite model's interface types (float32, int8, uint8).
        parity_images: test images (train when the test group is empty) the export is compared on; 0 skips it.

    Raises:
        InputError: an unknown format, quantization of a format that holds float weights, integer I/O for ONNX,
            or a run without a model.
    """
    from ..evaluate.executors import KerasExecutor, open_model
    from ..evaluate.parity import parity
    from ..evaluate.runs import run_input
    from ..models import registry
    from ..train import TrainingSettings, load_run_model
    from ..train.trainer import plugin_params

    _check_options(fmt, quantize, input_type, output_type)
    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    plugin_params(plugin, settings)  # the stored parameters still fit the plugin
    path = _target(project, record.id, fmt, output)
    model = load_run_model(project, record.id)
    metadata = run_metadata(project, record.id, plugin, settings)
    options = metadata["quantization"] = _quantization(quantize, per_channel, input_type, output_type)
    inputs = run_input(project, settings, plugin, list(record.labels))
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".eiq-export-", dir=path.parent) as work:
        built = Path(work) / (path.name or "model")
        calibration = (lambda: inputs.preprocessed("train", num_samples)) if quantize else None
        _build(fmt, model, built, metadata, calibration, per_channel, input_type, output_type)
        checked = None
        if parity_images > 0:
            group = "test" if inputs.samples.test_count else "train"
            images = np.stack(list(inputs.preprocessed(group, parity_images)))
            checked = parity(KerasExecutor(model), open_model(built), images, settings.task)
        _replace(built, path)
    labels = "\n".join(record.labels) + "\n"
    beside = [path.with_name("labels.txt")]
    beside[0].write_text(labels)
    if "anchors" in metadata:
        beside.append(path.with_name("anchor_boxes.npy"))
        np.save(beside[-1], np.asarray(metadata["anchors"], np.float32))
    size, digest = _digest(path)
    entry = project.add_export(record.id, fmt, str(path.resolve()), {"format": fmt, **options}, size, digest, checked)
    return ExportResult(path, beside, metadata, checked, entry)


def quantized_executor(
    project: Any,
    run: int | str = "last",
    *,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    num_samples: int = DEFAULT_SAMPLES,
) -> Any:
    """The run's model post-training quantized to int8 TFLite in memory, as a LiteRT executor: what the
    guide's validation toggle evaluates (`evaluate_run(project, run, executor=...)`) before anything is exported.

    Raises:
        InputError: a bad input/output type, or a run without a model or train images.
    """
    from ..evaluate.executors import LiteRTExecutor
    from ..evaluate.runs import run_input
    from ..models import registry
    from ..train import TrainingSettings, load_run_model
    from .tflite import to_tflite

    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    inputs = run_input(project, settings, plugin, list(record.labels))
    data = to_tflite(
        load_run_model(project, record.id), quantize=True, samples=lambda: inputs.preprocessed("train", num_samples),
        per_channel=per_channel, input_type=input_type, output_type=output_type,
    )  # fmt: skip
    kind = "per-channel" if per_channel else "per-tensor"
    return LiteRTExecutor(data, f"run {record.id} (int8 {kind}, {input_type} in, {output_type} out)")


def run_tflite(
    project: Any,
    run: int | str = "last",
    *,
    quantize: bool = False,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    num_samples: int = DEFAULT_SAMPLES,
) -> bytes:
    """A run's model as TFLite bytes, float32 or post-training int8, with its labels and metadata embedded (as
    `export_run` writes them) but nothing written or recorded: what validation uploads to a remote device.

    Raises:
        InputError: a bad input/output type (or integer types without `quantize`), or a run without a model or,
            for `quantize`, without train images.
    """
    from ..evaluate.runs import run_input
    from ..models import registry
    from ..train import TrainingSettings, load_run_model

    _check_options("tflite", quantize, input_type, output_type)
    record = project.run(run)
    settings = TrainingSettings.from_json(record.settings)
    plugin = registry().get(settings.model, task=settings.task)
    calibration = None
    if quantize:
        inputs = run_input(project, settings, plugin, list(record.labels))
        calibration = lambda: inputs.preprocessed("train", num_samples)  # noqa: E731
    metadata = run_metadata(project, record.id, plugin, settings)
    metadata["quantization"] = _quantization(quantize, per_channel, input_type, output_type)
    model = load_run_model(project, record.id)
    return _tflite(model, metadata, calibration, per_channel, input_type, output_type)


def _quantization(quantize: bool, per_channel: bool, input_type: str, output_type: str) -> dict[str, Any]:
    """How an export is quantized, as its metadata and export record say."""
    if not quantize:
        return {"type": "float32"}
    return {"type": "int8", "per_channel": per_channel, "input_type": input_type, "output_type": output_type}


def _tflite(
    model: Any, metadata: dict, calibration: Any, per_channel: bool, input_type: str, output_type: str
) -> bytes:
    """The model as a TFLite flatbuffer (int8 when `calibration` is given) with its metadata, labels and anchors."""
    from .tflite import to_tflite, with_metadata

    data = to_tflite(
        model, quantize=calibration is not None, samples=calibration, per_channel=per_channel,
        input_type=input_type, output_type=output_type,
    )  # fmt: skip
    labels = "\n".join(metadata["labels"]) + "\n"
    entries = {"eiq_metadata": json.dumps(metadata).encode(), "labels": labels.encode()}
    if "anchors" in metadata:
        entries["ssd_anchor_boxes"] = np.asarray(metadata["anchors"], np.float32).tobytes()
    return with_metadata(data, entries)


def _target(project: Any, run: int, fmt: str, output: str | os.PathLike | None) -> Path:
    path = Path(output) if output is not None else project.path.with_name(f"{project.path.stem}_run{run}")
    if fmt != "savedmodel" and (output is None or path.suffix == ""):
        path = path.with_suffix(FORMATS[fmt])
    if fmt == "savedmodel" and path.exists() and not (path.is_dir() and _replaceable(path)):
        raise InputError(f"{path} exists and is not an empty folder or a SavedModel; choose another --output")
    if fmt != "savedmodel" and path.is_dir():
        raise InputError(f"{path} is a folder; give the model file's name (--output)")
    return path


def _replaceable(folder: Path) -> bool:
    return not any(folder.iterdir()) or (folder / "saved_model.pb").exists()


def _build(
    fmt: str, model: Any, path: Path, metadata: dict, calibration: Any, per_channel: bool, input_type: str,
    output_type: str,
) -> None:  # fmt: skip
    """Write the model in `fmt` at `path` with its metadata embedded."""
    text = json.dumps(metadata)
    labels = "\n".join(metadata["labels"]) + "\n"
    if fmt == "tflite":
        path.write_bytes(_tflite(model, metadata, calibration, per_channel, input_type, output_type))
    elif fmt == "onnx":
        from .onnx import to_onnx

        props = {"eiq_metadata": text, "labels": labels}
        data = to_onnx(model, props)
        if calibration is not None:
            from .onnx_quantize import quantize_onnx

            data = _with_props(quantize_onnx(data, calibration, per_channel=per_channel), props)
        path.write_bytes(data)
    elif fmt == "savedmodel":
        model.save(path, save_format="tf")
        (path / "assets").mkdir(exist_ok=True)
        (path / "assets" / "eiq_metadata.json").write_text(text)
        (path / "assets" / "labels.txt").write_text(labels)
    else:
        with warnings.catch_warnings():  # Keras calls .h5 legacy; the user asked for it by name
            warnings.simplefilter("ignore", UserWarning)
            model.save(path)


def _with_props(data: bytes, props: dict[str, str]) -> bytes:
    """An ONNX model with `props` set in its metadata_props (quantization rewrites the model without them)."""
    import onnx

    proto = onnx.load_model_from_string(data)
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in props]
    del proto.metadata_props[:]
    for key, value in [*kept, *props.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def _replace(built: Path, path: Path) -> None:
    """Move a checked export into place (a SavedModel folder replaces the previous one whole)."""
    if built.is_dir() and path.exists():
        shutil.rmtree(path)
    os.replace(built, path)


def _digest(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a model file, or of a SavedModel folder's files in name order."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    digest, size = hashlib.sha256(), 0
    for file in files:
        data = file.read_bytes()
        digest.update(data)
        size += len(data)
    return size, digest.hexdigest()
