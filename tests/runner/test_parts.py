"""The run request's multipart parts: canonical bodies split on the lean path give the parts they hold; unusual
and malformed bodies get exactly what aiohttp's own multipart reader makes of them (parts or a refusal)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import MultipartReader
from aiohttp.base_protocol import BaseProtocol
from aiohttp.streams import StreamReader
from multidict import CIMultiDict

from eiq_lab.runner import parts
from eiq_lab.runner.parts import MalformedBody, NestedBody, body_parts

B = "b0undary"
HEADERS = CIMultiDict({"Content-Type": f"multipart/form-data; boundary={B}"})
TENSOR = b"Content-Type: application/vnd.deepview.tensor.float32\r\n"


def _part(name: str, filename: str, data: bytes, extra: bytes = TENSOR) -> bytes:
    disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'.encode()
    return f"--{B}\r\n".encode() + disposition + extra + b"\r\n" + data + b"\r\n"


def _parts(body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    found = asyncio.run(body_parts(HEADERS, body, 1 << 20))
    return [(name, filename, bytes(data)) for name, filename, data in found]


async def _aiohttp_reads(body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    """What aiohttp's MultipartReader, run directly, makes of a body (the reference)."""
    loop = asyncio.get_running_loop()
    stream = StreamReader(BaseProtocol(loop), 1 << 20, loop=loop)
    stream.feed_data(body)
    stream.feed_eof()
    reader = MultipartReader(HEADERS, stream)
    found = []
    while (part := await reader.next()) is not None:
        found.append((part.name, part.filename, bytes(await part.read())))
    return found


def _aiohttp(body: bytes) -> list[tuple[str | None, str | None, bytes]]:
    return asyncio.run(_aiohttp_reads(body))


CANONICAL = {
    "one tensor": (_part("input", "1,2,2,3", bytes(range(12))) + f"--{B}--\r\n".encode(),
                   [("input", "1,2,2,3", bytes(range(12)))]),
    "no final CRLF": (_part("x", "4", b"\x00\xff\r\n--") + f"--{B}--".encode(), [("x", "4", b"\x00\xff\r\n--")]),
    "two inputs": (_part("a", "2", b"x--" + B.encode()) + _part("b", "1,1", b"") + f"--{B}--\r\n".encode(),
                   [("a", "2", b"x--" + B.encode()), ("b", "1,1", b"")]),
    "no content type": (_part("only", "3", b"abc", extra=b"") + f"--{B}--\r\n".encode(), [("only", "3", b"abc")]),
    "quoted-pair and RFC 5987 filename": (f"--{B}\r\nContent-Disposition: form-data; name=\"a\\\"b\"; "
                                          f"filename*=utf-8''1%2C3\r\n\r\nxyz\r\n--{B}--\r\n".encode(),
                                          [('a"b', "1,3", b"xyz")]),
}  # fmt: skip


@pytest.mark.parametrize("case", CANONICAL)
def test_canonical_bodies_take_the_lean_path_and_give_their_parts(case):
    body, expected = CANONICAL[case]
    assert parts._split(body, f"--{B}".encode()) is not None, "a canonical body goes the lean way"
    assert _parts(body) == expected
    assert _aiohttp(body) == expected


UNUSUAL = {
    "preamble": b"ignored preamble\r\n" + _part("p", "1", b"z") + f"--{B}--\r\n".encode(),
    "epilogue": _part("e", "1", b"y") + f"--{B}--\r\nan epilogue\r\n".encode(),
    "padding after the delimiter": _part("w", "1", b"q").replace(f"--{B}\r\n".encode(), f"--{B}  \r\n".encode())
    + f"--{B}--\r\n".encode(),
    "LF-only header lines": f"--{B}\r\nContent-Disposition: form-data; name=\"n\"; filename=\"2\"\nContent-Type: "
    f"x/y\r\n\r\nab\r\n--{B}--\r\n".encode(),
    "extra part headers": _part("h", "1", b"k", extra=TENSOR + b"Content-Transfer-Encoding: binary\r\n")
    + f"--{B}--\r\n".encode(),
    "a _charset_ part first": _part("_charset_", "c", b"utf-8", extra=b"") + _part("t", "1", b"v")
    + f"--{B}--\r\n".encode(),
}  # fmt: skip


def _outcome(read, body: bytes) -> list | str:
    try:
        return read(body)
    except Exception:  # aiohttp's reader raises ValueError, RuntimeError, AssertionError or BadHttpMessage
        return "refused"


@pytest.mark.parametrize("case", UNUSUAL)
def test_unusual_bodies_get_what_aiohttps_reader_makes_of_them(case):
    body = UNUSUAL[case]
    assert parts._split(body, f"--{B}".encode()) is None, "an unusual body goes to aiohttp's reader"
    assert _outcome(_parts, body) == _outcome(_aiohttp, body)


MALFORMED = {
    "no closing delimiter": _part("a", "1", b"abc")[:-2],
    "no first boundary": b"just some bytes",
    "a header line without a colon": f"--{B}\r\nnot a header\r\n\r\nabc\r\n--{B}--\r\n".encode(),
    "a wrong delimiter after a part": _part("a", "1", b"abc") + f"--{B}XX\r\n".encode(),
}


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_bodies_are_refused_as_aiohttp_refuses_them(case):
    body = MALFORMED[case]
    with pytest.raises(Exception):  # noqa: B017 (the reference: aiohttp's reader refuses the body, its own way)
        _aiohttp(body)
    with pytest.raises(MalformedBody):
        _parts(body)


def test_a_nested_multipart_part_is_refused():
    inner = b'--inner\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--inner--\r\n'
    body = _part("n", "1", inner, extra=b"Content-Type: multipart/mixed; boundary=inner\r\n")
    with pytest.raises(NestedBody, match="nested"):
        _parts(body + f"--{B}--\r\n".encode())
