"""ModelRunner speed: per-request latency and 4-client throughput over loopback against in-process LiteRT.

Two int8 MobileNet v2 models (random weights, calibrated on random inputs): alpha 0.35 96x96 (10 classes) and
alpha 1.0 224x224 (1000 classes). Each runs in this process with LiteRT (the baseline) and in an `eiq-runner`
subprocess (``-c threads=T --workers W``, default W = auto: one worker process per core, each with one
interpreter); throughput is measured with ``--workers 1`` too (one process, its interpreter pool one per core).

* Latency: one client, one persistent connection, one request at a time. A request is the protocol's
  multipart body with the raw int8 tensor (part name = input, filename = shape) asking for one output as JSON
  (``POST /v1?output=NAME``, ``Accept: application/json``). Measured client-side from the first byte sent to
  the last byte of the reply read, with a raw socket and pre-built request bytes (the client's own cost stays
  near zero), and then with `http.client` (what a plain Python client costs on top), and once more with the
  client and the runner's processes on one core (no wake-up of a process on another core). In-process:
  set_tensor, invoke, get_tensor on one interpreter. Added latency = runner p50 - in-process p50 (and p99).
* Throughput: 4 clients at once (4 threads of this process, each a raw-socket connection sending pre-built
  requests back to back) for a fixed time, against in-process throughput on this machine's cores measured the
  same way: as many threads as the runner's pool, each with its own interpreter, invoking back to back.

The machine may be shared: in-process and runner figures are taken in alternating blocks (latency: 10 blocks
of requests; throughput: 1-second windows), so other work on the machine weighs on both sides alike.

Where the cores go: with every core busy, throughput is the cores over the CPU time one request costs. The
benchmark reads the CPU time of the runner's processes and of the client threads per request, and the same for
a bare asyncio server on loopback that reads each request and writes a fixed reply (no HTTP library, no model):
the floor any Python server pays per request here. ``ceiling`` = in-process CPU per inference / (that plus the
floor): the best ratio any such server could reach on this machine with the clients sharing its cores.

Goals (issue 7): p50 added latency <= 0.5 ms; 4-client throughput >= 0.85x in-process. The client threads
share the machine's cores with the runner (on a 2-core machine that is a real share).

    python benchmarks/runner_bench.py [--requests 2000] [--seconds 4] [--threads 1] [--workers auto]
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


#: The floor: a bare asyncio server answering every request (read to its Content-Length) with a fixed reply.
FLOOR_SERVER = """
import asyncio, sys
REPLY = b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 2\\r\\n\\r\\n{}"
class Echo(asyncio.Protocol):
    def connection_made(self, transport):
        self.transport, self.buffer = transport, bytearray()
    def data_received(self, data):
        self.buffer += data
        while (end := self.buffer.find(b"\\r\\n\\r\\n")) >= 0:
            size = int(bytes(self.buffer[:end]).lower().split(b"content-length:")[1].split(b"\\r\\n")[0])
            if len(self.buffer) < end + 4 + size:
                return
            del self.buffer[: end + 4 + size]
            self.transport.write(REPLY)
async def main():
    server = await asyncio.get_running_loop().create_server(Echo, "127.0.0.1", int(sys.argv[1]))
    print("ready", flush=True)
    await server.serve_forever()
