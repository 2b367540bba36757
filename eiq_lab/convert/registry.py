"""The converter registry: finds converter plugins (built-in modules, entry points of ``eiq_lab.converters``
and the guide's ``deepview_converter``, out-of-process plugins in managed environments), picks one for a
pair of model types, runs it safely, and installs or uninstalls plugin wheels.

Which plugin converts a pair: one named with ``plugin=`` (the CLI's ``--plugin NAME``) if given; else a
ready third-party plugin before a built-in one (installing a plugin is how a user changes what a cell does),
but two third-party plugins claiming the same pair is ambiguous and must be settled with ``--plugin``.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.metadata as metadata
import importlib.util
import inspect
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EiqError, InputError, NotFoundError
from . import environments
from .outofprocess import OutOfProcessPlugin, both_spellings
from .params import Params
from .plugins import BUILTIN

#: Entry point groups a converter plugin registers under (ours, then the guide's).
GROUPS = ("eiq_lab.converters", "deepview_converter")
READY, NEEDS_SETUP, BROKEN = "ready", "needs setup", "broken"

#: Why the guide's table (section 5.1) marks a cell N, and the route a user has instead.
WHY_NOT = {
    ("rtm", None): "RTM is DeepViewRT's deployment format and no converter reads it back; convert the model "
    "the RTM file was made from instead",
    ("nnef", None): "NNEF graphs are not read by the built-in converters; install a converter plugin that reads "
    "NNEF (eiq-converter -i PLUGIN.whl)",
    ("tfhub", None): "TensorFlow Hub links are not fetched (no network at run time); download the model, save it "
    "as a SavedModel folder or .tar.gz, and convert that file",
    (None, "rtm"): "RTM output needs the vendor's converter: run eiq-converter --setup rtm (it shows the "
    "licence first)",
}


@dataclass
class PluginInfo:
    """One discovered converter plugin and whether it can be used."""

    name: str
    version: str
    module_name: str
    origin: str  # "built-in", "entry point <group>" or "environment <folder>"
    distribution: str | None = None
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    icon: Path | None = None
    info_page: Path | None = None
    status: str = READY
    problem: str | None = None  # why it is broken, or how to set it up
    module: Any = field(default=None, repr=False)

    @property
    def builtin(self) -> bool:
        return self.origin == "built-in"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "module": self.module_name, "origin": self.origin,
            "distribution": self.distribution, "status": self.status, "problem": self.problem,
            "inputs": [i.get("ext") for i in self.inputs], "outputs": [o.get("ext") for o in self.outputs],
            "icon": str(self.icon) if self.icon else None, "info": str(self.info_page) if self.info_page else None,
        }  # fmt: skip

    def supports(self, src_type: str, dst_type: str) -> dict[str, Any] | None:
        """The plugin's parameter schema for the pair, or None when it does not convert it."""
        if self.status == BROKEN:
            return None
        exts_in = {str(i.get("ext")) for i in self.inputs}
        exts_out = {str(o.get("ext")) for o in self.outputs}
        if src_type not in exts_in or dst_type not in exts_out:
            return None
        try:
            schema = self.module.query_convert(src_type, dst_type)
        except Exception:  # a plugin whose query fails cannot be trusted to convert the pair
            return None
        return schema if schema is not None else None


@dataclass
class ConversionResult:
    """What `convert` did: the files, the types, the plugin and how long the conversion took."""

    src: Path
    dst: Path
    src_type: str
    dst_type: str
    plugin: str
    seconds: float
    message: str = ""
    bytes: int = 0
    log: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "input": str(self.src), "output": str(self.dst), "input_type": self.src_type,
            "output_type": self.dst_type, "plugin": self.plugin, "seconds": round(self.seconds, 3),
            "message": self.message, "bytes": self.bytes,
        }  # fmt: skip


def _assets(module_name: str) -> tuple[Path | None, Path | None]:
    """The guide's plugin layout: ``<package>/assets/image.svg|png`` and ``<package>/assets/info.html``."""
    try:
        spec = importlib.util.find_spec(module_name.split(".")[0])
    except (ImportError, ValueError):
        return None, None
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        assets = Path(folder, "assets")
        icon = next((assets / n for n in ("image.svg", "image.png") if (assets / n).is_file()), None)
        info = assets / "info.html"
        if icon or info.is_file():
            return icon, info if info.is_file() else None
    return None, None


