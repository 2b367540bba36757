"""The training input: a project's labelled images streamed from SQLite into `tf.data`, decoded,
resized, augmented and preprocessed in the graph, in a seeded order that a resumed run repeats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import framework
from ..errors import InputError

#: Elements of one epoch are numbered below this; (epoch, position) -> one augmentation seed.
_EPOCH_STRIDE = 1 << 24

#: The default of `cache_budget`, in megabytes.
DEFAULT_CACHE_MB = 1024


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


def cache_budget() -> int:
    """Bytes of decoded images a run may keep in memory (``EIQ_TRAIN_CACHE_MB``, default 1024 MB)."""
    raw = os.environ.get("EIQ_TRAIN_CACHE_MB", "").strip()
    try:
        megabytes = float(raw) if raw else DEFAULT_CACHE_MB
    except ValueError:
        raise InputError(f"EIQ_TRAIN_CACHE_MB must be a number of megabytes; it is {raw!r}") from None
    return max(0, int(megabytes * 2**20))


@dataclass
class InputPipeline:
    """Builds the `tf.data` datasets of a classification run.

    Images are decoded and resized once and kept in memory while they fit `cache_bytes` (train
    first, then test); past that they are streamed from the project every epoch. Either way
    the result is the same: the cache changes speed, never what a run reads.

    Attributes:
        project: the open project (image bytes are read from it in pages).
        samples: the run's images and classes.
        input_size: (height, width, channels).
        batch_size: images per step.
        preprocess: the model's preprocessing, on a uint8 HWC tensor.
        augment: an augmentation pipeline (with ``apply(image, seed)``), or ``None``.
        seed: the run's seed.
        cache_bytes: how many bytes of decoded images may stay in memory (default: `cache_budget`).
    """

    project: Any
    samples: ClassSamples
    input_size: tuple[int, int, int]
    batch_size: int
    preprocess: Callable[[Any], Any]
    augment: Any = None
    seed: int = 0
    cache_bytes: int | None = None

    def __post_init__(self) -> None:
        self._tf = framework.tf()
        if self.cache_bytes is None:
            self.cache_bytes = cache_budget()
        self._cached: dict[str, np.ndarray | None] = {}

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.samples.train_count / self.batch_size)

    @property
    def test_steps(self) -> int:
        return math.ceil(self.samples.test_count / self.batch_size)

    # -- reading and decoding ----------------------------------------------------------------

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

    def _decoded(self, ids: np.ndarray, labels: np.ndarray, order: Any) -> Any:
        """(uint8 image, class, position) elements in `order`, decoded in parallel from the project.

        `order` is a numpy array, or an int64 tensor inside a `tf.data` function.
        """
        tf = self._tf
        signature = (tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
        elements = tf.data.Dataset.from_generator(
            lambda o: self._read(ids, labels, o), args=(order,), output_signature=signature
        )
        return elements.map(
            lambda data, label, pos: (self._decode(data), label, pos),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def _cache(self, group: str) -> np.ndarray | None:
        """The group's decoded images [N, H, W, C] in id order, if they fit what is left of the budget."""
        if group not in self._cached:
            ids, labels = self._group(group)
            used = sum(a.nbytes for a in self._cached.values() if a is not None)
            need = len(ids) * int(np.prod(self.input_size))
            cache = None
            if need and used + need <= int(self.cache_bytes or 0):
                cache = np.empty((len(ids), *self.input_size), np.uint8)
                pages = self._decoded(ids, labels, np.arange(len(ids))).batch(256)
                for images, _, positions in pages.as_numpy_iterator():
                    cache[positions] = images
            self._cached[group] = cache
        return self._cached[group]

    def _group(self, group: str) -> tuple[np.ndarray, np.ndarray]:
        return self.samples.train if group == "train" else self.samples.test

    def _elements(self, group: str, order_of: Callable[[int], np.ndarray], key: Any) -> Any:
        """``(uint8 image, class, position)`` elements of one pass over the group, in the order
        ``order_of(key)`` gives (`key` is a tensor inside the `tf.data` graph): from the cache, or
        read and decoded from the project."""
        tf = self._tf
        ids, labels = self._group(group)
        cache = self._cache(group)
        if cache is None:
            return tf.data.Dataset.from_tensors(key).flat_map(
                lambda k: self._decoded(ids, labels, tf.numpy_function(order_of, [k], tf.int64))
            )

        signature = (
            tf.TensorSpec(self.input_size, tf.uint8),
            tf.TensorSpec((), tf.int64),
            tf.TensorSpec((), tf.int64),
        )
        return tf.data.Dataset.from_generator(
            lambda k: _picked(cache, labels, order_of(k)), args=(key,), output_signature=signature
        )

    # -- datasets ------------------------------------------------------------------------------

    def train_dataset(self, first_epoch: int, last_epoch: int | None = None) -> Any:
        """Batches of (images, one-hot classes) for epochs `first_epoch` .. `last_epoch` (0-based; open-ended if None).

        Each epoch is shuffled by (seed, epoch) and every image's augmentation is drawn from
        (seed, epoch, position), so a run resumed at an epoch reads exactly what it would have read.
        """
        tf = self._tf
        count = self.samples.train_count
        n_classes = len(self.samples.classes)
        seed = int(self.seed)
        self._cache("train")  # filled now, eagerly, not inside the tf.data function below

        def order_of(epoch: Any) -> np.ndarray:
            return epoch_order(seed, int(epoch), count).astype(np.int64)

        def one_epoch(epoch: Any) -> Any:
            def load(image: Any, label: Any, pos: Any) -> tuple[Any, Any]:
                if self.augment is not None:
                    element_seed = tf.stack([tf.constant(seed, tf.int64), epoch * _EPOCH_STRIDE + pos])
                    image = self.augment.apply(image, element_seed)
                return self.preprocess(image), tf.one_hot(label, n_classes)

            elements = self._elements("train", order_of, epoch)
            return elements.map(load, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(self.batch_size)

        last = last_epoch if last_epoch is not None else 2**31 - 1
        epochs = tf.data.Dataset.range(first_epoch, last + 1)
        return epochs.flat_map(one_epoch).prefetch(tf.data.AUTOTUNE)

    def test_dataset(self) -> Any | None:
        """Batches of the test group, in id order, not augmented (``None`` when the group is empty)."""
        if not self.samples.test_count:
            return None
        tf = self._tf
        count = self.samples.test_count
        n_classes = len(self.samples.classes)
        self._cache("test")
        elements = self._elements("test", lambda _: np.arange(count, dtype=np.int64), tf.constant(0, tf.int64))
        return (
            elements.map(lambda image, label, _: (self.preprocess(image), tf.one_hot(label, n_classes)))
            .batch(self.batch_size)
            .prefetch(2)
        )


def _picked(images: np.ndarray, labels: np.ndarray, order: np.ndarray) -> Iterator[tuple[np.ndarray, int, int]]:
    """(image, class, position) of cached images in `order` (a generator: kept out of the methods that
    tf.data's AutoGraph reads, which cannot convert generators)."""
    for pos, index in enumerate(order):
        yield images[index], labels[index], pos
