"""Sample datasets written from data that packages ship (no download): scikit-learn's digits as
structured folders, and coloured shapes on scikit-image photos as a Pascal VOC dataset with known boxes.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

from ..errors import InputError

SHAPES = ("square", "circle", "triangle")
_BACKGROUNDS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "grass")
_COLOURS = {"square": (230, 40, 40), "circle": (40, 200, 60), "triangle": (40, 90, 230)}


def _need(module: str, extra: str = "demo") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InputError(
            f"this sample needs {module.split('.')[0]}; install it with pip install 'eiq-lab[{extra}]'"
        ) from None


def write_digits_folders(
    out_dir: str | os.PathLike, *, size: int = 32, test_share: float = 0.2, unlabeled: int = 5, seed: int = 0
) -> dict[str, int]:
    """Write scikit-learn's 1,797 handwritten digits as the guide's structured folders.

    Layout: ``train/<digit>/*.png``, ``test/<digit>/*.png`` and a few unlabeled images at the root.

    Args:
        out_dir: a new or empty folder.
        size: output width and height in pixels (the digits are 8x8, scaled up).
        test_share: fraction of the labelled digits put under ``test/``.
        unlabeled: how many digits go to the root, without a label or group.
        seed: random seed for the split.

    Returns:
        Counts ``{"train", "test", "unlabeled"}``.
    """
    import numpy as np
    from PIL import Image

    datasets = _need("sklearn.datasets")
    digits = datasets.load_digits()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    order = np.random.default_rng(seed).permutation(len(digits.images))
    counts = {"train": 0, "test": 0, "unlabeled": 0}
    n_test = round((len(order) - unlabeled) * test_share)
    for rank, index in enumerate(order):
        pixels = (255 - digits.images[index] * (255 / 16)).astype("uint8")  # dark ink on white, like paper
        image = Image.fromarray(pixels, "L").resize((size, size), Image.Resampling.BILINEAR)
        if rank < unlabeled:
            path, key = out / f"digit_{index:04d}.png", "unlabeled"
        else:
            key = "test" if rank < unlabeled + n_test else "train"
            path = out / key / str(digits.target[index]) / f"digit_{index:04d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        image.save(path)
        counts[key] += 1
    return counts


def shapes_image(index: int, *, width: int = 160, height: int = 120, seed: int = 0, quality: int = 90):
    """One JPEG of coloured shapes on a crop of a scikit-image photo, with its boxes.

    Returns:
        ``(jpeg_bytes, [(shape, (xmin, ymin, xmax, ymax)), ...])`` with integer pixel corners.
    """
    import numpy as np
    from PIL import Image, ImageDraw

    rng = np.random.default_rng((seed, index))
    background = _background(_BACKGROUNDS[index % len(_BACKGROUNDS)])
    bh, bw = background.shape[:2]
    top, left = int(rng.integers(0, bh - height)), int(rng.integers(0, bw - width))
    image = Image.fromarray(background[top : top + height, left : left + width])
    draw = ImageDraw.Draw(image)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        side = int(rng.integers(min(width, height) // 6, min(width, height) // 2))
        x0, y0 = int(rng.integers(0, width - side)), int(rng.integers(0, height - side))
        box = (x0, y0, x0 + side, y0 + side)
        colour = _COLOURS[shape]
        if shape == "square":
            draw.rectangle((x0, y0, x0 + side - 1, y0 + side - 1), fill=colour)
        elif shape == "circle":
            draw.ellipse((x0, y0, x0 + side - 1, y0 + side - 1), fill=colour)
        else:
            draw.polygon([(x0 + side / 2, y0), (x0, y0 + side - 1), (x0 + side - 1, y0 + side - 1)], fill=colour)
        objects.append((shape, box))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue(), objects


_CACHE: dict[str, Any] = {}


def _background(name: str):
    if name not in _CACHE:
        data = _need("skimage.data")
        image = getattr(data, name)()
        if image.ndim == 2:
            image = image[..., None].repeat(3, axis=2)
        _CACHE[name] = image[..., :3]
    return _CACHE[name]


def voc_xml(filename: str, width: int, height: int, objects: list[tuple[str, tuple | None]]) -> str:
    """A Pascal VOC annotation: boxes as (xmin, ymin, xmax, ymax), ``None`` for a full-image label."""
    parts = [
        "<annotation>",
        f"  <filename>{filename}</filename>",
        f"  <size><width>{width}</width><height>{height}</height><depth>3</depth></size>",
    ]
    for name, box in objects:
        parts.append(f"  <object><name>{name}</name>")
        if box is not None:
            xmin, ymin, xmax, ymax = box
            parts.append(
                f"    <bndbox><xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax><ymax>{ymax}</ymax></bndbox>"
            )
            parts.append("    <difficult>0</difficult><truncated>0</truncated>")
        parts.append("  </object>")
    parts.append("</annotation>\n")
    return "\n".join(parts)


def write_shapes_voc(
    out: str | os.PathLike,
    count: int = 200,
    *,
    test_share: float = 0.2,
    width: int = 160,
    height: int = 120,
    seed: int = 0,
) -> dict[str, int]:
    """Write a VOCdevkit-style dataset of shapes with known boxes, as a folder or (``.tar``/``.tar.gz``) archive.

    Layout: ``VOCdevkit/VOCshapes/{Annotations,JPEGImages,ImageSets/Main/{train,val}.txt}``.

    Returns:
        ``{"images", "boxes", "train", "test"}``.
    """
    out = Path(out)
    names = [f"shapes_{i:06d}" for i in range(count)]
    n_test = round(count * test_share)
    sets = {"train": "\n".join(names[n_test:]) + "\n", "val": "\n".join(names[:n_test]) + "\n"}
    root = "VOCdevkit/VOCshapes"
    counts = {"images": count, "boxes": 0, "train": count - n_test, "test": n_test}

    def files():
        for split, text in sets.items():
            yield f"{root}/ImageSets/Main/{split}.txt", text.encode()
        for i, name in enumerate(names):
            data, objects = shapes_image(i, width=width, height=height, seed=seed)
            counts["boxes"] += len(objects)
            yield f"{root}/Annotations/{name}.xml", voc_xml(f"{name}.jpg", width, height, objects).encode()
            yield f"{root}/JPEGImages/{name}.jpg", data

    if out.name.endswith((".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2")):
        out.parent.mkdir(parents=True, exist_ok=True)
        mode = (
            "w:gz"
            if out.name.endswith(("gz", "tgz"))
            else "w:xz"
            if out.name.endswith("xz")
            else "w:bz2"
            if out.name.endswith("bz2")
            else "w"
        )
        with tarfile.open(out, mode) as archive:
            for name, data in files():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    else:
        for name, data in files():
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    return counts
