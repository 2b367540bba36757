"""Calibration samples for post-training quantization: images of a project (whole, or its box crops), of
folders and files, or random inputs, resized to the model's input and normalized as the model expects.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..project.records import ANY

#: File suffixes read as images when a folder is given.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: Project file suffixes (the guide's `.deepview` and ours).
PROJECT_SUFFIXES = (".eiqp", ".deepview")
#: Normalization name -> what it maps a 0..255 pixel to.
NORMALIZATIONS = {"signed": "x/127.5-1 in [-1, 1]", "unsigned": "x/255 in [0, 1]", "none": "x in [0, 255]"}


def normalize(pixels: np.ndarray, normalization: str) -> np.ndarray:
    """Map uint8 (or 0..255 float) pixels to the model's input range, as float32."""
    x = np.asarray(pixels, np.float32)
    if normalization == "signed":
        return x / 127.5 - 1.0
    if normalization == "unsigned":
        return x / 255.0
    return x


class CalibrationSamples:
    """A reusable source of calibration inputs: calling it yields float32 [H, W, C] arrays.

    The images are decoded once (kept as uint8) so converters and the quantization debugger, which call
    it several times, see the same samples every time.

    Attributes:
        description: where the samples come from (for messages and reports).
        notes: what was skipped or substituted, one line each (empty when all went as asked).
    """

    def __init__(self, images: np.ndarray | None, normalization: str, description: str, notes: list[str]):
        self._images = images
        self.normalization = normalization
        self.description = description
        self.notes = notes
        self._random: tuple[tuple[int, ...], int, int] | None = None

    @classmethod
    def random(cls, shape: tuple[int, int, int], count: int, normalization: str, seed: int) -> CalibrationSamples:
        samples = cls(None, normalization, f"{count} random inputs", [])
        samples._random = (shape, count, seed)
        return samples

    def __len__(self) -> int:
        return self._random[1] if self._random else len(self._images)

    def __call__(self) -> Iterator[np.ndarray]:
        if self._random is not None:
            shape, count, seed = self._random
            rng = np.random.default_rng(seed)
            for _ in range(count):  # uniform pixels: the full input range, nothing of the real distribution
                yield normalize(rng.integers(0, 256, shape), self.normalization)
            return
        for image in self._images:
            yield normalize(image, self.normalization)


def calibration_samples(
    source: Any,
    input_shape: Sequence[int],
    count: int = 10,
    *,
    crop: bool = False,
    normalization: str = "signed",
    seed: int = 0,
) -> CalibrationSamples:
    """The inputs that calibrate a quantized model's activation ranges.

    Args:
        source: a project (``.eiqp``/``.deepview``: its train images, or all of them when the train group is
            empty), a folder (images found recursively: jpg, jpeg, png, bmp), an image file, a comma-separated
            list or a list of those, or an int N (N random inputs: these calibrate poorly, since activation
            ranges then follow noise rather than the images the model will see; use them for smoke tests).
        input_shape: the model's input, (H, W, C) or (1, H, W, C); C is 1 or 3.
        count: how many samples to take (a seeded random choice when there are more).
        crop: project only: calibrate on the box crops of its annotations (what a classifier trained on
            crops sees) instead of whole images.
        normalization: ``"signed"`` ([-1, 1]), ``"unsigned"`` ([0, 1]) or ``"none"`` (raw 0..255).
        seed: makes the choice of samples (and random inputs) reproducible.

    Returns:
        A callable yielding float32 [H, W, C] arrays (`CalibrationSamples`); undecodable files are skipped
        and listed in its ``notes``.

    Raises:
        InputError: a bad shape, count or normalization, a missing path, a folder without images, a project
            without (box) annotations when `crop` is asked.
    """
    shape = _shape(input_shape)
    if normalization not in NORMALIZATIONS:
        raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; received {normalization!r}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise InputError(f"the number of calibration samples must be a whole number >= 1; received {count!r}")
    number = _as_number(source)
    if number is not None:
        if number < 1:
            raise InputError(f"samples as a number means that many random inputs; it must be >= 1, not {number}")
        return CalibrationSamples.random(shape, number, normalization, seed)
    paths = _paths(source)
    projects = [p for p in paths if p.suffix.lower() in PROJECT_SUFFIXES and p.is_file()]
    if projects:
        if len(paths) > 1:
            raise InputError(f"give one project or a list of folders/files as samples, not both; received {source!r}")
        return _from_project(projects[0], shape, int(count), crop, normalization, seed)
    if crop:
        raise InputError("--crop calibrates on the boxes of a project's annotations; give a project as samples")
    return _from_files(paths, shape, int(count), normalization, seed)


def _shape(input_shape: Sequence[int]) -> tuple[int, int, int]:
    dims = [int(d) if d is not None else -1 for d in input_shape]
    if len(dims) == 4 and dims[0] in (1, -1):
        dims = dims[1:]
    if len(dims) != 3 or any(d <= 0 for d in dims) or dims[2] not in (1, 3):
        raise InputError(
            "calibration needs an image input (H, W, C) with C in (1, 3) and known sizes; "
            f"received {tuple(input_shape)}"
        )
    return dims[0], dims[1], dims[2]


