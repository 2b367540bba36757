"""The parameters of augmentation operators: their kinds, defaults, limits and help, and checking.

A GUI builds its sliders from `Parameter` (kind, default, minimum, maximum, step); the CLI parses text with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError

#: The kinds of value a parameter takes.
KINDS = ("int", "float", "int_range", "float_range", "choice", "color")


@dataclass(frozen=True)
class Parameter:
    """One setting of an operator.

    Attributes:
        name: the key in a step's ``params`` (``"limit"``).
        title: the label the guide's Portal shows (``"Rotation Limit"``).
        kind: one of `KINDS`: ``"int"``/``"float"`` a number; ``"int_range"``/``"float_range"`` a
            ``[lower, upper]`` pair from which each image draws uniformly; ``"choice"`` an integer code
            from `choices` (its name is accepted too); ``"color"`` ``[red, green, blue]`` in 0..255.
        default: the value a new step gets.
        minimum: the smallest value (each bound of a range, each channel of a colour).
        maximum: the largest value.
        help: one or two sentences for tooltips and ``--help``.
        step: a slider's increment.
        choices: ``(code, name)`` pairs of a ``"choice"``.
    """

    name: str
    title: str
    kind: str
    default: Any
    minimum: float
    maximum: float
    help: str
    step: float = 1
    choices: tuple[tuple[int, str], ...] = ()

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"parameter {self.name}: kind must be one of {', '.join(KINDS)}; received {self.kind!r}")

    def to_dict(self) -> dict[str, Any]:
        """The description as JSON (for GUIs and ``eiq augment operators --json``)."""
        entry = {
            "name": self.name,
            "title": self.title,
            "kind": self.kind,
            "default": self.default,
            "min": self.minimum,
            "max": self.maximum,
            "step": self.step,
            "help": self.help,
        }
        if self.choices:
            entry["choices"] = {str(code): label for code, label in self.choices}
        return entry

    # -- checking ----------------------------------------------------------------------------

    def _fail(self, where: str, expected: str, value: Any) -> InputError:
        return InputError(f"{where}: {self.name} must be {expected}; received {value!r}")

    def _number(self, value: Any, where: str, integer: bool, what: str) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self._fail(where, f"{what} between {self.minimum:g} and {self.maximum:g}", value)
        if not math.isfinite(value) or (integer and value != int(value)):
            raise self._fail(where, f"{what} between {self.minimum:g} and {self.maximum:g}", value)
        number = int(value) if integer else float(value)
        if not self.minimum <= number <= self.maximum:
            raise self._fail(where, f"{what} between {self.minimum:g} and {self.maximum:g}", value)
        return number

    def check(self, value: Any, where: str = "") -> Any:
        """The value in its stored form (lists for ranges and colours), or an error.

        Args:
            value: a value of this parameter's kind.
            where: what the message names first (the operator, or a pipeline's step).

        Raises:
            InputError: of the wrong type, out of `minimum` .. `maximum`, a range with lower > upper,
                or an unknown choice.
        """
        where = where or self.name
        if self.kind in ("int", "float"):
            what = "an integer" if self.kind == "int" else "a number"
            return self._number(value, where, self.kind == "int", what)
        if self.kind in ("int_range", "float_range"):
            integer = self.kind == "int_range"
            what = "integers" if integer else "numbers"
            expected = f"[lower, upper] with lower <= upper, {what} between {self.minimum:g} and {self.maximum:g}"
            if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) != 2:
                raise self._fail(where, expected, value)
            try:
                lower, upper = (self._number(v, where, integer, what) for v in value)
            except InputError:
                raise self._fail(where, expected, value) from None
            if lower > upper:
                raise self._fail(where, expected, value)
            return [lower, upper]
        if self.kind == "choice":
            names = {label: code for code, label in self.choices}
            if isinstance(value, str) and value.strip().lower() in names:
                return names[value.strip().lower()]
            codes = [code for code, _ in self.choices]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value not in codes:
                listed = ", ".join(f"{code} ({label})" for code, label in self.choices)
                raise self._fail(where, f"one of {listed}", value)
            return int(value)
        # color
        if isinstance(value, str) and value.startswith("#") and len(value) == 7:
            try:
                return [int(value[i : i + 2], 16) for i in (1, 3, 5)]
            except ValueError:
                pass  # not hex: the message below says what is expected
        expected = "[red, green, blue], integers 0 .. 255 (or '#rrggbb')"
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__len__") or len(value) != 3:
            raise self._fail(where, expected, value)
        try:
            return [self._number(v, where, True, "integers") for v in value]
        except InputError:
            raise self._fail(where, expected, value) from None

    def parse(self, text: str, where: str = "") -> Any:
        """Read a value written as text (``"30"``, ``"-15,15"``, ``"linear"``, ``"127,127,127"``), then `check` it.

        Raises:
            InputError: the text is not a value of this parameter.
        """
        text = text.strip()
        if self.kind == "choice" and not _is_number(text):
            return self.check(text, where)
        if self.kind == "color" and text.startswith("#"):
            return self.check(text, where)
        parts = [p.strip() for p in text.split(",")] if text else []
        if not all(_is_number(p) for p in parts) or not parts:
            return self.check(text, where)  # the message says what the kind expects
        numbers = [float(p) if not _is_int(p) else int(p) for p in parts]
        if self.kind in ("int_range", "float_range", "color"):
            return self.check(numbers, where)
        return self.check(numbers[0] if len(numbers) == 1 else text, where)


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
