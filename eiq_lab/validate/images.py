"""Image validation: a classifier's top-n labels and scores, or a detector's top-n boxes, per image, on this
host or on ModelRunners, preprocessed the way the model's embedded metadata says (or as told).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError, InputError
from .devices import Device, LocalDevice, RemoteDevice
from .local import LocalModel, open_local

#: Suffixes read as images in a folder.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
#: A detection below this score is not shown (unless the model's metadata or the caller says otherwise).
SCORE_THRESHOLD = 0.3


@dataclass
class ImageResult:
    """One image's predictions: ``{"rank", "index", "label", "score"}`` (and ``"box"`` for a detector)."""

    image: str
    predictions: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        return {"image": self.image, "predictions": self.predictions}


@dataclass
class ImageReport:
    """The predictions of every image on one device, with its timing (or its error)."""

    device: str
    task: str
    images: list[ImageResult] = field(default_factory=list)
    box_format: str | None = None
    timing: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "task": self.task, "error": self.error, "timing": self.timing,
                "box_format": self.box_format,
                "images": [i.to_json() for i in self.images]}  # fmt: skip

    def lines(self) -> list[str]:
        """The guide's layout: ``Image FILE:`` then ``1:| label | 0.9766`` rows, then the average runtime."""
        out = [f"Device: {self.device}"]
        if self.error:
            return [*out, f"Error: {self.error}"]
        for result in self.images:
            out.append(f"Image {result.image}:")
            for p in result.predictions:
                box = f" | {', '.join(f'{v:.4f}' for v in p['box'])}" if "box" in p else ""
                out.append(f"{p['rank']}:| {p['label']} | {p['score']:.4f}{box}")
            if not result.predictions:
                out.append("no detection")
        out.append(f"Average Model runtime: {self.timing.get('model_ms') or 0:.4f}ms")
        return out


def image_files(source: str | os.PathLike | list) -> list[Path]:
    """The image files of a folder (sorted, recursive), a file, or a comma-separated list of those.

    Raises:
        InputError: a path that does not exist, or a folder without images.
    """
    items = source if isinstance(source, list) else [s for s in str(source).split(",") if s.strip()]
    files: list[Path] = []
    for item in items:
        path = Path(str(item).strip())
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise InputError(f"image folder {path} holds no image ({', '.join(IMAGE_SUFFIXES)})")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"image {path} does not exist; give an image file or a folder of images")
    return files


def load_image(path: Path, shape: list[int], normalization: str) -> np.ndarray:
    """An image decoded (PIL), converted to RGB (or L), resized bilinear to the input and normalized: [1, H, W, C].

    Raises:
        InputError: the file is not a decodable image.
    """
    from PIL import Image, UnidentifiedImageError

    from ..convert.calibration import normalize

    _, h, w, c = shape
    try:
        with Image.open(path) as image:
            pixels = image.convert("RGB" if c == 3 else "L").resize((w, h), Image.Resampling.BILINEAR)
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{path} is not a decodable image ({exc.__class__.__name__})") from None
    return normalize(np.asarray(pixels, np.uint8).reshape(1, h, w, c), normalization)


