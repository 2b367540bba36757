"""ModelRunner speed: per-request latency and 4-client throughput over loopback against in-process LiteRT.

The same int8 MobileNet v2 (alpha 0.35, 96x96, random weights calibrated on random inputs) runs in this
process with LiteRT (the baseline) and in an `eiq-runner` subprocess. Requests carry the raw int8 tensor as
the protocol's multipart part and ask for one output as JSON, over a persistent connection (http.client,
so the client's own cost stays small). Throughput: 4 client processes at once against the runner, and the
in-process interpreter looping alone. Goals (issue 7): p50 added latency <= 0.5 ms; throughput >= 0.85x.

    python benchmarks/runner_bench.py [--requests 2000] [--threads 1]
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
import time
from pathlib import Path

import numpy as np

BOUNDARY = "eiqbenchboundary"


def make_model(path: Path) -> None:
    from eiq_lab import framework
    from eiq_lab.convert.tflite import to_tflite

    keras = framework.keras()
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), weights=None, classes=10)
    calibration = np.random.default_rng(0).uniform(-1, 1, (16, 96, 96, 3)).astype(np.float32)
    path.write_bytes(
        to_tflite(model, quantize=True, samples=lambda: iter(calibration), input_type="int8", output_type="int8")
    )


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


def post(connection: http.client.HTTPConnection, path: str, body: bytes) -> bytes:
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}", "Accept": "application/json"}
    connection.request("POST", path, body, headers)
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"runner answered {response.status}: {data[:200]!r}")
    return data


def client_process(port: int, path: str, body: bytes, count: int, start: multiprocessing.Event, out) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(10):
        post(connection, path, body)
    start.wait()
    for _ in range(count):
        post(connection, path, body)
    out.put(count)


def percentiles(seconds: list[float]) -> tuple[float, float]:
    values = np.asarray(seconds) * 1e3
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=1, help="LiteRT threads, in-process and in the runner")
    args = parser.parse_args()
    from ai_edge_litert.interpreter import Interpreter

    work = Path(tempfile.mkdtemp(prefix="eiq_runner_bench_"))
    model = work / "mobilenet_v2_int8.tflite"
    make_model(model)
    interpreter = Interpreter(model_path=str(model), num_threads=args.threads)
    interpreter.allocate_tensors()
    given, wanted = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    value = np.random.default_rng(1).integers(-128, 128, given["shape"]).astype(np.int8)

    def local() -> None:
        interpreter.set_tensor(given["index"], value)
        interpreter.invoke()
        interpreter.get_tensor(wanted["index"])

    for _ in range(50):
        local()
    local_times = []
    for _ in range(args.requests):
        started = time.perf_counter()
        local()
        local_times.append(time.perf_counter() - started)

    port = free_port()
    command = [sys.executable, "-m", "eiq_lab.cli.runner", "-H", str(port), "-c", f"threads={args.threads}", str(model)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        connection = None
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
        name, output = description["inputs"][0]["name"], description["outputs"][0]["name"]
        body = request_body(name, value)
        path = f"/v1?output={output}"
        for _ in range(50):
            post(connection, path, body)
        remote_times = []
        for _ in range(args.requests):
            started = time.perf_counter()
            post(connection, path, body)
            remote_times.append(time.perf_counter() - started)

        start, out = multiprocessing.Event(), multiprocessing.Queue()
        each = args.requests // 4
        clients = [
            multiprocessing.Process(target=client_process, args=(port, path, body, each, start, out)) for _ in range(4)
        ]
        for c in clients:
            c.start()
        time.sleep(2.0)  # every client connected and warmed up
        started = time.perf_counter()
        start.set()
        done = sum(out.get() for _ in clients)
        remote_throughput = done / (time.perf_counter() - started)
        for c in clients:
            c.join()
    finally:
        server.terminate()
        server.wait(timeout=30)

    started = time.perf_counter()
    for _ in range(args.requests):
        local()
    local_throughput = args.requests / (time.perf_counter() - started)

    local_p50, local_p99 = percentiles(local_times)
    remote_p50, remote_p99 = percentiles(remote_times)
    print(f"model: MobileNet v2 a0.35 96x96 int8, LiteRT threads {args.threads}, {args.requests} requests, "
          f"{os.cpu_count()} cores")  # fmt: skip
    print(f"in-process invoke      p50 {local_p50:.3f} ms   p99 {local_p99:.3f} ms")
    print(f"runner over loopback   p50 {remote_p50:.3f} ms   p99 {remote_p99:.3f} ms")
    print(
        f"added latency          p50 {remote_p50 - local_p50:.3f} ms (goal <= 0.5)   "
        f"p99 {remote_p99 - local_p99:.3f} ms"
    )
    print(
        f"throughput: in-process {local_throughput:.0f}/s, runner with 4 client processes {remote_throughput:.0f}/s: "
        f"{remote_throughput / local_throughput:.2f}x (goal >= 0.85x)"
    )


if __name__ == "__main__":
    main()
