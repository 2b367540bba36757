"""Detection: Trainer.fit images/s against plain Keras fit, mAP reached on shapes, and metric speed.

Writes a Pascal VOC dataset of coloured shapes on scikit-image photos (known boxes), imports it, then
in one process, interleaved over --rounds rounds:

- baseline: plain `model.fit` of the same SSD on the images as in-memory tensors with targets encoded
  beforehand (no augmentation), testing on the test group after every epoch as the Trainer does;
- `Trainer.fit` reading the project, with the `default` augmentation (boxes move with the image);
- `Trainer.fit` with no augmentation.

Images/s is the median over epochs 2..N of every round; beside it, the process's CPU time per train image
over the same epochs (user + system, all threads), which a busy machine disturbs less than the rate, and
the load average before and after. Then one longer Trainer run, evaluated on the test group (mAP@0.5,
COCO mAP), and the time `detection_metrics` takes for 10,000 images of predictions.

    python benchmarks/detect_bench.py [--images 1000] [--size 96] [--epochs 4] [--rounds 1] [--quality-epochs 25]
        [--variants baseline,default,none]
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from pathlib import Path

import numpy as np


def make_project(folder: Path, images: int) -> Path:
    from eiq_lab.datasets.samples import write_shapes_voc
    from eiq_lab.datasets.voc import import_voc

    write_shapes_voc(folder / "voc", count=images)
    path = folder / "shapes.eiqp"
    import_voc(folder / "voc", path)
    return path


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def per_epoch(ends: list[tuple[float, float]], count: int) -> list[tuple[float, float]]:
    """(images/s, CPU ms per image) of each epoch after the first, from (wall, CPU) times at epoch ends."""
    wall, cpu = np.diff(np.asarray(ends), axis=0).T
    return [(count / w, 1000 * c / count) for w, c in zip(wall, cpu)]


def settings_for(args: argparse.Namespace, augmentation: str, epochs: int):
    from eiq_lab.train import TrainingSettings

    return TrainingSettings(
        task="detection", model="ssd_mobilenet_v2", alpha=args.alpha, input_size=(args.size, args.size, 3),
        weights="random", batch_size=args.batch, epochs=epochs, learning_rate=args.lr, augmentation=augmentation,
        seed=0,
    )  # fmt: skip


def trainer_rate(path: Path, args: argparse.Namespace, augmentation: str) -> list[tuple[float, float]]:
    from eiq_lab.project import open_project
    from eiq_lab.train import Trainer

    ends: list[tuple[float, float]] = []
    with open_project(path) as project:
        trainer = Trainer(project, settings_for(args, augmentation, args.epochs))
        trainer.fit(callbacks=[lambda e: ends.append((e.time, cpu_seconds())) if e.kind == "epoch" else None])
        count = trainer.samples.train_count
    return per_epoch(ends, count)


def baseline_rate(path: Path, args: argparse.Namespace) -> list[tuple[float, float]]:
    from eiq_lab import framework
    from eiq_lab.models import registry
    from eiq_lab.project import open_project
    from eiq_lab.train.samples import box_samples
    from eiq_lab.train.trainer import make_optimizer

    keras = framework.keras()
    plugin = registry().get("ssd_mobilenet_v2")
    shape = (args.size, args.size, 3)
    with open_project(path) as project:
        samples = box_samples(project, shape)
        groups = {}
        for group in ("train", "test"):  # the Trainer tests on the test group every epoch: so does the baseline
            ids, boxes, classes = samples.train if group == "train" else samples.test
            pixels = [np.asarray(project.image(int(i)).pil().convert("RGB").resize(shape[:2][::-1])) for i in ids]
            groups[group] = (ids, boxes, classes, pixels)
    encode = plugin.encoder(shape, len(samples.classes))

    def tensors(group: str) -> tuple[np.ndarray, np.ndarray]:
        _, boxes, classes, pixels = groups[group]
        x = np.stack(pixels).astype(np.float32) / 127.5 - 1.0
        y = np.stack([encode(b, c) for b, c in zip(boxes, classes)])
        return x, y

    x, y = tensors("train")
    test = tensors("test") if samples.test_count else None
    keras.utils.set_random_seed(0)
    model = plugin.get_model(shape, len(samples.classes), None, {"alpha": args.alpha})
    model.compile(make_optimizer(settings_for(args, "none", args.epochs), 1), plugin.loss())
    ends: list[tuple[float, float]] = []

    class Clock(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            ends.append((time.monotonic(), cpu_seconds()))

    model.fit(
        x, y, batch_size=args.batch, epochs=args.epochs, shuffle=True, validation_data=test, callbacks=[Clock()],
        verbose=0,
    )  # fmt: skip
    return per_epoch(ends, len(x))


def quality(path: Path, args: argparse.Namespace) -> tuple[float, float, float]:
    from eiq_lab.evaluate import evaluate_run
    from eiq_lab.project import open_project
    from eiq_lab.train import Trainer

    start = time.monotonic()
    with open_project(path) as project:
        result = Trainer(project, settings_for(args, "default", args.quality_epochs)).fit()
        seconds = time.monotonic() - start
        report = evaluate_run(project, result.run)
    return report.map50, report.coco_map, seconds


def metric_seconds(images: int = 10_000, classes: int = 3) -> float:
    from eiq_lab.evaluate import ImageBoxes, detection_metrics

    rng = np.random.default_rng(0)

    def boxes(n: int) -> np.ndarray:
        corner = rng.uniform(0, 0.7, (n, 2))
        return np.concatenate([corner, corner + rng.uniform(0.05, 0.3, (n, 2))], axis=1)

    truth, predicted = [], []
    for _ in range(images):
        n = int(rng.integers(1, 4))
        truth.append(ImageBoxes(boxes(n), rng.integers(0, classes, n)))
        m = int(rng.integers(0, 20))
        predicted.append(ImageBoxes(boxes(m), rng.integers(0, classes, m), rng.uniform(0, 1, m)))
    start = time.perf_counter()
    detection_metrics(truth, predicted, [f"c{k}" for k in range(classes)])
    return time.perf_counter() - start


TITLES = {
    "baseline": "baseline model.fit (in-memory tensors and targets)",
    "default": "Trainer.fit (project, default augmentation)",
    "none": "Trainer.fit (project, no augmentation)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--alpha", type=float, default=0.35)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--quality-epochs", type=int, default=25)
    parser.add_argument("--variants", default="baseline,default,none", help="comma-separated, of " + ",".join(TITLES))
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(TITLES))
    if unknown:
        parser.error(f"unknown variant(s) {', '.join(unknown)}; choose from {', '.join(TITLES)}")
    rates: dict[str, list[tuple[float, float]]] = {k: [] for k in variants}
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        path = make_project(Path(tmp), args.images)
        for _ in range(args.rounds):
            for key in variants:
                rates[key] += baseline_rate(path, args) if key == "baseline" else trainer_rate(path, args, key)
        median = {k: float(np.median([r for r, _ in v])) for k, v in rates.items()}
        cpu = {k: float(np.median([c for _, c in v])) for k, v in rates.items()}
        model = f"ssd_mobilenet_v2 alpha {args.alpha} {args.size}x{args.size}"
        timed = f"{args.rounds} round(s) of {args.epochs} epochs (epochs 2..{args.epochs} timed)"
        print(f"shapes: {args.images} images (80 % train), {model}, batch {args.batch}, {timed}")
        load = ", ".join(f"{a:.2f}" for a in (*load_before, *os.getloadavg()))
        print(f"load average (1, 5, 15 min) before and after: {load}")
        for key in variants:
            every = ", ".join(f"{r:.0f}" for r, _ in rates[key])
            print(f"{TITLES[key]:<52} {median[key]:7.1f} images/s  {cpu[key]:5.2f} CPU ms/image  ({every})")
        for key, name in (("default", "with augmentation"), ("none", "without augmentation")):
            if key in median and "baseline" in median:
                goal = " (goal >= 0.9x)" if key == "default" else ""
                print(f"ratio {name}: {median[key] / median['baseline']:.2f}x{goal}")
        if args.quality_epochs:
            map50, coco, seconds = quality(path, args)
            print(f"quality after {args.quality_epochs} epochs ({seconds:.0f} s): mAP@0.5 {map50:.3f}, "
                  f"COCO mAP {coco:.3f} (goal mAP@0.5 >= 0.5)")  # fmt: skip
    print(f"detection_metrics on 10,000 images: {metric_seconds():.2f} s (goal < 2 s)")


if __name__ == "__main__":
    main()
