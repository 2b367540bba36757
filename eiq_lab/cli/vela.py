"""`eiq vela`: compile an int8 TFLite model for an Arm Ethos-U NPU (i.MX 93 by default) with Vela and print
the compiled model's path and Vela's performance estimate (totals and per layer, CPU fallbacks marked)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .output import add_flag, print_json

#: Presets the help lists (eiq_lab.convert.vela.PRESETS, without importing the engine for --help).
_PRESETS = "imx93 (default), ethos-u55-32/64/128/256, ethos-u65-256/512, ethos-u85-128/256/512/1024/2048"


def _vela(args: argparse.Namespace) -> int:
    from ..convert.vela import compile_for_ethos_u

    report = compile_for_ethos_u(
        args.model, args.output_dir, args.config, optimise=args.optimise, system_config=args.system_config,
        memory_mode=args.memory_mode, accelerator=args.accelerator, arena_cache_size=args.arena_cache_size,
    )  # fmt: skip
    if args.verbose:  # Vela's own output, kept apart from ours
        sys.stderr.write(report.log if report.log.endswith("\n") else report.log + "\n")
    if args.json:
        print_json(report.to_json(log=args.verbose))
    else:
        print(report.to_text())
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq vela`."""
    p = subparsers.add_parser(
        "vela",
        help="compile an int8 TFLite model for an Arm Ethos-U NPU (i.MX 93 by default) and estimate its speed",
        description="Compile an int8 (or int16) quantized TFLite model with Arm's Vela for an Ethos-U NPU. Operators "
        "the NPU runs become ethos-u custom operators in <name>_vela.tflite; the others stay for the CPU. Prints "
        "Vela's performance estimate: cycles, inference time, memory, and per layer whether it runs on the NPU or "
        "falls back to the CPU (and why). The estimate is Vela's; real hardware may differ.",
    )
    p.add_argument("model", help="the int8 .tflite model")
    add_flag(
        p, "config", default="imx93",
        help=f"a target preset: {_PRESETS}; or your own Vela .ini file (default imx93: Ethos-U65-256 with "
        "eiq-lab's i.MX 93 configuration)",
    )  # fmt: skip
    add_flag(p, "output-dir", "-o", help="where the outputs go (default: <model name>_vela beside the model)")
    add_flag(p, "system-config", help="the .ini's system config (default: the preset's, or the only one in the file)")
    add_flag(p, "memory-mode", help="the .ini's memory mode (default: the preset's, or the only one in the file)")
    add_flag(p, "accelerator", help="with your own .ini: the NPU, e.g. ethos-u55-128 (default ethos-u65-256)")
    p.add_argument(
        "--optimise", "--optimize", default="Performance", metavar="Performance|Size",
        help="Performance (default: fastest inference) or Size (least SRAM)",
    )  # fmt: skip
    add_flag(p, "arena-cache-size", type=int, help="bytes of SRAM Vela may use as cache (overrides the memory mode)")
    add_flag(p, "verbose", "-v", action="store_true", help="also print Vela's own output (on stderr)")
    add_flag(p, "json", action="store_true", help="print the report as JSON")
    p.set_defaults(handler=_vela)
