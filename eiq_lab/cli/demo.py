"""`eiq demo [DIR]`: the end-to-end demo on data that ships with our dependencies (no network).

Writes scikit-learn's digits as structured folders and a VOC tar of shapes, imports both, prints
each project's info and health report, trains a small MobileNet v2 on the digits, validates it (confusion
matrix at a softmax threshold), exports it as an int8 TFLite model checked against Keras, evaluates that
file, and compiles it for the i.MX 93's Ethos-U65 with Vela.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path
from typing import Any

from ..errors import InputError
from .output import add_flag, progress_for
from .project import format_health, format_info

_MARKER = ".eiq-demo"


def _prepare(folder: Path) -> None:
    if folder.exists() and any(folder.iterdir()):
        if not (folder / _MARKER).exists():
            raise InputError(f"{folder} is not empty and is not an earlier demo folder; give a new folder")
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / _MARKER).write_text("made by `eiq demo`; running it again replaces this folder\n")


def _step(text: str) -> None:
    print(f"\n== {text}")


def _run(args: argparse.Namespace) -> int:
    from ..datasets.folders import import_folders
    from ..datasets.samples import write_digits_folders, write_shapes_voc
    from ..datasets.voc import import_voc
    from ..project import open_project

    folder = Path(args.folder)
    _prepare(folder)

    _step("1. scikit-learn digits written as structured folders (train/<digit>, test/<digit>, root = unlabeled)")
    counts = write_digits_folders(folder / "digits")
    print(
        f"wrote {counts['train']} train, {counts['test']} test and {counts['unlabeled']} unlabeled images "
        f"to {folder / 'digits'}"
    )
    digits = folder / "digits.eiqp"
    _step(f"2. eiq import folders {folder / 'digits'} --project {digits}")
    print(import_folders(folder / "digits", digits, progress=progress_for(args)).summary())

    _step("3. a Pascal VOC tar of shapes on scikit-image photos (boxes known)")
    tar = folder / "shapes_voc.tar.gz"
    shapes = write_shapes_voc(tar, count=args.shapes)
    print(f"wrote {shapes['images']} images with {shapes['boxes']} boxes to {tar}")
    shapes_project = folder / "shapes.eiqp"
    _step(f"4. eiq-importer -project {shapes_project} {tar}")
    print(import_voc(tar, shapes_project, progress=progress_for(args)).summary())

    for path in (digits, shapes_project):
        with open_project(path) as project:
            _step(f"eiq project info {path}")
            print(format_info(project.info()))
            _step(f"eiq project health {path}")
            print(format_health(project.health(progress=progress_for(args))))
    _train_digits(digits, args)
    _validate_and_ship(digits, folder)
    print(f"\ndone: projects {digits} and {shapes_project}; try `eiq runs {digits}`, `eiq project info {digits}`, "
          f"or open them in the Portal: `eiq portal {folder}`")  # fmt: skip
    return 0


def _validate_and_ship(digits: Path, folder: Path) -> None:
    from ..convert import export_run
    from ..evaluate import evaluate_run
    from ..project import open_project
    from .evaluate import _print_classification

    _step(f"6. eiq evaluate {digits} --threshold 0.5")
    with open_project(digits) as project:
        report = evaluate_run(project, threshold=0.5)
        _print_classification(report)
        model = folder / "models" / "digits_int8.tflite"
        _step(f"7. eiq export {digits} --format tflite --quantize --per-tensor -o {model}")
        result = export_run(project, fmt="tflite", output=model, quantize=True, per_channel=False)
        parity = result.parity
        print(
            f"wrote {model} ({model.stat().st_size:,} bytes): top-1 agreement with the float model "
            f"{parity['top1_agreement']:.1%} on {parity['images']} test images"
        )
        _step(f"8. eiq evaluate {digits} --model {model}")
        int8 = evaluate_run(project, model=model)
    print(f"int8 test accuracy {int8.accuracy:.1%} (float {report.results.report(0.0).accuracy:.1%})")
    from ..convert.vela import compile_for_ethos_u

    _step(f"9. eiq vela {model} --config imx93")
    vela = compile_for_ethos_u(model, folder / "models" / "vela", "imx93")
    print(
        f"compiled for {vela.accelerator}: {vela.inference_time_s * 1e3:.3f} ms per inference (Vela's estimate), "
        f"{vela.npu_operators} operators on the NPU, {vela.cpu_operators} on the CPU -> {vela.model}"
    )


def _train_digits(digits: Path, args: argparse.Namespace) -> None:
    from ..project import open_project
    from ..train import Trainer, TrainingSettings
    from .train import TrainPrinter

    # offline, so random weights; 32x32 digits and a small alpha keep it to a minute on a laptop CPU
    settings = TrainingSettings(
        model="mobilenet_v2", alpha=0.35, input_size=(32, 32, 3), weights="random", learning_rate=2e-3,
        batch_size=32, epochs=args.epochs, augmentation="none", seed=0,
    )  # fmt: skip
    _step(
        f"5. eiq train {digits} --model mobilenet_v2 --alpha 0.35 --input-size 32,32,3 --weights random "
        f"--lr 2e-3 --batch 32 --epochs {args.epochs} --augmentation none --seed 0"
    )
    with open_project(digits) as project:
        result = Trainer(project, settings).fit(callbacks=None if args.quiet else [TrainPrinter()])
    accuracy = result.metrics.get("test_accuracy", 0.0)
    print(f"run {result.run}: test accuracy {accuracy:.1%} on the digits' test group after {result.epoch} epochs "
          "(chance: 10%)")  # fmt: skip


def register(subparsers: Any) -> None:
    """Add `eiq demo` to the top-level parser."""
    parser = subparsers.add_parser("demo", help="run the end-to-end demo on data our dependencies ship")
    parser.add_argument("folder", nargs="?", default="eiq-demo", help="a new folder for the demo (default ./eiq-demo)")
    add_flag(parser, "shapes", type=int, default=120, help="how many VOC shape images to generate (default 120)")
    add_flag(parser, "epochs", type=int, default=5, help="training epochs of the digits model (default 5)")
    add_flag(parser, "quiet", "-q", action="store_true", help="no progress display")
    parser.set_defaults(handler=_run)
