"""Dataset validation: a model on a project's whole test group (accuracy and confusion, or mAP), through
`eiq_lab.evaluate.evaluate_run`, on this host or on several ModelRunners at once.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..errors import EiqError


@dataclass
class DatasetResult:
    """One device's evaluation of the model on the test group (or the error that stopped it)."""

    device: str
    report: Any = None
    seconds: float = 0.0
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        body = self.report.to_json() if self.report is not None else None
        return {"device": self.device, "error": self.error, "seconds": self.seconds, "report": body}


def validate_project(
    project: str | os.PathLike,
    model: str | os.PathLike,
    *,
    run: int | str | None = None,
    uris: list[str] | None = None,
    labels: list[str] | None = None,
    normalization: str | None = None,
    threshold: float = 0.0,
    timeout: float = 100,
) -> list[DatasetResult]:
    """Evaluate a model file on a project's test group, here or on each runner (concurrently).

    Args:
        project: the .eiqp project.
        model: the model file (TFLite, ONNX, Keras).
        run: the training run the model came from (its classes and preprocessing); default: the model's
            own metadata (or `labels` and `normalization`).
        uris: ModelRunners to run it on (one `eiq_lab.runner.remote.RemoteExecutor` each); default: this host.
        labels, normalization: for a model that carries none.
        threshold: a classifier's softmax threshold.
        timeout: seconds per runner request.

    Returns:
        One `DatasetResult` per device; its ``report`` is a `ClassificationReport` or `DetectionReport`.

    Raises:
        EiqError: (on this host) what `evaluate_run` raises: no test images, a model that does not fit the run.
    """
    from ..evaluate import evaluate_run
    from ..project import open_project

    def evaluate(subject: Any) -> Any:
        # a RemoteExecutor is an Executor: evaluate_run reads its metadata (labels, normalization) and runs it
        with open_project(project) as opened:
            return evaluate_run(opened, run, model=subject, labels=labels, normalization=normalization,
                                threshold=threshold)  # fmt: skip

    if not uris:
        started = time.perf_counter()
        report = evaluate(model)
        return [DatasetResult("local", report, time.perf_counter() - started)]

    def on_runner(uri: str) -> DatasetResult:
        from ..runner.remote import RemoteExecutor

        started = time.perf_counter()
        try:
            executor = RemoteExecutor(uri, model, timeout=timeout)
            return DatasetResult(executor.client.uri, evaluate(executor), time.perf_counter() - started)
        except EiqError as exc:
            return DatasetResult(uri, error=str(exc))

    with ThreadPoolExecutor(max_workers=len(uris), thread_name_prefix="eiq-validate") as pool:
        return list(pool.map(on_runner, uris))
