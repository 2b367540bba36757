"""The project file: create/open, refusals that leave a file untouched, pragmas, transactions,
concurrent reading, images, paging and filters, and the info summary."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest
from PIL import Image

from eiq_lab.errors import EiqError, InputError, NotFoundError, ProjectError
from eiq_lab.project import ANY, BadImage, Project, create_project, open_project, schema

from .imaging import BLUE, RED, encode_image, noise_image, snapshot

# -- create and open ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".eiqp", ".deepview", ".EIQP"])
def test_create_then_reopen_keeps_images(tmp_path, suffix):
    path = tmp_path / f"flowers{suffix}"
    png = encode_image("PNG")
    with create_project(path) as p:
        [img] = p.add_images([png], "train")
    assert path.is_file()
    with open_project(path) as p:
        assert p.count_images() == 1
        again = p.image(img.id)
        assert (again.width, again.height, again.format, again.grouping) == (32, 24, "png", "train")
        assert p.image_data(img.id) == png


def test_create_refuses_an_existing_file(tmp_path):
    path = tmp_path / "taken.eiqp"
    path.write_bytes(b"precious data")
    with pytest.raises(ProjectError, match="already exists"):
        create_project(path)
    assert path.read_bytes() == b"precious data"


def test_create_refuses_an_existing_project(tmp_path):
    path = tmp_path / "p.eiqp"
    with create_project(path) as p:
        p.add_images([encode_image()])
    before = snapshot(path)
    with pytest.raises(ProjectError, match="already exists"):
        Project(path, create=True)
    assert snapshot(path) == before
    with open_project(path) as p:
        assert p.count_images() == 1


@pytest.mark.parametrize("name", ["data.db", "data.sqlite", "data", "data.eiqp.txt"])
def test_create_refuses_a_wrong_suffix(tmp_path, name):
    with pytest.raises(InputError, match=r"\.eiqp or \.deepview") as caught:
        create_project(tmp_path / name)
    assert name in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_create_in_a_missing_folder_names_the_folder(tmp_path):
    with pytest.raises(InputError, match="does not exist") as caught:
        create_project(tmp_path / "nowhere" / "p.eiqp")
    assert "nowhere" in str(caught.value)
    assert not (tmp_path / "nowhere").exists()


def test_open_project_with_create_makes_a_missing_file_and_opens_an_existing_one(tmp_path):
    path = tmp_path / "p.deepview"
    with open_project(path, create=True) as p:
        p.add_images([encode_image()])
    with open_project(path, create=True) as p:
        assert p.count_images() == 1


def _sqlite_file(path, *, journal="delete", user_version=0, application_id=0):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO customers (name) VALUES ('Ada'), ('Grace')")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.execute(f"PRAGMA application_id = {application_id}")
    conn.commit()
    conn.close()


def _newer_project(path):
    with create_project(path) as p:
        p.add_images([encode_image()])
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {schema.SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()


def _make_bad(kind, path):
    if kind == "missing":
        return
    elif kind == "folder":
        path.mkdir()
    elif kind == "text":
        path.write_text("name,label\ncat.jpg,cat\n")
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "sqlite header, garbage after":
        path.write_bytes(b"SQLite format 3\x00" + bytes(range(256)) * 16)
    elif kind == "other sqlite db":
        _sqlite_file(path)
    elif kind == "other sqlite db in WAL mode":
        _sqlite_file(path, journal="wal")
    elif kind == "other application's db with user_version 1":
        _sqlite_file(path, user_version=1, application_id=0x12345678)
    elif kind == "newer project":
        _newer_project(path)
    else:  # pragma: no cover
        raise AssertionError(kind)


REFUSED_OPENS = {
    "missing": "does not exist",
    "folder": "folder",
    "text": "not an sqlite database",
    "empty": "not an sqlite database",
    "sqlite header, garbage after": "not an eiq-lab project",
    "other sqlite db": "not an eiq-lab project",
    "other sqlite db in WAL mode": "not an eiq-lab project",
    "other application's db with user_version 1": "not an eiq-lab project",
    "newer project": "newer",
}


@pytest.mark.parametrize("kind", list(REFUSED_OPENS))
def test_refused_open_is_clear_and_leaves_the_file_untouched(tmp_path, kind):
    path = tmp_path / "p.eiqp"
    _make_bad(kind, path)
    before = snapshot(path)
    with pytest.raises(ProjectError) as caught:
        open_project(path)
    message = str(caught.value)
    assert REFUSED_OPENS[kind] in message.lower()
    assert "p.eiqp" in message  # names the file
    assert isinstance(caught.value, EiqError)
    assert snapshot(path) == before  # same bytes, no stray -wal / -shm files
    if kind == "missing":
        assert not path.exists()


def test_newer_project_message_says_how_to_fix(tmp_path):
    path = tmp_path / "p.eiqp"
    _newer_project(path)
    with pytest.raises(ProjectError) as caught:
        open_project(path)
    message = str(caught.value)
    assert str(schema.SCHEMA_VERSION + 1) in message
    assert "upgrade" in message.lower()


def test_new_project_uses_wal_foreign_keys_and_is_stamped(tmp_path):
    path = tmp_path / "p.eiqp"
    with create_project(path) as p:
        assert p._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert p._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert p.schema_version == schema.SCHEMA_VERSION
        assert p.migrated_from == 0
    header = path.read_bytes()[:100]
    # SQLite header: bytes 18/19 are 2 in WAL mode; the application id is big-endian at offset 68
    assert header[18:20] == b"\x02\x02"
    assert header[68:72] == b"EIQP"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == 0x45495150
    assert conn.execute("PRAGMA user_version").fetchone()[0] == schema.SCHEMA_VERSION
    conn.close()
    with open_project(path) as p:
        assert p._db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert p.migrated_from == schema.SCHEMA_VERSION  # nothing to migrate


def test_closed_project_refuses_work(project):
    project.close()
    with pytest.raises(ProjectError, match="closed"):
        project.count_images()
    project.close()  # closing twice is harmless


# -- transactions ---------------------------------------------------------------------------


def test_exception_in_a_transaction_leaves_the_file_byte_identical(tmp_path):
    path = tmp_path / "p.eiqp"
    with create_project(path) as p:
        [keep] = p.add_images([noise_image(1)], "train")
        p.add_annotation(keep, "cat")
    before = snapshot(path)

    with open_project(path) as p:
        with pytest.raises(RuntimeError, match="stop"), p.transaction():
            new = p.add_images([noise_image(2), noise_image(3)], "test")
            p.add_annotation(new[0], "dog", (1, 1, 5, 5))
            p.update_label("cat", name="kitty")
            p.set_grouping(keep, None)
            p.set_meta("note", "half-done")
            p.delete_image(keep)
            assert p.count_images() == 2  # the transaction sees its own changes
            raise RuntimeError("stop")
        assert p.count_images() == 1
        assert p.labels() == ["cat"]
        assert p.image(keep.id).grouping == "train"
        assert p.get_meta("note") is None
    assert snapshot(path) == before


def test_nested_transactions_join_the_outer_one(tmp_path):
    path = tmp_path / "p.eiqp"
    p = create_project(path)
    reader = open_project(path)
    try:
        with pytest.raises(KeyError), p.transaction():
            with p.transaction():
                p.add_images([noise_image(1)])
            # the inner block has ended, but nothing is committed until the outer one does
            assert reader.count_images() == 0
            assert p.count_images() == 1
            raise KeyError("abandon")
        assert p.count_images() == 0
        assert reader.count_images() == 0

        with p.transaction():
            with p.transaction():
                p.add_images([noise_image(2)])
            p.add_images([noise_image(3)])
        assert reader.count_images() == 2
    finally:
        reader.close()
        p.close()


def test_a_failing_bulk_call_changes_nothing(project):
    images = project.add_images([noise_image(i) for i in range(3)])
    with pytest.raises(NotFoundError):
        project.delete_images([images[0], 9999])
    assert project.count_images() == 3
    with pytest.raises(NotFoundError):
        project.set_grouping([images[1], 9999], "train")
    assert project.count_images(group="train") == 0


# -- a reader beside a writer ---------------------------------------------------------------


def test_second_project_reads_while_the_first_holds_a_write_transaction(tmp_path):
    path = tmp_path / "p.eiqp"
    first = noise_image(1)
    writer = create_project(path)
    img, _ = writer.add_images([first, noise_image(2)], "train")
    try:
        with writer.transaction():
            writer.add_images([noise_image(i) for i in range(10, 13)], "train")
            writer.add_annotation(img, "cat")
            with open_project(path) as reader:  # opened while the write transaction is open
                assert reader.count_images() == 2
                assert reader.count_images(annotated=True) == 0
                assert reader.image_data(img.id) == first
                assert [i.id for i in reader.images(group="train")] == [img.id, img.id + 1]
        with open_project(path) as reader:
            assert reader.count_images() == 5
            assert reader.count_images(label="cat") == 1
    finally:
        writer.close()


# -- images ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("fmt", "stored"), [("PNG", "png"), ("JPEG", "jpeg")])
def test_jpeg_and_png_are_stored_byte_identical(project, fmt, stored):
    data = encode_image(fmt, (32, 24))
    [img] = project.add_images([data], "test")
    assert project.image_data(img.id) == data
    assert img.data() == data
    assert (img.width, img.height, img.format) == (32, 24, stored)
    assert img.sha256 == hashlib.sha256(data).hexdigest()
    assert img.grouping == "test"
    assert img.annotated is False
    assert project.image(img.id) == img
    assert project.image_ids_with_sha256(hashlib.sha256(data).hexdigest()) == [img.id]


def test_add_image_from_a_path_records_its_name(project, tmp_path):
    data = encode_image("JPEG", (20, 10))
    path = tmp_path / "cat_001.jpg"
    path.write_bytes(data)
    from_path = project.add_image(path, "train")
    from_str = project.add_image(str(path), source="elsewhere/cat.jpg")
    assert from_path.source == "cat_001.jpg"
    assert from_str.source == "elsewhere/cat.jpg"
    assert project.image_data(from_path) == data == project.image_data(from_str)
    assert (from_path.width, from_path.height) == (20, 10)


def test_add_image_from_a_missing_path_is_an_input_error(project, tmp_path):
    with pytest.raises(InputError, match=r"missing\.jpg"):
        project.add_image(tmp_path / "missing.jpg")
    assert project.count_images() == 0


class FakeTensor:
    """What the guide's uploader passes: an object whose .numpy() gives the encoded bytes."""

    def __init__(self, data: bytes):
        self._data = data

    def numpy(self) -> bytes:
        return self._data


