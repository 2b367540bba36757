"""The Import panel on real small datasets: sample data, Pascal VOC with difficult/truncated objects and a test
dataset, structured folders with a bad file, uploads, TFDS built locally; bad input leaves the project as it was."""

import datetime
import importlib.util
import io
import sys
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from eiq_lab.project import create_project
from eiq_lab.widgets.importer import Importer

WAIT = 120
NOW = datetime.datetime.now(datetime.UTC)


def _png(colour, size=(40, 30)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "PNG")
    return out.getvalue()


def _jpeg(colour, size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


VOC_A = """<annotation><filename>a.jpg</filename>
<object><name>cat</name><bndbox><xmin>2</xmin><ymin>4</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></object>
<object><name>dog</name><difficult>1</difficult>
  <bndbox><xmin>10</xmin><ymin>10</ymin><xmax>60</xmax><ymax>44</ymax></bndbox></object>
</annotation>"""
VOC_B = """<annotation><filename>b.jpg</filename>
<object><name>flower</name></object>
<object><name>rose</name><truncated>1</truncated>
  <bndbox><xmin>0</xmin><ymin>0</ymin><xmax>20</xmax><ymax>20</ymax></bndbox></object>
</annotation>"""


def write_voc(root: Path, stems=("a", "b"), xml=(VOC_A, VOC_B)) -> Path:
    (root / "Annotations").mkdir(parents=True)
    (root / "JPEGImages").mkdir()
    for i, (stem, text) in enumerate(zip(stems, xml, strict=True)):
        (root / "Annotations" / f"{stem}.xml").write_text(text)
        (root / "JPEGImages" / f"{stem}.jpg").write_bytes(_jpeg((40 * i, 90, 200 - 40 * i)))
    return root


def write_folders(root: Path, broken: bool = True) -> Path:
    for rel, colour in (
        ("train/cat/c1.png", (250, 0, 0)),
        ("train/cat/c2.png", (240, 10, 0)),
        ("test/dog/d1.png", (0, 0, 250)),
    ):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_png(colour))
    if broken:
        (root / "train" / "cat" / "broken.jpg").write_bytes(b"this is not a JPEG")
    return root


@pytest.fixture
def project(tmp_path):
    p = create_project(tmp_path / "p.eiqp")
    yield p
    p.close()


def _import(panel: Importer):
    panel.import_button.click()
    assert panel.job is not None, panel.status.value
    return panel.job.wait(WAIT)


