"""Training speed: `Trainer.fit` reading a project through a 4-operator augmentation pipeline, against
plain Keras `model.fit` on the same images as in-memory tensors with no augmentation.

Same model (the registry's mobilenet_v2, random weights), same batch, same optimizer, one process.
Images/s is measured over the epochs after the first (tracing and warm-up excluded), from the end of
one epoch to the end of the next, so the trainer's per-epoch checkpoint is counted. A third line,
`Trainer.fit` with no augmentation, separates the trainer's own cost (project reading, events,
checkpoints) from the cost of augmenting. The three run interleaved, `--rounds` times, so a noisy
machine slows them alike; ratios are of medians over all rounds. Goal (issue 4): trainer >= 0.95x the
baseline on CPU.

    python benchmarks/train_bench.py [--images 400] [--size 96] [--alpha 0.35] [--batch 10] [--epochs 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import io
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

PIPELINE = [
    {"op": "horizontal_flip", "probability": 0.5},
    {"op": "rotate", "probability": 0.5, "params": {"limit": [-15, 15]}},
    {"op": "random_brightness", "probability": 0.5},
    {"op": "random_contrast", "probability": 0.5},
]


def make_project(path: Path, count: int, size: int) -> None:
    """Photos of scikit-image cut into `size` crops, 4 classes, all in the train group."""
    from skimage import data

    from eiq_lab.project import create_project

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    rng = np.random.default_rng(0)
    with create_project(path) as project, project.transaction():
        for i in range(count):
            label = i % len(photos)
            photo = photos[label]
            y = rng.integers(0, photo.shape[0] - size)
            x = rng.integers(0, photo.shape[1] - size)
            out = io.BytesIO()
            Image.fromarray(photo[y : y + size, x : x + size]).save(out, "JPEG", quality=90)
            [image] = project.add_images([out.getvalue()], "train")
            project.add_annotation(image, f"class{label}")
        project.save_pipeline("bench4", PIPELINE)
        project.save_pipeline("bench0", [])


def trainer_rate(path: Path, args: argparse.Namespace, augmentation: str) -> list[float]:
    from eiq_lab.project import open_project
    from eiq_lab.train import Trainer, TrainingSettings

    ends: list[float] = []
    settings = TrainingSettings(
        model="mobilenet_v2", alpha=args.alpha, input_size=(args.size, args.size, 3), weights="random",
        batch_size=args.batch, epochs=args.epochs, augmentation=augmentation, seed=0,
    )  # fmt: skip
    with open_project(path) as project:
        Trainer(project, settings).fit(callbacks=[lambda e: ends.append(e.time) if e.kind == "epoch" else None])
    return [args.images / d for d in np.diff(ends)]


def baseline_rate(path: Path, args: argparse.Namespace) -> list[float]:
    from eiq_lab import framework
    from eiq_lab.models import registry
    from eiq_lab.project import open_project
    from eiq_lab.train import TrainingSettings
    from eiq_lab.train.trainer import make_optimizer

    keras = framework.keras()
    plugin = registry().get("mobilenet_v2")
    with open_project(path) as project:
        images, labels = [], []
        names = [str(label) for label in project.labels()]
        for image in project.iter_images(group="train"):
            images.append(np.asarray(image.pil().convert("RGB").resize((args.size, args.size))))
            labels.append(names.index(str(project.annotations(image=image)[0].label)))
    x = np.stack(images).astype(np.float32) / 127.5 - 1.0
    y = keras.utils.to_categorical(labels, len(names))
    keras.utils.set_random_seed(0)
    model = plugin.get_model((args.size, args.size, 3), len(names), None, {"alpha": args.alpha})
    settings = TrainingSettings(batch_size=args.batch)
    model.compile(make_optimizer(settings, 1), "categorical_crossentropy", metrics=["accuracy"])
    ends: list[float] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append(time.monotonic())

    model.fit(x, y, batch_size=args.batch, epochs=args.epochs, shuffle=True, callbacks=[Clock()], verbose=0)
    return [args.images / d for d in np.diff(ends)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rates: dict[str, list[float]] = {"baseline": [], "bench4": [], "bench0": []}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.eiqp"
        make_project(path, args.images, args.size)
        for _ in range(args.rounds):
            rates["baseline"] += baseline_rate(path, args)
            rates["bench4"] += trainer_rate(path, args, "bench4")
            rates["bench0"] += trainer_rate(path, args, "bench0")
    median = {k: float(np.median(v)) for k, v in rates.items()}
    print(f"{args.images} images {args.size}x{args.size}, mobilenet_v2 alpha {args.alpha}, batch {args.batch}, "
          f"{args.rounds} round(s) of {args.epochs} epochs (epochs 2..{args.epochs} timed)")  # fmt: skip
    lines = [
        ("baseline", "baseline model.fit (in-memory tensors, no augmentation)"),
        ("bench4", "Trainer.fit (project, 4-operator augmentation)"),
        ("bench0", "Trainer.fit (project, no augmentation)"),
    ]
    for key, title in lines:
        every = ", ".join(f"{r:.0f}" for r in rates[key])
        print(f"{title:<58} {median[key]:7.1f} images/s  ({every})")
    print(f"ratio with augmentation: {median['bench4'] / median['baseline']:.2f}x (goal >= 0.95x)")
    print(f"ratio without augmentation (the trainer's own cost): {median['bench0'] / median['baseline']:.2f}x")


if __name__ == "__main__":
    main()
