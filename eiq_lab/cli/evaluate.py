"""`eiq evaluate`: a run's model on the project's test group; a classifier's confusion matrix and
per-class precision/recall, or a detector's mAP@0.5, COCO mAP and per-class AP."""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json


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
    print(f"accuracy {_percent(report.accuracy)} on {len(report.image_ids)} test images")
    width = max([10, *(len(name) for name in report.classes)])
    print("confusion matrix (rows: true class, columns: predicted)")
    print(" " * width + "  " + "  ".join(f"{name[:7]:>7}" for name in report.classes))
    for name, row in zip(report.classes, report.confusion):
        print(f"{name:<{width}}  " + "  ".join(f"{int(v):>7}" for v in row))
    print(f"{'class':<{width}}  {'precision':>9}  {'recall':>7}  {'images':>6}")
    for name, row in report.per_class.items():
        print(f"{name:<{width}}  {_percent(row['precision']):>9}  {_percent(row['recall']):>7}  {row['support']:>6}")


def _evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import evaluate_run
    from ..project import open_project

    with open_project(args.project) as project:
        report = evaluate_run(project, args.run, batch_size=args.batch)
    if args.json:
        print_json(report.to_json())
    elif hasattr(report, "map50"):
        _print_detection(report)
    else:
        _print_classification(report)
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq evaluate`."""
    p = subparsers.add_parser(
        "evaluate",
        help="evaluate a run's model on the project's test group (confusion matrix, or mAP for a detector)",
        description="Evaluate the final model of a training run on the project's test group: a classifier's "
        "accuracy, confusion matrix and per-class precision and recall; a detector's mAP@0.5 (VOC, all-point), "
        "COCO mAP@[.5:.95] and per-class AP.",
    )
    p.add_argument("project", help="the .eiqp project")
    add_flag(p, "run", default="last", help="the run to evaluate (a number, or last: the default)")
    add_flag(p, "batch", type=int, default=32, help="images per prediction (default 32)")
    add_flag(p, "json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_evaluate)
