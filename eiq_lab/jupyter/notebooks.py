"""The notebooks the JupyterLab extension opens (Home, Portal, Model Tool, Plugins): their names, where they go
and their cells, built here so a pip-installed user gets them without the repository's notebooks/ folder.
"""

from __future__ import annotations

import posixpath
from importlib import resources
from typing import Any

from ..errors import InputError

#: the kinds of notebook the extension asks for, with the title of their first (markdown) cell
KINDS: dict[str, str] = {
    "home": "eIQ project",
    "portal": "eIQ Portal",
    "modeltool": "eIQ Model Tool",
    "plugins": "eIQ Plug-ins",
}
#: model files the Model Tool opens (a SavedModel is a folder holding `SAVED_MODEL_FILE`)
MODEL_SUFFIXES: tuple[str, ...] = (".tflite", ".onnx", ".h5", ".keras", ".pb")
SAVED_MODEL_FILE = "saved_model.pb"


def check_kind(kind: str) -> str:
    """`kind` if it is one of `KINDS`.

    Raises:
        InputError: an unknown kind (the message lists the valid ones).
    """
    if kind not in KINDS:
        raise InputError(f"unknown notebook kind {kind!r}; kinds: {', '.join(KINDS)}")
    return kind


def is_model_file(path: str) -> bool:
    """Whether `path` names a model file the Model Tool opens (by its suffix, case-insensitive)."""
    return path.lower().endswith(MODEL_SUFFIXES)


def notebook_path(kind: str, *, directory: str = "", model: str | None = None, number: int = 0) -> str:
    """Where the notebook of `kind` goes, as a Jupyter contents path ('/'-separated, relative to the server root).

    The Portal, Plugins and the Model Tool without a model live at the root and are reused; a Model Tool for a
    model sits beside the model; a Home notebook is new each time, in `directory`, numbered from 1 when
    `number` > 0 so it never replaces an earlier one.

    Args:
        kind: one of `KINDS`.
        directory: the folder for a Home notebook (the file browser's folder).
        model: the model file or SavedModel folder (contents path) for a Model Tool notebook.
        number: the Home notebook's number (0: none).

    Returns:
        The contents path of the notebook.
    """
    check_kind(kind)
    if kind == "home":
        name = f"{KINDS['home']} {number}.ipynb" if number else f"{KINDS['home']}.ipynb"
        return posixpath.join(directory.strip("/"), name)
    if kind == "modeltool" and model:
        folder, name = posixpath.split(model.strip("/"))
        return posixpath.join(folder, f"{name} - Model Tool.ipynb")
    return f"{KINDS[kind]}.ipynb"


def notebook_content(kind: str, *, model: str | None = None) -> dict[str, Any]:
    """The nbformat 4 notebook (a JSON-ready dict) for `kind`: a markdown title cell (not for the Portal, which
    Voila shows whole) and the panel's code cell.

    Args:
        kind: one of `KINDS`.
        model: for ``"modeltool"``, the model's contents path; the code names it relative to the notebook (which
            sits beside it), because a kernel starts in its notebook's folder.

    Returns:
        The notebook as a dict (``nbformat``'s structure, validated).
    """
    import nbformat

    check_kind(kind)
    model_argument = ""
    if kind == "home":
        intro = "Create a project or open a recent one; the steps of the Portal open from here."
    elif kind == "portal":
        intro = ""  # Voila shows markdown cells, and the Portal has its own title bar: one code cell
    elif kind == "modeltool" and model:
        name = posixpath.basename(model.strip("/"))
        intro = f"`{name}`: its graph, layers and weights; convert it or profile it on a target."
        model_argument = repr(name)
    elif kind == "modeltool":
        intro = "Open a model file (Keras, SavedModel, TFLite, ONNX): its graph, layers and weights."
    else:
        intro = "The converter plug-ins, their readiness, and installing or removing them."
    # the code cells are package data (cells/KIND.cell): text of the notebook, not code of this module
    template = resources.files(__package__).joinpath("cells", f"{kind}.cell").read_text(encoding="utf-8")
    code = template.replace("{model}", model_argument).rstrip("\n")
    cells = [nbformat.v4.new_markdown_cell(f"# {KINDS[kind]}\n\n{intro}")] if intro else []
    notebook = nbformat.v4.new_notebook(
        cells=[*cells, nbformat.v4.new_code_cell(code)],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"},
            "language_info": {"name": "python"},
        },
    )
    nbformat.validate(notebook)
    return nbformat.from_dict(notebook)
