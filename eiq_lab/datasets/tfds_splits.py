"""TFDS split expressions: the guide's forms ("60%", "100", "200:300", a split name with a slice,
parts joined with +) parsed into split parts and into TFDS split strings."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

SPLIT_FORMS = (
    "a percentage (60%), a count from the start (100), a range (200:300 or 10%:20%), "
    "or a split name with an optional slice (validation, test[:50%], train[200:300]); "
    "join parts with + (train+validation)"
)

_NAMED = re.compile(r"^(?P<name>[A-Za-z_][\w-]*)(?:\[(?P<sel>[^\]]*)\])?$")
_BOUND = re.compile(r"^(?:(?P<pct>\d+(?:\.\d+)?)%|(?P<abs>\d+))$")


@dataclass(frozen=True)
class SplitPart:
    """One split with a selection: [start:stop), in examples or percent (``None``: open end)."""

    split: str | None  # None: a bare expression on a side the dataset has no split for
    start: float | None = None
    stop: float | None = None
    percent: bool = False

    def text(self) -> str:
        if self.start is None and self.stop is None:
            return self.split
        if self.percent and not self.start and self.stop == 100:
            return self.split
        unit = "%" if self.percent else ""
        start = "" if not self.start else f"{self.start:g}{unit}"
        stop = "" if self.stop is None else f"{self.stop:g}{unit}"
        return f"{self.split}[{start}:{stop}]"

    def bounds(self, num_examples: int) -> tuple[int, int]:
        """[first, last) as example indices, rounded as TFDS rounds percentages, within the split."""

        def absolute(value: float | None, default: int) -> int:
            if value is None:
                return default
            if self.percent:
                return round(value * num_examples / 100.0)  # as TFDS: nearest, ties to even
            return int(value)

        first = min(absolute(self.start, 0), num_examples)
        return first, max(first, min(absolute(self.stop, num_examples), num_examples))

    def asks_for_some(self) -> bool:
        """False when the expression itself selects nothing ("0", "0%", "5:5")."""
        return (self.stop is None) or (self.stop > (self.start or 0))


def _bad_split(expr: Any, why: str = "") -> InputError:
    return InputError(f"bad split expression {expr!r}{why}; use {SPLIT_FORMS}")


def _parse_selection(expr: str, selection: str, split: str | None) -> SplitPart:
    if ":" not in selection:
        match = _BOUND.match(selection)
        if not match:
            raise _bad_split(expr)
        start, stop, percent = None, selection, match["pct"] is not None
    else:
        start, _, stop = selection.partition(":")
        if ":" in stop:
            raise _bad_split(expr)
        start, stop = start or None, stop or None
        units = set()
        for bound in (start, stop):
            if bound is not None:
                match = _BOUND.match(bound)
                if not match:
                    raise _bad_split(expr)
                units.add(match["pct"] is not None)
        if len(units) > 1:
            raise _bad_split(expr, " (both ends of a range must be counts, or both percentages)")
        percent = units == {True}
    values = [None if b is None else float(b.rstrip("%")) for b in (start, stop)]
    if percent and any(v is not None and v > 100 for v in values):
        raise _bad_split(expr, " (a percentage is at most 100%)")
    if values[0] is not None and values[1] is not None and values[0] > values[1]:
        raise _bad_split(expr, " (the range starts after it ends)")
    return SplitPart(split, values[0], values[1], percent)


def split_parts(expr: Any, default_split: str | None) -> list[SplitPart]:
    """The parts of a split expression (see `parse_split`), one per ``+``-joined piece.

    Args:
        expr: the expression.
        default_split: the split a bare percentage, count or range applies to (``None``: none).

    Returns:
        The `SplitPart` of each piece, in order.

    Raises:
        InputError: the expression has none of the accepted forms.
    """
    if not isinstance(expr, (str, int)) or isinstance(expr, bool):
        raise _bad_split(expr)
    text = re.sub(r"\s+", "", str(expr))
    if not text:
        raise _bad_split(expr)
    parts = []
    for piece in text.split("+"):
        named = _NAMED.match(piece)
        if named:
            sel = named["sel"]
            if sel is None:
                parts.append(SplitPart(named["name"]))
            elif sel == "":
                raise _bad_split(expr)
            else:
                parts.append(_parse_selection(expr, sel, named["name"]))
        else:
            parts.append(_parse_selection(expr, piece, default_split))
    return parts


def parse_split(expr: str | int, default_split: str = "train") -> str:
    """Turn the guide's split expression into a TFDS split string.

    Args:
        expr: ``"60%"`` (share of the split), ``"100"`` (first 100), ``"200:300"`` (a range; ends
            may be percentages, ``"10%:20%"``), or a split name with an optional slice
            (``"validation"``, ``"test[10%:20%]"``); parts may be joined with ``+``.
        default_split: the split a bare percentage, count or range applies to.

    Returns:
        The TFDS split, e.g. ``"train[:60%]"``; the whole split (``"100%"``) is just its name.

    Raises:
        InputError: the expression has none of the accepted forms.

    Example:
        >>> parse_split("60%", "train"), parse_split("200:300", "test"), parse_split("100%", "train")
        ('train[:60%]', 'test[200:300]', 'train')
    """
    return "+".join(part.text() for part in split_parts(expr, default_split))
