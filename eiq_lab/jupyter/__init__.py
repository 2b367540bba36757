"""eiq-lab's Jupyter server extension: the endpoints the JupyterLab extension (labextension/) calls to write the
notebooks its buttons open. Enabled by ``etc/jupyter/jupyter_server_config.d/eiq_lab.json`` in the wheel.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "eiq_lab.jupyter"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import handlers

    web_app = serverapp.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("eiq-lab: /eiq-lab/notebooks and /eiq-lab/saved-models ready")
