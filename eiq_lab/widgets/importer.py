"""The Import panel: Pascal VOC, structured folders, TFDS, sample data and uploaded archives brought into a
project through the same engine functions `eiq import` calls, with a progress bar and the import report.
"""

from __future__ import annotations

import html
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ipywidgets as w

from ..datasets.session import ImportReport
from ..errors import InputError
from ..events import Progress
from ..project import Project, open_project
from .base import Panel

FORMATS = {
    "sample": "Sample data",
    "voc": "Pascal VOC",
    "folders": "Structured folders",
    "tfds": "TFDS",
    "upload": "Upload archive",
    "script": "Custom script",
}
SAMPLES = {
    "digits": "Handwritten digits: structured folders, 1,797 images 32x32, 10 labels (classification)",
    "shapes": "Shapes: a Pascal VOC tar, 200 photos with squares, circles, triangles boxed (detection)",
}
ARCHIVE_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.xz", ".tar.bz2", ".zip")
#: uploads pass through the page's websocket, whose messages Jupyter servers cap at 10 MiB by default
DEFAULT_MAX_UPLOAD_MB = 10.0
_MAX_PROBLEM_ROWS = 200
_CELL = "style='padding:1px 16px 1px 0'"

_SCRIPT_NOTE = """<div class='eiq-import-script'>
<p>For any other layout, write a short Python script with the datastore API (the guide's
<i>deepview.datastore</i>; only the import line changes) and run it from a command line
(Home &gt; Command line) or a notebook:</p>
<pre>from eiq_lab import datastore as ds

project = ds.open_project("{project}")
images = project.add_images([open("cat.jpg", "rb").read()], "train")   # encoded bytes; "train", "test" or None
project.add_annotation(images[0], "cat")                                # a full-image label
project.add_annotation(images[0], "ear", box=(10, 20, 30, 40))          # x, y, width, height in pixels</pre>
<p>Big datasets import faster from the command line: <code>eiq import voc DATASET.tar --project {project}</code>,
<code>eiq import folders FOLDER --project {project}</code>, <code>eiq import tfds mnist --project {project}</code>,
or the guide's <code>eiq-importer -project {project} VOC_DATASET.tar</code>.</p></div>"""


def report_html(report: ImportReport) -> str:
    """An import report as HTML: the summary, images per label, and the problems (file, reason, severity)."""
    data = report.to_dict()
    groups = data["groups"]
    verb = "found" if report.listed_only else "imported"
    parts = [
        f"<div class='eiq-import-summary'><b>{verb} {report.images} image(s)</b> from "
        f"<code>{html.escape(Path(report.source).name)}</code> ({html.escape(report.format)}): "
        f"train {groups['train']}, test {groups['test']}, no group {groups['none']}; "
        f"{report.boxes} box(es), {report.full_image} full-image label(s), {report.unlabeled} unlabeled</div>"
    ]
    notes = []
    if report.duplicates:
        notes.append(f"{report.duplicates} image(s) already in the project were skipped")
    for kind, n in sorted(report.excluded.items()):
        notes.append(f"{n} {kind} object(s) left out (tick 'Load {kind} labels' to include them)")
    if notes:
        parts.append("<div>" + "; ".join(html.escape(n) for n in notes) + "</div>")
    if report.labels:
        rows = "".join(
            f"<tr><td {_CELL}>{html.escape(name)}</td><td {_CELL} align='right'>{n}</td></tr>"
            for name, n in sorted(report.labels.items())
        )
        parts.append(
            "<table class='eiq-import-labels' style='border-collapse:collapse;line-height:1.3'>"
            f"<tr><th {_CELL} align='left'>label</th><th {_CELL}>objects</th></tr>{rows}</table>"
        )
    if report.problems:
        shown = report.problems[:_MAX_PROBLEM_ROWS]
        rows = "".join(
            f"<tr class='eiq-problem-{p.severity}'><td {_CELL}>{html.escape(p.file)}</td>"
            f"<td {_CELL}>{html.escape(p.reason)}</td><td {_CELL}>{p.severity}</td></tr>"
            for p in shown
        )
        more = len(report.problems) - len(shown)
        tail = f"<div>... and {more} more</div>" if more > 0 else ""
        parts.append(
            f"<div><b>{len(report.errors)} problem(s), {len(report.warnings)} warning(s)</b> "
            "(files with problems were skipped; fix them and import again: images already imported are skipped)</div>"
            "<table class='eiq-import-problems' style='border-collapse:collapse;line-height:1.3'>"
            f"<tr><th {_CELL} align='left'>file</th><th {_CELL} align='left'>reason</th><th {_CELL}>severity</th></tr>"
            f"{rows}</table>{tail}"
        )
    return "<div class='eiq-import-report-body'>" + "".join(parts) + "</div>"


