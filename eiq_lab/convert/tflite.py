"""Keras and TensorFlow -> TFLite: float32 or int8 (post-training, per-channel or per-tensor), batch 1; the
weight scales a file really holds; metadata entries in the flatbuffer's own `metadata` table (name -> bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .. import framework
from ..errors import EiqError, InputError

#: Types the converter can give the model's input and output.
IO_TYPES = ("float32", "int8", "uint8")


#: TFLite converters a user may name (the guide's `--tflite_converter`); only MLIR is left in TensorFlow 2.x.
CONVERTERS = ("mlir", "toco")


def check_converter(converter: str) -> None:
    """Refuse a converter TensorFlow no longer has.

    Raises:
        InputError: not one of `CONVERTERS`, or ``"toco"``: TensorFlow 2.21 dropped TOCO (setting
            ``experimental_new_converter=False`` only logs a deprecation warning and converts with MLIR).
    """
    if converter not in CONVERTERS:
        raise InputError(f"tflite converter must be one of {', '.join(CONVERTERS)}; received {converter!r}")
    if converter == "toco":
        version = framework.tf().__version__
        raise InputError(
            f"the TOCO converter is gone from TensorFlow {version}: its flag (experimental_new_converter=False) "
            "is ignored and MLIR converts anyway, so a 'toco' model cannot be made here; use the mlir converter"
        )


def _check_types(quantize: bool, input_type: str, output_type: str) -> None:
    for name, value in (("input type", input_type), ("output type", output_type)):
        if value not in IO_TYPES:
            raise InputError(f"{name} must be one of {', '.join(IO_TYPES)}; received {value!r}")
    if not quantize and (input_type, output_type) != ("float32", "float32"):
        raise InputError("an int8 or uint8 input/output needs a quantized model (quantize=True)")


def _quantize_options(
    converter: Any,
    samples: Callable[[], Iterable[np.ndarray]],
    shape: list[int] | None,
    per_channel: bool,
    input_type: str,
    output_type: str,
    integer_only: bool = True,
) -> None:
    """Set a TFLiteConverter up for post-training int8 calibrated on `samples`."""
    tf = framework.tf()
    converter.optimizations = [tf.lite.Optimize.DEFAULT]

    def representative() -> Iterable[list[np.ndarray]]:
        for sample in samples():
            x = np.asarray(sample, np.float32)
            yield [x.reshape(shape) if shape else (x if x.ndim == 4 else x[None])]

    converter.representative_dataset = representative
    # integer only: an op without an int8 kernel fails the conversion instead of staying float silently
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8] if integer_only else [tf.lite.OpsSet.TFLITE_BUILTINS]
    converter.target_spec.supported_ops = ops
    converter._experimental_disable_per_channel = not per_channel
    converter.inference_input_type = getattr(tf, input_type)
    converter.inference_output_type = getattr(tf, output_type)


def keras_converter(
    model: Any,
    *,
    quantize: bool = False,
    samples: Callable[[], Iterable[np.ndarray]] | None = None,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    converter: str = "mlir",
    integer_only: bool = True,
) -> Any:
    """The `tf.lite.TFLiteConverter` `to_tflite` uses, set up but not run (the quantization debugger
    takes one). Arguments as `to_tflite`; `integer_only` False lets ops stay float (selective quantization).
    """
    tf = framework.tf()
    check_converter(converter)
    _check_types(quantize, input_type, output_type)
    if quantize and samples is None:
        raise InputError("int8 quantization needs calibration samples (images the model will see)")
    shape = [1, *model.input_shape[1:]]
    run = tf.function(lambda x: model(x, training=False))
    concrete = run.get_concrete_function(tf.TensorSpec(shape, tf.float32))
    # the converter saves its trackable as a SavedModel first: a module holding only the variables saves in a
    # fraction of the time the Keras model takes (which traces every layer again: 13 s vs 2.7 s, MobileNet v2)
    holder = tf.Module()
    holder.weights = list(model.variables)
    result = tf.lite.TFLiteConverter.from_concrete_functions([concrete], holder)
    if quantize:
        _quantize_options(result, samples, shape, per_channel, input_type, output_type, integer_only)
    return result


def to_tflite(
    model: Any,
    *,
    quantize: bool = False,
    samples: Callable[[], Iterable[np.ndarray]] | None = None,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    converter: str = "mlir",
) -> bytes:
    """Convert a Keras model to a TFLite flatbuffer with batch size 1.

    Args:
        model: a Keras model with one input.
        quantize: post-training int8 quantization of weights and activations (needs `samples`).
        samples: a function returning an iterable of preprocessed float32 inputs [1, H, W, C] (or [H, W, C])
            to calibrate activation ranges with (see `eiq_lab.convert.calibration.calibration_samples`).
        per_channel: one scale per output channel of each weight tensor (False: one per tensor).
        input_type, output_type: of the quantized model's interface: float32, int8 or uint8 (uint8 is
            TFLite's asymmetric interface around an int8 model: the guide's ``quantize_format uint8``).
        converter: ``"mlir"``; ``"toco"`` is refused (TensorFlow 2.21 no longer has it).

    Raises:
        InputError: quantization without samples, a type that is not one of `IO_TYPES`, an integer
            interface on a float model, or the toco converter.
    """
    return bytes(
        keras_converter(
            model, quantize=quantize, samples=samples, per_channel=per_channel, input_type=input_type,
            output_type=output_type, converter=converter,
        ).convert()
    )  # fmt: skip


def quantize_concrete(
    source: Any,
    samples: Callable[[], Iterable[np.ndarray]],
    *,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    converter: str = "mlir",
    trackable: Any = None,
) -> bytes:
    """Post-training int8 quantization of a non-Keras TensorFlow model.

    Args:
        source: a `tf.types.experimental.ConcreteFunction` with one image input, or a SavedModel folder.
        samples: a function returning preprocessed float32 inputs [H, W, C] or [1, H, W, C].
        per_channel, input_type, output_type, converter: as `to_tflite`.
        trackable: the object holding the concrete function's variables (a `tf.Module`); without it TensorFlow
            takes its deprecated conversion path.

    Returns:
        The int8 TFLite flatbuffer.

    Raises:
        InputError: bad types, the toco converter, a folder that is no SavedModel.
        EiqError: the TFLite converter failed (its reason in the message).
    """
    from os import fspath
    from pathlib import Path

    tf = framework.tf()
    check_converter(converter)
    _check_types(True, input_type, output_type)
    if isinstance(source, (str, Path)):
        folder = Path(fspath(source))
        if not (folder / "saved_model.pb").is_file() and not (folder / "saved_model.pbtxt").is_file():
            raise InputError(f"{folder} is not a SavedModel folder (no saved_model.pb in it)")
        result = tf.lite.TFLiteConverter.from_saved_model(str(folder))
        shape = None
    else:
        result = tf.lite.TFLiteConverter.from_concrete_functions([source], trackable)
        specs = [s for s in tf.nest.flatten(source.structured_input_signature) if isinstance(s, tf.TensorSpec)]
        dims = specs[0].shape.as_list() if len(specs) == 1 else []
        shape = [1, *dims[1:]] if dims and None not in dims[1:] else None
    _quantize_options(result, samples, shape, per_channel, input_type, output_type)
    try:
        return bytes(result.convert())
    except (ValueError, RuntimeError, TypeError) as exc:
        raise EiqError(f"the TFLite converter could not quantize {source}: {str(exc).strip()[:800]}") from None


def weight_scales(data: bytes) -> dict[str, int]:
    """How many quantization scales each weight tensor of a TFLite model carries.

    Weight tensors are the constant int8/uint8 tensors (those with data in the file); int32 biases are left
    out (their scales follow from the input's and the weights'). Per-tensor quantization gives 1 for every
    weight tensor, per-channel one per output channel.

    Returns:
        ``{tensor name: number of scales}``; empty for a float model.
    """
    schema = _schema()
    model = schema.Model.GetRootAs(bytearray(data), 0)
    integer = (schema.TensorType.INT8, schema.TensorType.UINT8)
    out: dict[str, int] = {}
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for t in range(graph.TensorsLength()):
            tensor = graph.Tensors(t)
            if tensor.Type() not in integer or not tensor.Buffer():
                continue
            buffer = model.Buffers(tensor.Buffer())
            quant = tensor.Quantization()
            if not (buffer.DataLength() or buffer.Offset()) or quant is None or not quant.ScaleLength():
                continue
            out[_name(tensor.Name())] = quant.ScaleLength()
    return out


def is_quantized(data: bytes) -> bool:
    """Whether a TFLite model holds int8/uint8 weights (post-training or QAT quantized)."""
    return bool(weight_scales(data))


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
