"""Dataset health: exact and near duplicates, train/test leakage, label balance and unlabeled counts.

`check_health` builds the report; each image's perceptual hash is cached in ``images.phash``.

Near duplicates come from `eiq_lab.project.phash` (a 64-bit DCT perceptual hash).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from ..events import Observer, Progress, as_progress
from .imagefile import BadImage
from .phash import (
    PHASH_ALGORITHM,
    check_threshold,
    hash_clusters,
    max_distance,
    perceptual_hash,
    to_signed,
)

if TYPE_CHECKING:
    import numpy as np

    from .store import Project

#: The ``meta`` key recording which algorithm filled ``images.phash``.
PHASH_META_KEY = "health.phash_algorithm"
#: A warning is raised when the most common label has this many times the train images of the rarest.
IMBALANCE_WARNING_RATIO = 5.0

_ROWS_PER_QUERY = 2000  # image rows read per metadata query
_BLOBS_PER_QUERY = 64  # and image blobs per data query, ...
_BYTES_PER_QUERY = 64 << 20  # ... with at most this many bytes, so memory stays bounded
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

    threshold = check_threshold(near_threshold)
    progress = as_progress(progress)
    _forget_stale_hashes(project)
    progress.start("health", total=project.count_images())
    scan = _scan(project, progress)
    ids = np.frombuffer(scan.ids, dtype=np.int64)
    hashes = np.frombuffer(scan.hashes, dtype=np.int64).view(np.uint64)
    known = np.frombuffer(scan.known, dtype=np.int8).astype(bool)
    groups = np.frombuffer(scan.groups, dtype=np.int8)

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


# -- reading the project ---------------------------------------------------------------------


class _Scan:
    """What one pass over the images collects (compact arrays, in id order)."""

    def __init__(self) -> None:
        self.ids = array("q")
        self.hashes = array("q")
        self.known = array("b")
        self.groups = array("b")
        self.unreadable: list[dict[str, Any]] = []


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
        found = [image_id for image_id, _ in blobs]
        results = list(pool.map(_hash_or_reason, [data for _, data in blobs]))
        del blobs  # the bytes are no longer needed; keep memory to one batch
        updates = []
        for image_id, result in zip(found, results):
            if isinstance(result, int):
                computed[image_id] = to_signed(result)
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
    for _ in range(len(ids) - len(sizes)):
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
        clusters.append(_NearCluster(images, contents, max_distance(hashes[contents])))
    return clusters


def _leakage(
    exact: list[tuple[str, np.ndarray]], near: list[_NearCluster], ids: np.ndarray, groups: np.ndarray
) -> list[dict[str, Any]]:
    """Clusters holding images of both train and test.

    A near cluster leaks only through two different contents (one in train, another in test);
    a leak by exact copies alone is reported once, as ``"exact"``.
    """
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
