"""`eiq import voc|folders|tfds|coco|yolo`: bring a dataset into a project (created if missing).

Every format shares the same options (group, strict, duplicates, verify, holdout) and report.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from .output import EXIT_ERROR, EXIT_PROBLEMS, add_flag, print_json, progress_for


def add_common_import_options(parser: argparse.ArgumentParser, *, project_required: bool = True) -> None:
    add_flag(
        parser,
        "project",
        "-p",
        required=project_required,
        metavar="PROJECT",
        help="the .eiqp/.deepview project to import into (created if it does not exist)",
    )
    add_flag(
        parser,
        "group",
        choices=["train", "test", "none"],
        default=None,
        help="put every image in this group (default: keep the groups the dataset carries)",
    )
    add_flag(
        parser,
        "strict",
        action="store_true",
        help="stop at the first bad file and keep nothing (default: report and skip bad files)",
    )
    add_flag(
        parser,
        "duplicates",
        choices=["skip", "keep"],
        default="skip",
        help="images whose bytes are already in the project: skip them (default) or add them again",
    )
    add_flag(
        parser,
        "verify",
        action="store_true",
        help="decode every pixel of every image to check it (slower; default checks headers and structure)",
    )
    add_flag(
        parser,
        "holdout",
        type=float,
        default=None,
        metavar="PERCENT",
        help="after importing, put PERCENT of the images that have no group into test, the rest into train",
    )
    add_flag(parser, "seed", type=int, default=0, help="random seed for --holdout (default 0)")
    add_flag(parser, "json", action="store_true", help="print the import report as JSON")
    add_flag(parser, "quiet", "-q", action="store_true", help="no progress display")


def add_object_flags(parser: argparse.ArgumentParser) -> None:
    add_flag(parser, "difficult", action="store_true", help="include objects flagged difficult")
    add_flag(parser, "truncated", action="store_true", help="include objects flagged truncated")


def run_import(args: argparse.Namespace, importer: Callable[..., Any], source: Any, **options: Any) -> int:
    """Open or create the project, import, optionally split, print the report; one transaction."""
    from ..datasets.session import project_for_import

    with project_for_import(args.project) as project, project.transaction():
        report = importer(
            source,
            project,
            group=args.group,
            strict=args.strict,
            duplicates=args.duplicates,
            decode=args.verify,
            progress=progress_for(args),
            **options,
        )
        split = None
        if args.holdout is not None:
            split = project.split(args.holdout, seed=args.seed)
    result = report.to_dict()
    if split is not None:
        result["holdout"] = split
    if args.json:
        print_json(result)
    else:
        print(report.summary())
        if split is not None:
            print(
                f"holdout: {split['test']} of {split['assigned']} ungrouped image(s) to test, "
                f"{split['train']} to train (seed {split['seed']})"
            )
    if not report.errors:
        return 0
    return EXIT_PROBLEMS if report.images else EXIT_ERROR


def _voc(args: argparse.Namespace) -> int:
    from ..datasets.voc import import_voc

    return run_import(
        args, import_voc, args.source, difficult=args.difficult, truncated=args.truncated, parallel=_parallel(args)
    )


def _parallel(args: argparse.Namespace) -> bool | None:
    return False if args.no_parallel else None


def add_parallel_flag(parser: argparse.ArgumentParser) -> None:
    add_flag(
        parser,
        "no-parallel",
        action="store_true",
        help="read the dataset in this process only (by default datasets of 32 MB or more are read "
        "in a second process while this one writes)",
    )


def _folders(args: argparse.Namespace) -> int:
    from ..datasets.folders import import_folders

    return run_import(args, import_folders, args.source, parallel=_parallel(args))


def _coco(args: argparse.Namespace) -> int:
    from ..datasets.coco import import_coco

    return run_import(args, import_coco, args.annotations, images=args.images, crowd=args.crowd)


def _yolo(args: argparse.Namespace) -> int:
    from ..datasets.yolo import import_yolo

    return run_import(args, import_yolo, args.source)


def _tfds(args: argparse.Namespace) -> int:
    from ..datasets import tfds

    if args.list_verified or not args.name:
        rows = tfds.list_verified()
        if args.json:
            print_json(rows)
        else:
            print("verified TFDS datasets (any other name works in advanced mode):")
            for row in rows:
                print(f"  {row['name']:<22} {', '.join(row['tasks'])}")
        if not args.name and not args.list_verified:
            print("give a dataset name to import, e.g. `eiq import tfds mnist --project p.eiqp`", file=sys.stderr)
            return EXIT_ERROR
        return 0
    if not args.project:
        from ..errors import InputError

        raise InputError("--project is required to import a TFDS dataset")
    return run_import(
        args,
        tfds.import_tfds,
        args.name,
        task=args.task,
        train_split=args.train_split,
        test_split=args.test_split,
        data_dir=args.data_dir,
        download=not args.no_download,
        image_feature=args.image_feature,
        label_feature=args.label_feature,
        bbox_feature=args.bbox_feature,
        difficult=args.difficult,
        truncated=args.truncated,
    )


def register(subparsers: Any) -> None:
    """Add `eiq import ...` to the top-level parser."""
    parser = subparsers.add_parser(
        "import",
        help="import a dataset into a project",
        description="Import a dataset (VOC, structured folders, TFDS, COCO, YOLO).",
    )
    formats = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)

    voc = formats.add_parser("voc", help="Pascal VOC: a VOCdevkit tar/folder or Annotations/ + JPEGImages/")
    voc.add_argument("source", help="VOC tar (any compression), zip or folder")
    add_common_import_options(voc)
    add_object_flags(voc)
    add_parallel_flag(voc)
    voc.set_defaults(handler=_voc)

    folders = formats.add_parser("folders", help="structured folders: root images, train/ and test/, label folders")
    folders.add_argument("source", help="the root folder (or a tar/zip of it)")
    add_common_import_options(folders)
    add_parallel_flag(folders)
    folders.set_defaults(handler=_folders)

    tfds = formats.add_parser("tfds", help="a TensorFlow Datasets dataset (downloads when asked, else --data-dir)")
    tfds.add_argument("name", nargs="?", help="dataset name, e.g. mnist, cifar10, voc/2007")
    add_common_import_options(tfds, project_required=False)
    add_object_flags(tfds)
    add_flag(tfds, "task", choices=["classification", "detection"], default="classification")
    add_flag(
        tfds,
        "train-split",
        default="100%",
        metavar="EXPR",
        help="how much of the train split: 60%%, 100 (first 100), 200:300, or SPLIT[...] (default 100%%)",
    )
    add_flag(
        tfds,
        "test-split",
        default="100%",
        metavar="EXPR",
        help="how much of the test split (validation if there is no test split); same forms",
    )
    add_flag(tfds, "data-dir", default=None, help="TFDS data folder (where prepared datasets live)")
    add_flag(tfds, "no-download", action="store_true", help="never download; fail if the dataset is not prepared")
    add_flag(tfds, "image-feature", default=None, help="feature holding the image, when there are several")
    add_flag(tfds, "label-feature", default=None, help="feature holding the label, when there are several")
    add_flag(tfds, "bbox-feature", default=None, help="feature holding the boxes, when there are several")
    add_flag(tfds, "list-verified", action="store_true", help="list the verified datasets and exit")
    tfds.set_defaults(handler=_tfds)

    coco = formats.add_parser("coco", help="COCO instances JSON plus its image folder")
    coco.add_argument("annotations", help="instances JSON file")
    add_flag(coco, "images", default=None, help="image folder (default: the JSON's folder)")
    add_flag(coco, "crowd", action="store_true", help="include iscrowd=1 boxes")
    add_common_import_options(coco)
    coco.set_defaults(handler=_coco)

    yolo = formats.add_parser("yolo", help="YOLO (Ultralytics data.yaml or Darknet obj.names) folder or archive")
    yolo.add_argument("source", help="dataset folder, tar or zip")
    add_common_import_options(yolo)
    yolo.set_defaults(handler=_yolo)
