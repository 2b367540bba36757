"""Keras -> TFLite: float32 or int8 (post-training, per-channel or per-tensor), batch 1, and metadata
entries stored in the flatbuffer's own `metadata` table (name -> bytes), which every TFLite reader keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .. import framework
from ..errors import InputError

#: Types the converter can give the model's input and output.
IO_TYPES = ("float32", "int8", "uint8")


def to_tflite(
    model: Any,
    *,
    quantize: bool = False,
    samples: Callable[[], Iterable[np.ndarray]] | None = None,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer with batch size 1.

    Args:
        model: a Keras model with one input.
        quantize: post-training int8 quantization of weights and activations (needs `samples`).
        samples: a function returning an iterable of preprocessed float32 inputs [1, H, W, C] (or [H, W, C])
            to calibrate activation ranges with.
        per_channel: one scale per output channel of each weight tensor (False: one per tensor).
        input_type, output_type: of the quantized model's interface: float32, int8 or uint8.

    Raises:
        InputError: quantization without samples, a type that is not one of `IO_TYPES`, or an integer
            interface on a float model.
    """
    tf = framework.tf()
    for name, value in (("input type", input_type), ("output type", output_type)):
        if value not in IO_TYPES:
            raise InputError(f"{name} must be one of {', '.join(IO_TYPES)}; received {value!r}")
    if not quantize and (input_type, output_type) != ("float32", "float32"):
        raise InputError("an int8 or uint8 input/output needs a quantized model (quantize=True)")
    if quantize and samples is None:
        raise InputError("int8 quantization needs calibration samples (images the model will see)")
    shape = [1, *model.input_shape[1:]]
    run = tf.function(lambda x: model(x, training=False))
    concrete = run.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model)
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]

        def representative() -> Iterable[list[np.ndarray]]:
            for sample in samples():
                yield [np.asarray(sample, np.float32).reshape(shape)]

        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter._experimental_disable_per_channel = not per_channel
        converter.inference_input_type = getattr(tf, input_type)
        converter.inference_output_type = getattr(tf, output_type)
    return bytes(converter.convert())


def _schema() -> Any:
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def with_metadata(data: bytes, entries: Mapping[str, bytes]) -> bytes:
    """A copy of a TFLite flatbuffer with `entries` added to (or replaced in) its metadata table."""
    framework.tf()  # the schema module comes with TensorFlow
    from tensorflow.lite.tools import flatbuffer_utils

    schema = _schema()
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    model.metadata = [m for m in (model.metadata or []) if _name(m.name) not in entries]
    for name, payload in entries.items():
        buffer = schema.BufferT()
        buffer.data = np.frombuffer(bytes(payload), np.uint8)
        model.buffers.append(buffer)
        entry = schema.MetadataT()
        entry.name = name
        entry.buffer = len(model.buffers) - 1
        model.metadata.append(entry)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def read_metadata(data: bytes) -> dict[str, bytes]:
    """The metadata entries of a TFLite flatbuffer: name -> bytes."""
    schema = _schema()
    model = schema.Model.GetRootAs(bytearray(data), 0)
    out = {}
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        buffer = model.Buffers(entry.Buffer())
        out[_name(entry.Name())] = buffer.DataAsNumpy().tobytes() if buffer.DataLength() else b""
    return out


def _name(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
