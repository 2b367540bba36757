"""Validation against a reference: a model's outputs on the reference inputs, on this host or on several
ModelRunners at once, compared with the expected outputs (top-1 matches, average and max delta, a verdict).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EiqError, InputError
from .devices import Device, LocalDevice, RemoteDevice
from .local import LocalModel, TensorInfo, open_local
from .reference import Reference, rtm_name

#: Default tolerances, as fractions of each reference output's range (max - min): the largest and the average
#: absolute difference an output may show. An int8 model's outputs typically differ by a few quantization steps.
MAX_DELTA, AVG_DELTA = 0.10, 0.02


@dataclass
class Tolerance:
    """When an output validates.

    Attributes:
        max_delta, avg_delta: the largest and the average absolute difference allowed, as fractions of the
            reference output's range (max - min), or absolute values when `absolute`.
        min_top1: the share of top-1 matches required (outputs with more than one value on their last axis).
        absolute: read `max_delta` and `avg_delta` as absolute values.
    """

    max_delta: float = MAX_DELTA
    avg_delta: float = AVG_DELTA
    min_top1: float = 1.0
    absolute: bool = False

    def __post_init__(self) -> None:
        for name in ("max_delta", "avg_delta", "min_top1"):
            value = getattr(self, name)
            if not np.isfinite(value) or value < 0 or (name == "min_top1" and value > 1):
                raise InputError(f"tolerance {name} must be a number >= 0 (top-1 share at most 1); received {value}")


@dataclass
class OutputCheck:
    """One output compared with its reference over every sample."""

    name: str
    reference: str
    values: int
    avg_delta: float
    max_delta: float
    value_range: float
    top1_matches: int | None
    top1_total: int | None
    allowed_max: float
    allowed_avg: float
    problems: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "reference": self.reference, "passed": self.passed, "avg_delta": self.avg_delta,
                "max_delta": self.max_delta, "range": self.value_range, "top1_matches": self.top1_matches,
                "top1_total": self.top1_total, "allowed_max_delta": self.allowed_max,
                "allowed_avg_delta": self.allowed_avg, "problems": self.problems}  # fmt: skip


@dataclass
class DeviceResult:
    """The outputs of one device checked, with its timing, or the error that stopped it."""

    device: str
    samples: int = 0
    outputs: list[OutputCheck] = field(default_factory=list)
    timing: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.error is None and all(o.passed for o in self.outputs)

    def to_json(self) -> dict[str, Any]:
        return {"device": self.device, "passed": self.passed, "samples": self.samples, "error": self.error,
                "timing": self.timing, "outputs": [o.to_json() for o in self.outputs]}  # fmt: skip


@dataclass
class ValidationReport:
    """Every device's verdict on one model against one reference."""

    model: str
    reference: str
    devices: list[DeviceResult]

    @property
    def passed(self) -> bool:
        return all(d.passed for d in self.devices)

    @property
    def errors(self) -> list[str]:
        return [f"{d.device}: {d.error}" for d in self.devices if d.error]

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "reference": self.reference, "passed": self.passed,
                "devices": [d.to_json() for d in self.devices]}  # fmt: skip

    def lines(self) -> list[str]:
        """The report as the guide's validator prints it, one block per device."""
        out = []
        for d in self.devices:
            out.append(f"Device: {d.device}")
            if d.error:
                out.append(f"Error: {d.error}")
                continue
            out.append(f"Validated Samples: {d.samples}")
            for o in d.outputs:
                top = "-"
                if o.top1_total is not None:
                    top = f"{o.top1_matches}/{o.top1_total} - {100 * o.top1_matches / max(o.top1_total, 1):.2f} %"
                out.append(f"Output Name: {o.name} Top-1 Matches: {top}")
                out.append(f"Top Average Delta: {o.avg_delta:.4f}")
                out.append(f"Top Max Delta {o.max_delta:.4f}")
            t = d.timing
            trip = f" (round trip {t['round_trip_ms']:.4f}ms)" if d.device != "local" and t.get("round_trip_ms") else ""
            out.append(f"Model run took: {t.get('model_ms') or 0:.4f}ms{trip}")
            if d.passed:
                out.append("All outputs validate within error.")
            else:
                out.extend(f"Output {o.name} does not validate: {'; '.join(o.problems)}" for o in d.outputs
                           if o.problems)  # fmt: skip
        return out


