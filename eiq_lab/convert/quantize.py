"""Post-training quantization of model files (`eiq quantize`): Keras and SavedModel to int8 TFLite, ONNX (or
Keras) to QDQ ONNX; cross-layer equalization of a Keras model first, which helps per-tensor weights.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import framework
from ..errors import EiqError, InputError
from ..files import write_atomic

#: Calibration samples taken unless told otherwise.
DEFAULT_NUM_SAMPLES = 100


@dataclass
class QuantizeResult:
    """What `quantize_model` wrote and how.

    Attributes:
        path: the quantized model file.
        source_type, format: the source's type (h5, keras, savedmodel, onnx) and the output's (tflite, onnx).
        per_channel, input_type, output_type, normalization: the settings used.
        samples: where the calibration samples came from; notes: what was skipped on the way.
        weight_scales: weight tensor -> number of scales, read back from the written file.
        equalized: the layer pairs cross-layer equalization rescaled (empty when not asked).
        bias_corrected: the layers whose bias was corrected (empty when not asked).
        seconds: time of loading, calibrating and converting (writing excluded).
    """

    path: Path
    source_type: str
    format: str
    per_channel: bool
    input_type: str
    output_type: str
    normalization: str
    samples: str
    weight_scales: dict[str, int]
    seconds: float
    size: int
    notes: list[str] = field(default_factory=list)
    equalized: list[tuple[str, str]] = field(default_factory=list)
    bias_corrected: list[str] = field(default_factory=list)

    @property
    def granularity(self) -> str:
        """``"per-tensor"`` when every weight tensor of the file has one scale, else ``"per-channel"``."""
        return "per-tensor" if all(n == 1 for n in self.weight_scales.values()) else "per-channel"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(path=str(self.path), granularity=self.granularity, weight_tensors=len(self.weight_scales))
        out["equalized"] = [list(pair) for pair in self.equalized]
        return out


#: Sources `quantize_model` reads (a .pb or TFLite source goes through `eiq-converter`, which names why).
SOURCES = ("h5", "keras", "savedmodel", "onnx", "tflite")


def source_type(path: str | os.PathLike) -> str:
    """The kind of model file `quantize_model` reads: h5, keras, savedmodel, onnx, or tflite (refused later).

    Raises:
        InputError: missing, or no model file this command reads (the message says what it takes).
    """
    from .formats import model_type

    kind = model_type(path)  # by content: a text file named .h5 or a truncated .tflite is refused there
    if kind not in SOURCES:
        raise InputError(
            f"{Path(path).name} is a {kind} model; eiq quantize reads Keras (.h5, .keras), SavedModel folders and "
            f"ONNX: convert it with eiq-converter --quantize"
        )
    return kind


def _image_shape(dims: list[int | None], where: str) -> tuple[int, int, int]:
    """(H, W, C) of a 4-D image input, NHWC or NCHW."""
    if len(dims) == 4 and dims[3] in (1, 3) and dims[1] and dims[2]:
        return dims[1], dims[2], dims[3]
    if len(dims) == 4 and dims[1] in (1, 3) and dims[2] and dims[3]:
        return dims[2], dims[3], dims[1]
    raise InputError(f"{where} has input shape {dims}: calibration needs one image input (N, H, W, C) of known size")


def quantize_model(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    per_channel: bool = True,
    input_type: str = "float32",
    output_type: str = "float32",
    normalization: str = "signed",
    samples: Any = None,
    num_samples: int = DEFAULT_NUM_SAMPLES,
    crop: bool = False,
    equalize: bool = False,
    bias_correction: bool = False,
    converter: str = "mlir",
    seed: int = 0,
) -> QuantizeResult:
    """Quantize a model file post-training: weights and activations int8.

    Keras (.h5, .keras) and SavedModel sources give int8 TFLite (``dst`` .tflite) or, Keras only, QDQ ONNX
    (``dst`` .onnx, through tf2onnx); ONNX sources give QDQ ONNX (ONNX Runtime static quantization).

    Args:
        src: the float model (a file, or a SavedModel folder).
        dst: the file to write, ``.tflite`` or ``.onnx``.
        per_channel: one scale per output channel of each weight tensor (False: one per tensor).
        input_type, output_type: TFLite interface: float32, int8 or uint8; ONNX stays float32.
        normalization: how calibration images are scaled: signed [-1, 1], unsigned [0, 1], none (0..255).
        samples: a project, folder(s) or files of images, an int N (random inputs), or a ready callable
            (see `eiq_lab.convert.calibration.calibration_samples`).
        num_samples: how many calibration samples to take.
        crop: calibrate on the box crops of a project's annotations.
        equalize: cross-layer equalization of the Keras model first (see `equalize_model`).
        bias_correction: Keras: correct biases for the mean shift int8 weights cause (see `correct_bias`).
        converter: TFLite converter, ``"mlir"`` (``"toco"`` is refused: TensorFlow 2.21 has no TOCO).
        seed: the choice of samples.

    Returns:
        A `QuantizeResult` (with the weight scales read back from the written file).

    Raises:
        InputError: a bad argument, a file that is no model or is already quantized, a pair of formats
            that cannot be quantized (the message names why and the route), no samples.
    """
    from ..evaluate.executors import load_keras
    from .calibration import calibration_samples
    from .formats import is_keras3
    from .tflite import check_converter

    src, dst = Path(src), Path(dst)
    kind = source_type(src)
    out = dst.suffix.lower()
    _refuse(src, dst, kind, input_type, output_type, equalize or bias_correction, samples)
    check_converter(converter)
    started = time.perf_counter()
    model, equalized, notes = None, [], []
    if kind == "onnx":
        from .onnx_quantize import image_input, is_quantized

        data = src.read_bytes()
        if is_quantized(data):
            raise InputError(f"{src.name} is already quantized (it holds QuantizeLinear/QLinear ops)")
        import onnx

        shape = _image_shape(image_input(onnx.load_model_from_string(data))[1], src.name)
    elif kind == "savedmodel" and not (src / "keras_metadata.pb").is_file():
        if equalize or bias_correction:
            raise InputError(f"{src.name} is no Keras SavedModel: --equalize and --bias-correction change Keras layers")
        shape = _saved_model_shape(src)
    elif kind == "keras" and is_keras3(src):
        if out == ".onnx" or equalize or bias_correction:
            what = "--equalize or --bias-correction" if equalize or bias_correction else "ONNX output"
            raise InputError(f"{src.name} is a Keras 3 file, which only converts through a SavedModel: no {what}")
        workdir = tempfile.TemporaryDirectory(prefix="eiq-keras3-")
        from .keras3 import export_saved_model

        src = export_saved_model(src, workdir.name)  # Keras 3 in a child Python; then quantized as a SavedModel
        shape = _saved_model_shape(src)
    else:
        model = load_keras(src)
        if len(model.inputs) != 1:
            raise InputError(f"{src.name} has {len(model.inputs)} inputs; quantization calibrates one image input")
        shape = _image_shape(list(model.input_shape), src.name)
    if callable(samples):
        calibration: Callable[[], Iterable[np.ndarray]] = samples
        described = getattr(samples, "description", "the given samples")
        notes.extend(getattr(samples, "notes", []))
    else:
        calibration = calibration_samples(
            samples, shape, num_samples, crop=crop, normalization=normalization, seed=seed
        )  # fmt: skip
        described, notes = calibration.description, list(calibration.notes)
    corrected: list[str] = []
    if model is not None and equalize:
        model, equalized = equalize_model(model)
    if model is not None and bias_correction:
        model, corrected = correct_bias(model, calibration, per_channel=per_channel)
    if out == ".onnx":
        from .onnx_quantize import quantize_onnx, weight_scales

        if model is not None:
            from .onnx import to_onnx

            data = to_onnx(model)
        result = quantize_onnx(data, calibration, per_channel=per_channel)
    else:
        from .tflite import quantize_concrete, to_tflite, weight_scales

        if model is None:
            result = quantize_concrete(
                src, calibration, per_channel=per_channel, input_type=input_type, output_type=output_type
            )  # fmt: skip
        else:
            result = to_tflite(
                model, quantize=True, samples=calibration, per_channel=per_channel, input_type=input_type,
                output_type=output_type, converter=converter,
            )  # fmt: skip
    seconds = time.perf_counter() - started
    write_atomic(dst, result)
    return QuantizeResult(
        dst, kind, out[1:], per_channel, input_type, output_type, normalization, described, weight_scales(result),
        seconds, len(result), notes, equalized, corrected,
    )  # fmt: skip


def _refuse(src: Path, dst: Path, kind: str, input_type: str, output_type: str, equalize: bool, samples: Any) -> None:
    """Raise InputError, with the reason and the route, for what `quantize_model` cannot do."""
    out = dst.suffix.lower()
    if kind == "tflite":
        from .tflite import is_quantized

        state = "is already quantized" if is_quantized(src.read_bytes()) else "is a TFLite model"
        raise InputError(
            f"{src.name} {state}: the TFLite converter quantizes TensorFlow models, not TFLite files; "
            "quantize the Keras, SavedModel or ONNX model it came from"
        )
    if out not in (".tflite", ".onnx"):
        raise InputError(
            f"cannot write a quantized {dst.name}: Keras and SavedModel files hold float weights; "
            "int8 quantization writes .tflite (TFLite) or .onnx (QDQ ONNX)"
        )
    if out == ".onnx" and (input_type, output_type) != ("float32", "float32"):
        from .onnx_quantize import FLOAT_IO_REASON

        raise InputError(f"{dst.name}: {FLOAT_IO_REASON}")
    if kind == "onnx" and out == ".tflite":
        raise InputError(
            f"{src.name} is ONNX: ONNX -> int8 TFLite goes through eiq-converter (onnx2tf, with --quantize); "
            "here an ONNX model quantizes to QDQ .onnx"
        )
    if kind == "savedmodel" and out == ".onnx":
        raise InputError(f"convert the SavedModel {src.name} to ONNX first (eiq-converter), then quantize the .onnx")
    if kind == "onnx" and equalize:
        raise InputError("--equalize and --bias-correction change Keras layers; they are for Keras sources, not ONNX")
    if samples is None:
        raise InputError(
            "quantization needs calibration samples: --samples PROJECT (its train images), a folder of images, "
            "or N for random inputs (these calibrate poorly)"
        )


def _saved_model_shape(folder: Path) -> tuple[int, int, int]:
    tf = framework.tf()
    try:
        loaded = tf.saved_model.load(str(folder))
    except Exception as exc:  # TensorFlow raises many kinds for a broken SavedModel
        raise InputError(f"cannot load the SavedModel {folder}: {str(exc).strip()[:400]}") from None
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise InputError(f"the SavedModel {folder} has no serving_default signature to quantize")
    specs = [s for s in tf.nest.flatten(signature.structured_input_signature) if isinstance(s, tf.TensorSpec)]
    if len(specs) != 1:
        raise InputError(f"the SavedModel {folder} has {len(specs)} inputs; quantization calibrates one image input")
    return _image_shape(specs[0].shape.as_list(), folder.name)


# -- cross-layer equalization ------------------------------------------------------------------------------

#: Layers a channel's scale passes through unchanged (positively homogeneous, per channel).
_PASS_THROUGH = ("MaxPooling2D", "AveragePooling2D", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Dropout",
                 "ZeroPadding2D", "SpatialDropout2D")  # fmt: skip


def _consumers(model: Any) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in layer._inbound_nodes:
            inbound = node.inbound_layers
            for parent in inbound if isinstance(inbound, (list, tuple)) else [inbound]:
                if parent.name in out:
                    out[parent.name].append(layer)
    return out


def _is_relu(layer: Any) -> bool:
    kind = type(layer).__name__
    if kind == "ReLU":  # ReLU6 (max_value 6) clips: scaling a channel would move the clip
        return layer.max_value is None and not float(layer.negative_slope) and not float(layer.threshold)
    if kind == "Activation":
        return getattr(layer.activation, "__name__", "") == "relu"
    return False


def _activation(layer: Any) -> str:
    return getattr(getattr(layer, "activation", None), "__name__", "linear")


def _pairs(model: Any) -> list[tuple[Any, Any, Any]]:
    """(first layer, its batch normalization or None, second layer) pairs a per-channel scale can move across."""
    consumers = _consumers(model)
    kernels = ("Conv2D", "DepthwiseConv2D", "Dense")
    pairs = []
    for first in model.layers:
        if type(first).__name__ not in kernels or _activation(first) not in ("linear", "relu"):
            continue
        if type(first).__name__ == "Conv2D" and getattr(first, "groups", 1) != 1:
            continue
        if type(first).__name__ == "DepthwiseConv2D" and first.depth_multiplier != 1:
            continue
        cur, norm = first, None
        nxt = consumers[cur.name]
        if len(nxt) == 1 and type(nxt[0]).__name__ == "BatchNormalization" and _activation(first) == "linear":
            norm = cur = nxt[0]
            if not (norm.scale and norm.center):  # gamma and beta carry the scale
                continue
        while True:
            nxt = consumers[cur.name]
            if len(nxt) != 1:
                break
            layer = nxt[0]
            name = type(layer).__name__
            if name in kernels:
                ok = name == "Dense" or (name == "Conv2D" and getattr(layer, "groups", 1) == 1)
                ok = ok or (name == "DepthwiseConv2D" and layer.depth_multiplier == 1)
                if ok:
                    pairs.append((first, norm, layer))
                break
            if not (_is_relu(layer) or name in _PASS_THROUGH):
                break
            cur = layer
    return pairs


def _out_axis_ranges(layer: Any, norm: Any) -> np.ndarray:
    """Per output channel, the largest |weight| after batch normalization is folded in."""
    kernel = layer.get_weights()[0]
    if type(layer).__name__ == "DepthwiseConv2D":
        ranges = np.abs(kernel[:, :, :, 0]).max(axis=(0, 1))
    else:
        ranges = np.abs(kernel).reshape(-1, kernel.shape[-1]).max(axis=0)
    if norm is not None:
        gamma, _, _, var = norm.get_weights()[:4]
        ranges = ranges * np.abs(gamma) / np.sqrt(var + norm.epsilon)
    return ranges


def _in_axis_ranges(layer: Any) -> np.ndarray:
    kernel = layer.get_weights()[0]
    if type(layer).__name__ == "Dense":
        return np.abs(kernel).max(axis=1)
    return np.abs(kernel).max(axis=tuple(a for a in range(kernel.ndim) if a != 2))


def equalize_model(model: Any, rounds: int = 4) -> tuple[Any, list[tuple[str, str]]]:
    """Cross-layer equalization (Nagel et al., 2019): for each pair of consecutive layers with weights (Conv2D,
    DepthwiseConv2D, Dense) joined by ReLU, pooling or dropout, scale output channel i of the first by 1/s_i
    and input channel i of the second by s_i, with s_i = sqrt(r1_i / r2_i), so both ranges become
    sqrt(r1_i * r2_i). The float model computes the same function; per-tensor int8 weights lose less, since
    no channel's range is dwarfed by another's.

    Batch normalization after the first layer is folded into its ranges (the scale moves into BN's gamma and
    beta, which the TFLite converter folds into the weights). Pairs joined by ReLU6, additions or
    concatenations are left alone: the scale would not pass through them unchanged.

    Returns:
        (a new model with equalized weights, the (first, second) layer names that were rescaled).
    """
    keras = framework.keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    pairs = _pairs(copy)
    for _ in range(rounds):
        for first, norm, second in pairs:
            r1, r2 = _out_axis_ranges(first, norm), _in_axis_ranges(second)
            s = np.ones_like(r1)
            ok = (r1 > 0) & (r2 > 0)
            s[ok] = np.sqrt(r1[ok] / r2[ok])
            s = np.clip(s, 1e-4, 1e4).astype(np.float32)
            if norm is not None:
                weights = norm.get_weights()
                weights[0], weights[1] = weights[0] / s, weights[1] / s  # gamma, beta
                norm.set_weights(weights)
            else:
                weights = first.get_weights()
                if type(first).__name__ == "DepthwiseConv2D":
                    weights[0] = weights[0] / s[None, None, :, None]
                else:
                    weights[0] = weights[0] / s
                if len(weights) > 1:
                    weights[1] = weights[1] / s
                first.set_weights(weights)
            weights = second.get_weights()
            if type(second).__name__ == "Dense":
                weights[0] = weights[0] * s[:, None]
            else:
                weights[0] = weights[0] * s[None, None, :, None]
            second.set_weights(weights)
    return copy, [(first.name, second.name) for first, _, second in pairs]


def check_equalized(model: Any, equalized: Any, x: np.ndarray) -> float:
    """The largest absolute difference between two models' outputs on `x` (equalization keeps it ~1e-5).

    Raises:
        EiqError: they differ by more than 1e-3 relative to the outputs' spread.
    """
    a, b = np.asarray(model.predict(x, verbose=0)), np.asarray(equalized.predict(x, verbose=0))
    diff = float(np.abs(a - b).max())
    if diff > 1e-3 * max(float(np.abs(a).max()), 1.0):
        raise EiqError(f"equalization changed the model's outputs by {diff:.3g}; report this as a bug")
    return diff


# -- bias correction ---------------------------------------------------------------------------------------


def _int8_weights(kernel: np.ndarray, channel_axis: int, per_channel: bool) -> np.ndarray:
    """What the TFLite quantizer makes of float weights: symmetric int8 in [-127, 127], dequantized."""
    if per_channel:
        axes = tuple(a for a in range(kernel.ndim) if a != channel_axis)
        scale = np.abs(kernel).max(axis=axes, keepdims=True) / 127.0
    else:
        scale = np.full((1,) * kernel.ndim, np.abs(kernel).max() / 127.0)
    scale = np.where(scale > 0, scale, 1.0)
    return np.clip(np.round(kernel / scale), -127, 127) * scale


def correct_bias(
    model: Any, samples: Callable[[], Iterable[np.ndarray]], *, per_channel: bool = False, count: int = 64
) -> tuple[Any, list[str]]:
    """Bias correction (Nagel et al., 2019): int8 weights W_q = W + e shift each output channel's mean by
    e . E[x]; subtract that shift from the bias (or from the following batch normalization's beta), with
    E[x] the mean input of the layer over `count` calibration samples. The float model changes by exactly
    the shift int8 will add back.

    Args:
        model: a Keras model (not changed: a copy is returned).
        samples: calibration inputs, as `quantize_model` takes them.
        per_channel: the weight granularity the model will be quantized with (per-tensor errs most).
        count: samples the mean inputs are measured on.

    Returns:
        (the corrected copy, the names of the layers whose bias was corrected).
    """
    keras = framework.keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    consumers = _consumers(copy)
    layers = [layer for layer in copy.layers if type(layer).__name__ in ("Conv2D", "DepthwiseConv2D", "Dense")]
    if not layers:
        return copy, []
    probe = keras.Model(copy.inputs, [layer.input for layer in layers])
    batch = np.stack([np.asarray(x, np.float32) for _, x in zip(range(count), samples(), strict=False)])
    inputs = probe.predict(batch, verbose=0)
    inputs = inputs if isinstance(inputs, list) else [inputs]
    corrected = []
    for layer, x in zip(layers, inputs, strict=True):
        kind = type(layer).__name__
        mean = np.asarray(x, np.float64).reshape(-1, x.shape[-1]).mean(axis=0)  # E[x] per input channel
        nxt = consumers[layer.name]
        norm = nxt[0] if len(nxt) == 1 and type(nxt[0]).__name__ == "BatchNormalization" else None
        if norm is not None and not (norm.scale and norm.center and _activation(layer) == "linear"):
            continue
        weights = layer.get_weights()
        kernel = weights[0].astype(np.float64)
        if kind == "DepthwiseConv2D":
            if layer.depth_multiplier != 1:
                continue
            kernel = kernel[:, :, :, 0]
        fold = np.ones(kernel.shape[-1])
        if norm is not None:
            gamma, _, _, var = norm.get_weights()[:4]
            fold = gamma / np.sqrt(var + norm.epsilon)  # what the converter multiplies the kernel by
        folded = kernel * fold
        error = _int8_weights(folded, folded.ndim - 1, per_channel) - folded
        if kind == "DepthwiseConv2D":
            shift = error.sum(axis=(0, 1)) * mean
        elif kind == "Dense":
            shift = mean @ error
        else:
            shift = np.einsum("hwio,i->o", error, mean)
        if norm is not None:
            values = norm.get_weights()
            values[1] = (values[1] - shift).astype(np.float32)  # beta
            norm.set_weights(values)
        elif layer.use_bias:
            weights[1] = (weights[1] - shift).astype(np.float32)
            layer.set_weights(weights)
        else:
            continue
        corrected.append(layer.name)
    return copy, corrected
