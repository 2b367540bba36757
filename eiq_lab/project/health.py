"""Dataset health: exact and near duplicates, train/test leakage, label balance and unlabeled counts.

`check_health` builds the report; each image's perceptual hash is cached in ``images.phash``.

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
import os
import warnings
from array import array
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..events import Observer, Progress, as_progress
from .imagefile import BadImage

if TYPE_CHECKING:
    import numpy as np

    from .store import Project

#: Names the hash cached in ``images.phash``; a project whose cache was made otherwise is rehashed.
PHASH_ALGORITHM = "dct32-low8x8-median-v1"
#: The ``meta`` key recording which algorithm filled ``images.phash``.
PHASH_META_KEY = "health.phash_algorithm"
#: Largest accepted ``near_threshold``: unrelated photos already differ in about 32 bits.
MAX_NEAR_THRESHOLD = 32
#: A warning is raised when the most common label has this many times the train images of the rarest.
IMBALANCE_WARNING_RATIO = 5.0

_SAMPLE = 32  # side of the grayscale thumbnail the DCT runs on
_LOW = 8  # side of the low-frequency block that gives the 64 bits
_ROWS_PER_QUERY = 2000  # image rows read per metadata query
_BLOBS_PER_QUERY = 64  # and image blobs per data query, ...
_BYTES_PER_QUERY = 64 << 20  # ... with at most this many bytes, so memory stays bounded
_PAIR_BLOCK = 1 << 22  # hash comparisons per numpy block inside one bucket
_GROUP_CODE = {None: 0, "train": 1, "test": 2}
_TRAIN, _TEST = 1, 2


def check_health(
    project: Project, *, near_threshold: int = 4, progress: Progress | Observer | None = None
) -> dict[str, Any]:
    """Check a project for duplicates, train/test leakage, label imbalance and unlabeled images.

    Perceptual hashes are computed only for images that have none cached yet (in batches, one
    transaction each), so a second run reads no image bytes. Stopping keeps the hashes of the batches
    already finished; the next run resumes from there.

    Exact duplicates (same bytes, same SHA-256) are reported once, in ``exact_duplicates``. For near
    duplicates each set of exact copies counts as one image: a near-duplicate cluster always holds at
    least two different contents, and lists every image of those contents (exact copies included).

    Args:
        project: the open project.
        near_threshold: largest Hamming distance (differing bits of 64) for two images to count
            as near duplicates; 0 finds only images with identical hashes. 0-32.
        progress: a `Progress` or an observer callable; receives ``start("health", total=images)``,
            one ``advance`` per image, a ``problem`` per image that cannot be decoded, and ``end``.

    Returns:
        A JSON-serialisable dict::

            {"images": int, "near_threshold": int, "hash": str,
             "exact_duplicates": [{"sha256": str, "image_ids": [int, ...]}, ...],
             "near_duplicates": [{"image_ids": [int, ...], "max_distance": int}, ...],
             "leakage": [{"kind": "exact" | "near", "cluster": int, "image_ids": [...],
                          "train": [...], "test": [...]}, ...],
             "balance": {"groups", "labels", "imbalance_ratio", "most_common", "rarest",
                         "labels_without_train", "labels_without_test"},
             "unlabeled": {"train": int, "test": int, "none": int, "total": int},
             "unreadable": [{"image_id": int, "reason": str}, ...],
             "warnings": [str, ...], "ok": bool}

        ``cluster`` indexes ``exact_duplicates`` or ``near_duplicates`` (by ``kind``);
        ``max_distance`` is the largest distance between any two hashes in the cluster;
        ``ok`` is true when there is no warning. Lists are complete (faces truncate them).

    Raises:
        InputError: `near_threshold` is not an integer from 0 to 32.
        Stopped: the progress was asked to stop.

    Example:
        >>> report = check_health(project, near_threshold=4)  # doctest: +SKIP
        >>> report["leakage"]  # doctest: +SKIP
        [{'kind': 'near', 'cluster': 0, 'image_ids': [3, 17], 'train': [3], 'test': [17]}]
    """
    import numpy as np

    threshold = _check_threshold(near_threshold)
    progress = as_progress(progress)
    _forget_stale_hashes(project)
    progress.start("health", total=project.count_images())
    scan = _scan(project, progress)
    ids = np.frombuffer(scan.ids, dtype=np.int64) if scan.ids else np.zeros(0, np.int64)
    hashes = np.frombuffer(scan.hashes, dtype=np.int64).view(np.uint64) if scan.ids else np.zeros(0, np.uint64)
    known = np.frombuffer(scan.known, dtype=np.int8).astype(bool) if scan.ids else np.zeros(0, bool)
    groups = np.frombuffer(scan.groups, dtype=np.int8) if scan.ids else np.zeros(0, np.int8)

    exact = _exact_duplicates(project, ids)
    near = _near_duplicates(ids, hashes, known, exact, threshold)
    leakage = _leakage(exact, near, ids, groups)
    info = project.info()
    balance = _balance(info)
    report: dict[str, Any] = {
        "images": len(ids),
        "near_threshold": threshold,
        "hash": PHASH_ALGORITHM,
        "exact_duplicates": [{"sha256": sha, "image_ids": ids[idx].tolist()} for sha, idx in exact],
        "near_duplicates": [
            {"image_ids": ids[cluster.images].tolist(), "max_distance": cluster.max_distance} for cluster in near
        ],
        "leakage": leakage,
        "balance": balance,
        "unlabeled": dict(info["unlabeled"]),
        "unreadable": scan.unreadable,
    }
    report["warnings"] = _warnings(report)
    report["ok"] = not report["warnings"]
    count = len(report["warnings"])
    progress.end("no problems found" if not count else f"{count} {_plural(count, 'warning')}")
    return report


# -- the perceptual hash ---------------------------------------------------------------------


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


def _to_signed(value: int) -> int:
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

    threshold = _check_threshold(threshold)
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


def _max_distance(values: np.ndarray) -> int:
    """The largest Hamming distance between any two of the given hashes."""
    import numpy as np

    values = np.unique(values)
    best = 0
    block = max(1, _PAIR_BLOCK // max(1, len(values)))
    for first in range(0, len(values) - 1, block):
        rows = values[first : first + block]
        best = max(best, int(np.bitwise_count(rows[:, None] ^ values[None, :]).max()))
    return best


# -- reading the project ---------------------------------------------------------------------


class _Scan:
    """What one pass over the images collects (compact arrays, in id order)."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.hashes = array("q")
        self.known = array("b")
        self.groups = array("b")
        self.unreadable: list[dict[str, Any]] = []


