"""The one place TensorFlow and Keras 2 (tf_keras) are loaded, quietly and on first use.

Training uses Keras 2 because tensorflow-model-optimization (QAT, pruning, clustering) needs it.
"""

from __future__ import annotations

import os
from types import ModuleType

from .errors import EiqError


def _prepare_environment() -> None:
    # Keras 2 for tf.keras (TFMOT and anything else reading tf.keras), fewer C++ log lines; a user's
    # own settings win
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


_tensorflow: ModuleType | None = None


def tf() -> ModuleType:
    """Return the `tensorflow` module.

    Cheap after the first call, and safe inside functions that tf.data or tf.function trace (AutoGraph
    converts what they call; the cached path touches nothing it cannot read).

    Raises:
        EiqError: TensorFlow is not installed (with the command that installs it).
    """
    global _tensorflow
    if _tensorflow is None:
        _prepare_environment()
        try:
            import tensorflow
        except ImportError as exc:
            raise EiqError(f"TensorFlow is not installed ({exc}); install it with: pip install 'eiq-lab[tf]'") from exc
        _tensorflow = tensorflow
    return _tensorflow


def keras() -> ModuleType:
    """Return Keras 2 (`tf_keras`), whatever `tf.keras` points at in this process.

    Raises:
        EiqError: tf-keras is not installed.
    """
    tf()
    try:
        import tf_keras
    except ImportError as exc:
        raise EiqError(f"tf-keras is not installed ({exc}); install it with: pip install 'eiq-lab[tf]'") from exc
    return tf_keras


def tfmot() -> ModuleType:
    """Return `tensorflow_model_optimization` (QAT, pruning, clustering).

    Raises:
        EiqError: it is not installed.
    """
    keras()
    try:
        import tensorflow_model_optimization
    except ImportError as exc:
        raise EiqError(
            f"tensorflow-model-optimization is not installed ({exc}); install it with: pip install 'eiq-lab[tf]'"
        ) from exc
    return tensorflow_model_optimization
