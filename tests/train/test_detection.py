"""Detection training: boxes read from the project, augmented with their image, encoded for the SSD,
and trained through the same Trainer as classification; bad projects and settings are refused first."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from eiq_lab.augment import Pipeline, Step
from eiq_lab.errors import InputError
from eiq_lab.evaluate import evaluate_run
from eiq_lab.models import registry
from eiq_lab.models.interfaces import signed_normalization
from eiq_lab.project import create_project, open_project
from eiq_lab.train import Trainer, TrainingSettings
from eiq_lab.train.data import _EPOCH_STRIDE, InputPipeline, epoch_order
from eiq_lab.train.samples import box_samples

SIZE = (96, 96, 3)


def _jpeg(width: int, height: int, value: int = 90) -> bytes:
    out = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), value, np.uint8)).save(out, "JPEG")
    return out.getvalue()


def _box_project(path):
    """Two train images (200x100) with known pixel boxes, one test image, one train image with a label only."""
    with create_project(path) as project:
        a, b = project.add_images([_jpeg(200, 100, 80), _jpeg(200, 100, 120)], "train")
        project.add_annotation(a, "cat", box=(20, 10, 40, 30))  # x, y, width, height
        project.add_annotation(a, "dog", box=(100, 50, 100, 50))
        project.add_annotation(a, "dog", box=(10, 10, 0.5, 40))  # 0.24 px wide at 96x96: left out
        project.add_annotation(b, "dog", box=(0, 0, 200, 100))
        (c,) = project.add_images([_jpeg(200, 100, 160)], "test")
        project.add_annotation(c, "cat", box=(50, 25, 100, 50))
        project.add_annotation(c, "bird", box=(0, 0, 10, 10))  # no train box is a bird
        (d,) = project.add_images([_jpeg(200, 100, 200)], "train")
        project.add_annotation(d, "cat")
    return path


def test_box_samples_normalise_boxes_and_count_what_they_leave_out(tmp_path):
    with open_project(_box_project(tmp_path / "boxes.eiqp")) as project:
        samples = box_samples(project, SIZE)
    assert samples.classes == ["cat", "dog"]
    ids, boxes, classes = samples.train
    assert len(ids) == 2 and samples.test_count == 1 and samples.most_objects == 2
    np.testing.assert_allclose(boxes[0], [[0.1, 0.1, 0.4, 0.3], [0.5, 0.5, 1.0, 1.0]], atol=1e-6)
    assert classes[0].tolist() == [0, 1] and classes[1].tolist() == [1]
    np.testing.assert_allclose(samples.test[1][0], [[0.25, 0.25, 0.75, 0.75]], atol=1e-6)
    assert samples.skipped == {
        "train boxes smaller than one pixel at the model's 96x96 input": 1,
        "train images without boxes": 1,
        "test boxes whose label is not a class of the model": 1,
    }


def test_a_project_without_boxes_is_refused_with_counts_and_left_unchanged(digits_path):
    settings = TrainingSettings(task="detection", input_size=SIZE, weights="random", epochs=1)
    with open_project(digits_path) as project:
        with pytest.raises(InputError) as exc:
            Trainer(project, settings).fit()
        assert project.runs() == []
    message = str(exc.value)
    assert "no train image with boxes" in message and "0 of its 90 train image(s)" in message
    assert "90 have full-image labels only" in message and "--task classification" in message


@pytest.mark.parametrize("size", [(100, 100, 3), (64, 64, 3)])
def test_an_input_size_the_backbone_does_not_allow_is_refused(tmp_path, size):
    settings = TrainingSettings(task="detection", input_size=size, weights="random", epochs=1)
    with open_project(_box_project(tmp_path / "boxes.eiqp")) as project:
        with pytest.raises(InputError, match="input size"):
            Trainer(project, settings).fit()
        assert project.runs() == []


def test_targets_follow_the_boxes_through_a_flip(tmp_path):
    plugin = registry().get("ssd_mobilenet_v2")
    encode = plugin.encoder(SIZE, 2)
    with open_project(_box_project(tmp_path / "boxes.eiqp")) as project:
        samples = box_samples(project, SIZE)
        flip = Pipeline([Step("horizontal_flip", 1.0)])
        inputs = InputPipeline(project, samples, SIZE, 2, signed_normalization, flip, 3, encode=encode)
        batch = next(iter(inputs.train_dataset(0, 0)))
        plain = InputPipeline(project, samples, SIZE, 2, signed_normalization, None, 3, encode=encode)
        unflipped = next(iter(plain.train_dataset(0, 0)))
    order = np.random.default_rng([3, 0]).permutation(2)  # the epoch's shuffle, as the trainer documents
    for row, k in enumerate(order):
        boxes, classes = samples.train[1][k], samples.train[2][k]
        mirrored = np.stack([boxes[:, 0], 1 - boxes[:, 3], boxes[:, 2], 1 - boxes[:, 1]], axis=1)
        np.testing.assert_allclose(batch[1][row], encode(mirrored, classes.astype(np.int32)), atol=1e-5)
        np.testing.assert_allclose(unflipped[1][row], encode(boxes, classes.astype(np.int32)), atol=1e-5)
        # the image was flipped with its boxes
        np.testing.assert_allclose(batch[0][row], unflipped[0][row][:, ::-1], atol=1e-6)


def _hwc_only(image):
    """A plugin-style preprocess written for one HWC image: on a batch it would flip the wrong axis."""
    from eiq_lab import framework

    assert image.shape.rank == 3
    tf = framework.tf()
    return tf.cast(image, tf.float32)[:, ::-1]


@pytest.mark.parametrize(
    ("cache", "preprocess"),
    [("images and targets", signed_normalization), ("images only", _hwc_only), ("nothing", signed_normalization)],
)
def test_a_batch_reads_what_each_image_alone_gives(shapes_path, cache, preprocess):
    """Images are augmented and encoded a batch per call; each (image, target) is still exactly the image
    augmented alone by its own seed, (seed, epoch * stride + position), and its kept boxes encoded alone."""
    plugin = registry().get("ssd_mobilenet_v2")
    encode = plugin.encoder(SIZE, 3)
    seed, batch = 3, 5  # 32 train images: the last batch of an epoch holds 2
    augment = Pipeline(
        [Step("horizontal_flip", 0.5), Step("rotate", 0.5, {"limit": [-40, 40]}), Step("random_brightness", 0.5)]
    )
    with open_project(shapes_path) as project:
        samples = box_samples(project, SIZE)
        identity = InputPipeline(project, samples, SIZE, batch, lambda image: image, None, seed, encode=encode)
        raw = {"train": list(identity.preprocessed("train")), "test": list(identity.preprocessed("test"))}
        train_images = samples.train_count * int(np.prod(SIZE))  # the train images fill it: no room for targets
        budget = {"images and targets": 2**30, "images only": train_images, "nothing": 0}[cache]
        inputs = InputPipeline(project, samples, SIZE, batch, preprocess, augment, seed, budget, encode)
        two_epochs = list(inputs.train_dataset(0, 1).as_numpy_iterator())
        resumed = list(inputs.train_dataset(1, 1).as_numpy_iterator())
        test = list(inputs.test_dataset().as_numpy_iterator())
    assert (inputs._cached["train"] is not None) == (cache != "nothing")
    assert (inputs._targets["train"] is not None) == (cache == "images and targets")

    def model_input(image):
        if preprocess is signed_normalization:
            return image.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        return image.astype(np.float32)[:, ::-1]

    count, steps = samples.train_count, -(-samples.train_count // batch)
    expected, moved_boxes = [], 0
    for epoch in (0, 1):
        for pos, k in enumerate(epoch_order(seed, epoch, count)):
            boxes, classes = samples.train[1][k], samples.train[2][k]
            image, moved, keep = augment.apply_with_boxes(raw["train"][k], boxes, [seed, epoch * _EPOCH_STRIDE + pos])
            moved_boxes += not np.array_equal(moved, boxes)
            expected.append((model_input(image), encode(moved[keep], classes[keep])))
    assert 0 < moved_boxes < 2 * count  # both kinds met: boxes moved, and boxes as they were (cached target)
    got = [(x, y) for xs, ys in two_epochs for x, y in zip(xs, ys)]
    assert [len(xs) for xs, _ in two_epochs] == [5] * 6 + [2] + [5] * 6 + [2]
    assert len(got) == len(expected)
    for (x, y), (want_x, want_y) in zip(got, expected):
        np.testing.assert_array_equal(x, want_x)
        np.testing.assert_array_equal(y, want_y)
    for (x, y), (rx, ry) in zip(two_epochs[steps:], resumed):  # a run resumed at epoch 2 reads the same
        np.testing.assert_array_equal(x, rx)
        np.testing.assert_array_equal(y, ry)
    test_got = [(x, y) for xs, ys in test for x, y in zip(xs, ys)]
    assert len(test_got) == samples.test_count
    for k, (x, y) in enumerate(test_got):  # the test group: in id order, unaugmented
        np.testing.assert_array_equal(x, model_input(raw["test"][k]))
        np.testing.assert_array_equal(y, encode(samples.test[1][k], samples.test[2][k]))


@pytest.mark.slow
def test_trains_a_detector_stops_and_continues(shapes_path):
    settings = TrainingSettings(
        task="detection", input_size=SIZE, alpha=0.35, weights="random", epochs=2, batch_size=8,
        learning_rate=1e-3, augmentation="default", seed=5, model_params={"max_detections": 2},
    )  # fmt: skip
    events = []
    with open_project(shapes_path) as project:
        trainer = Trainer(project, settings)

        def observe(event):
            events.append(event)
            if event.kind == "epoch":
                trainer.stop()

        first = trainer.fit(callbacks=[observe])
        assert first.state == "stopped" and first.epoch == 1
        assert settings.model == "ssd_mobilenet_v2"  # the wizard's detector
        result = Trainer.resume(project, first.run).fit()
        assert result.state == "finished" and result.epoch == 2
        run = project.run(result.run)
        assert sorted(run.labels) == ["circle", "square", "triangle"]  # in label-id order
        assert [c.epoch for c in project.checkpoints(run.id)] == [1, 2]
        assert np.isfinite(run.summary["best_loss"]["value"]) and "best_test_loss" in run.summary
        model = result.model
        report = evaluate_run(project, result.run)
        test_boxes = {name: 0 for name in run.labels}
        for image in project.iter_images(group="test"):
            for annotation in project.annotations(image=image, boxes=True):
                test_boxes[str(annotation.label)] += 1
    messages = [e.message for e in events if e.kind == "message"]
    assert any("more than the model's max_detections (2)" in m and "at most 2 boxes" in m for m in messages)
    assert model.output_shape[-1] == 4 + 1 + 3
    # two epochs teach little: the report is checked for what it counts, not for quality (see test_quality)
    assert {name: row["ground_truth"] for name, row in report.per_class.items()} == test_boxes
    assert 0.0 <= report.map50 <= 1.0 and 0.0 <= report.coco_map <= 1.0


def test_a_project_with_boxes_and_labels_trains_the_task_asked_for(tmp_path):
    from eiq_lab.train.samples import class_samples

    with open_project(_box_project(tmp_path / "boxes.eiqp")) as project:
        (e,) = project.add_images([_jpeg(200, 100, 30)], "train")
        project.add_annotation(e, "fish")
        labels, boxes = class_samples(project), box_samples(project, SIZE)
    assert labels.classes == ["cat", "fish"] and labels.train_count == 2  # the full-image labels only
    assert boxes.classes == ["cat", "dog"] and boxes.train_count == 2  # the boxes only


@pytest.mark.slow
def test_eiq_train_task_detection_then_eiq_evaluate(shapes_path, capsys):
    from eiq_lab.cli.main import main

    code = main(
        ["train", str(shapes_path), "--task", "detection", "--alpha", "0.35", "--input-size", "96,96,3",
         "--weights", "random", "--epochs", "1", "--batch", "16", "-q"]
    )  # fmt: skip
    assert code == 0
    assert "run 1 finished at epoch 1" in capsys.readouterr().out
    assert main(["evaluate", str(shapes_path)]) == 0
    text = capsys.readouterr().out
    assert "mAP@0.5" in text and "COCO mAP@[.5:.95]" in text
    for shape in ("circle", "square", "triangle"):
        assert shape in text
