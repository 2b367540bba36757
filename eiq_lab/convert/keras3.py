"""Loading a Keras 3 `.keras` file, which legacy Keras (tf_keras, this process's Keras) cannot read: a child
Python without TF_USE_LEGACY_KERAS loads it with Keras 3 and exports a SavedModel the parent converts.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from ..errors import EiqError, InputError

# Runs in the child: Keras 3 loads the file and exports its inference function as a SavedModel
# (signature 'serving_default'); the last stderr line names the problem when it fails.
_CHILD = """
import sys
import keras
model = keras.saving.load_model(sys.argv[1], compile=False)
model.export(sys.argv[2], format="tf_saved_model", verbose=False)
"""

#: Seconds the child may take (importing TensorFlow and tracing the model dominate).
TIMEOUT = 600


def export_saved_model(path: str | os.PathLike, workdir: str | os.PathLike | None = None) -> Path:
    """Export a Keras 3 `.keras` model to a SavedModel folder, from a child Python running Keras 3.

    Args:
        path: the `.keras` file (written by Keras 3).
        workdir: where the SavedModel folder is created (default: a new temporary folder; the caller
            removes it).

    Returns:
        The SavedModel folder.

    Raises:
        InputError: the file does not exist.
        EiqError: Keras 3 is not installed, or it could not load or export the model (its message).
    """
    source = Path(path)
    if not source.is_file():
        raise InputError(f"Keras model {source} does not exist")
    folder = Path(tempfile.mkdtemp(prefix="keras3_", dir=workdir)) / "saved_model"
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["KERAS_BACKEND"] = "tensorflow"  # the export is a TensorFlow SavedModel whatever the user's default
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(source.resolve()), str(folder)],
            env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        raise EiqError(f"Keras 3 took over {TIMEOUT} s to load and export {source}; stopped") from None
    if done.returncode != 0 or not (folder / "saved_model.pb").is_file():
        lines = [line for line in done.stderr.splitlines() if line.strip()]
        reason = lines[-1] if lines else f"exit code {done.returncode}"
        if "No module named 'keras'" in reason:
            raise EiqError(f"{source} is a Keras 3 model and Keras 3 is not installed: pip install 'keras>=3'")
        raise EiqError(f"Keras 3 could not load and export {source}: {reason}")
    return folder
