"""Models exported from a project's runs: where each went, how, the file's digest and its parity check.

A mixin of `Project`; it records what the exporter hands it and knows nothing of conversion itself.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

_COLUMNS = "id, run_id, format, path, settings, size, sha256, parity, created_at"


@dataclass(frozen=True)
class ExportRecord:
    """One exported model file.

    Attributes:
        run: the run it came from (None once that run is deleted).
        format: ``tflite``, ``onnx``, ``keras``, ``h5``, ``savedmodel``.
        path: where it was written (absolute).
        settings: how (quantization, input/output types, ...).
        size, sha256: of the file (a SavedModel: of its saved_model.pb and variables, in name order).
        parity: the check against the run's Keras model: ``images``, ``max_abs_diff``, ``mean_abs_diff``,
            ``top1_agreement`` (classifiers), or None when it was not checked.
    """

    id: int
    run: int | None
    format: str
    path: str
    settings: dict[str, Any] = field(default_factory=dict)
    size: int = 0
    sha256: str = ""
    parity: dict[str, Any] | None = None
    created_at: float = 0.0


class Exports:
    """Export methods of `Project` (which provides the connection and transactions)."""

    def add_export(
        self,
        run: int | None,
        fmt: str,
        path: str,
        settings: dict[str, Any],
        size: int,
        sha256: str,
        parity: dict[str, Any] | None = None,
    ) -> ExportRecord:
        """Record an exported model; returns its record."""
        with self.transaction():
            cursor = self._db.execute(
                "INSERT INTO exports (run_id, format, path, settings, size, sha256, parity) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (run, fmt, str(path), json.dumps(settings), int(size), sha256,
                 None if parity is None else json.dumps(parity)),
            )  # fmt: skip
        return self.exports(export_id=cursor.lastrowid)[0]

    def exports(self, run: int | str | None = None, *, export_id: int | None = None) -> list[ExportRecord]:
        """The exports of a run (all runs when None), oldest first.

        Raises:
            NotFoundError: `run` names no run.
        """
        where, params = "", ()
        if export_id is not None:
            where, params = " WHERE id = ?", (export_id,)
        elif run is not None:
            where, params = " WHERE run_id = ?", (self.resolve_run(run),)
        rows = self._query(f"SELECT {_COLUMNS} FROM exports{where} ORDER BY id", params)
        return [
            ExportRecord(i, r, f, p, json.loads(s), size, digest, None if parity is None else json.loads(parity), t)
            for i, r, f, p, s, size, digest, parity, t in rows
        ]