def _as_number(source: Any) -> int | None:
    if isinstance(source, bool):
        return None
    if isinstance(source, (int, np.integer)):
        return int(source)
    if isinstance(source, str) and source.strip().lstrip("-").isdigit() and not Path(source.strip()).exists():
        return int(source.strip())
    return None


def _paths(source: Any) -> list[Path]:
    if isinstance(source, (str, os.PathLike)):
        items = [source] if Path(source).exists() else str(source).split(",")
    elif isinstance(source, Sequence):
        items = list(source)
    else:
        raise InputError(f"samples must be a project, a folder, files, or a number; received {source!r}")
    paths = [Path(str(item).strip()) for item in items if str(item).strip()]
    if not paths:
        raise InputError(f"samples name no file or folder; received {source!r}")
    for path in paths:
        if not path.exists():
            raise InputError(f"samples: {path} does not exist; give a project, a folder of images, or image files")
    return paths


def _choose(total: int, count: int, seed: int) -> np.ndarray:
    """Sorted positions of `count` of `total` items (all of them when there are not more)."""
    if total <= count:
        return np.arange(total)
    return np.sort(np.random.default_rng(seed).choice(total, count, replace=False))


def _from_files(
    paths: list[Path], shape: tuple[int, int, int], count: int, normalization: str, seed: int
) -> CalibrationSamples:
    from PIL import Image, UnidentifiedImageError

    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise InputError(
                    f"samples folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)}, searched recursively); "
                    "put calibration images in it, or give a project"
                )
            files.extend(found)
        else:
            files.append(path)
    h, w, c = shape
    images, notes = [], []
    # decode in the seeded order until `count` images decoded: a broken file is replaced by the next one
    order = np.random.default_rng(seed).permutation(len(files)) if len(files) > count else np.arange(len(files))
    for k in order:
        if len(images) == count:
            break
        try:
            with Image.open(files[k]) as image:
                pixels = image.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BILINEAR)
        except (UnidentifiedImageError, OSError, ValueError) as exc:
            notes.append(f"skipped {files[k]}: not a decodable image ({exc.__class__.__name__})")
            continue
        images.append(np.asarray(pixels, np.uint8).reshape(h, w, c))
    if not images:
        raise InputError(f"none of the {len(files)} sample file(s) could be decoded as an image: {', '.join(notes)}")
    if len(images) < count:
        notes.append(f"{len(images)} sample image(s) found, fewer than the {count} asked for")
    where = ", ".join(str(p) for p in paths)
    return CalibrationSamples(np.stack(images), normalization, f"{len(images)} images from {where}", notes)


def _from_project(
    path: Path, shape: tuple[int, int, int], count: int, crop: bool, normalization: str, seed: int
) -> CalibrationSamples:
    from ..project import open_project

    with open_project(path) as project:
        if crop:
            return _project_crops(project, shape, count, normalization, seed)
        group = "train" if project.count_images(group="train") else ANY
        ids = np.asarray([image.id for image in project.iter_images(group=group)], np.int64)
        if not len(ids):
            raise InputError(f"project {path.name} holds no image to calibrate with; import images first")
        ids = ids[_choose(len(ids), count, seed)]
        images = _decode_like_training(project, ids, shape)
    notes = [] if group == "train" else [f"{path.name} has no train group: calibrating on images of any group"]
    if len(ids) < count:
        notes.append(f"{path.name} has {len(ids)} image(s), fewer than the {count} asked for")
    where = "train images" if group == "train" else "images"
    return CalibrationSamples(images, normalization, f"{len(ids)} {where} of {path.name}", notes)


def _decode_like_training(project: Any, ids: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    """The images decoded and resized exactly as the trainer reads them (its `InputPipeline`), uint8."""
    from ..train.data import InputPipeline
    from ..train.samples import ClassSamples

    empty = np.zeros(0, np.int64)
    samples = ClassSamples([], (ids, np.zeros(len(ids), np.int64)), (empty, empty))
    pipeline = InputPipeline(project, samples, shape, 1, lambda image: image, cache_bytes=0)
    return np.stack(list(pipeline.preprocessed("train")))


def _project_crops(
    project: Any, shape: tuple[int, int, int], count: int, normalization: str, seed: int
) -> CalibrationSamples:
    group = "train"
    annotations = project.annotations(group=group, boxes=True)
    if not annotations:
        group, annotations = ANY, project.annotations(boxes=True)
    if not annotations:
        raise InputError(
            f"--crop calibrates on box crops, and project {project.path.name} has no box annotation; "
            "calibrate on whole images (leave out --crop) or draw boxes"
        )
    h, w, c = shape
    chosen = [annotations[k] for k in _choose(len(annotations), count, seed)]
    images = []
    for annotation in chosen:
        crop = project.sample(annotation, (w, h))  # the datastore's crop, resized to the input
        images.append(np.asarray(crop if c == 3 else crop.convert("L"), np.uint8).reshape(h, w, c))
    notes = [] if len(chosen) == count else [f"{len(chosen)} box(es) found, fewer than the {count} asked for"]
    where = "train boxes" if group == "train" else "boxes"
    return CalibrationSamples(np.stack(images), normalization, f"{len(chosen)} {where} of {project.path.name}", notes)
