"""`eiq portal`: the Portal as an app in the browser (Voila on 127.0.0.1), working in a workspace folder; and
`eiq model-tool MODEL`, the Model Tool the same way. The notebooks are written from the package's templates.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from .output import add_flag


def write_notebook(workspace: Path, kind: str, model: str | None = None) -> Path:
    """The notebook of `kind` in `workspace`, written from the package's template unless it is there already."""
    from ..jupyter.notebooks import notebook_content, notebook_path

    path = workspace / notebook_path(kind, model=model)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(notebook_content(kind, model=model), indent=1))
    return path


def voila_command(notebook: Path, host: str, port: int, browser: bool) -> list[str]:
    """The Voila command line serving `notebook` (kernels start in the notebook's folder)."""
    voila = shutil.which("voila") or str(Path(sys.executable).with_name("voila"))
    if not Path(voila).exists():
        raise InputError("the Portal needs Voila: pip install 'eiq-lab[gui]'")
    command = [voila, str(notebook), f"--Voila.ip={host}", f"--port={port}", "--Voila.port_retries=0"]
    return command + ([] if browser else ["--no-browser"])


def _serve(args: argparse.Namespace, kind: str, model: str | None = None) -> int:
    workspace = Path(args.workspace).expanduser().resolve()
    if not workspace.is_dir():
        raise InputError(f"workspace {workspace} is not a folder; create it first or name another")
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {args.host}: anyone who reaches this address can use the Portal and run "
              "code in its kernel", file=sys.stderr)  # fmt: skip
    notebook = write_notebook(workspace, kind, model)
    env = {**os.environ, "EIQ_WORKSPACE": str(workspace)}
    print(f"serving {notebook.name} on http://{args.host}:{args.port}/ (Ctrl+C stops it)", flush=True)
    try:
        return subprocess.call(voila_command(notebook, args.host, args.port, args.browser), env=env, cwd=workspace)
    except KeyboardInterrupt:
        return 0


def _portal(args: argparse.Namespace) -> int:
    return _serve(args, "portal")


def _model_tool(args: argparse.Namespace) -> int:
    model = Path(args.model).expanduser().resolve()
    if not model.exists():
        raise InputError(f"model {model} does not exist")
    args.workspace = str(model.parent)
    return _serve(args, "modeltool", model.name)


def _common(p: argparse.ArgumentParser) -> None:
    add_flag(p, "port", "-p", type=int, default=8866, help="the port (default 8866)")
    add_flag(p, "host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)")
    add_flag(p, "browser", action="store_true", help="open a browser tab")


def register(subparsers: Any) -> None:
    """Add `eiq portal` and `eiq model-tool`."""
    p = subparsers.add_parser(
        "portal",
        help="the Portal in the browser (Voila): import, curate, augment, train, validate, export",
        description="Serve the Portal (the guide's eIQ Portal, as a Voila app) on this machine. Projects are "
        "created and opened in WORKSPACE (default: the current folder).",
    )
    p.add_argument("workspace", nargs="?", default=".", help="the folder projects live in (default: .)")
    _common(p)
    p.set_defaults(handler=_portal)
    p = subparsers.add_parser(
        "model-tool",
        help="the Model Tool in the browser (Voila): graph, layers, convert, profile",
        description="Serve the Model Tool on MODEL (a .tflite, .onnx, .h5, .keras file or SavedModel folder).",
    )
    p.add_argument("model", help="the model to open")
    _common(p)
    p.set_defaults(handler=_model_tool)
