"""The 64-bit perceptual hash (DCT pHash) of an image and the search for near-identical hashes.

Near duplicates use a 64-bit DCT perceptual hash (pHash): the image is decoded in grayscale at
reduced size (JPEG: at 1/2-1/8 scale straight from the DCT data), area-averaged to 32x32 pixels,
transformed by a 2-D DCT, and each of the 8x8 lowest-frequency coefficients gives one bit: set when
the coefficient is above the median of the 63 non-DC ones. Re-encoding, mild brightness or contrast
changes and resizing flip few bits; different photos differ in about half of them. Two images are
near duplicates when their hashes differ in at most ``near_threshold`` bits (Hamming distance).
Pairs are found without comparing every pair: split into ``near_threshold + 1`` chunks, two hashes
that close must agree on at least one whole chunk (pigeonhole), so only hashes sharing a chunk value
are compared; close pairs are joined into clusters (single linkage).
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from .imagefile import BadImage

if TYPE_CHECKING:
    import numpy as np

#: Names the hash cached in ``images.phash``; a project whose cache was made otherwise is rehashed.
PHASH_ALGORITHM = "dct32-low8x8-median-v1"

_SAMPLE = 32  # side of the grayscale thumbnail the DCT runs on
_LOW = 8  # side of the low-frequency block that gives the 64 bits
_PAIR_BLOCK = 1 << 22  # hash comparisons per numpy block inside one bucket
#: Largest accepted ``near_threshold``: unrelated photos already differ in about 32 bits.
MAX_NEAR_THRESHOLD = 32


def perceptual_hash(data: bytes) -> int:
    """The 64-bit DCT perceptual hash of encoded image bytes, as an unsigned integer.

    Bit 63 comes from the DC coefficient, the following bits from the 8x8 low-frequency block in
    row order. Images of one colour all hash alike (only flat-image bits set).

    Args:
        data: encoded image bytes (any format Pillow reads).

    Returns:
        An integer in ``0 .. 2**64 - 1``.

    Raises:
        BadImage: the bytes cannot be decoded.
    """
    import numpy as np
    from PIL import Image

    try:
        with warnings.catch_warnings():
            # sizes were checked against the project's pixel limit when the image was added
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                if image.format == "JPEG":
                    # decode luminance only, at the smallest DCT scale still >= 2x the thumbnail
                    image.draft("L", (2 * _SAMPLE, 2 * _SAMPLE))
                gray = image.convert("F" if image.mode.startswith(("I", "F")) else "L")
                small = gray.resize((_SAMPLE, _SAMPLE), Image.Resampling.BOX)
    except Exception as exc:  # Pillow raises many types for damaged data
        raise BadImage(f"cannot decode image data ({exc})") from None
    pixels = np.asarray(small, dtype=np.float64)
    dct = _dct_matrix(_SAMPLE)
    # rounding makes flat images (all AC coefficients ~ 0 up to float noise) hash reproducibly
    low = np.round((dct @ pixels @ dct.T)[:_LOW, :_LOW].ravel(), 6)
    bits = low > np.median(low[1:])
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def hamming_distance(a: int, b: int) -> int:
    """How many of the 64 bits differ between two hashes (signed or unsigned form)."""
    return ((a ^ b) & 0xFFFF_FFFF_FFFF_FFFF).bit_count()


@cache
def _dct_matrix(n: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: ``m @ x @ m.T`` is the 2-D DCT of an n x n block."""
    import numpy as np

    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


def to_signed(value: int) -> int:
    """SQLite integers are signed 64-bit: store the top bit as the sign."""
    return value - (1 << 64) if value >= 1 << 63 else value


# -- near-duplicate search -------------------------------------------------------------------