def _key(keys: list[str], info: TensorInfo) -> str | None:
    for name in (info.name, *info.aliases):
        for candidate in (name, rtm_name(name)):
            if candidate in keys:
                return candidate
    return None


def _pair(
    infos: list[TensorInfo], arrays: dict[str, np.ndarray], given: list[str] | None, ours: bool, what: str, ref: str
) -> list[tuple[TensorInfo, str]]:
    """Which reference array each model tensor is compared with (or fed from)."""
    keys = list(arrays)
    if given:
        if len(given) != len(infos):
            raise InputError(f"--ref_{what} names {len(given)} arrays for the model's {len(infos)} {what}")
        missing = [g for g in given if g not in arrays]
        if missing:
            raise InputError(f"{ref} has no {what[:-1]} array {', '.join(missing)}; its {what}: {', '.join(keys)}")
        return list(zip(infos, given))
    found = [_key(keys, info) for info in infos]
    if all(found):
        return list(zip(infos, found))  # type: ignore[arg-type]
    if ours and len(keys) == len(infos):  # a reference from another format's model: the same tensors in order
        return list(zip(infos, keys))
    names = ", ".join(info.name for info, k in zip(infos, found) if not k)
    raise InputError(
        f"{ref} holds no array for {what} {names}; its {what}: {', '.join(keys)}: name them (--ref_{what}) or pick the "
        f"model's tensors (--{what[:-1]}_names)"
    )


def _fit(value: np.ndarray, info: TensorInfo, what: str) -> np.ndarray:
    shape = [d if d > 0 else 1 for d in info.shape] if info.shape else list(value.shape)
    if value.size != int(np.prod(shape)):
        raise InputError(f"{what} holds {list(value.shape)} values per sample; tensor {info.name} is {info.shape}")
    return value.reshape(shape)


def _check(info: TensorInfo, key: str, got: list[np.ndarray], want: list[np.ndarray], tol: Tolerance) -> OutputCheck:
    expected = np.concatenate([w.reshape(-1) for w in want]).astype(np.float64)
    actual = np.concatenate([g.reshape(-1) for g in got]).astype(np.float64)
    delta = np.abs(actual - expected)
    span = float(expected.max() - expected.min()) if expected.size else 0.0
    scale = 1.0 if tol.absolute else (span or float(np.abs(expected).max(initial=0.0)) or 1.0)
    check = OutputCheck(
        info.name, key, int(expected.size), float(delta.mean()) if delta.size else 0.0,
        float(delta.max()) if delta.size else 0.0, span, None, None, tol.max_delta * scale, tol.avg_delta * scale,
    )  # fmt: skip
    if want[0].ndim >= 1 and want[0].shape[-1] > 1:
        rows_w = np.concatenate([w.reshape(-1, w.shape[-1]) for w in want])
        rows_g = np.concatenate([g.reshape(-1, w.shape[-1]) for g, w in zip(got, want)])
        check.top1_matches = int(np.sum(rows_w.argmax(1) == rows_g.argmax(1)))
        check.top1_total = len(rows_w)
        if check.top1_matches < tol.min_top1 * check.top1_total - 1e-9:
            check.problems.append(f"top-1 matches {check.top1_matches}/{check.top1_total}, below the "
                                  f"{100 * tol.min_top1:g} % required")  # fmt: skip
    if not np.all(np.isfinite(actual)):
        check.problems.append("the model gave NaN or infinite values")
    if check.max_delta > check.allowed_max:
        check.problems.append(f"max delta {check.max_delta:.4g} > {check.allowed_max:.4g} allowed")
    if check.avg_delta > check.allowed_avg:
        check.problems.append(f"average delta {check.avg_delta:.4g} > {check.allowed_avg:.4g} allowed")
    return check


