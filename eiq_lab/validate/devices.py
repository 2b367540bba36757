"""Where a validated model runs: this host (`local.LocalModel`) or a ModelRunner at a URI (through
`eiq_lab.runner.client.ModelClient`), behind one call that also times each run.
"""

from __future__ import annotations

import os
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import EiqError
from .local import LocalModel


class Device(ABC):
    """Runs one model on raw input tensors.

    Attributes:
        name: ``local`` or the runner's URI.
        model_seconds: per run, the model's own evaluation time (the runner's report, or the local invoke).
        round_trip_seconds: per run, the whole call (request, transfer and reply for a runner).
    """

    name = ""

    def __init__(self) -> None:
        self.model_seconds: list[float] = []
        self.round_trip_seconds: list[float] = []

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        """Raw outputs (the model's own dtypes) named in `outputs`, on raw `feeds`."""

    def timing(self) -> dict[str, Any]:
        """Average and total model time and round trip in milliseconds, and the number of runs."""
        model, trip = self.model_seconds, self.round_trip_seconds
        return {
            "runs": len(model),
            "model_ms": 1000 * float(np.mean(model)) if model else None,
            "round_trip_ms": 1000 * float(np.mean(trip)) if trip else None,
            "total_ms": 1000 * float(np.sum(trip)) if trip else None,
        }

    def close(self) -> None:  # noqa: B027 (a device holding nothing has nothing to release)
        """Release what the device holds (connections)."""


class LocalDevice(Device):
    """The model on this host (LiteRT, ONNX Runtime or TensorFlow)."""

    name = "local"

    def __init__(self, model: LocalModel):
        super().__init__()
        self.model = model

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        results = self.model.run(feeds)
        elapsed = time.perf_counter() - started
        self.model_seconds.append(elapsed)
        self.round_trip_seconds.append(elapsed)
        return {name: results[name] for name in outputs}


class RemoteDevice(Device):
    """The model uploaded to a ModelRunner; the runner's reported evaluation time is the model time.

    Raises:
        EiqError: the runner cannot be reached or refuses the model (the client's message, naming the URI).
    """

    def __init__(self, uri: str, model: str | os.PathLike, timeout: float = 100):
        super().__init__()
        from ..runner.client import ModelClient

        # the client's errors name the URI and the fix (start a runner there, or correct it)
        self.client = ModelClient(uri, Path(model), timeout=timeout, callback=None)
        self.name = self.client.uri

    def run(self, feeds: dict[str, np.ndarray], outputs: list[str]) -> dict[str, np.ndarray]:
        started = time.perf_counter()
        results = self.client.run(dict(feeds), outputs=list(outputs))
        self.round_trip_seconds.append(time.perf_counter() - started)
        self.model_seconds.append(self.client.get_timing_info()[2])
        missing = [n for n in outputs if n not in results]
        if missing:
            raise EiqError(f"runner {self.name} returned no output {', '.join(missing)}")
        return results

    def close(self) -> None:
        self.client.close()
