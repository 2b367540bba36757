"""The model registry: built-in models, plugin folders (base and user models) and `eiq_lab.models` entry points.

A broken plugin is recorded as a problem (its file or entry point and the error) and the others still load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import threading
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError, NotFoundError
from . import interfaces
from .interfaces import TASKS, ImageClassificationInterface, ModelInterface, ObjectDetectionInterface

#: Modules of eiq_lab whose plugin classes are the built-in (base) models. A new base model adds its module here.
BUILTIN_MODULES = ("eiq_lab.models.mobilenet", "eiq_lab.models.ssd")
#: Entry point group through which installed packages add models (a plugin class or a module of them).
ENTRY_POINT_GROUP = "eiq_lab.models"
#: Variables naming the base-model folder (the guide's Windows text misspells it DEEPPVIEW).
BASE_VARIABLES = ("EIQ_PLUGINS_BASE", "DEEPVIEW_PLUGINS_BASE", "DEEPPVIEW_PLUGINS_BASE")
#: Variables naming the user-model folder (the guide spells it DEEVIEW_PLUGINS_USER).
USER_VARIABLES = ("EIQ_PLUGINS_USER", "DEEPVIEW_PLUGINS_USER", "DEEVIEW_PLUGINS_USER")
#: task -> the sub-folders of a plugin folder holding its plugins (`<root>/classification/image/<Family>/*.py`).
TASK_FOLDERS = {"classification": ("classification", "image"), "detection": ("detection", "boxes")}
#: The guide's import path of the interfaces, served by eiq_lab so eIQ plugins load unchanged.
DEEPVIEW_INTERFACES = "deepview.trainer.extensions.interfaces"

_INTERFACE_CLASSES = (ModelInterface, ImageClassificationInterface, ObjectDetectionInterface)


def normalize_name(name: str) -> str:
    """The lookup key of a model name: case-insensitive, with ``-``, ``_`` and spaces alike."""
    return re.sub(r"[-_\s]+", "_", str(name).strip().lower())


def check_task(task: str | None) -> str | None:
    """Return `task` in its canonical spelling (None stays None).

    Raises:
        InputError: not one of the tasks.
    """
    if task is None:
        return None
    canonical = str(task).strip().lower()
    if canonical not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; received {task!r}")
    return canonical


@dataclass(frozen=True)
class PluginEntry:
    """One registered model: its name, task and where it came from."""

    name: str
    task: str
    #: "builtin", "base" (base-model folder), "user" (user-model folder) or "entry point"
    origin: str
    #: the file, module or entry point that defines it
    source: str
    plugin_class: type
    #: base model (built-in, from the base folder, or `is_base()` says so) rather than a user model
    base: bool

    def create(self) -> ModelInterface:
        """A new instance of the plugin."""
        return self.plugin_class()


@dataclass(frozen=True)
class PluginProblem:
    """A plugin file or entry point that could not be loaded, and why."""

    source: str
    message: str

    def __str__(self) -> str:
        return f"{self.source}: {self.message}"


def plugin_folders(environ: Mapping[str, str] | None = None) -> list[tuple[str, Path, str]]:
    """The plugin folders the environment names, base folders first: ``(origin, folder, variable)`` each.

    A variable may hold several folders separated by ``os.pathsep``; a folder named twice is read once.
    """
    environ = os.environ if environ is None else environ
    found: list[tuple[str, Path, str]] = []
    seen: set[str] = set()
    for origin, variables in (("base", BASE_VARIABLES), ("user", USER_VARIABLES)):
        for variable in variables:
            for part in (environ.get(variable) or "").split(os.pathsep):
                if not part.strip():
                    continue
                folder = Path(part.strip()).expanduser()
                key = os.path.normcase(os.path.abspath(folder))
                if key not in seen:
                    seen.add(key)
                    found.append((origin, folder, variable))
    return found


def plugin_classes(module: types.ModuleType) -> list[type]:
    """The plugin classes a module defines: its `PLUGINS` tuple if it has one, else every public subclass of
    an interface defined in the module itself (imported classes and names starting with ``_`` are not)."""
    explicit = getattr(module, "PLUGINS", None)
    if explicit is not None:
        return [cls for cls in explicit if _is_plugin_class(cls)]
    return [
        value
        for value in vars(module).values()
        if _is_plugin_class(value) and value.__module__ == module.__name__ and not value.__name__.startswith("_")
    ]


def load_entry_point(entry_point: importlib.metadata.EntryPoint) -> list[type]:
    """The plugin classes behind an entry point: a plugin class, or a module of them.

    Raises:
        InputError: the object is neither (or the module defines no plugin); import errors propagate.
    """
    target = entry_point.load()
    if isinstance(target, types.ModuleType):
        classes = plugin_classes(target)
        if not classes:
            raise InputError(f"module {target.__name__} defines no subclass of an eiq_lab.models interface")
        return classes
    if _is_plugin_class(target):
        return [target]
    raise InputError(
        f"points at {target!r}, which is neither a model plugin class (a subclass of ImageClassificationInterface "
        "or ObjectDetectionInterface) nor a module of them"
    )


def _is_plugin_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, ModelInterface) and value not in _INTERFACE_CLASSES


@dataclass
class ModelRegistry:
    """Every model plugin, by name. Build it with `registry()`; lookups accept any case and ``-``/``_``/space.

    Args:
        folders: ``(origin, folder, variable)`` plugin folders; None reads them from the environment
            (`plugin_folders()`).
        entry_points: whether to read the `eiq_lab.models` entry point group.
    """

    folders: list[tuple[str, Path, str]] | None = None
    entry_points: bool = True
    problems: list[PluginProblem] = field(default_factory=list, init=False)
    _entries: dict[str, PluginEntry] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.folders is None:
            self.folders = plugin_folders()
        for module_name in BUILTIN_MODULES:
            self._add_module_by_name(module_name)
        if self.folders:
            _load_plugin_folders(self, self.folders)
        if self.entry_points:
            self._add_entry_points()

    # -- lookups ---------------------------------------------------------------------------------------

    def get(self, name: str, task: str | None = None) -> ModelInterface:
        """A new instance of the model plugin called `name` (optionally: only among `task`'s models).

        Raises:
            NotFoundError: no such model (for that task); the message lists the valid names.
            InputError: `task` is not a task.
        """
        return self.entry(name, task).create()

    def entry(self, name: str, task: str | None = None) -> PluginEntry:
        """The registry's record of `name` (see `get`)."""
        task = check_task(task)
        entry = self._entries.get(normalize_name(name))
        if entry is None or (task is not None and entry.task != task):
            kind = f"{task} model" if task else "model"
            valid = ", ".join(self.names(task)) or "none"
            hint = f" ({len(self.problems)} plugin(s) failed to load: see `eiq models`)" if self.problems else ""
            raise NotFoundError(f"no {kind} named {name!r}; valid: {valid}{hint}")
        return entry

    def names(self, task: str | None = None) -> list[str]:
        """Model names (for one task, or all), built-ins first."""
        return [entry.name for entry in self.plugins(task)]

    def plugins(self, task: str | None = None) -> list[PluginEntry]:
        """Registered models (for one task, or all), built-ins first."""
        task = check_task(task)
        return [entry for entry in self._entries.values() if task is None or entry.task == task]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and normalize_name(name) in self._entries

    # -- loading ---------------------------------------------------------------------------------------

    def add_classes(self, classes: Iterable[type], origin: str, source: str) -> None:
        """Register plugin classes; a class whose name or task cannot be read becomes a problem."""
        for cls in classes:
            where = f"{source} ({cls.__name__})"
            try:
                plugin = cls()
                name, task = plugin.get_name(), plugin.get_task()
                if not isinstance(name, str) or not name.strip():
                    raise InputError(f"get_name() must return a non-empty string; returned {name!r}")
                if task not in TASKS:
                    raise InputError(f"get_task() must return one of {', '.join(TASKS)}; returned {task!r}")
                base = origin in ("builtin", "base") or bool(plugin.is_base())
            except Exception as exc:  # a plugin's own code: whatever it raises, the other plugins still load
                self.problems.append(PluginProblem(where, f"{type(exc).__name__}: {exc}"))
                continue
            key = normalize_name(name)
            if key in self._entries:
                taken = self._entries[key]
                message = f"model name {name!r} is already taken by {taken.source}; give one of them another get_name()"
                self.problems.append(PluginProblem(where, message))
                continue
            self._entries[key] = PluginEntry(name, task, origin, source, cls, base)

    def _add_module_by_name(self, module_name: str) -> None:
        try:
            module = importlib.import_module(module_name)
        except Exception as exc:
            self.problems.append(PluginProblem(module_name, f"{type(exc).__name__}: {exc}"))
            return
        self.add_classes(plugin_classes(module), "builtin", module_name)

    def _add_entry_points(self) -> None:
        try:
            found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        except Exception as exc:  # a damaged installed distribution must not hide the other models
            self.problems.append(PluginProblem(f"entry points {ENTRY_POINT_GROUP}", f"{type(exc).__name__}: {exc}"))
            return
        for entry_point in found:
            distribution = getattr(getattr(entry_point, "dist", None), "name", None)
            source = f"entry point {entry_point.name} = {entry_point.value}" + (
                f" ({distribution})" if distribution else ""
            )
            try:
                classes = load_entry_point(entry_point)
            except Exception as exc:
                self.problems.append(PluginProblem(source, f"{type(exc).__name__}: {exc}"))
                continue
            self.add_classes(classes, "entry point", source)


# -- plugin folders --------------------------------------------------------------------------------------

_lock = threading.RLock()
_cached: ModelRegistry | None = None
_cached_folders: list[tuple[str, Path, str]] | None = None
#: plugin roots this process put on sys.path (so a rescan can take away those no longer configured)
_added_roots: set[str] = set()


def registry(refresh: bool = False) -> ModelRegistry:
    """The model registry of this process, built on first use.

    It is built again when `refresh` is true or when the plugin folder variables changed since.

    Args:
        refresh: scan the plugin folders and entry points again (after adding or editing a plugin).
    """
    global _cached, _cached_folders
    with _lock:
        folders = plugin_folders()
        if refresh or _cached is None or folders != _cached_folders:
            _cached = ModelRegistry(folders)
            _cached_folders = folders
        return _cached


def _load_plugin_folders(registry: ModelRegistry, folders: list[tuple[str, Path, str]]) -> None:
    with _lock:
        roots = {str(folder.resolve()) for _, folder, _ in folders if folder.is_dir()}
        _forget_plugin_modules(roots)
        _install_deepview_alias()
        importlib.invalidate_caches()  # files written a moment ago (same mtime second) must be seen
        for origin, folder, variable in folders:
            if not folder.is_dir():
                registry.problems.append(PluginProblem(str(folder), f"{variable} names {folder}, which is no folder"))
                continue
            root = str(folder.resolve())
            if root not in sys.path:
                sys.path.append(root)
                _added_roots.add(root)
            for module_name, path in _plugin_files(Path(root)):
                try:
                    module = _import_plugin_file(module_name, path)
                except BaseException as exc:
                    if not isinstance(exc, Exception | SystemExit):  # KeyboardInterrupt still stops the scan
                        raise
                    registry.problems.append(PluginProblem(str(path), _describe_import_error(exc)))
                    continue
                registry.add_classes(plugin_classes(module), origin, str(path))


def _plugin_files(root: Path) -> list[tuple[str, Path]]:
    """(module name, file) of every plugin file under `root`: `<task>/<kind>/[<Family>/]*.py`."""
    found = []
    for parts in TASK_FOLDERS.values():
        task_dir = root.joinpath(*parts)
        if not task_dir.is_dir():
            continue
        for path in sorted([*task_dir.glob("*.py"), *task_dir.glob("*/*.py")]):
            if path.name == "__init__.py":
                continue
            relative = path.relative_to(root).with_suffix("").parts
            found.append((".".join(relative), path))
    return found


def _import_plugin_file(module_name: str, path: Path) -> types.ModuleType:
    """Import a plugin file by its dotted name under the plugin root, so its siblings import the same way."""
    if all(part.isidentifier() for part in module_name.split(".")):
        sys.modules.pop(module_name, None)
        module = importlib.import_module(module_name)
        loaded = getattr(module, "__file__", None)
        if loaded is None or Path(loaded).resolve() != path.resolve():
            raise ImportError(
                f"{module_name} resolves to {loaded}, not this file: another folder on sys.path has the same "
                "layout (or a package of that name); keep one"
            )
        return module
    # a folder name that is no identifier (a space, a dash): load the file alone; sibling imports cannot work
    safe = "eiq_lab_plugin_" + re.sub(r"\W", "_", module_name)
    spec = importlib.util.spec_from_file_location(safe, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[safe] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(safe, None)
        raise
    return module


def _describe_import_error(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} (line {exc.lineno})"
    return f"{type(exc).__name__}: {exc}"


def _forget_plugin_modules(roots: set[str]) -> None:
    """Drop the plugin modules and roots of an earlier scan, so a rescan reads the files again."""
    for root in list(_added_roots):
        if root not in roots and root in sys.path:
            sys.path.remove(root)
            _added_roots.discard(root)
    tops = {parts[0] for parts in TASK_FOLDERS.values()}
    for name in list(sys.modules):
        top = name.split(".", 1)[0]
        if top in tops or name.startswith("eiq_lab_plugin_"):
            module = sys.modules[name]
            location = getattr(module, "__file__", None)
            # namespace packages (no file) and modules from a plugin root; an unrelated installed package stays
            if location is None or any(Path(location).resolve().is_relative_to(r) for r in _added_roots | roots):
                del sys.modules[name]


def _install_deepview_alias() -> None:
    """Make the guide's `deepview.trainer.extensions.interfaces` import path serve eiq_lab's interfaces.

    Only when no real `deepview` package is installed.
    """
    if DEEPVIEW_INTERFACES in sys.modules:
        return
    try:
        if importlib.util.find_spec("deepview") is not None:
            return
    except (ImportError, ValueError):
        return
    parent = None
    parts = DEEPVIEW_INTERFACES.split(".")
    for depth in range(1, len(parts)):
        name = ".".join(parts[:depth])
        module = sys.modules.get(name) or types.ModuleType(name, "eiq-lab's stand-in for eIQ Toolkit's package")
        module.__path__ = []  # a package, so the submodule import finds it in sys.modules
        sys.modules[name] = module
        if parent is not None:
            setattr(parent, parts[depth - 1], module)
        parent = module
    sys.modules[DEEPVIEW_INTERFACES] = interfaces
    setattr(parent, parts[-1], interfaces)
