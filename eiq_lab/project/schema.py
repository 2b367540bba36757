"""The project file's SQLite schema, its version and the migrations between versions.

A project records its schema version in ``PRAGMA user_version``; opening an older project migrates
it forward in one transaction, opening a newer one is refused.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from ..errors import ProjectError

#: The application id stamped into the SQLite header ("EIQP"), so tools can recognise the file.
APPLICATION_ID = 0x45495150

# Version 1: images (metadata apart from the encoded bytes, so listing never reads blobs), labels,
# annotations (a box, or all-NULL coordinates for a full-image label) and a key-value table.
# `images.annotated` is kept by triggers so "unlabeled" filters and counts use an index.
_V1 = """
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE images (
    id         INTEGER PRIMARY KEY,
    sha256     TEXT    NOT NULL,
    width      INTEGER NOT NULL CHECK (width > 0),
    height     INTEGER NOT NULL CHECK (height > 0),
    format     TEXT    NOT NULL CHECK (format IN ('jpeg', 'png')),
    source     TEXT,
    grouping   TEXT    CHECK (grouping IN ('train', 'test')),
    annotated  INTEGER NOT NULL DEFAULT 0,
    phash      INTEGER,
    added_at   REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE INDEX images_by_group ON images (grouping, annotated);
CREATE INDEX images_by_annotated ON images (annotated);
CREATE INDEX images_by_sha256 ON images (sha256);
CREATE TABLE image_data (
    image_id INTEGER PRIMARY KEY REFERENCES images (id) ON DELETE CASCADE,
    data     BLOB    NOT NULL
);
CREATE TABLE labels (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    color TEXT
);
CREATE TABLE annotations (
    id        INTEGER PRIMARY KEY,
    image_id  INTEGER NOT NULL REFERENCES images (id) ON DELETE CASCADE,
    label_id  INTEGER NOT NULL REFERENCES labels (id) ON DELETE CASCADE,
    x         REAL,
    y         REAL,
    width     REAL,
    height    REAL,
    difficult INTEGER NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0,
    CHECK ((x IS NULL AND y IS NULL AND width IS NULL AND height IS NULL)
        OR (x IS NOT NULL AND y IS NOT NULL AND width > 0 AND height > 0))
);
CREATE INDEX annotations_by_image ON annotations (image_id);
CREATE INDEX annotations_by_label ON annotations (label_id, image_id);
CREATE TRIGGER annotations_mark_image AFTER INSERT ON annotations BEGIN
    UPDATE images SET annotated = 1 WHERE id = NEW.image_id AND annotated = 0;
END;
CREATE TRIGGER annotations_unmark_image AFTER DELETE ON annotations BEGIN
    UPDATE images SET annotated = EXISTS (SELECT 1 FROM annotations WHERE image_id = OLD.image_id)
    WHERE id = OLD.image_id;
END;
CREATE TRIGGER annotations_move_image AFTER UPDATE OF image_id ON annotations
WHEN OLD.image_id <> NEW.image_id BEGIN
    UPDATE images SET annotated = 1 WHERE id = NEW.image_id;
    UPDATE images SET annotated = EXISTS (SELECT 1 FROM annotations WHERE image_id = OLD.image_id)
    WHERE id = OLD.image_id;
END;
"""

Migration = Callable[[sqlite3.Connection], None]


def _create_v1(conn: sqlite3.Connection) -> None:
    # executescript() would commit the migration's transaction half-way; run statement by statement
    for statement in _statements(_V1):
        conn.execute(statement)


def _statements(script: str) -> list[str]:
    """Split a DDL script into statements (triggers hold ';' inside BEGIN ... END)."""
    out, current = [], []
    for line in script.strip().splitlines():
        current.append(line)
        text = "\n".join(current)
        if sqlite3.complete_statement(text):
            out.append(text)
            current = []
    return out


def _index_groups_by_id(conn: sqlite3.Connection) -> None:
    # Version 2: pages and batches of one group are read in id order; with only (grouping, annotated)
    # SQLite sorted the whole group for every page, so iterating a group was quadratic.
    conn.execute("CREATE INDEX images_by_group_id ON images (grouping, id)")


# Version 3: augmentation pipelines (presets live in code, read-only) and training runs. A run holds
# its settings and class list as JSON; a checkpoint per epoch holds the weights (and, on the run's
# latest checkpoint only, the optimizer state that "continue" needs) with blobs in the last columns
# so listing never reads them; metrics per step and per epoch feed charts of past runs.
_V3 = """
CREATE TABLE pipelines (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
    operators  TEXT    NOT NULL,
    updated_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE TABLE runs (
    id         INTEGER PRIMARY KEY,
    task       TEXT    NOT NULL,
    model      TEXT    NOT NULL,
    settings   TEXT    NOT NULL,
    labels     TEXT    NOT NULL,
    state      TEXT    NOT NULL CHECK (state IN ('running', 'stopped', 'finished', 'failed')),
    message    TEXT,
    summary    TEXT    NOT NULL DEFAULT '{}',
    parent     TEXT,
    created_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    updated_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE TABLE checkpoints (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    epoch      INTEGER NOT NULL CHECK (epoch >= 1),
    phase      TEXT    NOT NULL,
    step       INTEGER NOT NULL,
    metrics    TEXT    NOT NULL,
    created_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
    weights    BLOB    NOT NULL,
    optimizer  BLOB,
    UNIQUE (run_id, epoch)
);
CREATE TABLE run_metrics (
    run_id  INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    scope   TEXT    NOT NULL CHECK (scope IN ('step', 'epoch')),
    step    INTEGER NOT NULL,
    epoch   INTEGER NOT NULL,
    metrics TEXT    NOT NULL,
    PRIMARY KEY (run_id, scope, step)
);
CREATE TABLE run_models (
    run_id INTEGER PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
    format TEXT    NOT NULL,
    data   BLOB    NOT NULL
);
"""


def _add_pipelines_and_runs(conn: sqlite3.Connection) -> None:
    for statement in _statements(_V3):
        conn.execute(statement)


# Version 4: every model exported from a run: where it went, how (format, quantization), the file's size
# and digest, and its parity check against the run's Keras model on project images (max abs difference,
# top-1 agreement), so a file found later can be traced to the run and checked for drift.
_V4 = """
CREATE TABLE exports (
    id         INTEGER PRIMARY KEY,
    run_id     INTEGER REFERENCES runs (id) ON DELETE SET NULL,
    format     TEXT    NOT NULL,
    path       TEXT    NOT NULL,
    settings   TEXT    NOT NULL DEFAULT '{}',
    size       INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    parity     TEXT,
    created_at REAL    NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0)
);
CREATE INDEX exports_by_run ON exports (run_id, id);
"""


def _add_exports(conn: sqlite3.Connection) -> None:
    for statement in _statements(_V4):
        conn.execute(statement)


#: MIGRATIONS[i] brings a project from version i to version i + 1. Later issues append here
#: (lineage); a migration never edits an earlier one.
MIGRATIONS: list[Migration] = [_create_v1, _index_groups_by_id, _add_pipelines_and_runs, _add_exports]

SCHEMA_VERSION = len(MIGRATIONS)


def version_of(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def check(conn: sqlite3.Connection, target: int = SCHEMA_VERSION, *, path: str = "") -> int:
    """Refuse a database this code must not touch; only reads, so a refused file stays as it was.

    Args:
        conn: an open connection.
        target: the schema version this code writes.
        path: the file name, for messages.

    Returns:
        The database's schema version (0 for a new, empty file).

    Raises:
        ProjectError: another application's database, or a project newer than `target`.
    """
    current = version_of(conn)
    app_id = conn.execute("PRAGMA application_id").fetchone()[0]
    if current == 0 and conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0]:
        raise ProjectError(f"{path or 'file'} is an SQLite database but not an eiq-lab project (it has other tables)")
    if current > 0 and app_id != APPLICATION_ID:
        raise ProjectError(f"{path or 'file'} is an SQLite database of another application, not an eiq-lab project")
    if current > target:
        raise ProjectError(
            f"{path or 'project'} has schema version {current}, newer than this eiq-lab "
            f"understands ({target}); upgrade eiq-lab (pip install -U eiq-lab) to open it"
        )
    return current


def migrate(conn: sqlite3.Connection, migrations: Sequence[Migration] = MIGRATIONS, *, path: str = "") -> int:
    """Bring the open database up to ``len(migrations)``, in one transaction.

    Args:
        conn: a connection in autocommit mode (``isolation_level=None``).
        migrations: the migration steps; step i goes from version i to i + 1.
        path: the file name, for messages.

    Returns:
        The version the project was at before.

    Raises:
        ProjectError: the project is newer than this code, or is another application's database.
    """
    target = len(migrations)
    current = check(conn, target, path=path)
    if current == target:
        return current
    conn.execute("BEGIN IMMEDIATE")
    try:
        # another process may have migrated the file between the check and the lock
        current = check(conn, target, path=path)
        for step in range(current, target):
            migrations[step](conn)
        conn.execute(f"PRAGMA user_version = {target}")
        conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return current
