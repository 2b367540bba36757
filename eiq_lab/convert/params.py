"""Converter parameters as plugins read them (../shared/INTERFACES.md, "Converter plugins"): one dict of
string keys, read with hyphens and underscores alike, values typed on the way out.

Existing plugins receive ``params`` with keys such as ``quant_channel``, ``onnx-opset`` or
``input-model-type``; `Params` lets built-in and third-party code read ``params.get("onnx_opset")``
whatever spelling the caller used, and turns the CLI's strings into ints, floats, bools and lists.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import InputError

_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off", ""}


def key(name: str) -> str:
    """The canonical spelling of a parameter name: lower case, underscores (``onnx-opset`` -> ``onnx_opset``)."""
    return name.strip().lstrip("-").replace("-", "_").lower()


class Params(Mapping[str, Any]):
    """A read-only view of converter parameters whose keys match in any spelling.

    Example:
        >>> p = Params({"onnx-opset": "13", "quant_channel": "false"})
        >>> p.int("onnx_opset"), p.bool("quant-channel", True)
        (13, False)
    """

    def __init__(self, values: Mapping[str, Any] | None = None, **more: Any):
        self._values: dict[str, Any] = {}
        for name, value in {**dict(values or {}), **more}.items():
            self._values[key(name)] = value

    def __getitem__(self, name: str) -> Any:
        return self._values[key(name)]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and key(name) in self._values

    def get(self, name: str, default: Any = None) -> Any:
        value = self._values.get(key(name), default)
        return default if value is None else value

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name, default)
        return None if value is None else str(value)

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.get(name, default)
        if value is None or isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError:
            raise InputError(f"parameter {key(name)} must be a whole number; received {value!r}") from None

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.get(name, default)
        if value is None or isinstance(value, float):
            return value
        try:
            return float(str(value).strip())
        except ValueError:
            raise InputError(f"parameter {key(name)} must be a number; received {value!r}") from None

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.get(name, default)
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise InputError(f"parameter {key(name)} must be true or false; received {value!r}")

    def list(self, name: str) -> list[str]:
        """A comma-separated value (or a list) as a list of non-empty, stripped strings."""
        value = self.get(name)
        if value is None:
            return []
        items = value if isinstance(value, (list, tuple)) else str(value).split(",")
        return [str(item).strip() for item in items if str(item).strip()]

    def shape(self, name: str) -> list[int] | None:
        """A shape such as ``1,224,224,3`` (or a list of ints); None when absent.

        Raises:
            InputError: a part is not a positive whole number.
        """
        parts = self.list(name)
        if not parts:
            return None
        try:
            shape = [int(p) for p in parts]
        except ValueError:
            shape = []
        if not shape or any(d <= 0 for d in shape):
            raise InputError(
                f"parameter {key(name)} must be positive whole numbers like 1,224,224,3; received {self.get(name)!r}"
            )
        return shape

    def to_dict(self) -> dict[str, Any]:
        """The parameters with canonical keys (what an out-of-process plugin receives as JSON)."""
        return dict(self._values)
