"""Keras -> ONNX through tf2onnx, with metadata in the model's `metadata_props` (key -> text)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .. import framework
from ..errors import EiqError

#: The ONNX opset exports use: 13 is what ONNX Runtime and most NPU toolchains take without surprises.
OPSET = 13


def to_onnx(model: Any, metadata: Mapping[str, str] | None = None, opset: int = OPSET) -> bytes:
    """Convert a Keras model to ONNX (batch size 1, float32), with `metadata` as metadata_props.

    Raises:
        EiqError: tf2onnx is not installed (the message says how to install it) or cannot convert the model.
    """
    tf = framework.tf()
    try:
        import tf2onnx
    except ImportError:
        raise EiqError("ONNX export needs tf2onnx and onnx: pip install 'eiq-lab[onnx]'") from None
    shape = [1, *model.input_shape[1:]]
    signature = (tf.TensorSpec(shape, tf.float32, name="input"),)
    try:
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=signature, opset=opset)
    except Exception as exc:  # tf2onnx raises many kinds; the user needs the model and the reason
        raise EiqError(f"tf2onnx could not convert model {model.name!r}: {exc}") from None
    for key, value in (metadata or {}).items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def read_metadata(data: bytes) -> dict[str, str]:
    """The metadata_props of an ONNX model: key -> text."""
    import onnx

    return {p.key: p.value for p in onnx.load_model_from_string(data).metadata_props}
