"""Fixtures for the augmentation tests: TensorFlow, small sample photos, and a helper that augments."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from eiq_lab import framework
from eiq_lab.augment import Pipeline, Step


@pytest.fixture(scope="session")
def tf():
    return framework.tf()


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A 128x128 colour photo (every 4th pixel of scikit-image's astronaut)."""
    return np.ascontiguousarray(data.astronaut()[::4, ::4])


@pytest.fixture(scope="session")
def chelsea() -> np.ndarray:
    """A 75x113 colour photo (not square; every 4th pixel of scikit-image's chelsea)."""
    return np.ascontiguousarray(data.chelsea()[::4, ::4])


def augment(image: np.ndarray, op: str, probability: float = 1.0, seed=(1, 2), **params) -> np.ndarray:
    """`image` through a one-step pipeline, as a numpy array."""
    return Pipeline([Step(op, probability, params)]).apply(image, list(seed))
