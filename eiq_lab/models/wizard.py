"""The model wizard: task, priority and target in; model, input size, alpha and quantization advice out.

One table row per (task, priority, target), each with its reason; for MCUs, flash and RAM estimates.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import InputError
from .interfaces import TASKS

PRIORITIES = ("performance", "balanced", "accuracy")
TARGETS = ("npu", "gpu", "cpu", "mcu")
#: The target whose balanced row is the trainer's default model (the guide's recommended settings).
DEFAULT_TARGET = "npu"
#: Number of classes the MCU estimates assume when none is given (the head is a small part of the model).
ESTIMATE_CLASSES = 10

# Quantization per target, for classification; detection differs only in its float32 outputs (see _advice).
_QUANTIZATION: dict[str, tuple[dict[str, Any], str]] = {
    "npu": (
        {"type": "int8", "per_channel": False, "input_type": "int8", "output_type": "int8", "qat": True},
        "NPUs run integer models only, and the i.MX 8M Plus NPU prefers per-tensor quantization (the guide's "
        "converter offers it for that reason); per-tensor can cost depthwise layers accuracy after training, "
        "so quantization-aware training is advised",
    ),
    "gpu": (
        {"type": "float16", "per_channel": None, "input_type": "float32", "output_type": "float32", "qat": False},
        "GPU delegates compute in 16-bit floats: float16 weights halve the file at no real accuracy cost, and "
        "int8 buys a GPU little speed",
    ),
    "cpu": (
        {"type": "int8", "per_channel": True, "input_type": "float32", "output_type": "float32", "qat": False},
        "Arm Cortex-A cores run TFLite's int8 kernels (XNNPACK) two to three times faster than float; "
        "per-channel keeps accuracy closest to float, and float32 input/output leave the application's pre- "
        "and post-processing as they are",
    ),
    "mcu": (
        {"type": "int8", "per_channel": True, "input_type": "int8", "output_type": "int8", "qat": False},
        "TFLite Micro and CMSIS-NN (and Ethos-U through Vela) run full-integer models with per-channel "
        "weights; int8 input and output avoid float code on the microcontroller",
    ),
}
_FLOAT32 = {"type": "float32", "per_channel": None, "input_type": "float32", "output_type": "float32", "qat": False}
_GPU_ACCURACY_WHY = (
    "float32 (no quantization) keeps all of the trained accuracy; GPUs run float32 natively, somewhat slower "
    "than float16"
)


@dataclass(frozen=True)
class _Row:
    model: str
    input_size: tuple[int, int, int]
    alpha: float
    why: str


_CLS, _DET = "classification", "detection"
_ROWS: dict[tuple[str, str, str], _Row] = {
    (_CLS, "performance", "npu"): _Row(
        "mobilenet_v1",
        (128, 128, 3),
        0.25,
        "MobileNet v1 is a plain chain of convolutions with no residual branches, which NPUs run at full "
        "speed; alpha 0.25 at 128 px is its smallest size with ImageNet weights",
    ),
    (_CLS, "balanced", "npu"): _Row(
        "mobilenet_v2",
        (128, 128, 3),
        0.5,
        "the guide's recommended starting point (3.7.5): MobileNet v2, alpha 0.5, 128x128x3; raise size or "
        "alpha if accuracy is too low, lower them if inference is too slow",
    ),
    (_CLS, "accuracy", "npu"): _Row(
        "mobilenet_v2",
        (224, 224, 3),
        1.0,
        "MobileNet v2 at full width and ImageNet's 224 px; its ReLU6 layers quantize well, where v3's "
        "hard-swish and squeeze-excite lose more under per-tensor int8",
    ),
    (_CLS, "performance", "gpu"): _Row(
        "mobilenet_v2",
        (128, 128, 3),
        0.35,
        "the narrowest MobileNet v2: few, regular kernels that a GPU runs without waiting on tiny layers",
    ),
    (_CLS, "balanced", "gpu"): _Row(
        "mobilenet_v2",
        (128, 128, 3),
        0.5,
        "the guide's recommended starting point (3.7.5): MobileNet v2, alpha 0.5, 128x128x3",
    ),
    (_CLS, "accuracy", "gpu"): _Row(
        "mobilenet_v3_large",
        (224, 224, 3),
        1.0,
        "MobileNet v3 large is the most accurate of the base models (ImageNet top-1 about 75 % against v2's "
        "72 %) with fewer operations than v2 at 1.0; in float its hard-swish costs nothing in accuracy",
    ),
    (_CLS, "performance", "cpu"): _Row(
        "mobilenet_v3_small",
        (128, 128, 3),
        0.75,
        "MobileNet v3 small was searched for the latency of mobile CPUs; alpha 0.75 is its smallest width "
        "with ImageNet weights",
    ),
    (_CLS, "balanced", "cpu"): _Row(
        "mobilenet_v2",
        (128, 128, 3),
        0.5,
        "the guide's recommended starting point (3.7.5): MobileNet v2, alpha 0.5, 128x128x3",
    ),
    (_CLS, "accuracy", "cpu"): _Row(
        "mobilenet_v3_large",
        (224, 224, 3),
        1.0,
        "MobileNet v3 large: the best ImageNet accuracy of the base models at a lower CPU latency than "
        "MobileNet v2 1.0",
    ),
    (_CLS, "performance", "mcu"): _Row(
        "mobilenet_v1",
        (128, 128, 3),
        0.25,
        "the smallest base model with ImageNet weights (about 0.3 MB of flash, 0.1 MB of RAM as int8): fits "
        "parts such as LPC55S69 (640 KB flash, 320 KB RAM)",
    ),
    (_CLS, "balanced", "mcu"): _Row(
        "mobilenet_v2",
        (96, 96, 3),
        0.35,
        "MobileNet v2's smallest published weights (alpha 0.35 at 96 px): more accurate than v1 0.25 for "
        "about 0.6 MB of flash and 0.15 MB of RAM, e.g. MCX N94x (2 MB flash, 512 KB RAM)",
    ),
    (_CLS, "accuracy", "mcu"): _Row(
        "mobilenet_v2",
        (128, 128, 3),
        0.5,
        "the guide's recommended model (alpha 0.5, 128x128x3): about 1 MB of flash and 0.25 MB of RAM as int8, "
        "for crossover MCUs such as i.MX RT1060/RT1170 (1-2 MB on-chip RAM, external flash)",
    ),
    (_DET, "performance", "npu"): _Row(
        "ssd_mobilenet_v2",
        (192, 192, 3),
        0.35,
        "a narrow SSD MobileNet v2 at 192 px: the fewest operations that still find medium-sized objects",
    ),
    (_DET, "balanced", "npu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        0.5,
        "SSD MobileNet v2 at its usual 320 px input, alpha 0.5: small objects stay visible at moderate cost",
    ),
    (_DET, "accuracy", "npu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        1.0,
        "SSD MobileNet v2 at full width and 320 px, the configuration detection benchmarks quote",
    ),
    (_DET, "performance", "gpu"): _Row(
        "ssd_mobilenet_v2",
        (192, 192, 3),
        0.35,
        "a narrow SSD MobileNet v2 at 192 px: few, regular kernels, quick on a GPU",
    ),
    (_DET, "balanced", "gpu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        0.5,
        "SSD MobileNet v2 at its usual 320 px input, alpha 0.5",
    ),
    (_DET, "accuracy", "gpu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        1.0,
        "SSD MobileNet v2 at full width and 320 px; float32 keeps the box regression exact",
    ),
    (_DET, "performance", "cpu"): _Row(
        "ssd_mobilenet_v2",
        (192, 192, 3),
        0.35,
        "a narrow SSD MobileNet v2 at 192 px: detection in real time on one or two Cortex-A cores",
    ),
    (_DET, "balanced", "cpu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        0.5,
        "SSD MobileNet v2 at its usual 320 px input, alpha 0.5",
    ),
    (_DET, "accuracy", "cpu"): _Row(
        "ssd_mobilenet_v2",
        (320, 320, 3),
        1.0,
        "SSD MobileNet v2 at full width and 320 px, the configuration detection benchmarks quote",
    ),
    (_DET, "performance", "mcu"): _Row(
        "ssd_mobilenet_v2",
        (128, 128, 3),
        0.35,
        "the smallest SSD MobileNet v2 that still detects: 128 px, alpha 0.35, for large, near objects",
    ),
    (_DET, "balanced", "mcu"): _Row(
        "ssd_mobilenet_v2",
        (160, 160, 3),
        0.35,
        "SSD MobileNet v2 at 160 px, alpha 0.35: within the RAM of MCUs with 0.5-1 MB of on-chip memory",
    ),
    (_DET, "accuracy", "mcu"): _Row(
        "ssd_mobilenet_v2",
        (192, 192, 3),
        0.5,
        "SSD MobileNet v2 at 192 px, alpha 0.5: for crossover MCUs with 1-2 MB of on-chip RAM",
    ),
}


@dataclass(frozen=True)
class Recommendation:
    """The wizard's choice for one (task, priority, target)."""

    task: str
    priority: str
    target: str
    model: str
    #: (height, width, channels)
    input_size: tuple[int, int, int]
    alpha: float
    #: {"type": "int8"|"float16"|"float32", "per_channel": bool or None (not quantized to int8),
    #: "input_type", "output_type", "qat": whether quantization-aware training is advised}
    quantization: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    #: whether the model is in the registry (a detection model may come later, from another package)
    available: bool = True
    note: str = ""
    #: MCU only: estimated int8 model size and activation RAM (see footprint.estimate_int8_footprint)
    flash_bytes: int | None = None
    ram_bytes: int | None = None

    @property
    def named_params(self) -> dict[str, Any]:
        """The model parameters this recommendation sets (for `get_model` / the training settings)."""
        return {"alpha": self.alpha}

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (input_size as a list)."""
        result = asdict(self)
        result["input_size"] = list(self.input_size)
        return result


def _choose(value: str, valid: tuple[str, ...], what: str) -> str:
    canonical = str(value).strip().lower()
    if canonical not in valid:
        raise InputError(f"{what} must be one of {', '.join(valid)}; received {value!r}")
    return canonical


def _advice(task: str, priority: str, target: str) -> tuple[dict[str, Any], str]:
    if target == "gpu" and priority == "accuracy":
        return dict(_FLOAT32), _GPU_ACCURACY_WHY
    quantization, why = _QUANTIZATION[target]
    quantization = dict(quantization)
    if task == "detection" and quantization["type"] == "int8":
        quantization["output_type"] = "float32"
        quantization["qat"] = False
        why += "; detection outputs stay float32 because the box decoder and NMS read them as floats"
    return quantization, why


def recommend(
    task: str, priority: str, target: str, *, num_classes: int = ESTIMATE_CLASSES, estimate: bool = True
) -> Recommendation:
    """The wizard's choice of model, input size, alpha and quantization.

    Args:
        task: classification or detection.
        priority: performance, balanced or accuracy.
        target: npu, gpu, cpu or mcu.
        num_classes: classes the MCU estimate assumes (only the last layer depends on it).
        estimate: for MCU targets, build the model with random weights (no download) to estimate its int8
            flash and RAM; False skips that (no TensorFlow needed).

    Returns:
        The recommendation; `available` is False (with a note) when the model is not in the registry.

    Raises:
        InputError: an unknown task, priority or target (the message lists the valid ones).

    Example:
        >>> recommend("classification", "balanced", "npu").model
        'mobilenet_v2'
    """
    task = _choose(task, TASKS, "task")
    priority = _choose(priority, PRIORITIES, "priority")
    target = _choose(target, TARGETS, "target")
    row = _ROWS[(task, priority, target)]
    quantization, why_quantization = _advice(task, priority, target)
    reason = f"{row.why}. {why_quantization}."
    from .registry import registry

    models = registry()
    available = row.model in models and models.entry(row.model).task == task
    note, flash, ram = "", None, None
    if not available:
        others = ", ".join(models.names(task)) or "none"
        note = (
            f"{row.model} is not in the model registry yet; install or add a {task} plugin named {row.model}, "
            f"or choose one of the registered {task} models: {others}"
        )
    elif target == "mcu" and estimate:
        try:
            flash, ram = _estimate(row.model, row.input_size, row.alpha, num_classes, bool(quantization["per_channel"]))
            note = (
                "flash: the int8 model file (weights, biases, quantization parameters, graph), not the inference "
                "library; RAM: the activation arena (peak of int8 tensors alive at once) without kernel scratch "
                "buffers"
            )
        except Exception as exc:  # a plugin's own model code: report, the recommendation itself stands
            note = f"no memory estimate: building {row.model} failed ({type(exc).__name__}: {exc})"
    return Recommendation(
        task, priority, target, row.model, row.input_size, row.alpha, quantization, reason, available, note, flash, ram
    )


@functools.lru_cache(maxsize=32)
def _estimate(
    model: str, input_size: tuple[int, int, int], alpha: float, num_classes: int, per_channel: bool
) -> tuple[int, int]:
    from .footprint import estimate_int8_footprint
    from .registry import registry

    plugin = registry().get(model)
    exposed = {spec["name"] for spec in plugin.get_exposed_parameters()}
    params = {"alpha": alpha} if "alpha" in exposed else {}
    keras_model = plugin.get_model(input_size, num_classes, None, params)
    footprint = estimate_int8_footprint(keras_model, per_channel=per_channel)
    return footprint.flash_bytes, footprint.ram_bytes


def table(*, estimate: bool = False, num_classes: int = ESTIMATE_CLASSES) -> list[Recommendation]:
    """Every row of the wizard, by task, priority and target (estimates only when asked: they build models)."""
    return [
        recommend(task, priority, target, num_classes=num_classes, estimate=estimate)
        for task in TASKS
        for priority in PRIORITIES
        for target in TARGETS
    ]


def default_model(task: str = "classification") -> str:
    """The trainer's default model for `task`: the wizard's balanced choice (the guide's recommended settings).

    Raises:
        InputError: an unknown task.
    """
    task = _choose(task, TASKS, "task")
    return _ROWS[(task, "balanced", DEFAULT_TARGET)].model
