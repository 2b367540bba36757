"""Compiling int8 TFLite models for Arm Ethos-U NPUs with Vela (i.MX 93 by default), and Vela's
performance estimate (totals and per layer, NPU or CPU) as a `VelaReport`.

Vela runs in a child process: its output is captured (kept as the report's ``log``), its exits and a
crash on a malformed model stay there, and it cannot change this process's state (it sets the
recursion limit). Outputs are written into a temporary folder beside the target and moved in whole.
"""

from __future__ import annotations

import configparser
import csv
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EiqError, InputError

#: Folder of the Vela configurations eiq-lab ships (``imx93.ini``).
CONFIG_DIR = Path(__file__).parent / "vela_configs"
#: Optimisation strategies Vela knows: fastest inference, or least SRAM.
OPTIMISE = ("Performance", "Size")
#: The accelerator assumed for a user's .ini (which cannot name one): the i.MX 93's NPU, the guide's target.
INI_ACCELERATOR = "ethos-u65-256"
#: Operators that only move data between float and integer; they say nothing about what a model computes in.
_CONVERSIONS = {"QUANTIZE", "DEQUANTIZE"}
#: Tensor types an Ethos-U operator computes on (int8, uint8, int16 feature maps).
_NPU_TYPES = {"INT8", "UINT8", "INT16"}
_QUANTIZE_HINT = (
    "quantize it first: `eiq quantize` (a Keras, SavedModel or TFLite model with calibration samples) or "
    "`eiq export PROJECT --quantize` (a training run)"
)


@dataclass(frozen=True)
class Target:
    """What Vela compiles for: an accelerator and a system config and memory mode from a Vela .ini file."""

    name: str
    accelerator: str
    config_file: Path
    system_config: str
    memory_mode: str


