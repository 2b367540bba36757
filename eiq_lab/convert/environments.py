"""Managed Python environments for converters whose pins clash with ours (onnx2tf, the vendor's RTM
converter, a third-party plugin installed with ``--isolated``): one venv per plugin under the user data folder.

The folder is ``$EIQ_HOME/environments/<name>`` (``EIQ_HOME`` defaults to ``~/.local/share/eiq-lab``). An
environment is ready once its manifest, ``eiq-environment.json``, is written: the last step of `create`, so
an interrupted setup is never taken for a working one (and is removed when it fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import site
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import EiqError, InputError, NotFoundError

#: The environment variable naming eiq-lab's user data folder.
HOME_VARIABLE = "EIQ_HOME"
MANIFEST = "eiq-environment.json"
#: Creating a venv and installing a plugin's requirements from the registry; TensorFlow-sized sets take minutes.
SETUP_TIMEOUT = 3600
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def home() -> Path:
    """eiq-lab's user data folder: ``$EIQ_HOME``, else ``~/.local/share/eiq-lab``."""
    value = os.environ.get(HOME_VARIABLE)
    return Path(value).expanduser() if value else Path.home() / ".local" / "share" / "eiq-lab"


def root() -> Path:
    """The folder holding one subfolder per managed environment."""
    return home() / "environments"


