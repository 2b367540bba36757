"""The Trainer on real projects: it learns, streams events, checkpoints every epoch, stops and
continues to the same weights as an uninterrupted run, restores any epoch, and refuses bad input
without touching the project."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.project import open_project
from eiq_lab.train import StopCondition, Trainer, load_run_model

from .conftest import tiny_settings


def test_a_user_plugin_learns_digits_well_above_chance(digits_path, tiny_plugin):
    events = []
    with open_project(digits_path) as project:
        result = Trainer(project, tiny_settings(epochs=8, learning_rate=5e-3)).fit(callbacks=[events.append])
        record = project.run(result.run)
        checkpoints = project.checkpoints(result.run)
    assert result.state == "finished"
    # three classes: chance is 1/3
    assert result.metrics["test_accuracy"] >= 0.8, result.metrics
    assert record.labels == ["0", "1", "7"]
    assert record.settings["model"] == "tiny_cnn" and record.settings["seed"] == 7
    assert [c.epoch for c in checkpoints] == list(range(1, 9))
    epochs = [e for e in events if e.kind == "epoch"]
    steps = [e for e in events if e.kind == "advance"]
    assert [e.data["epoch"] for e in epochs] == list(range(1, 9))
    assert {"loss", "accuracy", "test_loss", "test_accuracy"} <= set(epochs[-1].data)
    assert len(steps) == 8 * 9  # 90 images in batches of 10
    assert steps[-1].data["step"] == 72 and "loss" in steps[-1].data


def _weights(model):
    return [np.asarray(w) for w in model.get_weights()]


def test_stop_then_continue_gives_the_uninterrupted_weights(digits_path, tiny_plugin, tmp_path):
    # dropout and the default augmentation pipeline are on: both must replay exactly
    settings = dict(epochs=3, augmentation="default", seed=11)
    copy = tmp_path / "copy.eiqp"
    copy.write_bytes(digits_path.read_bytes())
    with open_project(copy) as project:
        straight = Trainer(project, tiny_settings(**settings)).fit()

    with open_project(digits_path) as project:
        trainer = Trainer(project, tiny_settings(**settings))

        def stop_mid_epoch_two(event):
            if event.kind == "advance" and event.data["epoch"] == 2 and event.data["step"] == 12:
                trainer.stop()

        first = trainer.fit(callbacks=[stop_mid_epoch_two])
        assert (first.state, first.epoch) == ("stopped", 1)  # the unfinished epoch 2 is not kept
        assert project.run(first.run).state == "stopped"
        assert [c.epoch for c in project.checkpoints(first.run)] == [1]
        resumed = Trainer.resume(project, "last").fit()
        assert resumed.run == first.run and resumed.state == "finished"
        assert [c.epoch for c in project.checkpoints(first.run)] == [1, 2, 3]
    # Same seed, same data order, same augmentation draws, same dropout masks, same optimizer state:
    # on one CPU the kernels are deterministic, so the weights agree to float32 rounding (measured: 0).
    for a, b in zip(_weights(straight.model), _weights(resumed.model)):
        np.testing.assert_allclose(a, b, atol=1e-6, rtol=0)
    assert straight.metrics["loss"] == pytest.approx(resumed.metrics["loss"], abs=1e-6)


def test_restore_starts_a_new_run_from_any_epoch(digits_path, tiny_plugin):
    with open_project(digits_path) as project:
        Trainer(project, tiny_settings(epochs=2)).fit()
        weights, _ = project.checkpoint_data(1, 1)
        # a learning rate too small to move anything: the new run's weights are the checkpoint's
        restored = Trainer(project, tiny_settings(epochs=1, optimizer="sgd", learning_rate=1e-12), restore="1:1").fit()
        record = project.run(restored.run)
    assert (restored.run, record.parent) == (2, "1:1")
    import io

    with np.load(io.BytesIO(weights)) as stored:
        kernel = stored["w00000"]
    np.testing.assert_allclose(_weights(restored.model)[0], kernel, atol=1e-6)


def test_each_stop_condition_ends_training_when_it_should(digits_path, tiny_plugin):
    with open_project(digits_path) as project:
        # an improvement must be 10 loss units: none is, so patience 1 ends it at epoch 2
        r1 = Trainer(
            project,
            tiny_settings(
                epochs=None,
                stop=StopCondition("improvement_ends", on="train", monitor="loss", patience=1, min_delta=10),
            ),
        ).fit()
        # a reachable target: train accuracy of 0 is reached at once
        r2 = Trainer(
            project, tiny_settings(epochs=None, stop=StopCondition("stop_at_target", on="test", target=0.0))
        ).fit()
        # after reaching the (trivial) loss target, no 10-unit improvement for 2 epochs
        r3 = Trainer(
            project,
            tiny_settings(
                epochs=20,
                stop=StopCondition("improvement_ends_after_target", on="test", monitor="loss", target=100.0,
                                   patience=2, min_delta=10),
            ),
        ).fit()  # fmt: skip
    assert (r1.epoch, r2.epoch, r3.epoch) == (2, 1, 3)
    assert "did not improve for 1 epoch" in r1.message
    assert "reached the target" in r2.message
    assert "after reaching the target" in r3.message


def test_mobilenet_v2_trains_and_its_model_is_stored(digits_path):
    settings = tiny_settings(model="mobilenet_v2", alpha=0.35, epochs=1, batch_size=16)
    with open_project(digits_path) as project:
        result = Trainer(project, settings).fit()
        model = load_run_model(project, result.run)
    assert result.state == "finished"
    assert model.output_shape == (None, 3)
    prediction = model.predict(np.zeros((1, 32, 32, 3), np.float32), verbose=0)
    assert prediction.shape == (1, 3) and prediction.sum() == pytest.approx(1.0, abs=1e-4)


def test_training_under_a_mirrored_strategy(digits_path, tiny_plugin):
    from eiq_lab import framework

    strategy = framework.tf().distribute.MirroredStrategy()
    with open_project(digits_path) as project:
        result = Trainer(project, tiny_settings(epochs=1), strategy=strategy).fit()
    assert result.state == "finished" and result.epoch == 1


def _unchanged(path, action):
    with open_project(path) as project:
        runs_before = project.runs()
        with pytest.raises((InputError, NotFoundError)) as info:
            action(project)
        assert project.runs() == runs_before
    return str(info.value)


def test_bad_input_is_refused_before_anything_is_written(digits_path, tiny_plugin, tmp_path):
    def fit(**changes):
        return lambda project: Trainer(project, tiny_settings(**changes)).fit()

    assert "mobilenet_v2" in _unchanged(digits_path, fit(model="resnet_9000"))
    assert "adam" in _unchanged(digits_path, fit(optimizer="lion"))
    assert "(32, 32, 3)" in _unchanged(digits_path, fit(input_size=(48, 48, 3)))
    assert "none" in _unchanged(digits_path, fit(augmentation="nonexistent"))
    assert "end step (5) must be after the begin step (10)" in _unchanged(
        digits_path, fit(prune={"mode": "after", "begin_step": 10, "end_step": 5})
    )
    bad = tmp_path / "other.weights.h5"
    from eiq_lab import framework

    keras = framework.keras()
    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other.save_weights(bad)
    assert "other.weights.h5" in _unchanged(digits_path, fit(weights=str(bad)))


def test_settings_errors_name_the_problem():
    with pytest.raises(InputError, match="QAT"):
        tiny_settings(task="detection", qat_epochs=2).check()
    with pytest.raises(InputError, match="stop condition"):
        tiny_settings(epochs=None).check()
    with pytest.raises(InputError, match="cannot be combined"):
        tiny_settings(prune={"mode": "after"}, cluster={"clusters": 4}).check()


def test_projects_without_usable_labels_are_refused(tmp_path, tiny_plugin):
    from eiq_lab.project import create_project

    from .conftest import digit_png

    path = tmp_path / "unlabeled.eiqp"
    with create_project(path) as project:
        project.add_images([digit_png(np.eye(8) * 16)] * 1, "train")
    assert "no train image with a full-image label (1 train image(s))" in _unchanged(
        path, lambda p: Trainer(p, tiny_settings()).fit()
    )
    empty = tmp_path / "empty.eiqp"
    create_project(empty).close()
    assert "no train image" in _unchanged(empty, lambda p: Trainer(p, tiny_settings()).fit())


def test_continue_refuses_a_finished_run(digits_path, tiny_plugin):
    with open_project(digits_path) as project:
        Trainer(project, tiny_settings(epochs=1)).fit()
        with pytest.raises(InputError, match="finished; nothing to continue"):
            Trainer.resume(project)