def _describe(info: PluginInfo, module: Any) -> PluginInfo:
    """Fill in what the loaded module says about itself; a module that cannot answer is broken."""
    info.module = module
    missing = [n for n in ("query_convert", "convert") if not callable(getattr(module, n, None))]
    if missing:
        info.status, info.problem = BROKEN, f"{info.module_name} does not define {' and '.join(missing)}()"
        return info
    try:
        supported = module.query_convert(None, None) or {}
        info.inputs = list(supported.get("supported_inputs", []))
        info.outputs = list(supported.get("supported_outputs", []))
    except Exception as exc:
        info.status, info.problem = BROKEN, f"query_convert(None, None) failed: {type(exc).__name__}: {exc}"
        return info
    status = getattr(module, "plugin_status", None)
    if callable(status):  # our extension for plugins that need a managed environment (onnx2tf, rtm)
        try:
            state = status()
            info.status, info.problem = state.get("status", READY), state.get("message")
        except Exception as exc:
            info.status, info.problem = BROKEN, f"status() failed: {type(exc).__name__}: {exc}"
    return info


def _builtins() -> list[PluginInfo]:
    found = []
    for short in BUILTIN:
        module_name = f"{__package__}.plugins.{short}"
        info = PluginInfo(short, __version__, module_name, "built-in")
        found.append(_loaded(info, module_name, lambda name=module_name: importlib.import_module(name)))
    return found


def _loaded(info: PluginInfo, what: str, load: Any) -> PluginInfo:
    """`info` described from the module `load()` returns, or marked broken with the import error (a broken
    plugin is listed with its error; the others still work)."""
    try:
        module = load()
    except Exception as exc:
        info.status, info.problem = BROKEN, f"cannot import {what}: {type(exc).__name__}: {exc}"
        return info
    return _describe(info, module)


def _entry_points() -> list[PluginInfo]:
    found, seen = [], set()
    for group in GROUPS:
        for ep in metadata.entry_points(group=group):
            dist = getattr(ep, "dist", None)
            dist_name = dist.metadata["Name"] if dist is not None else ep.name
            if (dist_name, ep.value) in seen:  # registered under both groups
                continue
            seen.add((dist_name, ep.value))
            name = environments.canonical(dist_name)
            module_name = ep.value.split(":")[0]
            info = PluginInfo(name, dist.version if dist is not None else "?", module_name, f"entry point {group}")
            info.distribution = dist_name
            info.icon, info.info_page = _assets(module_name)
            found.append(_loaded(info, ep.value, ep.load))
    return found


def _out_of_process() -> list[PluginInfo]:
    found = []
    for env in environments.environments():
        plugin = env.manifest()["info"].get("plugin")
        if not plugin:  # an environment a built-in plugin uses as a tool (onnx2tf, rtm)
            continue
        info = PluginInfo(
            env.name, plugin.get("version", "?"), plugin["module"], f"environment {env.path}",
            distribution=plugin.get("distribution"),
        )  # fmt: skip
        icon, page = plugin.get("icon"), plugin.get("info")
        info.icon = Path(icon) if icon else None
        info.info_page = Path(page) if page else None
        proxy = OutOfProcessPlugin(env.python, plugin["module"], env.name, plugin.get("supported"))
        found.append(_describe(info, proxy))
    return found


def plugins() -> list[PluginInfo]:
    """Every converter plugin found now: built-ins first, then entry points, then managed environments.

    A plugin that fails to import is listed with status ``broken`` and its error.
    """
    found = [*_builtins(), *_entry_points(), *_out_of_process()]
    names: set[str] = set()
    for info in found:  # names must be unique for --plugin and -u
        while info.name in names:
            info.name += "+"
        names.add(info.name)
    return found


def get(name: str, found: Sequence[PluginInfo] | None = None) -> PluginInfo:
    """The plugin called `name` (its name or its distribution's name).

    Raises:
        NotFoundError: no such plugin (the message lists the plugins there are).
    """
    found = plugins() if found is None else found
    wanted = environments.canonical(name)
    for info in found:
        if environments.canonical(info.name) == wanted or (
            info.distribution and environments.canonical(info.distribution) == wanted
        ):
            return info
    raise NotFoundError(f"no converter plugin {name!r}; plugins: {', '.join(i.name for i in found)}")


def pairs(found: Sequence[PluginInfo] | None = None) -> list[tuple[str, str, str]]:
    """(input type, output type, plugin) for every pair a usable plugin claims."""
    found = plugins() if found is None else found
    out = []
    for info in found:
        if info.status == BROKEN:
            continue
        for i in info.inputs:
            for o in info.outputs:
                if info.supports(str(i.get("ext")), str(o.get("ext"))) is not None:
                    out.append((str(i.get("ext")), str(o.get("ext")), info.name))
    return out


