"""Reference data (.npz): a model's inputs (random, seeded, or images) and the outputs it gave, real-valued
float32, keyed by tensor name (``/`` written ``_``, the guide's RTM names), with what made them.

Samples are stacked on the first (batch) axis; the ``eiq_reference`` entry (JSON) says which arrays are inputs
and which outputs, how many samples, from which model. A foreign .npz (without it) is read as one sample.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .local import LocalModel, open_local

#: The entry that describes a reference file (a 0-d unicode array: loads without pickle).
INFO_KEY = "eiq_reference"
#: Input ranges of random samples by normalization (the model's metadata or --normalization; default signed).
RANGES = {"signed": (-1.0, 1.0), "unsigned": (0.0, 1.0), "none": (0.0, 255.0)}


def rtm_name(name: str) -> str:
    """The guide's automatic RTM name of a tensor: ``/`` becomes ``_``."""
    return name.replace("/", "_").replace(":", "_")


@dataclass
class Reference:
    """Inputs and expected outputs.

    Attributes:
        inputs, outputs: name -> real-valued array, samples stacked on axis 0, in the model's order.
        samples: how many samples the arrays hold.
        info: what made them (model, source of the inputs, seed, normalization).
    """

    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    samples: int = 1
    info: dict[str, Any] = field(default_factory=dict)

    def sample(self, index: int, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Sample `index` of `arrays` (this reference's inputs or outputs)."""
        out = {}
        for key, value in arrays.items():
            size = value.shape[0] // self.samples if value.ndim else 0
            out[key] = value[index * size : (index + 1) * size] if size else value
        return out

    def save(self, path: str | os.PathLike) -> Path:
        """Write a compressed .npz (inputs, outputs and the ``eiq_reference`` entry); returns its path."""
        path = Path(path)
        info = {**self.info, "samples": self.samples, "inputs": list(self.inputs), "outputs": list(self.outputs)}
        arrays = {**self.inputs, **self.outputs, INFO_KEY: np.array(json.dumps(info))}
        with open(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> Reference:
        """Read a reference .npz (ours, or a foreign one: then every array is an input or output by name).

        Raises:
            InputError: no such file, or not an .npz of numeric arrays.
        """
        path = Path(path)
        if not path.is_file():
            raise InputError(f"reference file {path} does not exist; make one with eiq-validator --input_shapes ...")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise InputError(f"{path.name} is not a numpy .npz reference file: {exc}") from None
        raw = arrays.pop(INFO_KEY, None)
        if raw is None:  # foreign: which arrays are inputs is decided by the names the user gives
            return cls(dict(arrays), dict(arrays), 1, {"foreign": True, "file": path.name})
        info = json.loads(str(raw))
        inputs = {k: arrays[k] for k in info.get("inputs", [])}
        outputs = {k: arrays[k] for k in info.get("outputs", [])}
        return cls(inputs, outputs, int(info.get("samples", 1)), info)


def _names(given: list[str] | None, infos: list[Any], what: str) -> list[str]:
    if given is None:
        return [rtm_name(t.name) for t in infos]
    if len(given) != len(infos):
        raise InputError(f"--rtm_{what} names {len(given)} tensors; the model has {len(infos)} {what} chosen")
    return list(given)


def _image_inputs(model: LocalModel, folder: str, normalization: str, count: int | None) -> tuple[np.ndarray, str]:
    from ..convert.calibration import calibration_samples

    if len(model.inputs) != 1 or len(model.inputs[0].shape) != 4:
        raise InputError(f"image samples feed a model with one image input [N, H, W, C]; {model.name} has "
                         f"{', '.join(str(t.shape) for t in model.inputs)}")  # fmt: skip
    shape = model.inputs[0].shape
    files = calibration_samples(folder, shape[1:], count or 10_000, normalization=normalization)
    images = np.stack(list(files()))
    return images, files.description


def make_reference(
    model: str | os.PathLike,
    *,
    input_names: list[str] | None = None,
    output_names: list[str] | None = None,
    input_shapes: list[list[int]] | None = None,
    samples: int | str | os.PathLike = 1,
    seed: int = 0,
    normalization: str | None = None,
    rtm_inputs: list[str] | None = None,
    rtm_outputs: list[str] | None = None,
) -> Reference:
    """Run a model on random (seeded) or image inputs and keep its inputs and outputs as a reference.

    Args:
        model: the reference model: Keras .h5/.keras (safe mode), SavedModel, frozen .pb, TFLite or ONNX.
        input_names, output_names: the tensors to feed and read (default: the model's own).
        input_shapes: a shape per input (for dynamic ones; checked against fixed ones).
        samples: a count N of random inputs, or a folder (or image file) of images, resized to the input and
            normalized (one sample per image).
        seed: of the random inputs.
        normalization: the input range (signed [-1, 1], unsigned [0, 1], none [0, 255]); default: the model's
            metadata, else signed.
        rtm_inputs, rtm_outputs: the names to store the arrays under (the converted model's names); default:
            the model's names with ``/`` written ``_``.

    Returns:
        The `Reference` (save it with ``.save(path)``).

    Raises:
        InputError: a name the model lacks (listing those it has), a bad count, folder or normalization.
    """
    local = open_local(model, input_names=input_names, output_names=output_names, input_shapes=input_shapes)
    normalization = normalization or local.metadata.get("normalization", "signed")
    if normalization not in RANGES:
        raise InputError(f"normalization must be one of {', '.join(RANGES)}; received {normalization!r}")
    for info in local.inputs:
        if -1 in info.shape:
            raise InputError(f"input {info.name} of {local.name} has a dynamic shape {info.shape}; give "
                             "--input_shapes (for example 1,96,96,3)")  # fmt: skip
    count = _count(samples)
    if count is None:
        images, source = _image_inputs(local, os.fspath(samples), normalization, None)
        batch = local.inputs[0].shape[0]
        count = len(images) // max(batch, 1)
        if count < 1:
            raise InputError(f"{samples} holds {len(images)} images; the input takes batches of {batch}")
        real = [[images[i * batch : (i + 1) * batch] for i in range(count)]]
    else:
        low, high = RANGES[normalization]
        rng = np.random.default_rng(seed)
        real = [[rng.uniform(low, high, t.shape).astype(np.float32) for _ in range(count)] for t in local.inputs]
        source = f"{count} random input(s), seed {seed}, uniform in [{low:g}, {high:g}]"
    in_keys = _names(rtm_inputs, local.inputs, "inputs")
    out_keys = _names(rtm_outputs, local.outputs, "outputs")
    fed: list[list[np.ndarray]] = [[] for _ in local.inputs]
    got: list[list[np.ndarray]] = [[] for _ in local.outputs]
    for k in range(count):
        feeds = {}
        for i, info in enumerate(local.inputs):
            raw = info.quantize(real[i][k]) if np.dtype(info.dtype).kind in "iu" or info.quantized else real[i][k]
            feeds[info.name] = raw
            fed[i].append(info.dequantize(raw))  # what the model really saw, as real values
        results = local.run(feeds)
        for j, info in enumerate(local.outputs):
            got[j].append(info.dequantize(results[info.name]))
    return Reference(
        {key: np.concatenate(v) for key, v in zip(in_keys, fed)},
        {key: np.concatenate(v) for key, v in zip(out_keys, got)},
        count,
        {"model": local.name, "kind": local.kind, "source": source, "seed": seed, "normalization": normalization,
         "model_inputs": [t.name for t in local.inputs], "model_outputs": [t.name for t in local.outputs]},
    )  # fmt: skip


def _count(samples: Any) -> int | None:
    """A number of random samples, or None for a folder or file of images."""
    whole = isinstance(samples, (int, np.integer)) and not isinstance(samples, bool)
    if whole or (isinstance(samples, str) and samples.strip().isdigit()):
        number = int(samples)
    else:
        if not Path(samples).exists():
            raise InputError(f"--samples takes a number of random inputs or a folder of images; {samples} is neither")
        return None
    if number < 1:
        raise InputError(f"--samples must be at least 1; received {number}")
    return number
