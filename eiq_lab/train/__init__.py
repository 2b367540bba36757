"""Training: settings, the project's images as `tf.data`, the Trainer with checkpoints, continue and
restore, and QAT, pruning and clustering. Importing this package loads no TensorFlow.
"""

from __future__ import annotations

from typing import Any

from .settings import (
    OPTIMIZERS,
    ClusterSettings,
    LearningRateDecay,
    PruneSettings,
    StopCondition,
    TrainingSettings,
    parse_input_size,
)

__all__ = [
    "OPTIMIZERS",
    "ClusterSettings",
    "LearningRateDecay",
    "PruneSettings",
    "StopCondition",
    "Trainer",
    "TrainingResult",
    "TrainingSettings",
    "load_run_model",
    "parse_input_size",
]


def __getattr__(name: str) -> Any:
    # the trainer imports TensorFlow-facing code lazily; settings stay importable without it
    if name in ("Trainer", "TrainingResult", "load_run_model"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
