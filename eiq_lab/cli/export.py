"""`eiq export`: write a run's model as TFLite, ONNX (float32 or int8), Keras or SavedModel, with labels and
anchors, checked against the run's Keras model and recorded in the project; `eiq export --list` shows them."""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json


def _parity_line(parity: dict[str, Any]) -> str:
    text = (
        f"checked on {parity['images']} images: max |difference| {parity['max_abs_diff']:.3g}, "
        f"mean {parity['mean_abs_diff']:.3g} (outputs span {parity['output_range']:.3g})"
    )
    if "top1_agreement" in parity:
        text += f", top-1 agreement {100 * parity['top1_agreement']:.1f} %"
    return text


def _list(args: argparse.Namespace) -> int:
    from ..project import open_project

    with open_project(args.project) as project:
        records = project.exports(args.run)
    if args.json:
        print_json([r.__dict__ for r in records])
        return 0
    for r in records:
        kind = r.settings.get("type", "float32")
        print(
            f"{r.id:>3}  run {r.run if r.run is not None else '-'}  {r.format:<10} {kind:<7} {r.size:>10,} B  {r.path}"
        )
        if r.parity:
            print(f"     {_parity_line(r.parity)}")
    if not records:
        print("no exports yet (eiq export PROJECT --format tflite)")
    return 0


def _export(args: argparse.Namespace) -> int:
    from ..convert import export_run
    from ..project import open_project

    if args.list:
        return _list(args)
    with open_project(args.project) as project:
        result = export_run(
            project, args.run or "last", args.format, args.output, quantize=args.quantize,
            per_channel=not args.per_tensor, input_type=args.input_type, output_type=args.output_type,
            num_samples=args.num_samples, parity_images=args.parity_images,
        )  # fmt: skip
    if args.json:
        print_json(
            {"path": str(result.path), "beside": [str(p) for p in result.beside], "metadata": result.metadata,
             "parity": result.parity, "export": result.record.id}
        )  # fmt: skip
        return 0
    kind = "int8" if args.quantize else "float32"
    print(f"wrote {result.path} ({args.format}, {kind}, {result.record.size:,} bytes; export {result.record.id})")
    for path in result.beside:
        print(f"wrote {path}")
    if result.parity:
        print(_parity_line(result.parity))
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq export`."""
    p = subparsers.add_parser(
        "export",
        help="export a run's model (tflite, onnx, keras, h5, savedmodel), optionally int8-quantized",
        description="Write the final model of a training run. labels.txt (and, for a detector, anchor_boxes.npy) "
        "are written beside it and embedded in it (TFLite metadata, ONNX metadata_props, SavedModel assets). A "
        "detector is exported with raw outputs (box offsets and class logits per anchor); decode them with the "
        "anchors. Every export is compared with the run's Keras model on project images (max difference, top-1 "
        "agreement) and recorded in the project (--list shows them).",
    )
    p.add_argument("project", help="the .eiqp project")
    add_flag(p, "run", help="the run (a number, or last: the default; with --list: every run's exports)")
    add_flag(p, "format", default="tflite", choices=["tflite", "onnx", "keras", "h5", "savedmodel"],
             help="tflite (default), onnx, keras, h5 or savedmodel (a folder)")  # fmt: skip
    add_flag(p, "output", "-o", help="the model file (default: <project>_run<N>.<format> beside the project)")
    add_flag(
        p, "quantize", action="store_true", help="post-training int8 (TFLite, or ONNX QDQ), calibrated on train images"
    )
    add_flag(p, "per-tensor", action="store_true", help="int8 weights with one scale per tensor (default: per channel)")
    add_flag(
        p, "input-type", default="float32", help="quantized TFLite model's input type: float32 (default), int8, uint8"
    )
    add_flag(
        p, "output-type", default="float32", help="quantized TFLite model's output type: float32 (default), int8, uint8"
    )
    add_flag(p, "num-samples", type=int, default=100, help="calibration images from the train group (default 100)")
    add_flag(
        p,
        "parity-images",
        type=int,
        default=32,
        help="images to compare the export with Keras on (default 32; 0: skip)",
    )
    add_flag(p, "list", action="store_true", help="list the project's exports (of --run when given) and stop")
    add_flag(p, "json", action="store_true", help="print what was written as JSON")
    p.set_defaults(handler=_export)
