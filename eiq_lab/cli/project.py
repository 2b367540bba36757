"""`eiq project create|info|split|health|export`: make, inspect, split, check and export projects.

Each subcommand prints a short human report, or JSON with --json.
"""

from __future__ import annotations

import argparse
from typing import Any

from .output import EXIT_ERROR, add_flag, print_json, progress_for


def _create(args: argparse.Namespace) -> int:
    from ..project import create_project

    create_project(args.path).close()
    if args.json:
        print_json({"created": str(args.path)})
    else:
        print(f"created project {args.path}")
    return 0


def format_info(info: dict[str, Any]) -> str:
    """The human form of `Project.info()`."""
    g, u = info["groups"], info["unlabeled"]
    lines = [
        f"project {info['path']} (schema {info['schema_version']}, {info['file_bytes'] / 1e6:.1f} MB on disk)",
        f"images: {info['images']}  (train {g['train']}, test {g['test']}, no group {g['none']})",
        f"unlabeled: {u['total']}  (train {u['train']}, test {u['test']}, no group {u['none']})",
        f"boxes: {info['boxes']} on {info['images_with_boxes']} image(s); full-image labels: "
        f"{info['full_image_labels']}",
    ]
    if info["labels"]:
        width = max(5, *(len(entry["name"]) for entry in info["labels"]))
        lines.append(f"{'label':<{width}}  {'train':>7} {'test':>7} {'none':>7} {'boxes':>7} {'full':>7}")
        for entry in info["labels"]:
            im = entry["images"]
            lines.append(
                f"{entry['name']:<{width}}  {im['train']:>7} {im['test']:>7} {im['none']:>7} "
                f"{entry['boxes']:>7} {entry['full_image']:>7}"
            )
        lines.append("(train/test/none count images with the label; boxes and full count annotations)")
    else:
        lines.append("no labels yet")
    return "\n".join(lines)


def _info(args: argparse.Namespace) -> int:
    from ..project import open_project

    with open_project(args.path) as project:
        info = project.info()
    print_json(info) if args.json else print(format_info(info))
    return 0


def _split(args: argparse.Namespace) -> int:
    from ..project import open_project

    with open_project(args.path) as project:
        result = project.split(args.test_holdout, seed=args.seed, reshuffle=args.reshuffle)
        groups = project.info()["groups"]
    if args.json:
        print_json({**result, "groups": groups})
    else:
        scope = "all images" if args.reshuffle else "images with no group"
        print(
            f"split {result['assigned']} {scope}: {result['test']} to test, {result['train']} to train "
            f"({result['test_holdout']:g} % holdout, seed {result['seed']})"
        )
        print(f"project now: train {groups['train']}, test {groups['test']}, no group {groups['none']}")
    return 0


def format_health(report: dict[str, Any], limit: int = 10) -> str:
    """The human form of `Project.health()`."""
    lines = [f"health of {report.get('images', 0)} image(s): {'OK' if report.get('ok') else 'needs attention'}"]
    exact, near, leak = report.get("exact_duplicates", []), report.get("near_duplicates", []), report.get("leakage", [])
    lines.append(f"exact duplicates: {len(exact)} group(s)")
    lines += [f"  images {', '.join(map(str, d['image_ids']))}" for d in exact[:limit]]
    lines.append(f"near duplicates: {len(near)} group(s)")
    lines += [f"  images {', '.join(map(str, d['image_ids']))}" for d in near[:limit]]
    lines.append(f"train/test leakage: {len(leak)} group(s)")
    lines += [
        f"  {d.get('kind', '')} images {', '.join(map(str, d['image_ids']))} (train {d.get('train')}, "
        f"test {d.get('test')})"
        for d in leak[:limit]
    ]
    unlabeled = report.get("unlabeled", {})
    if unlabeled:
        lines.append("unlabeled: " + ", ".join(f"{k} {v}" for k, v in unlabeled.items()))
    warnings = report.get("warnings", [])
    if warnings:
        lines.append("warnings:")
        lines += [f"  {w}" for w in warnings[: limit * 2]]
        if len(warnings) > limit * 2:
            lines.append(f"  ... and {len(warnings) - limit * 2} more (see --json)")
    return "\n".join(lines)


def _health(args: argparse.Namespace) -> int:
    from ..project import open_project

    with open_project(args.path) as project:
        report = project.health(near_threshold=args.near_threshold, progress=progress_for(args))
    print_json(report) if args.json else print(format_health(report))
    return EXIT_ERROR if args.strict and not report.get("ok") else 0


def _export(args: argparse.Namespace) -> int:
    from ..datasets.export import export_project

    report = export_project(args.path, args.format, args.out_dir, progress=progress_for(args))
    print_json(report.to_dict()) if args.json else print(report.summary())
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq project ...` to the top-level parser."""
    parser = subparsers.add_parser("project", help="create, inspect, split, check and export projects")
    commands = parser.add_subparsers(dest="project_command", metavar="COMMAND", required=True)

    def command(name: str, handler: Any, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help, description=help)
        sub.add_argument("path", help="the project file (.eiqp or .deepview)")
        add_flag(sub, "json", action="store_true", help="print JSON")
        sub.set_defaults(handler=handler)
        return sub

    command("create", _create, "create a new, empty project")
    command("info", _info, "images per group and label, unlabeled images, boxes")
    split = command("split", _split, "random train/test holdout of the images that have no group")
    add_flag(split, "test-holdout", type=float, default=20.0, metavar="PERCENT", help="percent to test (default 20)")
    add_flag(split, "seed", type=int, default=0, help="random seed (default 0): the same seed gives the same split")
    add_flag(split, "reshuffle", action="store_true", help="redraw every image, not only those with no group")
    health = command("health", _health, "duplicates, near duplicates, train/test leakage, label balance")
    add_flag(
        health,
        "near-threshold",
        type=int,
        default=4,
        metavar="BITS",
        help="perceptual-hash distance (of 64 bits) under which images count as near duplicates (default 4)",
    )
    add_flag(health, "strict", action="store_true", help="exit non-zero when the report needs attention")
    add_flag(health, "quiet", "-q", action="store_true", help="no progress display")
    export = command("export", _export, "write the project as a COCO, YOLO or VOC dataset")
    add_flag(export, "format", "-f", required=True, choices=["coco", "yolo", "voc"])
    export.add_argument("out_dir", metavar="OUT_DIR", help="a new or empty folder")
    add_flag(export, "quiet", "-q", action="store_true", help="no progress display")