def _text(description: str, placeholder: str, css: str, width: str = "560px") -> w.Text:
    field = w.Text(description=description, placeholder=placeholder, layout=w.Layout(width=width))
    field.style.description_width = "140px"
    field.add_class(css)
    return field


def _check(description: str, css: str, value: bool = False) -> w.Checkbox:
    box = w.Checkbox(value=value, description=description, indent=False, layout=w.Layout(width="auto"))
    box.add_class(css)
    return box


class Importer(Panel):
    """Import a dataset into a project: choose the format, fill its form, Import; the report shows below.

    Args:
        project: the open project the images go into (the import is one transaction: a failed import leaves
            it as it was).
        workspace: the folder relative dataset paths are read from.
        max_upload_mb: the largest archive the page may upload (bigger ones: give a path, or the command line).

    Callbacks:
        on_imported(reports): called with the list of `ImportReport` after a successful import.

    Example:
        >>> Importer(open_project("p.eiqp"))    # doctest: +SKIP
    """

    title = "Import dataset"

    def __init__(
        self, project: Project, workspace: str | os.PathLike = ".", *, max_upload_mb: float = DEFAULT_MAX_UPLOAD_MB
    ):
        self.project = project
        self.workspace = Path(workspace).expanduser().resolve()
        self.max_upload_bytes = int(max_upload_mb * 1024 * 1024)
        self.reports: list[ImportReport] = []
        self.on_imported: Callable[[list[ImportReport]], Any] | None = None

        self.format = w.ToggleButtons(options=[(label, key) for key, label in FORMATS.items()], value="sample")
        self.format.style.button_width = "140px"
        self.format.add_class("eiq-import-format")
        self.forms = {
            "sample": self._sample_form(),
            "voc": self._voc_form(),
            "folders": self._folders_form(),
            "tfds": self._tfds_form(),
            "upload": self._upload_form(),
            "script": w.HTML(_SCRIPT_NOTE.format(project=html.escape(project.path.name))),
        }
        self.form = w.VBox([])
        self.options = self._options_row()
        self.import_button = w.Button(description="Import", button_style="primary", icon="download")
        self.import_button.add_class("eiq-import-start")
        self.import_button.on_click(self.guarded(lambda _: self.start()))
        self.stop_button = w.Button(description="Stop", icon="stop")
        self.stop_button.add_class("eiq-import-stop")
        self.stop_button.on_click(lambda _: self.job.stop() if self.busy else None)
        self.actions = w.HBox([self.import_button, self.stop_button])
        self.report_view = w.HTML("")
        self.report_view.add_class("eiq-import-report")
        super().__init__(
            [
                w.HTML(f"<div>Into <b>{html.escape(project.path.name)}</b></div>"),
                self.format,
                self.form,
                self.options,
                self.actions,
                self.report_view,
            ]
        )
        self.add_class("eiq-import")
        self.format.observe(lambda _: self._show_form(), "value")
        self._show_form()

    # -- forms ----------------------------------------------------------------------------------

    def _sample_form(self) -> w.Widget:
        self.sample = w.RadioButtons(options=[(text, key) for key, text in SAMPLES.items()], value="digits")
        self.sample.layout.width = "720px"
        self.sample.add_class("eiq-import-sample")
        return w.VBox(
            [
                w.HTML("New here? Import one of these datasets, written from data that ships with the toolkit:"),
                self.sample,
            ]
        )

    def _voc_form(self) -> w.Widget:
        self.voc_path = _text("Dataset", "VOCtrainval_14-Jul-2008.tar or a folder", "eiq-import-voc-path")
        self.voc_test_path = _text("Test dataset", "optional: VOCtest_06-Nov-2007.tar", "eiq-import-voc-test")
        self.difficult = _check("Load difficult labels", "eiq-import-difficult")
        self.truncated = _check("Load truncated labels", "eiq-import-truncated")
        return w.VBox(
            [
                w.HTML(
                    "A VOCdevkit tar or folder, or your own folder with <code>Annotations/*.xml</code> and "
                    "<code>JPEGImages/*.jpg</code>. The test dataset, if given, goes to the test group."
                ),
                self.voc_path,
                self.voc_test_path,
                w.HBox([self.difficult, self.truncated]),
            ]
        )

    def _folders_form(self) -> w.Widget:
        self.folders_path = _text("Root folder", "imgs (or a tar/zip of it)", "eiq-import-folders-path")
        return w.VBox(
            [
                w.HTML(
                    "The root holds <code>train/</code> and <code>test/</code>; their subfolders name the labels "
                    "(<code>train/cat/cat.jpg</code>). Images directly in a folder have no label."
                ),
                self.folders_path,
            ]
        )

    def _tfds_form(self) -> w.Widget:
        from ..datasets.tfds_features import list_verified

        verified = [row["name"] for row in list_verified()]
        self.tfds_name = w.Combobox(
            value="mnist", options=verified, description="Dataset", ensure_option=False, layout=w.Layout(width="420px")
        )
        self.tfds_name.style.description_width = "140px"
        self.tfds_name.add_class("eiq-import-tfds-name")
        self.tfds_task = w.Dropdown(options=["classification", "detection"], description="Task")
        self.tfds_task.style.description_width = "140px"
        self.tfds_task.add_class("eiq-import-tfds-task")
        self.train_split = _text("Train split", "100%", "eiq-import-train-split", "420px")
        self.train_split.value = "100%"
        self.test_split = _text("Test split", "100%", "eiq-import-test-split", "420px")
        self.test_split.value = "100%"
        self.data_dir = _text("Data dir", "default: ~/tensorflow_datasets", "eiq-import-data-dir")
        self.download = _check("Download the dataset if it is not prepared", "eiq-import-download")
        self.image_feature = _text("Image feature", "found automatically", "eiq-import-image-feature", "420px")
        self.label_feature = _text("Label feature", "found automatically", "eiq-import-label-feature", "420px")
        self.bbox_feature = _text("Boxes feature", "found automatically", "eiq-import-bbox-feature", "420px")
        advanced = w.Accordion(
            [w.VBox([self.image_feature, self.label_feature, self.bbox_feature])], titles=("Advanced TFDS settings",)
        )
        return w.VBox(
            [
                w.HTML(
                    "A verified dataset, or any name from the "
                    "<a href='https://www.tensorflow.org/datasets/catalog/overview' target='_blank'>TFDS catalog</a>."
                    " Splits: <code>60%</code>, <code>100</code> (the first 100), <code>200:300</code>, "
                    "<code>train[:80%]</code>."
                ),
                self.tfds_name,
                self.tfds_task,
                self.train_split,
                self.test_split,
                self.data_dir,
                self.download,
                advanced,
            ]
        )

    def _upload_form(self) -> w.Widget:
        self.upload = w.FileUpload(accept=",".join(ARCHIVE_SUFFIXES), multiple=False, description="Archive")
        self.upload.add_class("eiq-import-upload")
        self.upload_format = w.Dropdown(options=[("Pascal VOC", "voc"), ("Structured folders", "folders")])
        self.upload_format.description = "Layout"
        self.upload_format.add_class("eiq-import-upload-format")
        mb = self.max_upload_bytes / (1024 * 1024)
        return w.VBox(
            [
                w.HTML(
                    f"Upload a .tar, .tar.gz or .zip of a dataset (at most {mb:g} MB; larger datasets: give their path "
                    "in the VOC or Structured folders form, or use the command line)."
                ),
                w.HBox([self.upload, self.upload_format]),
            ]
        )

    def _options_row(self) -> w.Widget:
        self.group = w.Dropdown(
            options=[("as the dataset says", "keep"), ("train", "train"), ("test", "test")], description="Group"
        )
        self.group.add_class("eiq-import-group")
        self.duplicates = w.Dropdown(
            options=[("skip", "skip"), ("keep", "keep")], value="skip", description="Duplicates"
        )
        self.duplicates.add_class("eiq-import-duplicates")
        self.strict = _check("Stop at the first bad file (keep nothing)", "eiq-import-strict")
        self.verify = _check("Decode every image (slower)", "eiq-import-verify")
        return w.HBox([self.group, self.duplicates, self.strict, self.verify])

    def _show_form(self) -> None:
        key = self.format.value
        self.form.children = [self.forms[key]]
        shown = None if key != "script" else "none"
        self.options.layout.display = shown
        self.actions.layout.display = shown

    # -- importing ------------------------------------------------------------------------------

    def _path(self, field: w.Text, what: str) -> Path:
        text = field.value.strip()
        if not text:
            raise InputError(f"give the {what} (a path on the machine running the kernel)")
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.workspace / path
        if not path.exists():
            raise InputError(f"{what} {path} does not exist; check the path (relative paths start at {self.workspace})")
        return path

    def _common(self) -> dict[str, Any]:
        return {
            "group": None if self.group.value == "keep" else self.group.value,
            "duplicates": self.duplicates.value,
            "strict": self.strict.value,
            "decode": self.verify.value,
        }

    def _plan(self) -> list[Callable[[Project, Progress], ImportReport]]:
        """The imports the form asks for, checked now (bad input fails before any work starts)."""
        from ..datasets.folders import import_folders
        from ..datasets.voc import import_voc

        common = self._common()
        key = self.format.value
        if key == "voc":
            train = self._path(self.voc_path, "dataset")
            test = self._path(self.voc_test_path, "test dataset") if self.voc_test_path.value.strip() else None
            flags = {"difficult": self.difficult.value, "truncated": self.truncated.value}
            steps = [lambda p, pr: import_voc(train, p, progress=pr, **flags, **common)]
            if test is not None:
                steps.append(lambda p, pr: import_voc(test, p, progress=pr, **flags, **{**common, "group": "test"}))
            return steps
        if key == "folders":
            root = self._path(self.folders_path, "root folder")
            return [lambda p, pr: import_folders(root, p, progress=pr, **common)]
        if key == "tfds":
            return [self._tfds_step(common)]
        if key == "sample":
            return [self._sample_step(self.sample.value, common)]
        if key == "upload":
            return [self._upload_step(common)]
        raise InputError("this choice imports nothing: run the script shown from a command line")

    def _tfds_step(self, common: dict[str, Any]) -> Callable[[Project, Progress], ImportReport]:
        from ..datasets import tfds
        from ..datasets.tfds_splits import split_parts

        name = self.tfds_name.value.strip()
        if not name:
            raise InputError("give a TFDS dataset name, for example mnist")
        for side, field in (("train", self.train_split), ("test", self.test_split)):
            try:
                split_parts(field.value.strip() or "100%", side)
            except InputError as exc:
                raise InputError(f"{side} split: {exc}") from None
        options = {
            "task": self.tfds_task.value,
            "train_split": self.train_split.value.strip() or "100%",
            "test_split": self.test_split.value.strip() or "100%",
            "data_dir": self.data_dir.value.strip() or None,
            "download": self.download.value,
            "image_feature": self.image_feature.value.strip() or None,
            "label_feature": self.label_feature.value.strip() or None,
            "bbox_feature": self.bbox_feature.value.strip() or None,
        }

        def step(project: Project, progress: Progress) -> ImportReport:
            try:
                return tfds.import_tfds(name, project, progress=progress, **options, **common)
            except InputError as exc:
                # the engine words its advice for the command line; say it with this form's controls
                text = str(exc).replace("drop --no-download", "tick 'Download the dataset'")
                raise InputError(text.replace("pass --data-dir to", "give the Data dir of")) from None

        return step

    def _sample_step(self, which: str, common: dict[str, Any]) -> Callable[[Project, Progress], ImportReport]:
        from ..datasets import samples
        from ..datasets.folders import import_folders
        from ..datasets.voc import import_voc

        def step(project: Project, progress: Progress) -> ImportReport:
            with tempfile.TemporaryDirectory(prefix="eiq-sample-") as folder:
                progress.message(f"writing the {which} sample")
                if which == "digits":
                    samples.write_digits_folders(Path(folder) / "digits")
                    return import_folders(Path(folder) / "digits", project, progress=progress, **common)
                tar = Path(folder) / "shapes.tar"
                samples.write_shapes_voc(tar)
                return import_voc(tar, project, progress=progress, **common)

        return step

    def _upload_step(self, common: dict[str, Any]) -> Callable[[Project, Progress], ImportReport]:
        from ..datasets.folders import import_folders
        from ..datasets.voc import import_voc

        if not self.upload.value:
            raise InputError("choose an archive to upload first (Archive button)")
        item = self.upload.value[0]
        name = str(item["name"])
        size = int(item.get("size") or len(item["content"]))
        if size > self.max_upload_bytes:
            raise InputError(
                f"{name} is {size / 1048576:.1f} MB, over the {self.max_upload_bytes / 1048576:g} MB upload limit; "
                "give its path in the VOC or Structured folders form instead"
            )
        suffix = next((s for s in ARCHIVE_SUFFIXES if name.lower().endswith(s)), None)
        if suffix is None:
            raise InputError(f"{name} is not an archive: upload a {', '.join(ARCHIVE_SUFFIXES)} file")
        content = bytes(item["content"])
        importer = import_voc if self.upload_format.value == "voc" else import_folders

        def step(project: Project, progress: Progress) -> ImportReport:
            with tempfile.TemporaryDirectory(prefix="eiq-upload-") as folder:
                path = Path(folder) / (Path(name).name or f"upload{suffix}")  # its own name, no folders
                path.write_bytes(content)
                report = importer(path, project, progress=progress, **common)
            report.source = name  # the report names the file the user chose, not the temporary copy
            return report

        return step

    def start(self) -> None:
        """Start the import the form describes (in the background); the report shows when it ends.

        Raises:
            InputError: the form is incomplete or names a missing file (nothing was started).
        """
        steps = self._plan()
        path = self.project.path
        self.report_view.value = ""

        def work(progress: Progress) -> list[ImportReport]:
            # its own connection: the page keeps reading the project while this one writes
            with open_project(path) as writer, writer.transaction():
                return [step(writer, progress) for step in steps]

        self.run(work, on_done=self._done, busy=[self.import_button, self.format])

    def _done(self, reports: list[ImportReport]) -> None:
        self.reports = reports
        self.report_view.value = "".join(report_html(r) for r in reports)
        images = sum(r.images for r in reports)
        problems = sum(len(r.errors) for r in reports)
        kind = "warning" if problems else "ok"
        tail = f"; {problems} file(s) with problems skipped (see the table)" if problems else ""
        self.say(f"imported {images} image(s) into {self.project.path.name}{tail}", kind)
        if self.upload.value:
            self.upload.value = ()
        if self.on_imported is not None:
            self.on_imported(reports)
