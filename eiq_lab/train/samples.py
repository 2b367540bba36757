"""What a run reads from a project: the images of the train and test groups and their targets.

`class_samples` gives a classifier's images (one full-image label each), `box_samples` a detector's
(boxes, normalised to the image, with their classes). Both check the project before anything is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import InputError


class _Counts:
    """Image counts of a run's samples (``train`` and ``test`` start with their image ids)."""

    train: tuple
    test: tuple

    @property
    def train_count(self) -> int:
        return len(self.train[0])

    @property
    def test_count(self) -> int:
        return len(self.test[0])


@dataclass
class ClassSamples(_Counts):
    """The images a classification run reads: ids and class indices for train and test.

    Attributes:
        classes: class names in output order (the project's labels that train images carry, by id).
        train, test: ``(image_ids, class_indices)`` arrays, by image id.
        skipped: counts of images left out, by reason.
    """

    classes: list[str]
    train: tuple[np.ndarray, np.ndarray]
    test: tuple[np.ndarray, np.ndarray]
    skipped: dict[str, int] = field(default_factory=dict)


def class_samples(project: Any, classes: list[str] | None = None) -> ClassSamples:
    """Collect the full-image-labelled images of the train and test groups.

    Images with several full-image labels are left out (a classifier learns one class per image),
    and so are test images whose label no train image has; both are counted in ``skipped``.

    Args:
        project: an open `Project`.
        classes: the class list to use (a continued or restored run keeps its own), or ``None``.

    Raises:
        InputError: no labelled train image, fewer than two classes, or a class of `classes` missing.
    """
    names = {label.id: str(label) for label in project.labels()}
    train_rows = project.full_image_labels("train")
    test_rows = project.full_image_labels("test")
    skipped: dict[str, int] = {}
    single_train = [(i, ls[0]) for i, ls in train_rows if len(ls) == 1]
    multi = len(train_rows) - len(single_train)
    if multi:
        skipped["train images with several full-image labels"] = multi
    if classes is None:
        used = sorted({label for _, label in single_train})
        classes = [names[i] for i in used]
    index = {name: k for k, name in enumerate(classes)}
    train_total = project.count_images(group="train")
    if not single_train:
        boxes = project.count_images(group="train", annotated=True)
        hint = f" ({boxes} train image(s) have boxes only: train a detector with --task detection)" if boxes else ""
        raise InputError(
            f"{project.path.name} has no train image with a full-image label ({train_total} train image(s)){hint}; "
            "label images, and put some in the train group (eiq project split)"
        )
    if len(classes) < 2:
        raise InputError(
            f"classification needs at least two classes; the train images of {project.path.name} carry "
            f"{len(classes)} ({', '.join(classes) or 'none'})"
        )

    def collect(rows: list[tuple[int, list[int]]], group: str) -> tuple[np.ndarray, np.ndarray]:
        ids, labels = [], []
        unknown = 0
        for image_id, label_ids in rows:
            if len(label_ids) != 1:
                continue
            k = index.get(names[label_ids[0]])
            if k is None:
                unknown += 1
                continue
            ids.append(image_id)
            labels.append(k)
        if unknown:
            skipped[f"{group} images whose label is not a class of the model"] = unknown
        return np.asarray(ids, np.int64), np.asarray(labels, np.int64)

    train = collect(train_rows, "train")
    if len(train[0]) == 0:
        raise InputError(f"none of the train images of {project.path.name} carries one of the classes {classes}")
    test_multi = sum(1 for _, ls in test_rows if len(ls) != 1)
    if test_multi:
        skipped["test images with several full-image labels"] = test_multi
    unlabeled = train_total - len(train_rows)
    if unlabeled:
        skipped["train images without a full-image label"] = unlabeled
    return ClassSamples(list(classes), train, collect(test_rows, "test"), skipped)


