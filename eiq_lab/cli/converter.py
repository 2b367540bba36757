"""`eiq-converter` (the guide's `deepview-converter`) and `eiq convert`: convert a model with the plugin for its
pair of formats; list, install and uninstall plugins; set up the plugins that need a managed environment.

``eiq-converter [options] INPUT OUTPUT``, ``-l``, ``-i WHEEL``, ``-u NAME``, ``--setup NAME [--accept-license]
[--remove]``. Every option is also spelled with hyphens and with the guide's single dash (``-quant-tensor``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from .output import EXIT_USAGE, print_json, run_command

PROG = "eiq-converter"
IO_TYPES = ["int8", "uint8", "float32"]


def _flag(parser: argparse.ArgumentParser, *names: str, **kwargs: Any) -> argparse.Action:
    """An option in every spelling of each name: ``--quant_tensor``, ``--quant-tensor``, ``-quant_tensor``,
    ``-quant-tensor`` (the first name gives the destination)."""
    spellings: list[str] = []
    for name in names:
        for form in (f"--{name}", f"--{name.replace('_', '-')}", f"-{name}", f"-{name.replace('_', '-')}"):
            if form not in spellings:
                spellings.append(form)
    kwargs.setdefault("dest", names[0])
    return parser.add_argument(*spellings, **kwargs)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The converter's arguments, shared by `eiq-converter` and `eiq convert`."""
    parser.add_argument("input", nargs="?", metavar="INPUT", help="the model: .pb, SavedModel folder/tar, .h5, "
                        ".keras, .tflite, .onnx (or what a plugin reads)")  # fmt: skip
    parser.add_argument("output", nargs="?", metavar="OUTPUT", help="the file to write; its extension is the "
                        "output format (.tflite, .onnx, .rtm)")  # fmt: skip
    model = parser.add_argument_group("model (the guide's Table 4.2)")
    _flag(model, "labels", metavar="FILE", help="labels.txt to embed in the model")
    _flag(model, "input_shape", "default_shape", metavar="SHAPE", help="shape for dynamic inputs, e.g. 1,224,224,3")
    _flag(model, "input_names", metavar="NAMES", help="inputs, comma-separated (inner tensors trim; NAME:NEW renames)")
    _flag(
        model, "output_names", metavar="NAMES", help="outputs, comma-separated (inner tensors trim; NAME:NEW renames)"
    )
    _flag(model, "name", "model_name", metavar="NAME", help="the output model's name")
    _flag(model, "metadata", metavar="KEY=VALUE", action="append", help="metadata to embed (repeatable)")
    quant = parser.add_argument_group("quantization (the guide's Table 4.3)")
    _flag(quant, "quantize", action="store_true", help="post-training int8 quantization")
    _flag(quant, "quantize_format", choices=["int8", "uint8"], help="int8 (default) or uint8")
    _flag(quant, "input_type", choices=IO_TYPES, help="the quantized model's input type (default float32)")
    _flag(quant, "output_type", choices=IO_TYPES, help="the quantized model's output type (default float32)")
    _flag(quant, "quant_normalization", "normalization", choices=["signed", "unsigned", "none"],
          help="calibration input range: signed [-1, 1] (default), unsigned [0, 1], none (0-255)")  # fmt: skip
    _flag(quant, "quant_tensor", action="store_true", help="per-tensor weights (default: per-channel)")
    _flag(quant, "samples", metavar="DIR|N|PROJECT", help="calibration images: a folder, a .eiqp project or N random")
    _flag(quant, "crop", action="store_true", help="calibrate on the box crops of a project's annotations")
    _flag(quant, "num_samples", type=int, default=10, metavar="N", help="calibration samples (default 10)")
    fmt = parser.add_argument_group("formats")
    _flag(fmt, "tflite_converter", choices=["mlir", "toco"], help="the TFLite converter (mlir, the default)")
    _flag(fmt, "onnx_opset", type=int, metavar="N", help="the ONNX opset to write (default 13)")
    _flag(fmt, "vela_config", metavar="PRESET|INI", help="compile the int8 TFLite output for Ethos-U (imx93, ...)")
    _flag(fmt, "anchors", metavar="FILE.npy", help="RTM: SSD anchor boxes stored as constant ssd_anchor_boxes")
    _flag(fmt, "constant", metavar="NAME=FILE.npy", action="append", help="RTM: a constant to store (repeatable)")
    _flag(fmt, "plugin", metavar="NAME", help="the plugin to convert with (when several convert the pair)")
    plugins = parser.add_argument_group("plugins (the guide's section 3.4)")
    plugins.add_argument("-l", "--list", "-list", dest="list", action="store_true", help="list the plugins")
    plugins.add_argument("-i", "--install", "-install", dest="install", metavar="WHEEL", help="install a plugin wheel")
    _flag(plugins, "isolated", action="store_true", help="with -i: into a managed environment of its own")
    plugins.add_argument("-u", "--uninstall", "-uninstall", dest="uninstall", metavar="NAME", help="uninstall a plugin")
    _flag(plugins, "setup", metavar="NAME", help="set up a plugin's managed environment (onnx2tf, rtm)")
    _flag(plugins, "accept_license", action="store_true", help="with --setup: accept the vendor's licence")
    _flag(plugins, "remove", action="store_true", help="with --setup: remove the plugin's environment")
    _flag(parser, "json", action="store_true", help="print the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a model between formats (TFLite, ONNX, RTM and what plugins add), or manage plugins.",
        allow_abbrev=False,
    )
    add_arguments(parser)
    return parser


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    """The converter parameters (../shared/INTERFACES.md) the options give; options not given are left out."""
    keys = ("labels", "input_shape", "input_names", "output_names", "name", "metadata", "quantize_format",
            "input_type", "output_type", "quant_normalization", "samples", "tflite_converter", "onnx_opset",
            "vela_config", "anchors", "constant")  # fmt: skip
    params: dict[str, Any] = {k: getattr(args, k) for k in keys if getattr(args, k) is not None}
    params.update(quantize=args.quantize, quant_channel=not args.quant_tensor, crop=args.crop)
    params["num_samples"] = args.num_samples
    return params