def test_sample_digits_import_with_report_per_label(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    seen = []
    panel.on_imported = seen.append
    assert panel.format.value == "sample" and panel.sample.value == "digits"
    _import(panel)
    info = project.info()
    # scikit-learn ships 1,797 digits; the sample puts 5 at the root unlabeled and 20 % of the rest in test
    assert info["images"] == 1797 and info["unlabeled"]["total"] == 5
    assert info["groups"] == {"train": 1434, "test": 358, "none": 5}
    assert sorted(label["name"] for label in info["labels"]) == [str(d) for d in range(10)]
    assert "imported 1797 image(s)" in panel.status.value
    report = panel.report_view.value
    assert "train 1434, test 358, no group 5" in report
    assert report.count("<tr>") == 1 + 10  # the header and one row per digit
    assert len(seen) == 1 and seen[0][0].images == 1797
    assert panel.import_button.disabled is False


def test_sample_shapes_is_a_detection_dataset(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    panel.sample.value = "shapes"
    _import(panel)
    info = project.info()
    assert info["images"] == 200 and info["boxes"] > 200 and info["full_image_labels"] == 0
    assert {label["name"] for label in info["labels"]} <= {"square", "circle", "triangle"}
    assert info["groups"]["test"] == 40  # the sample's val.txt lists a fifth of the images


def test_voc_leaves_out_difficult_and_truncated_unless_asked(project, tmp_path):
    write_voc(tmp_path / "voc")
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "voc"
    panel.voc_path.value = "voc"  # relative to the workspace
    _import(panel)
    pairs = sorted((label, box is None) for i in project.images() for label, box in project.annotations_with_image(i))
    assert pairs == [("cat", False), ("flower", True)]
    assert "1 difficult object(s) left out" in panel.report_view.value
    assert "1 truncated object(s) left out" in panel.report_view.value

    other = create_project(tmp_path / "q.eiqp")
    panel = Importer(other, workspace=tmp_path)
    panel.format.value = "voc"
    panel.voc_path.value = str(tmp_path / "voc")
    panel.difficult.value = panel.truncated.value = True
    _import(panel)
    names = sorted(label for i in other.images() for label, _ in other.annotations_with_image(i))
    assert names == ["cat", "dog", "flower", "rose"]
    other.close()


def test_voc_test_dataset_goes_to_the_test_group(project, tmp_path):
    write_voc(tmp_path / "train")
    write_voc(tmp_path / "test", stems=("t1",), xml=(VOC_B.replace("b.jpg", "t1.jpg"),))
    (tmp_path / "test" / "JPEGImages" / "t1.jpg").write_bytes(_jpeg((1, 2, 3)))
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "voc"
    panel.voc_path.value = "train"
    panel.voc_test_path.value = "test"
    _import(panel)
    assert project.info()["groups"] == {"train": 0, "test": 1, "none": 2}
    assert len(panel.reports) == 2


def test_folders_report_lists_the_bad_file_and_imports_the_rest(project, tmp_path):
    write_folders(tmp_path / "imgs")
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "folders"
    panel.folders_path.value = str(tmp_path / "imgs")
    _import(panel)
    assert project.count_images() == 3
    assert project.info()["groups"] == {"train": 2, "test": 1, "none": 0}
    problems = panel.report_view.value.split("eiq-import-problems", 1)[1]
    assert "train/cat/broken.jpg" in problems and "skipped" in problems
    assert "1 file(s) with problems skipped" in panel.status.value


def test_strict_import_of_a_bad_dataset_keeps_nothing(project, tmp_path):
    write_folders(tmp_path / "imgs")
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "folders"
    panel.folders_path.value = "imgs"
    panel.strict.value = True
    with pytest.raises(Exception, match=r"broken\.jpg"):
        _import(panel)
    assert "broken.jpg" in panel.status.value and "nothing was kept" in panel.status.value
    assert project.count_images() == 0 and project.labels() == []


def test_missing_paths_are_refused_before_any_work(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "folders"
    panel.import_button.click()
    assert "give the root folder" in panel.status.value
    panel.folders_path.value = "no_such_folder"
    panel.import_button.click()
    assert "does not exist" in panel.status.value and str(tmp_path / "no_such_folder") in panel.status.value
    panel.format.value = "voc"
    panel.voc_path.value = "missing.tar"
    panel.import_button.click()
    assert "missing.tar does not exist" in panel.status.value
    assert panel.job is None and project.count_images() == 0


def _tar_of(folder: Path) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        archive.add(folder, arcname=folder.name)
    return out.getvalue()


def _upload(panel: Importer, name: str, data: bytes) -> None:
    panel.upload.value = (
        {
            "name": name,
            "type": "application/gzip",
            "size": len(data),
            "content": memoryview(data),
            "last_modified": NOW,
        },
    )


def test_uploaded_archive_is_imported_like_a_path(project, tmp_path):
    data = _tar_of(write_folders(tmp_path / "imgs", broken=False))
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "upload"
    panel.upload_format.value = "folders"
    _upload(panel, "my_dataset.tar.gz", data)
    _import(panel)
    assert project.count_images() == 3
    assert "my_dataset.tar.gz" in panel.report_view.value
    assert panel.upload.value == ()


def test_uploads_too_big_or_not_archives_are_refused(project, tmp_path):
    data = _tar_of(write_folders(tmp_path / "imgs", broken=False))
    panel = Importer(project, workspace=tmp_path, max_upload_mb=len(data) / 2 / 1048576)
    panel.format.value = "upload"
    panel.import_button.click()
    assert "choose an archive to upload first" in panel.status.value
    _upload(panel, "big.tar.gz", data)
    panel.import_button.click()
    assert "over the" in panel.status.value and "upload limit" in panel.status.value
    panel.max_upload_bytes = 10 * len(data)
    _upload(panel, "photo.jpg", data)
    panel.import_button.click()
    assert "photo.jpg is not an archive" in panel.status.value
    assert panel.job is None and project.count_images() == 0


def _tfds_builders():
    if "tfds_builders" in sys.modules:
        return sys.modules["tfds_builders"]
    path = Path(__file__).resolve().parents[1] / "datasets" / "tfds_builders.py"
    spec = importlib.util.spec_from_file_location("tfds_builders", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["tfds_builders"] = module
    spec.loader.exec_module(module)
    return module


def test_tfds_with_split_expressions_from_a_local_data_dir(project, tmp_path):
    builders = _tfds_builders()
    builders.prepare("eiq_test_digits", tmp_path / "tfds")  # train 30, test 10
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "tfds"
    assert panel.download.value is False  # never downloads unless asked
    panel.tfds_name.value = "eiq_test_digits"
    panel.train_split.value = "train[:50%]"
    panel.test_split.value = "0:4"
    panel.data_dir.value = str(tmp_path / "tfds")
    _import(panel)
    assert project.info()["groups"] == {"train": 15, "test": 4, "none": 0}

    panel.tfds_name.value = "eiq_test_shapes"  # registered, but not prepared in that folder
    panel.import_button.click()
    with pytest.raises(Exception, match="not prepared"):
        panel.job.wait(WAIT)
    assert "not prepared" in panel.status.value and "tick &#x27;Download the dataset&#x27;" in panel.status.value
    assert project.count_images() == 19


def test_bad_tfds_split_is_refused_with_the_forms_it_takes(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "tfds"
    panel.train_split.value = "10%:most"
    panel.import_button.click()
    assert "train split" in panel.status.value and "60%" in panel.status.value
    assert panel.job is None


def test_custom_script_choice_shows_the_datastore_api(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    panel.format.value = "script"
    note = panel.form.children[0].value
    assert "from eiq_lab import datastore as ds" in note and 'ds.open_project("p.eiqp")' in note
    assert panel.actions.layout.display == "none"


def test_stop_ends_the_import_and_keeps_nothing(project, tmp_path):
    panel = Importer(project, workspace=tmp_path)
    # press Stop as soon as the progress line first shows (on the import's own thread, as a click could come)
    panel.progress_view.text.observe(lambda change: panel.stop_button.click(), "value")
    panel.import_button.click()
    with pytest.raises(Exception, match="stopped"):
        panel.job.wait(WAIT)
    assert "stopped by request" in panel.status.value and "eiq-warning" in panel.status.value
    assert project.count_images() == 0 and project.labels() == []
    assert panel.import_button.disabled is False
