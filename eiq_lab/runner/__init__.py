"""The ModelRunner: an HTTP server running models on this host (LiteRT, ONNX Runtime, Vela's estimate), and
the ModelClient that talks to it (or to any runner speaking the eIQ protocol).
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelClient"]


def __getattr__(name: str) -> Any:
    # the client imports requests: load it on first use so `import eiq_lab.runner` stays light
    if name == "ModelClient":
        from .client import ModelClient

        return ModelClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
