"""ModelRunner speed: per-request latency and 4-client throughput over loopback against in-process LiteRT.

Two int8 MobileNet v2 models (random weights, calibrated on random inputs): alpha 0.35 96x96 (10 classes) and
alpha 1.0 224x224 (1000 classes). Each runs in this process with LiteRT (the baseline) and in an `eiq-runner`
subprocess (``-c threads=T``; its interpreter pool has the default size, one per core, at most 4).

* Latency: one client, one persistent connection, one request at a time. A request is the protocol's
  multipart body with the raw int8 tensor (part name = input, filename = shape) asking for one output as JSON
  (``POST /v1?output=NAME``, ``Accept: application/json``). Measured client-side from the first byte sent to
  the last byte of the reply read, with a raw socket and pre-built request bytes (the client's own cost stays
  near zero), and then with `http.client` (what a plain Python client costs on top). In-process: set_tensor,
  invoke, get_tensor on one interpreter. Added latency = runner p50 - in-process p50 (and the same for p99).
* Throughput: 4 clients at once (4 threads of this process, each a raw-socket connection sending pre-built
  requests back to back) for a fixed time, against in-process throughput on this machine's cores measured the
  same way: as many threads as the runner's pool, each with its own interpreter, invoking back to back.

The machine may be shared: in-process and runner figures are taken in alternating blocks (latency: 10 blocks
of requests; throughput: 1-second windows), so other work on the machine weighs on both sides alike.

Goals (issue 7): p50 added latency <= 0.5 ms; 4-client throughput >= 0.85x in-process. The client threads
share the machine's cores with the runner (on a 2-core machine that is a real share).

    python benchmarks/runner_bench.py [--requests 2000] [--seconds 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

BOUNDARY = "eiqbenchboundary"
MODELS = {"MobileNetV2 a0.35 96x96": (0.35, 96, 10), "MobileNetV2 a1.0 224x224": (1.0, 224, 1000)}


def make_models(folder: Path) -> None:
    """The benchmark's .tflite files (in a process of their own: TensorFlow's threads stay out of the timings)."""
    from eiq_lab import framework
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    for alpha, size, classes in MODELS.values():
        keras.utils.set_random_seed(0)
        model = keras.applications.MobileNetV2(alpha=alpha, input_shape=(size, size, 3), weights=None, classes=classes)
        calibration = list(np.random.default_rng(0).uniform(-1, 1, (8, size, size, 3)).astype(np.float32))
        tflite = to_tflite(model, quantize=True, samples=calibration.__iter__, input_type="int8",
                           output_type="int8")  # fmt: skip
        model_path(folder, alpha, size).write_bytes(tflite)


def model_path(folder: Path, alpha: float, size: int) -> Path:
    return folder / f"mobilenet_v2_{alpha}_{size}_int8.tflite"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_body(name: str, value: np.ndarray) -> bytes:
    shape = ",".join(str(d) for d in value.shape)
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{shape}"\r\n'
        "Content-Type: application/vnd.deepview.tensor.float32\r\n\r\n"
    )
    return head.encode() + value.tobytes() + f"\r\n--{BOUNDARY}--\r\n".encode()


HEADERS = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Accept": "application/json"}


class RawClient:
    """One keep-alive connection sending pre-built request bytes and reading the reply by its Content-Length."""

    def __init__(self, port: int, path: str, body: bytes):
        head = "".join(f"{k}: {v}\r\n" for k, v in HEADERS.items())
        self.request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{head}Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def post(self) -> bytes:
        self.sock.sendall(self.request)
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self.buffer += self._recv()
        head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"runner answered {head[:200]!r}")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(self.buffer) < length:
            self.buffer += self._recv()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return body

    def _recv(self) -> bytes:
        chunk = self.sock.recv(1 << 16)
        if not chunk:
            raise RuntimeError("the runner closed the connection")
        return chunk


def http_client_post(connection: http.client.HTTPConnection, path: str, body: bytes) -> bytes:
    connection.request("POST", path, body, HEADERS)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"runner answered {response.status}: {data[:200]!r}")
    return data


def timed(call, count: int) -> list[float]:
    times = []
    for _ in range(count):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return times


def concurrently(calls: list, seconds: float) -> float:
    """Requests per second of `calls` (one thread each) looping for `seconds`."""
    counts = [0] * len(calls)
    start, stop = threading.Barrier(len(calls) + 1), threading.Event()

    def loop(n: int) -> None:
        start.wait()
        while not stop.is_set():
            calls[n]()
            counts[n] += 1

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    start.wait()
    started = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return sum(counts) / (time.perf_counter() - started)


def ms(seconds: list[float]) -> tuple[float, float]:
    values = np.asarray(seconds) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def measure(model: Path, requests: int, seconds: float, threads: int) -> dict[str, float]:
    """Latency and throughput figures of one model, in-process and through a runner; the two sides are measured
    in alternating blocks, so both see the same machine (other work on it comes and goes)."""
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab.runner.engines import open_engine

    pool = open_engine(model, compute=f"threads={threads}").concurrency  # the runner's default pool size

    def interpreter_call():
        interpreter = Interpreter(model_path=str(model), num_threads=threads)
        interpreter.allocate_tensors()
        given, wanted = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        value = np.random.default_rng(1).integers(-128, 128, given["shape"]).astype(np.int8)

        def call() -> None:
            interpreter.set_tensor(given["index"], value)
            interpreter.invoke()
            interpreter.get_tensor(wanted["index"])

        return call, given, value

    local, given, value = interpreter_call()
    calls = [interpreter_call()[0] for _ in range(pool)]
    for call in [local, *calls]:
        timed(call, 10)

    port = free_port()
    command = [sys.executable, "-m", "eiq_lab.cli.runner", "-H", str(port), "-c", f"threads={threads}", str(model)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(300):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port)
                connection.request("GET", "/v1/model")
                description = json.loads(connection.getresponse().read())
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit("the runner did not start")
        assert description["inputs"][0]["name"] == given["name"]
        path = f"/v1?output={description['outputs'][0]['name']}"
        body = request_body(given["name"], value)
        client = RawClient(port, path, body)
        reply = json.loads(client.post())
        assert reply["outputs"][0]["shape"] == description["outputs"][0]["shape"], reply
        timed(client.post, max(50, requests // 10))  # warm-up, and the runner settles on one client alone
        blocks = 10
        times: dict[str, list[float]] = {"local": [], "raw": []}
        for _ in range(blocks):
            times["local"] += timed(local, requests // blocks)
            times["raw"] += timed(client.post, requests // blocks)
        # http.client on a connection of its own, after the raw client's (the runner treats clients that take
        # turns as concurrent ones for 0.1 s: they go to its worker threads)
        started = time.perf_counter()
        while time.perf_counter() - started < 0.3:
            http_client_post(connection, path, body)
        times["http"] = timed(lambda: http_client_post(connection, path, body), requests)
        figures = {"pool": pool}
        for side, values in times.items():
            figures[f"{side}_p50"], figures[f"{side}_p99"] = ms(values)

        clients = [RawClient(port, path, body) for _ in range(4)]
        for c in clients:
            timed(c.post, 5)
        windows = max(1, round(seconds))
        local_rates, runner_rates = [], []
        for _ in range(windows):
            local_rates.append(concurrently(calls, seconds / windows))
            runner_rates.append(concurrently([c.post for c in clients], seconds / windows))
        figures["local_rate"], figures["runner_rate"] = float(np.mean(local_rates)), float(np.mean(runner_rates))
    finally:
        server.terminate()
        server.wait(timeout=30)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="latency requests for the small model (the "
                        "large one gets a tenth)")  # fmt: skip
    parser.add_argument("--seconds", type=float, default=4.0, help="throughput measurement time per side")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads per interpreter")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eiq_runner_bench_"))
    maker = multiprocessing.get_context("spawn").Process(target=make_models, args=(work,))
    maker.start()
    maker.join()
    rows = []
    for n, (title, (alpha, size, _)) in enumerate(MODELS.items()):
        count = args.requests if n == 0 else args.requests // 10
        rows.append((title, measure(model_path(work, alpha, size), count, args.seconds, args.threads)))

    print(f"\nint8 models, LiteRT threads {args.threads} per interpreter, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (other work on the machine); times in ms")  # fmt: skip
    print("| model | in-process p50 / p99 | runner p50 / p99 (raw socket) | added p50 / p99 (goal p50 <= 0.5) | "
          "runner p50 / p99 (http.client) | in-process / runner 4 clients, req/s | ratio (goal >= 0.85) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for title, f in rows:
        added50, added99 = f["raw_p50"] - f["local_p50"], f["raw_p99"] - f["local_p99"]
        ratio = f["runner_rate"] / f["local_rate"]
        print(
            f"| {title} | {f['local_p50']:.3f} / {f['local_p99']:.3f} | {f['raw_p50']:.3f} / {f['raw_p99']:.3f} "
            f"| **{added50:.3f}** / {added99:.3f} {'ok' if added50 <= 0.5 else 'MISSED'} "
            f"| {f['http_p50']:.3f} / {f['http_p99']:.3f} "
            f"| {f['local_rate']:.0f} ({f['pool']} threads) / {f['runner_rate']:.0f} "
            f"| **{ratio:.2f}x** {'ok' if ratio >= 0.85 else 'MISSED'} |"
        )


if __name__ == "__main__":
    main()
