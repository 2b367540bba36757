"""`eiq evaluate`: a run's model (or any model file) on the project's test group; a classifier's confusion
matrix at a softmax threshold, per-class precision/recall and the images of a cell, or a detector's
mAP@0.5, COCO mAP and per-class AP."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import InputError
from .output import add_flag, print_json, progress_for


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:5.1f} %"


def _print_detection(report: Any) -> None:
    print(f"mAP@0.5 {_percent(report.map50)}   COCO mAP@[.5:.95] {_percent(report.coco_map)}")
    width = max([5, *(len(name) for name in report.per_class)])
    print(f"{'class':<{width}}  {'objects':>7}  {'detections':>10}  {'AP@0.5':>7}  {'COCO AP':>7}")
    for name, row in report.per_class.items():
        print(
            f"{name:<{width}}  {row['ground_truth']:>7}  {row['detections']:>10}  "
            f"{_percent(row['ap50']):>7}  {_percent(row['coco_ap']):>7}"
        )


def _print_classification(report: Any) -> None:
    below = f", {report.background} below the softmax threshold {report.threshold:g}" if report.threshold else ""
    print(f"accuracy {_percent(report.accuracy)} on {len(report.image_ids)} test images{below}")
    width = max([10, *(len(name) for name in report.classes)])
    print("confusion matrix (rows: true class, columns: predicted; background: top softmax below the threshold)")
    print(" " * width + "  " + "  ".join(f"{name[:10]:>10}" for name in report.columns))
    for name, row in zip(report.classes, report.confusion):
        print(f"{name:<{width}}  " + "  ".join(f"{int(v):>10}" for v in row))
    print(f"{'class':<{width}}  {'precision':>9}  {'recall':>7}  {'images':>6}")
    for name, row in report.per_class.items():
        print(f"{name:<{width}}  {_percent(row['precision']):>9}  {_percent(row['recall']):>7}  {row['support']:>6}")


def _labels(path: str | None) -> list[str] | None:
    if path is None:
        return None
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"labels file {path}: {exc.strerror or exc}") from None
    return [line.strip() for line in lines if line.strip()]


def _cell(report: Any, spec: str) -> dict[str, Any]:
    true, sep, predicted = spec.partition(",")
    if not sep:
        raise InputError(f"--cell takes TRUE,PREDICTED (class names, or background); received {spec!r}")
    ids = report.cell(true.strip(), predicted.strip())
    return {"true": true.strip(), "predicted": predicted.strip(), "images": [int(i) for i in ids]}


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_run
    from ..project import open_project

    run = args.run if args.run is not None else (None if args.model or args.uri else "last")
    if args.quantize and (args.model or args.uri or run is None):
        raise InputError("--quantize evaluates a run's model quantized on the fly; a --model file is run as it is")
    model = args.model
    if args.uri:  # the model runs on a ModelRunner: uploaded there if --model names it, else the one it holds
        from ..runner.remote import RemoteExecutor
        from ..runner.targets import resolve_uri

        model = RemoteExecutor(resolve_uri(args.uri), args.model)
    with open_project(args.project) as project:
        executor = None
        if args.quantize:
            from ..convert import quantized_executor

            executor = quantized_executor(
                project, run, per_channel=not args.per_tensor, input_type=args.input_type,
                output_type=args.output_type, num_samples=args.num_samples,
            )  # fmt: skip
        report = evaluate_run(
            project, run, model=model, executor=executor, threshold=args.threshold, labels=_labels(args.labels),
            normalization=args.normalization, batch_size=args.batch, trust_code=args.trust_code,
            progress=progress_for(args),
        )  # fmt: skip
    detection = hasattr(report, "map50")
    if args.cell and detection:
        raise InputError("--cell is for a classifier's confusion matrix; this model is a detector")
    cells = [_cell(report, spec) for spec in args.cell or []]
    if args.json:
        print_json({**report.to_json(), **({"cells": cells} if cells else {})})
    elif detection:
        _print_detection(report)
    else:
        _print_classification(report)
        for cell in cells:
            ids = ", ".join(str(i) for i in cell["images"]) or "none"
            print(f"images of true {cell['true']}, predicted {cell['predicted']}: {ids}")
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq evaluate`."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a model on the project's test group (confusion matrix, or mAP for a detector)",
        description="Evaluate the final model of a training run, or a model file (TFLite float or int8, ONNX, "
        "Keras), on the project's test group: a classifier's accuracy, confusion matrix (with a background column "
        "for predictions whose top softmax is below --threshold) and per-class precision and recall; a detector's "
        "mAP@0.5 (VOC, all-point), COCO mAP@[.5:.95] and per-class AP.",
    )
    p.add_argument("project", help="the .eiqp project")
    add_flag(p, "run", default=None, help="the run to evaluate (a number, or last: the default without --model)")
    add_flag(p, "model", "-m", help="a model file to run instead of the run's Keras model (alone: its own metadata)")
    add_flag(p, "uri", help="run on a ModelRunner (HOST:PORT or a saved target): --model uploaded, else the one it has")
    add_flag(p, "threshold", type=float, default=0.0, help="softmax threshold in [0, 1] (default 0: none)")
    add_flag(p, "cell", action="append", metavar="TRUE,PREDICTED", help="list the image ids of a confusion cell")
    add_flag(p, "labels", help="labels.txt for a model file that carries none (evaluated without --run)")
    add_flag(p, "normalization", choices=["signed", "unsigned", "none"], help="a model file's input scaling")
    add_flag(p, "quantize", action="store_true", help="evaluate the run's model post-training quantized to int8")
    add_flag(p, "per-tensor", action="store_true", help="with --quantize: one scale per weight tensor")
    add_flag(p, "input-type", default="float32", help="with --quantize: input type float32 (default), int8, uint8")
    add_flag(p, "output-type", default="float32", help="with --quantize: output type float32 (default), int8, uint8")
    add_flag(p, "num-samples", type=int, default=100, help="with --quantize: calibration images (default 100)")
    add_flag(p, "trust-code", action="store_true", help="let a Keras file run the Python code it holds (Lambda)")
    add_flag(p, "batch", type=int, default=32, help="images per prediction (default 32)")
    add_flag(p, "json", action="store_true", help="print the report as JSON")
    add_flag(p, "quiet", "-q", action="store_true", help="no progress display")
    p.set_defaults(handler=_evaluate)
