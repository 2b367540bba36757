"""The `eiq` command: one entry with subcommands for every stage (project, import, demo, ...).

`main(argv)` returns the exit code, so tests call it in-process.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from . import augment, converter, demo, evaluate, export, imports, models, portal, project, quantize, train, vela
from . import profile as profile_cli
from . import targets as targets_cli
from .output import EXIT_USAGE, run_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eiq",
        description="eiq-lab: projects, datasets, training, validation, conversion, serving and the Portal "
        "for embedded machine learning.",
        allow_abbrev=False,
    )
    parser.add_argument("--version", action="version", version=f"eiq-lab {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    project.register(subparsers)
    imports.register(subparsers)
    augment.register(subparsers)
    train.register(subparsers)
    evaluate.register(subparsers)
    export.register(subparsers)
    demo.register(subparsers)
    models.register(subparsers)
    quantize.register(subparsers)
    vela.register(subparsers)
    converter.register(subparsers)
    targets_cli.register(subparsers)
    profile_cli.register(subparsers)
    portal.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run `eiq` with these arguments (default: the command line); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse already printed usage and the problem
        return EXIT_USAGE if exc.code not in (0, None) else 0
    return run_command("eiq", args.handler, args)


if __name__ == "__main__":
    sys.exit(main())
