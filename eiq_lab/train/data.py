"""The training input: a project's labelled images streamed from SQLite into `tf.data`, decoded and
resized in the graph, augmented with OpenCV (`Pipeline.apply_tf`) and preprocessed, in a seeded order
that a resumed run repeats.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import framework
from ..augment.pipeline import lower_thread_priority
from ..errors import InputError
from .samples import BoxSamples, ClassSamples

#: Elements of one epoch are numbered below this; (epoch, position) -> one augmentation seed.
_EPOCH_STRIDE = 1 << 24

#: How much lower the priority of the threads that augment is: they take the CPU time the training step
#: leaves idle. At equal priority, on a CPU with few cores, every few hundred microseconds of augmenting
#: pre-empts one of the step's threads, and the step's parallel ops wait for it (measured: 0.87x of the
#: step's speed with a 4-operator pipeline costing 3 % of one core).
INPUT_NICE = 10

#: The default of `cache_budget`, in megabytes.
DEFAULT_CACHE_MB = 1024


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
    """Builds the `tf.data` datasets of a run: classification (`ClassSamples`: one-hot targets) or
    detection (`BoxSamples`: boxes augmented with their image, then turned into the model's targets
    by `encode`).

    Images are decoded and resized once and kept in memory while they fit `cache_bytes` (train
    first, then test); past that they are streamed from the project every epoch. Either way
    the result is the same: the cache changes speed, never what a run reads.

    Attributes:
        project: the open project (image bytes are read from it in pages).
        samples: the run's images and targets.
        input_size: (height, width, channels).
        batch_size: images per step.
        preprocess: the model's preprocessing, on a uint8 HWC tensor.
        augment: an augmentation pipeline (with ``apply_tf(image, seed[, boxes])``), or ``None``.
        seed: the run's seed.
        cache_bytes: how many bytes of decoded images may stay in memory (default: `cache_budget`).
        encode: detection only: ``encode(boxes [n, 4], classes [n]) -> target``, numpy arrays in and out.
    """

    project: Any
    samples: ClassSamples | BoxSamples
    input_size: tuple[int, int, int]
    batch_size: int
    preprocess: Callable[[Any], Any]
    augment: Any = None
    seed: int = 0
    cache_bytes: int | None = None
    encode: Callable[[Any, Any], Any] | None = None

    def __post_init__(self) -> None:
        self._tf = framework.tf()
        if self.cache_bytes is None:
            self.cache_bytes = cache_budget()
        if isinstance(self.samples, BoxSamples) and self.encode is None:
            raise InputError("a detection run's input needs the model's encoder (encode=)")
        self._cached: dict[str, np.ndarray | None] = {}

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.samples.train_count / self.batch_size)

    @property
    def test_steps(self) -> int:
        return math.ceil(self.samples.test_count / self.batch_size)

    # -- reading and decoding ----------------------------------------------------------------

    def _read(self, ids: np.ndarray, order: np.ndarray) -> Iterator[tuple[bytes, int, int]]:
        # blobs are read a page at a time, in the epoch's order
        for start in range(0, len(order), 64):
            chunk = order[start : start + 64]
            for pos, k in enumerate(chunk, start):
                yield self.project.image_data(int(ids[k])), int(k), pos

    def _decode(self, data: Any) -> Any:
        # runs inside tf.data's traced map: uses the module captured at build time, no framework call
        tf = self._tf
        h, w, c = self.input_size
        image = tf.io.decode_image(data, channels=c, expand_animations=False)
        image = tf.image.resize(image, (h, w), method="bilinear", antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8)

    def _decoded(self, ids: np.ndarray, order: Any) -> Any:
        """(uint8 image, index in the group, position) elements in `order`, decoded in parallel from
        the project. `order` is a numpy array, or an int64 tensor inside a `tf.data` function.
        """
        tf = self._tf
        signature = (tf.TensorSpec((), tf.string), tf.TensorSpec((), tf.int64), tf.TensorSpec((), tf.int64))
        elements = tf.data.Dataset.from_generator(
            lambda o: self._read(ids, o), args=(order,), output_signature=signature
        )
        return elements.map(
            lambda data, k, pos: (self._decode(data), k, pos),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )

    def _cache(self, group: str) -> np.ndarray | None:
        """The group's decoded images [N, H, W, C] in id order, if they fit what is left of the budget."""
        if group not in self._cached:
            ids = self._group(group)[0]
            used = sum(a.nbytes for a in self._cached.values() if a is not None)
            need = len(ids) * int(np.prod(self.input_size))
            cache = None
            if need and used + need <= int(self.cache_bytes or 0):
                cache = np.empty((len(ids), *self.input_size), np.uint8)
                pages = self._decoded(ids, np.arange(len(ids))).batch(256)
                for images, indices, _ in pages.as_numpy_iterator():
                    cache[indices] = images
            self._cached[group] = cache
        return self._cached[group]

    def _group(self, group: str) -> tuple:
        return self.samples.train if group == "train" else self.samples.test

    def _elements(self, group: str, order_of: Callable[[int], np.ndarray], key: Any) -> Any:
        """``(uint8 image, index in the group, position)`` elements of one pass over the group, in the
        order ``order_of(key)`` gives (`key` is a tensor inside the `tf.data` graph): from the cache,
        or read and decoded from the project."""
        tf = self._tf
        ids = self._group(group)[0]
        cache = self._cache(group)
        if cache is None:
            return tf.data.Dataset.from_tensors(key).flat_map(
                lambda k: self._decoded(ids, tf.numpy_function(order_of, [k], tf.int64))
            )

        signature = (
            tf.TensorSpec(self.input_size, tf.uint8),
            tf.TensorSpec((), tf.int64),
            tf.TensorSpec((), tf.int64),
        )
        return tf.data.Dataset.from_generator(
            lambda k: _picked(cache, order_of(k)), args=(key,), output_signature=signature
        )

    def _example(self, group: str) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
        """``example(image, k, seed) -> (model input, target)`` for the group's k-th image; `seed` None
        leaves it unaugmented. Targets live in the graph as constants, looked up by k."""
        tf = self._tf
        augment = self.augment
        if isinstance(self.samples, BoxSamples):
            _, boxes, classes = self._group(group)
            lengths = [len(c) for c in classes]
            all_boxes = tf.RaggedTensor.from_row_lengths(
                np.concatenate([*boxes, np.zeros((0, 4), np.float32)]), np.asarray(lengths, np.int64)
            )
            all_classes = tf.RaggedTensor.from_row_lengths(
                np.concatenate([*classes, np.zeros(0, np.int64)]), np.asarray(lengths, np.int64)
            )

            encode, shape = self.encode, self.input_size
            target_shape = np.shape(encode(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)))

            def work(image: np.ndarray, boxes: np.ndarray, classes: np.ndarray, seed: np.ndarray) -> tuple:
                # numpy, in a low-priority input thread: augment the image with its boxes, then encode them
                lower_thread_priority(INPUT_NICE)
                if seed[0] >= 0 and augment is not None:
                    image, boxes, keep = augment.apply_with_boxes(image, boxes, seed)
                    boxes, classes = boxes[keep], classes[keep]
                return image, np.asarray(encode(boxes, classes), np.float32)

            def example(image: Any, k: Any, seed: Any) -> tuple[Any, Any]:
                no_seed = tf.constant([-1, 0], tf.int64)
                image, target = tf.numpy_function(
                    work, [image, all_boxes[k], all_classes[k], no_seed if seed is None else seed],
                    (tf.uint8, tf.float32), stateful=False,
                )  # fmt: skip
                image.set_shape(shape)
                target.set_shape(target_shape)
                return self.preprocess(image), target

            return example
        labels = tf.constant(self._group(group)[1])
        n_classes = len(self.samples.classes)

        def example(image: Any, k: Any, seed: Any) -> tuple[Any, Any]:
            if seed is not None and augment is not None:
                image = augment.apply_tf(image, seed, nice=INPUT_NICE)
            return self.preprocess(image), tf.one_hot(tf.gather(labels, k), n_classes)

        return example

    def preprocessed(self, group: str, limit: int | None = None) -> Iterator[np.ndarray]:
        """Up to `limit` images of the group in id order, decoded, resized and preprocessed as training
        reads them, unaugmented, each [H, W, C] (for calibration and checks); streamed, never cached."""
        ids = self._group(group)[0]
        count = len(ids) if limit is None else min(int(limit), len(ids))
        elements = self._decoded(ids, np.arange(count, dtype=np.int64))
        return elements.map(lambda image, k, pos: self.preprocess(image)).as_numpy_iterator()

    # -- datasets ------------------------------------------------------------------------------

    def train_dataset(self, first_epoch: int, last_epoch: int | None = None) -> Any:
        """Batches of (inputs, targets) for epochs `first_epoch` .. `last_epoch` (0-based; open-ended if None).

        Each epoch is shuffled by (seed, epoch) and every image's augmentation is drawn from
        (seed, epoch, position), so a run resumed at an epoch reads exactly what it would have read.
        """
        tf = self._tf
        count = self.samples.train_count
        seed = int(self.seed)
        self._cache("train")  # filled now, eagerly, not inside the tf.data function below
        example = self._example("train")

        def order_of(epoch: Any) -> np.ndarray:
            return epoch_order(seed, int(epoch), count).astype(np.int64)

        def one_epoch(epoch: Any) -> Any:
            def load(image: Any, k: Any, pos: Any) -> tuple[Any, Any]:
                return example(image, k, tf.stack([tf.constant(seed, tf.int64), epoch * _EPOCH_STRIDE + pos]))

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
        self._cache("test")
        example = self._example("test")
        elements = self._elements("test", lambda _: np.arange(count, dtype=np.int64), tf.constant(0, tf.int64))
        return (
            elements.map(lambda image, k, _: example(image, k, None), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.batch_size)
            .prefetch(2)
        )


def _picked(images: np.ndarray, order: np.ndarray) -> Iterator[tuple[np.ndarray, int, int]]:
    """(image, index, position) of cached images in `order` (a generator: kept out of the methods that
    tf.data's AutoGraph reads, which cannot convert generators)."""
    for pos, index in enumerate(order):
        yield images[index], index, pos
