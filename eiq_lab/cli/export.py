"""`eiq export`: write a run's model as TFLite (float32 or int8), ONNX or Keras, with labels and anchors."""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json


def _export(args: argparse.Namespace) -> int:
    from ..convert import export_run
    from ..project import open_project

    with open_project(args.project) as project:
        result = export_run(
            project, args.run, args.format, args.output, quantize=args.quantize, per_channel=not args.per_tensor,
            input_type=args.input_type, output_type=args.output_type, num_samples=args.num_samples,
        )  # fmt: skip
    if args.json:
        print_json({"path": str(result.path), "beside": [str(p) for p in result.beside], "metadata": result.metadata})
    else:
        kind = "int8" if args.quantize else "float32"
        print(f"wrote {result.path} ({args.format}, {kind}, {result.path.stat().st_size:,} bytes)")
        for path in result.beside:
            print(f"wrote {path}")
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq export`."""
    p = subparsers.add_parser(
        "export",
        help="export a run's model (tflite, onnx, keras, h5), optionally int8-quantized",
        description="Write the final model of a training run. labels.txt (and, for a detector, anchor_boxes.npy) "
        "are written beside it and embedded in it (TFLite metadata, ONNX metadata_props). A detector is exported "
        "with raw outputs (box offsets and class logits per anchor); decode them with the anchors.",
    )
    p.add_argument("project", help="the .eiqp project")
    add_flag(p, "run", default="last", help="the run (a number, or last: the default)")
    add_flag(p, "format", default="tflite", help="tflite (default), onnx, keras or h5")
    add_flag(p, "output", "-o", help="the model file (default: <project>_run<N>.<format> beside the project)")
    add_flag(p, "quantize", action="store_true", help="TFLite: post-training int8 (calibrated on train images)")
    add_flag(p, "per-tensor", action="store_true", help="int8 weights with one scale per tensor (default: per channel)")
    add_flag(p, "input-type", default="float32", help="quantized model's input type: float32 (default), int8, uint8")
    add_flag(p, "output-type", default="float32", help="quantized model's output type: float32 (default), int8, uint8")
    add_flag(p, "num-samples", type=int, default=100, help="calibration images from the train group (default 100)")
    add_flag(p, "json", action="store_true", help="print what was written as JSON")
    p.set_defaults(handler=_export)
