"""TensorFlow Datasets import: the verified list (basic mode), any other name (advanced mode),
the guide's split expressions and the search for image, label and box features.

TensorFlow loads on first use; images are stored as the encoded bytes TFDS holds (never re-encoded).
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass
from typing import Any

from ..errors import EiqError, InputError, NotFoundError
from ..events import Observer, Progress
from ..project import Project
from .session import ImportReport, ImportSession, LabelledObject, project_for_import

TASKS = ("classification", "detection")

_IMAGE_LABEL = {"image": "image", "label": "label"}
_VOC = {
    "image": "image",
    "bbox": "objects/bbox",
    "label": "objects/label",
    "difficult": "objects/is_difficult",
    "truncated": "objects/is_truncated",
}

#: The verified datasets of the basic mode: name -> task -> the features to read.
#: Keys of a choice: ``image``, ``label`` and, for detection, ``bbox``, ``difficult``, ``truncated``
#: (feature paths as TFDS 4.9 defines them, nested names joined by ``/``), and ``test_split`` when
#: the dataset's ``test`` split carries no labels (the test side then reads that split instead).
#: COCO's ``is_crowd`` boxes are treated as difficult: left out unless ``difficult=True``
#: (``--difficult``), as COCO's own evaluation ignores them, and flagged difficult when kept.
VERIFIED: dict[str, dict[str, dict[str, str]]] = {
    "mnist": {"classification": _IMAGE_LABEL},
    "fashion_mnist": {"classification": _IMAGE_LABEL},
    "kmnist": {"classification": _IMAGE_LABEL},
    "cifar10": {"classification": _IMAGE_LABEL},
    # cifar100 also has `coarse_label` (20 superclasses): pick it with label_feature / --label-feature
    "cifar100": {"classification": _IMAGE_LABEL},
    "tf_flowers": {"classification": _IMAGE_LABEL},
    "beans": {"classification": _IMAGE_LABEL},
    "rock_paper_scissors": {"classification": _IMAGE_LABEL},
    "horses_or_humans": {"classification": _IMAGE_LABEL},
    "cats_vs_dogs": {"classification": _IMAGE_LABEL},
    "oxford_flowers102": {"classification": _IMAGE_LABEL},
    "svhn_cropped": {"classification": _IMAGE_LABEL},
    "food101": {"classification": _IMAGE_LABEL},
    "caltech101": {"classification": _IMAGE_LABEL},
    "voc/2007": {"detection": _VOC},
    "voc/2012": {"detection": {**_VOC, "test_split": "validation"}},  # its test images have no annotations
    "coco/2017": {
        "detection": {
            "image": "image",
            "bbox": "objects/bbox",
            "label": "objects/label",
            "difficult": "objects/is_crowd",
            "test_split": "validation",  # its test images have no annotations
        }
    },
}

#: Names of boolean features, next to the boxes, that flag an object difficult or truncated.
DIFFICULT_NAMES = ("is_difficult", "difficult", "is_crowd", "iscrowd", "crowd")
TRUNCATED_NAMES = ("is_truncated", "truncated")

CATALOG_URL = "https://www.tensorflow.org/datasets/catalog/overview"

SPLIT_FORMS = (
    "a percentage (60%), a count from the start (100), a range (200:300 or 10%:20%), "
    "or a split name with an optional slice (validation, test[:50%], train[200:300]); "
    "join parts with + (train+validation)"
)

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


def list_verified() -> list[dict[str, Any]]:
    """The verified datasets for the CLI and the GUI's basic mode.

    Returns:
        ``[{"name": "mnist", "tasks": ["classification"], "features": {task: choice}}, ...]``.
    """
    return [
        {"name": name, "tasks": list(tasks), "features": {task: dict(choice) for task, choice in tasks.items()}}
        for name, tasks in VERIFIED.items()
    ]


# -- split expressions ---------------------------------------------------------------------------

_NAMED = re.compile(r"^(?P<name>[A-Za-z_][\w-]*)(?:\[(?P<sel>[^\]]*)\])?$")
_BOUND = re.compile(r"^(?:(?P<pct>\d+(?:\.\d+)?)%|(?P<abs>\d+))$")


@dataclass(frozen=True)
class _Part:
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


def _parse_selection(expr: str, selection: str, split: str | None) -> _Part:
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
    return _Part(split, values[0], values[1], percent)


def _parse_parts(expr: Any, default_split: str | None) -> list[_Part]:
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
                parts.append(_Part(named["name"]))
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
    return "+".join(part.text() for part in _parse_parts(expr, default_split))


# -- feature discovery ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Found:
    """A leaf feature: its path, the innermost Sequence holding it (``None``: top level), nesting."""

    path: tuple[str, ...]
    feature: Any
    container: tuple[str, ...] | None
    depth: int

    @property
    def name(self) -> str:
        return "/".join(self.path)


def _walk(feature: Any, path: tuple[str, ...] = (), container: tuple[str, ...] | None = None, depth: int = 0):
    tfds = _tfds()
    if isinstance(feature, tfds.features.FeaturesDict):
        for key, child in feature.items():
            yield from _walk(child, (*path, key), container, depth)
    elif isinstance(feature, tfds.features.Sequence):
        yield from _walk(feature.feature, path, path, depth + 1)
    else:
        yield _Found(path, feature, container, depth)


def _kind(feature: Any) -> str:
    tfds = _tfds()
    f = tfds.features
    if isinstance(feature, f.Image):
        return "image"
    if isinstance(feature, f.ClassLabel):
        return "label"
    if isinstance(feature, f.BBoxFeature):
        return "bbox"
    if isinstance(feature, f.Text):
        return "text"
    if isinstance(feature, f.Tensor) and tuple(feature.shape) == ():
        import numpy as np

        dtype = getattr(feature, "np_dtype", None)
        if dtype is not None and np.dtype(dtype).kind in "biu":
            return "flag"
    return "other"


_OPTION = {"image": "image_feature", "label": "label_feature", "bbox": "bbox_feature"}
_WHAT = {"image": "image", "label": "label", "bbox": "box"}


def _pick_hint(role: str) -> str:
    option = _OPTION[role]
    return f"pick one with --{option.replace('_', '-')} (Python: {option}=...)"


def _ordered(found: list[_Found], role: str) -> list[_Found]:
    """Candidates, the conventionally named one (``image``, ``label``, ``bbox``) first."""
    return sorted(found, key=lambda c: (c.path[-1] != role, c.name))


def _ambiguous(dataset: str, role: str, found: list[_Found], where: str = "") -> InputError:
    names = ", ".join(c.name for c in _ordered(found, role))
    return InputError(
        f"dataset {dataset!r} has {len(found)} {_WHAT[role]} features{where}: {names}; {_pick_hint(role)}"
    )


def _named(dataset: str, role: str, wanted: str, leaves: list[_Found], kinds: tuple[str, ...], what: str) -> _Found:
    wanted = str(wanted).strip().strip("/")
    matches = [c for c in leaves if c.name == wanted]
    if not matches:
        fitting = [c.name for c in leaves if _kind(c.feature) in kinds]
        option = f" (--{_OPTION[role].replace('_', '-')} / {_OPTION[role]}=)" if role in _OPTION else ""
        raise NotFoundError(
            f"dataset {dataset!r} has no feature {wanted!r}{option}; "
            f"its {what} features: {', '.join(fitting) or 'none'}"
        )
    found = matches[0]
    kind = _kind(found.feature)
    if kind not in kinds:
        raise InputError(
            f"feature {wanted!r} of dataset {dataset!r} is a {type(found.feature).__name__}, not {what} "
            f"(expected {' or '.join(_KIND_NAMES[k] for k in kinds)})"
        )
    return found


_KIND_NAMES = {"image": "Image", "label": "ClassLabel", "bbox": "BBoxFeature", "text": "Text", "flag": "bool"}


def _flag(leaves: list[_Found], container: tuple[str, ...] | None, names: tuple[str, ...]) -> _Found | None:
    near = {c.path[-1]: c for c in leaves if c.container == container and _kind(c.feature) == "flag"}
    for name in names:
        if name in near:
            return near[name]
    return None


def _resolve(
    features: Any,
    task: str,
    *,
    dataset: str = "dataset",
    image_feature: str | None = None,
    label_feature: str | None = None,
    bbox_feature: str | None = None,
    difficult_feature: str | None = None,
    truncated_feature: str | None = None,
) -> dict[str, _Found | None]:
    task = _check_task(task)
    leaves = list(_walk(features))
    if not leaves:
        raise InputError(f"dataset {dataset!r} has no features")
    top = [c for c in leaves if c.container is None]

    if image_feature:
        image = _named(dataset, "image", image_feature, leaves, ("image",), "image")
        if image.container is not None:
            raise InputError(f"feature {image.name!r} of dataset {dataset!r} is inside a sequence, not one image")
    else:
        images = [c for c in top if _kind(c.feature) == "image"]
        if not images:
            raise InputError(
                f"dataset {dataset!r} has no image feature (tfds.features.Image) at its top level; "
                f"its features: {', '.join(c.name for c in leaves)}"
            )
        if len(images) > 1:
            raise _ambiguous(dataset, "image", images)
        image = images[0]

    chosen: dict[str, _Found | None] = dict.fromkeys(("image", "label", "bbox", "difficult", "truncated"))
    chosen["image"] = image
    if task == "classification":
        if label_feature:
            label = _named(dataset, "label", label_feature, leaves, ("label", "text"), "label")
            if label.container is not None:
                raise InputError(
                    f"feature {label.name!r} of dataset {dataset!r} is inside a sequence (one value per object); "
                    "import it with --task detection"
                )
        else:
            labels = [c for c in top if _kind(c.feature) == "label"]
            if not labels:
                nested = [c.name for c in leaves if c.container is not None and _kind(c.feature) == "label"]
                texts = [c.name for c in top if _kind(c.feature) == "text"]
                hint = (
                    f"; its label features hold one value per object ({', '.join(nested)}): use --task detection"
                    if nested
                    else f"; pick a text feature as the label with --label-feature ({', '.join(texts)})"
                    if texts
                    else ""
                )
                raise InputError(
                    f"dataset {dataset!r} has no label feature (tfds.features.ClassLabel) at its top level{hint}"
                )
            if len(labels) > 1:
                raise _ambiguous(dataset, "label", labels)
            label = labels[0]
        chosen["label"] = label
        return chosen

    if bbox_feature:
        bbox = _named(dataset, "bbox", bbox_feature, leaves, ("bbox",), "box")
        if bbox.depth > 1:
            raise InputError(f"feature {bbox.name!r} of dataset {dataset!r} is nested in more than one sequence")
    else:
        boxes = [c for c in leaves if _kind(c.feature) == "bbox" and c.depth <= 1]
        if not boxes:
            raise InputError(
                f"dataset {dataset!r} has no box feature (tfds.features.BBoxFeature); "
                "import it with --task classification, or pick another dataset"
            )
        if len(boxes) > 1:
            raise _ambiguous(dataset, "bbox", boxes)
        bbox = boxes[0]
    container = bbox.container
    if label_feature:
        label = _named(dataset, "label", label_feature, leaves, ("label", "text"), "label")
        if label.container not in (container, None):
            raise InputError(
                f"label feature {label.name!r} of dataset {dataset!r} is not beside the boxes {bbox.name!r}; "
                "pick a label in the same sequence, or one at the top level (one label for every box)"
            )
    else:
        near = [c for c in leaves if c.container == container and _kind(c.feature) == "label"]
        named_label = [c for c in near if c.path[-1] == "label"]
        if len(near) == 1 or (len(near) > 1 and len(named_label) == 1):
            label = named_label[0] if len(near) > 1 else near[0]
        elif len(near) > 1:
            where = f" beside the boxes {bbox.name!r}"
            raise _ambiguous(dataset, "label", near, where)
        else:
            # boxes without a label of their own (stanford_dogs): one image-level label for every box
            image_level = [c for c in top if _kind(c.feature) == "label"]
            if len(image_level) == 1:
                label = image_level[0]
            elif image_level:
                raise _ambiguous(dataset, "label", image_level, f" for the boxes {bbox.name!r}")
            else:
                raise InputError(
                    f"dataset {dataset!r} has no label feature (tfds.features.ClassLabel) beside its boxes "
                    f"{bbox.name!r}; pick one with --label-feature (Python: label_feature=...)"
                )
    chosen["bbox"], chosen["label"] = bbox, label
    if difficult_feature:
        chosen["difficult"] = _named(dataset, "difficult", difficult_feature, leaves, ("flag",), "flag")
    else:
        chosen["difficult"] = _flag(leaves, container, DIFFICULT_NAMES)
    if truncated_feature:
        chosen["truncated"] = _named(dataset, "truncated", truncated_feature, leaves, ("flag",), "flag")
    else:
        chosen["truncated"] = _flag(leaves, container, TRUNCATED_NAMES)
    return chosen


def discover_features(
    features: Any,
    task: str = "classification",
    *,
    dataset: str = "dataset",
    image_feature: str | None = None,
    label_feature: str | None = None,
    bbox_feature: str | None = None,
) -> dict[str, str | None]:
    """Find the image, label and (detection) box features in a TFDS feature structure.

    Classification needs exactly one top-level Image and one top-level ClassLabel. Detection needs
    one top-level Image and a BBoxFeature (top level or in a Sequence) with a ClassLabel beside it
    in the same Sequence (``label`` wins when there are several there; with none there, a single
    top-level ClassLabel labels every box). Boolean features beside the boxes named like
    `DIFFICULT_NAMES` / `TRUNCATED_NAMES` flag objects.

    Args:
        features: a ``tfds.features.FeaturesDict`` (``builder.info.features``).
        task: ``"classification"`` or ``"detection"``.
        dataset: the dataset's name, for messages.
        image_feature, label_feature, bbox_feature: feature paths (``"objects/bbox"``) that settle
            a choice the structure leaves open.

    Returns:
        ``{"image", "label", "bbox", "difficult", "truncated"}``: feature paths joined by ``/``,
        ``None`` where the task has none.

    Raises:
        InputError: a feature is missing or ambiguous; the message lists the candidates and the
            options that pick them.
    """
    found = _resolve(
        features,
        task,
        dataset=dataset,
        image_feature=image_feature,
        label_feature=label_feature,
        bbox_feature=bbox_feature,
    )
    return {role: None if c is None else c.name for role, c in found.items()}


# -- the import ----------------------------------------------------------------------------------


def _tfds():
    """tensorflow_datasets, imported on first use (with TensorFlow quiet and on legacy Keras)."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise EiqError(
            f"importing TFDS datasets needs TensorFlow Datasets ({exc}); install it with pip install 'eiq-lab[tf]'"
        ) from None
    return tfds


