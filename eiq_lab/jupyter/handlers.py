"""The eiq-lab Jupyter server endpoints the JupyterLab extension calls: write (or find) the notebook a button
opens, through the server's contents manager, and list the SavedModel folders of a directory.
"""

from __future__ import annotations

import json
import posixpath
from typing import Any

from jupyter_core.utils import ensure_async
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web

from ..errors import InputError
from .notebooks import KINDS, SAVED_MODEL_FILE, check_kind, is_model_file, notebook_content, notebook_path

try:  # jupyter_server >= 2: the contents permission, as the contents API itself checks it
    from jupyter_server.auth.decorator import authorized
except ImportError:  # pragma: no cover (jupyter_server 1 has authentication only)

    def authorized(method):
        return method


#: the Home notebooks are numbered up to this before the server gives up looking for a free name
_MAX_NUMBER = 1000


def _clean(path: str | None) -> str:
    """A contents path without leading/trailing slashes; '..' is refused (the contents API would refuse it too)."""
    path = (path or "").strip().strip("/")
    if any(part == ".." for part in path.split("/")):
        raise web.HTTPError(400, f"path {path!r} may not contain '..'")
    return path


class _Base(APIHandler):
    auth_resource = "contents"

    async def _exists(self, path: str, *, directory: bool = False) -> bool:
        cm = self.contents_manager
        return bool(await ensure_async(cm.dir_exists(path) if directory else cm.file_exists(path)))

    async def _is_saved_model(self, path: str) -> bool:
        return await self._exists(path, directory=True) and await self._exists(f"{path}/{SAVED_MODEL_FILE}")


class NotebooksHandler(_Base):
    """``POST /eiq-lab/notebooks`` with ``{"kind", "directory"?, "model"?}``: the notebook to open.

    Answers ``{"path": contents path, "created": bool}``. The Portal, Plugins and Model Tool notebooks are reused
    when they exist (a user's edits are kept); a Home notebook is new each time.
    """

    @web.authenticated
    @authorized
    async def post(self) -> None:
        body = self.get_json_body() or {}
        try:
            kind = check_kind(str(body.get("kind", "")))
        except InputError as exc:
            raise web.HTTPError(400, str(exc)) from None
        directory = _clean(body.get("directory"))
        model = _clean(body.get("model")) or None
        if kind == "home" and directory and not await self._exists(directory, directory=True):
            raise web.HTTPError(404, f"no folder {directory!r} on the server")
        if model is not None:
            if kind != "modeltool":
                raise web.HTTPError(400, f"a model is given only to the Model Tool, not to {kind!r}")
            await self._check_model(model)
        path = notebook_path(kind, directory=directory, model=model)
        if kind == "home":
            path = await self._free_home_path(directory)
        elif await self._exists(path):
            self.finish(json.dumps({"path": path, "created": False}))
            return
        content = notebook_content(kind, model=model)
        document: dict[str, Any] = {"type": "notebook", "format": "json", "content": content}
        await ensure_async(self.contents_manager.save(document, path))
        self.set_status(201)
        self.finish(json.dumps({"path": path, "created": True}))

    async def _check_model(self, model: str) -> None:
        if await self._exists(model):
            if not is_model_file(model):
                raise web.HTTPError(
                    400, f"{model!r} is not a model file the Model Tool opens (.tflite, .onnx, .h5, .keras, .pb)"
                )
        elif await self._exists(model, directory=True):
            if not await self._is_saved_model(model):
                raise web.HTTPError(400, f"folder {model!r} has no {SAVED_MODEL_FILE}: not a SavedModel")
        else:
            raise web.HTTPError(404, f"no model {model!r} on the server")

    async def _free_home_path(self, directory: str) -> str:
        for number in range(_MAX_NUMBER):
            path = notebook_path("home", directory=directory, number=number)
            if not await self._exists(path):
                return path
        raise web.HTTPError(409, f"{directory or 'the root folder'} already holds {_MAX_NUMBER} eIQ project notebooks")


class SavedModelsHandler(_Base):
    """``GET /eiq-lab/saved-models?path=DIR``: ``{"saved_models": [contents paths]}``, the folders directly in
    DIR that hold a ``saved_model.pb`` (the file browser offers "Open in eIQ Model Tool" on them)."""

    @web.authenticated
    @authorized
    async def get(self) -> None:
        directory = _clean(self.get_query_argument("path", ""))
        if not await self._exists(directory, directory=True):
            raise web.HTTPError(404, f"no folder {directory!r} on the server")
        listing = await ensure_async(self.contents_manager.get(directory, content=True, type="directory"))
        folders = [item["path"] for item in listing["content"] if item["type"] == "directory"]
        found = [path for path in folders if await self._exists(posixpath.join(path, SAVED_MODEL_FILE))]
        self.finish(json.dumps({"saved_models": sorted(found)}))


def handlers(base_url: str) -> list[tuple[str, type]]:
    """The URL routes of the endpoints under the server's `base_url`."""
    return [
        (url_path_join(base_url, "eiq-lab", "notebooks"), NotebooksHandler),
        (url_path_join(base_url, "eiq-lab", "saved-models"), SavedModelsHandler),
    ]


__all__ = ["KINDS", "NotebooksHandler", "SavedModelsHandler", "handlers"]
