"""How close per-layer profiles add up to the whole model: MobileNet v2 (alpha 0.35, 96x96, random weights, 1000
classes) as int8 and float32 TFLite, XNNPACK on and off, and as ONNX in ONNX Runtime.

TFLite: the sum of the single-operator slices' times against the whole model timed in the same rounds (issue
7's goal: within 15 % on MobileNetV2 int8). ONNX Runtime: the sum of its profiler's per-node kernel times
against the whole model timed in a session without profiling, and against the profiled run itself. Each
configuration is profiled `--repeats` times; the ratio's median and range are printed. Random weights are
fine for timing (int8 calibrated on a few random images).

    python benchmarks/profile_bench.py [--runs 30] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def make_models(folder: Path) -> dict[str, Path]:
    import numpy as np

    from eiq_lab import framework
    from eiq_lab.convert.onnx import to_onnx
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None)
    calibration = np.random.default_rng(0).uniform(-1, 1, (8, 96, 96, 3)).astype(np.float32)
    paths = {"int8": folder / "mnv2_int8.tflite", "float32": folder / "mnv2.tflite", "onnx": folder / "mnv2.onnx"}
    int8 = dict(quantize=True, samples=lambda: iter(calibration), input_type="int8", output_type="int8")
    paths["int8"].write_bytes(to_tflite(model, **int8))
    paths["float32"].write_bytes(to_tflite(model))
    paths["onnx"].write_bytes(to_onnx(model))
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    from eiq_lab.runner.profiling import profile_model

    with tempfile.TemporaryDirectory() as work:
        paths = make_models(Path(work))
        print(f"MobileNetV2 a0.35 96x96, {args.runs} timed runs, {args.threads} thread(s), {args.repeats} repeats")
        print(f"{'model':<8} {'engine':<16} {'layers':>6} {'whole us':>9} {'sum us':>9} {'sum/whole':>9}  range"
              f"{'':>9} {'profile s':>9}")  # fmt: skip
        configs = [
            ("int8", "tflite xnnpack", dict(xnnpack=True)),
            ("int8", "tflite builtin", dict(xnnpack=False)),
            ("float32", "tflite xnnpack", dict(xnnpack=True)),
            ("float32", "tflite builtin", dict(xnnpack=False)),
            ("onnx", "onnxruntime", {}),
        ]
        for kind, label, options in configs:
            ratios, wholes, sums, seconds = [], [], [], []
            extra = []
            for _ in range(args.repeats):
                started = time.perf_counter()
                profile = profile_model(paths[kind], runs=args.runs, threads=args.threads, **options)
                seconds.append(time.perf_counter() - started)
                ratios.append(profile.layers_ns / profile.total_ns)
                wholes.append(profile.total_ns / 1e3)
                sums.append(profile.layers_ns / 1e3)
                if profile.settings.get("profiled_run_ns"):
                    extra.append(profile.layers_ns / profile.settings["profiled_run_ns"])
            print(
                f"{kind:<8} {label:<16} {len(profile.layers):>6} {statistics.median(wholes):>9.1f} "
                f"{statistics.median(sums):>9.1f} {statistics.median(ratios):>9.3f}  "
                f"{min(ratios):.3f}-{max(ratios):.3f}  {statistics.median(seconds):>9.2f}"
            )
            if extra:
                print(f"{'':<8} {'(vs profiled run)':<16} {'':>6} {'':>9} {'':>9} {statistics.median(extra):>9.3f}")


if __name__ == "__main__":
    main()
