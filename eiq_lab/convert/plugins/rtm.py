"""The built-in RTM (DeepViewRT) converter plugin: the vendor's ``deepview-converter`` (its ``rtm-converter``),
run in a managed environment of its own (it pins protobuf 3.20 and pillow 10.4), set up only after the
user accepts the vendor's licence (``eiq-converter --setup rtm``).

Inputs: TFLite (int8 or float) and ONNX go to the vendor's converter as they are; TensorFlow sources (.pb,
SavedModel, Keras) are first converted to TFLite by the `tensorflow` plugin (quantized there when asked),
which is how the guide's table has them as Y for RTM and RTM q. RTM conversion itself never quantizes
(the guide's Table 4.4): a float TFLite or ONNX model asked for RTM q is refused with the route.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from ...errors import EiqError, InputError
from .. import environments
from ..params import Params

NAME = "rtm"
#: The vendor's converter, as tested here (its tflite importer converted an int8 TFLite model to RTM).
REQUIREMENT = "deepview-converter==3.0.5"
TIMEOUT = 1800
TF_SOURCES = ("pb", "savedmodel", "h5", "keras")
INPUTS = [
    {"ext": "tflite", "name": "TensorFlow Lite"},
    {"ext": "onnx", "name": "ONNX"},
    *({"ext": ext, "name": f"{ext} (through TFLite)"} for ext in TF_SOURCES),
]
OUTPUTS = [{"ext": "rtm", "name": "DeepViewRT RTM"}]


def _p(kind: str, default: Any, text: str, choices: list | None = None) -> dict:
    return {"type": kind, "default": default, "choices": choices, "group": "rtm", "public": True, "help": text}


#: The guide's DeepViewRT settings (Table 4.4) plus the common ones the vendor's converter takes.
RTM = {
    "labels": _p("string", "", "a labels.txt (or comma-separated labels) to embed"),
    "name": _p("string", "", "the model's name, stored in its metadata"),
    "input_type": _p("string", "none", "input data type", ["none", "float32", "int8", "uint8"]),
    "output_type": _p("string", "none", "output data type", ["none", "float32", "int8", "uint8"]),
    "anchors": _p("string", "", "anchor boxes (.npy, [A, 4]) for SSD decoding, stored as constant ssd_anchor_boxes"),
    "constant": _p("string", "", "NAME=FILE.npy constants to store, comma-separated or repeated"),
    "input_names": _p("string", "", "inputs of the final model (a subgraph)"),
    "output_names": _p("string", "", "outputs of the final model (a subgraph)"),
    "input_shape": _p("string", "", "default input shape, e.g. 1,224,224,3"),
}


def query_convert(src_type: str | None, dst_type: str | None) -> dict | None:
    """* -> RTM (plugin contract): the formats, the parameter schema, or None for another pair."""
    if src_type is None and dst_type is None:
        return {"supported_inputs": INPUTS, "supported_outputs": OUTPUTS}
    if dst_type != "rtm" or src_type not in {i["ext"] for i in INPUTS}:
        return None
    if src_type in TF_SOURCES:
        from .tensorflow import QUANTIZATION

        return {**RTM, **QUANTIZATION}
    return dict(RTM)


def plugin_status() -> dict[str, str]:
    """Ready once the vendor's converter is installed; else how to install it."""
    env = environments.environment(NAME)
    if env.ready:
        return {"status": "ready", "message": f"deepview-converter environment: {env.path}"}
    return {
        "status": "needs setup",
        "message": "run eiq-converter --setup rtm: it shows the vendor's licence and installs deepview-converter "
        "into a managed environment once you accept it (~150 MB)",
    }


def license_text(log: Callable[[str], None] | None = None) -> tuple[str, Path]:
    """Download the vendor's wheel (not installing it) and return its licence text and the wheel's path.

    Raises:
        EiqError: pip could not download it, or the wheel holds no licence file.
    """
    folder = environments.home() / "downloads"
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "-d", str(folder),
         REQUIREMENT],
        capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        raise EiqError(f"could not download {REQUIREMENT} to read its licence: {' | '.join(lines[-4:])}")
    version = REQUIREMENT.split("==")[1]
    wheel = next(iter(sorted(folder.glob(f"deepview_converter-{version}-*.whl"))), None)
    if wheel is None:
        raise EiqError(f"pip downloaded no deepview_converter-{version} wheel into {folder}")
    with zipfile.ZipFile(wheel) as archive:
        names = [n for n in archive.namelist() if ".dist-info/" in n and Path(n).name.upper().startswith("LICEN")]
        if not names:
            raise EiqError(f"{wheel.name} holds no licence file: it cannot be accepted, so it is not installed")
        text = archive.read(names[0]).decode("utf-8", "replace")
    return text, wheel


