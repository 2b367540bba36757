"""Pipelines and training runs as the project stores them: names, checkpoints by epoch, the
optimizer state kept only on a run's latest checkpoint, metrics, and errors naming what exists."""

from __future__ import annotations

import pytest

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.project import create_project, open_project


@pytest.fixture
def project(tmp_path):
    with create_project(tmp_path / "p.eiqp") as p:
        yield p


def test_pipelines_are_stored_in_order_and_survive_reopening(project, tmp_path):
    project.save_pipeline("mine", [{"op": "rotate", "probability": 0.5}])
    project.save_pipeline("other", [])
    project.save_pipeline("mine", [{"op": "horizontal_flip", "probability": 1.0}])  # replaces
    assert list(project.pipelines()) == ["mine", "other"]
    project.close()
    with open_project(tmp_path / "p.eiqp") as p:
        assert p.pipeline_operators("mine") == [{"op": "horizontal_flip", "probability": 1.0}]
        p.rename_pipeline("other", "third")
        p.delete_pipeline("mine")
        assert p.pipelines() == {"third": []}


def test_pipeline_errors_name_what_exists(project):
    project.save_pipeline("mine", [])
    with pytest.raises(NotFoundError, match="stored: mine"):
        project.pipeline_operators("nope")
    with pytest.raises(InputError, match="already exists"):
        project.save_pipeline("mine", [], create=True)
    with pytest.raises(NotFoundError):
        project.save_pipeline("nope", [], create=False)
    with pytest.raises(InputError, match="empty"):
        project.save_pipeline("  ", [])
    assert project.pipelines() == {"mine": []}


def test_runs_are_numbered_and_resolved(project):
    with pytest.raises(NotFoundError, match="no training runs yet"):
        project.resolve_run("last")
    first = project.create_run("classification", "mobilenet_v2", {"epochs": 3}, ["cat", "dog"])
    second = project.create_run("classification", "mobilenet_v1", {"epochs": 1}, ["cat"], parent="1:2")
    assert (first, second) == (1, 2)
    assert project.resolve_run("last") == 2
    assert project.run("2").parent == "1:2"
    with pytest.raises(NotFoundError, match="runs: 1-2"):
        project.run(7)
    with pytest.raises(InputError, match="number or 'last'"):
        project.run("latest")
    project.update_run(1, state="stopped", summary={"best": 0.5})
    project.update_run(1, summary={"epochs": 2})
    record = project.run(1)
    assert (record.state, record.summary) == ("stopped", {"best": 0.5, "epochs": 2})
    with pytest.raises(InputError, match="run state"):
        project.update_run(1, state="paused")


def test_checkpoints_keep_optimizer_state_only_on_the_latest(project):
    run = project.create_run("classification", "m", {}, ["a"])
    for epoch in (1, 2, 3):
        project.add_checkpoint(
            run,
            epoch,
            "train",
            step=epoch * 5,
            metrics={"loss": 1.0 / epoch},
            weights=b"w%d" % epoch,
            optimizer=b"o%d" % epoch,
            step_metrics=[(epoch * 5 - 1, epoch, {"loss": 2.0}), (epoch * 5, epoch, {"loss": 1.0})],
        )
    records = project.checkpoints(run)
    assert [(r.epoch, r.step, r.has_optimizer) for r in records] == [(1, 5, False), (2, 10, False), (3, 15, True)]
    assert project.checkpoint_data(run, 3) == (b"w3", b"o3")
    assert project.checkpoint_data(run, 1) == (b"w1", None)
    assert project.checkpoint(run, "last").epoch == 3
    with pytest.raises(NotFoundError, match="epochs: 1-3"):
        project.checkpoint(run, 9)
    assert [m[0] for m in project.run_metrics(run, "step")] == [4, 5, 9, 10, 14, 15]
    # epoch rows sit at the global step their epoch ended on, like the step rows
    assert project.run_metrics(run) == [(5, 1, {"loss": 1.0}), (10, 2, {"loss": 0.5}),
                                        (15, 3, {"loss": pytest.approx(1 / 3)})]  # fmt: skip
    assert (project.run(run).epochs, project.run(run).last_epoch) == (3, 3)
    assert project.delete_checkpoints_after(run, 1) == 2
    assert [r.epoch for r in project.checkpoints(run)] == [1]
    assert [m[1] for m in project.run_metrics(run, "step")] == [1, 1]


def test_run_model_and_delete(project):
    run = project.create_run("classification", "m", {}, ["a"])
    with pytest.raises(NotFoundError, match="did not finish"):
        project.run_model(run)
    project.add_checkpoint(run, 1, "train", step=1, metrics={}, weights=b"w")
    project.set_run_model(run, "h5", b"model")
    assert project.run_model("last") == ("h5", b"model")
    project.delete_run(run)
    assert project.runs() == []
    assert project._query("SELECT count(*) FROM checkpoints")[0][0] == 0


def test_full_image_labels_by_group_leave_boxes_out(project):
    from .imaging import noise_image

    a, b, c = project.add_images([noise_image(1), noise_image(2), noise_image(3)], "train")
    [d] = project.add_images([noise_image(4)], "test")
    project.add_annotation(a, "cat")
    project.add_annotation(a, "dog")
    project.add_annotation(b, "dog", (1, 1, 4, 4))  # a box only: not a full-image label
    project.add_annotation(d, "cat")
    cat, dog = project.label("cat").id, project.label("dog").id
    assert project.full_image_labels("train") == [(a.id, [cat, dog])]
    assert project.full_image_labels("test") == [(d.id, [cat])]
    assert [i for i, _ in project.full_image_labels()] == [a.id, d.id]
    assert c.id not in dict(project.full_image_labels())


def test_exports_are_listed_per_run_and_outlive_their_run(project, tmp_path):
    first = project.create_run("classification", "tiny", {"epochs": 1}, ["a", "b"])
    second = project.create_run("classification", "tiny", {"epochs": 1}, ["a", "b"])
    project.add_export(first, "tflite", "/m/a.tflite", {"type": "float32"}, 10, "ab" * 32, {"images": 4})
    project.add_export(second, "onnx", "/m/b.onnx", {"type": "int8"}, 20, "cd" * 32)
    assert [e.path for e in project.exports()] == ["/m/a.tflite", "/m/b.onnx"]
    [only] = project.exports(first)
    assert (only.format, only.size, only.parity, only.settings) == ("tflite", 10, {"images": 4}, {"type": "float32"})
    assert project.exports("last")[0].parity is None
    with pytest.raises(NotFoundError):
        project.exports(9)
    project.delete_run(first)
    assert [e.run for e in project.exports()] == [None, second]  # the file still exists; its record stays
