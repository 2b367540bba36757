"""Schema versions and migrations: older projects move forward in one transaction, a failing
step leaves the file at its old version, newer or foreign files are refused."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from eiq_lab.errors import ProjectError
from eiq_lab.project import create_project, open_project, schema

from .imaging import noise_image, snapshot


def _add_future_table(conn: sqlite3.Connection) -> None:
    """A next step as a later issue would write it: a new table and an index."""
    conn.execute("CREATE TABLE future_things (id INTEGER PRIMARY KEY, settings TEXT NOT NULL)")
    conn.execute("CREATE INDEX future_things_by_settings ON future_things (settings)")


def _half_done_then_fail(conn: sqlite3.Connection) -> None:
    conn.execute("CREATE TABLE lineage (id INTEGER PRIMARY KEY)")
    conn.execute("INSERT INTO lineage DEFAULT VALUES")
    raise RuntimeError("migration step failed")


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}


def _connect(path) -> sqlite3.Connection:
    return sqlite3.connect(path, isolation_level=None)


@pytest.fixture
def current_project(tmp_path):
    """A closed project at this code's version, holding one labelled image."""
    path = tmp_path / "old.eiqp"
    with create_project(path) as p:
        [img] = p.add_images([noise_image(1)], "train")
        p.add_annotation(img, "cat", (1, 2, 3, 4))
    return path


def test_older_project_is_migrated_forward_and_keeps_its_data(current_project):
    conn = _connect(current_project)
    try:
        before = schema.version_of(conn)
        assert before == len(schema.MIGRATIONS)
        migrated_from = schema.migrate(conn, [*schema.MIGRATIONS, _add_future_table], path=str(current_project))
        assert migrated_from == before
        assert schema.version_of(conn) == before + 1
        assert "future_things" in _tables(conn)
        assert conn.execute("PRAGMA application_id").fetchone()[0] == schema.APPLICATION_ID
        assert conn.execute("SELECT count(*) FROM images").fetchone()[0] == 1
        assert conn.execute("SELECT x, y, width, height FROM annotations").fetchall() == [(1.0, 2.0, 3.0, 4.0)]
        # running it again is a no-op
        assert schema.migrate(conn, [*schema.MIGRATIONS, _add_future_table]) == before + 1
    finally:
        conn.close()


def test_a_new_file_goes_through_every_step_at_once(tmp_path):
    path = tmp_path / "new.eiqp"
    conn = _connect(path)
    try:
        assert schema.migrate(conn, [*schema.MIGRATIONS, _add_future_table]) == 0
        assert schema.version_of(conn) == len(schema.MIGRATIONS) + 1
        assert {"images", "image_data", "labels", "annotations", "meta", "runs"} <= _tables(conn)
    finally:
        conn.close()


def test_a_failing_step_leaves_the_file_at_its_old_version(current_project):
    before = snapshot(current_project)
    conn = _connect(current_project)
    try:
        with pytest.raises(RuntimeError, match="migration step failed"):
            schema.migrate(conn, [*schema.MIGRATIONS, _add_future_table, _half_done_then_fail])
        # the earlier, successful step of the same migration is rolled back too
        assert schema.version_of(conn) == len(schema.MIGRATIONS)
        assert "future_things" not in _tables(conn)
        assert "lineage" not in _tables(conn)
        assert not conn.in_transaction
    finally:
        conn.close()
    assert snapshot(current_project) == before
    with open_project(current_project) as p:
        assert p.count_images() == 1
        assert p.labels() == ["cat"]


def test_a_failing_first_migration_leaves_a_new_file_empty(tmp_path):
    path = tmp_path / "new.eiqp"
    conn = _connect(path)
    try:
        with pytest.raises(RuntimeError):
            schema.migrate(conn, [*schema.MIGRATIONS, _half_done_then_fail])
        assert schema.version_of(conn) == 0
        assert _tables(conn) == set()
    finally:
        conn.close()


def test_migrate_refuses_a_newer_project(current_project):
    conn = _connect(current_project)
    try:
        with pytest.raises(ProjectError, match="newer"):
            schema.migrate(conn, schema.MIGRATIONS[:0], path="old.eiqp")
        assert schema.version_of(conn) == len(schema.MIGRATIONS)
    finally:
        conn.close()


def test_migrate_refuses_another_applications_database(tmp_path):
    path = tmp_path / "other.eiqp"
    conn = _connect(path)
    try:
        conn.execute("CREATE TABLE notes (body TEXT)")
        with pytest.raises(ProjectError, match="not an eiq-lab project"):
            schema.migrate(conn)
        assert _tables(conn) == {"notes"}
        assert schema.version_of(conn) == 0
    finally:
        conn.close()


@pytest.mark.parametrize("version", range(1, schema.SCHEMA_VERSION))
def test_opening_an_older_project_migrates_it(tmp_path, version):
    path = tmp_path / f"v{version}.eiqp"
    data = noise_image(3)
    conn = _connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    schema.migrate(conn, schema.MIGRATIONS[:version])
    conn.execute(
        "INSERT INTO images (sha256, width, height, format, source, grouping) "
        "VALUES (?, 32, 24, 'png', 'a.png', 'train')",
        (hashlib.sha256(data).hexdigest(),),
    )
    conn.execute("INSERT INTO image_data (image_id, data) VALUES (last_insert_rowid(), ?)", (data,))
    conn.close()
    with open_project(path) as p:
        assert p.migrated_from == version
        assert p.schema_version == schema.SCHEMA_VERSION
        [img] = p.images(group="train")
        assert (img.source, img.width, img.height) == ("a.png", 32, 24)
        assert p.image_data(img) == data
        p.add_annotation(img, "cat")
        assert p.count_images(group="train", annotated=True) == 1
    with open_project(path) as p:
        assert p.migrated_from == schema.SCHEMA_VERSION
