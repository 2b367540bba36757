"""The requests' multipart parts: a run's tensor parts (name, filename, bytes) from a body read whole (a lean
split for well-formed bodies, using aiohttp's header parsers, and aiohttp's multipart reader for everything
else), and an upload's parts streamed with aiohttp's reader (`form_parts`, `read_part`).

The lean path takes only the canonical layout (the body opens with the first delimiter, every part has a
Content-Disposition and at most a Content-Type, the close delimiter ends the body); anything else, malformed
or merely unusual, goes to `aiohttp.MultipartReader`, which decides and words the error. Parsed part headers
are cached: clients send the same header block with every request.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from functools import lru_cache
from typing import Any, NamedTuple

from aiohttp import BodyPartReader, MultipartReader, hdrs
from aiohttp.base_protocol import BaseProtocol
from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.http_parser import HeadersParser
from aiohttp.multipart import content_disposition_filename, parse_content_disposition, parse_mimetype
from aiohttp.streams import StreamReader

#: aiohttp's own limits on part headers (its server's defaults).
MAX_FIELD_SIZE = 8190
MAX_HEADERS = 128
#: The lean path's header block size; larger blocks go to aiohttp's reader.
_HEAD_MAX = 4096
_LEAN_HEADERS = frozenset({"content-disposition", "content-type"})
#: What aiohttp's multipart reader raises on malformed input.
MALFORMED = (ValueError, AssertionError, RuntimeError, BadHttpMessage)


class Part(NamedTuple):
    """One part: its Content-Disposition name and filename and its content (bytes-like, not copied)."""

    name: str | None
    filename: str | None
    data: memoryview | bytes | bytearray


class MalformedBody(ValueError):
    """The body is not a multipart body aiohttp's reader accepts (the message says why)."""


class NestedBody(Exception):
    """A part is itself a multipart body."""


class PartTooLarge(Exception):
    """A part holds more bytes than the request may carry."""


async def body_parts(headers: Mapping[str, str], body: bytes, cap: int) -> list[Part]:
    """The parts of a multipart request body, in order.

    Args:
        headers: the request's headers (its Content-Type names the boundary).
        body: the whole body.
        cap: the most bytes a part may hold (aiohttp's ``client_max_size``).

    Raises:
        MalformedBody: aiohttp's multipart reader refused the body.
        NestedBody: a part is a multipart body itself.
    """
    content_type = headers.get(hdrs.CONTENT_TYPE, "")
    boundary = _boundary(content_type)
    parts = _split(body, boundary) if boundary else None
    if parts is not None:
        return parts
    try:
        return await _read(headers, body, cap)
    except MALFORMED as exc:
        raise MalformedBody(str(exc) or type(exc).__name__) from None


@lru_cache(maxsize=64)
def _boundary(content_type: str) -> bytes | None:
    boundary = parse_mimetype(content_type).parameters.get("boundary", "")
    return b"--" + boundary.encode() if boundary and len(boundary) <= 70 and boundary.isascii() else None


def _split(body: bytes, delimiter: bytes) -> list[Part] | None:
    """The parts of a canonical body, or None when it is not one (aiohttp's reader then decides)."""
    if not body.startswith(delimiter + b"\r\n"):
        return None
    view = memoryview(body)
    closing = b"\r\n" + delimiter
    parts = []
    start = len(delimiter) + 2
    while True:
        end = body.find(b"\r\n\r\n", start, start + _HEAD_MAX)
        if end <= start or body[start : start + 2] == b"\r\n":  # no header block, or none within _HEAD_MAX
            return None
        head = _part_head(body[start:end])
        if head is None:
            return None
        # like aiohttp, the header block's last CRLF may be the delimiter's (an empty part)
        stop = body.find(closing, end + 2)
        if stop < 0:
            return None
        data = view[end + 4 : stop] if stop >= end + 4 else view[0:0]
        parts.append(Part(head[0], head[1], data))
        after = stop + len(closing)
        rest = body[after : after + 2]
        if rest == b"\r\n":
            start = after + 2
            continue
        if rest == b"--" and body[after:] in (b"--", b"--\r\n"):
            return parts
        return None


@lru_cache(maxsize=256)
def _part_head(block: bytes) -> tuple[str | None, str | None] | None:
    """A part's (name, filename) from its header block, parsed by aiohttp; None: not for the lean path."""
    crlf = block.count(b"\r\n")
    if block.count(b"\r") != crlf or block.count(b"\n") != crlf:  # bare CR or LF: aiohttp's reader decides
        return None
    lines = block.split(b"\r\n")
    if len(lines) > MAX_HEADERS or any(not line or len(line) > MAX_FIELD_SIZE or line[:1] in b" \t" for line in lines):
        return None
    try:
        headers, _ = HeadersParser(max_field_size=MAX_FIELD_SIZE).parse_headers([*lines, b""])
    except MALFORMED:
        return None
    if (
        any(key.lower() not in _LEAN_HEADERS for key in headers)
        or len(headers) != len({key.lower() for key in headers})
        or hdrs.CONTENT_DISPOSITION not in headers
        or parse_mimetype(headers.get(hdrs.CONTENT_TYPE, "")).type == "multipart"
    ):
        return None
    name, filename = disposition(headers[hdrs.CONTENT_DISPOSITION])
    if name == "_charset_":  # aiohttp's reader gives this form-data part a meaning of its own
        return None
    return name, filename


@lru_cache(maxsize=256)
def disposition(header: str | None) -> tuple[str | None, str | None]:
    """A Content-Disposition header's name and filename (aiohttp's parser; cached, clients repeat headers)."""
    _, params = parse_content_disposition(header)
    return params.get("name"), content_disposition_filename(params, "filename")


async def _read(headers: Mapping[str, str], body: bytes, cap: int) -> list[Part]:
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), max(len(body), 1 << 16) + 1, loop=loop)  # never pauses
    stream.feed_data(body)
    stream.feed_eof()
    reader = MultipartReader(headers, stream, client_max_size=cap, max_field_size=MAX_FIELD_SIZE,
                             max_headers=MAX_HEADERS)  # fmt: skip
    parts = []
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise NestedBody("nested multipart bodies are not supported")
        name, filename = disposition(part.headers.get(hdrs.CONTENT_DISPOSITION))
        parts.append(Part(name, filename, await part.read()))
    return parts


async def form_parts(request: Any) -> AsyncIterator[BodyPartReader]:
    """The parts of an aiohttp request's multipart body, streamed (read each with `read_part`).

    Raises:
        MalformedBody: aiohttp's reader refused the body.
        NestedBody: a part is a multipart body itself.
    """
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                raise NestedBody("nested multipart bodies are not supported")
            yield part
    except MALFORMED as exc:
        raise MalformedBody(str(exc) or type(exc).__name__) from None


async def read_part(part: BodyPartReader, cap: int) -> bytearray:
    """A streamed part's content, at most `cap` bytes.

    Raises:
        PartTooLarge: the part holds more than `cap` bytes.
        MalformedBody: aiohttp's reader refused the body.
    """
    data = bytearray()
    try:
        while chunk := await part.read_chunk(64 * 1024):
            data += chunk
            if len(data) > cap:
                raise PartTooLarge(f"part {part.name!r} exceeds {cap} bytes")
    except MALFORMED as exc:
        raise MalformedBody(str(exc) or type(exc).__name__) from None
    return data
