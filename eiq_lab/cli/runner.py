"""`eiq-runner` (the guide's `modelrunner`): serve a model over the eIQ ModelRunner REST protocol on this host.

``eiq-runner -H PORT [-e tflite|onnx|vela] [-d exec|prof] [-c COMPUTE] [--host ADDR] [--token T] [--workers N]
[MODEL]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InputError
from .converter import _flag
from .output import EXIT_USAGE, run_command

PROG = "eiq-runner"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Serve a model (.tflite, .onnx) over the eIQ ModelRunner REST protocol (http://HOST:PORT/v1). "
        "Without MODEL the runner waits for a client to upload one.",
        allow_abbrev=False,
    )
    parser.add_argument("model", nargs="?", metavar="MODEL", help="the model to load now (.tflite or .onnx)")
    parser.add_argument("-H", "--port", "-port", dest="port", type=int, default=10818, help="port (default 10818)")
    parser.add_argument("-e", "--engine", "-engine", dest="engine", metavar="ENGINE",
                        help="tflite (LiteRT), onnx (ONNX Runtime), vela (Ethos-U estimate)")  # fmt: skip
    parser.add_argument("-d", "--mode", "-mode", dest="mode", choices=["exec", "prof"], default="exec",
                        help="exec (default) or prof: per-layer timings in GET /v1/model")  # fmt: skip
    parser.add_argument("-c", "--compute", "-compute", dest="compute", metavar="COMPUTE",
                        help="tflite: threads=N,xnnpack=on|off,pool=N; onnx: threads=N,providers=A+B; vela: a config "
                        "(imx93, ethos-u55-256, config=FILE.ini); 0 or cpu: the CPU")  # fmt: skip
    _flag(parser, "host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    _flag(parser, "token", help="require Authorization: Bearer TOKEN (default: $EIQ_RUNNER_TOKEN, if set)")
    _flag(parser, "max_model_size", type=float, default=256, metavar="MB", help="largest model upload (default 256)")
    _flag(parser, "workers", default="1", metavar="N",
          help="processes serving requests side by side (default 1; auto: one per core); for throughput with "
          "several clients")  # fmt: skip
    _flag(parser, "max_input_size", type=float, default=64, metavar="MB", help="largest run request (default 64)")
    return parser


def exposure_warning(host: str, token: str | None) -> str | None:
    """What to warn about when `host` is not a loopback address (None when it is)."""
    import ipaddress

    try:
        loopback = host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to any interface
        loopback = False
    if loopback:
        return None
    return (f"serving on {host}: other machines can reach this runner"
            f"{'' if token else ' and run models on it (no --token set)'}")  # fmt: skip


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from ..runner.server import MIB, RUNNER, Limits, create_app
    from ..runner.workers import worker_count

    if not 0 < args.port < 65536:
        raise InputError(f"-H (port) must be 1-65535; received {args.port}")
    if args.max_model_size <= 0 or args.max_input_size <= 0:
        raise InputError("--max-model-size and --max-input-size must be positive numbers of MB")
    try:
        workers = worker_count(args.workers)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    limits = Limits(max_model_size=int(args.max_model_size * MIB), max_input_size=int(args.max_input_size * MIB))
    token = args.token or os.environ.get("EIQ_RUNNER_TOKEN") or None
    profile = args.mode == "prof"
    host = f"[{args.host}]" if ":" in args.host else args.host

    def started(engine: Any, name: Any, version: Any, extra: str = "") -> None:
        warning = exposure_warning(args.host, token)
        if warning:
            print(f"{PROG}: warning: {warning}", file=sys.stderr)
        what = f"{name} on {engine} {version}" if name else "no model yet"
        print(f"{PROG}: serving {what} at http://{host}:{args.port}/v1{extra} (Ctrl-C to stop)", flush=True)

    if workers > 1:
        from ..runner.workers import Config, serve

        model = str(Path(args.model).resolve()) if args.model else None
        config = Config(model, args.engine, args.compute, profile, token, limits)
        extra = f" with {workers} workers"
        serve(config, workers, args.host, args.port,
              lambda d: started(d.get("engine"), d.get("model"), d.get("version"), extra))  # fmt: skip
    else:
        app = create_app(args.model, engine=args.engine, compute=args.compute, profile=profile, token=token,
                         limits=limits)  # fmt: skip
        slot = app[RUNNER].slot
        engine = slot.engine if slot else None
        described = (engine and engine.name, engine and engine.model_name, engine and engine.version)
        # aiohttp calls `print` once the socket is bound: the line then tells a reader it may connect
        web.run_app(app, host=args.host, port=args.port, print=lambda _: started(*described), access_log=None,
                    handle_signals=True)  # fmt: skip
    print(f"{PROG}: stopped", flush=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run `eiq-runner`; returns the exit code (0 after Ctrl-C or SIGTERM)."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return EXIT_USAGE if exc.code not in (0, None) else 0
    return run_command(PROG, _serve, args)


if __name__ == "__main__":
    sys.exit(main())