def test_add_images_accepts_tensor_like_objects(project):
    jpeg = encode_image("JPEG")
    images = project.add_images([FakeTensor(jpeg), FakeTensor(encode_image("PNG"))], "train")
    assert [i.format for i in images] == ["jpeg", "png"]
    assert project.image_data(images[0]) == jpeg


@pytest.mark.parametrize("fmt", ["BMP", "GIF", "TIFF"])
def test_other_formats_are_transcoded_to_png(project, fmt):
    data = encode_image(fmt, (32, 24), RED, box=(4, 4, 8, 6), box_color=BLUE)
    [img] = project.add_images([data])
    stored = project.image_data(img.id)
    assert stored.startswith(b"\x89PNG\r\n\x1a\n")
    assert (img.format, img.width, img.height) == ("png", 32, 24)
    assert img.sha256 == hashlib.sha256(stored).hexdigest()
    pil = img.pil().convert("RGB")
    assert pil.size == (32, 24)
    assert pil.getpixel((0, 0)) == RED
    assert pil.getpixel((5, 5)) == BLUE
    assert pil.getpixel((12, 10)) == RED


def test_groups_accept_common_spellings_and_refuse_others(project):
    png = encode_image()
    assert project.add_image(png, "TRAIN").grouping == "train"
    assert project.add_image(png, "validation").grouping == "test"
    assert project.add_image(png, "none").grouping is None
    assert project.add_image(png, "").grouping is None
    with pytest.raises(InputError, match="'holdout'"):
        project.add_images([png, png], "holdout")
    assert project.count_images() == 4


