"""Validation of a model where it runs (eiq-validator): reference .npz files, their comparison with a model's
outputs on this host or on ModelRunners, image top-n and boxes, and a project's test group.

Heavy modules (TensorFlow, LiteRT, ONNX Runtime, the runner's client) load on first use.
"""

from __future__ import annotations

from typing import Any

_EXPORTS = {
    "Reference": "reference",
    "make_reference": "reference",
    "Tolerance": "compare",
    "ValidationReport": "compare",
    "validate": "compare",
    "classify_images": "images",
    "validate_project": "dataset",
    "open_local": "local",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'eiq_lab.validate' has no attribute {name!r}")
    from importlib import import_module

    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
