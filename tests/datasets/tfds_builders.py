"""Tiny TensorFlow Datasets builders made locally for the TFDS importer tests (no download).

Each builder generates its examples from arrays computed here, so tests can compare what the
project stores with what was generated. `prepare` writes one into a data folder.
"""

from __future__ import annotations

import os
from typing import ClassVar

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import tensorflow_datasets as tfds

DIGIT_NAMES = ["zero", "one", "two"]
DIGITS_SIZE = (12, 16)  # (height, width)
SPLIT_SEEDS = {"train": 1, "validation": 2, "test": 3}

SHAPE_LABELS = ["cat", "dog"]
SHAPE_POSES = ["left", "right", "frontal"]
SHAPES_SIZE = (24, 32)  # (height, width)

COARSE_NAMES = ["small", "large"]


def digits_image(split: str, index: int) -> np.ndarray:
    """The pixels of example `index` of a digits split: (12, 16, 3) uint8 noise, unique per example."""
    rng = np.random.default_rng(SPLIT_SEEDS[split] * 1000 + index)
    return rng.integers(0, 256, size=(*DIGITS_SIZE, 3), dtype=np.uint8)


def digits_label(index: int) -> str:
    return DIGIT_NAMES[index % len(DIGIT_NAMES)]


def shapes_objects(split: str, index: int) -> list[dict]:
    """The objects of example `index` of a shapes split, boxes in pixels (x, y, width, height).

    Every image holds one cat facing left at (4, 6, 12, 12); odd examples add a dog facing right
    at (16, 0, 16, 24) flagged difficult. Coordinates are exact binary fractions of 32x24.
    """
    objects = [{"label": "cat", "pose": "left", "box": (4.0, 6.0, 12.0, 12.0), "difficult": False}]
    if index % 2:
        objects.append({"label": "dog", "pose": "right", "box": (16.0, 0.0, 16.0, 24.0), "difficult": True})
    return objects


def shapes_image(split: str, index: int) -> np.ndarray:
    """The pixels of example `index` of a shapes split: (24, 32, 3) uint8 noise, unique per example."""
    rng = np.random.default_rng(SPLIT_SEEDS[split] * 1000 + index)
    return rng.integers(0, 256, size=(*SHAPES_SIZE, 3), dtype=np.uint8)


def _tfds_box(box: tuple[float, float, float, float]) -> tfds.features.BBox:
    height, width = SHAPES_SIZE
    x, y, w, h = box
    return tfds.features.BBox(ymin=y / height, xmin=x / width, ymax=(y + h) / height, xmax=(x + w) / width)


# Imported a second time under another module name (another test folder's sys.path), the builders
# are already registered: the first registration serves both.
_REGISTERED = "eiq_test_digits" in tfds.core.registered.list_imported_builders()


class _Local(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A builder whose splits are generated here; `_split_generators` never uses the download manager."""

    VERSION = tfds.core.Version("1.0.0")
    SPLITS: ClassVar[dict[str, int]] = {}
    # No checksums file to look up beside the code: TFDS's lookup needs the `importlib_resources`
    # backport when this module sits in a package, and these datasets download nothing.
    code_path = None

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(split, n) for split, n in self.SPLITS.items()}


class EiqTestDigits(_Local, skip_registration=_REGISTERED):
    """Classification: an image and a ClassLabel; train 30, test 10."""

    SPLITS: ClassVar[dict[str, int]] = {"train": 30, "test": 10}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(*DIGITS_SIZE, 3)),
                    "label": tfds.features.ClassLabel(names=DIGIT_NAMES),
                }
            ),
            supervised_keys=("image", "label"),
        )

    def _generate_examples(self, split, n):
        for i in range(n):
            yield i, {"image": digits_image(split, i), "label": digits_label(i)}


class EiqTestShapes(_Local, skip_registration=_REGISTERED):
    """Detection like voc: objects = Sequence(bbox, label, pose, is_difficult); train 4, validation 2."""

    SPLITS: ClassVar[dict[str, int]] = {"train": 4, "validation": 2}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(*SHAPES_SIZE, 3)),
                    "image/filename": tfds.features.Text(),
                    "objects": tfds.features.Sequence(
                        {
                            "bbox": tfds.features.BBoxFeature(),
                            "label": tfds.features.ClassLabel(names=SHAPE_LABELS),
                            "pose": tfds.features.ClassLabel(names=SHAPE_POSES),
                            "is_difficult": np.bool_,
                        }
                    ),
                }
            ),
        )

    def _generate_examples(self, split, n):
        for i in range(n):
            objects = shapes_objects(split, i)
            yield (
                i,
                {
                    "image": shapes_image(split, i),
                    "image/filename": f"{split}_{i}.png",
                    "objects": [
                        {
                            "bbox": _tfds_box(o["box"]),
                            "label": o["label"],
                            "pose": o["pose"],
                            "is_difficult": o["difficult"],
                        }
                        for o in objects
                    ],
                },
            )


class EiqTestTwoLabels(_Local, skip_registration=_REGISTERED):
    """Classification made ambiguous like cifar100: `label` and `coarse_label`; a train split only."""

    SPLITS: ClassVar[dict[str, int]] = {"train": 6}

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(*DIGITS_SIZE, 3)),
                    "label": tfds.features.ClassLabel(names=DIGIT_NAMES),
                    "coarse_label": tfds.features.ClassLabel(names=COARSE_NAMES),
                }
            ),
        )

    def _generate_examples(self, split, n):
        for i in range(n):
            yield i, {"image": digits_image(split, i), "label": digits_label(i), "coarse_label": COARSE_NAMES[i % 2]}


class EiqTestOffline(_Local, skip_registration=_REGISTERED):
    """A dataset whose download fails as it does without network (name resolution)."""

    def _info(self):
        return tfds.core.DatasetInfo(
            builder=self,
            features=tfds.features.FeaturesDict(
                {
                    "image": tfds.features.Image(shape=(*DIGITS_SIZE, 3)),
                    "label": tfds.features.ClassLabel(num_classes=2),
                }
            ),
        )

    def _split_generators(self, dl_manager):
        raise ConnectionError("[Errno -3] Temporary failure in name resolution")

    def _generate_examples(self, split, n):  # pragma: no cover - never reached
        yield from ()


def prepare(name: str, data_dir: str | os.PathLike) -> tfds.core.DatasetBuilder:
    """Generate the dataset `name` (one of the builders above) into `data_dir`, offline."""
    builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(
            try_download_gcs=False, compute_stats=tfds.download.ComputeStatsMode.SKIP
        )
    )
    return builder