def test_add_images_returns_them_in_order(project):
    datas = [noise_image(i) for i in range(5)]
    images = project.add_images(iter(datas), "train")
    assert [project.image_data(i) for i in images] == datas
    assert [i.id for i in images] == sorted(i.id for i in images)


def test_add_images_with_one_bad_image_adds_none(project):
    good = encode_image()
    with pytest.raises(BadImage):
        project.add_images([good, good, b"this is not an image", good], "train")
    assert project.count_images() == 0
    assert project._db.execute("SELECT count(*) FROM image_data").fetchone()[0] == 0


def test_unknown_ids_are_not_found(project):
    with pytest.raises(NotFoundError, match="42"):
        project.image(42)
    with pytest.raises(NotFoundError, match="42"):
        project.image_data(42)
    with pytest.raises(NotFoundError, match="42"):
        project.delete_image(42)
    with pytest.raises(InputError):
        project.image("not-an-id")


def test_delete_image_removes_its_bytes(project):
    a, b = project.add_images([noise_image(1), noise_image(2)])
    project.delete_image(a)
    with pytest.raises(NotFoundError):
        project.image_data(a.id)
    assert project.image_data(b.id) == noise_image(2)
    assert project.delete_images([b, b.id]) == 1
    assert project.count_images() == 0
    assert project._db.execute("SELECT count(*) FROM image_data").fetchone()[0] == 0


