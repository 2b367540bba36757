"""Bad image data is refused before it enters a project: BadImage (an EiqError) with a reason,
and nothing is added; the pixel limit guards against decompression bombs."""

from __future__ import annotations

import struct
import zlib

import pytest

from eiq_lab.errors import EiqError, InputError
from eiq_lab.project import BadImage, check_image

from .imaging import encode_image, noise_image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed, tiny PNG file whose header claims `width` x `height` 8-bit RGB pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return PNG_SIGNATURE + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0xFF
    return bytes(out)


JPEG = encode_image("JPEG", (32, 24))
PNG = noise_image(7, (32, 24))
_IDAT = PNG.index(b"IDAT")

BAD_DATA = {
    "empty": b"",
    "text": b"label,file\ncat,cat.jpg\n",
    "random bytes": bytes(range(256)) * 4,
    "jpeg cut in half": JPEG[: len(JPEG) // 2],
    "jpeg cut before its frame header": JPEG[:20],
    "jpeg missing its last bytes": JPEG[:-2],
    "jpeg with a corrupt header": JPEG[:3] + b"\x00" * 40 + JPEG[43:],
    "jpeg signature only": b"\xff\xd8\xff",
    "png cut in half": PNG[: len(PNG) // 2],
    "png without IEND": PNG[:-12],
    "png cut inside its header": PNG[:20],
    "png with a corrupt header checksum": _flip(PNG, 18),  # a width byte: the IHDR CRC no longer matches
    "png signature only": PNG_SIGNATURE,
    "png claiming 100000x100000 pixels": png_claiming(100_000, 100_000),
    "png claiming zero width": png_claiming(0, 24),
    "bmp cut short": encode_image("BMP")[:100],
    "gif cut short": encode_image("GIF")[:30],
}


@pytest.mark.parametrize("name", list(BAD_DATA))
def test_bad_image_data_is_refused_and_nothing_is_added(project, name):
    data = BAD_DATA[name]
    with pytest.raises(BadImage) as caught:
        project.add_image(data, "train")
    assert isinstance(caught.value, EiqError)
    assert isinstance(caught.value, InputError)
    assert str(caught.value)
    with pytest.raises(BadImage):
        project.add_images([PNG, data, JPEG], "train")
    assert project.count_images() == 0
    assert project.labels() == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty", "empty"),
        ("text", "not an image"),
        ("jpeg cut in half", "truncated jpeg"),
        ("png without IEND", "truncated png"),
        ("png with a corrupt header checksum", "corrupt png"),
        ("png claiming 100000x100000 pixels", "decompression bomb"),
    ],
)
def test_the_message_says_why(name, reason):
    with pytest.raises(BadImage) as caught:
        check_image(BAD_DATA[name])
    assert reason in str(caught.value).lower()


def test_a_text_file_named_jpg_is_refused_by_path(project, tmp_path):
    path = tmp_path / "cat.jpg"
    path.write_text("this is a note, not a photo\n")
    with pytest.raises(BadImage, match="text"):
        project.add_image(path)
    with pytest.raises(BadImage):
        project.add_images([tmp_path / "cat.jpg"])
    assert project.count_images() == 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "BMP", "GIF"])
def test_pixel_limit_from_the_environment(project, monkeypatch, fmt):
    data = encode_image(fmt, (32, 24))  # 768 pixels
    monkeypatch.setenv("EIQ_MAX_IMAGE_PIXELS", "767")
    with pytest.raises(BadImage, match="EIQ_MAX_IMAGE_PIXELS") as caught:
        project.add_images([data])
    assert "32x24" in str(caught.value)
    assert project.count_images() == 0
    monkeypatch.setenv("EIQ_MAX_IMAGE_PIXELS", "768")  # at the limit is fine
    [img] = project.add_images([data])
    assert (img.width, img.height) == (32, 24)


def test_a_malformed_pixel_limit_is_an_input_error(monkeypatch):
    monkeypatch.setenv("EIQ_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(InputError, match="EIQ_MAX_IMAGE_PIXELS"):
        check_image(PNG)


def test_a_bomb_is_refused_even_with_the_default_limit(monkeypatch):
    monkeypatch.delenv("EIQ_MAX_IMAGE_PIXELS", raising=False)
    with pytest.raises(BadImage, match="100000x100000"):
        check_image(png_claiming(100_000, 100_000))


def test_decode_catches_damage_inside_the_compressed_data(project):
    damaged = _flip(PNG, _IDAT + 20)
    with pytest.raises(BadImage):
        project.add_image(damaged, decode=True)
    with pytest.raises(BadImage):
        check_image(damaged, decode=True)
    assert project.count_images() == 0


@pytest.mark.parametrize(
    ("fmt", "mode", "stored"), [("PNG", "L", "png"), ("PNG", "RGBA", "png"), ("JPEG", "L", "jpeg")]
)
def test_good_images_pass_unchanged(fmt, mode, stored):
    data = encode_image(fmt, (17, 9), mode=mode)
    checked = check_image(data, decode=True)
    assert checked.data == data
    assert (checked.format, checked.width, checked.height) == (stored, 17, 9)
    assert checked.transcoded_from is None


def test_transcoding_reports_the_source_format():
    checked = check_image(encode_image("BMP", (5, 4)))
    assert (checked.format, checked.width, checked.height, checked.transcoded_from) == ("png", 5, 4, "bmp")
    assert checked.data.startswith(PNG_SIGNATURE)


def test_bytes_like_input_is_accepted():
    assert check_image(bytearray(PNG)).data == PNG
    assert check_image(memoryview(JPEG)).format == "jpeg"