def canonical(name: str) -> str:
    """A distribution or plugin name as a folder name: lower case, runs of ``-_.`` as one hyphen (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


@dataclass(frozen=True)
class Environment:
    """One managed environment (it may not exist yet: see `ready`)."""

    name: str

    @property
    def path(self) -> Path:
        return root() / canonical(self.name)

    @property
    def python(self) -> Path:
        """The environment's interpreter."""
        if os.name == "nt":
            return self.path / "Scripts" / "python.exe"
        return self.path / "bin" / "python"

    @property
    def ready(self) -> bool:
        """The environment was set up completely (its manifest exists and its interpreter is there)."""
        return (self.path / MANIFEST).is_file() and self.python.exists()

    def manifest(self) -> dict[str, Any]:
        """What `create` recorded: requirements, creation time, size and the caller's ``info``.

        Raises:
            NotFoundError: the environment was never (completely) set up.
        """
        if not self.ready:
            raise NotFoundError(f"environment {self.name!r} is not set up (no {self.path / MANIFEST})")
        return json.loads((self.path / MANIFEST).read_text())

    def size(self) -> int:
        """Bytes on disk (its own files; the packages it inherits are not counted)."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file() and not p.is_symlink())


def environment(name: str) -> Environment:
    """The environment named `name` (set up or not).

    Raises:
        InputError: the name cannot be a folder name.
    """
    if not _NAME.match(canonical(name)):
        raise InputError(f"environment name must be letters, digits, '.', '_' or '-'; received {name!r}")
    return Environment(canonical(name))


def environments() -> list[Environment]:
    """Every environment that was set up completely, by name."""
    if not root().is_dir():
        return []
    found = [Environment(p.name) for p in sorted(root().iterdir()) if p.is_dir()]
    return [env for env in found if env.ready]


def _parent_site_dirs() -> list[str]:
    """The site-packages folders of the Python running eiq-lab (a venv's own ones when it runs in one)."""
    dirs = [*site.getsitepackages(), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    unique = []
    for d in dirs:
        if d not in unique and Path(d).is_dir():
            unique.append(d)
    return unique


def _run(args: Sequence[str], what: str, timeout: float, log: Callable[[str], None] | None) -> str:
    """Run a setup step; its output comes back as text (and goes to `log`); failure -> EiqError."""
    try:
        done = subprocess.run(
            [str(a) for a in args], capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise EiqError(f"{what} did not finish within {timeout:.0f} s") from None
    output = (done.stdout or "") + (done.stderr or "")
    if log is not None and output.strip():
        log(output.rstrip())
    if done.returncode != 0:
        tail = "; ".join(line.strip() for line in output.strip().splitlines()[-6:] if line.strip())
        raise EiqError(f"{what} failed (exit code {done.returncode}): {tail}")
    return output


def _pip_for(env: Environment) -> list[Any]:
    """The pip command that installs into `env`: our own pip pointed at it (``--python``, pip >= 22.3), which
    spares the environment a copy of pip and its creation some seconds; else the environment's own pip."""
    try:
        from pip import __version__ as version

        if tuple(int(part) for part in version.split(".")[:2]) >= (22, 3):
            return [sys.executable, "-m", "pip", "--python", env.python]
    except (ImportError, ValueError):
        pass
    return [env.python, "-m", "pip"]


def create(
    name: str,
    requirements: Sequence[str],
    *,
    inherit: bool = False,
    pip_args: Sequence[str] = (),
    info: Mapping[str, Any] | None = None,
    timeout: float = SETUP_TIMEOUT,
    log: Callable[[str], None] | None = None,
) -> Environment:
    """Create (or update) the environment `name` and pip-install `requirements` into it.

    Args:
        name: the plugin's name (the folder name under `root`).
        requirements: what pip installs: names with versions, or wheel paths.
        inherit: the environment also sees the packages of the Python running eiq-lab, after its own
            (through a ``.pth`` file: works whether eiq-lab runs in a venv or not). Its own packages win, so
            a converter can add a few small packages beside our TensorFlow instead of a second copy.
        pip_args: extra pip options, e.g. ``--no-deps`` or ``--no-index`` (offline from a wheel).
        info: recorded in the manifest (the plugin module, supported types, the accepted licence...).
        log: receives the output of each step (pip's lines).

    Returns:
        The ready environment.

    Raises:
        EiqError: venv or pip failed (with pip's last lines); a new environment is then removed again.
    """
    env = environment(name)
    fresh = not env.path.exists()
    started = time.perf_counter()
    try:
        pip = _pip_for(env)
        if not env.python.exists():
            env.path.parent.mkdir(parents=True, exist_ok=True)
            venv = [sys.executable, "-m", "venv", *(["--without-pip"] if pip[:1] != [env.python] else []), env.path]
            _run(venv, f"creating the environment {env.path}", timeout, log)
        (env.path / MANIFEST).unlink(missing_ok=True)  # not ready until this update has finished
        if inherit:
            purelib = _run(
                [env.python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                f"reading {env.python}",
                timeout,
                None,
            ).strip()
            lines = [f"import site; site.addsitedir({d!r})" for d in _parent_site_dirs()]
            Path(purelib, "eiq-lab-parent.pth").write_text("\n".join(lines) + "\n")
        if requirements:
            command = [*pip, "install", "--disable-pip-version-check", *pip_args, *requirements]
            _run(command, f"installing {' '.join(map(str, requirements))} into {env.path}", timeout, log)
        manifest = {
            "name": env.name,
            "requirements": [str(r) for r in requirements],
            "pip_args": list(pip_args),
            "inherit": inherit,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "setup_seconds": round(time.perf_counter() - started, 1),
            "info": dict(info or {}),
        }
        manifest["bytes"] = env.size()
        (env.path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    except BaseException:
        if fresh:
            shutil.rmtree(env.path, ignore_errors=True)
        raise
    return env


def update_info(env: Environment, **info: Any) -> None:
    """Add entries to the ``info`` of a ready environment's manifest (e.g. what a plugin reported)."""
    manifest = env.manifest()
    manifest["info"].update(info)
    (env.path / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))


def remove(name: str) -> Path:
    """Delete the environment `name`; returns the folder it was in.

    Raises:
        NotFoundError: there is no such environment (the message lists the ones there are).
    """
    env = environment(name)
    if not env.path.exists():
        names = ", ".join(e.name for e in environments()) or "none"
        raise NotFoundError(f"no managed environment {name!r} in {root()}; environments: {names}")
    shutil.rmtree(env.path)
    return env.path
