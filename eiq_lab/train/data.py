"""The training input: a project's labelled images streamed from SQLite into `tf.data`, decoded,
resized, augmented and preprocessed in the graph, in a seeded order that a resumed run repeats.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import framework
from ..errors import InputError

#: Elements of one epoch are numbered below this; (epoch, position) -> one augmentation seed.
_EPOCH_STRIDE = 1 << 24


@dataclass
class ClassSamples:
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

    @property
    def train_count(self) -> int:
        return len(self.train[0])

    @property
    def test_count(self) -> int:
        return len(self.test[0])


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


def epoch_order(seed: int, epoch: int, count: int) -> np.ndarray:
    """The shuffled order of one epoch: a function of (seed, epoch) only, so a resumed run repeats it."""
    return np.random.default_rng([seed, epoch]).permutation(count)


@dataclass
class InputPipeline:
    """Builds the `tf.data` datasets of a classification run.

    Attributes:
        project: the open project (image bytes are read from it batch by batch).
        samples: the run's images and classes.
        input_size: (height, width, channels).
        batch_size: images per step.
        preprocess: the model's preprocessing, on a uint8 HWC tensor.
        augment: an augmentation pipeline (with ``apply(image, seed)``), or ``None``.
        seed: the run's seed.
    """

    project: Any
    samples: ClassSamples
    input_size: tuple[int, int, int]
    batch_size: int
    preprocess: Callable[[Any], Any]
    augment: Any = None
    seed: int = 0

    def __post_init__(self) -> None:
        self._tf = framework.tf()

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.samples.train_count / self.batch_size)

    @property
    def test_steps(self) -> int:
        return math.ceil(self.samples.test_count / self.batch_size)

    def _read(self, ids: np.ndarray, labels: np.ndarray, order: np.ndarray) -> Iterator[tuple[bytes, int, int]]:
        # blobs are read a page at a time, in the epoch's order
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            for pos, k in enumerate(chunk, start):
                yield self.project.image_data(int(ids[k])), int(labels[k]), pos

    def _decode(self, data: Any) -> Any:
        # runs inside tf.data's traced map: uses the module captured at build time, no framework call
        tf = self._tf
        h, w, c = self.input_size
        image = tf.io.decode_image(data, channels=c, expand_animations=False)
        image = tf.image.resize(image, (h, w), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    def _signature(self) -> tuple:
        tf = framework.tf()
        return (
            tf.TensorSpec((), tf.string),
            tf.TensorSpec((), tf.int64),
            tf.TensorSpec((), tf.int64),
        )

    def train_dataset(self, first_epoch: int, last_epoch: int | None = None) -> Any:
        """Batches of (images, one-hot classes) for epochs `first_epoch` .. `last_epoch` (0-based; open-ended if None).

        Each epoch is shuffled by (seed, epoch) and every image's augmentation is drawn from
        (seed, epoch, position), so a run resumed at an epoch reads exactly what it would have read.
        """
        tf = framework.tf()
        ids, labels = self.samples.train
        n_classes = len(self.samples.classes)
        seed = int(self.seed)

        def one_epoch(epoch: Any) -> Any:
            def gen(e: int) -> Iterator[tuple[bytes, int, int]]:
                return self._read(ids, labels, epoch_order(seed, int(e), len(ids)))

            elements = tf.data.Dataset.from_generator(gen, args=(epoch,), output_signature=self._signature())

            def load(data: Any, label: Any, pos: Any) -> tuple[Any, Any]:
                image = self._decode(data)
                if self.augment is not None:
                    element_seed = tf.stack([tf.constant(seed, tf.int64), epoch * _EPOCH_STRIDE + pos])
                    image = self.augment.apply(image, element_seed)
                return self.preprocess(image), tf.one_hot(label, n_classes)

            return elements.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(self.batch_size)

        last = last_epoch if last_epoch is not None else 2**31 - 1
        epochs = tf.data.Dataset.range(first_epoch, last + 1)
        return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)

    def test_dataset(self) -> Any | None:
        """Batches of the test group, in id order, not augmented (``None`` when the group is empty)."""
        if not self.samples.test_count:
            return None
        tf = framework.tf()
        ids, labels = self.samples.test
        n_classes = len(self.samples.classes)

        def gen() -> Iterator[tuple[bytes, int, int]]:
            return self._read(ids, labels, np.arange(len(ids)))

        elements = tf.data.Dataset.from_generator(gen, output_signature=self._signature())

        def load(data: Any, label: Any, pos: Any) -> tuple[Any, Any]:
            return self.preprocess(self._decode(data)), tf.one_hot(label, n_classes)

        return elements.map(load, num_parallel_calls=tf.data.AUTOTUNE).batch(self.batch_size).prefetch(2)
