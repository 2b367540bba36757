"""TensorFlow Datasets import: opening (and, when allowed, downloading) a dataset's builder, then
reading the chosen splits and features into a project as one import.

TensorFlow loads on first use; images are stored as the encoded bytes TFDS holds (never re-encoded).
Split expressions live in `tfds_splits`, the verified list and feature discovery in `tfds_features`;
their public names are importable from here too.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

from ..errors import EiqError, InputError, NotFoundError
from ..events import Observer, Progress
from ..project import Project
from .session import ImportReport, LabelledObject, import_session
from .tfds_features import (
    DIFFICULT_NAMES,
    TASKS,
    TRUNCATED_NAMES,
    VERIFIED,
    Found,
    check_task,
    discover_features,
    label_namer,
    list_verified,
    load_tfds,
    resolve_features,
    verified_choice,
)
from .tfds_splits import SPLIT_FORMS, parse_split, split_parts

__all__ = [
    "CATALOG_URL",
    "DIFFICULT_NAMES",
    "SPLIT_FORMS",
    "TASKS",
    "TRUNCATED_NAMES",
    "VERIFIED",
    "discover_features",
    "import_tfds",
    "list_verified",
    "parse_split",
]

CATALOG_URL = "https://www.tensorflow.org/datasets/catalog/overview"

_NETWORK_HINTS = (
    "name or service not known",
    "temporary failure in name resolution",
    "failed to establish a new connection",
    "network is unreachable",
    "max retries exceeded",
    "connection refused",
    "connection reset",
    "no route to host",
    "nodename nor servname",
    "getaddrinfo failed",
    "timed out",
)


def _is_network_failure(exc: BaseException) -> bool:
    import socket
    import urllib.error

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, (ConnectionError, socket.gaierror, TimeoutError, urllib.error.URLError)):
            return True
        if type(exc).__name__ in ("ConnectionError", "ConnectTimeout", "ReadTimeout", "NewConnectionError"):
            return True
        if any(hint in str(exc).lower() for hint in _NETWORK_HINTS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _open_builder(name: str, data_dir: str | os.PathLike | None, download: bool):
    tfds = load_tfds()
    clean = str(name).strip()
    if not clean:
        raise InputError(f"give a TFDS dataset name (for example mnist); see {CATALOG_URL}")
    data_dir = None if data_dir is None else os.fspath(data_dir)
    try:
        with _quiet_absl():  # "variant folder has no dataset_info.json" for a dataset not prepared yet
            builder = tfds.builder(clean, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        base = clean.split(":")[0].split("/")[0]
        try:
            known = tfds.list_builders(with_community_datasets=False)  # local only: no network
        except Exception:
            known = []
        close = difflib.get_close_matches(base, known, n=3, cutoff=0.75)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise NotFoundError(f"no TFDS dataset named {clean!r}{hint} (the names: {CATALOG_URL})") from None
    except EiqError:
        raise
    except Exception as exc:  # a bad config or version, an optional package the builder needs
        raise InputError(f"cannot open TFDS dataset {clean!r}: {_first_line(exc)}") from None
    with _quiet_absl():
        prepared = builder.is_prepared()
    if not prepared:
        where = builder.data_dir_root if hasattr(builder, "data_dir_root") else data_dir
        if not download:
            raise InputError(
                f"TFDS dataset {clean!r} is not prepared in {where}; allow the download (drop --no-download) "
                "or pass --data-dir to the folder that holds it"
            )
        try:
            with redirect_stdout(sys.stderr):  # TFDS prints its progress; stdout stays for reports (--json)
                builder.download_and_prepare()
        except Exception as exc:
            if _is_network_failure(exc):
                raise InputError(
                    f"could not download {clean!r}: no network ({_first_line(exc)}). Download it once where "
                    "there is network, then pass --data-dir to its folder"
                ) from None
            raise InputError(f"could not download and prepare {clean!r}: {_first_line(exc)}") from None
    return builder


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:300]


@dataclass(frozen=True)
class _Read:
    """One contiguous run of examples to read: split, [first, last), and the group it goes to."""

    split: str
    first: int
    last: int
    group: str


def _plan_side(
    builder: Any,
    dataset: str,
    side: str,
    expr: str | int,
    default: str | None,
    notes: list[str],
) -> list[_Read]:
    """The reads for one side (train or test); notes collect warnings for the report."""
    splits = builder.info.splits
    available = list(splits.keys())
    reads = []
    for part in split_parts(expr, default):
        if part.split is None:  # a bare expression, and the dataset has no split for this side
            notes.append(
                f"dataset {dataset!r} has no {side} split (its splits: {', '.join(available)}): no {side} "
                f"images imported; give --{side}-split SPLIT[...] to read one, or split later with --holdout"
            )
            continue
        if part.split not in splits:
            raise NotFoundError(
                f"dataset {dataset!r} has no split {part.split!r} (--{side}-split); its splits: {', '.join(available)}"
            )
        total = splits[part.split].num_examples
        first, last = part.bounds(total)
        if last <= first:
            if part.asks_for_some():
                notes.append(f"{side} split {part.text()} selects no examples: {part.split} has {total}")
            continue
        reads.append(_Read(part.split, first, last, side))
    return reads


def _check_overlap(reads: list[_Read]) -> None:
    for i, a in enumerate(reads):
        for b in reads[i + 1 :]:
            if a.split == b.split and a.first < b.last and b.first < a.last:
                raise InputError(
                    f"the {a.group} and {b.group} selections overlap in split {a.split!r} "
                    f"([{a.first}:{a.last}] and [{b.first}:{b.last}]); an image can be in one group only"
                )


def _nested(paths: list[tuple[str, ...]]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in paths:
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = True  # paths are leaves: none is a prefix of another
    return tree


def _value(example: dict, path: tuple[str, ...]) -> Any:
    for key in path:
        example = example[key]
    return example


@contextmanager
def _quiet_absl() -> Iterator[None]:
    logger = logging.getLogger("absl")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _examples(builder: Any, read: _Read, decoders: Any, dataset: str) -> Iterator[tuple[int, dict]]:
    tfds = load_tfds()
    import tensorflow as tf

    spec = f"{read.split}[{read.first}:{read.last}]"
    try:
        with _quiet_absl():  # TFDS's partial decoding logs a deprecation of its own for every feature
            ds = builder.as_dataset(split=spec, decoders=decoders, shuffle_files=False)
        for offset, example in enumerate(tfds.as_numpy(ds)):
            yield read.first + offset, example
    except tf.errors.OpError as exc:
        raise InputError(f"cannot read {dataset!r} split {spec}: {exc.message}") from None


def import_tfds(
    name: str,
    project: Project | str | os.PathLike,
    *,
    task: str = "classification",
    train_split: str | int = "100%",
    test_split: str | int = "100%",
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    image_feature: str | None = None,
    label_feature: str | None = None,
    bbox_feature: str | None = None,
    group: str | None = None,
    difficult: bool = False,
    truncated: bool = False,
    strict: bool = False,
    duplicates: str = "skip",
    decode: bool = False,
    progress: Progress | Observer | None = None,
) -> ImportReport:
    """Import a TensorFlow Datasets dataset: train images to "train", test images to "test".

    The test side reads the ``test`` split, else ``validation`` (a verified dataset may name
    another); with neither, no test images are imported and the report carries a warning.
    Verified datasets (`VERIFIED`) read their known features; any other name has its features
    found by `discover_features`. Images are stored as TFDS holds them (PNG/JPEG bytes); boxes
    (TFDS: normalized ymin, xmin, ymax, xmax) become pixels (x, y, width, height).

    Args:
        name: TFDS name, with config and version if wanted (``"mnist"``, ``"voc/2007"``).
        project: an open `Project` or a path (created if missing; removed again if the import fails).
        task: ``"classification"`` (one label per image) or ``"detection"`` (labelled boxes).
        train_split, test_split: the guide's expressions (``"60%"``, ``"100"``, ``"200:300"``) or
            a split name with a slice; see `parse_split`.
        data_dir: the TFDS data folder (default: TFDS's, ``~/tensorflow_datasets``).
        download: download and prepare a dataset that is not prepared yet.
        image_feature, label_feature, bbox_feature: feature paths that settle an ambiguous structure.
        group: force every image into ``"train"``, ``"test"`` or no group (``"none"``).
        difficult, truncated: include objects flagged so (COCO's crowd boxes count as difficult).
        strict: abort, keeping nothing, at the first bad image.
        duplicates: ``"skip"`` images already in the project, or ``"keep"`` them.
        decode: decode every pixel to check it.
        progress: a `Progress` or observer.

    Returns:
        The `ImportReport`.

    Raises:
        NotFoundError: no such dataset, split or feature.
        InputError: a bad split expression, an ambiguous feature structure, a dataset that is not
            prepared and may not (or cannot, offline) be downloaded.

    Example:
        >>> import_tfds("mnist", "digits.eiqp", train_split="60%", test_split="200:300")  # doctest: +SKIP
    """
    task = check_task(task)
    for side, expr in (("train", train_split), ("test", test_split)):
        try:
            split_parts(expr, side)  # refuse a bad expression before loading TensorFlow
        except InputError as exc:
            raise InputError(f"--{side}-split: {exc}") from None
    builder = _open_builder(name, data_dir, download)
    dataset = str(name).strip()
    verified = verified_choice(dataset, builder, task)
    found = resolve_features(
        builder.info.features,
        task,
        dataset=dataset,
        image_feature=image_feature or verified.get("image"),
        label_feature=label_feature or verified.get("label"),
        bbox_feature=bbox_feature or verified.get("bbox"),
        difficult_feature=verified.get("difficult"),
        truncated_feature=verified.get("truncated"),
    )
    splits = builder.info.splits
    test_default = next((s for s in (verified.get("test_split"), "test", "validation") if s and s in splits), None)
    notes: list[str] = []
    reads = _plan_side(builder, dataset, "train", train_split, "train" if "train" in splits else None, notes)
    reads += _plan_side(builder, dataset, "test", test_split, test_default, notes)
    _check_overlap(reads)

    tfds = load_tfds()
    image_path = found["image"].path
    wanted = [c.path for c in found.values() if c is not None]
    # read only the chosen features; keep the image encoded (stored as is, never re-encoded)
    keep_encoded = _decoder_tree(image_path, tfds.decode.SkipDecoding())
    decoders = tfds.decode.PartialDecoding(_nested(wanted), decoders=keep_encoded)
    try:
        with _quiet_absl():
            decoders.extract_features(builder.info.features)
    except (ValueError, TypeError):  # a structure partial decoding cannot mirror: decode all but the image
        decoders = keep_encoded
    label_of = label_namer(found["label"])

    with import_session(
        project,
        format="tfds",
        source=dataset,
        group=group,
        difficult=difficult,
        truncated=truncated,
        strict=strict,
        duplicates=duplicates,
        decode=decode,
        progress=progress,
    ) as session:
        for note in notes:
            session.problem(dataset, note, severity="warning")
        session.expect(sum(r.last - r.first for r in reads))
        for read in reads:
            for index, example in _examples(builder, read, decoders, dataset):
                key = (read.split, index)
                source = f"{dataset}/{read.split}/{index}"
                data = bytes(_value(example, image_path))
                if session.image(key, data, name=source, group=read.group) is None:
                    continue
                objects = (
                    _classification_objects(example, found, label_of)
                    if task == "classification"
                    else _detection_objects(example, found, label_of)
                )
                if isinstance(objects, str):
                    session.problem(source, objects)
                elif objects:
                    session.objects(key, objects, name=source)
    return session.report


def _decoder_tree(path: tuple[str, ...], decoder: Any) -> dict[str, Any]:
    tree: dict[str, Any] = {path[-1]: decoder}
    for key in reversed(path[:-1]):
        tree = {key: tree}
    return tree


def _classification_objects(example: dict, found: dict[str, Found | None], label_of) -> list[LabelledObject]:
    label = label_of(_value(example, found["label"].path))
    return [] if label is None else [LabelledObject(label)]


def _detection_objects(example: dict, found: dict[str, Found | None], label_of) -> list[LabelledObject] | str:
    import numpy as np

    boxes = np.asarray(_value(example, found["bbox"].path), dtype=np.float64).reshape(-1, 4)
    n = len(boxes)

    def per_box(role: str, default: Any) -> np.ndarray:
        feature = found[role]
        if feature is None:
            return np.full(n, default)
        values = np.asarray(_value(example, feature.path))
        return np.full(n, values.item(), dtype=values.dtype) if values.ndim == 0 else values  # image-level

    labels = per_box("label", -1)
    flags = {kind: per_box(kind, False) for kind in ("difficult", "truncated")}
    if len(labels) != n or any(len(v) != n for v in flags.values()):
        return f"{n} box(es) but {len(labels)} label(s) beside them: objects skipped"
    objects = []
    for i, (ymin, xmin, ymax, xmax) in enumerate(boxes.tolist()):
        label = label_of(labels[i])
        if label is None:
            continue
        objects.append(
            LabelledObject(
                label,
                box=(xmin, ymin, xmax - xmin, ymax - ymin),
                normalized=True,
                difficult=bool(flags["difficult"][i]),
                truncated=bool(flags["truncated"][i]),
            )
        )
    return objects
