"""TFDS features: the verified datasets of the basic mode and, for any other dataset, the search
for its image, label and box features (with errors that name the candidates when it is ambiguous).

TensorFlow Datasets loads on first use (`load_tfds`), never on import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import framework
from ..errors import EiqError, InputError, NotFoundError

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


def list_verified() -> list[dict[str, Any]]:
    """The verified datasets for the CLI and the GUI's basic mode.

    Returns:
        ``[{"name": "mnist", "tasks": ["classification"], "features": {task: choice}}, ...]``.
    """
    return [
        {"name": name, "tasks": list(tasks), "features": {task: dict(choice) for task, choice in tasks.items()}}
        for name, tasks in VERIFIED.items()
    ]


def verified_choice(name: str, builder: Any, task: str) -> dict[str, str]:
    """The verified features of the dataset `builder` opened for `name` (``{}``: not verified).

    Args:
        name: the name as given (``"voc/2007"``, ``"mnist:3.0.1"``).
        builder: its TFDS builder; its name and config name are looked up too.
        task: ``"classification"`` or ``"detection"``.

    Returns:
        The choice from `VERIFIED` for that task, or ``{}``.
    """
    keys = [str(name).strip().split(":")[0], builder.name]
    config = getattr(builder, "builder_config", None)
    if config is not None:
        keys.insert(0, f"{builder.name}/{config.name}")
    for key in keys:
        if key in VERIFIED and task in VERIFIED[key]:
            return VERIFIED[key][task]
    return {}


def load_tfds():
    """tensorflow_datasets, imported on first use (with TensorFlow quiet and on legacy Keras).

    Raises:
        EiqError: TensorFlow Datasets is not installed.
    """
    framework.tf()
    try:
        import tensorflow_datasets as tfds
    except ImportError as exc:
        raise EiqError(
            f"importing TFDS datasets needs TensorFlow Datasets ({exc}); install it with pip install 'eiq-lab[tf]'"
        ) from None
    return tfds


def check_task(task: str) -> str:
    """`task` normalized to one of `TASKS`.

    Raises:
        InputError: it is none of them.
    """
    value = str(task).strip().lower()
    if value not in TASKS:
        raise InputError(f"task must be one of {', '.join(TASKS)}; received {task!r}")
    return value


@dataclass(frozen=True)
class Found:
    """A leaf feature: its path, the innermost Sequence holding it (``None``: top level), nesting."""

    path: tuple[str, ...]
    feature: Any
    container: tuple[str, ...] | None
    depth: int

    @property
    def name(self) -> str:
        return "/".join(self.path)


def _walk(feature: Any, path: tuple[str, ...] = (), container: tuple[str, ...] | None = None, depth: int = 0):
    tfds = load_tfds()
    if isinstance(feature, tfds.features.FeaturesDict):
        for key, child in feature.items():
            yield from _walk(child, (*path, key), container, depth)
    elif isinstance(feature, tfds.features.Sequence):
        yield from _walk(feature.feature, path, path, depth + 1)
    else:
        yield Found(path, feature, container, depth)


def _kind(feature: Any) -> str:
    tfds = load_tfds()
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


def _ordered(found: list[Found], role: str) -> list[Found]:
    """Candidates, the conventionally named one (``image``, ``label``, ``bbox``) first."""
    return sorted(found, key=lambda c: (c.path[-1] != role, c.name))


def _ambiguous(dataset: str, role: str, found: list[Found], where: str = "") -> InputError:
    names = ", ".join(c.name for c in _ordered(found, role))
    return InputError(
        f"dataset {dataset!r} has {len(found)} {_WHAT[role]} features{where}: {names}; {_pick_hint(role)}"
    )


def _named(dataset: str, role: str, wanted: str, leaves: list[Found], kinds: tuple[str, ...], what: str) -> Found:
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


def _flag(leaves: list[Found], container: tuple[str, ...] | None, names: tuple[str, ...]) -> Found | None:
    near = {c.path[-1]: c for c in leaves if c.container == container and _kind(c.feature) == "flag"}
    for name in names:
        if name in near:
            return near[name]
    return None


def resolve_features(
    features: Any,
    task: str,
    *,
    dataset: str = "dataset",
    image_feature: str | None = None,
    label_feature: str | None = None,
    bbox_feature: str | None = None,
    difficult_feature: str | None = None,
    truncated_feature: str | None = None,
) -> dict[str, Found | None]:
    """`discover_features`, returning the `Found` leaves; `difficult_feature` and `truncated_feature`
    name the flags instead of looking for them by name."""
    task = check_task(task)
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

    chosen: dict[str, Found | None] = dict.fromkeys(("image", "label", "bbox", "difficult", "truncated"))
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
    found = resolve_features(
        features,
        task,
        dataset=dataset,
        image_feature=image_feature,
        label_feature=label_feature,
        bbox_feature=bbox_feature,
    )
    return {role: None if c is None else c.name for role, c in found.items()}


def label_namer(found: Found):
    """A function from a stored label value to its name (``None``: no label, as TFDS's -1).

    Args:
        found: the label feature: a ClassLabel (values are indices) or Text (values are the names).
    """
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