def test_set_grouping_moves_images_and_counts_changes(project):
    images = project.add_images([noise_image(i) for i in range(4)], "train")
    assert project.set_grouping(images[:3], "test") == 3
    assert project.set_grouping(images[:3], "test") == 0  # already there
    assert project.set_grouping(images[0], None) == 1
    assert [i.grouping for i in project.images()] == [None, "test", "test", "train"]


def test_meta_values_round_trip(project):
    assert project.get_meta("owner", "nobody") == "nobody"
    project.set_meta("owner", "ada")
    project.set_meta("owner", "grace")
    assert project.get_meta("owner") == "grace"
    project.set_meta("owner", None)
    assert project.get_meta("owner") is None


# -- paging and filters ---------------------------------------------------------------------


@pytest.fixture
def grouped(project):
    """5 train, 3 test and 4 ungrouped images; "cat" on train 0, 1 and test 0; "dog" on ungrouped 0."""
    train = project.add_images([noise_image(i) for i in range(5)], "train")
    test = project.add_images([noise_image(i) for i in range(10, 13)], "test")
    none = project.add_images([noise_image(i) for i in range(20, 24)])
    project.add_annotation(train[0], "cat")
    project.add_annotation(train[1], "cat", (0, 0, 10, 10))
    project.add_annotation(train[1], "cat", (5, 5, 10, 10))
    project.add_annotation(test[0], "cat")
    project.add_annotation(none[0], "dog", (1, 2, 3, 4))
    ids = {"train": [i.id for i in train], "test": [i.id for i in test], "none": [i.id for i in none]}
    return project, ids


def _ids(images):
    return [i.id for i in images]


def test_group_filters_none_any_and_names(grouped):
    p, ids = grouped
    everything = ids["train"] + ids["test"] + ids["none"]
    assert _ids(p.images()) == everything
    assert _ids(p.images(group=ANY)) == everything
    assert _ids(p.images(group="train")) == ids["train"]
    assert _ids(p.images(group="test")) == ids["test"]
    assert _ids(p.images(group=None)) == ids["none"]
    assert _ids(p.images(group="none")) == ids["none"]
    assert p.count_images() == 12
    assert p.count_images(group=None) == 4
    assert p.count_images(group="train") == 5
    with pytest.raises(InputError):
        p.images(group="holdout")