def plugin_setup(
    *,
    accept_license: bool = False,
    remove: bool = False,
    log: Callable[[str], None] | None = None,
    ask: Callable[[str], bool] | None = None,
) -> str:
    """Install (or remove) the vendor's converter after showing its licence; returns what was done.

    Args:
        accept_license: the user accepted the licence beforehand (``--accept-license``); it is still shown.
        remove: delete the environment instead.
        log: shows the licence text and pip's output.
        ask: asks the user to accept (the CLI's interactive yes/no); without it and without
            `accept_license` nothing is installed.

    Raises:
        EiqError: the licence was not accepted (nothing installed), or the download or install failed.
    """
    if remove:
        return f"removed {environments.remove(NAME)}"
    text, wheel = license_text(log)
    if log is not None:
        log(text.rstrip())
    question = f"Do you accept the licence of {REQUIREMENT} above (Au-Zone Technologies' DeepView EULA)?"
    accepted = accept_license or (ask is not None and ask(question))
    if not accepted:
        raise EiqError(
            f"the licence of {REQUIREMENT} was not accepted, so nothing was installed; read it above and run "
            "eiq-converter --setup rtm --accept-license to accept it"
        )
    info = {
        "tool": "rtm-converter",
        "license_accepted": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "license_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }
    env = environments.create(NAME, [str(wheel)], info=info, log=log)
    manifest = env.manifest()
    size, seconds = manifest["bytes"] / 1e6, manifest["setup_seconds"]
    return f"deepview-converter is set up in {env.path} ({size:.0f} MB, {seconds:.0f} s)"


def convert(src_file: str, dst_file: str, params: Mapping[str, Any] | None = None) -> dict:
    """Convert a model to RTM (plugin contract); never raises for bad input."""
    from .tensorflow import run

    return run(lambda: _convert(Path(src_file), Path(dst_file), Params(params or {})))


def _convert(src: Path, dst: Path, p: Params) -> str:
    from ..formats import model_type
    from .tensorflow import tflite_is_quantized

    env = environments.environment(NAME)
    if not env.ready:
        raise EiqError(f"RTM output runs the vendor's converter: {plugin_status()['message']}")
    src_type = model_type(src)
    quantize = p.bool("quantize")
    if src_type in ("tflite", "onnx") and quantize:
        already = src_type == "tflite" and tflite_is_quantized(src.read_bytes())
        raise InputError(
            f"{src.name}: RTM conversion does not quantize"
            + (" and the model is already int8: drop --quantize" if already else
               "; quantize first (from the Keras/SavedModel/.pb source to an int8 .tflite, with --quantize), "
               "then convert that .tflite to RTM")
        )  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="eiq_rtm_") as tmp:
        work = Path(tmp)
        model = src
        if src_type in TF_SOURCES:
            model = _to_tflite(src, work / f"{src.stem}.tflite", p)
        args = _arguments(p)
        out = work / "model.rtm"
        command = [str(env.python), "-m", "deepview_rtm", *args, str(model.absolute()), str(out)]
        # with the debug variable the vendor's converter raises (exit 1) instead of printing and exiting 0
        variables = {**os.environ, "DEEPVIEW_CONVERTER_DEBUG": "1"}
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, cwd=work, env=variables,
                                  stdin=subprocess.DEVNULL)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise EiqError(f"rtm-converter did not finish within {TIMEOUT} s on {src.name}") from None
        said = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
        if done.returncode != 0 or not out.is_file():
            hint = ""
            if any("bad number -" in line for line in said[-3:]):
                hint = (" (the vendor's TFLite reader cannot follow optional inputs left empty, e.g. a Dense layer "
                        "whose bias the TFLite converter dropped because it was all zeros)")  # fmt: skip
            raise EiqError(f"rtm-converter could not convert {src.name}: {said[-1] if said else 'no output'}{hint}")
        data = out.read_bytes()
    from ...files import write_atomic as write

    write(dst, data)
    return f"converted {src.name} ({src_type}) to {dst} (rtm, {len(data):,} bytes) with deepview-converter"


def _to_tflite(src: Path, dst: Path, p: Params) -> Path:
    """A TensorFlow source as TFLite (quantized when asked), by the built-in tensorflow plugin."""
    from . import tensorflow

    values = {k: v for k, v in p.to_dict().items() if k not in ("output_model_type", "input_model_type")}
    for key in ("input_type", "output_type"):  # RTM's own I/O types apply after; TFLite keeps its defaults
        values.pop(key, None)
    reply = tensorflow.convert(str(src), str(dst), values)
    if reply.get("success") != "yes":
        raise EiqError(f"converting {src.name} to TFLite (before RTM) failed: {reply.get('message')}")
    return dst


def _arguments(p: Params) -> list[str]:
    """rtm-converter's options from the parameters (the guide's DeepViewRT settings)."""
    args: list[str] = []
    labels = p.str("labels")
    if labels:
        args += ["--labels", str(Path(labels).absolute()) if Path(labels).is_file() else labels]
    for key in ("input_type", "output_type"):
        value = p.str(key)
        if value and value != "none":
            if value not in ("float32", "int8", "uint8"):
                raise InputError(f"{key} must be float32, int8 or uint8; received {value!r}")
            args += [f"--{key}", value]
    for key in ("name", "input_names", "output_names"):
        if p.str(key):
            args += [f"--{key}", ",".join(p.list(key)) if key != "name" else p.str(key)]
    if p.shape("input_shape"):
        args += ["--input_shape", ",".join(map(str, p.shape("input_shape")))]
    constants = list(p.list("constant"))
    if p.str("anchors"):
        constants.append(f"ssd_anchor_boxes={p.str('anchors')}")
    resolved = []
    for item in constants:
        key, sep, file = item.partition("=")
        if not sep or not key.strip() or not Path(file).is_file():
            raise InputError(f"a constant is NAME=FILE.npy with an existing file; received {item!r}")
        resolved.append(f"{key.strip()}={Path(file).absolute()}")
    if resolved:
        args += ["--constant", ",".join(resolved)]
    return args
