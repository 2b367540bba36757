"""The training input: a project's labelled images streamed from SQLite into `tf.data`, decoded and
resized in the graph, augmented with OpenCV and preprocessed, in a seeded order that a resumed run repeats.
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
from ..models.interfaces import NORMALIZATIONS
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

#: Preprocess functions known to work pixel by pixel, so a whole batch goes through them at once; any
#: other (a plugin's, documented on one HWC image) is mapped over the batch's images one by one.
_PIXELWISE = tuple(function for function, _ in NORMALIZATIONS.values())


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
    first, then test); past that they are streamed from the project every epoch. A detector's
    unaugmented targets are encoded once and kept too, in what the images leave of the budget. Either
    way the result is the same: the caches change speed, never what a run reads.

    A detector's input goes through Python once per batch, not once per image: the batch's images are
    augmented with their boxes (each with its own seed, as alone) and encoded in one low-priority call;
    without augmentation the call only looks the cached targets up. Every Python call holds the GIL the
    training loop needs between steps, and each one from a low-priority thread may make it wait.

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
        self._cached: dict[str, np.ndarray | None] = {}  # decoded images per group
        self._targets: dict[str, np.ndarray | None] = {}  # a detector's unaugmented targets per group

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
            need = len(ids) * int(np.prod(self.input_size))
            cache = None
            if need and self._used() + need <= int(self.cache_bytes or 0):
                cache = np.empty((len(ids), *self.input_size), np.uint8)
                pages = self._decoded(ids, np.arange(len(ids))).batch(256)
                for images, indices, _ in pages.as_numpy_iterator():
                    cache[indices] = images
            self._cached[group] = cache
        return self._cached[group]

    def _used(self) -> int:
        """Bytes of the budget the caches hold now."""
        held = [*self._cached.values(), *self._targets.values()]
        return sum(a.nbytes for a in held if a is not None)

    def _target_shape(self) -> tuple[int, ...]:
        """The shape of one image's detection target (the encoder's output for no box)."""
        encode: Callable[[Any, Any], Any] = self.encode  # type: ignore[assignment]  # a detector always has one
        return tuple(np.shape(encode(np.zeros((0, 4), np.float32), np.zeros(0, np.int64))))

    def _encoded(self, group: str) -> np.ndarray | None:
        """The group's unaugmented detection targets [N, ...] in id order, encoded once (after the group's
        images are cached), if they fit what is left of the budget."""
        if group not in self._targets:
            _, boxes, classes = self._group(group)
            shape = self._target_shape()
            need = len(boxes) * int(np.prod(shape)) * 4
            targets = None
            if need and self._used() + need <= int(self.cache_bytes or 0):
                targets = np.empty((len(boxes), *shape), np.float32)
                for k, (b, c) in enumerate(zip(boxes, classes)):
                    targets[k] = self.encode(b, c)
            self._targets[group] = targets
        return self._targets[group]

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

    def _batches(self, group: str, order_of: Callable[[int], np.ndarray], key: Any) -> Any:
        """`_elements` in batches: ``(uint8 images [B, H, W, C], indices [B], positions [B])``; from the cache
        one Python call per batch (an array lookup), not one per image."""
        tf = self._tf
        cache = self._cache(group)
        if cache is None:
            return self._elements(group, order_of, key).batch(self.batch_size)
        signature = (
            tf.TensorSpec((None, *self.input_size), tf.uint8),
            tf.TensorSpec((None,), tf.int64),
            tf.TensorSpec((None,), tf.int64),
        )
        return tf.data.Dataset.from_generator(
            lambda k: _picked_batches(cache, order_of(k), self.batch_size), args=(key,), output_signature=signature
        )

    def _example(self, group: str) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
        """Classification: ``example(image, k, seed) -> (model input, one-hot target)`` for the group's k-th
        image; `seed` None leaves it unaugmented. The labels live in the graph, looked up by k."""
        tf = self._tf
        augment = self.augment
        labels = tf.constant(self._group(group)[1])
        n_classes = len(self.samples.classes)

        def example(image: Any, k: Any, seed: Any) -> tuple[Any, Any]:
            if seed is not None and augment is not None:
                image = augment.apply_tf(image, seed, nice=INPUT_NICE)
            return self.preprocess(image), tf.one_hot(tf.gather(labels, k), n_classes)

        return example

    def _box_batch(self, group: str) -> Callable[[Any, Any, Any], tuple[Any, Any]]:
        """Detection: ``batch(images, ks, seeds) -> (model inputs, targets)`` for a batch of the group's
        images (`ks` their indices, `seeds` [B, 2] or None: unaugmented), in one Python call.

        Each image is augmented with its boxes by its own seed and its kept boxes encoded: exactly what
        that image alone would give (its seed, not its place in the batch, draws its augmentation).
        An image whose boxes came through unmoved takes its cached target, which is the same encoding.
        """
        tf = self._tf
        augment, encode = self.augment, self.encode
        _, boxes, classes = self._group(group)
        cached = self._encoded(group)
        shape = self._target_shape()
        preprocess = self._preprocess_batch()

        def targets_of(ks: np.ndarray) -> np.ndarray:
            # numpy, in a low-priority input thread: unaugmented targets, looked up or encoded
            lower_thread_priority(INPUT_NICE)
            if cached is not None:
                return cached[ks]
            targets = np.empty((len(ks), *shape), np.float32)
            for i, k in enumerate(ks):
                targets[i] = encode(boxes[k], classes[k])
            return targets

        def augmented(images: np.ndarray, ks: np.ndarray, seeds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # numpy, in a low-priority input thread: augment each image with its boxes, then encode them
            lower_thread_priority(INPUT_NICE)
            out = np.empty_like(images)
            targets = np.empty((len(ks), *shape), np.float32)
            for i, k in enumerate(ks):
                out[i], moved, keep = augment.apply_with_boxes(images[i], boxes[k], seeds[i])
                if cached is not None and keep.all() and np.array_equal(moved, boxes[k]):
                    targets[i] = cached[k]
                else:
                    targets[i] = encode(moved[keep], classes[k][keep])
            return out, targets

        def batch(images: Any, ks: Any, seeds: Any) -> tuple[Any, Any]:
            if seeds is None or augment is None:
                targets = tf.numpy_function(targets_of, [ks], tf.float32, stateful=False)
            else:
                images, targets = tf.numpy_function(
                    augmented, [images, ks, seeds], (tf.uint8, tf.float32), stateful=False
                )  # fmt: skip
                images.set_shape((None, *self.input_size))
            targets.set_shape((None, *shape))
            return preprocess(images), targets

        return batch

    def _preprocess_batch(self) -> Callable[[Any], Any]:
        """`preprocess` on a batch [B, H, W, C]: at once when it works pixel by pixel, else image by image."""
        tf = self._tf
        preprocess = self.preprocess
        if preprocess in _PIXELWISE:
            return preprocess
        probe = tf.convert_to_tensor(preprocess(tf.zeros(self.input_size, tf.uint8)))
        spec = tf.TensorSpec(probe.shape, probe.dtype)
        return lambda images: tf.map_fn(preprocess, images, fn_output_signature=spec)

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
        detection = isinstance(self.samples, BoxSamples)
        example = self._box_batch("train") if detection else self._example("train")

        def order_of(epoch: Any) -> np.ndarray:
            return epoch_order(seed, int(epoch), count).astype(np.int64)

        def seeds(epoch: Any, pos: Any) -> Any:  # [seed, epoch * stride + position]: one per image
            return tf.stack([tf.fill(tf.shape(pos), tf.constant(seed, tf.int64)), epoch * _EPOCH_STRIDE + pos], -1)

        def one_epoch(epoch: Any) -> Any:
            if detection:
                batches = self._batches("train", order_of, epoch)
                return batches.map(
                    lambda images, ks, pos: example(images, ks, seeds(epoch, pos)),
                    num_parallel_calls=tf.data.AUTOTUNE, deterministic=True,
                )  # fmt: skip

            def load(image: Any, k: Any, pos: Any) -> tuple[Any, Any]:
                return example(image, k, seeds(epoch, pos))

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
        in_order, key = (lambda _: np.arange(count, dtype=np.int64)), tf.constant(0, tf.int64)
        if isinstance(self.samples, BoxSamples):
            example = self._box_batch("test")
            batches = self._batches("test", in_order, key)
            return batches.map(
                lambda images, ks, _: example(images, ks, None), num_parallel_calls=tf.data.AUTOTUNE
            ).prefetch(2)
        example = self._example("test")
        elements = self._elements("test", in_order, key)
        return (
            elements.map(lambda image, k, _: example(image, k, None), num_parallel_calls=tf.data.AUTOTUNE)
            .batch(self.batch_size)
            .prefetch(2)
        )


def _picked_batches(images: np.ndarray, order: np.ndarray, size: int) -> Iterator[tuple[np.ndarray, ...]]:
    """`_picked` a batch at a time: (images [B, H, W, C], indices [B], positions [B])."""
    for start in range(0, len(order), size):
        chosen = order[start : start + size]
        yield images[chosen], chosen, np.arange(start, start + len(chosen), dtype=np.int64)


def _picked(images: np.ndarray, order: np.ndarray) -> Iterator[tuple[np.ndarray, int, int]]:
    """(image, index, position) of cached images in `order` (a generator: kept out of the methods that
    tf.data's AutoGraph reads, which cannot convert generators)."""
    for pos, index in enumerate(order):
        yield images[index], index, pos
