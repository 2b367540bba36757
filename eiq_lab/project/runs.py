"""Training runs stored in a project: settings, classes, per-epoch checkpoints, metrics, final model.

A mixin of `Project`; it stores what the trainer hands it and knows nothing of training itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import InputError, NotFoundError

RUN_STATES = ("running", "stopped", "finished", "failed")

_RUN_COLUMNS = "id, task, model, settings, labels, state, message, summary, parent, created_at, updated_at"
_NOW = "(julianday('now') - 2440587.5) * 86400.0"


@dataclass(frozen=True)
class RunRecord:
    """A training run as stored (numbered 1, 2, ... in the project).

    Attributes:
        settings: the training settings as JSON data (a run is reproducible from them).
        labels: class names in the order of the model's outputs.
        state: ``running``, ``stopped``, ``finished`` or ``failed``.
        summary: results the trainer recorded (best metrics, sparsity, ...).
        parent: the checkpoint the run started from (``"3:12"``), if any.
        epochs: checkpoints stored; last_epoch: the latest one's epoch (0 if none).
    """

    id: int
    task: str
    model: str
    settings: dict[str, Any]
    labels: list[str]
    state: str
    message: str | None
    summary: dict[str, Any]
    parent: str | None
    created_at: float
    updated_at: float
    epochs: int = 0
    last_epoch: int = 0


@dataclass(frozen=True)
class CheckpointRecord:
    """One epoch's checkpoint of a run (its blobs are read apart, by `checkpoint_data`)."""

    run: int
    epoch: int
    phase: str
    step: int
    metrics: dict[str, float] = field(default_factory=dict)
    created_at: float = 0.0
    has_optimizer: bool = False


