"""`eiq-importer`: the guide's `deepview-importer` for VOC datasets, with its flags.

``eiq-importer [-list] [-difficult] [-truncated] [-group GROUP] [-project PROJECT] VOC_DATASET.TAR``
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from ..errors import InputError
from .imports import run_import
from .output import EXIT_USAGE, print_json, progress_for, run_command


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """The guide's single-dash spelling plus the double-dash ones (hyphen and underscore)."""
    spellings = [f"-{name}", f"--{name}"]
    if "-" in name:
        spellings.append(f"--{name.replace('-', '_')}")
    parser.add_argument(*spellings, dest=name.replace("-", "_"), **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eiq-importer",
        description="Import a Pascal VOC dataset (tar of any compression, zip or folder) into a project, "
        "or list its labels.",
        allow_abbrev=False,
    )
    _flag(parser, "list", action="store_true", help="list a summary of the labels and annotations; import nothing")
    _flag(parser, "difficult", action="store_true", help="include objects flagged difficult")
    _flag(parser, "truncated", action="store_true", help="include objects flagged truncated")
    _flag(
        parser,
        "group",
        choices=["train", "test", "none"],
        default=None,
        help="put every image in this group (default: the dataset's ImageSets, else none)",
    )
    _flag(parser, "project", metavar="PROJECT", default=None, help="project to import into (created if missing)")
    _flag(
        parser,
        "holdout",
        type=float,
        default=None,
        metavar="PERCENT",
        help="shuffle the images that have no group: PERCENT to test, the rest to train",
    )
    _flag(parser, "seed", type=int, default=0, help="random seed for -holdout")
    _flag(parser, "strict", action="store_true", help="stop at the first bad file and keep nothing")
    _flag(
        parser,
        "duplicates",
        choices=["skip", "keep"],
        default="skip",
        help="images already in the project: skip (default) or add again",
    )
    _flag(parser, "verify", action="store_true", help="decode every pixel of every image to check it")
    _flag(parser, "no-parallel", action="store_true", help="read the dataset in this process only")
    _flag(parser, "json", action="store_true", help="print the report as JSON")
    _flag(parser, "quiet", action="store_true", help="no progress display")
    parser.add_argument("dataset", metavar="VOC_DATASET.TAR", help="the VOC dataset")
    return parser


def _run(args: argparse.Namespace) -> int:
    from ..datasets.voc import import_voc, list_voc

    if args.list:
        report = list_voc(args.dataset, difficult=args.difficult, truncated=args.truncated, progress=progress_for(args))
        print_json(report.to_dict()) if args.json else print(report.summary())
        return 0
    if not args.project:
        raise InputError("give -project PROJECT to import into, or -list to only list the labels")
    return run_import(
        args,
        import_voc,
        args.dataset,
        difficult=args.difficult,
        truncated=args.truncated,
        parallel=False if args.no_parallel else None,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run `eiq-importer`; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else 0
    return run_command("eiq-importer", _run, args)


if __name__ == "__main__":
    sys.exit(main())