@dataclass
class BoxSamples(_Counts):
    """The images a detection run reads: ids and, per image, its boxes and their class indices.

    Attributes:
        classes: class names in output order (the project's labels that train boxes carry, by id).
        train, test: ``(image_ids, boxes, box_classes)``: ids [N]; boxes a list of float32 [n, 4]
            arrays (ymin, xmin, ymax, xmax, normalised to the image); box_classes a list of int64 [n].
        skipped: counts of images or boxes left out, by reason.
        most_objects: the most boxes one train image holds.
    """

    classes: list[str]
    train: tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]
    test: tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]
    skipped: dict[str, int] = field(default_factory=dict)
    most_objects: int = 0


def box_samples(project: Any, input_size: tuple[int, int, int], classes: list[str] | None = None) -> BoxSamples:
    """Collect the images with boxes of the train and test groups.

    A box smaller than one pixel at the model's input size (a zero-area box, or a sliver a resize
    makes vanish) is left out: no anchor can match it and its offsets would be infinite. Test boxes
    whose label no train box has are left out too. Both are counted in ``skipped``, and so are train
    images without boxes (a detector learns from images with boxes; their other objects would teach
    it that they are background).

    Args:
        project: an open `Project`.
        input_size: the model's (height, width, channels).
        classes: the class list to use (a continued or restored run keeps its own), or ``None``.

    Raises:
        InputError: no train image has a box (the message says how many images have boxes or
            full-image labels, and where), or a class of `classes` is missing.
    """
    names = {label.id: str(label) for label in project.labels()}
    train_rows = project.boxes_by_image("train")
    test_rows = project.boxes_by_image("test")
    train_total = project.count_images(group="train")
    if not train_rows:
        elsewhere = sum(len(project.boxes_by_image(g)) for g in (None, "validation")) + len(test_rows)
        labelled = len(project.full_image_labels("train"))
        where = f"; {elsewhere} image(s) outside the train group have boxes (eiq project split)" if elsewhere else ""
        hint = f" ({labelled} have full-image labels only: train a classifier with --task classification)"
        raise InputError(
            f"{project.path.name} has no train image with boxes: 0 of its {train_total} train image(s)"
            f"{hint if labelled else ''}{where}; draw boxes on images (the Annotator, or import Pascal VOC)"
        )
    if classes is None:
        classes = [names[i] for i in sorted({label for _, _, _, boxes in train_rows for label, _ in boxes})]
    index = {name: k for k, name in enumerate(classes)}
    height, width = int(input_size[0]), int(input_size[1])
    skipped: dict[str, int] = {}

    def count(reason: str, n: int) -> None:
        if n:
            skipped[reason] = skipped.get(reason, 0) + n

    def collect(rows: list, group: str) -> tuple[np.ndarray, list[np.ndarray], list[np.ndarray]]:
        ids, all_boxes, all_classes = [], [], []
        for image_id, image_w, image_h, boxes in rows:
            kept, kinds = [], []
            for label_id, (x, y, w, h) in boxes:
                k = index.get(names[label_id])
                if k is None:
                    count(f"{group} boxes whose label is not a class of the model", 1)
                    continue
                if w * width / image_w < 1.0 or h * height / image_h < 1.0:
                    count(f"{group} boxes smaller than one pixel at the model's {width}x{height} input", 1)
                    continue
                kept.append((y / image_h, x / image_w, (y + h) / image_h, (x + w) / image_w))
                kinds.append(k)
            ids.append(image_id)
            all_boxes.append(np.clip(np.asarray(kept, np.float32).reshape(-1, 4), 0.0, 1.0))
            all_classes.append(np.asarray(kinds, np.int64))
        return np.asarray(ids, np.int64), all_boxes, all_classes

    train = collect(train_rows, "train")
    if not any(len(c) for c in train[2]):
        raise InputError(f"none of the train boxes of {project.path.name} is usable: {skipped}")
    count("train images without boxes", train_total - len(train_rows))
    test = collect(test_rows, "test")
    most = max(len(c) for c in train[2])
    return BoxSamples(list(classes), train, test, skipped, most)
