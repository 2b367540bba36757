"""The Portal: a title bar with the open project and the WORKSPACES switcher, chaining the panels in the guide's
order (built lazily, rebuilt for another project) and wiring the hand-offs between them.
"""

from __future__ import annotations

import html
import importlib
import inspect
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import EiqError
from ..project import Project, open_project
from . import PANELS, panel_class
from .base import Panel, describe_error, log
from .contributions import Contributions

#: the workspaces in the guide's order: (registry name, what the switcher shows)
WORKSPACES: tuple[tuple[str, str], ...] = (
    ("home", "Home"),
    ("import", "Import"),
    ("curator", "Curator"),
    ("annotator", "Annotator"),
    ("augmentation", "Augmentation"),
    ("model", "Model selection"),
    ("training", "Training"),
    ("validation", "Validation"),
    ("export", "Export"),
    ("devices", "Remote devices"),
)
#: workspaces that need no open project
WITHOUT_PROJECT = ("home", "devices")
#: tools outside the workspaces (the guide's separate Model Tool and the title bar's PLUG-INS): name -> (module, class)
TOOLS: dict[str, tuple[str, str]] = {"model_tool": ("model_tool", "ModelTool"), "plugins": ("plugins", "Plugins")}


_HELP = (
    "<div class='eiq-portal-help-text' style='padding:6px'>The Portal follows the eIQ Toolkit User Guide's "
    "section 3: Home, then the WORKSPACES of the open project in order. Every panel is also a Python class "
    "(<code>eiq_lab.widgets</code>) and every step an <code>eiq</code> command (<code>eiq --help</code>).</div>"
)


class _Note(w.HTML):
    """What a workspace shows when its panel cannot be built (module missing, constructor refused)."""

    def __init__(self, value: str):
        super().__init__(value)
        self.add_class("eiq-portal-note")


