"""What kind of model a file holds, judged by its content (magic bytes, flatbuffer, protobuf, zip, HDF5)
and not only its name; and the safe unpacking of a SavedModel tar into a temporary folder.

Types are the converter plugins' names (../shared/INTERFACES.md): 'tflite', 'onnx', 'h5', 'keras',
'savedmodel', 'pb', 'rtm'. NNEF graphs and TF-Hub links are recognised and refused with the route.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path

from ..errors import InputError

#: The model types this module tells apart, with the names users know them by.
TYPES = {
    "tflite": "TensorFlow Lite",
    "onnx": "ONNX",
    "h5": "Keras HDF5",
    "keras": "Keras (.keras zip)",
    "savedmodel": "TensorFlow SavedModel (folder or tar)",
    "pb": "TensorFlow 1.x frozen graph",
    "rtm": "DeepViewRT RTM",
}
#: Output types by file suffix (an output file does not exist yet, so its name is all there is).
SUFFIXES = {
    ".tflite": "tflite", ".onnx": "onnx", ".h5": "h5", ".hdf5": "h5", ".h5df": "h5", ".keras": "keras", ".pb": "pb",
    ".rtm": "rtm", ".tar": "savedmodel", ".tgz": "savedmodel", ".tar.gz": "savedmodel",
}  # fmt: skip

_HDF5 = b"\x89HDF\r\n\x1a\n"
_HUB_PREFIXES = ("https://tfhub.dev/", "http://tfhub.dev/", "tfhub.dev/", "https://www.kaggle.com/models/",
                 "https://kaggle.com/models/")  # fmt: skip
_TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz")


def model_type(path: str | os.PathLike) -> str:
    """The type of the model at `path`, one of `TYPES`, judged by what the file holds.

    Args:
        path: a model file, a SavedModel folder (or tar of one), or a TF-Hub link.

    Raises:
        InputError: the path does not exist, is empty, holds no model (text, an image, a truncated
            .tflite ...), or holds a kind of model that cannot be read here (NNEF, a TF-Hub link); the
            message says which and what to do.

    Example:
        >>> model_type("mobilenet.h5")  # doctest: +SKIP
        'h5'
    """
    text = os.fspath(path)
    if text.startswith(_HUB_PREFIXES):
        raise InputError(
            f"{text} is a TF-Hub / Kaggle Models link: converting it needs a download, and the converter never "
            "uses the network; download the SavedModel yourself (the link's 'Download' button gives a .tar.gz), "
            "then convert that file or its unpacked folder"
        )
    p = Path(text)
    if not p.exists():
        raise InputError(f"model {p} does not exist")
    if p.is_dir():
        return _folder_type(p)
    size = p.stat().st_size
    if size == 0:
        raise InputError(f"{p} is empty (0 bytes): it is not a model; was the file written completely?")
    with open(p, "rb") as handle:
        head = handle.read(64)
    name = p.name.lower()
    if head[4:8] == b"TFL3":
        check_tflite(p)
        return "tflite"
    if head.startswith(_HDF5):
        return "h5"
    if zipfile.is_zipfile(p):
        return _zip_type(p)
    if name.endswith(_TAR_SUFFIXES) or head.startswith(b"\x1f\x8b") or _is_tar(p):
        return _tar_type(p)
    if name.endswith(".rtm"):
        return "rtm"  # DeepViewRT's layout is not public: its name is all we can go by
    kind = _protobuf_type(p)
    if kind:
        return kind
    if name.endswith(".tflite"):
        raise InputError(
            f"{p} is not a model{_describe(head)}: a TFLite flatbuffer has 'TFL3' at bytes 4-8, this file has "
            f"{head[4:8]!r}; give the .tflite file the converter wrote"
        )
    raise InputError(
        f"{p} is not a model{_describe(head)}; give a .tflite, .onnx, .h5, .keras, .pb file or a SavedModel folder/tar"
    )


def output_type(path: str | os.PathLike) -> str:
    """The type a not-yet-written output file will have, by its suffix.

    Raises:
        InputError: the suffix names no model type.
    """
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return SUFFIXES[suffix]
    raise InputError(f"output {path}: the suffix names no model type; use one of {', '.join(sorted(set(SUFFIXES)))}")


def keras_version(path: str | os.PathLike) -> str:
    """The Keras version that wrote a `.keras` zip (its metadata.json), e.g. '3.15.1'; '' when it says none."""
    with zipfile.ZipFile(path) as archive:
        try:
            meta = json.loads(archive.read("metadata.json"))
        except (KeyError, ValueError):
            return ""
    return str(meta.get("keras_version", ""))


def is_keras3(path: str | os.PathLike) -> bool:
    """True for a `.keras` file written by Keras 3 (which legacy Keras 2 cannot load)."""
    return keras_version(path).startswith("3")


def check_tflite(path: str | os.PathLike) -> None:
    """Verify a TFLite flatbuffer the way the interpreter does before it trusts it.

    Raises:
        InputError: the flatbuffer does not verify (a truncated or damaged file).
    """
    from ai_edge_litert.interpreter import Interpreter

    p = Path(path)
    try:
        Interpreter(model_path=str(p))
    except Exception as exc:  # ValueError for a bad buffer; RuntimeError for ops this interpreter lacks
        if "flatbuffer" in str(exc).lower() or "identifier" in str(exc).lower():
            raise InputError(
                f"{p} is a truncated or damaged TFLite model ({p.stat().st_size:,} bytes): its flatbuffer does "
                "not verify; copy or export the file again"
            ) from None
        # anything else (an op this interpreter lacks) is not a question of the file's integrity


def _describe(head: bytes) -> str:
    sample = head[:32]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return ": it holds text"
    if head.startswith((b"\xff\xd8\xff", b"\x89PNG")):
        return ": it holds an image"
    return ""


def _folder_type(p: Path) -> str:
    if (p / "saved_model.pb").is_file() or (p / "saved_model.pbtxt").is_file():
        return "savedmodel"
    if (p / "graph.nnef").is_file():
        raise _nnef(p)
    raise InputError(f"folder {p} is not a SavedModel: it has no saved_model.pb (nor an NNEF graph.nnef)")


def _nnef(p: Path) -> InputError:
    return InputError(
        f"{p} is an NNEF graph: no NNEF reader ships with TensorFlow or ONNX here; install a converter plugin "
        "that reads NNEF (eiq-converter -i PLUGIN.whl), or convert it to ONNX with the Khronos NNEF-Tools first"
    )


def _zip_type(p: Path) -> str:
    with zipfile.ZipFile(p) as archive:
        names = set(archive.namelist())
    if "config.json" in names:
        return "keras"
    raise InputError(f"{p} is a zip archive without config.json: it is not a Keras .keras model")


def _is_tar(p: Path) -> bool:
    try:
        return tarfile.is_tarfile(p)
    except (OSError, EOFError, tarfile.TarError):
        return False


def _tar_members(p: Path) -> list[str]:
    try:
        with tarfile.open(p, "r:*") as archive:
            return [m.name for m in archive.getmembers()]
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{p} is a damaged or truncated archive ({exc})") from None


def _tar_type(p: Path) -> str:
    names = [n.rstrip("/") for n in _tar_members(p)]
    bases = {n.rsplit("/", 1)[-1] for n in names}
    if "saved_model.pb" in bases or "saved_model.pbtxt" in bases:
        return "savedmodel"
    if "graph.nnef" in bases:
        raise _nnef(p)
    raise InputError(f"archive {p} holds no saved_model.pb: it is not a SavedModel tar")


def _protobuf_type(p: Path) -> str | None:
    """'onnx', 'savedmodel' (a bare saved_model.pb) or 'pb' when the bytes parse as that protobuf."""
    data = p.read_bytes()
    try:
        import onnx

        proto = onnx.load_model_from_string(data)
        if proto.ir_version > 0 and proto.HasField("graph") and (proto.graph.node or proto.graph.output):
            return "onnx"
    except Exception:  # protobuf raises several kinds for bytes that are not this message
        pass
    from .. import framework

    framework.tf()  # the protobuf classes come with TensorFlow
    from tensorflow.core.framework import graph_pb2
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(data)
        if saved.meta_graphs and saved.meta_graphs[0].graph_def.node:
            if p.name == "saved_model.pb":
                return "savedmodel"
            raise InputError(
                f"{p} is a SavedModel's saved_model.pb: give the folder holding it (with its variables/ folder)"
            )
    except InputError:
        raise
    except Exception:
        pass
    graph = graph_pb2.GraphDef()
    try:
        graph.ParseFromString(data)
    except Exception:
        return None
    if graph.node and all(n.op and n.name for n in graph.node):
        return "pb"
    return None


def saved_model_folder(path: str | os.PathLike, workdir: str | os.PathLike) -> Path:
    """The SavedModel folder at `path`: the folder itself, or a tar of one unpacked safely into `workdir`.

    Archive members with absolute paths, '..', links or devices are refused (the whole archive is: a
    model is never half-unpacked), as the dataset importers do.

    Raises:
        InputError: the archive is unsafe, damaged, or holds no saved_model.pb.
    """
    p = Path(path)
    if p.is_dir():
        return p
    if p.name == "saved_model.pb":
        return p.parent
    from ..datasets.sources import Source

    problems: list[str] = []
    source = Source(p, on_problem=lambda name, reason: problems.append(f"{name}: {reason}"))
    target = Path(tempfile.mkdtemp(prefix="savedmodel_", dir=workdir))
    try:
        for entry in source.entries():
            out = target.joinpath(*entry.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(entry.read())
    except InputError:
        shutil.rmtree(target, ignore_errors=True)
        raise
    if problems:
        shutil.rmtree(target, ignore_errors=True)
        shown = "; ".join(problems[:5])
        hint = (
            " (unpack it yourself and give the folder, or raise EIQ_MAX_MEMBER_BYTES)"
            if any("limit" in problem for problem in problems)
            else ""
        )
        raise InputError(f"SavedModel archive {p} was refused: {shown}{hint}")
    found = sorted(target.rglob("saved_model.pb"), key=lambda q: len(q.parts))
    if not found:
        raise InputError(f"archive {p} holds no saved_model.pb: it is not a SavedModel tar")
    return found[0].parent