def _why_not(src_type: str, dst_type: str) -> str | None:
    return WHY_NOT.get((src_type, None)) or WHY_NOT.get((None, dst_type))


def find(src_type: str, dst_type: str, plugin: str | None = None) -> PluginInfo:
    """The plugin that converts `src_type` to `dst_type` (file extensions without the dot).

    Raises:
        InputError: no plugin converts the pair (the message lists the pairs that are supported and, for
            the guide's N cells, why), two third-party plugins claim it (name one with --plugin), or the
            named plugin does not convert it.
        EiqError: the only plugin for the pair needs setup or is broken (the message says how to fix it).
    """
    found = plugins()
    if plugin is not None:
        info = get(plugin, found)
        if info.status == BROKEN:
            raise EiqError(f"converter plugin {info.name} is broken: {info.problem}")
        if info.supports(src_type, dst_type) is None:
            raise InputError(f"plugin {info.name} does not convert {src_type} to {dst_type}; {_supported(found)}")
        if info.status != READY:
            raise EiqError(f"converter plugin {info.name} {info.status}: {info.problem}")
        return info
    able = [info for info in found if info.supports(src_type, dst_type) is not None]
    ready = [info for info in able if info.status == READY]
    third_party = [info for info in ready if not info.builtin]
    if len(third_party) > 1:
        names = ", ".join(i.name for i in third_party)
        raise InputError(f"plugins {names} all convert {src_type} to {dst_type}: choose one with --plugin NAME")
    if third_party or ready:
        return (third_party or ready)[0]
    if able:  # the only plugins for the pair need setup
        info = able[0]
        raise EiqError(
            f"converting {src_type} to {dst_type} needs plugin {info.name}, which {info.status}: {info.problem}"
        )
    why = _why_not(src_type, dst_type)
    broken = [i for i in found if i.status == BROKEN]
    hint = f"; broken plugins: {'; '.join(f'{i.name}: {i.problem}' for i in broken)}" if broken else ""
    reason = f": {why}" if why else ""
    raise InputError(f"cannot convert {src_type} to {dst_type}{reason}; {_supported(found)}{hint}")


def _supported(found: Sequence[PluginInfo]) -> str:
    cells = sorted({f"{s}->{d}" for s, d, _ in pairs(found)})
    return f"supported: {', '.join(cells) if cells else 'nothing (no usable plugin)'}"


def model_type(path: str | os.PathLike, *, output: bool = False) -> str:
    """The model type of a file as plugins name it ('h5', 'savedmodel', 'tflite', 'onnx', 'rtm', ...).

    Models are recognised by content (`eiq_lab.convert.formats`: a misnamed file is still found, a text
    file named .tflite is refused), outputs by suffix. A file whose extension no built-in type uses is a
    third-party plugin's pseudo-format: its extension is its type, and the plugin judges the content.

    Raises:
        InputError: the file does not exist, or holds no model although its extension names a model type.
    """
    from . import formats

    try:
        return formats.output_type(path) if output else formats.model_type(path)
    except InputError:
        name = Path(path).name.lower()
        ext = Path(name).suffix.lstrip(".")
        known = {s.lstrip(".").split(".")[-1] for s in formats.SUFFIXES} | set(formats.TYPES)
        if (
            not ext
            or ext in known
            or name.endswith((".tar", ".tar.gz", ".tgz"))
            or (not output and not Path(path).exists())
        ):
            raise
        return ext