class Portal(Panel):
    """The eIQ Portal in a notebook or a Voila page: Home first, then the opened project's workspaces.

    Panels are built the first time their workspace is shown (so the page opens at once), kept while the
    project stays open (their background work goes on while another workspace shows), and rebuilt when
    another project is opened. A panel whose module is not installed shows a note naming it.

    Args:
        project: a project to open at once (a `Project` or a path), or None to start on Home.
        workspace: the folder new projects are created in and relative paths start from.

    Example:
        >>> import os
        >>> Portal(workspace=os.environ.get("EIQ_WORKSPACE", "."))   # doctest: +SKIP
    """

    title = ""

    def __init__(self, project: Project | str | os.PathLike | None = None, workspace: str | os.PathLike = "."):
        self.workspace = Path(workspace).expanduser().resolve()
        self.project: Project | None = None
        self.panels: dict[str, w.Widget] = {}
        self.tools: dict[str, w.Widget] = {}
        self._stale: set[str] = set()
        self._switching = False
        from ..extensions import Extensions

        # third-party extensions (the guide's section 6): one set for the whole Portal, on its open project
        self.extensions = Extensions.load()
        self.help_items = Contributions(self.extensions, "frame/help")
        self.workspace_items = Contributions(self.extensions, "frame/workspaces")

        self.project_name = w.HTML("")
        self.project_name.add_class("eiq-portal-project")
        self.workspaces = w.Dropdown(options=[], description="WORKSPACES", layout=w.Layout(width="300px"))
        self.workspaces.style.description_width = "100px"
        self.workspaces.add_class("eiq-portal-workspaces")
        self.devices_button = w.Button(description="REMOTE DEVICES", icon="server", layout=w.Layout(width="auto"))
        self.devices_button.add_class("eiq-portal-devices")
        self.devices_button.on_click(self.guarded(lambda _: self.show("devices")))
        self.plugins_button = w.Button(description="PLUG-INS", icon="puzzle-piece", layout=w.Layout(width="auto"))
        self.plugins_button.add_class("eiq-portal-plugins")
        self.plugins_button.on_click(self.guarded(lambda _: self.show_tool("plugins")))
        if self._tool_class("plugins") is None:
            self.plugins_button.layout.display = "none"
        self.home_button = w.Button(description="HOME", icon="home", layout=w.Layout(width="auto"))
        self.home_button.add_class("eiq-portal-home")
        self.home_button.on_click(self.guarded(lambda _: self.show("home")))
        bar = w.HBox(
            [
                w.HTML("<b style='font-size:1.3em;margin-right:12px'>eIQ Lab Portal</b>"),
                self.project_name,
                w.HTML("", layout=w.Layout(flex="1")),
                self.home_button,
                self.workspaces,
                self.devices_button,
                self.plugins_button,
            ],
            layout=w.Layout(align_items="center", border_bottom="2px solid #1f4e79", padding="4px 0"),
        )
        bar.add_class("eiq-portal-bar")
        self.help_button = w.ToggleButton(description="HELP", icon="question-circle", layout=w.Layout(width="auto"))
        self.help_button.add_class("eiq-portal-help")
        self.help_box = w.VBox([w.HTML(_HELP), self.help_items])
        self.help_box.layout.display = "none"
        self.help_button.observe(self._toggle_help, "value")
        bar.children = (*bar.children, self.help_button)
        self.body = w.VBox([])
        self.body.add_class("eiq-portal-body")
        super().__init__([bar, self.help_box, self.workspace_items, self.body])
        self.add_class("eiq-portal")
        self.workspaces.observe(self._picked, "value")
        self._update_switcher()
        if project is not None:
            self.open_project(project if isinstance(project, Project) else open_project(project))
        self.show("home")

    def _toggle_help(self, change: dict) -> None:
        self.help_box.layout.display = "flex" if change["new"] else "none"

    # -- projects -------------------------------------------------------------------------------

    def open_project(self, project: Project) -> None:
        """Make `project` the Portal's project: its panels are rebuilt on demand, the old project is closed.

        Raises:
            EiqError: a panel is still working on the current project (stop it first).
        """
        if project is self.project:
            return
        self.check_idle()
        old = self.project
        self.project = project
        self.extensions.project = project
        self.help_items.refresh()
        self.workspace_items.refresh()
        for name in [n for n in self.panels if n not in WITHOUT_PROJECT or n.startswith("ext:")]:
            del self.panels[name]
        self._stale.clear()
        home = self.panels.get("home")
        if home is not None:
            home.show_project(project)
        self.project_name.value = (
            f"<span>project <b class='eiq-portal-project-name'>{html.escape(project.path.name)}</b></span>"
        )
        self._update_switcher()
        if old is not None:
            old.close()

    def check_idle(self) -> None:
        """Refuse a project switch while a panel works on the current project.

        Raises:
            EiqError: names the panels still working.
        """
        working = [name for name, panel in self.panels.items() if getattr(panel, "busy", False)]
        if working:
            names = ", ".join(dict(WORKSPACES).get(n, n) for n in working)
            raise EiqError(f"{names} is still working on {self.project.path.name}; wait for it or stop it first")

    def _update_switcher(self) -> None:
        names = [(label, name) for name, label in WORKSPACES if self.project is not None or name in WITHOUT_PROJECT]
        # extensions' panels are workspaces too (on an open project)
        if self.project is not None:
            names += [(f"{p.title} ({p.extension})", f"ext:{p.id}") for p in self.extensions.panels.values()]
        self._switching = True
        try:
            current = self.workspaces.value
            self.workspaces.options = names
            self.workspaces.value = current if any(current == n for _, n in names) else "home"
        finally:
            self._switching = False

    # -- workspaces -----------------------------------------------------------------------------

    def _picked(self, change: dict) -> None:
        if not self._switching and change["new"]:
            self.guarded(self.show)(change["new"])

    def show(self, name: str) -> w.Widget:
        """Show the workspace `name` (a registry name: ``"home"``, ``"curator"``, ...); build its panel if needed.

        Returns:
            The panel shown (or the note shown in its place).
        """
        if name.startswith("ext:") and self.project is not None:
            return self._show_extension_panel(name)
        labels = dict(WORKSPACES)
        if name not in labels:
            raise EiqError(f"no workspace named {name!r}; workspaces: {', '.join(labels)}")
        if self.project is None and name not in WITHOUT_PROJECT:
            raise EiqError(f"open or create a project on Home first; the {labels[name]} works on a project")
        panel = self._show(name, self.panel(name))
        self.status.value = ""
        return panel

    def _show_extension_panel(self, name: str) -> w.Widget:
        panel = self.panels.get(name)
        if panel is None:
            panel = self.extensions.build_panel(name.removeprefix("ext:"))
            self.panels[name] = panel
        return self._show(name, panel)

    def _show(self, name: str, panel: w.Widget) -> w.Widget:
        """Put `panel` in the body and select its workspace in the switcher (without switching again)."""
        self.body.children = [panel]
        self._switching = True
        try:
            self.workspaces.value = name
        finally:
            self._switching = False
        return panel

    def panel(self, name: str) -> w.Widget:
        """The panel of workspace `name`, built (and wired) the first time, refreshed if the project changed."""
        panel = self.panels.get(name)
        if panel is not None and name in self._stale:
            self._stale.discard(name)
            if callable(getattr(panel, "refresh", None)):
                try:
                    panel.refresh()
                    return panel
                except Exception as exc:  # a refresh that fails: build it again from the project
                    log.warning("refreshing the %s panel failed (%s); rebuilding it", name, exc)
            panel = None
        if panel is None:
            panel = self._build(name)
            if not isinstance(panel, _Note):  # a note is tried again next time (the module may have landed)
                self.panels[name] = panel
        return panel

    def _build(self, name: str, **extra: Any) -> w.Widget:
        module = PANELS[name][0]
        try:
            cls = panel_class(name)
        except ModuleNotFoundError as exc:
            if exc.name != f"{__package__}.{module}":
                return self._note(name, f"cannot load eiq_lab/widgets/{module}.py: {describe_error(exc)}")
            missing = f"the {dict(WORKSPACES)[name]} panel (eiq_lab/widgets/{module}.py) is not available yet"
            return self._note(name, missing)
        except Exception as exc:
            return self._note(name, f"cannot load eiq_lab/widgets/{module}.py: {describe_error(exc)}")
        try:
            panel = cls(*self._arguments(cls), **extra, **self._keywords(cls))
        except Exception as exc:
            if not isinstance(exc, EiqError):
                log.exception("building the %s panel failed", name)
            return self._note(name, f"the {dict(WORKSPACES)[name]} panel could not open: {describe_error(exc)}")
        self._wire(name, panel)
        return panel

    @staticmethod
    def _project_first(cls: type) -> bool:
        parameters = [p for p in inspect.signature(cls).parameters.values() if p.kind != p.VAR_KEYWORD]
        return (
            bool(parameters)
            and parameters[0].name == "project"
            and parameters[0].kind != inspect.Parameter.KEYWORD_ONLY
        )

    def _arguments(self, cls: type) -> list[Any]:
        return [self.project] if self._project_first(cls) else []

    def _keywords(self, cls: type) -> dict[str, Any]:
        """What a panel's constructor takes by name: the workspace folder, and the project when not first."""
        parameters = inspect.signature(cls).parameters
        keywords: dict[str, Any] = {}
        if "workspace" in parameters:
            keywords["workspace"] = self.workspace
        if "project" in parameters and not self._project_first(cls):
            keywords["project"] = self.project
        if "extensions" in parameters:
            keywords["extensions"] = self.extensions
        return keywords

    def _note(self, name: str, text: str) -> w.Widget:
        return _Note(
            f"<div class='eiq-portal-missing' style='padding:12px;color:#9a6700'><h3>{dict(WORKSPACES)[name]}</h3>"
            f"{html.escape(text)}</div>"
        )

    def _refresh_later(self, *names: str) -> None:
        """Panels showing project content that changed: refreshed (or rebuilt) when next shown."""
        self._stale.update(n for n in names if n in self.panels)

    # -- wiring ---------------------------------------------------------------------------------

    def _set(self, panel: Any, attribute: str, callback: Callable[..., Any]) -> None:
        """Wire `panel.attribute` when the panel exposes it (panels land one by one; absent ones stay alone)."""
        if hasattr(panel, attribute):
            setattr(panel, attribute, self._guard(panel, callback))

    def _guard(self, panel: Any, callback: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any) -> Any:
            try:
                return callback(*args)
            except Exception as exc:
                if not isinstance(exc, EiqError):
                    log.exception("a Portal hand-off failed")
                (panel if isinstance(panel, Panel) else self).fail(exc)
                return None

        return call

    def _wire(self, name: str, panel: Any) -> None:
        content = ("curator", "annotator", "augmentation", "model", "training", "validation", "export")
        if name == "home":
            panel.on_project = self.open_project  # unguarded: Home shows the refusal and keeps its project
            panel.check_open = self.check_idle
            self._set(panel, "on_import", lambda: self.show("import"))
            if self._tool_class("model_tool") is not None:
                self._set(panel, "on_model_tool", lambda: self.show_tool("model_tool"))
        elif name == "import":
            self._set(panel, "on_imported", lambda reports: self._refresh_later(*content))
        elif name == "curator":
            self._set(panel, "on_open_image", self._annotate)
            self._set(panel, "on_augmentation", lambda: self.show("augmentation"))
        elif name == "annotator":
            self._set(panel, "on_change", lambda image_id: self._refresh_later("curator"))
        elif name == "augmentation":
            self._set(panel, "on_use", lambda pipeline: self._refresh_later("training"))
        elif name == "model":
            self._set(panel, "on_selected", self._train_with)
            self._set(panel, "on_restore", self._restore)
        elif name == "training":
            self._set(panel, "on_trained", self._validate)
        elif name == "validation":
            self._set(panel, "on_deploy", self._deploy)
        elif name == "devices":
            self._set(panel, "on_changed", lambda: self._refresh_later("validation"))
        elif name == "export" and self._tool_class("model_tool") is not None:
            self._set(panel, "on_open_model", lambda path: self.show_tool("model_tool", path))

    # -- hand-offs ------------------------------------------------------------------------------

    @staticmethod
    def _tool_class(name: str) -> type | None:
        """The class of a tool outside the workspaces (the Model Tool, the plug-ins), None if not installed."""
        module, cls = TOOLS[name]
        try:
            return getattr(importlib.import_module(f"{__package__}.{module}"), cls)
        except (ImportError, AttributeError):
            return None

    def show_tool(self, name: str, path: str | os.PathLike | None = None) -> w.Widget:
        """Show a tool outside the workspaces in the body: ``"model_tool"`` (on `path` when given) or ``"plugins"``.

        The tool is built once and kept (the Model Tool opens each new path in the same view).

        Raises:
            EiqError: the tool is not installed, or could not open (the reason is named).
        """
        cls = self._tool_class(name)
        if cls is None:
            raise EiqError(f"the {name.replace('_', ' ')} (eiq_lab/widgets/{TOOLS[name][0]}.py) is not available here")
        tool = self.tools.get(name)
        try:
            if tool is None:
                tool = cls(path) if path is not None else cls()
                self.tools[name] = tool
            elif path is not None:
                tool.open_model(path)
        except Exception as exc:
            if not isinstance(exc, EiqError):
                log.exception("opening the %s failed", name)
            raise EiqError(f"the {name.replace('_', ' ')} could not open: {describe_error(exc)}") from None
        self.body.children = [tool]
        self._switching = True
        try:
            self.workspaces.value = None  # no workspace is shown
        finally:
            self._switching = False
        return tool

    def _annotate(self, image_id: int) -> None:
        annotator = self.show("annotator")
        if callable(getattr(annotator, "refresh_labels", None)):
            annotator.refresh_labels()  # labels added elsewhere since it was built
        if callable(getattr(annotator, "show_image", None)):
            annotator.show_image(image_id)

    def _train_with(self, settings: Any = None) -> None:
        self._refresh_later("training")
        self.show("training")

    def _restore(self, run: int, epoch: int) -> None:
        training = self.show("training")
        if callable(getattr(training, "restore", None)):
            training.restore(run, epoch)

    def _validate(self, run: int) -> None:
        """A run to validate: a click (Validate) opens it in Validation; a run that just finished (reported from
        the training thread) only makes Validation show it next time, so the page never jumps away from the chart.
        """
        self._refresh_later("export", "model")
        if threading.current_thread() is not threading.main_thread():
            self._refresh_later("validation")
            return
        self._stale.discard("validation")  # refreshed just below, on the run
        validation = self.show("validation")
        if callable(getattr(validation, "refresh", None)):
            validation.refresh(run)

    def _deploy(self, run: int | None, report: Any) -> None:
        self.panels.pop("export", None)
        self._stale.discard("export")
        self.panels["export"] = (
            self._build("export", run=run, report=report) if run is not None else self.panel("export")
        )
        self.show("export")
