"""The quantization report: what int8 costs a classifier on a project's test group (accuracy per class, float
vs int8), where (per-layer SQNR and RMSE, layer by layer), and what keeping the worst layers float buys back.
"""

from __future__ import annotations

import csv
import io
import math
import warnings
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np

from .. import framework
from ..errors import InputError

#: Layers kept in float by the selective model unless told otherwise.
DEFAULT_KEEP_FLOAT = 3
#: Calibration samples the per-layer comparison runs on.
DEBUG_SAMPLES = 32
#: SQNR is capped here (dB) for a tensor int8 represents exactly, so values stay finite.
MAX_SQNR_DB = 120.0


@dataclass
class LayerError:
    """The int8 error of one layer's output tensor against the float layer fed the same input.

    Attributes:
        tensor: the output tensor's name (what ``denylisted_nodes`` takes); op: its operator (CONV_2D...).
        sqnr_db: signal to quantization noise ratio, 10 log10(sum f^2 / sum (f - q)^2), averaged over samples.
        rmse: root mean square of float - dequantized int8; scale, zero_point: the tensor's int8 parameters.
    """

    tensor: str
    op: str
    sqnr_db: float
    rmse: float
    scale: float
    zero_point: int

    def to_json(self) -> dict[str, Any]:
        return {"tensor": self.tensor, "op": self.op, "sqnr_db": self.sqnr_db, "rmse": self.rmse,
                "rmse_per_scale": self.rmse / self.scale if self.scale else None, "scale": self.scale,
                "zero_point": self.zero_point}  # fmt: skip


@dataclass
class QuantizationReport:
    """Float vs int8 on a project's test group, per layer, and with the worst layers kept float.

    Attributes:
        classes: class names in output order; images: test images compared.
        per_channel: the int8 model's weight granularity.
        float_accuracy, int8_accuracy, selective_accuracy: top-1 accuracy of the float, int8 and selective models.
        per_class: ``{class: {"float", "int8", "drop", "support"}}``, accuracies (recall) per class, drop in points.
        layers: `LayerError` per quantized op output, in graph order.
        kept_float: the tensors of the worst layers (lowest SQNR) the selective model keeps in float.
        int8_size, selective_size: the two models' sizes in bytes (the second's extra is the float weights' cost).
        int8_model, selective_model: the TFLite flatbuffers (float32 input and output).
    """

    classes: list[str]
    images: int
    per_channel: bool
    float_accuracy: float
    int8_accuracy: float
    selective_accuracy: float
    per_class: dict[str, dict[str, Any]]
    layers: list[LayerError]
    kept_float: list[str]
    int8_size: int
    selective_size: int
    samples: str = ""
    int8_model: bytes = field(default=b"", repr=False)
    selective_model: bytes = field(default=b"", repr=False)

    @property
    def drop(self) -> float:
        """Accuracy lost to int8, in percentage points."""
        return 100 * (self.float_accuracy - self.int8_accuracy)

    def worst(self, count: int) -> list[LayerError]:
        """The `count` layers with the lowest SQNR, worst first."""
        return sorted(self.layers, key=lambda layer: layer.sqnr_db)[:count]

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": self.classes, "images": self.images, "per_channel": self.per_channel,
            "samples": self.samples, "float_accuracy": self.float_accuracy, "int8_accuracy": self.int8_accuracy,
            "drop_points": self.drop, "per_class": self.per_class, "layers": [x.to_json() for x in self.layers],
            "selective": {
                "kept_float": self.kept_float, "accuracy": self.selective_accuracy,
                "drop_points": 100 * (self.float_accuracy - self.selective_accuracy), "size": self.selective_size,
                "size_cost": self.selective_size - self.int8_size,
            },
            "int8_size": self.int8_size,
        }  # fmt: skip


def _sqnr(float_tensor: np.ndarray, quant_tensor: np.ndarray, scale: float, zero_point: int) -> float:
    reference = np.asarray(float_tensor, np.float64)
    dequantized = (np.asarray(quant_tensor, np.float64) - zero_point) * scale
    signal, noise = float(np.sum(reference**2)), float(np.sum((reference - dequantized) ** 2))
    if noise <= 0.0:
        return MAX_SQNR_DB
    if signal <= 0.0:
        return -MAX_SQNR_DB
    return float(min(MAX_SQNR_DB, 10 * math.log10(signal / noise)))


