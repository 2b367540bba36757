"""`eiq quantize`: post-training int8 quantization of a model file (Keras, SavedModel -> TFLite; ONNX -> QDQ
ONNX), per-channel or per-tensor, with an optional quantization report on a project's test group."""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json

_IO_TYPES = ("int8", "uint8", "float32")


def _quantize(args: argparse.Namespace) -> int:
    from ..convert.quantize import quantize_model

    samples = args.samples if args.samples is not None else args.report
    result = quantize_model(
        args.src, args.dst, per_channel=not args.per_tensor, input_type=args.input_type,
        output_type=args.output_type, normalization=args.normalization, samples=samples,
        num_samples=args.num_samples, crop=args.crop, equalize=args.equalize, bias_correction=args.bias_correction,
        converter=args.tflite_converter,
    )  # fmt: skip
    report = None
    if args.report is not None:
        from ..convert.quantization_report import quantization_report

        if result.source_type == "onnx":
            from ..errors import InputError

            raise InputError(f"wrote {result.path}; the quantization report compares a Keras model, not ONNX")
        report = quantization_report(
            args.src, args.report, samples=samples, num_samples=args.num_samples, per_channel=not args.per_tensor,
            normalization=args.normalization, keep_float=args.keep_float, equalize=args.equalize,
            bias_correction=args.bias_correction,
        )  # fmt: skip
    if args.json:
        print_json({"quantized": result.to_json(), "report": None if report is None else report.to_json()})
        return 0
    print(
        f"wrote {result.path} ({result.format}, int8 {result.granularity}, input {result.input_type}, "
        f"output {result.output_type}, {result.size:,} bytes) in {result.seconds:.1f} s"
    )
    print(f"calibrated on {result.samples} ({result.normalization} normalization)")
    print(f"{len(result.weight_scales)} weight tensors, scales per tensor: {_scale_counts(result.weight_scales)}")
    if result.bias_corrected:
        print(f"bias corrected in {len(result.bias_corrected)} layer(s)")
    if result.equalized:
        print(
            f"equalized {len(result.equalized)} layer pair(s): " + ", ".join(f"{a}->{b}" for a, b in result.equalized)
        )
    for note in result.notes:
        print(f"note: {note}")
    if report is not None:
        from ..convert.quantization_report import format_report

        print()
        print(format_report(report))
    return 0


def _scale_counts(scales: dict[str, int]) -> str:
    counts: dict[int, int] = {}
    for n in scales.values():
        counts[n] = counts.get(n, 0) + 1
    return ", ".join(f"{tensors} with {n}" for n, tensors in sorted(counts.items())) or "none (float model?)"


def register(subparsers: Any) -> None:
    """Add `eiq quantize`."""
    p = subparsers.add_parser(
        "quantize",
        help="post-training int8 quantization of a model file (TFLite or ONNX QDQ), with an optional report",
        description="Quantize a float model: Keras (.h5, .keras) or SavedModel -> int8 .tflite, ONNX (or Keras) -> "
        "QDQ .onnx (ONNX Runtime static quantization; ONNX input and output stay float32). Calibration images come "
        "from a project (its train images), a folder, or N random inputs (these calibrate poorly).",
    )
    p.add_argument("src", help="the float model: .h5, .keras, a SavedModel folder, or .onnx")
    p.add_argument("dst", help="the quantized model to write: .tflite or .onnx")
    add_flag(p, "per-tensor", action="store_true", help="one scale per weight tensor (default: one per channel)")
    add_flag(p, "input-type", "--input", choices=_IO_TYPES, default="float32",
             help="TFLite input type: float32 (default), int8, uint8")  # fmt: skip
    add_flag(p, "output-type", "--output", choices=_IO_TYPES, default="float32",
             help="TFLite output type: float32 (default), int8, uint8")  # fmt: skip
    add_flag(p, "quant-normalization", "--normalization", dest="normalization", default="signed",
             choices=("signed", "unsigned", "none"),
             help="calibration input scaling: signed [-1, 1] (default), unsigned [0, 1], none (0..255)")  # fmt: skip
    add_flag(p, "samples", help="calibration images: a project (.eiqp), a folder, files (comma-separated), or N random")
    add_flag(p, "num-samples", type=int, default=100, help="calibration samples to take (default 100)")
    add_flag(p, "crop", action="store_true", help="calibrate on the box crops of the project's annotations")
    add_flag(p, "equalize", action="store_true",
             help="Keras: cross-layer equalization first (same float model, smaller per-tensor error)")  # fmt: skip
    add_flag(p, "bias-correction", action="store_true",
             help="Keras: correct biases for the mean shift int8 weights cause (most useful per-tensor)")  # fmt: skip
    add_flag(p, "tflite-converter", default="mlir", choices=("mlir", "toco"),
             help="mlir (default); toco is refused: TensorFlow 2.21 no longer has it")  # fmt: skip
    add_flag(p, "report", metavar="PROJECT",
             help="also report float vs int8 on this project's test group: per-class accuracy, per-layer SQNR and "
             "RMSE, and the accuracy with the worst layers kept float (Keras sources)")  # fmt: skip
    add_flag(p, "keep-float", type=int, default=3, help="report: worst layers the selective model keeps float (3)")
    add_flag(p, "json", action="store_true", help="print the result (and report) as JSON")
    p.set_defaults(handler=_quantize)
