"""Pipelines: JSON form, seeds and probabilities, tf.data graph mode with dynamic shapes, previews."""

from __future__ import annotations

import io
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from eiq_lab.augment import PRESETS, Pipeline, Step, load_image, preview
from eiq_lab.errors import InputError


def test_json_round_trip_completes_defaults_and_refuses_typos():
    pipeline = Pipeline.from_json([{"op": "rotate", "probability": 0.25}, {"op": "horizontal_flip"}], "mine")
    stored = pipeline.to_json()
    assert stored[0] == {
        "op": "rotate",
        "probability": 0.25,
        "params": {"limit": [-90, 90], "interpolation": 0, "border_mode": 0, "fill_color": [127, 127, 127]},
    }
    assert stored[1] == {"op": "horizontal_flip", "probability": 0.5, "params": {}}
    assert Pipeline.from_json(stored, "mine") == pipeline
    assert pipeline.validate() is pipeline
    with pytest.raises(InputError, match=r"pipeline 'mine' step 2: .*probabilty"):
        Pipeline.from_json([{"op": "rotate"}, {"op": "rotate", "probabilty": 0.5}], "mine")
    with pytest.raises(InputError, match=r"step 1: .*random_gamma: gamma_limit"):
        Pipeline.from_json([{"op": "random_gamma", "params": {"gamma_limit": [0, 10]}}])
    with pytest.raises(InputError, match="must be a list of steps"):
        Pipeline.from_json({"op": "rotate"}, "mine")


def test_bad_images_and_seeds_are_refused(astronaut):
    pipeline = PRESETS["default"]
    with pytest.raises(InputError, match="uint8 \\[H, W, C\\] with C 1 or 3"):
        pipeline.apply(astronaut.astype(np.float32), [0, 0])
    with pytest.raises(InputError, match="uint8 \\[H, W, C\\]"):
        pipeline.apply(astronaut[:, :, :2], [0, 0])
    with pytest.raises(InputError, match="shape \\[2\\]"):
        pipeline.apply(astronaut, [1, 2, 3])


def test_same_seed_same_output_and_other_seeds_differ(astronaut):
    strong = PRESETS["strong"]
    first = strong.apply(astronaut, [7, 11])
    assert np.array_equal(first, strong.apply(astronaut, np.array([7, 11], np.int64)))
    outputs = [strong.apply(astronaut, [7, k]) for k in range(12, 16)]
    assert all(not np.array_equal(first, other) for other in outputs)
    # boxes or not, the image drawn from a seed is the same
    image, _, _ = strong.apply_with_boxes(astronaut, np.array([[0.2, 0.2, 0.6, 0.6]], np.float32), [7, 11])
    assert np.array_equal(image, first)
    # an int seed is [seed, 0]
    assert np.array_equal(strong.apply(astronaut, 3), strong.apply(astronaut, [3, 0]))


def test_an_empty_pipeline_is_the_identity(astronaut):
    assert np.array_equal(PRESETS["none"].apply(astronaut, [0, 0]), astronaut)
    boxes = np.array([[0.1, 0.2, 0.3, 0.4]], np.float32)
    image, moved, keep = PRESETS["none"].apply_with_boxes(astronaut, boxes, [0, 0])
    assert np.array_equal(image, astronaut) and np.array_equal(moved, boxes) and keep.all()


@pytest.mark.parametrize("probability", [0.3, 0.8])
def test_probability_is_the_share_of_images_changed(probability):
    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)  # no flip leaves it as it was
    pipeline = Pipeline([Step("horizontal_flip", probability)])
    changed = sum(not np.array_equal(pipeline.apply(image, [9, k]), image) for k in range(400))
    spread = 4 * (400 * probability * (1 - probability)) ** 0.5  # four binomial standard deviations
    assert abs(changed - 400 * probability) <= spread


def test_runs_in_parallel_tf_data_maps_on_dynamic_shapes_as_eagerly(tf, astronaut, chelsea):
    images = [astronaut, chelsea, astronaut[:50, :90], chelsea[:, :40]]
    pipeline = PRESETS["strong"]

    def generate():
        for index, image in enumerate(images):
            yield image, np.array([3, index], np.int64)

    dataset = tf.data.Dataset.from_generator(
        generate,
        output_signature=(tf.TensorSpec((None, None, 3), tf.uint8), tf.TensorSpec((2,), tf.int64)),
    ).map(pipeline.apply_tf, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    assert dataset.element_spec.shape.as_list() == [None, None, 3]
    for index, (image, out) in enumerate(zip(images, dataset.as_numpy_iterator())):
        assert out.shape == image.shape and out.dtype == np.uint8
        assert np.array_equal(out, pipeline.apply(image, [3, index]))


def test_many_threads_draw_what_one_thread_draws(astronaut):
    pipeline = PRESETS["strong"]
    expected = [pipeline.apply(astronaut, [5, k]) for k in range(32)]
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda k: pipeline.apply(astronaut, [5, k]), range(32)))
    assert all(np.array_equal(a, b) for a, b in zip(expected, got))


