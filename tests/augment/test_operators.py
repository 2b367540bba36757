"""The nine operators: metadata a GUI builds on, parameter checking, and what each does to pixels and boxes."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab.augment import Pipeline, Step, operator, operators
from eiq_lab.augment.transforms import blur_sizes
from eiq_lab.errors import InputError, NotFoundError

from .conftest import augment

GUIDE_IDS = [
    "rotate",
    "horizontal_flip",
    "vertical_flip",
    "random_blur",
    "gaussian_noise",
    "hue_saturation_value",
    "random_brightness",
    "random_contrast",
    "random_gamma",
]


def test_registry_holds_the_guides_nine_with_complete_metadata():
    assert [op.id for op in operators()][:9] == GUIDE_IDS
    for op in operators():
        for p in op.parameters:
            assert p.help and p.title
            assert p.minimum <= p.maximum
            assert p.check(p.default, op.id) == p.default  # every default passes its own check
            entry = p.to_dict()
            assert {"name", "kind", "default", "min", "max", "help"} <= set(entry)
    rotate = operator("rotate").defaults()
    assert rotate == {"limit": [-90, 90], "interpolation": 0, "border_mode": 0, "fill_color": [127, 127, 127]}
    assert operator("random_gamma").defaults() == {"gamma_limit": [80, 120]}


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(NotFoundError) as exc:
        operator("spin")
    assert "spin" in str(exc.value) and "rotate" in str(exc.value) and "random_gamma" in str(exc.value)
    with pytest.raises(NotFoundError) as exc:
        Step("rotate", 0.5, {"angle": [0, 10]})
    message = str(exc.value)
    assert "rotate" in message and "angle" in message and "limit" in message and "fill_color" in message


@pytest.mark.parametrize(
    ("op", "params", "words"),
    [
        ("rotate", {"limit": [10, -10]}, ["rotate", "limit", "lower <= upper"]),
        ("rotate", {"limit": [-200, 10]}, ["rotate", "limit", "-180"]),
        ("rotate", {"limit": 30}, ["rotate", "limit", "[lower, upper]"]),
        ("rotate", {"interpolation": 7}, ["interpolation", "4 (lanczos)"]),
        ("rotate", {"fill_color": [0, 300, 0]}, ["fill_color", "0 .. 255"]),
        ("random_blur", {"blur_limit": [1, 7]}, ["random_blur", "blur_limit", "3"]),
        ("gaussian_noise", {"var_limit": [10, "x"]}, ["gaussian_noise", "var_limit"]),
        ("random_gamma", {"gamma_limit": [80.5, 120]}, ["gamma_limit", "integers"]),
        ("random_brightness", {"limit": [-0.2, 2]}, ["random_brightness", "limit", "1"]),
    ],
)
def test_bad_values_name_operator_and_parameter(op, params, words):
    with pytest.raises(InputError) as exc:
        Step(op, 0.5, params)
    for word in words:
        assert word in str(exc.value)


@pytest.mark.parametrize("probability", [-0.1, 1.5, float("nan"), "half", True])
def test_probability_must_be_within_0_and_1(probability):
    with pytest.raises(InputError, match="probability must be a number from 0 to 1"):
        Step("horizontal_flip", probability)


def test_parameters_parse_text_as_the_cli_writes_it():
    rotate = operator("rotate")
    assert rotate.parameter("limit").parse("-15,15") == [-15, 15]
    assert rotate.parameter("interpolation").parse("linear") == 1
    assert rotate.parameter("interpolation").parse("2") == 2
    assert rotate.parameter("fill_color").parse("10, 20, 30") == [10, 20, 30]
    assert rotate.parameter("fill_color").parse("#ff8000") == [255, 128, 0]
    assert operator("gaussian_noise").parameter("mean").parse("2.5") == 2.5
    with pytest.raises(InputError, match="limit"):
        rotate.parameter("limit").parse("fifteen")


@pytest.mark.parametrize("op", GUIDE_IDS)
def test_probability_one_changes_and_zero_is_exactly_identity(op, chelsea):
    assert np.array_equal(augment(chelsea, op, 0.0), chelsea)
    changed = augment(chelsea, op, 1.0)
    assert changed.shape == chelsea.shape and changed.dtype == np.uint8
    assert not np.array_equal(changed, chelsea)


def test_flips_are_exact_on_pixels_and_boxes(chelsea):
    assert np.array_equal(augment(chelsea, "horizontal_flip"), chelsea[:, ::-1])
    assert np.array_equal(augment(chelsea, "vertical_flip"), chelsea[::-1])
    boxes = np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 0.25]], np.float32)
    _, moved, keep = Pipeline([Step("horizontal_flip", 1)]).apply_with_boxes(chelsea, boxes, [0, 0])
    np.testing.assert_allclose(moved, [[0.1, 0.4, 0.5, 0.8], [0.0, 0.75, 1.0, 1.0]], atol=1e-6)
    assert keep.all()
    _, moved, _ = Pipeline([Step("vertical_flip", 1)]).apply_with_boxes(chelsea, boxes, [0, 0])
    np.testing.assert_allclose(moved, [[0.5, 0.2, 0.9, 0.6], [0.0, 0.0, 1.0, 0.25]], atol=1e-6)


def test_rotating_by_90_degrees_turns_pixels_and_boxes_counter_clockwise(astronaut):
    pipeline = Pipeline([Step("rotate", 1, {"limit": [90, 90], "interpolation": 0})])
    box = np.array([[0.0, 0.0, 0.2, 0.3]], np.float32)  # top-left corner
    image, moved, keep = pipeline.apply_with_boxes(astronaut, box, [5, 5])
    assert np.array_equal(image, np.rot90(astronaut))
    np.testing.assert_allclose(moved, [[0.7, 0.0, 1.0, 0.2]], atol=1e-5)  # now the bottom-left corner
    assert keep.all()


def test_a_rotated_box_encloses_the_rotated_object_on_a_wide_image():
    height, width = 60, 100
    image = np.zeros((height, width, 3), np.uint8)
    image[20:35, 55:80] = 255  # rows 20..34, columns 55..79
    box = np.array([[20 / height, 55 / width, 35 / height, 80 / width]], np.float32)
    pipeline = Pipeline([Step("rotate", 1, {"limit": [30, 30], "fill_color": [0, 0, 0]})])
    rotated, moved, keep = pipeline.apply_with_boxes(image, box, [0, 1])
    rows, cols = np.nonzero(rotated[:, :, 0] > 127)
    ymin, xmin, ymax, xmax = moved[0] * [height, width, height, width]
    # the object's pixels lie inside the box, and touch it (within a pixel of rounding) on every side
    assert rows.min() >= ymin - 1 and rows.max() + 1 <= ymax + 1
    assert cols.min() >= xmin - 1 and cols.max() + 1 <= xmax + 1
    assert abs(rows.min() - ymin) <= 1.5 and abs(cols.max() + 1 - xmax) <= 1.5
    # counter-clockwise: a box right of centre moves up
    assert (ymin + ymax) / 2 < (20 + 35) / 2
    assert keep.all()


def test_constant_border_fills_the_corners_with_the_fill_colour():
    green = np.zeros((64, 64, 3), np.uint8)
    green[..., 1] = 200
    for interpolation in (0, 1):
        out = augment(green, "rotate", limit=[45, 45], interpolation=interpolation, fill_color=[255, 10, 0])
        assert out[0, 0].tolist() == [255, 10, 0] and out[-1, -1].tolist() == [255, 10, 0]
        assert out[32, 32].tolist() == [0, 200, 0]
    grey = np.full((64, 64, 1), 50, np.uint8)
    out = augment(grey, "rotate", limit=[45, 45], fill_color=[255, 10, 0])
    assert out[0, 0, 0] == round(0.299 * 255 + 0.587 * 10) and out[32, 32, 0] == 50


@pytest.mark.parametrize("border_mode", [1, 2, 3, 4])
def test_other_border_modes_use_the_images_own_pixels(border_mode):
    flat = np.full((40, 50, 3), 77, np.uint8)
    out = augment(flat, "rotate", limit=[40, 40], border_mode=border_mode, fill_color=[255, 0, 0])
    assert (out == 77).all()


def test_boxes_mostly_rotated_out_of_the_frame_are_dropped(astronaut):
    pipeline = Pipeline([Step("rotate", 1, {"limit": [45, 45]})])
    boxes = np.array([[0.0, 0.0, 0.1, 0.1], [0.4, 0.4, 0.6, 0.6]], np.float32)
    _, moved, keep = pipeline.apply_with_boxes(astronaut, boxes, [0, 0])
    assert keep.tolist() == [False, True]
    assert (moved >= 0).all() and (moved <= 1).all()
    _, _, keep = pipeline.apply_with_boxes(astronaut, boxes, [0, 0], min_visibility=0.0)
    assert keep.tolist() == [True, True]
    _, moved, keep = pipeline.apply_with_boxes(astronaut, np.zeros((0, 4), np.float32), [0, 0])
    assert moved.shape == (0, 4) and keep.shape == (0,)


def test_blur_kernel_sizes_are_odd_and_clamped():
    assert blur_sizes([3, 7]) == (3, 7)
    assert blur_sizes([4, 7]) == (5, 7)
    assert blur_sizes([3, 4]) == (3, 3)
    assert blur_sizes([4, 4]) == (5, 5)
    tiny = np.arange(12, dtype=np.uint8).reshape(2, 2, 3)
    assert augment(tiny, "random_blur", blur_limit=[31, 31]).shape == (2, 2, 3)  # kernel clamped to 3
    one = np.full((1, 1, 3), 9, np.uint8)
    assert np.array_equal(augment(one, "random_blur", blur_limit=[7, 7]), one)


def test_blur_is_a_box_filter_that_removes_high_frequencies(astronaut):
    out = augment(astronaut, "random_blur", blur_limit=[3, 3]).astype(float)
    padded = np.pad(astronaut.astype(float), ((1, 1), (1, 1), (0, 0)), mode="reflect")  # OpenCV's reflect-101
    expected = sum(padded[i : i + 128, j : j + 128] for i in range(3) for j in range(3)) / 9
    assert np.abs(out - expected).max() <= 0.5 + 1e-3

    def energy(image):
        return np.abs(np.diff(image.astype(float), axis=1)).mean()

    blurred = augment(astronaut, "random_blur", blur_limit=[7, 7])
    assert energy(blurred) < 0.6 * energy(astronaut)


def test_gaussian_noise_has_the_requested_variance_and_mean():
    grey = np.full((128, 128, 3), 128, np.uint8)
    noisy = augment(grey, "gaussian_noise", var_limit=[40, 40]).astype(float) - 128
    assert noisy.var() == pytest.approx(40 + 1 / 12, rel=0.05)  # plus rounding's 1/12
    assert abs(noisy.mean()) < 0.2
    shifted = augment(grey, "gaussian_noise", var_limit=[10, 10], mean=10).astype(float) - 128
    assert shifted.mean() == pytest.approx(10, abs=0.3)


def test_brightness_contrast_and_gamma_move_the_expected_way():
    ramp = np.tile(np.linspace(64, 192, 64).round().astype(np.uint8)[None, :, None], (32, 1, 3))
    assert (augment(ramp, "random_brightness", limit=[0.2, 0.2]).astype(int) - ramp == 51).all()
    assert (augment(ramp, "random_brightness", limit=[-0.2, -0.2]).astype(int) - ramp == -51).all()
    more = augment(ramp, "random_contrast", limit=[0.5, 0.5]).astype(float)
    less = augment(ramp, "random_contrast", limit=[-0.5, -0.5]).astype(float)
    assert more.std() == pytest.approx(1.5 * ramp.std(), rel=0.02)
    assert less.std() == pytest.approx(0.5 * ramp.std(), rel=0.02)
    assert more.mean() == pytest.approx(ramp.mean(), abs=0.5)
    assert augment(ramp, "random_gamma", gamma_limit=[150, 150]).mean() < ramp.mean() - 10
    assert augment(ramp, "random_gamma", gamma_limit=[50, 50]).mean() > ramp.mean() + 10
    exact = 255 * (ramp / 255) ** 1.5
    assert np.abs(augment(ramp, "random_gamma", gamma_limit=[150, 150]) - exact).max() <= 0.5 + 1e-3


def test_hue_saturation_value_shift_as_opencv_units():
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    fixed = {"sat_shift_limit": [0, 0], "val_shift_limit": [0, 0]}
    yellow = augment(red, "hue_saturation_value", hue_shift_limit=[30, 30], **fixed)  # 30 units = 60 degrees
    assert yellow[0, 0].tolist() == [255, 255, 0]
    grey = augment(
        red, "hue_saturation_value", hue_shift_limit=[0, 0], sat_shift_limit=[-255, -255], val_shift_limit=[0, 0]
    )
    assert grey[0, 0].tolist() == [255, 255, 255]
    darker = augment(
        red, "hue_saturation_value", hue_shift_limit=[0, 0], sat_shift_limit=[0, 0], val_shift_limit=[-55, -55]
    )
    assert darker[0, 0].tolist() == [200, 0, 0]
    one_channel = np.full((8, 8, 1), 100, np.uint8)
    out = augment(one_channel, "hue_saturation_value", hue_shift_limit=[40, 40], val_shift_limit=[20, 20])
    assert (out == 120).all()
