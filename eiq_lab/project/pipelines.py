"""Augmentation pipelines stored in a project: named, ordered operator lists kept as JSON.

A mixin of `Project`; the project stores and lists them, `eiq_lab.augment` checks their contents.
"""

from __future__ import annotations

import json
from typing import Any

from ..errors import InputError, NotFoundError


class Pipelines:
    """Pipeline methods of `Project` (which provides the connection and transactions)."""

    def pipelines(self) -> dict[str, list[dict[str, Any]]]:
        """Every stored pipeline: name -> operators (in the order they were created)."""
        rows = self._query("SELECT name, operators FROM pipelines ORDER BY id")
        return {name: json.loads(operators) for name, operators in rows}

    def pipeline_operators(self, name: str) -> list[dict[str, Any]]:
        """The operators of the stored pipeline `name`.

        Raises:
            NotFoundError: no such pipeline (naming the ones there are).
        """
        value = self._scalar("SELECT operators FROM pipelines WHERE name = ?", (name,))
        if value is None:
            names = ", ".join(self.pipelines()) or "none stored yet"
            raise NotFoundError(f"no augmentation pipeline {name!r} in {self.path.name}; stored: {names}")
        return json.loads(value)

    def save_pipeline(self, name: str, operators: list[dict[str, Any]], *, create: bool | None = None) -> None:
        """Store a pipeline, replacing one of the same name.

        Args:
            name: the pipeline's name.
            operators: JSON-serialisable operator settings, in order.
            create: ``True`` refuses an existing name, ``False`` refuses a missing one, ``None`` either.

        Raises:
            InputError: an empty name, or `create` not satisfied.
        """
        clean = str(name).strip()
        if not clean:
            raise InputError("a pipeline name cannot be empty")
        text = json.dumps(operators)
        with self.transaction():
            exists = self._db.execute("SELECT 1 FROM pipelines WHERE name = ?", (clean,)).fetchone() is not None
            if create is True and exists:
                raise InputError(f"pipeline {clean!r} already exists in {self.path.name}; choose another name")
            if create is False and not exists:
                self.pipeline_operators(clean)  # raises NotFoundError naming the stored ones
            self._db.execute(
                "INSERT INTO pipelines (name, operators) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
                "operators = excluded.operators, updated_at = (julianday('now') - 2440587.5) * 86400.0",
                (clean, text),
            )

    def rename_pipeline(self, name: str, new_name: str) -> None:
        """Rename a stored pipeline.

        Raises:
            NotFoundError: no pipeline `name`.
            InputError: `new_name` is empty or taken.
        """
        clean = str(new_name).strip()
        if not clean:
            raise InputError("a pipeline name cannot be empty")
        with self.transaction():
            self.pipeline_operators(name)
            if self._db.execute("SELECT 1 FROM pipelines WHERE name = ?", (clean,)).fetchone():
                raise InputError(f"pipeline {clean!r} already exists in {self.path.name}; choose another name")
            self._db.execute("UPDATE pipelines SET name = ? WHERE name = ?", (clean, name))

    def delete_pipeline(self, name: str) -> None:
        """Delete a stored pipeline.

        Raises:
            NotFoundError: no such pipeline.
        """
        with self.transaction():
            self.pipeline_operators(name)
            self._db.execute("DELETE FROM pipelines WHERE name = ?", (name,))