def test_grey_images_and_unknown_channel_count_in_graph_mode(tf, astronaut):
    grey = np.ascontiguousarray(astronaut[:, :, :1])
    pipeline = Pipeline(
        [
            Step("rotate", 1, {"limit": [20, 20]}),
            Step("hue_saturation_value", 1, {"val_shift_limit": [10, 10]}),
            Step("random_blur", 1),
            Step("horizontal_flip", 1),
            Step("random_contrast", 1),
        ]
    )
    function = tf.function(
        pipeline.apply_tf,
        input_signature=[tf.TensorSpec((None, None, None), tf.uint8), tf.TensorSpec((2,), tf.int64)],
    )
    for image in (grey, astronaut):
        out = function(image, tf.constant([1, 1], tf.int64)).numpy()
        assert out.shape == image.shape
        assert np.array_equal(out, pipeline.apply(image, [1, 1]))


def test_boxes_in_a_tf_data_map(tf, astronaut):
    pipeline = Pipeline([Step("horizontal_flip", 1), Step("rotate", 0.5, {"limit": [-10, 10]})])
    boxes = np.array([[0.1, 0.1, 0.4, 0.5], [0.5, 0.5, 0.9, 0.9], [0.2, 0.3, 0.3, 0.4]], np.float32)
    dataset = tf.data.Dataset.from_tensors((astronaut, boxes)).repeat(4).enumerate()
    dataset = dataset.map(
        lambda i, pair: pipeline.apply_tf(pair[0], tf.stack([tf.constant(0, tf.int64), i]), pair[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    for index, (image, moved, keep) in enumerate(dataset.as_numpy_iterator()):
        assert image.shape == astronaut.shape and moved.shape == (3, 4) and keep.dtype == bool
        eager = pipeline.apply_with_boxes(astronaut, boxes, [0, index])
        assert np.array_equal(image, eager[0]) and np.array_equal(keep, eager[2])
        np.testing.assert_allclose(moved, eager[1], atol=1e-6)
        assert abs(moved[2, 1] - 0.6) < 0.1  # flipped: the small box moved from x 0.3 to about 0.6


def test_an_operator_returning_the_wrong_image_is_named(astronaut, monkeypatch):
    from eiq_lab.augment import Operator
    from eiq_lab.augment.operators import _registry

    broken = Operator("test_shrink", "Shrink", "a broken plugin", (), False, lambda im, p, rng: im[1:])
    monkeypatch.setitem(_registry, "test_shrink", broken)  # registered for this test only
    with pytest.raises(InputError, match="'test_shrink' returned uint8 of shape"):
        Pipeline([Step("test_shrink", 1)]).apply(astronaut, [0, 0])


def test_import_loads_neither_tensorflow_nor_opencv():
    code = (
        "import sys, numpy as np, eiq_lab.augment as a; a.PRESETS['default'].to_json(); a.operators(); "
        "print('cv2' in sys.modules, end=' '); a.PRESETS['default'].apply(np.zeros((8, 8, 3), np.uint8), 0); "
        "print('tensorflow' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False False"  # importing loads neither; augmenting loads OpenCV only


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, "PNG")
    return buffer.getvalue()


def test_preview_is_reproducible_by_seed_from_bytes_paths_and_arrays(tmp_path, chelsea):
    encoded = _png(chelsea)
    path = tmp_path / "cat.png"
    path.write_bytes(encoded)
    versions = preview(PRESETS["strong"], encoded, n=4, seed=3)
    assert len(versions) == 4 and all(v.shape == chelsea.shape and v.dtype == np.uint8 for v in versions)
    assert len({v.tobytes() for v in versions}) == 4
    for again in (preview(PRESETS["strong"], path, n=4, seed=3), preview(PRESETS["strong"], chelsea, n=4, seed=3)):
        assert all(np.array_equal(a, b) for a, b in zip(versions, again))
    other = preview(PRESETS["strong"], chelsea, n=4, seed=4)
    assert not all(np.array_equal(a, b) for a, b in zip(versions, other))
    # version i is the pipeline applied with seed [seed, i], as training would draw it
    assert np.array_equal(versions[2], PRESETS["strong"].apply(chelsea, [3, 2]))
    grey = preview([{"op": "horizontal_flip", "probability": 1}], _png(chelsea[:, :, 0]), n=1)[0]
    assert grey.shape == (*chelsea.shape[:2], 1) and np.array_equal(grey[:, :, 0], chelsea[:, ::-1, 0])


def test_preview_refuses_what_it_cannot_use(tmp_path):
    with pytest.raises(InputError, match="cannot decode"):
        load_image(b"not an image")
    with pytest.raises(InputError, match="cannot read image"):
        load_image(tmp_path / "missing.png")
    with pytest.raises(InputError, match="uint8"):
        load_image(np.zeros((4, 4, 3), np.float32))
    with pytest.raises(InputError, match="n must be"):
        preview(PRESETS["none"], np.zeros((4, 4, 3), np.uint8), n=0)


def test_steps_are_read_only_and_hashable():
    step = Step("rotate", 0.5, {"limit": [-5, 5]})
    with pytest.raises(TypeError):
        step.params["limit"] = [-90, 90]
    assert step.params["limit"] == (-5, 5) and step.to_json()["params"]["limit"] == [-5, 5]
    assert {PRESETS["default"]: 1}[PRESETS["default"]] == 1
    assert hash(Step("rotate", 0.5, {"limit": [-5, 5]})) == hash(step)
