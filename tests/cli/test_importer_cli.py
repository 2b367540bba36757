"""`eiq-importer` with the guide's flags, `eiq import voc`, `eiq project export`, and the demo."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from eiq_lab.cli.importer import main as importer
from eiq_lab.cli.main import main as eiq
from eiq_lab.datasets.samples import shapes_image, voc_xml, write_shapes_voc
from eiq_lab.project import open_project


@pytest.fixture(scope="module")
def voc_tar(tmp_path_factory):
    """A VOCdevkit tar of 30 shape images: 24 in train.txt, 6 in val.txt."""
    path = tmp_path_factory.mktemp("voc") / "VOCshapes.tar"
    counts = write_shapes_voc(path, 30, test_share=0.2)
    return path, counts


def call(capsys, main, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_guide_flags_import_with_group(tmp_path, capsys, voc_tar):
    tar, counts = voc_tar
    project = tmp_path / "VOC.eiqp"
    code, out, _ = call(capsys, importer, "-group", "train", "-project", project, "-quiet", tar)
    assert code == 0, out
    assert f"imported {counts['images']} image(s)" in out
    with open_project(project) as p:
        assert p.count_images(group="train") == counts["images"]
        assert sum(len(p.annotations(boxes=True, label=s)) for s in p.labels()) == counts["boxes"]


def test_without_group_the_imagesets_decide(tmp_path, capsys, voc_tar):
    tar, counts = voc_tar
    project = tmp_path / "VOC.eiqp"
    code, out, _ = call(capsys, importer, "--project", project, "--json", tar)
    assert code == 0
    report = json.loads(out)
    assert report["groups"] == {"train": counts["train"], "test": counts["test"], "none": 0}
    assert report["boxes"] == counts["boxes"]


def test_list_prints_labels_and_imports_nothing(tmp_path, capsys, voc_tar):
    tar, counts = voc_tar
    code, out, _ = call(capsys, importer, "-list", "-json", tar)
    assert code == 0
    report = json.loads(out)
    assert report["listed_only"] is True
    assert sum(report["labels"].values()) == counts["boxes"]
    assert set(report["labels"]) <= {"square", "circle", "triangle"}
    assert list(tmp_path.iterdir()) == []


def test_difficult_and_truncated_flags(tmp_path, capsys):
    data, objects = shapes_image(0)
    xml = voc_xml("a.jpg", 160, 120, objects[:1]).replace(
        "<difficult>0</difficult><truncated>0</truncated>", "<difficult>1</difficult><truncated>1</truncated>"
    )
    tar = tmp_path / "d.tar"
    with tarfile.open(tar, "w") as t:
        for name, payload in (("Annotations/a.xml", xml.encode()), ("JPEGImages/a.jpg", data)):
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            t.addfile(info, io.BytesIO(payload))
    code, out, _ = call(capsys, importer, "-project", tmp_path / "a.eiqp", "-json", tar)
    assert code == 0
    assert json.loads(out)["boxes"] == 0
    assert json.loads(out)["excluded"] == {"difficult": 1}
    code, out, _ = call(capsys, importer, "-project", tmp_path / "b.eiqp", "-difficult", "-truncated", "-json", tar)
    assert code == 0
    assert json.loads(out)["boxes"] == 1


def test_missing_project_flag_and_bad_archive(tmp_path, capsys, voc_tar):
    tar, _ = voc_tar
    code, _, err = call(capsys, importer, tar)
    assert code == 1 and "-project" in err
    bad = tmp_path / "bad.tar"
    bad.write_bytes(b"not a tar at all" * 10)
    code, _, err = call(capsys, importer, "-project", tmp_path / "x.eiqp", bad)
    assert code == 1 and "neither a folder nor a tar" in err and "Traceback" not in err
    assert not (tmp_path / "x.eiqp").exists()


@pytest.mark.parametrize("fmt", ["voc", "coco", "yolo"])
def test_export_round_trip_through_the_cli(tmp_path, capsys, voc_tar, fmt):
    tar, counts = voc_tar
    project = tmp_path / "p.eiqp"
    assert call(capsys, eiq, "import", "voc", tar, "--project", project, "-q")[0] == 0
    out_dir = tmp_path / fmt
    code, out, _ = call(capsys, eiq, "project", "export", project, "--format", fmt, out_dir, "--json")
    assert code == 0
    assert json.loads(out)["images"] == counts["images"]
    again = tmp_path / "again.eiqp"
    source = {"voc": [out_dir], "yolo": [out_dir]}.get(fmt)
    if fmt == "coco":
        jsons = sorted((out_dir / "annotations").glob("*.json"))
        assert jsons
        for path in jsons:
            assert (
                call(capsys, eiq, "import", "coco", path, "--images", out_dir / "images", "--project", again, "-q")[0]
                == 0
            )
    else:
        assert call(capsys, eiq, "import", fmt, *source, "--project", again, "-q")[0] == 0

    def boxes(path):
        with open_project(path) as p:
            return sorted(
                (img.sha256, a.label, tuple(round(v, 3) for v in a.box), img.grouping)
                for img in p.iter_images()
                for a in p.annotations(image=img.id)
            )

    assert boxes(again) == boxes(project)
    code, _, err = call(capsys, eiq, "project", "export", project, "--format", fmt, out_dir)
    assert code == 1 and "not empty" in err


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    code, out, _ = call(capsys, eiq, "demo", tmp_path / "demo", "--shapes", "20", "--epochs", "1", "-q")
    assert code == 0
    assert "imported 1797 image(s)" in out
    assert "run 1: test accuracy" in out
    assert "imported 20 image(s)" in out
    assert out.count("health of") == 2
    with open_project(tmp_path / "demo" / "digits.eiqp") as p:
        assert p.count_images(group="train") == 1434
        assert p.run(1).state == "finished" and p.run(1).settings["model"] == "mobilenet_v2"
        [export] = p.exports()
    # validated at a threshold, exported as int8 (checked against Keras), evaluated as a file, compiled for Ethos-U
    assert "below the softmax threshold 0.5" in out and "int8 test accuracy" in out
    assert export.settings["type"] == "int8" and export.parity["images"] > 0
    assert "compiled for ethos-u65-256" in out.lower() and (tmp_path / "demo" / "models" / "vela").is_dir()
    code, out, _ = call(capsys, eiq, "demo", tmp_path / "demo", "--shapes", "20", "--epochs", "1", "-q")
    assert code == 0  # running it again replaces its own folder
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "mine.txt").write_text("keep me")
    code, _, err = call(capsys, eiq, "demo", tmp_path / "other")
    assert code == 1 and "not empty" in err
    assert (tmp_path / "other" / "mine.txt").read_text() == "keep me"
