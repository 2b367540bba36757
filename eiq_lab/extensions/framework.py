"""The extension framework (the guide's section 6, in Python): third-party packages contribute commands, menu
items and panels through the `eiq_lab.extensions` entry point group, shown where and when they ask.

An extension is a function ``activate(context)`` (entry point ``name = package.module:activate``) that
registers its contributions on the `ExtensionContext` it is given, as the guide's ``activate()`` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

from ..errors import InputError, NotFoundError
from .storage import GlobalState, ProjectState, Storage
from .when import CONTEXT_KEYS, Condition, parse_when

log = logging.getLogger("eiq_lab.extensions")

ENTRY_POINT_GROUP = "eiq_lab.extensions"

#: The guide's five places (section 6.1.5) an extension can add a menu item or a button to.
LOCATIONS = {
    "frame/help": "the Help menu",
    "frame/workspaces": "the Workspaces menu",
    "dataset/utility": "the Data Set Curator's sidebar",
    "home/tools": "the Home screen's tools row",
    "deploy/export-settings": "the Export Model screen's sidebar",
}


@dataclass(frozen=True)
class Command:
    """A command an extension registered: `run(context)` is called when its item is clicked."""

    id: str
    title: str
    run: Callable[[ExtensionContext], Any]
    extension: str


@dataclass(frozen=True)
class MenuItem:
    """A command shown at a location, when its `when` clause holds."""

    location: str
    command: str
    when: str | None
    shown: Condition = field(repr=False, compare=False)


@dataclass(frozen=True)
class PanelContribution:
    """A panel an extension offers: `build(context)` returns a widget (the Portal shows it as a workspace)."""

    id: str
    title: str
    build: Callable[[ExtensionContext], Any]
    extension: str


@dataclass(frozen=True)
class BrokenExtension:
    """An extension that failed to load, and why (listed, never fatal)."""

    name: str
    problem: str


class ExtensionContext:
    """What an extension's ``activate(context)`` gets, and what its commands are called with.

    Attributes:
        name: the extension's name (its entry point name).
        project: the open `Project` (labels, images, annotations: read, add, update, delete), or ``None``.
        keys: the current context keys (`CONTEXT_KEYS`).
        global_state: storage across projects (``$EIQ_HOME/extensions/<name>/state.json``).
    """

    def __init__(self, framework: Extensions, name: str):
        self._framework, self.name = framework, name
        self.global_state: Storage = GlobalState(name)

    @property
    def project(self) -> Any:
        return self._framework.project

    @property
    def project_state(self) -> Storage:
        """Storage in the open project (raises when no project is open)."""
        if self.project is None:
            raise InputError(f"extension {self.name!r} asked for project storage, but no project is open")
        return ProjectState(self.project, self.name)

    @property
    def keys(self) -> dict[str, Any]:
        return self._framework.context_keys()

    def register_command(self, command_id: str, handler: Callable[[ExtensionContext], Any], title: str = "") -> None:
        """Register `handler` as `command_id` (called with this context when an item of it is clicked)."""
        self._framework._add_command(Command(command_id, title or command_id, handler, self.name))

    def add_menu_item(self, location: str, command_id: str, when: str | None = None) -> None:
        """Show `command_id` at `location` (one of `LOCATIONS`) while `when` holds (see `parse_when`)."""
        self._framework._add_item(location, command_id, when)

    def register_panel(self, panel_id: str, build: Callable[[ExtensionContext], Any], title: str = "") -> None:
        """Offer a panel: `build(context)` returns its widget."""
        self._framework._add_panel(PanelContribution(panel_id, title or panel_id, build, self.name))


class Extensions:
    """The loaded extensions of one Portal (or notebook): their commands, items and panels, and the context.

    Example:
        >>> ext = Extensions.load()                                   # doctest: +SKIP
        >>> ext.project = project
        >>> [ext.commands[i.command].title for i in ext.items("deploy/export-settings")]   # doctest: +SKIP
    """

    def __init__(self, project: Any = None):
        self.project = project
        self.commands: dict[str, Command] = {}
        self.menu: list[MenuItem] = []
        self.panels: dict[str, PanelContribution] = {}
        self.broken: list[BrokenExtension] = []
        self.contexts: dict[str, ExtensionContext] = {}

    @classmethod
    def load(cls, project: Any = None, activators: Mapping[str, Callable[[ExtensionContext], Any]] | None = None):
        """Activate the installed extensions (entry points), or the given ``{name: activate}`` functions.

        An extension that fails to import or to activate is listed in `broken` with its error; the others load.
        """
        framework = cls(project)
        found: dict[str, Callable[[ExtensionContext], Any] | Exception] = dict(activators or {})
        if activators is None:
            for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
                try:
                    found[entry.name] = entry.load()
                except Exception as exc:  # a broken third-party package must not break the Portal
                    found[entry.name] = exc
        for name, activate in sorted(found.items()):
            framework.activate(name, activate)
        return framework

    def activate(self, name: str, activate: Callable[[ExtensionContext], Any] | Exception) -> None:
        """Activate one extension; failures are recorded in `broken` (its partial registrations are dropped)."""
        if isinstance(activate, Exception):
            self.broken.append(BrokenExtension(name, f"cannot be imported: {type(activate).__name__}: {activate}"))
            return
        before = (dict(self.commands), list(self.menu), dict(self.panels))
        context = ExtensionContext(self, name)
        try:
            activate(context)
        except Exception as exc:
            self.commands, self.menu, self.panels = before
            self.broken.append(BrokenExtension(name, f"activate() failed: {type(exc).__name__}: {exc}"))
            log.warning("extension %s failed to activate: %s", name, exc)
            return
        self.contexts[name] = context

    def _add_command(self, command: Command) -> None:
        if command.id in self.commands:
            other = self.commands[command.id].extension
            raise InputError(f"command {command.id!r} is already registered by extension {other!r}")
        self.commands[command.id] = command

    def _add_item(self, location: str, command: str, when: str | None) -> None:
        if location not in LOCATIONS:
            raise InputError(f"unknown menu location {location!r}; locations: {', '.join(LOCATIONS)}")
        self.menu.append(MenuItem(location, command, when, parse_when(when)))

    def _add_panel(self, panel: PanelContribution) -> None:
        if panel.id in self.panels:
            other = self.panels[panel.id].extension
            raise InputError(f"panel {panel.id!r} is already registered by extension {other!r}")
        self.panels[panel.id] = panel

    def context_keys(self) -> dict[str, Any]:
        """The context keys now: from the open project's latest export (none: nothing exported)."""
        return context_keys(self.project)

    def items(self, location: str) -> list[Command]:
        """The commands to show at `location` now (their `when` clauses evaluated on the current context keys).

        Raises:
            InputError: `location` is not one of `LOCATIONS`.
        """
        if location not in LOCATIONS:
            raise InputError(f"unknown menu location {location!r}; locations: {', '.join(LOCATIONS)}")
        keys = self.context_keys()
        return [self.commands[i.command] for i in self.menu if i.location == location and i.command in self.commands
                and i.shown(keys)]  # fmt: skip

    def execute(self, command_id: str) -> Any:
        """Run a registered command with its extension's context.

        Raises:
            NotFoundError: no such command (the message lists the registered ones).
        """
        try:
            command = self.commands[command_id]
        except KeyError:
            known = ", ".join(sorted(self.commands)) or "none"
            raise NotFoundError(f"no extension command {command_id!r}; registered: {known}") from None
        return command.run(self.contexts[command.extension])

    def build_panel(self, panel_id: str) -> Any:
        """The widget of an extension's panel.

        Raises:
            NotFoundError: no such panel.
        """
        try:
            panel = self.panels[panel_id]
        except KeyError:
            known = ", ".join(sorted(self.panels)) or "none"
            raise NotFoundError(f"no extension panel {panel_id!r}; registered: {known}") from None
        return panel.build(self.contexts[panel.extension])


def context_keys(project: Any) -> dict[str, Any]:
    """The guide's context keys for `project`: whether a model was exported, whether it was quantized, its type.

    The latest export recorded in the project decides (``eiq export`` and the Export panel both record theirs).
    """
    keys: dict[str, Any] = dict.fromkeys(CONTEXT_KEYS, False)
    keys["exportModelType"] = ""
    exports = project.exports() if project is not None else []
    if exports:
        latest = exports[-1]
        keys["modelExported"] = True
        keys["exportModelQuantized"] = latest.settings.get("type", "float32") != "float32"
        keys["exportModelType"] = latest.format
    return keys