def hash_clusters(hashes: Sequence[int] | np.ndarray, threshold: int) -> list[np.ndarray]:
    """Group 64-bit hashes whose Hamming distance is at most `threshold` (single linkage).

    Each hash is split into ``threshold + 1`` chunks; two hashes within `threshold` bits agree on
    at least one chunk, so only hashes sharing a (chunk, value) bucket are compared. Equal hashes
    are merged first, so many copies of one picture cost nothing.

    Args:
        hashes: unsigned (or signed two's-complement) 64-bit hashes.
        threshold: largest distance joining two hashes, 0-32.

    Returns:
        The clusters of two or more positions into `hashes`, each sorted, ordered by first position.
    """
    import numpy as np

    threshold = check_threshold(threshold)
    values = _as_uint64(hashes)
    if len(values) < 2:
        return []
    unique, inverse = np.unique(values, return_inverse=True)
    root = _connected(len(unique), _close_pairs(unique, threshold))
    labels = root[inverse.ravel()]
    order = np.argsort(labels, kind="stable")
    sorted_labels = labels[order]
    starts = np.flatnonzero(np.r_[True, sorted_labels[1:] != sorted_labels[:-1]])
    ends = np.r_[starts[1:], len(order)]
    clusters = [order[s:e] for s, e in zip(starts, ends) if e - s >= 2]
    clusters.sort(key=lambda c: int(c[0]))
    return clusters


def _as_uint64(hashes: Sequence[int] | np.ndarray) -> np.ndarray:
    import numpy as np

    if isinstance(hashes, np.ndarray):
        return hashes.astype(np.int64, copy=False).view(np.uint64) if hashes.dtype.kind == "i" else hashes
    return np.array([h & 0xFFFF_FFFF_FFFF_FFFF for h in hashes], dtype=np.uint64)


def _chunk_widths(parts: int) -> list[int]:
    return [64 // parts + (1 if i < 64 % parts else 0) for i in range(parts)]


def _close_pairs(unique: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """Index pairs (a, b) into distinct `unique` hashes with distance <= threshold (may repeat)."""
    import numpy as np

    found_a: list[np.ndarray] = []
    found_b: list[np.ndarray] = []
    shift = 64
    for width in _chunk_widths(threshold + 1):
        shift -= width
        keys = (unique >> np.uint64(shift)) & np.uint64((1 << width) - 1)
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        sizes = np.diff(np.r_[starts, len(order)])
        # buckets of two, the common case, in one vectorised step
        pair_starts = starts[sizes == 2]
        a, b = order[pair_starts], order[pair_starts + 1]
        close = np.bitwise_count(unique[a] ^ unique[b]) <= threshold
        found_a.append(a[close])
        found_b.append(b[close])
        for start, size in zip(starts[sizes > 2], sizes[sizes > 2]):
            _pairs_in_bucket(unique, order[start : start + size], threshold, found_a, found_b)
    if not found_a:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    return np.concatenate(found_a), np.concatenate(found_b)


def _pairs_in_bucket(
    unique: np.ndarray, members: np.ndarray, threshold: int, found_a: list[np.ndarray], found_b: list[np.ndarray]
) -> None:
    import numpy as np

    values = unique[members]
    size = len(members)
    block = max(1, _PAIR_BLOCK // size)  # bounds memory for a huge bucket
    for first in range(0, size - 1, block):
        rows = values[first : first + block]
        close = np.bitwise_count(rows[:, None] ^ values[None, :]) <= threshold
        # each pair once: only columns after the row
        close &= np.arange(size)[None, :] > np.arange(first, first + len(rows))[:, None]
        r, c = np.nonzero(close)
        found_a.append(members[r + first])
        found_b.append(members[c])


def _connected(n: int, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Union-find over `n` nodes joined by `pairs`; returns each node's root."""
    import numpy as np

    a, b = pairs
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving
            x = parent[x]
        return x

    if len(a):
        edges = np.unique(np.stack([np.minimum(a, b), np.maximum(a, b)], axis=1), axis=0)
        for x, y in edges.tolist():
            rx, ry = find(x), find(y)
            if rx != ry:
                parent[max(rx, ry)] = min(rx, ry)
    return np.array([find(x) for x in range(n)], dtype=np.intp)


def max_distance(values: np.ndarray) -> int:
    """The largest Hamming distance between any two of the given hashes."""
    import numpy as np

    values = np.unique(values)
    best = 0
    block = max(1, _PAIR_BLOCK // max(1, len(values)))
    for first in range(0, len(values) - 1, block):
        rows = values[first : first + block]
        best = max(best, int(np.bitwise_count(rows[:, None] ^ values[None, :]).max()))
    return best


def check_threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NEAR_THRESHOLD:
        raise InputError(
            f"near_threshold must be an integer from 0 to {MAX_NEAR_THRESHOLD} (differing bits of a "
            f"64-bit hash); received {value!r}"
        )
    return value
