"""`when` clauses of extension menu items: the guide's small expression language over context keys, parsed
safely (no eval): ``modelExported && exportModelType==tflite``, ``!modelExported || (a != b)``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ..errors import InputError

#: The context keys the guide defines (section 6.2.2); an expression may use only these.
CONTEXT_KEYS = ("modelExported", "exportModelQuantized", "exportModelType")

_TOKEN = re.compile(r"\s*(&&|\|\||==|!=|!|\(|\)|'[^']*'|\"[^\"]*\"|[A-Za-z0-9_.\-]+)")

Condition = Callable[[Mapping[str, Any]], bool]


def _tokens(text: str) -> list[str]:
    tokens, pos, text = [], 0, text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise InputError(f"when clause {text!r}: cannot read {text[pos:]!r}; use context keys, &&, ||, !, ==, !=")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def _value(token: str) -> str:
    return token[1:-1] if token[:1] in "'\"" else token


def _same(left: Any, right: str) -> bool:
    if isinstance(left, bool):
        return str(left).lower() == right.lower()
    return str(left) == right


class _Parser:
    """or := and ('||' and)*; and := not ('&&' not)*; not := '!' not | atom; atom := '(' or ')' | key [op value]."""

    def __init__(self, text: str, keys: tuple[str, ...]):
        self.text, self.keys, self.tokens, self.pos = text, keys, _tokens(text), 0

    def error(self, what: str) -> InputError:
        return InputError(f"when clause {self.text!r}: {what}")

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise self.error("ends too early")
        self.pos += 1
        return token

    def parse(self) -> Condition:
        condition = self.either()
        if self.peek() is not None:
            raise self.error(f"unexpected {self.peek()!r}")
        return condition

    def either(self) -> Condition:
        parts = [self.both()]
        while self.peek() == "||":
            self.take()
            parts.append(self.both())
        return parts[0] if len(parts) == 1 else (lambda keys: any(p(keys) for p in parts))

    def both(self) -> Condition:
        parts = [self.negation()]
        while self.peek() == "&&":
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda keys: all(p(keys) for p in parts))

    def negation(self) -> Condition:
        if self.peek() == "!":
            self.take()
            inner = self.negation()
            return lambda keys: not inner(keys)
        return self.atom()

    def atom(self) -> Condition:
        token = self.take()
        if token == "(":
            inner = self.either()
            if self.peek() != ")":
                raise self.error("a '(' is not closed")
            self.take()
            return inner
        if token in ("&&", "||", "==", "!=", ")"):
            raise self.error(f"expected a context key, found {token!r}")
        if token not in self.keys:
            raise self.error(f"unknown context key {token!r}; context keys: {', '.join(self.keys)}")
        key = token
        if self.peek() in ("==", "!="):
            op = self.take()
            value = self.take()
            if value in ("&&", "||", "!", "(", ")", "==", "!="):
                raise self.error(f"expected a value after {op!r}, found {value!r}")
            value = _value(value)
            if op == "==":
                return lambda keys: _same(keys.get(key), value)
            return lambda keys: not _same(keys.get(key), value)
        return lambda keys: bool(keys.get(key))


def parse_when(text: str | None, keys: tuple[str, ...] = CONTEXT_KEYS) -> Condition:
    """A `when` clause as a function of the context keys (``None`` or empty: always true).

    Example:
        >>> shown = parse_when("modelExported && exportModelType==tflite")
        >>> shown({"modelExported": True, "exportModelType": "tflite"}), shown({"modelExported": False})
        (True, False)

    Raises:
        InputError: the clause does not parse or names an unknown context key.
    """
    if text is None or not text.strip():
        return lambda keys: True
    return _Parser(text, keys).parse()
