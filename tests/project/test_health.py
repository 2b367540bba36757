"""Tests for the dataset health report: duplicates, leakage, balance, unlabeled, hash cache, progress.

Projects (conftest's `project` fixture) hold scikit-image's sample photos; expected values follow
from how each project was built.
"""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageEnhance

from eiq_lab.errors import InputError, Stopped
from eiq_lab.events import Progress
from eiq_lab.project import check_health
from eiq_lab.project.health import PHASH_META_KEY, hash_clusters

skimage_data = pytest.importorskip("skimage.data")

# distinct photos (skimage's "cat" is "chelsea" again, so it is left out)
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "camera", "immunohistochemistry")


def photo(name: str, size: int = 128) -> Image.Image:
    """A sample photo as RGB, its longer side `size` pixels."""
    image = Image.fromarray(getattr(skimage_data, name)()).convert("RGB")
    image.thumbnail((size, size))
    return image


def encode(image: Image.Image, fmt: str = "JPEG", **options) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def noise_jpeg(seed: int) -> bytes:
    """A distinct random-texture image (no two seeds look alike)."""
    pixels = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels).resize((96, 96), Image.Resampling.NEAREST), quality=90)


def add(project, data: bytes, group: str | None = None, label: str | None = None) -> int:
    image = project.add_image(data, group)
    if label is not None:
        project.add_annotation(image, label)
    return image.id


# -- duplicates -------------------------------------------------------------------------------


def test_exact_duplicates_are_grouped_by_sha256(project):
    data = encode(photo("astronaut"), quality=90)
    first = add(project, data, "train")
    add(project, encode(photo("coffee"), quality=90), "train")
    second = add(project, data, "train")

    report = check_health(project)

    assert report["images"] == 3
    assert report["exact_duplicates"] == [{"sha256": hashlib.sha256(data).hexdigest(), "image_ids": [first, second]}]
    # exact copies are collapsed before the near-duplicate search: not reported twice
    assert report["near_duplicates"] == []
    assert report["leakage"] == []
    assert "1 group of exact duplicates (1 redundant copy)" in report["warnings"]
    assert report["ok"] is False