class Runs:
    """Run and checkpoint methods of `Project` (which provides the connection and transactions)."""

    def _run(self, row: tuple, epochs: int, last: int | None) -> RunRecord:
        id_, task, model, settings, labels, state, message, summary, parent, created, updated = row
        return RunRecord(
            id_, task, model, json.loads(settings), json.loads(labels), state, message, json.loads(summary),
            parent, created, updated, epochs, last or 0,
        )  # fmt: skip

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        rows = self._query(
            f"SELECT {_RUN_COLUMNS}, (SELECT count(*) FROM checkpoints c WHERE c.run_id = r.id), "
            "(SELECT max(epoch) FROM checkpoints c WHERE c.run_id = r.id) FROM runs r ORDER BY id"
        )
        return [self._run(row[:-2], row[-2], row[-1]) for row in rows]

    def run(self, run: int | str) -> RunRecord:
        """One run, by number or ``"last"``.

        Raises:
            NotFoundError: no such run (naming the ones there are).
        """
        run_id = self.resolve_run(run)
        rows = self._query(
            f"SELECT {_RUN_COLUMNS}, (SELECT count(*) FROM checkpoints c WHERE c.run_id = r.id), "
            "(SELECT max(epoch) FROM checkpoints c WHERE c.run_id = r.id) FROM runs r WHERE id = ?",
            (run_id,),
        )
        return self._run(rows[0][:-2], rows[0][-2], rows[0][-1])

    def resolve_run(self, run: int | str) -> int:
        """The number of run `run` (an int, a digit string or ``"last"``).

        Raises:
            NotFoundError: no such run.
        """
        ids = [r[0] for r in self._query("SELECT id FROM runs ORDER BY id")]
        if not ids:
            raise NotFoundError(f"{self.path.name} has no training runs yet; train one with `eiq train {self.path}`")
        if isinstance(run, str) and run.strip().lower() == "last":
            return ids[-1]
        try:
            number = int(run)
        except (TypeError, ValueError):
            raise InputError(f"a run is a number or 'last'; received {run!r}") from None
        if number not in ids:
            raise NotFoundError(f"no run {number} in {self.path.name}; runs: {_ranges(ids)}")
        return number

    def create_run(
        self,
        task: str,
        model: str,
        settings: dict[str, Any],
        labels: Sequence[str],
        *,
        parent: str | None = None,
    ) -> int:
        """Record a new run (state ``running``) and return its number."""
        with self.transaction():
            cur = self._db.execute(
                "INSERT INTO runs (task, model, settings, labels, state, parent) VALUES (?, ?, ?, ?, 'running', ?)",
                (task, model, json.dumps(settings), json.dumps(list(labels)), parent),
            )
            return cur.lastrowid

    def update_run(
        self,
        run: int,
        *,
        state: str | None = None,
        message: str | None = None,
        summary: dict[str, Any] | None = None,
        settings: dict[str, Any] | None = None,
    ) -> None:
        """Change a run's state, message, summary (merged into the stored one) or settings."""
        if state is not None and state not in RUN_STATES:
            raise InputError(f"run state must be one of {', '.join(RUN_STATES)}; received {state!r}")
        with self.transaction():
            record = self.run(run)
            merged = {**record.summary, **(summary or {})}
            self._db.execute(
                f"UPDATE runs SET state = ?, message = ?, summary = ?, settings = ?, updated_at = {_NOW} WHERE id = ?",
                (
                    state or record.state,
                    message if message is not None else record.message,
                    json.dumps(merged),
                    json.dumps(settings if settings is not None else record.settings),
                    record.id,
                ),
            )

    def delete_run(self, run: int | str) -> None:
        """Delete a run with its checkpoints, metrics and model."""
        with self.transaction():
            self._db.execute("DELETE FROM runs WHERE id = ?", (self.resolve_run(run),))

    # -- checkpoints and metrics -----------------------------------------------------------

    def add_checkpoint(
        self,
        run: int,
        epoch: int,
        phase: str,
        *,
        step: int,
        metrics: dict[str, float],
        weights: bytes,
        optimizer: bytes | None = None,
        step_metrics: Sequence[tuple[int, int, dict[str, float]]] = (),
    ) -> None:
        """Store the checkpoint of one finished epoch with that epoch's metrics, in one transaction.

        The optimizer state is kept on the run's latest checkpoint only (continuing needs it; restoring
        an older epoch starts a new run), so a long run costs one set of weights per epoch.

        Args:
            run: the run's number.
            epoch: the epoch just finished (1-based, counted across the run's phases).
            phase: ``train``, ``prune``, ``cluster`` or ``qat``.
            step: the global step count at the end of the epoch.
            metrics: the epoch's metrics (train and test).
            weights: the serialised model weights.
            optimizer: the serialised optimizer state, or ``None``.
            step_metrics: ``(step, epoch, metrics)`` rows of the epoch's steps.
        """
        with self.transaction():
            self._db.execute(
                "UPDATE checkpoints SET optimizer = NULL WHERE run_id = ? AND optimizer IS NOT NULL", (run,)
            )
            self._db.execute(
                "INSERT INTO checkpoints (run_id, epoch, phase, step, metrics, weights, optimizer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, epoch) DO UPDATE SET phase = excluded.phase, "
                "step = excluded.step, metrics = excluded.metrics, weights = excluded.weights, "
                f"optimizer = excluded.optimizer, created_at = {_NOW}",
                (run, epoch, phase, step, json.dumps(metrics), weights, optimizer),
            )
            rows = [(run, "step", s, e, json.dumps(m)) for s, e, m in step_metrics]
            rows.append((run, "epoch", step, epoch, json.dumps(metrics)))  # keyed by the epoch's last global step
            self._db.executemany(
                "INSERT OR REPLACE INTO run_metrics (run_id, scope, step, epoch, metrics) VALUES (?, ?, ?, ?, ?)", rows
            )
            self._db.execute(f"UPDATE runs SET updated_at = {_NOW} WHERE id = ?", (run,))

    def checkpoints(self, run: int | str) -> list[CheckpointRecord]:
        """A run's checkpoints by epoch (without their blobs)."""
        run_id = self.resolve_run(run)
        rows = self._query(
            "SELECT epoch, phase, step, metrics, created_at, optimizer IS NOT NULL FROM checkpoints "
            "WHERE run_id = ? ORDER BY epoch",
            (run_id,),
        )
        return [CheckpointRecord(run_id, e, ph, st, json.loads(m), c, bool(o)) for e, ph, st, m, c, o in rows]

    def checkpoint(self, run: int | str, epoch: int | str = "last") -> CheckpointRecord:
        """One checkpoint of a run, by epoch or ``"last"``.

        Raises:
            NotFoundError: the run has no such checkpoint (naming the epochs it has).
        """
        records = self.checkpoints(run)
        if not records:
            raise NotFoundError(f"run {self.resolve_run(run)} of {self.path.name} has no checkpoint yet")
        if isinstance(epoch, str) and epoch.strip().lower() == "last":
            return records[-1]
        try:
            wanted = int(epoch)
        except (TypeError, ValueError):
            raise InputError(f"an epoch is a number or 'last'; received {epoch!r}") from None
        for record in records:
            if record.epoch == wanted:
                return record
        raise NotFoundError(
            f"run {records[0].run} has no checkpoint for epoch {wanted}; epochs: {_ranges([r.epoch for r in records])}"
        )

    def checkpoint_data(self, run: int, epoch: int) -> tuple[bytes, bytes | None]:
        """The serialised weights and optimizer state (or ``None``) of one checkpoint."""
        rows = self._query("SELECT weights, optimizer FROM checkpoints WHERE run_id = ? AND epoch = ?", (run, epoch))
        if not rows:
            raise NotFoundError(f"run {run} has no checkpoint for epoch {epoch}")
        return rows[0][0], rows[0][1]

    def delete_checkpoints_after(self, run: int, epoch: int) -> int:
        """Drop a run's checkpoints and metrics after `epoch` (before training goes on from it)."""
        with self.transaction():
            self._db.execute("DELETE FROM run_metrics WHERE run_id = ? AND epoch > ?", (run, epoch))
            return self._db.execute("DELETE FROM checkpoints WHERE run_id = ? AND epoch > ?", (run, epoch)).rowcount

    def run_metrics(self, run: int | str, scope: str = "epoch") -> list[tuple[int, int, dict[str, float]]]:
        """A run's recorded metrics as ``(step, epoch, metrics)``, oldest first; `scope` is ``"step"`` (one row per
        recorded training step) or ``"epoch"`` (one row per epoch, at the global step the epoch ended on)."""
        if scope not in ("step", "epoch"):
            raise InputError(f"metrics scope must be 'step' or 'epoch'; received {scope!r}")
        rows = self._query(
            "SELECT step, epoch, metrics FROM run_metrics WHERE run_id = ? AND scope = ? ORDER BY step",
            (self.resolve_run(run), scope),
        )
        return [(s, e, json.loads(m)) for s, e, m in rows]

    def set_run_model(self, run: int, fmt: str, data: bytes) -> None:
        """Store a run's final model file (`fmt` is its extension, e.g. ``h5``)."""
        with self.transaction():
            self._db.execute(
                "INSERT OR REPLACE INTO run_models (run_id, format, data) VALUES (?, ?, ?)", (run, fmt, data)
            )

    def run_model(self, run: int | str) -> tuple[str, bytes]:
        """A run's final model file as ``(format, bytes)``.

        Raises:
            NotFoundError: the run has not finished (no final model).
        """
        run_id = self.resolve_run(run)
        rows = self._query("SELECT format, data FROM run_models WHERE run_id = ?", (run_id,))
        if not rows:
            raise NotFoundError(
                f"run {run_id} has no final model (it did not finish); continue it with `eiq train --continue`"
            )
        return rows[0][0], rows[0][1]


def _ranges(numbers: Sequence[int]) -> str:
    """1, 2, 3, 5 -> "1-3, 5" (short lists of runs and epochs in messages)."""
    parts: list[str] = []
    start = prev = None
    for n in sorted(numbers):
        if start is None:
            start = prev = n
        elif n == prev + 1:
            prev = n
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = n
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ", ".join(parts)
