"""Calibration samples: from a project (its train images, or its box crops), from folders and files (found
recursively, broken files skipped with a note), or random; resized, normalized and reproducible."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from train.conftest import digits_template  # noqa: F401  (pytest finds fixtures by name; tests/ is on sys.path)

from eiq_lab.convert.calibration import calibration_samples
from eiq_lab.errors import InputError
from eiq_lab.project import create_project, open_project


def test_project_samples_are_its_train_images_normalized(digits_template):  # noqa: F811
    with open_project(digits_template) as project:  # 32x32 PNGs: no resize, so PIL's pixels are the truth
        train = {
            i.id: np.asarray(project.image(i.id).pil().convert("RGB"), np.float32)
            for i in project.iter_images(group="train")
        }
    samples = calibration_samples(digits_template, (32, 32, 3), 12, seed=3)
    got = list(samples())
    assert len(got) == 12 and all(x.shape == (32, 32, 3) and x.dtype == np.float32 for x in got)
    truth = {k: v / 127.5 - 1.0 for k, v in train.items()}
    matched = [next(k for k, v in truth.items() if np.allclose(v, x, atol=1e-6)) for x in got]
    assert len(set(matched)) == 12  # twelve different train images
    assert [np.array_equal(a, b) for a, b in zip(got, samples(), strict=True)] == [True] * 12  # same every call
    again = list(calibration_samples(digits_template, (1, 32, 32, 3), 12, seed=3)())
    assert all(np.array_equal(a, b) for a, b in zip(got, again, strict=True))  # reproducible by seed
    other = list(calibration_samples(digits_template, (32, 32, 3), 12, seed=4)())
    assert not all(np.array_equal(a, b) for a, b in zip(got, other, strict=True))
    unsigned = next(iter(calibration_samples(digits_template, (32, 32, 3), 1, normalization="unsigned")()))
    raw = next(iter(calibration_samples(digits_template, (32, 32, 3), 1, normalization="none")()))
    np.testing.assert_allclose(unsigned * 255.0, raw, atol=1e-4)
    assert raw.max() > 1.0 and unsigned.min() >= 0.0 and unsigned.max() <= 1.0
    small = next(iter(calibration_samples(digits_template, (16, 20, 1), 1)()))
    assert small.shape == (16, 20, 1)  # resized and grey, as the model's input says


def _image_bytes(color, size=(40, 30), fmt="PNG"):
    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, fmt)
    return out.getvalue()


def test_folder_samples_are_found_recursively_and_broken_files_skipped(tmp_path):
    root = tmp_path / "images"
    (root / "a" / "b").mkdir(parents=True)
    (root / "red.png").write_bytes(_image_bytes((255, 0, 0)))
    (root / "a" / "green.JPG").write_bytes(_image_bytes((0, 255, 0), fmt="JPEG"))
    (root / "a" / "b" / "blue.bmp").write_bytes(_image_bytes((0, 0, 255), fmt="BMP"))
    (root / "a" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    (root / "notes.txt").write_text("not an image")
    samples = calibration_samples(root, (8, 8, 3), 10, normalization="none")
    colors = sorted(tuple(np.round(x.mean(axis=(0, 1))).astype(int)) for x in samples())
    assert len(colors) == 3
    assert all(max(abs(a - b) for a, b in zip(c, e, strict=True)) <= 3 for c, e in zip(colors, sorted(
        [(255, 0, 0), (0, 255, 0), (0, 0, 255)]), strict=True))  # fmt: skip
    assert any("broken.jpg" in note for note in samples.notes)
    assert any("fewer than the 10" in note for note in samples.notes)
    two = calibration_samples(root, (8, 8, 3), 2, seed=1)
    assert len(list(two())) == 2
    listed = calibration_samples(f"{root / 'red.png'},{root / 'a' / 'b'}", (8, 8, 3), 5)
    assert len(list(listed())) == 2  # a comma-separated list of a file and a folder


def test_random_samples_and_refusals(tmp_path):
    random = calibration_samples(5, (8, 8, 3))
    values = list(random())
    assert len(values) == 5 and all(x.min() >= -1.0 and x.max() <= 1.0 for x in values)
    assert np.array_equal(values[0], next(iter(calibration_samples("5", (8, 8, 3))())))  # "5" as on a command line
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "readme.txt").write_text("no images here")
    with pytest.raises(InputError, match=f"samples folder {empty} holds no image"):
        calibration_samples(empty, (8, 8, 3))
    with pytest.raises(InputError, match="does not exist"):
        calibration_samples(tmp_path / "missing", (8, 8, 3))
    with pytest.raises(InputError, match=r"C in \(1, 3\)"):
        calibration_samples(5, (8, 8))
    with pytest.raises(InputError, match="normalization must be one of"):
        calibration_samples(5, (8, 8, 3), normalization="zscore")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "x.png").write_bytes(b"garbage")
    with pytest.raises(InputError, match="could be decoded"):
        calibration_samples(broken, (8, 8, 3))
    with pytest.raises(InputError, match="give a project"):
        calibration_samples(tmp_path / "broken", (8, 8, 3), crop=True)


def test_crop_calibrates_on_the_boxes_of_a_project(tmp_path):
    # blue images with a red square: the crops are red, the whole images mostly blue
    image = np.zeros((60, 80, 3), np.uint8)
    image[..., 2] = 255
    image[10:30, 20:40] = (255, 0, 0)
    out = io.BytesIO()
    Image.fromarray(image).save(out, "PNG")
    path = tmp_path / "boxes.eiqp"
    with create_project(path) as project:
        for added in project.add_images([out.getvalue()] * 3, "train"):
            project.add_annotation(added, "square", box=(20, 10, 20, 20))
    crops = list(calibration_samples(path, (16, 16, 3), 5, crop=True, normalization="none")())
    assert len(crops) == 3
    for crop in crops:
        assert crop.shape == (16, 16, 3) and crop[..., 0].mean() > 250 and crop[..., 2].mean() < 5
    whole = next(iter(calibration_samples(path, (16, 16, 3), 1, normalization="none")()))
    assert whole[..., 2].mean() > 200
    plain = tmp_path / "plain.eiqp"
    with create_project(plain) as project:
        project.add_annotation(project.add_images([out.getvalue()], "train")[0], "whole")
    with pytest.raises(InputError, match="has no box annotation"):
        calibration_samples(plain, (16, 16, 3), crop=True)
