"""The train/test holdout: default 20 %, reproducible by seed, stratified by label, only
ungrouped images unless asked to reshuffle, and bad percentages refused."""

from __future__ import annotations

import pytest

from eiq_lab.errors import InputError
from eiq_lab.project import create_project

from .imaging import encode_image

PNG = encode_image("PNG", (8, 8))


def _build(project, labels: dict[str | None, int], grouping=None):
    """Add ``n`` images per label (``None``: unlabeled); returns {label: [ids]}."""
    out = {}
    with project.transaction():
        for label, n in labels.items():
            images = project.add_images([PNG] * n, grouping)
            if label is not None:
                for img in images:
                    project.add_annotation(img, label)
            out[label] = [i.id for i in images]
    return out


def _test_ids(project):
    return {i.id for i in project.images(group="test")}


def test_default_is_twenty_percent_of_ungrouped_images(project):
    _build(project, {None: 10})
    report = project.split()
    assert (report["assigned"], report["test"], report["train"]) == (10, 2, 8)
    assert report["test_holdout"] == 20.0
    assert report["reshuffled"] is False
    assert project.count_images(group="test") == 2
    assert project.count_images(group="train") == 8
    assert project.count_images(group=None) == 0


def test_each_label_gets_its_share(project):
    ids = _build(project, {"cat": 50, "dog": 30, None: 20})
    project.split(20, seed=5)
    test = _test_ids(project)
    assert len(test & set(ids["cat"])) == 10
    assert len(test & set(ids["dog"])) == 6
    assert len(test & set(ids[None])) == 4
    assert project.count_images(label="cat", group="train") == 40


def test_uneven_strata_stay_within_one_image_of_the_share(project):
    ids = _build(project, {"cat": 7, "dog": 13})
    report = project.split(20, seed=1)
    test = _test_ids(project)
    assert report["test"] == len(test) == 4  # 20 % of 20
    assert len(test & set(ids["cat"])) in (1, 2)  # 20 % of 7 = 1.4
    assert len(test & set(ids["dog"])) in (2, 3)  # 20 % of 13 = 2.6


def _twin(tmp_path, name):
    p = create_project(tmp_path / f"{name}.eiqp")
    _build(p, {"cat": 30, "dog": 20, None: 10})
    return p


def test_same_seed_same_split_different_seed_different_split(tmp_path):
    a, b, c = (_twin(tmp_path, n) for n in "abc")
    try:
        a.split(25, seed=42)
        b.split(25, seed=42)
        c.split(25, seed=43)
        assert _test_ids(a) == _test_ids(b)
        assert len(_test_ids(a)) == len(_test_ids(c)) == 15
        assert _test_ids(a) != _test_ids(c)
    finally:
        for p in (a, b, c):
            p.close()


def test_a_drawn_seed_is_reported_so_the_split_can_be_repeated(tmp_path):
    a, b = _twin(tmp_path, "a"), _twin(tmp_path, "b")
    try:
        report = a.split(seed=None)
        assert isinstance(report["seed"], int)
        b.split(seed=report["seed"])
        assert _test_ids(a) == _test_ids(b)
    finally:
        a.close()
        b.close()


def test_only_ungrouped_images_are_assigned(project):
    train = _build(project, {"cat": 10}, "train")["cat"]
    test = _build(project, {"cat": 5}, "test")["cat"]
    loose = _build(project, {"cat": 20})["cat"]
    report = project.split(50, seed=0)
    assert report["assigned"] == 20
    assert [i.id for i in project.images(group="train")][:10] == train
    assert {i.id for i in project.images(group="test")} >= set(test)
    assert len(_test_ids(project) & set(loose)) == 10
    assert project.count_images(group=None) == 0
    again = project.split(50, seed=0)
    assert again["assigned"] == 0
    assert project.count_images(group="test") == 15


def test_reshuffle_redraws_every_image_reproducibly(project):
    _build(project, {"cat": 10}, "train")
    _build(project, {"cat": 5}, "test")
    _build(project, {"cat": 20})
    report = project.split(20, seed=3, reshuffle=True)
    assert (report["assigned"], report["test"], report["reshuffled"]) == (35, 7, True)
    assert project.count_images(group="test") == 7
    first = _test_ids(project)
    project.split(20, seed=3, reshuffle=True)
    assert _test_ids(project) == first


@pytest.mark.parametrize(("holdout", "test"), [(0, 0), (100, 12), ("50", 6), (33.4, 4)])
def test_holdout_edges(project, holdout, test):
    _build(project, {None: 12})
    report = project.split(holdout, seed=0)
    assert report["test"] == project.count_images(group="test") == test
    assert project.count_images(group="train") == 12 - test


@pytest.mark.parametrize("holdout", [-1, 101, "abc", None, float("nan")])
def test_bad_holdout_is_refused_and_nothing_changes(project, holdout):
    _build(project, {"cat": 5})
    with pytest.raises(InputError, match="between 0 and 100"):
        project.split(holdout)
    assert project.count_images(group=None) == 5


def test_split_of_an_empty_project(project):
    assert project.split()["assigned"] == 0