def _check_threshold(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NEAR_THRESHOLD:
        raise InputError(
            f"near_threshold must be an integer from 0 to {MAX_NEAR_THRESHOLD} (differing bits of a "
            f"64-bit hash); received {value!r}"
        )
    return value


def _forget_stale_hashes(project: Project) -> None:
    """Drop cached hashes made by another algorithm (or by no known one)."""
    if project.get_meta(PHASH_META_KEY) == PHASH_ALGORITHM:
        return
    with project.transaction():
        project._db.execute("UPDATE images SET phash = NULL WHERE phash IS NOT NULL")
        project.set_meta(PHASH_META_KEY, PHASH_ALGORITHM)


def _scan(project: Project, progress: Progress) -> _Scan:
    """Read every image's id, group and hash, hashing the images that have none cached."""
    scan = _Scan()
    last = 0
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="eiq-phash") as pool:
        while True:
            rows = project._query(
                "SELECT id, phash, grouping, source FROM images WHERE id > ? ORDER BY id LIMIT ?",
                (last, _ROWS_PER_QUERY),
            )
            if not rows:
                return scan
            last = rows[-1][0]
            missing = [(image_id, source) for image_id, phash, _group, source in rows if phash is None]
            computed = _hash_images(project, missing, pool, progress, scan) if missing else {}
            for image_id, phash, grouping, _source in rows:
                if phash is None:
                    phash = computed.get(image_id)
                else:
                    progress.advance()
                scan.ids.append(image_id)
                scan.hashes.append(0 if phash is None else phash)
                scan.known.append(phash is not None)
                scan.groups.append(_GROUP_CODE.get(grouping, 0))