def test_label_and_annotated_filters(grouped):
    p, ids = grouped
    cat = [ids["train"][0], ids["train"][1], ids["test"][0]]
    assert _ids(p.images(label="cat")) == cat  # an image with two cat boxes is listed once
    assert _ids(p.images(label=p.label("cat").id)) == cat
    assert _ids(p.images(label="cat", group="test")) == [ids["test"][0]]
    assert _ids(p.images(label="dog")) == [ids["none"][0]]
    assert _ids(p.images(annotated=True)) == [*cat, ids["none"][0]]
    unlabeled = ids["train"][2:] + ids["test"][1:] + ids["none"][1:]
    assert _ids(p.images(annotated=False)) == unlabeled
    assert _ids(p.images(annotated=False, group=None)) == ids["none"][1:]
    assert p.count_images(label="cat") == 3
    assert p.count_images(annotated=False) == 8
    assert p.count_images(annotated=True, group="train") == 2
    with pytest.raises(NotFoundError, match="bird"):
        p.images(label="bird")


def test_offset_and_limit_page_through_in_id_order(grouped):
    p, ids = grouped
    everything = ids["train"] + ids["test"] + ids["none"]
    pages = [_ids(p.images(offset=start, limit=5)) for start in range(0, 15, 5)]
    assert pages == [everything[:5], everything[5:10], everything[10:]]
    assert _ids(p.images(group="train", offset=3, limit=10)) == ids["train"][3:]
    assert p.images(offset=12, limit=5) == []
    assert _ids(p.images(annotated=False, offset=1, limit=2)) == ids["train"][3:5]


def test_iter_images_crosses_batches(grouped):
    p, ids = grouped
    everything = ids["train"] + ids["test"] + ids["none"]
    assert _ids(p.iter_images(batch=5)) == everything
    assert _ids(p.iter_images(batch=1, group="test")) == ids["test"]
    assert _ids(p.iter_images(batch=2, annotated=False, group=None)) == ids["none"][1:]
    assert _ids(p.iter_images(batch=2, label="cat")) == [ids["train"][0], ids["train"][1], ids["test"][0]]


def test_paging_at_scale_never_reads_image_bytes(project):
    png = encode_image("PNG", (8, 8))
    with project.transaction():
        train = project.add_images([png] * 500, "train")
        test = project.add_images([png] * 500, "test")
        none = project.add_images([png] * 1000)
        for img in none[::10]:
            project.add_annotation(img, "cat")
    all_ids = _ids(train + test + none)
    reads = []

    def authorizer(action, arg1, arg2, db_name, source):
        if action == sqlite3.SQLITE_READ:
            reads.append((arg1, arg2))
        return sqlite3.SQLITE_OK

    project._db.set_authorizer(authorizer)
    try:
        assert _ids(project.images(limit=50)) == all_ids[:50]
        assert _ids(project.images(offset=1990, limit=50)) == all_ids[1990:]
        pages = []
        for start in range(0, 500, 50):
            pages += _ids(project.images(group="test", offset=start, limit=50))
        assert pages == _ids(test)
        assert _ids(project.iter_images()) == all_ids  # default batch of 1000: three fetches
        assert _ids(project.iter_images(group=None, label="cat", batch=30)) == _ids(none[::10])
        assert project.count_images() == 2000
        assert project.count_images(group="train") == 500
        assert project.count_images(annotated=False) == 1900
        assert project.count_images(annotated=True, group=None) == 100
        assert len(project.annotations(group=None)) == 100
    finally:
        project._db.set_authorizer(None)
    assert reads, "the authorizer saw the queries"
    assert not [r for r in reads if r[0] == "image_data"], "listing read the image_data table"


def test_pages_and_batches_come_out_of_an_index_without_sorting_a_group(grouped):
    """A page or batch must cost its size, not a sort of the whole group (1,000,000 images)."""
    p, _ = grouped
    statements = []
    p._db.set_trace_callback(statements.append)
    try:
        p.images(group="train", offset=2, limit=2)
        p.images(group=None, limit=3)
        p.images(annotated=False, offset=1, limit=2)
        list(p.iter_images(group="test", batch=2))
        list(p.iter_images(group="train", annotated=False, batch=2))
        list(p.iter_images(label="cat", batch=2))
        p.annotated_images_with_grouping("train")
        p.count_images(group="train")
    finally:
        p._db.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert any("grouping" in s for s in selects)
    for sql in selects:
        plan = " / ".join(row[3] for row in p._db.execute("EXPLAIN QUERY PLAN " + sql))
        assert "TEMP B-TREE" not in plan, f"{sql}\n  -> {plan}"
        # nor a list of every image of a label, rebuilt for each page (quadratic over a label's batches)
        assert "LIST SUBQUERY" not in plan, f"{sql}\n  -> {plan}"


