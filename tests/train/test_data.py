"""The training input: decoded images kept in memory or streamed read the same batches (a detector's
targets are encoded once while they fit too); epochs are shuffled by (seed, epoch) only."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab.augment import PRESETS
from eiq_lab.errors import InputError
from eiq_lab.models.interfaces import signed_normalization
from eiq_lab.project import open_project
from eiq_lab.train.data import InputPipeline, cache_budget, epoch_order
from eiq_lab.train.samples import class_samples


def _pipeline(project, cache_bytes, augment=PRESETS["strong"]):
    samples = class_samples(project)
    return InputPipeline(project, samples, (32, 32, 3), 8, signed_normalization, augment, 5, cache_bytes)


def _batches(dataset, count):
    return [(x.numpy(), y.numpy()) for x, y in dataset.take(count)]


def test_cached_and_streamed_inputs_are_the_same_batches(digits_path):
    with open_project(digits_path) as project:
        cached = _pipeline(project, cache_bytes=2**30)
        streamed = _pipeline(project, cache_bytes=0)
        steps = cached.steps_per_epoch
        first, second = (
            _batches(cached.train_dataset(0, 1), 2 * steps),
            _batches(streamed.train_dataset(0, 1), 2 * steps),
        )
        assert cached._cached["train"] is not None and streamed._cached["train"] is None
        resumed = _batches(streamed.train_dataset(1, 1), steps)  # epoch 2 alone, as a continued run reads it
        test_cached = _batches(cached.test_dataset(), cached.test_steps)
        test_streamed = _batches(streamed.test_dataset(), streamed.test_steps)
    assert len(first) == 2 * steps
    for (xa, ya), (xb, yb) in zip(first + test_cached, second + test_streamed):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    for (xa, _), (xb, _) in zip(first[steps:], resumed):
        np.testing.assert_array_equal(xa, xb)
    # the second epoch is shuffled differently and augmented differently from the first
    assert not np.array_equal(first[0][0], first[steps][0])
    assert first[0][0].min() >= -1 and first[0][0].max() <= 1  # preprocessed: x / 127.5 - 1


def test_the_cache_budget_is_shared_train_first(digits_path):
    with open_project(digits_path) as project:
        samples = class_samples(project)
        train_bytes = samples.train_count * 32 * 32 * 3
        inputs = _pipeline(project, cache_bytes=train_bytes, augment=None)
        inputs.train_dataset(0, 0)
        inputs.test_dataset()
    assert inputs._cached["train"].nbytes == train_bytes and inputs._cached["test"] is None


def test_epoch_order_depends_on_seed_and_epoch_only():
    assert np.array_equal(epoch_order(3, 4, 50), epoch_order(3, 4, 50))
    assert sorted(epoch_order(3, 4, 50)) == list(range(50))
    assert not np.array_equal(epoch_order(3, 4, 50), epoch_order(3, 5, 50))


def test_cache_budget_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EIQ_TRAIN_CACHE_MB", "1.5")
    assert cache_budget() == int(1.5 * 2**20)
    monkeypatch.setenv("EIQ_TRAIN_CACHE_MB", "lots")
    with pytest.raises(InputError, match="EIQ_TRAIN_CACHE_MB must be a number of megabytes"):
        cache_budget()


def test_a_detectors_unaugmented_targets_are_encoded_once_not_every_epoch(shapes_path):
    from eiq_lab.models import registry
    from eiq_lab.train.samples import box_samples

    size = (96, 96, 3)
    model_encode = registry().get("ssd_mobilenet_v2").encoder(size, 3)
    encoded = []

    def encode(boxes, classes):
        if len(boxes):  # (an empty call tells the target's shape)
            encoded.append(len(boxes))
        return model_encode(boxes, classes)

    with open_project(shapes_path) as project:
        samples = box_samples(project, size)
        inputs = InputPipeline(project, samples, size, 8, signed_normalization, None, 5, 2**30, encode)
        epochs = list(inputs.train_dataset(0, 2).as_numpy_iterator())
        for _ in range(2):  # the trainer tests after every epoch
            tests = list(inputs.test_dataset().as_numpy_iterator())
    assert len(epochs) == 3 * inputs.steps_per_epoch and len(tests) == inputs.test_steps
    assert len(encoded) == samples.train_count + samples.test_count


def test_a_detectors_targets_share_the_cache_budget_after_its_images(shapes_path):
    from eiq_lab.models import registry
    from eiq_lab.train.samples import box_samples

    size = (96, 96, 3)
    encode = registry().get("ssd_mobilenet_v2").encoder(size, 3)
    with open_project(shapes_path) as project:
        samples = box_samples(project, size)
        image_bytes = samples.train_count * 96 * 96 * 3
        target_bytes = samples.train_count * encode(np.zeros((0, 4), np.float32), np.zeros(0, np.int64)).nbytes
        inputs = InputPipeline(
            project, samples, size, 8, signed_normalization, None, 5, image_bytes + target_bytes, encode
        )  # fmt: skip
        inputs.train_dataset(0, 0)
        inputs.test_dataset()
    assert inputs._cached["train"].nbytes == image_bytes and inputs._targets["train"].nbytes == target_bytes
    assert inputs._cached["test"] is None and inputs._targets["test"] is None  # nothing left for the test group


def test_input_threads_stay_at_input_nice_however_many_calls_they_make():
    """TensorFlow gives each call into Python a new thread state: the priority must still drop only once."""
    import os
    import threading

    from eiq_lab import framework
    from eiq_lab.augment.pipeline import lower_thread_priority
    from eiq_lab.train.data import INPUT_NICE

    tf = framework.tf()
    seen = []

    def work(x):
        lower_thread_priority(INPUT_NICE)
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return x

    calls = tf.data.Dataset.range(40).map(lambda x: tf.numpy_function(work, [x], tf.int64), num_parallel_calls=2)
    assert len(list(calls.as_numpy_iterator())) == 40
    assert set(seen) == {min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + INPUT_NICE)}