def _hash_images(
    project: Project, images: list[tuple[int, str | None]], pool: ThreadPoolExecutor, progress: Progress, scan: _Scan
) -> dict[int, int]:
    """Hash the given images and cache the results; returns {image id: signed hash}."""
    sources = dict(images)
    ids = [image_id for image_id, _ in images]
    marks = ",".join("?" * len(ids))
    sizes = project._query(
        f"SELECT image_id, length(data) FROM image_data WHERE image_id IN ({marks}) ORDER BY image_id", ids
    )
    computed: dict[int, int] = {}
    for batch in _batches_by_size(sizes):
        marks = ",".join("?" * len(batch))
        blobs = project._query(
            f"SELECT image_id, data FROM image_data WHERE image_id IN ({marks}) ORDER BY image_id", batch
        )
        results = list(pool.map(_hash_or_reason, [data for _, data in blobs]))
        del blobs  # the bytes are no longer needed; keep memory to one batch
        updates = []
        for image_id, result in zip(batch, results):
            if isinstance(result, int):
                computed[image_id] = _to_signed(result)
                updates.append((computed[image_id], image_id))
            else:
                scan.unreadable.append({"image_id": image_id, "reason": result})
                progress.problem(sources.get(image_id) or f"image {image_id}", result)
        if updates:
            with project.transaction():
                project._db.executemany("UPDATE images SET phash = ? WHERE id = ?", updates)
        for _ in batch:
            progress.advance()
    # images deleted by another writer since their row was read: nothing to hash
    for _ in range(len(ids) - sum(1 for _ in sizes)):
        progress.advance()
    return computed


def _batches_by_size(sizes: Iterable[tuple[int, int]]) -> Iterable[list[int]]:
    batch: list[int] = []
    total = 0
    for image_id, size in sizes:
        if batch and (len(batch) >= _BLOBS_PER_QUERY or total + size > _BYTES_PER_QUERY):
            yield batch
            batch, total = [], 0
        batch.append(image_id)
        total += size
    if batch:
        yield batch


def _hash_or_reason(data: bytes) -> int | str:
    try:
        return perceptual_hash(data)
    except BadImage as exc:
        return str(exc)