def _variants(image: Image.Image) -> dict[str, bytes]:
    return {
        "quality 50": encode(image, quality=50),
        "brightened": encode(ImageEnhance.Brightness(image).enhance(1.1), quality=90),
        "resized": encode(image.resize((image.width * 3 // 4, image.height * 3 // 4)), quality=90),
        "png": encode(image, "PNG"),
    }


@pytest.mark.parametrize("variant", ["quality 50", "brightened", "resized", "png"])
def test_a_near_duplicate_is_found_among_distinct_photos(project, variant):
    original = photo("astronaut")
    ids = {name: add(project, encode(photo(name), quality=90), "train") for name in PHOTOS}
    copy = add(project, _variants(original)[variant], "train")

    report = check_health(project)

    assert report["exact_duplicates"] == []
    [cluster] = report["near_duplicates"]
    assert cluster["image_ids"] == [ids["astronaut"], copy]
    assert 0 <= cluster["max_distance"] <= 4


def test_all_variants_form_one_cluster_and_distinct_photos_none(project):
    original = photo("astronaut")
    first = add(project, encode(original, quality=90), "train")
    copies = [add(project, data, "train") for data in _variants(original).values()]
    for name in PHOTOS[1:]:
        add(project, encode(photo(name), quality=90), "train")

    report = check_health(project)

    assert [c["image_ids"] for c in report["near_duplicates"]] == [[first, *copies]]


def test_distinct_photos_are_not_clustered(project):
    for name in PHOTOS:
        add(project, encode(photo(name), quality=90), "train")

    report = check_health(project)

    assert report["exact_duplicates"] == []
    assert report["near_duplicates"] == []


def test_threshold_zero_keeps_only_identical_hashes(project):
    image = photo("astronaut")
    a = add(project, encode(image, quality=90), "train")
    b = add(project, encode(image, "PNG"), "train")  # lossless: the same pixels, other bytes
    add(project, encode(photo("coffee"), quality=90), "train")

    report = check_health(project, near_threshold=0)

    assert report["near_duplicates"] == [{"image_ids": [a, b], "max_distance": 0}]


def test_exact_copies_of_a_near_duplicate_are_listed_in_its_cluster(project):
    image = photo("coffee")
    data = encode(image, quality=90)
    a = add(project, data, "train")
    b = add(project, data, "train")
    c = add(project, encode(image, quality=50), "train")

    report = check_health(project)

    assert [g["image_ids"] for g in report["exact_duplicates"]] == [[a, b]]
    assert [c_["image_ids"] for c_ in report["near_duplicates"]] == [[a, b, c]]


# -- leakage ----------------------------------------------------------------------------------


def test_near_duplicate_across_train_and_test_is_leakage(project):
    image = photo("chelsea")
    train = add(project, encode(image, quality=90), "train")
    add(project, encode(photo("rocket"), quality=90), "test")
    test = add(project, encode(image, quality=50), "test")

    report = check_health(project)

    assert report["leakage"] == [
        {"kind": "near", "cluster": 0, "image_ids": [train, test], "train": [train], "test": [test]}
    ]
    assert any("span train and test" in w for w in report["warnings"])


def test_exact_duplicate_across_train_and_test_is_leakage(project):
    data = encode(photo("camera"), quality=90)
    train = add(project, data, "train")
    test = add(project, data, "test")

    report = check_health(project)

    assert report["leakage"] == [
        {"kind": "exact", "cluster": 0, "image_ids": [train, test], "train": [train], "test": [test]}
    ]


def test_duplicates_both_in_train_are_not_leakage(project):
    image = photo("rocket")
    data = encode(image, quality=90)
    add(project, data, "train")
    add(project, data, "train")
    add(project, encode(image, quality=50), "train")
    add(project, encode(photo("coffee"), quality=90), "test")

    report = check_health(project)

    assert len(report["exact_duplicates"]) == 1
    assert len(report["near_duplicates"]) == 1
    assert report["leakage"] == []


def test_exact_copies_split_across_groups_leak_once_as_exact(project):
    image = photo("astronaut")
    data = encode(image, quality=90)
    train = add(project, data, "train")
    test = add(project, data, "test")
    other = add(project, encode(image, quality=50), "train")

    report = check_health(project)

    # the near cluster {train, test, other} leaks too: `other` (train) is another content than `test`
    assert report["leakage"] == [
        {"kind": "exact", "cluster": 0, "image_ids": [train, test], "train": [train], "test": [test]},
        {"kind": "near", "cluster": 0, "image_ids": [train, test, other], "train": [train, other], "test": [test]},
    ]


# -- balance and unlabeled --------------------------------------------------------------------


def test_a_label_missing_from_test_is_warned_about(project):
    seed = iter(range(100))
    for _ in range(3):
        add(project, noise_jpeg(next(seed)), "train", "cat")
    add(project, noise_jpeg(next(seed)), "test", "cat")
    for _ in range(2):
        add(project, noise_jpeg(next(seed)), "train", "dog")

    report = check_health(project)
    balance = report["balance"]

    assert balance["labels"] == {
        "cat": {"train": 3, "test": 1, "none": 0, "total": 4},
        "dog": {"train": 2, "test": 0, "none": 0, "total": 2},
    }
    assert balance["groups"] == {"train": 5, "test": 1, "none": 0}
    assert balance["labels_without_test"] == ["dog"]
    assert balance["labels_without_train"] == []
    assert balance["imbalance_ratio"] == pytest.approx(1.5)
    assert (balance["most_common"], balance["rarest"]) == ("cat", "dog")
    assert "label 'dog' has no test images" in report["warnings"]
    assert not any("label 'cat'" in w for w in report["warnings"])
    assert not any("x the train images" in w for w in report["warnings"])  # 1.5x is not worth a warning
    assert report["near_duplicates"] == [] and report["exact_duplicates"] == []


def test_strong_imbalance_is_warned_about(project):
    for seed in range(6):
        add(project, noise_jpeg(seed), "train", "cat")
    add(project, noise_jpeg(10), "train", "dog")
    add(project, noise_jpeg(11), "test", "cat")
    add(project, noise_jpeg(12), "test", "dog")

    report = check_health(project)

    assert report["balance"]["imbalance_ratio"] == pytest.approx(6.0)
    assert "most common label 'cat' has 6.0x the train images of the rarest, 'dog'" in report["warnings"]


def test_a_project_without_a_split_gets_one_warning_not_one_per_label(project):
    add(project, noise_jpeg(1), None, "cat")
    add(project, noise_jpeg(2), None, "dog")

    report = check_health(project)

    assert report["balance"]["labels_without_train"] == ["cat", "dog"]
    assert report["balance"]["imbalance_ratio"] is None
    assert report["warnings"] == ["no image is in train or test; split the project first (eiq project split)"]


def test_unlabeled_counts_per_group(project):
    add(project, noise_jpeg(1), "train", "cat")
    add(project, noise_jpeg(2), "train")
    add(project, noise_jpeg(3), "train")
    add(project, noise_jpeg(4), "test", "cat")
    add(project, noise_jpeg(5), None)

    report = check_health(project)

    assert report["unlabeled"] == {"train": 2, "test": 0, "none": 1, "total": 3}
    assert "2 train images have no label" in report["warnings"]


def test_a_clean_project_is_ok_and_the_report_is_json(project):
    for seed in range(4):
        add(project, noise_jpeg(seed), "train", "cat" if seed % 2 else "dog")
    add(project, noise_jpeg(10), "test", "cat")
    add(project, noise_jpeg(11), "test", "dog")

    report = project.health(near_threshold=4)  # the Project method delegates here

    assert report["warnings"] == []
    assert report["ok"] is True
    assert json.loads(json.dumps(report)) == report


def test_an_empty_project_is_reported(project):
    report = check_health(project)

    assert report["images"] == 0
    assert report["warnings"] == ["the project has no images"]


# -- the hash cache ---------------------------------------------------------------------------


def _null_hashes(project) -> int:
    return project._query("SELECT count(*) FROM images WHERE phash IS NULL")[0][0]


def test_hashes_are_cached_and_a_second_run_decodes_nothing(project, monkeypatch):
    image = photo("coffee")
    add(project, encode(image, quality=90), "train")
    add(project, encode(image, quality=50), "test")
    for name in ("astronaut", "rocket"):
        add(project, encode(photo(name), quality=90), "train")
    assert _null_hashes(project) == 4

    first = check_health(project)

    assert _null_hashes(project) == 0
    stored = [row[0] for row in project._query("SELECT phash FROM images ORDER BY id")]
    assert all(isinstance(h, int) and -(2**63) <= h < 2**63 for h in stored)

    def no_decoding(*args, **kwargs):
        raise AssertionError("the second run decoded an image")

    monkeypatch.setattr(Image, "open", no_decoding)
    assert check_health(project) == first


def test_hashes_from_another_algorithm_are_recomputed(project, monkeypatch):
    image = photo("chelsea")
    a = add(project, encode(image, quality=90), "train")
    b = add(project, encode(image, quality=50), "train")
    check_health(project)
    project.set_meta(PHASH_META_KEY, "some-older-hash")
    with project.transaction():
        project._db.execute("UPDATE images SET phash = 12345")  # stale values that would all match
    opened = []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda *a, **k: opened.append(1) or real_open(*a, **k))

    report = check_health(project)

    assert len(opened) == 2
    assert [c["image_ids"] for c in report["near_duplicates"]] == [[a, b]]
    assert 12345 not in [row[0] for row in project._query("SELECT phash FROM images")]


def test_an_undecodable_image_is_reported_and_the_rest_checked(project):
    png = bytearray(encode(photo("rocket"), "PNG"))
    middle = len(png) // 2  # inside the compressed pixel data; header and IEND stay valid
    png[middle : middle + 64] = bytes(64)
    broken = add(project, bytes(png), "train")
    image = photo("astronaut")
    a = add(project, encode(image, quality=90), "train")
    b = add(project, encode(image, quality=50), "train")
    events = []

    report = check_health(project, progress=events.append)

    assert [u["image_id"] for u in report["unreadable"]] == [broken]
    assert [c["image_ids"] for c in report["near_duplicates"]] == [[a, b]]
    assert any("could not be decoded" in w for w in report["warnings"])
    assert [e.kind for e in events].count("problem") == 1
    assert project._query("SELECT phash FROM images WHERE id = ?", (broken,))[0][0] is None


# -- progress ---------------------------------------------------------------------------------


def test_progress_reports_start_one_advance_per_image_and_end(project):
    for seed in range(7):
        add(project, noise_jpeg(seed), "train")
    events = []

    check_health(project, progress=events.append)

    kinds = [e.kind for e in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert (events[0].stage, events[0].total) == ("health", 7)
    assert kinds.count("advance") == 7
    assert events[-1].done == 7

    events.clear()
    check_health(project, progress=events.append)  # cached hashes still count as images checked
    assert [e.kind for e in events].count("advance") == 7


def test_a_stop_request_stops_the_check(project):
    for seed in range(5):
        add(project, noise_jpeg(seed), "train")
    progress = Progress()
    progress.observers.append(lambda e: progress.stop() if e.kind == "advance" and e.done == 2 else None)

    with pytest.raises(Stopped):
        check_health(project, progress=progress)


# -- arguments and the pair search ------------------------------------------------------------


@pytest.mark.parametrize("bad", [-1, 33, 2.5, "4", True, None])
def test_a_bad_threshold_is_refused(project, bad):
    with pytest.raises(InputError, match="near_threshold"):
        check_health(project, near_threshold=bad)


@pytest.mark.parametrize("threshold", [0, 1, 3, 4, 8])
def test_bucketed_search_matches_all_pairs(threshold):
    rng = np.random.default_rng(threshold)
    hashes = [int(h) for h in rng.integers(0, 2**64, 400, dtype=np.uint64)]
    for _ in range(200):  # planted neighbours at distances around the threshold
        h = hashes[int(rng.integers(len(hashes)))]
        for bit in rng.choice(64, int(rng.integers(0, threshold + 3)), replace=False):
            h ^= 1 << int(bit)
        hashes.append(h)
    # the expected clusters by brute force: every pair compared, then connected components
    n = len(hashes)
    component = list(range(n))
    for i in range(n):
        for j in range(i + 1, n):
            if (hashes[i] ^ hashes[j]).bit_count() <= threshold:
                old, new = component[j], component[i]
                component = [new if c == old else c for c in component]
    expected: dict[int, list[int]] = {}
    for i, c in enumerate(component):
        expected.setdefault(c, []).append(i)
    expected_clusters = sorted(sorted(v) for v in expected.values() if len(v) > 1)

    got = sorted(c.tolist() for c in hash_clusters(hashes, threshold))

    assert got == expected_clusters