# -- info -----------------------------------------------------------------------------------


def test_info_counts_a_small_hand_built_project(project):
    datas = [noise_image(i) for i in range(6)]
    with project.transaction():
        i1, i2, _ = project.add_images([datas[0], datas[1], datas[4]], "train")
        [i3] = project.add_images([datas[2]], "test")
        _, i6 = project.add_images([datas[3], datas[5]])
        project.add_annotation(i1, "cat")
        project.add_annotation(i2, "cat", (0, 0, 4, 4))
        project.add_annotation(i2, "dog", (4, 4, 4, 4))
        project.add_annotation(i3, "dog", (0, 0, 8, 8))
        project.add_annotation(i3, "dog", (8, 8, 8, 8))
        project.add_annotation(i6, "cat")
        project.add_label("bird")
    info = project.info()
    assert info["images"] == 6
    assert info["groups"] == {"train": 3, "test": 1, "none": 2}
    assert info["unlabeled"] == {"train": 1, "test": 0, "none": 1, "total": 2}
    assert info["boxes"] == 4
    assert info["full_image_labels"] == 2
    assert info["images_with_boxes"] == 2
    assert info["file_bytes"] > sum(len(d) for d in datas)
    assert info["schema_version"] == schema.SCHEMA_VERSION
    labels = {entry["name"]: entry for entry in info["labels"]}
    assert labels["cat"]["images"] == {"train": 2, "test": 0, "none": 1, "total": 3}
    assert (labels["cat"]["boxes"], labels["cat"]["full_image"]) == (1, 2)
    assert labels["dog"]["images"] == {"train": 1, "test": 1, "none": 0, "total": 2}
    assert (labels["dog"]["boxes"], labels["dog"]["full_image"]) == (3, 0)
    assert labels["bird"]["images"]["total"] == 0
    assert (labels["bird"]["boxes"], labels["bird"]["full_image"]) == (0, 0)


def test_info_of_an_empty_project(project):
    info = project.info()
    assert info["images"] == 0
    assert info["labels"] == []
    assert info["unlabeled"]["total"] == 0
    assert (info["boxes"], info["full_image_labels"]) == (0, 0)


def test_image_records_decode_and_scale(project):
    [img] = project.add_images([encode_image("PNG", (32, 24), RED)])
    assert img.get_size() == (32, 24)
    assert img.pil().size == (32, 24)
    scaled = img.scaled(16, 12)
    assert isinstance(scaled, Image.Image)
    assert (scaled.size, scaled.mode) == ((16, 12), "RGB")
    assert scaled.getpixel((8, 6)) == RED


def test_new_projects_use_large_pages_for_image_blobs(tmp_path):
    with create_project(tmp_path / "p.eiqp") as project:
        assert project._db.execute("PRAGMA page_size").fetchone()[0] == 16384


def test_bulk_writer_needs_a_transaction_and_writes_on_flush(tmp_path):
    from eiq_lab.project.imagefile import check_image
    from eiq_lab.project.store import BulkWriter

    with create_project(tmp_path / "p.eiqp") as project:
        with pytest.raises(RuntimeError, match="transaction"):
            BulkWriter(project)
        [first] = project.add_images([noise_image(1)])
        checked = check_image(noise_image(2))
        with project.transaction():
            writer = BulkWriter(project, batch=10)
            image_id = writer.add_image(checked, "f" * 64, "train", "two.png", True)
            writer.add_annotation(image_id, project.add_label("cat").id, (1, 1, 2, 2), False, False)
            assert image_id == first.id + 1
            assert project.count_images() == 1  # queued, not yet written
            writer.flush()
            assert project.count_images() == 2
        assert project.annotations_with_image(image_id) == [("cat", (1.0, 1.0, 2.0, 2.0))]
        assert project.image(image_id).grouping == "train"
        assert project.image_data(image_id) == checked.data
