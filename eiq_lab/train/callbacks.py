"""The Keras callback that ties a `fit` to a run: events per step and per epoch, a checkpoint per
epoch in the project, stop requests and stop conditions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .. import framework
from ..errors import Stopped
from ..events import Progress
from .stopping import StopMonitor


def _rename(logs: dict[str, Any] | None) -> dict[str, float]:
    """Keras' names (``val_loss``) -> ours (``test_loss``); learning rate and the like dropped."""
    out = {}
    for key, value in (logs or {}).items():
        if key in ("lr", "learning_rate", "size", "batch"):
            continue
        name = "test_" + key[4:] if key.startswith("val_") else key
        out[name] = float(value)
    return out


def run_callback(
    *,
    progress: Progress,
    phase: str,
    first_step: int,
    save: Callable[[int, int, dict[str, float], list[tuple[int, int, dict[str, float]]]], None],
    monitor: StopMonitor | None,
    on_stop: Callable[[str], None],
) -> Any:
    """A Keras callback for one phase of a run.

    Args:
        progress: receives ``advance`` per step and ``epoch`` per epoch; its stop request aborts the
            step loop at once (raising `Stopped`: the unfinished epoch is not kept).
        phase: ``train``, ``prune``, ``cluster`` or ``qat`` (in the events).
        first_step: the run's global step count when the phase starts.
        save: ``save(epoch, step, metrics, step_metrics)`` stores the epoch's checkpoint (1-based epoch).
        monitor: the stop condition of this phase, or ``None``.
        on_stop: called with the reason when the stop condition ends the phase.
    """
    keras = framework.keras()

    class RunCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.step = first_step
            self.epoch = 1
            self.step_metrics: list[tuple[int, int, dict[str, float]]] = []
            self.epoch_started = 0.0

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            progress.check()
            self.epoch = epoch + 1
            self.step_metrics = []
            self.epoch_started = time.monotonic()

        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            self.step += 1
            metrics = _rename(logs)
            self.step_metrics.append((self.step, self.epoch, metrics))
            if progress.stop_requested:
                raise Stopped(f"training stopped at step {self.step}; epoch {self.epoch} was not finished")
            progress.advance(phase=phase, epoch=self.epoch, step=self.step, **metrics)

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            metrics = _rename(logs)
            seconds = time.monotonic() - self.epoch_started
            save(self.epoch, self.step, metrics, self.step_metrics)
            progress.epoch(phase=phase, epoch=self.epoch, step=self.step, seconds=round(seconds, 3), **metrics)
            if monitor is not None and monitor.update(self.epoch, metrics):
                on_stop(monitor.reason)
                self.model.stop_training = True

    return RunCallback()
