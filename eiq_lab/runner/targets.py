"""The remote devices list (the guide's "Remote devices" / "Manage Targets"): named ModelRunner URIs kept in the
user's config, ``$EIQ_HOME/targets.json``, each optionally marked for profiling; and a reachability test.

The file is rewritten whole through a temporary file, so an interrupted edit never leaves it half-written.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import EiqError, InputError, NotFoundError

FILE_NAME = "targets.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


@dataclass(frozen=True)
class Target:
    """One remote device: its name, the runner's base URI and whether it is used for profiling."""

    name: str
    uri: str
    profile: bool = False


def targets_path() -> Path:
    """The targets file: ``$EIQ_HOME/targets.json`` (``EIQ_HOME`` defaults to ``~/.local/share/eiq-lab``)."""
    from ..convert.environments import home

    return home() / FILE_NAME


def check_name(name: str) -> str:
    """A valid target name (letters, digits, ``.``, ``_``, ``-``; up to 64; starting with a letter or digit).

    Raises:
        InputError: the name is not valid.
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InputError(
            f"a target name is 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (board-1); "
            f"received {name!r}"
        )
    return name


def list_targets() -> list[Target]:
    """The saved targets, in the order they were added.

    Raises:
        InputError: the targets file is not one this code wrote (it is named, with the fix).
    """
    path = targets_path()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise InputError(f"targets file {path} cannot be read ({exc}); fix it or delete it to start afresh") from None
    try:
        return [
            Target(check_name(t["name"]), str(t["uri"]), bool(t.get("profile", False))) for t in document["targets"]
        ]
    except (KeyError, TypeError, InputError) as exc:
        raise InputError(
            f"targets file {path} is not a targets list ({exc}); fix it or delete it to start afresh"
        ) from None


def _save(targets: list[Target]) -> None:
    from ..files import write_atomic

    text = json.dumps({"version": 1, "targets": [asdict(t) for t in targets]}, indent=2) + "\n"
    write_atomic(targets_path(), text.encode("utf-8"))


def get_target(name: str) -> Target:
    """The saved target called `name`.

    Raises:
        NotFoundError: no such target (the message lists the saved ones).
    """
    targets = list_targets()
    for target in targets:
        if target.name == name:
            return target
    known = ", ".join(t.name for t in targets) or "none saved yet (eiq targets add NAME URI)"
    raise NotFoundError(f"no target named {name!r}; targets: {known}")


def add_target(name: str, uri: str, *, profile: bool = False, replace: bool = False) -> Target:
    """Save a target; its URI is stored complete (``host:port`` -> ``http://host:port/v1``).

    Raises:
        InputError: a bad name or URI, or the name exists and `replace` is False.
    """
    from .client import normalize_uri

    target = Target(check_name(name), normalize_uri(uri), bool(profile))
    targets = list_targets()
    existing = [i for i, t in enumerate(targets) if t.name == name]
    if existing and not replace:
        raise InputError(
            f"a target named {name!r} exists ({targets[existing[0]].uri}); replace it with --replace "
            "(replace=True) or choose another name"
        )
    if existing:
        targets[existing[0]] = target
    else:
        targets.append(target)
    _save(targets)
    return target


def remove_target(name: str) -> Target:
    """Forget a target; returns it.

    Raises:
        NotFoundError: no such target.
    """
    target = get_target(name)
    _save([t for t in list_targets() if t.name != name])
    return target


def resolve_uri(name_or_uri: str) -> str:
    """A saved target's URI, or `name_or_uri` completed as a URI when no target has that name."""
    from .client import normalize_uri

    if _NAME.match(name_or_uri or ""):
        for target in list_targets():
            if target.name == name_or_uri:
                return target.uri
    return normalize_uri(name_or_uri)


def probe_target(name: str, timeout: float = 5.0) -> dict[str, Any]:
    """Ask a saved target's runner who it is (``GET /v1``, then ``/v1/model`` for the model's name).

    Returns:
        ``{"name", "uri", "profile", "reachable", "engine", "version", "model", "labels", "reason"}``;
        `reason` says why an unreachable target failed (None when reachable).

    Raises:
        NotFoundError: no such target.
    """
    from .client import ModelClient

    target = get_target(name)
    result: dict[str, Any] = {**asdict(target), "reachable": False, "engine": None, "version": None, "model": None,
                              "labels": [], "reason": None}  # fmt: skip
    client = ModelClient(target.uri, timeout=timeout)
    try:
        info = client.info()
        if not isinstance(info, dict) or "engine" not in info:
            raise EiqError(f"{target.uri} answered, but not as a model runner (no engine in its reply)")
        result.update(reachable=True, engine=info.get("engine"), version=info.get("version"))
        model = info.get("model") or {}
        result["labels"] = list(model.get("labels") or [])
        result["model"] = model.get("name")
        if result["model"] is None:  # a runner that names its model only in its description
            try:
                result["model"] = client.get_model_name() or None
            except EiqError:
                result["model"] = None  # reachable, but no model loaded yet
    except EiqError as exc:
        result["reason"] = str(exc)
    finally:
        client.close()
    return result
