"""Extension storage (the guide's `projectState` and `globalState`): keys(), get(key, default) and
update(key, value), JSON values, kept in the project file or in the user's data folder.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..files import write_atomic


def _encoded(key: str, value: Any) -> str:
    if not isinstance(key, str) or not key:
        raise InputError(f"a storage key must be a non-empty string; received {key!r}")
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        hint = "store JSON data: numbers, text, lists, dicts"
        raise InputError(f"value of {key!r} cannot be stored: {exc} ({hint})") from None


class Storage(ABC):
    """Key-value storage of one extension."""

    @abstractmethod
    def keys(self) -> list[str]:
        """The stored keys, sorted."""

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """The value of `key`, or `default` when it is not stored."""

    @abstractmethod
    def update(self, key: str, value: Any) -> None:
        """Store `value` under `key`; ``None`` removes the key (the guide's ``undefined``)."""


class ProjectState(Storage):
    """Storage in the open project (its meta table, under ``ext.<extension>.``): travels with the project file."""

    def __init__(self, project: Any, extension: str):
        self.project, self.prefix = project, f"ext.{extension}."

    def keys(self) -> list[str]:
        return sorted(k[len(self.prefix) :] for k in self.project.meta_keys(self.prefix))

    def get(self, key: str, default: Any = None) -> Any:
        text = self.project.get_meta(self.prefix + key)
        return default if text is None else json.loads(text)

    def update(self, key: str, value: Any) -> None:
        self.project.set_meta(self.prefix + key, None if value is None else _encoded(key, value))


class GlobalState(Storage):
    """Storage of the user, across projects: ``$EIQ_HOME/extensions/<extension>/state.json``, written atomically."""

    def __init__(self, extension: str, home: Path | None = None):
        from ..convert.environments import home as eiq_home

        self.path = (home or eiq_home()) / "extensions" / extension / "state.json"

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            fix = "delete it to reset this extension's storage"
            raise InputError(f"{self.path} is not valid JSON ({exc}); {fix}") from None

    def keys(self) -> list[str]:
        return sorted(self._load())

    def get(self, key: str, default: Any = None) -> Any:
        return self._load().get(key, default)

    def update(self, key: str, value: Any) -> None:
        data = self._load()
        if value is None:
            data.pop(key, None)
        else:
            _encoded(key, value)
            data[key] = value
        write_atomic(self.path, json.dumps(data, indent=1, sort_keys=True).encode("utf-8"))
