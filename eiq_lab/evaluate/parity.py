"""Export parity: an exported model's outputs against the Keras model it came from, on the same
preprocessed project images: the largest and mean absolute difference, and top-1 agreement for a classifier.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .executors import Executor


def parity(reference: Executor, candidate: Executor, inputs: np.ndarray, task: str = "classification") -> dict:
    """Compare two models' first outputs on `inputs` [N, H, W, C].

    Returns:
        ``{"images", "max_abs_diff", "mean_abs_diff", "output_range"}`` plus ``"top1_agreement"`` (the share of
        images whose top class is the same) for a classifier. A quantized model is compared dequantized, so
        its differences read against ``output_range`` (the reference's max - min).
    """
    inputs = np.asarray(inputs, np.float32)
    expected = np.concatenate([reference(inputs[i : i + 32]) for i in range(0, len(inputs), 32)])
    got = np.concatenate([candidate(inputs[i : i + 32]) for i in range(0, len(inputs), 32)])
    difference = np.abs(got.astype(np.float64) - expected.astype(np.float64))
    result: dict[str, Any] = {
        "images": len(inputs),
        "max_abs_diff": float(difference.max()) if difference.size else 0.0,
        "mean_abs_diff": float(difference.mean()) if difference.size else 0.0,
        "output_range": float(expected.max() - expected.min()) if expected.size else 0.0,
    }
    if task == "classification" and expected.ndim == 2:
        result["top1_agreement"] = float(np.mean(expected.argmax(1) == got.argmax(1))) if len(inputs) else 1.0
    return result
