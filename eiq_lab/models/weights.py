"""Where a model's first weights come from: ImageNet through Keras' download cache, or a user's file.

Turns a failed download into the file name and folder to fix it by hand, and a mismatched file into its cause.
"""

from __future__ import annotations

import os
import re
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import EiqError, InputError

_FETCH_FAILURE = re.compile(r"URL fetch failure on (\S+?): ")


def keras_cache_dir() -> Path:
    """The folder Keras 2's `get_file` keeps downloaded model weights in.

    tf_keras uses ``~/.keras/models`` (``/tmp/.keras/models`` when ``~/.keras`` is not writable); it does
    not read ``KERAS_HOME`` for downloads (only for ``keras.json``).
    """
    base = os.path.expanduser(os.path.join("~", ".keras"))
    if not os.access(base, os.W_OK):
        base = os.path.join("/tmp", ".keras")
    return Path(base) / "models"


def build_with_imagenet(build: Callable[[], Any], model: str, file_name: str) -> Any:
    """Run `build` (a Keras application called with ``weights="imagenet"``), explaining download failures.

    Args:
        build: builds and returns the Keras model; Keras downloads the weights file on first use.
        model: what is being built, for messages (``"mobilenet_v2 (alpha 0.5)"``).
        file_name: the file Keras asks for, used when its error does not name it.

    Returns:
        The built model.

    Raises:
        EiqError: the weights could not be downloaded (the message names the file, where it comes from and the
            folder to place it in) or the cached copy cannot be read.
    """
    try:
        return build()
    except Exception as exc:
        error = imagenet_error(exc, model, file_name)
        if error is None:
            raise
        raise error from exc


def imagenet_error(exc: BaseException, model: str, file_name: str) -> EiqError | None:
    """The message for a failed ImageNet weights load, or None when `exc` is about something else."""
    text = str(exc)
    match = _FETCH_FAILURE.search(text)
    cache = keras_cache_dir()
    if match or isinstance(exc, urllib.error.URLError | ConnectionError | TimeoutError):
        url = match.group(1) if match else None
        name = url.rsplit("/", 1)[-1] if url else file_name
        source = f" ({url})" if url else ""
        return EiqError(
            f"could not download the ImageNet weights of {model}: {text}. Without network, fetch {name}{source} "
            f"elsewhere and place it in {cache}/ (Keras' download cache: ~/.keras/models, or /tmp/.keras/models "
            "when ~/.keras is not writable); or train from random weights (weights=None)"
        )
    cached = cache / file_name
    if cached.exists() and isinstance(exc, OSError | ValueError):
        return EiqError(
            f"the ImageNet weights file {cached} could not be read ({text}); delete it so Keras downloads it "
            "again, or put a good copy there"
        )
    return None


def load_weights_file(model: Any, path: str | os.PathLike, description: str, backbone: Any = None) -> Any:
    """Load a weights file into `model`, or (legacy .h5 files only) into its `backbone` alone.

    Keras .h5/.hdf5 (weights or whole model), .keras, .weights.h5 and TensorFlow checkpoints (a prefix with
    an ``.index`` file) are read; every variable of the target must be found in the file. Only legacy .h5
    files may hold the backbone alone (as Keras' ImageNet files without top do): Keras checks their layer
    count, so a whole model saved with another number of classes is refused rather than loaded in part.
    The newer formats would load such a file's backbone silently; they must match the whole model.

    Args:
        model: the Keras model built with random weights.
        path: the weights file.
        description: what the model is, for the message (``"mobilenet_v1 (alpha 0.25, 3 classes)"``).
        backbone: the part of `model` (sharing its layers) a backbone-only legacy .h5 file fits.

    Returns:
        The model or backbone that took the weights.

    Raises:
        InputError: the file fits none of them; the message names the file and each mismatch.
    """
    path = Path(path)
    targets = [("as the whole model", model)]
    legacy_h5 = path.suffix.lower() in (".h5", ".hdf5") and not path.name.lower().endswith(".weights.h5")
    if backbone is not None and legacy_h5:
        targets.append((f"as the backbone alone ({backbone.name})", backbone))
    problems = []
    for label, target in targets:
        try:
            _load(target, path)
            return target
        except Exception as exc:  # Keras, h5py and TensorFlow each raise their own kinds for a bad file
            first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            problems.append(f"{label}: {first_line[:400]}")
    raise InputError(
        f"weights file {path} does not match {description}: {'; '.join(problems)}. Use a file saved from the same "
        "model (same alpha, input channels and number of classes), or weights=None for random initialization"
    )


def _load(target: Any, path: Path) -> None:
    if not path.exists() and Path(f"{path}.index").exists():  # TensorFlow checkpoint prefix
        status = target.load_weights(str(path))
        status.assert_existing_objects_matched()
        return
    if path.is_dir():
        raise ValueError("a folder (a SavedModel?) is not a weights file")
    target.load_weights(str(path))
