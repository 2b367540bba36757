"""Running converter code in another Python (a managed environment) through a small JSON protocol, and
`OutOfProcessPlugin`, a converter plugin whose `query_convert` and `convert` run there.

Protocol: the parent writes ``{"module", "function", "args", "kwargs", "path"}`` to a request file and
runs ``<env python> -c <child code> request.json response.json``; the child imports the module, calls the
function and writes ``{"ok": true, "value": ...}`` or ``{"ok": false, "error", "traceback"}`` to the response
file. Results travel in a file, not on stdout, so a converter that prints (most do) cannot corrupt them;
stdout and stderr are captured for the error message and the log. A child that dies without a response
(a crash, a signal, ``os._exit``) or runs past its timeout (its whole process group is killed) is an
`EiqError` naming the plugin and the last lines it printed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EiqError

#: Seconds a conversion may take in another process before it is stopped.
TIMEOUT = 1800

# The child side: standard library only, since it runs in environments that have nothing of ours.
_CHILD = r"""
import importlib, json, sys, traceback
with open(sys.argv[1]) as f:
    request = json.load(f)
for entry in reversed(request.get("path") or []):
    sys.path.insert(0, entry)
try:
    module = importlib.import_module(request["module"])
    value = getattr(module, request["function"])(*request.get("args", []), **request.get("kwargs", {}))
    text = json.dumps({"ok": True, "value": value}, default=repr)
except BaseException as exc:  # SystemExit too: a converter calling sys.exit(1) has failed
    text = json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})
with open(sys.argv[2], "w") as f:
    f.write(text)
"""


@dataclass
class CallResult:
    """What a call in another process returned, with what it printed and how long it took."""

    value: Any
    stdout: str
    stderr: str
    seconds: float


def _tail(text: str, lines: int = 5) -> str:
    kept = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
    return " | ".join(kept)


def call(
    python: str | os.PathLike,
    module: str,
    function: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    *,
    timeout: float = TIMEOUT,
    cwd: str | os.PathLike | None = None,
    path: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    what: str | None = None,
) -> CallResult:
    """Call ``module.function(*args, **kwargs)`` in the interpreter `python` and return its (JSON) value.

    Args:
        python: the other environment's interpreter.
        module, function: what to call there (the module must be importable there, or from `path`).
        args, kwargs: JSON-serialisable arguments; the value comes back through JSON too (anything else as
            its repr).
        timeout: seconds before the child and everything it started are killed.
        cwd: the child's working folder (default: a fresh temporary one).
        path: folders put first on the child's sys.path.
        env: environment variables for the child (default: ours).
        what: how error messages name the callee (default ``module.function``).

    Raises:
        EiqError: the call raised (its message and last traceback line), the child crashed or timed out.
    """
    what = what or f"{module}.{function}"
    request = {"module": module, "function": function, "args": list(args), "kwargs": dict(kwargs or {})}
    request["path"] = [str(p) for p in path]
    with tempfile.TemporaryDirectory(prefix="eiq-call-") as tmp:
        request_file, response_file = Path(tmp, "request.json"), Path(tmp, "response.json")
        request_file.write_text(json.dumps(request))
        started = time.perf_counter()
        try:
            proc = subprocess.Popen(
                [str(python), "-c", _CHILD, str(request_file), str(response_file)],
                cwd=str(cwd or tmp),
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,  # its own process group, so a timeout stops what it started too
            )
        except OSError as exc:
            raise EiqError(f"cannot start {python} for {what}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            stdout, stderr = proc.communicate()
            raise EiqError(
                f"{what} did not finish within {timeout:.0f} s and was stopped; last output: {_tail(stderr + stdout)}"
            ) from None
        seconds = time.perf_counter() - started
        if not response_file.is_file():
            code = proc.returncode
            how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit code {code}"
            last = _tail(stderr + stdout) or "nothing printed"
            raise EiqError(f"{what} crashed ({how}) in {python}; last output: {last}")
        response = json.loads(response_file.read_text())
    if not response.get("ok"):
        lines = [line for line in str(response.get("traceback", "")).strip().splitlines() if line.strip()]
        where = f" (at {lines[-3].strip()})" if len(lines) >= 3 else ""
        raise EiqError(f"{what} failed: {response.get('error')}{where}")
    return CallResult(response.get("value"), stdout, stderr, seconds)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def both_spellings(params: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters as a plain JSON dict with each key in its underscore and its hyphen spelling, so a plugin
    reading ``params['input-model-type']`` or ``params['quant_channel']`` finds them either way."""
    out: dict[str, Any] = {}
    for name, value in params.items():
        out[name] = value
        out.setdefault(name.replace("_", "-"), value)
        out.setdefault(name.replace("-", "_"), value)
    return out


class OutOfProcessPlugin:
    """A converter plugin module installed in a managed environment, used as if it were imported here.

    `query_convert(None, None)` answers from the manifest (no process started); other queries and
    `convert` run in the environment's interpreter.
    """

    def __init__(self, python: str | os.PathLike, module: str, name: str, supported: Mapping[str, Any] | None = None):
        self.python, self.module, self.name = Path(python), module, name
        self.supported = dict(supported) if supported else None
        self.timeout = TIMEOUT

    def query_convert(self, src_type: str | None, dst_type: str | None) -> Any:
        if src_type is None and dst_type is None and self.supported is not None:
            return self.supported
        return call(
            self.python, self.module, "query_convert", [src_type, dst_type], timeout=120, what=f"plugin {self.name}"
        ).value

    def convert(self, src_file: str, dst_file: str, params: Mapping[str, Any]) -> dict[str, Any]:
        result = call(
            self.python,
            self.module,
            "convert",
            [str(src_file), str(dst_file), both_spellings(params)],
            timeout=self.timeout,
            what=f"plugin {self.name}",
        )
        value = result.value if isinstance(result.value, dict) else {"success": "no", "message": repr(result.value)}
        value.setdefault("log", (result.stdout + result.stderr).strip())
        return value