def _check_task(task: str) -> str:
    value = str(task).strip().lower()
    if value not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; received {task!r}")
    return value


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
    tfds = _tfds()
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


def _verified_choice(name: str, builder: Any, task: str) -> dict[str, str]:
    keys = [str(name).strip().split(":")[0], builder.name]
    config = getattr(builder, "builder_config", None)
    if config is not None:
        keys.insert(0, f"{builder.name}/{config.name}")
    for key in keys:
        if key in VERIFIED and task in VERIFIED[key]:
            return VERIFIED[key][task]
    return {}


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
    for part in _parse_parts(expr, default):
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


def _label_namer(found: _Found):
    """A function from a stored label value to its name (``None``: no label, as TFDS's -1)."""
    if _kind(found.feature) == "text":

        def text(value: Any) -> str | None:
            value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            return value.strip() or None

        return text
    feature = found.feature
    names: dict[int, str] = {}

    def name_of(value: Any) -> str | None:
        index = int(value)
        if index < 0:
            return None
        if index not in names:
            names[index] = feature.int2str(index)
        return names[index]

    return name_of


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
    tfds = _tfds()
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
    task = _check_task(task)
    for side, expr in (("train", train_split), ("test", test_split)):
        try:
            _parse_parts(expr, side)  # refuse a bad expression before loading TensorFlow
        except InputError as exc:
            raise InputError(f"--{side}-split: {exc}") from None
    builder = _open_builder(name, data_dir, download)
    dataset = str(name).strip()
    verified = _verified_choice(dataset, builder, task)
    found = _resolve(
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

    tfds = _tfds()
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
    label_of = _label_namer(found["label"])

    with project_for_import(project) as opened:
        session = ImportSession(
            opened,
            format="tfds",
            source=dataset,
            group=group,
            difficult=difficult,
            truncated=truncated,
            strict=strict,
            duplicates=duplicates,
            decode=decode,
            progress=progress,
        )
        with session:
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


def _classification_objects(example: dict, found: dict[str, _Found | None], label_of) -> list[LabelledObject]:
    label = label_of(_value(example, found["label"].path))
    return [] if label is None else [LabelledObject(label)]


def _detection_objects(example: dict, found: dict[str, _Found | None], label_of) -> list[LabelledObject] | str:
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