def _exact_duplicates(project: Project, ids: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """Groups of images with the same SHA-256, as (sha256, positions into `ids`), by first id."""
    import numpy as np

    rows = project._query(
        "SELECT sha256, id FROM images WHERE sha256 IN "
        "(SELECT sha256 FROM images GROUP BY sha256 HAVING count(*) > 1) ORDER BY sha256, id"
    )
    members: dict[str, list[int]] = {}
    for sha, image_id in rows:
        members.setdefault(sha, []).append(image_id)
    groups = []
    for sha, group_ids in members.items():
        positions = np.searchsorted(ids, group_ids)
        # an image added by another writer after the scan is not part of this report
        inside = positions < len(ids)
        positions = positions[inside]
        positions = positions[ids[positions] == np.asarray(group_ids)[inside]]
        if len(positions) >= 2:
            groups.append((sha, positions))
    groups.sort(key=lambda group: int(group[1][0]))
    return groups


class _NearCluster:
    """A near-duplicate cluster: positions of all its images, and its largest hash distance."""

    def __init__(self, images: np.ndarray, contents: np.ndarray, max_distance: int):
        self.images = images
        self.contents = contents  # the representative position of each distinct content
        self.max_distance = max_distance


def _near_duplicates(
    ids: np.ndarray, hashes: np.ndarray, known: np.ndarray, exact: list[tuple[str, np.ndarray]], threshold: int
) -> list[_NearCluster]:
    import numpy as np

    # one node per distinct content: exact copies collapse onto their first image
    representative = np.arange(len(ids))
    copies: dict[int, np.ndarray] = {}
    for _sha, positions in exact:
        representative[positions] = positions[0]
        copies[int(positions[0])] = positions
    nodes = np.flatnonzero(known & (representative == np.arange(len(ids))))
    clusters = []
    for members in hash_clusters(hashes[nodes], threshold):
        contents = nodes[members]
        images = np.sort(np.concatenate([copies.get(int(p), np.array([p])) for p in contents]))
        clusters.append(_NearCluster(images, contents, _max_distance(hashes[contents])))
    return clusters


def _leakage(
    exact: list[tuple[str, np.ndarray]], near: list[_NearCluster], ids: np.ndarray, groups: np.ndarray
) -> list[dict[str, Any]]:
    """Clusters holding images of both train and test.

    A near cluster leaks only through two different contents (one in train, another in test);
    a leak by exact copies alone is reported once, as ``"exact"``.
    """
    import numpy as np

    found = []
    for index, (_sha, positions) in enumerate(exact):
        train, test = positions[groups[positions] == _TRAIN], positions[groups[positions] == _TEST]
        if len(train) and len(test):
            found.append(_leak("exact", index, positions, train, test, ids))
    representative = {}
    for _sha, positions in exact:
        for p in positions.tolist():
            representative[p] = int(positions[0])
    for index, cluster in enumerate(near):
        images = cluster.images
        train, test = images[groups[images] == _TRAIN], images[groups[images] == _TEST]
        train_contents = {representative.get(p, p) for p in train.tolist()}
        test_contents = {representative.get(p, p) for p in test.tolist()}
        if train_contents and test_contents and len(train_contents | test_contents) > 1:
            found.append(_leak("near", index, images, train, test, ids))
    del np
    return found


def _leak(
    kind: str, index: int, images: np.ndarray, train: np.ndarray, test: np.ndarray, ids: np.ndarray
) -> dict[str, Any]:
    return {
        "kind": kind,
        "cluster": index,
        "image_ids": ids[images].tolist(),
        "train": ids[train].tolist(),
        "test": ids[test].tolist(),
    }


# -- balance and the warnings ----------------------------------------------------------------


def _balance(info: dict[str, Any]) -> dict[str, Any]:
    """Per-label image counts per group and how uneven the train counts are."""
    labels = {
        entry["name"]: {key: entry["images"][key] for key in ("train", "test", "none", "total")}
        for entry in info["labels"]
    }
    in_train = {name: counts["train"] for name, counts in labels.items() if counts["train"] > 0}
    most_common = max(in_train, key=in_train.__getitem__) if in_train else None
    rarest = min(in_train, key=in_train.__getitem__) if in_train else None
    return {
        "groups": dict(info["groups"]),
        "labels": labels,
        "imbalance_ratio": in_train[most_common] / in_train[rarest] if in_train else None,
        "most_common": most_common,
        "rarest": rarest,
        "labels_without_train": [name for name, counts in labels.items() if counts["train"] == 0],
        "labels_without_test": [name for name, counts in labels.items() if counts["test"] == 0],
    }


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return word if n == 1 else plural or word + "s"


def _id_list(ids: list[int], limit: int = 5) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _warnings(report: dict[str, Any]) -> list[str]:
    """Plain-English sentences for everything in the report that needs attention."""
    out = []
    if report["images"] == 0:
        out.append("the project has no images")
    unreadable = [entry["image_id"] for entry in report["unreadable"]]
    if unreadable:
        n = len(unreadable)
        out.append(
            f"{n} {_plural(n, 'image')} could not be decoded (ids {_id_list(unreadable)}) and "
            f"{_plural(n, 'was', 'were')} left out of the near-duplicate check"
        )
    exact = report["exact_duplicates"]
    if exact:
        copies = sum(len(group["image_ids"]) - 1 for group in exact)
        out.append(
            f"{len(exact)} {_plural(len(exact), 'group')} of exact duplicates "
            f"({copies} redundant {_plural(copies, 'copy', 'copies')})"
        )
    near = report["near_duplicates"]
    if near:
        n = sum(len(cluster["image_ids"]) for cluster in near)
        out.append(
            f"{len(near)} {_plural(len(near), 'cluster')} of near duplicates ({n} images within "
            f"{report['near_threshold']} {_plural(report['near_threshold'], 'bit')} of each other)"
        )
    leakage = report["leakage"]
    if leakage:
        kinds = {kind: sum(leak["kind"] == kind for leak in leakage) for kind in ("exact", "near")}
        detail = ", ".join(f"{k}: {v}" for k, v in kinds.items() if v)
        out.append(
            f"{len(leakage)} duplicate {_plural(len(leakage), 'cluster')} span train and test ({detail}); "
            "test results will look better than they are"
        )
    out.extend(_balance_warnings(report["balance"]))
    unlabeled = report["unlabeled"]
    for group in ("train", "test"):
        n = unlabeled[group]
        if n:
            out.append(f"{n} {group} {_plural(n, 'image has', 'images have')} no label")
    return out


def _balance_warnings(balance: dict[str, Any]) -> list[str]:
    out = []
    groups = balance["groups"]
    has_train, has_test = groups["train"] > 0, groups["test"] > 0
    if sum(groups.values()) and not (has_train or has_test):
        out.append("no image is in train or test; split the project first (eiq project split)")
    elif has_train and not has_test:
        out.append("no image is in test; hold some out (eiq project split)")
    elif has_test and not has_train:
        out.append("no image is in train")
    for name, counts in balance["labels"].items():
        if counts["total"] == 0:
            out.append(f"label {name!r} has no images")
            continue
        if has_train and counts["train"] == 0:
            out.append(f"label {name!r} has no train images")
        if has_test and counts["test"] == 0:
            out.append(f"label {name!r} has no test images")
    ratio = balance["imbalance_ratio"]
    if ratio is not None and ratio >= IMBALANCE_WARNING_RATIO:
        out.append(
            f"most common label {balance['most_common']!r} has {ratio:.1f}x the train images of the "
            f"rarest, {balance['rarest']!r}"
        )
    return out