def _arm_ini() -> Path:
    """Vela's bundled configuration file (Arm's reference systems), found without importing Vela."""
    spec = importlib.util.find_spec("ethosu")
    for folder in list(spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "config_files" / "Arm" / "vela.ini"
        if path.is_file():
            return path
    raise EiqError("Arm's Vela (ethos-u-vela) is not installed; install it with: pip install 'eiq-lab[vela]'")


# Each preset names its system config and memory mode (Vela warns and guesses otherwise). For Arm's own
# accelerators they are the ones Vela 5.2 falls back to for that accelerator, from its bundled vela.ini.
_U55 = ("Ethos_U55_High_End_Embedded", "Shared_Sram")
_U65 = ("Ethos_U65_Client_Server", "Dedicated_Sram_384KB")
_U85 = ("Ethos_U85_SYS_DRAM_Mid", "Dedicated_Sram_384KB")
#: Named targets: preset -> (accelerator, .ini file (None: Vela's bundled one), system config, memory mode).
PRESETS: dict[str, tuple[str, Path | None, str, str]] = {
    "imx93": ("ethos-u65-256", CONFIG_DIR / "imx93.ini", "IMX93", "IMX93_Dedicated_Sram"),
    **{f"ethos-u55-{macs}": (f"ethos-u55-{macs}", None, *_U55) for macs in (32, 64, 128, 256)},
    **{f"ethos-u65-{macs}": (f"ethos-u65-{macs}", None, *_U65) for macs in (256, 512)},
    **{f"ethos-u85-{macs}": (f"ethos-u85-{macs}", None, *_U85) for macs in (128, 256, 512, 1024, 2048)},
}
#: Accelerators Vela 5.2 compiles for.
ACCELERATORS = tuple(name for name in PRESETS if name.startswith("ethos-"))


def _sections(path: Path) -> tuple[list[str], list[str]]:
    """The system configs and memory modes a Vela .ini defines."""
    parser = configparser.ConfigParser()
    try:
        with open(path, encoding="utf-8") as f:
            parser.read_file(f)
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{path} is not a Vela configuration file (an .ini file): {exc}") from exc
    names = parser.sections()
    systems = [s.split(".", 1)[1] for s in names if s.startswith("System_Config.")]
    modes = [s.split(".", 1)[1] for s in names if s.startswith("Memory_Mode.")]
    return systems, modes


def _pick(kind: str, flag: str, asked: str | None, available: list[str], path: Path) -> str:
    if asked is not None:
        if asked not in available:
            listed = ", ".join(available) or "none"
            raise InputError(f"{kind} {asked!r} is not in {path}; it defines: {listed}")
        return asked
    if len(available) == 1:
        return available[0]
    if not available:
        raise InputError(f"{path} defines no {kind} (a [{kind.title().replace(' ', '_')}.NAME] section)")
    raise InputError(f"{path} defines {len(available)} {kind}s ({', '.join(available)}); name one with {flag}")


def resolve_target(
    config: str | os.PathLike = "imx93",
    *,
    accelerator: str | None = None,
    system_config: str | None = None,
    memory_mode: str | None = None,
) -> Target:
    """The accelerator, .ini file, system config and memory mode a `config` stands for.

    Args:
        config: a preset (one of `PRESETS`: ``imx93`` or an accelerator name such as ``ethos-u55-256``) or
            the path of a Vela .ini file.
        accelerator: overrides the preset's accelerator (one of `ACCELERATORS`); for an .ini file the
            default is `INI_ACCELERATOR` (i.MX 93).
        system_config, memory_mode: override the preset's; for an .ini file, the only one of its kind
            in the file unless named.

    Raises:
        InputError: an unknown preset or accelerator, a missing or unreadable .ini, or a system config or
            memory mode the file does not define (the message lists those it does).
    """
    text = os.fspath(config)
    if text in PRESETS:
        preset_accelerator, ini, default_system, default_mode = PRESETS[text]
        path, name = ini or _arm_ini(), text
        system_config = system_config or default_system
        memory_mode = memory_mode or default_mode
    elif text.lower().endswith(".ini") or os.sep in text or Path(text).exists():
        path, name, preset_accelerator = Path(text).expanduser().resolve(), text, INI_ACCELERATOR
        if not path.is_file():
            raise InputError(f"Vela configuration file {text} not found (expected an .ini file or a preset)")
        if path.suffix.lower() != ".ini":
            raise InputError(f"Vela configuration file {text} must end in .ini (Vela reads only .ini files)")
    else:
        raise InputError(
            f"unknown Vela config {text!r}; expected one of {', '.join(PRESETS)} or the path of a .ini file"
        )
    accelerator = accelerator or preset_accelerator
    if accelerator not in ACCELERATORS:
        raise InputError(f"unknown accelerator {accelerator!r}; Vela compiles for {', '.join(ACCELERATORS)}")
    systems, modes = _sections(path)
    return Target(
        name=name,
        accelerator=accelerator,
        config_file=path,
        system_config=_pick("system config", "--system-config", system_config, systems, path),
        memory_mode=_pick("memory mode", "--memory-mode", memory_mode, modes, path),
    )


@dataclass
class VelaLayer:
    """One row of Vela's per-layer estimate: an operator as Vela schedules it.

    Attributes:
        name: the operator's output tensor (the model's layer name; several rows can share one when
            Vela splits or fuses an operator).
        operator: the model's operator type (``Conv2D``, ``Softmax``).
        npu_operator: what Vela made of it (``Conv2D``, ``Relu``, ``Passthrough`` for a CPU operator).
        target: ``"NPU"`` or ``"CPU"`` (falls back to the CPU; Vela does not time those).
        reason: why Vela left it on the CPU, when Vela says.
        cycles: estimated NPU cycles.
        cycles_share: percent of the network's NPU cycles (its share of inference time on the NPU).
        macs: multiply-accumulates.
        sram_bytes: fast (SRAM) staging memory the operator uses.
    """

    name: str
    operator: str
    npu_operator: str
    target: str
    reason: str | None
    cycles: int
    cycles_share: float
    macs: int
    sram_bytes: int


@dataclass
class VelaReport:
    """A compiled model and Vela's performance estimate for it (an estimate: real hardware differs).

    Attributes:
        model: the compiled ``<name>_vela.tflite``; source: the model compiled (None for bytes).
        target: the preset or .ini asked for; accelerator, system_config, memory_mode: what Vela used.
        clock_hz: the NPU clock; cycles: NPU cycles per inference; inference_time_s and
            inferences_per_second follow from them (the NPU part only).
        sram_bytes, dram_bytes, on_chip_flash_bytes, off_chip_flash_bytes: memory the compiled model uses.
        npu_operators, cpu_operators: as Vela counts them (operators fused into another not counted).
        layers: Vela's per-layer rows; log: everything Vela printed.
    """

    model: Path
    source: Path | None
    output_dir: Path
    target: str
    accelerator: str
    system_config: str
    memory_mode: str
    config_file: Path
    optimise: str
    clock_hz: float
    cycles: int
    inference_time_s: float
    inferences_per_second: float
    macs: int
    sram_bytes: int
    dram_bytes: int
    on_chip_flash_bytes: int
    off_chip_flash_bytes: int
    layers: list[VelaLayer]
    summary_csv: Path
    layers_csv: Path
    vela_version: str
    npu_operators: int = 0
    cpu_operators: int = 0
    log: str = field(repr=False, default="")

    @property
    def cpu_layers(self) -> list[VelaLayer]:
        """The layers that fall back to the CPU."""
        return [layer for layer in self.layers if layer.target != "NPU"]

    def to_json(self, *, log: bool = False) -> dict[str, Any]:
        """The report as JSON-ready values (Vela's output too with ``log=True``)."""
        out = {k: str(v) if isinstance(v, Path) else v for k, v in asdict(self).items() if k != "log"}
        if log:
            out["log"] = self.log
        return out

    def to_text(self) -> str:
        """The totals and the per-layer table, CPU fallbacks marked, as lines of text."""
        clock = f"{self.clock_hz / 1e6:g} MHz"
        target = self.accelerator if self.target == self.accelerator else f"{self.target} ({self.accelerator})"
        memory = ", ".join(
            f"{label} {value / 1024:.1f} KiB"
            for label, value in (
                ("SRAM", self.sram_bytes),
                ("DRAM", self.dram_bytes),
                ("on-chip flash", self.on_chip_flash_bytes),
                ("off-chip flash", self.off_chip_flash_bytes),
            )
            if value or label == "SRAM"
        )
        lines = [
            f"compiled model   {self.model}",
            f"target           {target}, system config {self.system_config}, "
            f"memory mode {self.memory_mode}, {clock}, optimised for {self.optimise.lower()}",
            f"estimate         {self.cycles:,} NPU cycles, {self.inference_time_s * 1e3:.3f} ms per inference, "
            f"{self.inferences_per_second:,.1f} inferences/s, {self.macs:,} MACs",
            f"memory           {memory}",
            f"operators        {self.npu_operators} on the NPU, {self.cpu_operators} on the CPU",
            "",
        ]
        width = max([8, *(len(layer.operator) for layer in self.layers)])
        npu_width = max([6, *(len(layer.npu_operator) for layer in self.layers)])
        lines.append(
            f"{'runs on':<7}  {'operator':<{width}}  {'NPU op':<{npu_width}}  {'cycles':>10}  {'share':>7}  "
            f"{'MACs':>11}  {'SRAM B':>9}  name"
        )
        for layer in self.layers:
            if layer.target == "NPU":
                numbers = f"{layer.cycles:>10,}  {layer.cycles_share:>6.1f}%  {layer.macs:>11,}  {layer.sram_bytes:>9,}"
            else:  # Vela does not estimate the CPU's share
                numbers = f"{'-':>10}  {'-':>7}  {'-':>11}  {'-':>9}"
            mark = "NPU" if layer.target == "NPU" else "CPU *"
            lines.append(
                f"{mark:<7}  {layer.operator:<{width}}  {layer.npu_operator:<{npu_width}}  {numbers}  {layer.name}"
            )
            if layer.reason:
                lines.append(f"{'':<7}  ^ on the CPU because: {layer.reason}")
        if self.cpu_layers:
            lines.append("* falls back to the CPU (not part of the NPU estimate)")
        lines.append("Vela's figures are an estimate; the real hardware may differ.")
        return "\n".join(lines)


def inspect_tflite(data: bytes, name: str = "the model") -> list[tuple[str, str]]:
    """Check that `data` is a whole TFLite flatbuffer and list its operators.

    Returns:
        ``(operator, output type)`` per operator of every subgraph, e.g. ``("CONV_2D", "INT8")``; custom
        operators by their custom name.

    Raises:
        InputError: not a TFLite file, or a truncated or damaged one.
    """
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise InputError(f"{name} is not a TFLite model (no TFL3 identifier at byte 4); expected a .tflite file")
    from ethosu.vela.tflite.BuiltinOperator import BuiltinOperator
    from ethosu.vela.tflite.Model import Model
    from ethosu.vela.tflite.TensorType import TensorType

    builtin = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    types = {v: k for k, v in vars(TensorType).items() if not k.startswith("_")}
    buf = bytearray(data)
    try:
        model = Model.GetRootAs(buf, 0)
        codes = []
        for i in range(model.OperatorCodesLength()):
            code = model.OperatorCodes(i)
            custom = code.CustomCode()
            number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
            codes.append(custom.decode(errors="replace") if custom else builtin.get(number, f"BUILTIN_{number}"))
        operators = []
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            tensor_types = [subgraph.Tensors(t).Type() for t in range(subgraph.TensorsLength())]
            for o in range(subgraph.OperatorsLength()):
                op = subgraph.Operators(o)
                outputs = [op.Outputs(k) for k in range(op.OutputsLength())]
                _ = [op.Inputs(k) for k in range(op.InputsLength())]
                kind = types.get(tensor_types[outputs[0]], "UNKNOWN") if outputs else "NONE"
                operators.append((codes[op.OpcodeIndex()], kind))
        for b in range(model.BuffersLength()):  # weights are stored last: a cut file loses them first
            buffer = model.Buffers(b)
            if buffer.DataLength() and buffer._tab.Vector(buffer._tab.Offset(4)) + buffer.DataLength() > len(data):
                raise IndexError("buffer past the end of the file")
            if buffer.Offset() > 1 and buffer.Offset() + buffer.Size() > len(data):
                raise IndexError("external buffer past the end of the file")
    except Exception as exc:  # flatbuffers reads past the end as struct.error / IndexError
        raise InputError(
            f"{name} is a truncated or damaged TFLite file ({len(data):,} bytes; {exc}); export the model again"
        ) from exc
    if not model.SubgraphsLength() or not operators:
        raise InputError(f"{name} holds no operators; expected a TFLite model")
    return operators


def check_quantized(operators: list[tuple[str, str]], name: str = "the model") -> None:
    """Refuse a model Vela cannot accelerate: a float model, or one already compiled for Ethos-U.

    Raises:
        InputError: what is wrong and how to fix it.
    """
    if any(op == "ethos-u" for op, _ in operators):
        raise InputError(f"{name} is already compiled for Ethos-U (it holds ethos-u operators); compile the int8 model")
    compute = [(op, kind) for op, kind in operators if op not in _CONVERSIONS]
    if compute and not any(kind in _NPU_TYPES for _, kind in compute):
        kinds = sorted({kind for _, kind in compute})
        raise InputError(
            f"{name} is a float model (its operators compute in {', '.join(kinds)}); Ethos-U runs only int8/int16 "
            f"quantized operators, so Vela would leave every one on the CPU: {_QUANTIZE_HINT}"
        )


def _run_vela(argv: list[str]) -> tuple[int, str]:
    """Run Vela in a child process; its exit code and everything it printed (stdout and stderr, in order)."""
    env = dict(os.environ, PYTHONIOENCODING="utf-8", PYTHONUNBUFFERED="1")
    result = subprocess.run(
        [sys.executable, "-m", "ethosu.vela", *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=env,
        check=False,
    )
    return result.returncode, result.stdout.decode("utf-8", errors="replace")


_WARNING = re.compile(r"^Warning \(supported operators\) operator: (?P<op>\S+), ofm: '(?P<ofm>.*)'$")


def cpu_reasons(log: str) -> dict[str, str]:
    """Why Vela left operators on the CPU, from its log: output tensor name -> reason."""
    reasons: dict[str, list[str]] = {}
    lines = log.splitlines()
    for i, line in enumerate(lines):
        match = _WARNING.match(line)
        if not match:
            continue
        found = reasons.setdefault(match["ofm"], [])
        for follow in lines[i + 1 :]:  # "Reason: ..." then the constraint it broke, up to a blank line
            if not follow.strip() or _WARNING.match(follow):
                break
            text = follow.removeprefix("Reason: ").strip()
            if text not in found:
                found.append(text)
    return {ofm: "; ".join(texts) for ofm, texts in reasons.items() if texts}


_COUNT = re.compile(r"^(?P<where>CPU|NPU) operators = (?P<count>\d+)", re.M)


def _operator_counts(log: str, layers: list[VelaLayer]) -> tuple[int, int]:
    """NPU and CPU operator counts as Vela prints them (it does not count operators fused into another),
    else counted from the per-layer rows."""
    counts = {m["where"]: int(m["count"]) for m in _COUNT.finditer(log)}
    npu = counts.get("NPU", sum(layer.target == "NPU" for layer in layers))
    cpu = counts.get("CPU", sum(layer.target != "NPU" for layer in layers))
    return npu, cpu


def _number(row: dict[str, str], key: str) -> float:
    value = (row.get(key) or "").strip()
    try:
        number = float(value)
    except ValueError:
        return 0.0
    return number if number == number else 0.0  # nan (an all-CPU model) counts as nothing


def _read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _layers(path: Path, reasons: dict[str, str]) -> list[VelaLayer]:
    layers = []
    for row in _read_csv(path):
        on_npu = row.get("Target", "").strip().upper() == "NPU"
        name = row.get("Name", "").strip()
        layers.append(
            VelaLayer(
                name=name,
                operator=row.get("Original Operator", "").strip(),
                npu_operator=row.get("NNG Operator", "").strip(),
                target="NPU" if on_npu else "CPU",
                reason=None if on_npu else reasons.get(name),
                cycles=int(_number(row, "Op Cycles")),
                cycles_share=round(_number(row, "Network% (cycles)"), 4) if on_npu else 0.0,
                macs=int(_number(row, "MAC Count")),
                sram_bytes=int(_number(row, "Staging Usage")),
            )
        )
    return layers


def _commit(staging: Path, target: Path) -> None:
    """Move a finished output folder into place: renamed whole, or file by file into an existing folder."""
    if not target.exists():
        os.replace(staging, target)
        return
    if not target.is_dir():
        raise InputError(f"output folder {target} is a file; name a folder")
    for item in staging.iterdir():
        os.replace(item, target / item.name)


def compile_for_ethos_u(
    model: str | os.PathLike | bytes,
    output_dir: str | os.PathLike | None = None,
    config: str | os.PathLike = "imx93",
    *,
    optimise: str = "Performance",
    system_config: str | None = None,
    memory_mode: str | None = None,
    accelerator: str | None = None,
    arena_cache_size: int | None = None,
) -> VelaReport:
    """Compile an int8 TFLite model for an Arm Ethos-U NPU with Vela and read its performance estimate.

    Vela writes ``<name>_vela.tflite`` (the operators it accelerates become ``ethos-u`` custom operators;
    the rest stay TFLite operators for the CPU), ``<name>_summary_<system config>.csv`` and
    ``<name>_per-layer.csv`` into `output_dir`.

    Args:
        model: the .tflite file (or its bytes, then `output_dir` is required and the name is ``model``).
        output_dir: where the outputs go (default: ``<model name>_vela`` beside the model). Created whole
            when it does not exist; files of the same name in an existing folder are replaced.
        config: a preset (``imx93``, the default: Ethos-U65-256 with eiq-lab's i.MX 93 configuration; or an
            accelerator name such as ``ethos-u55-256`` with Arm's reference system for it), or the path of
            your own Vela .ini file.
        optimise: ``"Performance"`` (fastest inference) or ``"Size"`` (least SRAM).
        system_config, memory_mode: sections of the .ini to use (default: the preset's, or the only one in
            your file).
        accelerator: for your own .ini: the NPU (default ``ethos-u65-256``, the i.MX 93's).
        arena_cache_size: bytes of SRAM Vela may use as cache (overrides the memory mode's).

    Returns:
        The `VelaReport`: compiled model path, target, totals, per-layer rows and Vela's output (``log``).

    Raises:
        InputError: not a TFLite file, a truncated one, a float model (quantize it first), an unknown
            config, system config or memory mode, or a model Vela fails on (with Vela's message).

    Example:
        >>> report = compile_for_ethos_u("mobilenet_int8.tflite")  # doctest: +SKIP
        >>> print(report.to_text())  # doctest: +SKIP
    """
    _arm_ini()  # Vela is installed (else: how to install it)
    target = resolve_target(config, accelerator=accelerator, system_config=system_config, memory_mode=memory_mode)
    strategy = {s.lower(): s for s in OPTIMISE}.get(str(optimise).lower())
    if strategy is None:
        raise InputError(f"optimise must be one of {', '.join(OPTIMISE)}; received {optimise!r}")
    if arena_cache_size is not None and int(arena_cache_size) < 0:
        raise InputError(f"arena cache size must be a number of bytes >= 0; received {arena_cache_size}")
    if isinstance(model, bytes | bytearray):
        if output_dir is None:
            raise InputError("compiling model bytes needs an output folder (output_dir)")
        data, source, stem = bytes(model), None, "model"
    else:
        source = Path(model)
        if not source.is_file():
            raise InputError(f"model file {source} not found; expected an int8 .tflite file")
        data, stem = source.read_bytes(), source.stem
    label = str(source) if source else "the model"
    check_quantized(inspect_tflite(data, label), label)
    out = Path(output_dir) if output_dir is not None else source.with_name(f"{stem}_vela")
    out = out.expanduser().absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{out.name}.", dir=out.parent) as work:
        staging = Path(work) / "out"
        if source is None:
            source_path = Path(work) / f"{stem}.tflite"
            source_path.write_bytes(data)
        else:
            source_path = source.absolute()
        argv = [
            os.fspath(source_path),
            "--output-dir", os.fspath(staging),
            "--accelerator-config", target.accelerator,
            "--config", os.fspath(target.config_file),
            "--system-config", target.system_config,
            "--memory-mode", target.memory_mode,
            "--optimise", strategy,
            "--verbose-performance",  # the only way Vela writes its per-layer CSV
        ]  # fmt: skip
        if arena_cache_size is not None:
            argv += ["--arena-cache-size", str(int(arena_cache_size))]
        code, log = _run_vela(argv)
        summary = staging / f"{stem}_summary_{target.system_config}.csv"
        compiled, per_layer = staging / f"{stem}_vela.tflite", staging / f"{stem}_per-layer.csv"
        if code != 0 or not (compiled.is_file() and summary.is_file() and per_layer.is_file()):
            lines = [line.strip() for line in log.splitlines() if line.strip()]
            how = f"exit code {code}" if code >= 0 else f"killed by signal {-code}"
            error = InputError(
                f"Vela could not compile {label} for {target.name} ({how}): {lines[-1] if lines else ''}"
            )
            error.log = log  # Vela's whole output, for callers who show more than one line
            raise error
        rows = _read_csv(summary)
        if not rows:
            raise InputError(f"Vela wrote an empty summary for {label}:\n{log.strip()[-800:]}")
        layers = _layers(per_layer, cpu_reasons(log))
        npu_operators, cpu_operators = _operator_counts(log, layers)
        _commit(staging, out)
    totals = rows[0]

    def kib(key: str) -> int:
        return round(_number(totals, key) * 1024)

    from importlib.metadata import version

    return VelaReport(
        model=out / compiled.name,
        source=source.absolute() if source else None,
        output_dir=out,
        target=target.name,
        accelerator=totals.get("accelerator_configuration", target.accelerator).lower().replace("_", "-"),
        system_config=totals.get("system_config", target.system_config),
        memory_mode=totals.get("memory_mode", target.memory_mode),
        config_file=target.config_file,
        optimise=strategy,
        clock_hz=_number(totals, "core_clock"),
        cycles=int(_number(totals, "cycles_total")),
        inference_time_s=_number(totals, "inference_time"),
        inferences_per_second=_number(totals, "inferences_per_second"),
        macs=int(_number(totals, "nn_macs")),
        sram_bytes=kib("sram_memory_used"),
        dram_bytes=kib("dram_memory_used"),
        on_chip_flash_bytes=kib("on_chip_flash_memory_used"),
        off_chip_flash_bytes=kib("off_chip_flash_memory_used"),
        layers=layers,
        summary_csv=out / summary.name,
        layers_csv=out / per_layer.name,
        vela_version=version("ethos-u-vela"),
        npu_operators=npu_operators,
        cpu_operators=cpu_operators,
        log=log,
    )
