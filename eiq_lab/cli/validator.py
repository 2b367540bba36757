"""`eiq-validator` (the guide's `deepview-validator`): make a reference .npz from a model, validate a model
against one (here or on several ModelRunners at once), image top-n or boxes, and a project's test group.

Every option is also spelled with hyphens and with the guide's single dash (``-input_names``, ``--input-names``).
Exit codes: 0 everything validated, 1 an error (a device that failed included), 2 usage, 3 validated with
mismatches (an output out of tolerance or a top-1 mismatch).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .converter import _flag
from .output import EXIT_ERROR, EXIT_PROBLEMS, EXIT_USAGE, print_json, run_command

PROG = "eiq-validator"
#: Reference files; any other --reference is a model whose outputs are computed on the fly.
REFERENCE_SUFFIX = ".npz"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Validate a model: make a reference .npz (random or image inputs and the model's outputs), "
        "compare a converted model's outputs with it on this host or on ModelRunners (--uri, comma-separated, "
        "validated concurrently), show top-n predictions on images, or evaluate on a project's test group.",
        allow_abbrev=False,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="the model (.tflite, .onnx, .h5, .keras, "
                        "SavedModel folder, .pb)")  # fmt: skip
    names = parser.add_argument_group("tensors (names comma-separated; the guide's 'a, b' spelling works too)")
    _flag(names, "input_names", nargs="+", metavar="NAMES", help="the model's inputs to feed")
    _flag(names, "output_names", nargs="+", metavar="NAMES", help="the model's outputs to read")
    _flag(names, "input_shapes", nargs="+", metavar="SHAPE", help="a shape per input, e.g. 1,96,96,3")
    _flag(names, "ref_inputs", nargs="+", metavar="NAMES", help="the reference arrays fed to the inputs")
    _flag(names, "ref_outputs", nargs="+", metavar="NAMES", help="the reference arrays the outputs compare with")
    _flag(names, "rtm_inputs", nargs="+", metavar="NAMES", help="store the inputs under these names (.npz)")
    _flag(names, "rtm_outputs", nargs="+", metavar="NAMES", help="store the outputs under these names (.npz)")
    ref = parser.add_argument_group("reference")
    _flag(ref, "reference", metavar="NPZ|MODEL", help="validate against this .npz, or a model run on the fly")
    _flag(ref, "samples", default="1", metavar="N|DIR", help="random inputs (N, default 1) or a folder of images")
    _flag(ref, "seed", type=int, default=0, help="seed of the random inputs (default 0)")
    _flag(ref, "normalization", choices=["signed", "unsigned", "none"], help="input range (default: the metadata)")
    _flag(ref, "output", "o", metavar="FILE.npz", help="where the reference goes (default: MODEL's name .npz here)")
    _flag(ref, "save_tflite", nargs="?", const="true", default="false", metavar="true|false",
          help="also save a .tflite conversion of the reference model")  # fmt: skip
    tol = parser.add_argument_group("tolerance (default: max delta 10 %, average 2 % of each output's range)")
    _flag(tol, "max_delta", "max_error", type=float, default=0.10, help="largest difference allowed")
    _flag(tol, "avg_delta", "avg_error", type=float, default=0.02, help="average difference allowed")
    _flag(tol, "min_top1", type=float, default=1.0, help="share of top-1 matches required (default 1)")
    _flag(tol, "absolute", action="store_true", help="read the deltas as absolute values, not shares of the range")
    where = parser.add_argument_group("where and what")
    _flag(where, "uri", metavar="URI[,URI...]", help="ModelRunners to run on, validated concurrently")
    _flag(where, "timeout", type=float, default=100, help="seconds per runner request (default 100)")
    _flag(where, "image", metavar="DIR|FILE", help="show top-n predictions on these images")
    _flag(where, "top", type=int, default=None, metavar="N", help="predictions per image (default 1)")
    _flag(where, "score_threshold", type=float, metavar="S", help="a detector's lowest score shown (default: its own)")
    _flag(where, "labels", metavar="FILE", help="labels.txt for a model that carries none")
    _flag(where, "project", metavar="PROJECT", help="evaluate on this project's test group")
    _flag(where, "run", metavar="RUN", help="with --project: the training run the model came from")
    _flag(where, "threshold", type=float, default=0.0, help="with --project: a classifier's softmax threshold")
    _flag(parser, "json", action="store_true", help="print the result as JSON")
    return parser


def _split(tokens: list[str] | None) -> tuple[list[str] | None, list[str]]:
    """Names from ``a,b`` or the guide's ``a, b`` (several words, each but the last ending with a comma); the
    words that follow a name without a comma are not names (the model, given after the list)."""
    if not tokens:
        return None, []
    names: list[str] = []
    strays: list[str] = []
    going = True
    for token in tokens:
        if going:
            names.extend(n.strip() for n in token.split(",") if n.strip())
            going = token.rstrip().endswith(",")
        else:
            strays.append(token)
    return names, strays


def _shape(text: str) -> list[int]:
    try:
        dims = [int(d) for d in text.replace("x", ",").split(",") if d.strip()]
    except ValueError:
        raise InputError(f"--input_shapes takes shapes like 1,96,96,3; received {text!r}") from None
    if not dims or any(d < 1 for d in dims):
        raise InputError(f"--input_shapes takes positive dimensions like 1,96,96,3; received {text!r}")
    return dims


def _truthy(value: str) -> bool:
    if str(value).lower() in ("true", "1", "yes", "on"):
        return True
    if str(value).lower() in ("false", "0", "no", "off"):
        return False
    raise InputError(f"--save_tflite takes true or false; received {value!r}")


def _prepare(args: argparse.Namespace) -> None:
    strays: list[str] = []
    for key in ("input_names", "output_names", "ref_inputs", "ref_outputs", "rtm_inputs", "rtm_outputs"):
        names, extra = _split(getattr(args, key))
        setattr(args, key, names)
        strays.extend(extra)
    shapes = args.input_shapes or []
    # shapes are one word each; a word that is no shape after them is the model
    args.input_shapes = [_shape(s) for s in shapes if not Path(s).exists()] or None
    strays.extend(s for s in shapes if Path(s).exists())
    if strays:
        if args.model is not None or len(strays) > 1:
            raise InputError(f"unexpected words {' '.join(strays)}: give names comma-separated and one MODEL")
        args.model = strays[0]
    args.uris = [u.strip() for u in args.uri.split(",") if u.strip()] if args.uri else None


def _save_tflite(args: argparse.Namespace, source: str) -> str | None:
    if not _truthy(args.save_tflite) or Path(source).suffix == ".tflite":
        return None
    from ..convert import registry

    target = Path.cwd() / f"{Path(source).name.split('.')[0]}.tflite"
    params: dict[str, Any] = {}
    if args.input_names:
        params["input_names"] = ",".join(args.input_names)
    if args.output_names:
        params["output_names"] = ",".join(args.output_names)
    if args.input_shapes:
        params["input_shape"] = ",".join(str(d) for d in args.input_shapes[0])
    return str(registry.convert(source, target, params).dst)


def _failed(devices: list[str]) -> int:
    """One error line naming the devices that failed (their reasons are in the report); exit 1."""
    print(f"{PROG}: error: {len(devices)} device(s) failed: {', '.join(devices)} (reasons above)", file=sys.stderr)
    return EXIT_ERROR


def _make_reference(args: argparse.Namespace, model: str) -> Any:
    from ..validate.reference import make_reference

    return make_reference(
        model, input_names=args.input_names, output_names=args.output_names, input_shapes=args.input_shapes,
        samples=args.samples, seed=args.seed, normalization=args.normalization, rtm_inputs=args.rtm_inputs,
        rtm_outputs=args.rtm_outputs,
    )  # fmt: skip


def _generate(args: argparse.Namespace) -> int:
    reference = _make_reference(args, args.model)
    target = Path(args.output) if args.output else Path.cwd() / f"{Path(args.model).name.split('.')[0]}.npz"
    reference.save(target)
    saved = _save_tflite(args, args.model)
    if args.json:
        print_json({"reference": str(target), "samples": reference.samples, "source": reference.info["source"],
                    "inputs": {k: list(v.shape) for k, v in reference.inputs.items()},
                    "outputs": {k: list(v.shape) for k, v in reference.outputs.items()}, "tflite": saved})  # fmt: skip
        return 0
    print(f"wrote {target}: {reference.samples} sample(s), {reference.info['source']}")
    for role, arrays in (("input", reference.inputs), ("output", reference.outputs)):
        for key, value in arrays.items():
            print(f"  {role} {key}: {list(value.shape)} {value.dtype}")
    if saved:
        print(f"wrote {saved}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from ..validate.compare import Tolerance, validate

    reference: Any = args.reference
    if Path(reference).suffix.lower() != REFERENCE_SUFFIX:  # the guide's --reference MODEL: computed on the fly
        if not Path(reference).exists():
            raise InputError(f"reference {reference} does not exist; give a .npz or a model")
        _save_tflite(args, reference)
        reference = _make_reference(args, reference)
        reference.info["file"] = Path(args.reference).name
    tolerance = Tolerance(args.max_delta, args.avg_delta, args.min_top1, args.absolute)
    report = validate(
        args.model, reference, uris=args.uris, input_names=args.input_names, output_names=args.output_names,
        ref_inputs=args.ref_inputs, ref_outputs=args.ref_outputs, tolerance=tolerance, timeout=args.timeout,
    )  # fmt: skip
    if args.json:
        print_json(report.to_json())
    else:
        print("\n".join(report.lines()))
    failed = [d.device for d in report.devices if d.error]
    if failed:
        return _failed(failed)
    return 0 if report.passed else EXIT_PROBLEMS


def _images(args: argparse.Namespace) -> int:
    from ..validate.images import classify_images

    reports = classify_images(args.model, args.image, top=args.top or 1, labels=args.labels,
                              normalization=args.normalization, uris=args.uris, timeout=args.timeout,
                              score_threshold=args.score_threshold)  # fmt: skip
    if args.json:
        print_json([r.to_json() for r in reports])
    else:
        print("\n".join(line for r in reports for line in r.lines()))
    failed = [r.device for r in reports if r.error]
    return _failed(failed) if failed else 0


def _project(args: argparse.Namespace) -> int:
    from ..validate.dataset import validate_project
    from ..validate.images import read_labels
    from .evaluate import _print_classification, _print_detection

    run: Any = args.run
    if run is not None and str(run).isdigit():
        run = int(run)
    results = validate_project(
        args.project, args.model, run=run, uris=args.uris, labels=read_labels(args.labels),
        normalization=args.normalization, threshold=args.threshold, timeout=args.timeout,
    )  # fmt: skip
    if args.json:
        print_json([r.to_json() for r in results])
    for r in results:
        if args.json or r.error:
            continue
        print(f"Device: {r.device} ({r.seconds:.2f} s)")
        _print_detection(r.report) if hasattr(r.report, "map50") else _print_classification(r.report)
    failed = [r.device for r in results if r.error]
    for r in results:
        if r.error and not args.json:
            print(f"Device: {r.device}\nError: {r.error}")
    return _failed(failed) if failed else 0


def _run(args: argparse.Namespace) -> int:
    _prepare(args)
    if not args.model:
        print(f"{PROG}: error: give the MODEL to validate (see {PROG} --help)", file=sys.stderr)
        return EXIT_USAGE
    if args.project:
        return _project(args)
    if args.image:
        return _images(args)
    if args.reference:
        return _validate(args)
    if args.uris:
        raise InputError("--uri validates against a reference: give --reference FILE.npz (or a reference model)")
    return _generate(args)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `eiq-validator`; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else 0
    return run_command(PROG, _run, args)


if __name__ == "__main__":
    sys.exit(main())