asyncio.run(main())
"""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its children, alive ones included (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total + sum(cpu_seconds(child) for child in children(pid))


def children(pid: int) -> list[int]:
    """The child processes of `pid` (the runner's workers)."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def cpu_per_request(pid: int, calls: list, seconds: float) -> tuple[float, float, float]:
    """Requests per second of `calls` (one thread each) against server `pid`, and the server's and this
    process's CPU time per request (s)."""
    server, client, started = cpu_seconds(pid), time.process_time(), time.perf_counter()
    rate = concurrently(calls, seconds)
    count = rate * (time.perf_counter() - started)
    return rate, (cpu_seconds(pid) - server) / count, (time.process_time() - client) / count


def floor_cpu(body_size: int, seconds: float) -> float:
    """CPU time per request (server + client) of the bare asyncio server answering 4 raw-socket clients."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", FLOOR_SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        server.stdout.readline()
        clients = [RawClient(port, "/v1", b"x" * body_size) for _ in range(4)]
        for c in clients:
            timed(c.post, 20)
        _, server_cpu, client_cpu = cpu_per_request(server.pid, [c.post for c in clients], seconds)
        return server_cpu + client_cpu
    finally:
        server.terminate()
        server.wait(timeout=30)


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


def measure(model: Path, requests: int, seconds: float, threads: int, workers: str) -> dict[str, float]:
    """Latency and throughput figures of one model, in-process and through a runner with `workers` (latency
    only when ``requests``); the two sides are measured in alternating blocks, so both see the same machine
    (other work on it comes and goes)."""
    from ai_edge_litert.interpreter import Interpreter

    from eiq_lab.runner.engines import open_engine
    from eiq_lab.runner.workers import worker_count

    count = worker_count(workers)
    pool = count * open_engine(model, compute=f"threads={threads}", workers=count).concurrency  # interpreters

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
    command = [sys.executable, "-m", "eiq_lab.cli.runner", "-H", str(port), "-c", f"threads={threads}",
               "--workers", workers, str(model)]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        if f":{port}/v1" not in server.stdout.readline():  # printed once every worker serves
            raise SystemExit("the runner did not start")
        connection = http.client.HTTPConnection("127.0.0.1", port)
        connection.request("GET", "/v1/model")
        description = json.loads(connection.getresponse().read())
        assert description["inputs"][0]["name"] == given["name"]
        path = f"/v1?output={description['outputs'][0]['name']}"
        body = request_body(given["name"], value)
        figures: dict[str, float] = {"pool": pool, "workers": count}
        if requests:
            client = RawClient(port, path, body)
            reply = json.loads(client.post())
            assert reply["outputs"][0]["shape"] == description["outputs"][0]["shape"], reply
            timed(client.post, max(50, requests // 10))  # warm-up, and the runner settles on one client alone
            blocks = 10
            times: dict[str, list[float]] = {"local": [], "raw": []}
            for _ in range(blocks):
                times["local"] += timed(local, requests // blocks)
                times["raw"] += timed(client.post, requests // blocks)
            # http.client on a connection of its own, after the raw client's (the runner treats clients that
            # take turns as concurrent ones for 0.1 s: they go to its worker threads)
            started = time.perf_counter()
            while time.perf_counter() - started < 0.3:
                http_client_post(connection, path, body)
            times["http"] = timed(lambda: http_client_post(connection, path, body), requests)
            # the client and the runner on one core: no wake-up of a process on another core (costly on a VM)
            core = {max(os.sched_getaffinity(0))}
            mask = os.sched_getaffinity(0)
            for pid in (server.pid, *children(server.pid)):
                os.sched_setaffinity(pid, core)
            os.sched_setaffinity(0, core)
            try:
                timed(client.post, 100)
                times["pinned"] = timed(client.post, requests)
            finally:
                os.sched_setaffinity(0, mask)
                for pid in (server.pid, *children(server.pid)):
                    os.sched_setaffinity(pid, mask)
            for side, values in times.items():
                figures[f"{side}_p50"], figures[f"{side}_p99"] = ms(values)
            client.sock.close()
        connection.close()

        clients = [RawClient(port, path, body) for _ in range(4)]
        for c in clients:
            timed(c.post, 5)
        windows = max(1, round(seconds))
        local_rates, runner_rates, local_cpu, server_cpu, client_cpu = [], [], [], [], []
        for _ in range(windows):
            rate, _, cpu = cpu_per_request(os.getpid(), calls, seconds / windows)
            local_rates.append(rate)
            local_cpu.append(cpu)
            rate, server_side, client_side = cpu_per_request(server.pid, [c.post for c in clients], seconds / windows)
            runner_rates.append(rate)
            server_cpu.append(server_side)
            client_cpu.append(client_side)
        figures["local_rate"], figures["runner_rate"] = float(np.mean(local_rates)), float(np.mean(runner_rates))
        figures["local_cpu"], figures["server_cpu"] = float(np.mean(local_cpu)), float(np.mean(server_cpu))
        figures["client_cpu"] = float(np.mean(client_cpu))
        if requests:
            figures["floor_cpu"] = floor_cpu(len(body), seconds / windows)
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
    parser.add_argument("--workers", default="auto", help="the runner's worker processes (default auto: one per core)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="eiq_runner_bench_"))
    maker = multiprocessing.get_context("spawn").Process(target=make_models, args=(work,))
    maker.start()
    maker.join()
    rows = []
    for n, (title, (alpha, size, _)) in enumerate(MODELS.items()):
        path = model_path(work, alpha, size)
        count = args.requests if n == 0 else args.requests // 10
        many = measure(path, count, args.seconds, args.threads, args.workers)
        one = measure(path, 0, args.seconds, args.threads, "1")
        rows.append((title, many, one))

    print(f"\nint8 models, LiteRT threads {args.threads} per interpreter, {os.cpu_count()} cores, load average "
          f"{os.getloadavg()[0]:.1f} (other work on the machine); times in ms")  # fmt: skip
    print("\nLatency, one client (runner: --workers " + args.workers + ")\n")
    print("| model | in-process p50 / p99 | runner p50 / p99 (raw socket) | added p50 / p99 (goal p50 <= 0.5) | "
          "runner p50 / p99 (http.client) | client and runner on one core: p50 / p99, added p50 |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for title, f, _ in rows:
        added50, added99 = f["raw_p50"] - f["local_p50"], f["raw_p99"] - f["local_p99"]
        print(
            f"| {title} | {f['local_p50']:.3f} / {f['local_p99']:.3f} | {f['raw_p50']:.3f} / {f['raw_p99']:.3f} "
            f"| **{added50:.3f}** / {added99:.3f} {'ok' if added50 <= 0.5 else 'MISSED'} "
            f"| {f['http_p50']:.3f} / {f['http_p99']:.3f} "
            f"| {f['pinned_p50']:.3f} / {f['pinned_p99']:.3f}, {f['pinned_p50'] - f['local_p50']:.3f} |"
        )
    print("\nThroughput, 4 clients (req/s), and CPU time per request (ms: runner processes + client threads)\n")
    print("| model | in-process | runner, W workers | ratio (goal >= 0.85) | runner, 1 process | ratio | CPU per "
          "request: in-process / runner + clients / floor | ceiling |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for title, f, one in rows:
        ratio, single = f["runner_rate"] / f["local_rate"], one["runner_rate"] / one["local_rate"]
        ceiling = f["local_cpu"] / (f["local_cpu"] + f["floor_cpu"])
        print(
            f"| {title} | {f['local_rate']:.0f} ({f['pool']} threads) | {f['runner_rate']:.0f} (W={f['workers']}) "
            f"| **{ratio:.2f}x** {'ok' if ratio >= 0.85 else 'MISSED'} | {one['runner_rate']:.0f} | {single:.2f}x "
            f"| {f['local_cpu'] * 1e3:.3f} / {f['server_cpu'] * 1e3:.3f} + {f['client_cpu'] * 1e3:.3f} / "
            f"{f['floor_cpu'] * 1e3:.3f} | {ceiling:.2f}x |"
        )


if __name__ == "__main__":
    main()