def _list(args: argparse.Namespace) -> int:
    from ..convert import registry

    found = registry.plugins()
    if args.json:
        print_json([info.to_dict() for info in found])
        return 0
    for info in found:
        ins = ",".join(str(i.get("ext")) for i in info.inputs) or "-"
        outs = ",".join(str(o.get("ext")) for o in info.outputs) or "-"
        print(f"{info.name:<18} {info.version:<9} {info.status:<12} {ins} -> {outs}  ({info.origin})")
        if info.problem and info.status != "ready":
            print(f"{'':<18} {info.problem}")
    return 0


def _ask(question: str) -> bool:
    if not sys.stdin or not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def _setup(args: argparse.Namespace) -> int:
    from ..convert import registry

    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    message = registry.setup(args.setup, accept_license=args.accept_license, remove=args.remove, log=log, ask=_ask)
    print_json({"plugin": args.setup, "message": message}) if args.json else print(message)
    return 0


def _run(args: argparse.Namespace) -> int:
    from ..convert import registry

    if args.list:
        return _list(args)
    if args.install:
        wheel = registry.install(args.install, isolated=args.isolated)
        where = "its own environment" if args.isolated else "this environment"
        text = f"installed plugin {wheel.distribution} {wheel.version} into {where}"
        print_json({"installed": wheel.distribution, "version": wheel.version}) if args.json else print(text)
        return 0
    if args.uninstall:
        info = registry.uninstall(args.uninstall)
        print_json({"uninstalled": info.name}) if args.json else print(f"uninstalled plugin {info.name}")
        return 0
    if args.setup:
        return _setup(args)
    if not args.input or not args.output:
        print(f"{args.prog}: error: give INPUT and OUTPUT (or -l, -i WHEEL, -u NAME, --setup NAME)", file=sys.stderr)
        return EXIT_USAGE
    result = registry.convert(args.input, args.output, params_of(args), plugin=args.plugin)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"wrote {result.dst} ({result.dst_type}, {result.bytes:,} bytes) from {result.src_type} "
              f"with plugin {result.plugin} in {result.seconds:.1f} s")  # fmt: skip
        if result.message:
            print(result.message)
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq convert` (the same command as `eiq-converter`)."""
    p = subparsers.add_parser(
        "convert",
        help="convert a model between formats (tflite, onnx, rtm, plugins'); list/install plugins",
        description="The converter (eiq-converter): convert INPUT to OUTPUT with the plugin for their formats, "
        "or list (-l), install (-i), uninstall (-u) and set up (--setup) plugins.",
        allow_abbrev=False,
    )
    add_arguments(p)
    p.set_defaults(handler=_run, prog="eiq convert")


def main(argv: Sequence[str] | None = None) -> int:
    """Run `eiq-converter`; returns the exit code."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else 0
    args.prog = PROG
    return run_command(PROG, _run, args)


if __name__ == "__main__":
    sys.exit(main())