def _run_on(
    device: Device, reference: Reference, ins: list[tuple[TensorInfo, str]], outs: list[tuple[TensorInfo, str]],
    tol: Tolerance,
) -> DeviceResult:  # fmt: skip
    got: list[list[np.ndarray]] = [[] for _ in outs]
    want: list[list[np.ndarray]] = [[] for _ in outs]
    for k in range(reference.samples):
        sample_in = reference.sample(k, reference.inputs)
        sample_out = reference.sample(k, reference.outputs)
        feeds = {info.name: info.quantize(_fit(sample_in[key], info, f"reference input {key}")) for info, key in ins}
        results = device.run(feeds, [info.name for info, _ in outs])
        for j, (info, key) in enumerate(outs):
            value = info.dequantize(results[info.name])
            got[j].append(value)
            want[j].append(_fit(sample_out[key], TensorInfo(info.name, list(value.shape), np.float32), f"{key}"))
    checks = [_check(info, key, got[j], want[j], tol) for j, (info, key) in enumerate(outs)]
    return DeviceResult(device.name, reference.samples, checks, device.timing())


def validate(
    model: str | os.PathLike,
    reference: Reference | str | os.PathLike,
    *,
    uris: list[str] | None = None,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    ref_inputs: list[str] | None = None,
    ref_outputs: list[str] | None = None,
    tolerance: Tolerance | None = None,
    timeout: float = 100,
    local: LocalModel | None = None,
) -> ValidationReport:
    """Run `model` on the reference inputs and compare its outputs with the reference outputs.

    Int8/uint8 inputs are fed quantized with the model's own scale and zero point, and quantized outputs are
    compared dequantized. With `uris`, the model is uploaded to each ModelRunner and validated on all of them
    at once (one thread each); otherwise it runs on this host.

    Args:
        model: the model to validate (TFLite, ONNX, Keras, SavedModel, .pb; on a runner: what its engine runs).
        reference: a `Reference` or a reference .npz.
        uris: ModelRunner URIs (``host:port`` or ``http://host:port/v1``).
        input_names, output_names: the model's tensors to feed and compare (default: all of them).
        ref_inputs, ref_outputs: the reference arrays they pair with (default: the same names, ``/`` written ``_``,
            else the reference's arrays in order).
        tolerance: when an output validates (`Tolerance`; default 10 % max and 2 % average of its range, every
            top-1 matching).
        timeout: seconds per runner request.
        local: the model already opened (`open_local`), to skip opening it again.

    Returns:
        A `ValidationReport`: per device, per output top-1 matches, average and max delta, the verdict, timing.

    Raises:
        InputError: names the model or the reference lacks (listing those they have), shapes that do not fit.
    """
    name = str(reference) if not isinstance(reference, Reference) else reference.info.get("file", "the reference")
    if not isinstance(reference, Reference):
        reference = Reference.load(reference)
    tol = tolerance or Tolerance()
    local = local or open_local(model, input_names=input_names, output_names=output_names)
    ours = not reference.info.get("foreign")
    ins = _pair(local.inputs, reference.inputs, ref_inputs, ours, "inputs", name)
    if not ours:  # a foreign file: its arrays are inputs or outputs by the names the model pairs them with
        used = {key for _, key in ins}
        reference.outputs = {k: v for k, v in reference.outputs.items() if k not in used}
        first, key = ins[0]
        batch = first.shape[0] if first.shape and first.shape[0] > 0 else 1
        total = reference.inputs[key].shape[0] if reference.inputs[key].ndim else 1
        reference.samples = max(total // batch, 1) if reference.inputs[key].size > int(np.prod(first.shape)) else 1
    outs = _pair(local.outputs, reference.outputs, ref_outputs, ours, "outputs", name)
    if not uris:
        return ValidationReport(local.name, name, [_run_on(LocalDevice(local), reference, ins, outs, tol)])

    def on_runner(uri: str) -> DeviceResult:
        try:
            device = RemoteDevice(uri, model, timeout)
        except EiqError as exc:
            return DeviceResult(uri, error=str(exc))
        try:
            return _run_on(device, reference, ins, outs, tol)
        except EiqError as exc:
            return DeviceResult(device.name, error=str(exc))
        finally:
            device.close()

    with ThreadPoolExecutor(max_workers=len(uris), thread_name_prefix="eiq-validate") as pool:
        results = list(pool.map(on_runner, uris))
    return ValidationReport(local.name, name, results)
