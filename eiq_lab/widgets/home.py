"""The Portal's Home: create or open a project (recent ones remembered in the user's config), import a dataset,
open the Model Tool, and a command line (a JupyterLab terminal when the server has them, else the commands).
"""

from __future__ import annotations

import html
import json
import os
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..errors import InputError
from ..project import PROJECT_SUFFIXES, Project, create_project, open_project
from ..project.recent import recent_projects, remember_project
from .base import Panel
from .contributions import contributions

_COMMANDS = """<div class='eiq-home-commands'>Run eiq-lab from a shell in <code>{where}</code>:
<pre style='margin:4px 0'>eiq project info {project}
eiq import folders DATASET_FOLDER --project {project}
eiq-importer -list VOC_DATASET.tar
eiq train --project {project} --help
eiq --help</pre></div>"""


class JupyterServer:
    """The Jupyter server this kernel runs under (from its runtime file), for starting a terminal there.

    Args:
        info: the server's runtime record (``url``, ``base_url``, ``token``, ``pid``, ``root_dir``).
    """

    def __init__(self, info: dict[str, Any]):
        self.url = str(info["url"]).rstrip("/") + "/"
        self.base_url = str(info.get("base_url") or "/")
        self.token = str(info.get("token") or "")
        self.root_dir = Path(info.get("root_dir") or ".")

    @classmethod
    def find(cls) -> JupyterServer | None:
        """The server that started this process (its ``jpserver-<pid>.json``), or None (Voila, plain Python)."""
        try:
            from jupyter_core.paths import jupyter_runtime_dir
        except ImportError:
            return None
        parent = os.getppid()
        path = Path(jupyter_runtime_dir()) / f"jpserver-{parent}.json"
        try:
            return cls(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError):
            return None

    def _request(self, method: str, api: str, body: dict | None = None, timeout: float = 3.0) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + api, data=data, method=method)
        request.add_header("Authorization", f"token {self.token}")
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            text = reply.read()
        return json.loads(text) if text else None

    def has_terminals(self) -> bool:
        """Whether the server serves terminals (its ``api/terminals`` answers)."""
        try:
            self._request("GET", "api/terminals")
        except (urllib.error.URLError, OSError, ValueError):
            return False
        return True

    def open_terminal(self, cwd: Path) -> str:
        """Start a terminal in `cwd` and save a JupyterLab workspace showing it; return the page that opens it."""
        try:
            relative = str(Path(cwd).resolve().relative_to(self.root_dir.resolve()))
        except ValueError:
            relative = ""
        name = self._request("POST", "api/terminals", {"cwd": relative} if relative not in ("", ".") else {})["name"]
        workspace = f"eiq-terminal-{name}"
        layout = {
            "main": {"dock": {"type": "tab-area", "currentIndex": 0, "widgets": [f"terminal:{name}"]}},
            "current": f"terminal:{name}",
        }
        self._request(
            "PUT",
            f"lab/api/workspaces/{workspace}",
            {
                "data": {"layout-restorer:data": layout, f"terminal:{name}": {"data": {"name": name}}},
                "metadata": {"id": workspace},
            },
        )
        return f"{self.base_url.rstrip('/')}/lab/workspaces/{workspace}"


def project_file(text: str, workspace: Path) -> Path:
    """The project file a user means by `text`: relative to `workspace`, ``.eiqp`` added when no suffix is given.

    Raises:
        InputError: empty, or a suffix other than .eiqp / .deepview.
    """
    text = text.strip()
    if not text:
        raise InputError("type a project file name first, e.g. flowers.eiqp")
    path = Path(text).expanduser()
    if not path.is_absolute():
        path = workspace / path
    if path.suffix == "":
        path = path.with_suffix(".eiqp")
    if path.suffix.lower() not in PROJECT_SUFFIXES:
        raise InputError(f"a project file ends in .eiqp or .deepview; received {path.name}")
    return path


