"""Validation panel speed: the softmax threshold's confusion-matrix update for 10,000 predictions, in a real kernel.

A Python kernel (jupyter_client) builds the Validation panel on a report of synthetic softmax outputs (10 classes,
known labels, about 70 % right) and moves the threshold two ways, each timed against computing the report alone
(`ClassificationResults.report`) in the same kernel:

- in the kernel: ``panel.threshold.value = t`` until it returns (the report, the grid's colours, the counts,
  the summary and the metrics table recomputed and their widget messages handed to the kernel's session);
- end to end: the front end's own message (a ``comm_msg`` updating the slider's value) sent from this process,
  until the kernel reports idle for it (every widget update it caused has reached this process first).

Goal (issue 8): <= 50 ms end to end.

    python benchmarks/threshold_bench.py [--images 10000] [--classes 10] [--moves 60]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

SETUP = """
import json, time, statistics
import numpy as np
from eiq_lab.evaluate import ClassificationResults
from eiq_lab.project import create_project
from eiq_lab.widgets import Validation

rng = np.random.default_rng(0)
n, c = {images}, {classes}
truth = rng.integers(0, c, n)
logits = rng.normal(0.0, 1.0, (n, c))
logits[np.arange(n), truth] += 2.0
scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
classes = [f"class {{k}}" for k in range(c)]
results = ClassificationResults(classes, truth, scores, np.arange(1, n + 1))
project = create_project({project!r})
panel = Validation(project)
panel.show_report(results.report(0.0))
slider = panel.threshold
print(json.dumps({{"slider": slider.model_id, "accuracy": panel.report.accuracy}}))
"""

IN_KERNEL = """
thresholds = [0.2 + 0.6 * (k % 7) / 6 + 0.001 * k for k in range({moves})]
setting, computing = [], []
for t in thresholds:
    start = time.perf_counter()
    slider.value = t
    setting.append(time.perf_counter() - start)
for t in thresholds:
    start = time.perf_counter()
    results.report(t)
    computing.append(time.perf_counter() - start)
assert abs(panel.report.threshold - thresholds[-1]) < 1e-12
print(json.dumps({{"setting": setting, "computing": computing, "background": int(panel.report.background)}}))
"""


def execute(client, code: str) -> dict:
    """Run `code` in the kernel; return the JSON it printed last."""
    reply = client.execute_interactive(code, timeout=300, output_hook=_collect(lines := []))
    if reply["content"]["status"] != "ok":
        raise RuntimeError("\n".join(reply["content"].get("traceback", [])))
    return json.loads([line for line in "".join(lines).splitlines() if line.startswith("{")][-1])


def _collect(lines: list[str]):
    def hook(message: dict) -> None:
        if message["msg_type"] == "stream":
            lines.append(message["content"]["text"])
        elif message["msg_type"] == "error":
            lines.append("\n".join(message["content"]["traceback"]))

    return hook


def move_from_front_end(client, slider: str, value: float) -> tuple[float, int, int]:
    """Send the slider update a browser sends; wait until the kernel is idle after it.

    Returns (seconds, widget update messages received, their bytes)."""
    content = {"comm_id": slider, "data": {"method": "update", "state": {"value": value}, "buffer_paths": []}}
    message = client.session.msg("comm_msg", content)
    start = time.perf_counter()
    client.shell_channel.send(message)
    updates = size = 0
    while True:
        reply = client.get_iopub_msg(timeout=30)
        if reply["parent_header"].get("msg_id") != message["header"]["msg_id"]:
            continue
        if reply["msg_type"] == "comm_msg":
            updates += 1
            size += len(json.dumps(reply["content"])) + sum(len(b) for b in reply.get("buffers") or [])
        elif reply["msg_type"] == "status" and reply["content"]["execution_state"] == "idle":
            return time.perf_counter() - start, updates, size


def milliseconds(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"median {1000 * statistics.median(values):6.2f} ms, p95 {1000 * p95:6.2f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=10000)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--moves", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        manager, client = start_new_kernel(kernel_name="python3")
        try:
            setup = execute(client, SETUP.format(images=args.images, classes=args.classes,
                                                 project=str(Path(folder) / "bench.eiqp")))  # fmt: skip
            inside = execute(client, IN_KERNEL.format(moves=args.moves))
            moves = [0.2 + 0.6 * (k % 7) / 6 + 0.0005 * k for k in range(args.moves)]
            outside = [move_from_front_end(client, setup["slider"], t) for t in moves]
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    end_to_end = [seconds for seconds, _, _ in outside]
    messages, size = outside[-1][1], outside[-1][2]
    report = statistics.median(inside["computing"])
    print(f"threshold update, {args.images:,} predictions, {args.classes} classes ({args.moves} moves each)")
    print(f"  report alone (ClassificationResults.report) : {milliseconds(inside['computing'])}")
    print(f"  panel, in the kernel (slider.value = t)     : {milliseconds(inside['setting'])}"
          f"  ({statistics.median(inside['setting']) / report:.1f}x the report)")  # fmt: skip
    print(f"  panel, end to end (front-end comm_msg->idle): {milliseconds(end_to_end)}"
          f"  ({messages} widget messages, {size:,} bytes per move)")  # fmt: skip
    verdict = "met" if statistics.median(end_to_end) <= 0.050 else "NOT met"
    print(f"  goal <= 50 ms end to end: {verdict}")


if __name__ == "__main__":
    main()