def _rmse(float_tensor: np.ndarray, quant_tensor: np.ndarray, scale: float, zero_point: int) -> float:
    dequantized = (np.asarray(quant_tensor, np.float64) - zero_point) * scale
    return float(np.sqrt(np.mean((np.asarray(float_tensor, np.float64) - dequantized) ** 2)))


def _classes(project: Any, model: Any, classes: list[str] | None) -> list[str]:
    """The model's class order: given, the newest run's with as many classes as outputs, or the project's."""
    from ..train.samples import class_samples

    outputs = int(model.output_shape[-1])
    if classes is None:
        for record in reversed(project.runs()):
            if len(record.labels) == outputs:
                classes = list(record.labels)
                break
    if classes is None:
        classes = class_samples(project).classes
    if len(classes) != outputs:
        raise InputError(
            f"the model has {outputs} outputs and the classes are {len(classes)} ({', '.join(classes)}); "
            "give the model's classes in output order"
        )
    return list(classes)


def _layer(row: dict[str, str]) -> LayerError:
    """A row of the debugger's layer statistics (CSV) as a `LayerError`."""
    values = (float(row["sqnr_db"]), float(row["rmse"]), float(row["scale"]), int(row["zero_point"]))
    return LayerError(row["tensor_name"], row["op_name"], *values)


def quantization_report(
    model: Any,
    project: Any,
    *,
    samples: Any = None,
    num_samples: int = 100,
    per_channel: bool = True,
    normalization: str = "signed",
    keep_float: int = DEFAULT_KEEP_FLOAT,
    classes: list[str] | None = None,
    debug_samples: int = DEBUG_SAMPLES,
    equalize: bool = False,
    bias_correction: bool = False,
) -> QuantizationReport:
    """Compare a float classifier with its int8 TFLite model on a project's test group.

    The per-layer comparison uses TensorFlow's `QuantizationDebugger`: each int8 op's output is compared with
    its float op fed the same (dequantized) input, so the error of every layer is its own, not accumulated.
    The selective model keeps the `keep_float` layers with the lowest SQNR in float (the debugger's
    ``denylisted_nodes``), everything else int8.

    Args:
        model: a Keras classifier (or a path to an .h5/.keras/Keras SavedModel).
        project: an open `Project` or a project path: its test group is evaluated.
        samples: calibration source for `calibration_samples` (default: the project's train images).
        num_samples: calibration samples.
        per_channel: weight granularity of the int8 model.
        normalization: the model's input scaling: signed, unsigned or none.
        keep_float: how many of the worst layers the selective model keeps in float.
        classes: the model's class names in output order (default: see `_classes`).
        debug_samples: calibration samples the per-layer comparison runs on.
        equalize, bias_correction: prepare the model as `quantize_model` does with the same options.

    Raises:
        InputError: the project has no test image of the classes, the classes do not match the outputs, or a
            bad argument.
    """
    from ..evaluate.executors import LiteRTExecutor, load_keras
    from ..models.interfaces import NORMALIZATIONS
    from ..project import open_project
    from ..train.data import InputPipeline
    from ..train.samples import class_samples
    from .calibration import calibration_samples
    from .quantize import correct_bias, equalize_model
    from .tflite import keras_converter, to_tflite

    tf = framework.tf()
    if isinstance(project, (str, Path)):
        with open_project(project) as opened:
            return quantization_report(
                model, opened, samples=samples, num_samples=num_samples, per_channel=per_channel,
                normalization=normalization, keep_float=keep_float, classes=classes, debug_samples=debug_samples,
                equalize=equalize, bias_correction=bias_correction,
            )  # fmt: skip
    if isinstance(model, (str, Path)):
        model = load_keras(model)
    if keep_float < 0:
        raise InputError(f"keep_float must be >= 0 layers; received {keep_float}")
    shape = tuple(int(d) for d in model.input_shape[1:])
    calibration = calibration_samples(
        project.path if samples is None else samples, shape, num_samples, normalization=normalization
    )  # fmt: skip
    if equalize:  # the same preparation `quantize_model` applies before converting
        model, _ = equalize_model(model)
    if bias_correction:
        model, _ = correct_bias(model, calibration, per_channel=per_channel)
    classes = _classes(project, model, classes)
    inputs = InputPipeline(
        project, class_samples(project, classes), shape, 32, NORMALIZATIONS[normalization][0]
    )  # fmt: skip
    if not inputs.samples.test_count:
        raise InputError(f"the test group of {project.path.name} holds no image of the classes {classes}")

    int8 = to_tflite(model, quantize=True, samples=calibration, per_channel=per_channel)

    def converter() -> Any:  # a converter converts once: each debugger gets its own
        return keras_converter(model, quantize=True, samples=calibration, per_channel=per_channel, integer_only=False)

    def debug_dataset() -> Any:
        return ([np.asarray(x, np.float32)[None]] for x in islice(calibration(), debug_samples))

    debugging = tf.lite.experimental.QuantizationDebugOptions(
        layer_direct_compare_metrics={"sqnr_db": _sqnr, "rmse": _rmse}
    )
    with warnings.catch_warnings():  # the debugger runs tf.lite.Interpreter, which warns it is deprecated
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter(), debug_dataset=debug_dataset, debug_options=debugging
        )  # fmt: skip
        debugger.run()
    dump = io.StringIO()
    debugger.layer_statistics_dump(dump)
    layers = [_layer(row) for row in csv.DictReader(io.StringIO(dump.getvalue()))]
    kept = [layer.tensor for layer in sorted(layers, key=lambda x: x.sqnr_db)[:keep_float]]
    selective = int8
    if kept:
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=kept)
        selective = tf.lite.experimental.QuantizationDebugger(
            converter=converter(), debug_dataset=debug_dataset, debug_options=options
        ).get_nondebug_quantized_model()

    run_int8, run_selective = LiteRTExecutor(int8, "int8"), LiteRTExecutor(selective, "selective")
    scores: dict[str, list[np.ndarray]] = {"float": [], "int8": [], "selective": []}
    for x, _ in inputs.test_dataset():
        x = np.asarray(x)
        scores["float"].append(np.asarray(model.predict_on_batch(x)))
        scores["int8"].append(run_int8(x))
        scores["selective"].append(run_selective(x))
    ids, truth = inputs.samples.test
    predicted = {k: np.concatenate(v).argmax(axis=1) for k, v in scores.items()}
    accuracy = {k: float(np.mean(p == truth)) for k, p in predicted.items()}
    per_class = {}
    for k, name in enumerate(classes):
        rows = truth == k
        f, q = (float(np.mean(predicted[m][rows] == k)) if rows.any() else None for m in ("float", "int8"))
        drop = None if f is None else 100 * (f - q)
        per_class[name] = {"float": f, "int8": q, "drop": drop, "support": int(rows.sum())}
    return QuantizationReport(
        classes, len(ids), per_channel, accuracy["float"], accuracy["int8"], accuracy["selective"], per_class,
        layers, kept, len(int8), len(selective), calibration.description, int8, selective,
    )  # fmt: skip