class Home(Panel):
    """Create or open a project, import a dataset, open the Model Tool, a command line.

    Args:
        workspace: the folder where relative project names live and new projects are created.
        project: a project already open (its name shows as the current one).

    Callbacks (set by the Portal; alone, Home shows the Importer below itself and hides the Model Tool button):
        on_project(project): a project was created or opened.
        on_import(): the user asked to import a dataset.
        on_model_tool(): the user asked for the Model Tool (the button shows only when this is set).
        check_open(): called before a project is created or opened; raises to refuse (work still running).

    Example:
        >>> home = Home(workspace=".")          # doctest: +SKIP
        >>> home.on_project = print             # doctest: +SKIP
    """

    title = "Home"

    def __init__(self, workspace: str | os.PathLike = ".", project: Project | None = None, *, extensions: Any = None):
        self.workspace = Path(workspace).expanduser().resolve()
        self.project: Project | None = project
        # the guide's home/tools location: extensions' buttons beside the tools
        self.contributions = contributions(project, "home/tools", extensions)
        self.on_project: Callable[[Project], Any] | None = None
        self.on_import: Callable[[], Any] | None = None
        self.check_open: Callable[[], Any] | None = None
        self._on_model_tool: Callable[[], Any] | None = None
        self._server: JupyterServer | None = None

        self.path = w.Text(placeholder="my_project.eiqp", description="Project", layout=w.Layout(width="420px"))
        self.path.add_class("eiq-home-path")
        self.create_button = self._button("Create project", "eiq-home-create", "primary", self._create, "plus")
        self.open_button = self._button("Open project", "eiq-home-open", "", self._open, "folder-open")
        self.recent = w.Select(options=[], rows=5, description="Recent", layout=w.Layout(width="620px"))
        self.recent.add_class("eiq-home-recent")
        self.open_recent_button = self._button("Open selected", "eiq-home-open-recent", "", self._open_recent, "")
        self.import_button = self._button("Import dataset", "eiq-home-import", "", self._import, "download")
        self.model_tool_button = self._button("Model Tool", "eiq-home-model-tool", "", self._model_tool, "sitemap")
        self.model_tool_button.layout.display = "none"
        self.terminal_button = self._button("Command line", "eiq-home-terminal", "", self._terminal, "terminal")
        self.terminal = w.HTML("")
        self.terminal.add_class("eiq-home-terminal-view")
        self.current = w.HTML("")
        self.current.add_class("eiq-home-current")
        self.below = w.VBox([])  # alone: the Importer opens here
        super().__init__(
            [
                w.HTML(f"<div>Workspace: <code>{html.escape(str(self.workspace))}</code></div>"),
                w.HBox([self.path, self.create_button, self.open_button]),
                w.HBox([self.recent, self.open_recent_button]),
                self.current,
                w.HBox([self.import_button, self.model_tool_button, self.terminal_button, self.contributions]),
                self.terminal,
                self.below,
            ]
        )
        self.add_class("eiq-home")
        self.refresh_recent()
        self._show_current()

    def _button(self, text: str, css: str, style: str, action: Callable[[], Any], icon: str) -> w.Button:
        button = w.Button(description=text, button_style=style, icon=icon, layout=w.Layout(width="auto"))
        button.add_class(css)
        button.on_click(self.guarded(lambda _: action()))
        return button

    # -- callbacks ------------------------------------------------------------------------------

    @property
    def on_model_tool(self) -> Callable[[], Any] | None:
        return self._on_model_tool

    @on_model_tool.setter
    def on_model_tool(self, callback: Callable[[], Any] | None) -> None:
        self._on_model_tool = callback
        self.model_tool_button.layout.display = None if callback is not None else "none"

    # -- projects -------------------------------------------------------------------------------

    def refresh_recent(self) -> None:
        """List the recent projects, then the other projects found in the workspace folder."""
        paths = recent_projects()
        try:
            found = sorted(p.resolve() for s in PROJECT_SUFFIXES for p in self.workspace.glob(f"*{s}") if p.is_file())
        except OSError:
            found = []
        paths += [p for p in found if p not in paths]
        self.recent.options = [(self._shown(p), str(p)) for p in paths]

    def _shown(self, path: Path) -> str:
        try:
            return f"{path.name}  ({path.parent.relative_to(self.workspace) or '.'})"
        except ValueError:
            return f"{path.name}  ({path.parent})"

    def _may_open(self) -> None:
        if self.check_open is not None:
            self.check_open()

    def _create(self) -> None:
        path = project_file(self.path.value, self.workspace)
        self._may_open()
        self._opened(create_project(path), "created")

    def _open(self) -> None:
        path = project_file(self.path.value, self.workspace)
        self._may_open()
        self._opened(open_project(path), "opened")

    def _open_recent(self) -> None:
        if not self.recent.value:
            raise InputError("choose a project in the list first (create one if the list is empty)")
        self._may_open()
        self._opened(open_project(self.recent.value), "opened")

    def open_path(self, path: str | os.PathLike) -> Project:
        """Open the project at `path` as if the user had typed it and clicked Open project.

        Raises:
            ProjectError: no such project, or not a project file.
        """
        target = project_file(str(path), self.workspace)
        self._may_open()
        project = open_project(target)
        self._opened(project, "opened")
        return project

    def _opened(self, project: Project, verb: str) -> None:
        if self.on_project is not None:
            try:
                self.on_project(project)  # the Portal may refuse (a panel still working on the current one)
            except BaseException:
                project.close()
                raise
        self.project = project
        remember_project(project.path)
        self.refresh_recent()
        self.path.value = ""
        self.below.children = []
        self._show_current()
        images = project.count_images()
        self.say(f"{verb} {project.path.name}: {images} image(s)", "ok")

    def show_project(self, project: Project | None) -> None:
        """Show `project` as the current one (the Portal opened it elsewhere)."""
        self.project = project
        if self.contributions.extensions.project is not project:
            self.contributions.extensions.project = project
        self.contributions.refresh()
        self._show_current()

    def _show_current(self) -> None:
        if self.project is None:
            self.current.value = "<i>No project open: create one or open one.</i>"
        else:
            name = html.escape(self.project.path.name)
            self.current.value = f"Current project: <b class='eiq-home-project-name'>{name}</b>"

    # -- other actions --------------------------------------------------------------------------

    def _import(self) -> None:
        if self.project is None:
            raise InputError("create or open a project first; the dataset is imported into it")
        if self.on_import is not None:
            self.on_import()
            return
        from .importer import Importer

        self.below.children = [Importer(self.project, workspace=self.workspace)]

    def _model_tool(self) -> None:
        if self._on_model_tool is not None:
            self._on_model_tool()

    def _terminal(self) -> None:
        if self._server is None:
            self._server = JupyterServer.find()
        if self._server is not None and self._server.has_terminals():
            link = self._server.open_terminal(self.workspace)
            self.terminal.value = (
                f"<a class='eiq-home-terminal-link' href='{html.escape(link)}' target='_blank'>"
                "Open the terminal (a new JupyterLab tab)</a>"
            )
            return
        project = self.project.path.name if self.project is not None else "my_project.eiqp"
        self.terminal.value = (
            "<div>This page has no terminal (Voila, or a server without terminals).</div>"
            + _COMMANDS.format(where=html.escape(str(self.workspace)), project=html.escape(project))
        )
