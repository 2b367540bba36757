"""Jupyter panels (ipywidgets, bqplot, jupyter-bbox-widget), one module each, usable alone in any notebook, and the
Portal that chains them. Panels call the engine; they hold no state of their own that the project does not.

Example:
    >>> from eiq_lab.project import open_project
    >>> from eiq_lab.widgets import Curator
    >>> Curator(open_project("p.eiqp"))      # last expression of a cell: the panel shows
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import NotFoundError

# panel name -> (module, class); one lookup for the Portal, the command line and extensions
PANELS: dict[str, tuple[str, str]] = {
    "home": ("home", "Home"),
    "import": ("importer", "Importer"),
    "curator": ("curator", "Curator"),
    "annotator": ("annotator", "Annotator"),
    "augmentation": ("augmentation", "Augmentation"),
    "model": ("model_selection", "ModelSelection"),
    "training": ("training", "Training"),
    "validation": ("validation", "Validation"),
    "export": ("export", "Export"),
    "devices": ("devices", "RemoteDevices"),
    "portal": ("portal", "Portal"),
    "model_tool": ("model_tool", "ModelTool"),
    "plugins": ("plugins", "Plugins"),
}

__all__ = [cls for _, cls in PANELS.values()] + ["PANELS", "panel_class"]


def panel_class(name: str) -> type:
    """The panel class registered as `name` (``"curator"``, ``"training"``, ...).

    Raises:
        NotFoundError: no panel has that name (the message lists the names).
    """
    try:
        module, cls = PANELS[name]
    except KeyError:
        raise NotFoundError(f"no panel named {name!r}; panels: {', '.join(sorted(PANELS))}") from None
    return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


def __getattr__(name: str) -> Any:
    # panels import ipywidgets and their engine parts on first use, so `import eiq_lab.widgets` stays light
    for module, cls in PANELS.values():
        if cls == name:
            return getattr(importlib.import_module(f"{__name__}.{module}"), cls)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
