"""The training input: decoded images kept in memory or streamed read the same batches; epochs are
shuffled by (seed, epoch) only."""

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
