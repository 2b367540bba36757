"""Telling model files apart by content: every kind the converter reads is identified, and a file that is no
model, a truncated .tflite, an empty file, NNEF graphs, TF-Hub links and hostile SavedModel tars are refused
with the reason and the route."""

from __future__ import annotations

import io
import tarfile

import pytest

from convert.tiny_sources import sources  # noqa: F401  (pytest finds fixtures by name)
from eiq_lab.convert.formats import is_keras3, keras_version, model_type, output_type, saved_model_folder
from eiq_lab.errors import InputError


@pytest.fixture(scope="module")
def tflite_file(sources, tmp_path_factory):  # noqa: F811
    """The tiny model converted by TensorFlow's own converter (not ours)."""
    from eiq_lab import framework

    model = framework.keras().models.load_model(sources.h5, compile=False)
    data = framework.tf().lite.TFLiteConverter.from_keras_model(model).convert()
    path = tmp_path_factory.mktemp("tflite") / "tiny.tflite"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    """A one-node ONNX model written with onnx.helper."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["x"], ["y"])], "relu",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )  # fmt: skip
    path = tmp_path_factory.mktemp("onnx") / "relu.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_every_source_kind_is_identified_by_content(sources, tflite_file, onnx_file, tmp_path):  # noqa: F811
    assert model_type(sources.h5) == "h5"
    assert model_type(sources.keras2) == "keras"
    assert model_type(sources.keras3) == "keras"
    assert model_type(sources.savedmodel) == "savedmodel"
    assert model_type(sources.tar) == "savedmodel"
    assert model_type(sources.savedmodel / "saved_model.pb") == "savedmodel"
    assert model_type(sources.pb) == "pb"
    assert model_type(tflite_file) == "tflite"
    assert model_type(onnx_file) == "onnx"
    # names do not decide: a TFLite model called .bin and an ONNX model called .pb are what they hold
    renamed = tmp_path / "model.bin"
    renamed.write_bytes(tflite_file.read_bytes())
    assert model_type(renamed) == "tflite"
    disguised = tmp_path / "graph.pb"
    disguised.write_bytes(onnx_file.read_bytes())
    assert model_type(disguised) == "onnx"
    rtm = tmp_path / "model.rtm"
    rtm.write_bytes(b"RTM\x00" + bytes(60))
    assert model_type(rtm) == "rtm"


def test_keras_2_and_3_files_are_told_apart(sources):  # noqa: F811
    assert keras_version(sources.keras2).startswith("2.")
    assert keras_version(sources.keras3).startswith("3.")
    assert not is_keras3(sources.keras2)
    assert is_keras3(sources.keras3)


def test_output_types_come_from_the_suffix():
    assert [output_type(n) for n in ("a.tflite", "b.onnx", "c.rtm", "d.h5")] == ["tflite", "onnx", "rtm", "h5"]
    with pytest.raises(InputError, match="suffix"):
        output_type("model.txt")


def test_text_named_tflite_is_not_a_model(tmp_path):
    path = tmp_path / "x.tflite"
    path.write_text("this is a README, not a model\n" * 4)
    with pytest.raises(InputError, match=r"x.tflite is not a model: it holds text"):
        model_type(path)


def test_truncated_tflite_is_refused(tflite_file, tmp_path):
    data = tflite_file.read_bytes()
    path = tmp_path / "cut.tflite"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="truncated or damaged TFLite model"):
        model_type(path)


def test_empty_and_missing_files_are_refused(tmp_path):
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        model_type(empty)
    with pytest.raises(InputError, match="does not exist"):
        model_type(tmp_path / "nothing.h5")


def test_random_bytes_and_images_are_not_models(tmp_path):
    png = tmp_path / "photo.onnx"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    with pytest.raises(InputError, match="not a model: it holds an image"):
        model_type(png)


def test_nnef_folder_and_archive_are_refused_with_the_route(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    (folder / "graph.nnef").write_text("version 1.0;\ngraph G( input ) -> ( output ) {}\n")
    with pytest.raises(InputError, match=r"NNEF graph: no NNEF reader.*plugin"):
        model_type(folder)
    archive = tmp_path / "net.nnef.tgz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder / "graph.nnef", arcname="graph.nnef")
    with pytest.raises(InputError, match="NNEF"):
        model_type(archive)


@pytest.mark.parametrize(
    "link", ["https://tfhub.dev/google/imagenet/mobilenet_v2_100_224/classification/5",
             "https://www.kaggle.com/models/google/mobilenet-v2/tensorFlow2/100-224-classification"],
)  # fmt: skip
def test_hub_links_are_refused_with_the_route(link):
    with pytest.raises(InputError, match=r"needs a download.*download the SavedModel yourself"):
        model_type(link)


def _tar_with(path, name, *, kind=tarfile.REGTYPE, data=b"x"):
    with tarfile.open(path, "w") as tar:
        info = tarfile.TarInfo("model/saved_model.pb")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"\x08\x01\x12\x00"))
        bad = tarfile.TarInfo(name)
        bad.type = kind
        if kind == tarfile.SYMTYPE:
            bad.linkname = "/etc/passwd"
        else:
            bad.size = len(data)
        tar.addfile(bad, io.BytesIO(data) if kind == tarfile.REGTYPE else None)


@pytest.mark.parametrize(
    ("member", "kind", "reason"),
    [("../escape.txt", tarfile.REGTYPE, r"\.\."), ("/abs/file", tarfile.REGTYPE, "absolute"),
     ("model/link", tarfile.SYMTYPE, "symbolic link"), ("model/dev", tarfile.CHRTYPE, "device")],
)  # fmt: skip
def test_hostile_savedmodel_tars_are_refused_whole(tmp_path, member, kind, reason):
    archive = tmp_path / "evil.tar"
    _tar_with(archive, member, kind=kind)
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(InputError, match=f"refused.*{reason}|{reason}.*refused"):
        saved_model_folder(archive, work)
    assert list(work.iterdir()) == []  # nothing half-unpacked is left behind
    assert not (tmp_path / "escape.txt").exists()


def test_savedmodel_tar_unpacks_to_its_folder(sources, tmp_path):  # noqa: F811
    folder = saved_model_folder(sources.tar, tmp_path)
    assert (folder / "saved_model.pb").read_bytes() == (sources.savedmodel / "saved_model.pb").read_bytes()
    assert folder.is_relative_to(tmp_path)
