"""`eiq profile`: where a model's inference time goes, layer by layer (mapped to the original model's layers),
per operator type, and in total; on this host (LiteRT, ONNX Runtime, Vela's estimate) or on a remote runner."""

from __future__ import annotations

import argparse
from typing import Any

from .output import add_flag, print_json


def _profile(args: argparse.Namespace) -> int:
    if getattr(args, "uri", None):
        from ..runner.remote import profile_remote

        profile = profile_remote(args.uri, args.model, runs=args.runs)
    else:
        from ..runner.profiling import profile_model

        profile = profile_model(
            args.model, args.engine, runs=args.runs, threads=args.threads, xnnpack=args.xnnpack == "on",
            config=args.config,
        )  # fmt: skip
    if args.json:
        print_json(profile.to_json())
    else:
        print(profile.to_text(top=args.top))
    return 0


def register(subparsers: Any) -> None:
    """Add `eiq profile`."""
    p = subparsers.add_parser(
        "profile",
        help="time a model layer by layer (LiteRT, ONNX Runtime, Vela's estimate, or a remote runner)",
        description="Time a .tflite or .onnx model layer by layer and print each layer's time and share, the "
        "original model's layers it computes, a summary per operator type and the whole model's time. LiteRT: "
        "each operator timed alone as a single-operator model (same kernels as the whole model); ONNX Runtime: "
        "its session profiling after graph optimisation; vela: Vela's per-layer estimate for an Ethos-U NPU.",
    )
    p.add_argument("model", help="the .tflite or .onnx model")
    add_flag(p, "engine", "-e", choices=["tflite", "onnx", "vela"], help="default: by the model file")
    add_flag(p, "runs", "-n", type=int, default=10, help="timed runs (default 10, after a few warm-up runs)")
    add_flag(p, "threads", "-t", type=int, help="CPU threads (default: LiteRT 1, ONNX Runtime its own)")
    add_flag(p, "xnnpack", choices=["on", "off"], default="on", help="LiteRT's XNNPACK delegate (default on)")
    add_flag(p, "config", default="imx93", help="vela: target preset or Vela .ini file (default imx93)")
    add_flag(p, "top", type=int, help="show only the first N layers in the table")
    add_flag(p, "uri", help="profile on a runner (eiq-runner -d prof) at HOST:PORT or http://HOST:PORT/v1")
    add_flag(p, "json", action="store_true", help="print the profile as JSON")
    p.set_defaults(handler=_profile)