def convert(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    params: Mapping[str, Any] | None = None,
    *,
    plugin: str | None = None,
) -> ConversionResult:
    """Convert the model `src` to `dst` with the plugin for their types.

    The output is written to a temporary file beside `dst` and renamed into place, so a failed
    conversion leaves no output (and an existing `dst` untouched).

    Args:
        src: the model (file, SavedModel folder or tar).
        dst: the file to write; its extension gives the output type.
        params: converter parameters (any spelling; see ../shared/INTERFACES.md "Converter plugins").
        plugin: the plugin to use (default: `find` picks).

    Raises:
        InputError: `src` does not exist, or no plugin converts the pair.
        EiqError: the plugin reported failure (its message) or failed.
    """
    src_path, dst_path = Path(src), Path(dst)
    src_type = model_type(src)
    dst_type = model_type(dst, output=True)
    info = find(src_type, dst_type, plugin)
    values = Params(params or {}).to_dict()
    values.update({"input_model_type": src_type, "output_model_type": dst_type})
    dst_path = dst_path.absolute()
    dst_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{dst_path.name}.", dir=dst_path.parent))
    try:
        partial = work / dst_path.name  # the same name: a plugin may read the type from it
        started = time.perf_counter()
        try:
            reply = info.module.convert(str(src_path.absolute()), str(partial), both_spellings(values))
        except EiqError:
            raise
        except Exception as exc:  # the contract says convert never raises; say which plugin did
            raise EiqError(f"plugin {info.name} failed converting {src}: {type(exc).__name__}: {exc}") from None
        seconds = time.perf_counter() - started
        reply = reply if isinstance(reply, Mapping) else {}
        message = str(reply.get("message") or "").replace(str(partial), str(dst_path))
        if str(reply.get("success", "no")).lower() not in ("yes", "true"):
            raise EiqError(message or f"plugin {info.name} could not convert {src} to {dst_type} (no reason given)")
        if not partial.exists():
            raise EiqError(f"plugin {info.name} reported success but wrote no {dst_type} file for {src}")
        if dst_path.is_dir() and not partial.is_dir():
            shutil.rmtree(dst_path)
        os.replace(partial, dst_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    size = dst_path.stat().st_size if dst_path.is_file() else 0
    log = str(reply.get("log") or "")
    return ConversionResult(src_path, dst_path, src_type, dst_type, info.name, seconds, message, size, log)


# -- install / uninstall ------------------------------------------------------------------------------


@dataclass
class WheelInfo:
    """What a plugin wheel declares: its distribution, version and converter entry points."""

    path: Path
    distribution: str
    version: str
    entry_points: dict[str, str]  # "group:name" -> "module[:attr]"

    @property
    def module(self) -> str:
        return next(iter(self.entry_points.values())).split(":")[0]


def read_wheel(wheel: str | os.PathLike) -> WheelInfo:
    """Read a wheel's metadata and converter entry points without installing it.

    Raises:
        InputError: the file is missing or no wheel, or it registers no converter entry point.
    """
    path = Path(wheel)
    if not path.is_file():
        raise InputError(f"{wheel}: no such file (a plugin wheel, .whl)")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise InputError(f"{wheel}: not a wheel (a .whl is a zip archive); build one with pip wheel") from None
    with archive:
        names = archive.namelist()
        meta = next((n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")), None)
        if meta is None:
            raise InputError(f"{wheel}: not a wheel (no .dist-info/METADATA inside)")
        fields = {}
        for line in archive.read(meta).decode("utf-8", "replace").splitlines():
            if not line.strip():
                break
            head, _, value = line.partition(":")
            fields.setdefault(head.strip(), value.strip())
        points: dict[str, str] = {}
        entry = meta.replace("METADATA", "entry_points.txt")
        if entry in names:
            parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
            parser.optionxform = str
            parser.read_string(archive.read(entry).decode("utf-8", "replace"))
            for group in GROUPS:
                if parser.has_section(group):
                    points.update({f"{group}:{k}": v.strip() for k, v in parser.items(group)})
    if not points:
        raise InputError(
            f"{wheel} registers no converter plugin: its entry_points.txt has no {GROUPS[1]!r} or {GROUPS[0]!r} "
            f"group (setup.py: entry_points={{'deepview_converter': ['converter = <package>.__main__']}})"
        )
    return WheelInfo(path, fields.get("Name", path.name.split("-")[0]), fields.get("Version", "?"), points)


def _pip(args: Sequence[str], what: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pip", *args], capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        telling = [
            line for line in lines if line.startswith("ERROR") or "requested" in line or "depends on" in line
        ] or lines[-6:]
        hint = ""
        if any("conflict" in line or "ResolutionImpossible" in line for line in lines):
            hint = (
                "; the plugin needs other versions of packages eiq-lab runs on, which are never changed: install it "
                "into an environment of its own with eiq-converter -i WHEEL --isolated"
            )
        raise EiqError(f"{what} failed: {' | '.join(telling)}{hint}")


def install(
    wheel: str | os.PathLike,
    *,
    isolated: bool = False,
    target: str | os.PathLike | None = None,
    pip_args: Sequence[str] = (),
) -> WheelInfo:
    """Install a converter plugin wheel (the guide's ``deepview-converter -i WHEEL``).

    The wheel's entry points are checked before anything is installed. By default the plugin goes into
    the Python running eiq-lab, and pip resolves its ``install_requires`` from the package index, but may
    not change a package that is already installed (every installed distribution is passed to pip as a
    constraint): a plugin whose requirements clash with ours fails to install, naming the clash, instead
    of breaking TensorFlow. Such a plugin installs with ``isolated=True`` into its own managed environment
    (`eiq_lab.convert.environments`) and runs out of process.

    Args:
        wheel: the plugin's .whl.
        isolated: install into a managed environment of its own instead.
        target: install into this folder (pip's ``--target``) instead of the environment.
        pip_args: extra pip options (``--no-deps``, ``--no-index``, ``--find-links DIR``...).

    Raises:
        InputError: not a wheel, or it registers no converter entry point.
        EiqError: pip failed (its last lines), or the isolated plugin does not answer query_convert.
    """
    info = read_wheel(wheel)
    wheel_path = str(info.path.absolute())
    if isolated:
        env = environments.create(info.distribution, [wheel_path], pip_args=pip_args)
        proxy = OutOfProcessPlugin(env.python, info.module, env.name)
        try:
            supported = proxy.query_convert(None, None)
            if not isinstance(supported, dict):
                raise EiqError(f"plugin {info.distribution}: query_convert(None, None) returned {supported!r}")
            icon, page = _remote_assets(env.python, info.module)
        except BaseException:
            environments.remove(env.name)
            raise
        environments.update_info(
            env, plugin={"module": info.module, "distribution": info.distribution, "version": info.version,
                         "supported": supported, "icon": icon, "info": page},
        )  # fmt: skip
        return info
    with tempfile.TemporaryDirectory(prefix="eiq-pip-") as tmp:
        pins = Path(tmp, "installed.txt")
        pins.write_text("".join(f"{n}=={v}\n" for n, v in _installed().items()))
        where = ["--target", str(target)] if target is not None else []
        _pip(["install", "--disable-pip-version-check", "-c", str(pins), *where, *pip_args, wheel_path],
             f"installing {wheel}")  # fmt: skip
    importlib.invalidate_caches()
    return info


def _installed() -> dict[str, str]:
    """name -> version of every distribution this Python has (the constraints `install` passes to pip)."""
    out = {}
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name and environments.canonical(name) not in out:
            out[environments.canonical(name)] = dist.version
    return out


def _remote_assets(python: Path, module: str) -> tuple[str | None, str | None]:
    """The icon and info page of a plugin installed in another environment (found by its interpreter)."""
    code = (
        "import importlib.util, sys; s = importlib.util.find_spec(sys.argv[1]);"
        "print('\\n'.join(s.submodule_search_locations or []))"
    )
    done = subprocess.run([str(python), "-c", code, module.split(".")[0]], capture_output=True, text=True)
    for folder in done.stdout.splitlines():
        assets = Path(folder.strip(), "assets")
        icon = next((assets / n for n in ("image.svg", "image.png") if (assets / n).is_file()), None)
        page = assets / "info.html"
        if icon or page.is_file():
            return (str(icon) if icon else None), (str(page) if page.is_file() else None)
    return None, None


def uninstall(name: str) -> PluginInfo:
    """Uninstall a plugin by its plugin or distribution name (the guide's ``deepview-converter -u NAME``).

    Raises:
        NotFoundError: no such plugin.
        InputError: it is a built-in plugin (those come with eiq-lab).
        EiqError: pip failed.
    """
    info = get(name)
    if info.builtin:
        raise InputError(f"{info.name} is a built-in converter plugin and cannot be uninstalled")
    if info.origin.startswith("environment"):
        environments.remove(info.name.rstrip("+"))
        return info
    _pip(["uninstall", "-y", "--disable-pip-version-check", info.distribution or info.name],
         f"uninstalling {info.name}")  # fmt: skip
    importlib.invalidate_caches()
    return info


def setup(name: str, *, accept_license: bool = False, remove: bool = False, log: Any = None, ask: Any = None) -> str:
    """Set up (or remove) a plugin's managed environment (onnx2tf, rtm): the guide's plugin readiness step.

    Args:
        accept_license: the user accepts the vendor's licence (a plugin that needs one refuses without it).
        remove: remove the environment instead.
        log: called with progress lines (default: none).
        ask: called with a yes/no question when the plugin wants one answered interactively.

    Returns:
        The plugin's message (what was done, or the licence to accept).

    Raises:
        InputError: the plugin has no managed environment.
    """
    info = get(name)
    plugin_setup = getattr(info.module, "plugin_setup", None)
    if not callable(plugin_setup):
        raise InputError(f"plugin {info.name} has no managed environment to set up; setup takes onnx2tf or rtm")
    kwargs: dict[str, Any] = {"accept_license": accept_license, "remove": remove, "log": log or (lambda _: None)}
    if ask is not None and "ask" in inspect.signature(plugin_setup).parameters:
        kwargs["ask"] = ask
    return plugin_setup(**kwargs)