def read_labels(path: str | os.PathLike | None) -> list[str] | None:
    """The lines of a labels.txt (None when no file is given)."""
    if path is None:
        return None
    try:
        return [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as exc:
        raise InputError(f"labels file {path}: {exc.strerror or exc}") from None


def _scores(values: np.ndarray) -> np.ndarray:
    """The model's scores if they are probabilities already, else their softmax."""
    v = values.astype(np.float64).reshape(-1)
    if v.size and v.min() >= -1e-3 and abs(v.sum() - 1) < 2e-2:
        return v
    e = np.exp(v - v.max())
    return e / e.sum()


class _Predictor:
    """Turns one image's first output into predictions: top-n classes, or decoded boxes for a detector."""

    def __init__(self, local: LocalModel, labels: list[str] | None, top: int, score_threshold: float | None):
        metadata = local.metadata
        self.task = metadata.get("task", "classification")
        self.labels = labels or metadata.get("labels") or None
        self.top = top
        self.decode = None
        self.box_format = None
        if self.task == "detection":
            from ..models import registry

            name = metadata.get("model")
            try:
                plugin = registry().get(name, task="detection")
            except InputError:
                raise InputError(f"{local.name} is a detector of model {name!r}, which this installation does not "
                                 "know; its decoder is needed to read the boxes") from None  # fmt: skip
            if not self.labels:
                raise InputError(f"{local.name} carries no labels; give them (--labels labels.txt)")
            shape = tuple(local.inputs[0].shape[1:])
            if score_threshold is None:
                score_threshold = float(metadata.get("score_threshold", SCORE_THRESHOLD))
            self.box_format = metadata.get("box_format")
            self.decode = plugin.decoder(
                shape, len(self.labels), score_threshold=score_threshold, iou_threshold=metadata.get("iou_threshold"),
                max_detections=max(top, 20),
            )  # fmt: skip

    def _label(self, index: int) -> str:
        return self.labels[index] if self.labels and 0 <= index < len(self.labels) else str(index)

    def __call__(self, output: np.ndarray) -> list[dict[str, Any]]:
        if self.decode is None:
            scores = _scores(output)
            order = np.argsort(-scores, kind="stable")[: self.top]
            return [{"rank": r + 1, "index": int(i), "label": self._label(int(i)), "score": float(scores[i])}
                    for r, i in enumerate(order)]  # fmt: skip
        boxes, scores, classes = self.decode(output)[0]
        order = np.argsort(-np.asarray(scores), kind="stable")[: self.top]
        return [
            {"rank": r + 1, "index": int(classes[i]), "label": self._label(int(classes[i])), "score": float(scores[i]),
             "box": [float(v) for v in boxes[i]]}
            for r, i in enumerate(order)
        ]  # fmt: skip


def classify_images(
    model: str | os.PathLike,
    images: str | os.PathLike | list,
    *,
    top: int = 1,
    labels: str | os.PathLike | list[str] | None = None,
    normalization: str | None = None,
    uris: list[str] | None = None,
    timeout: float = 100,
    score_threshold: float | None = None,
) -> list[ImageReport]:
    """A model's top-n predictions on images: classes and scores, or a detector's boxes.

    Args:
        model: a TFLite, ONNX or Keras classifier or eiq-lab detector (its metadata says ``task: detection``,
            its plugin and anchors).
        images: a folder of images, an image file, or a comma-separated list.
        top: predictions per image (a detector shows all it found when fewer).
        labels: a labels.txt or a list of names (default: the labels the model carries; else class numbers).
        normalization: signed, unsigned or none (default: the model's metadata, else signed).
        uris: ModelRunners to run on (concurrently); default: this host.
        timeout: seconds per runner request.
        score_threshold: a detector's lowest score shown (default: its metadata's, else 0.3).

    Returns:
        One `ImageReport` per device.

    Raises:
        InputError: a model without one image input, unknown normalization, missing images, a detector whose
            plugin is not installed.
    """
    from ..convert.calibration import NORMALIZATIONS

    if top < 1:
        raise InputError(f"--top must be at least 1; received {top}")
    local = open_local(model)
    if len(local.inputs) != 1 or len(local.inputs[0].shape) != 4:
        raise InputError(f"image validation feeds one image input [1, H, W, C]; {local.name} takes "
                         f"{', '.join(str(t.shape) for t in local.inputs)}")  # fmt: skip
    normalization = normalization or local.metadata.get("normalization", "signed")
    if normalization not in NORMALIZATIONS:
        raise InputError(f"normalization must be one of {', '.join(NORMALIZATIONS)}; received {normalization!r}")
    names = labels if isinstance(labels, list) else read_labels(labels)
    predict = _Predictor(local, names, top, score_threshold)
    files = image_files(images)
    shape = [1, *local.inputs[0].shape[1:]]
    tensors = [load_image(f, shape, normalization) for f in files]
    first_in, first_out = local.inputs[0], local.outputs[0]

    def on(device: Device) -> ImageReport:
        report = ImageReport(device.name, predict.task, box_format=predict.box_format)
        for path, tensor in zip(files, tensors):
            raw = device.run({first_in.name: first_in.quantize(tensor)}, [first_out.name])[first_out.name]
            report.images.append(ImageResult(str(path), predict(first_out.dequantize(raw))))
        report.timing = device.timing()
        return report

    if not uris:
        return [on(LocalDevice(local))]

    def on_runner(uri: str) -> ImageReport:
        try:
            device = RemoteDevice(uri, model, timeout)
        except EiqError as exc:
            return ImageReport(uri, predict.task, error=str(exc))
        try:
            return on(device)
        except EiqError as exc:
            return ImageReport(device.name, predict.task, error=str(exc))
        finally:
            device.close()

    with ThreadPoolExecutor(max_workers=len(uris), thread_name_prefix="eiq-validate") as pool:
        return list(pool.map(on_runner, uris))
