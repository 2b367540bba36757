"""Model Tool speed: opening a ~10 MB model (layer table ready) and the netron view of a MobileNetV2.

Goals (issue 9): the layer table of a 10 MB model within 2 s; netron's view of MobileNetV2 within 3 s.
Baselines measured in the same run: LiteRT loading the same file (Interpreter + allocate_tensors) for the table,
and netron's own server (`netron.start`) for the view. Headless Debian Chromium draws the graph.

    python benchmarks/model_tool_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BROWSER_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def build(folder: Path) -> tuple[Path, Path]:
    """MobileNetV2 (random weights) as float TFLite: alpha 0.75 at 224 (~10 MB) and alpha 1.0 at 224."""
    from eiq_lab import framework
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    out = []
    for alpha, name in ((0.75, "mobilenet_v2_075_224.tflite"), (1.0, "mobilenet_v2_100_224.tflite")):
        path = folder / name
        if not path.exists():
            model = keras.applications.MobileNetV2(input_shape=(224, 224, 3), alpha=alpha, weights=None)
            path.write_bytes(to_tflite(model))
        out.append(path)
    return out[0], out[1]


def time_table(path: Path, repeat: int) -> tuple[float, float]:
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab.widgets import ModelTool

    tool_times, base_times = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        interpreter = Interpreter(model_path=str(path))
        interpreter.allocate_tensors()
        base_times.append(time.perf_counter() - started)
        started = time.perf_counter()
        tool = ModelTool(path, graph=False)
        assert tool.info is not None and "<tr>" in tool.table.value, tool.status.value
        tool_times.append(time.perf_counter() - started)
        tool.close()
    return statistics.median(tool_times), statistics.median(base_times)


def time_view(path: Path, repeat: int) -> tuple[float, float, int]:
    import netron
    from playwright.sync_api import sync_playwright

    from eiq_lab.widgets.netron_view import NetronServer

    ours, theirs, nodes = [], [], 0
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=BROWSER_ARGS)
        for _ in range(repeat):
            server = NetronServer(path)
            page = browser.new_page()
            started = time.perf_counter()
            page.goto(server.url)
            page.locator("g.node").nth(50).wait_for(state="attached", timeout=60000)  # netron allows no eval
            ours.append(time.perf_counter() - started)
            nodes = page.locator("g.node").count()
            page.close()
            server.stop()
            address = netron.start(str(path), ("127.0.0.1", 0), browse=False)
            context = browser.new_context()  # netron's own page asks for cookie consent: answer it up front
            context.add_cookies([{"name": "consent", "value": "1", "url": f"http://127.0.0.1:{address[1]}/"}])
            page = context.new_page()
            started = time.perf_counter()
            page.goto(f"http://127.0.0.1:{address[1]}/")
            page.locator("g.node").nth(50).wait_for(state="attached", timeout=60000)  # netron allows no eval
            theirs.append(time.perf_counter() - started)
            context.close()
            netron.stop(address)
        browser.close()
    return statistics.median(ours), statistics.median(theirs), nodes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "eiq-model-tool-bench"))
    args = parser.parse_args(argv)
    folder = Path(args.cache)
    folder.mkdir(parents=True, exist_ok=True)
    ten_mb, mobilenet = build(folder)
    table, base = time_table(ten_mb, args.repeat)
    view, netron_own, nodes = time_view(mobilenet, args.repeat)
    size = ten_mb.stat().st_size / 1e6
    print(f"{'measure':<52} {'seconds':>8} {'baseline':>9} {'ratio':>6} {'goal':>6}")
    print(f"{'layer table ready, ' + ten_mb.name + f' ({size:.1f} MB)':<52} {table:>8.3f} {base:>9.3f} "
          f"{table / base:>6.1f} {'<= 2 s':>6}")  # fmt: skip
    print(f"{'netron view drawn, ' + mobilenet.name + f' ({nodes} nodes)':<52} {view:>8.3f} {netron_own:>9.3f} "
          f"{view / netron_own:>6.2f} {'<= 3 s':>6}")  # fmt: skip
    print("baselines: LiteRT Interpreter + allocate_tensors of the same file; netron's own server (netron.start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
