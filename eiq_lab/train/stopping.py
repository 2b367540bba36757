"""Stop conditions: the guide's "improvement ends", "stop at target" and "improvement ends after
target", on the train or test value of the metric or the loss, replayable from stored epochs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import InputError
from .settings import StopCondition


@dataclass
class StopMonitor:
    """Follows one value epoch by epoch and says when the condition holds.

    Args:
        condition: the stop condition.
        metric: the model's metric name (``accuracy``); the loss is ``loss``.

    Example:
        >>> m = StopMonitor(StopCondition("stop_at_target", on="train", monitor="metric", target=0.9))
        >>> m.update(1, {"accuracy": 0.5}), m.update(2, {"accuracy": 0.95})
        (False, True)
    """

    condition: StopCondition
    metric: str = "accuracy"
    best: float | None = None
    best_epoch: int = 0
    reached_at: int | None = None
    reason: str = ""
    history: list[tuple[int, float]] = field(default_factory=list)

    @property
    def key(self) -> str:
        name = "loss" if self.condition.monitor == "loss" else self.metric
        return f"test_{name}" if self.condition.on == "test" else name

    def _better(self, value: float, than: float | None) -> bool:
        if than is None:
            return True
        delta = self.condition.min_delta
        return value < than - delta if self.condition.monitor == "loss" else value > than + delta

    def _reached(self, value: float) -> bool:
        target = self.condition.target
        return value <= target if self.condition.monitor == "loss" else value >= target

    def update(self, epoch: int, metrics: dict[str, float]) -> bool:
        """Take one finished epoch's metrics; True when training should stop after it.

        Raises:
            InputError: the metrics lack the watched value (no test images for a test condition).
        """
        if self.key not in metrics:
            where = "the test group is empty" if self.condition.on == "test" else "the model reports no such value"
            raise InputError(f"the stop condition watches {self.key}, but {where}")
        value = float(metrics[self.key])
        self.history.append((epoch, value))
        c = self.condition
        if self._better(value, self.best):
            self.best, self.best_epoch = value, epoch
        if c.target is not None and self.reached_at is None and self._reached(value):
            self.reached_at = epoch
            if c.kind == "improvement_ends_after_target":
                # patience counts from here: the best so far is the reference
                self.best, self.best_epoch = value, epoch
        what = f"{c.on} {self.key.removeprefix('test_')}"
        if c.kind == "stop_at_target":
            if self.reached_at is not None:
                self.reason = f"{what} reached the target {c.target:g} ({value:.4g}) at epoch {epoch}"
                return True
            return False
        if c.kind == "improvement_ends_after_target" and self.reached_at is None:
            return False
        if epoch - self.best_epoch >= c.patience:
            since = f" after reaching the target {c.target:g}" if c.kind == "improvement_ends_after_target" else ""
            best = f"best {self.best:.4g} at epoch {self.best_epoch}"
            self.reason = f"{what} did not improve for {c.patience} epoch(s){since}; {best}"
            return True
        return False