def format_report(report: QuantizationReport, worst: int = 8) -> str:
    """The report as text: accuracies, per-class drop, the worst layers, the selective model."""
    lines = [
        f"test images {report.images} ({'per-channel' if report.per_channel else 'per-tensor'} int8, "
        f"calibrated on {report.samples})",
        f"accuracy float {100 * report.float_accuracy:.1f} %   int8 {100 * report.int8_accuracy:.1f} %   "
        f"drop {report.drop:+.1f} points",
    ]
    width = max([5, *(len(c) for c in report.classes)])
    lines.append(f"{'class':<{width}}  {'float':>7}  {'int8':>7}  {'drop':>6}  {'images':>6}")
    for name, row in report.per_class.items():
        f = "-" if row["float"] is None else f"{100 * row['float']:.1f} %"
        q = "-" if row["int8"] is None else f"{100 * row['int8']:.1f} %"
        d = "-" if row["drop"] is None else f"{row['drop']:+.1f}"
        lines.append(f"{name:<{width}}  {f:>7}  {q:>7}  {d:>6}  {row['support']:>6}")
    lines.append(f"worst layers of {len(report.layers)} (SQNR, higher is better):")
    for layer in report.worst(worst):
        lines.append(
            f"  {layer.sqnr_db:7.1f} dB  rmse {layer.rmse:.4g}  scale {layer.scale:.4g}  {layer.op}  {layer.tensor}"
        )
    if report.kept_float:
        cost = report.selective_size - report.int8_size
        lines.append(
            f"keeping {len(report.kept_float)} worst layer(s) float: accuracy {100 * report.selective_accuracy:.1f} % "
            f"({100 * (report.float_accuracy - report.selective_accuracy):+.1f} points vs float), "
            f"size {report.selective_size:,} bytes ({cost:+,} bytes)"
        )
    return "\n".join(lines)
