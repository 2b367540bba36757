"""The workflow notebooks (notebooks/01_*.ipynb ... 10_*.ipynb) executed in order with nbclient on one shared
workspace, as a user runs them: each runs without error and shows what the user relies on.
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from eiq_lab.project import open_project
from eiq_lab.train.drafts import load_draft

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
NAMES = [path.stem for path in NOTEBOOKS]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 600  # seconds; training on a busy 2-core machine is the slowest cell


class Workspace:
    """One folder the notebooks share, and each notebook executed once, in order, in a kernel of its own."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.executed: dict[str, nbformat.NotebookNode] = {}
        self.failed: dict[str, str] = {}
        tfds = folder.parent / "no-tfds"  # an empty TFDS folder: notebook 01 shows its TFDS import without running it
        tfds.mkdir(exist_ok=True)
        self.env = {
            **os.environ,
            "EIQ_WORKSPACE": str(folder),
            "EIQ_HOME": str(folder.parent / "eiq-home"),
            "TFDS_DATA_DIR": str(tfds),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        }

    def run(self, name: str) -> nbformat.NotebookNode:
        """The notebook `name` executed (with every notebook before it, first)."""
        for earlier in NAMES[: NAMES.index(name) + 1]:
            if earlier in self.failed:  # a later notebook needs what it makes: fail at once, not after a rerun
                pytest.fail(f"{earlier} failed, and {name} runs on what it makes: {self.failed[earlier]}")
            if earlier not in self.executed:
                notebook = nbformat.read(ROOT / "notebooks" / f"{earlier}.ipynb", as_version=4)
                client = NotebookClient(
                    notebook,
                    timeout=CELL_TIMEOUT,
                    kernel_name="python3",
                    resources={"metadata": {"path": str(self.folder)}},  # the kernel's working folder
                )
                try:
                    client.execute(env=self.env)  # raises CellExecutionError naming the cell that failed
                except Exception as exc:
                    self.failed[earlier] = f"{type(exc).__name__}: {str(exc)[-2000:]}"
                    raise
                self.executed[earlier] = notebook
        return self.executed[name]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    folder = tmp_path_factory.mktemp("notebooks") / "eiq-workspace"
    folder.mkdir()
    return Workspace(folder)


def text_of(notebook: nbformat.NotebookNode) -> str:
    """Everything the notebook printed, in order."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            if output.output_type == "stream" and output.name == "stdout":
                parts.append(output.text)
            elif output.output_type in ("execute_result", "display_data"):
                parts.append(output.data.get("text/plain", ""))
    return "".join(parts)


def image_outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [
        output
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.output_type in ("execute_result", "display_data") and "image/png" in output.data
    ]


def png_width(output: dict) -> int:
    import base64
    import struct

    return struct.unpack(">I", base64.b64decode(output.data["image/png"])[16:20])[0]


def test_the_workflow_notebooks_are_all_there():
    assert NAMES == [
        "01_import",
        "02_curate_and_annotate",
        "03_augment",
        "04_select_model",
        "05_train",
        "06_validate",
        "07_quantize_and_export",
        "08_bring_your_own_model",
        "09_model_runner",
        "10_profile",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_is_committed_clean_and_says_its_command(path):
    notebook = nbformat.read(path, as_version=4)
    nbformat.validate(notebook)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert all(cell.outputs == [] and cell.execution_count is None for cell in code), "outputs must be cleared"
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    commands = "".join(cell.source for cell in notebook.cells if cell.cell_type == "markdown")
    assert re.search(r"```bash\n(eiq|eiq-\w+|curl) ", commands), "the step's eiq command, as markdown"
    assert 'os.environ.get("EIQ_WORKSPACE", "eiq-workspace")' in code[0].source


def _distributions(requirements: list[str], extras: dict[str, list[str]], seen: set[str] | None = None) -> set[str]:
    """The distribution names `requirements` install, self-references (``eiq-lab[tf,vela]``) expanded."""
    seen = set() if seen is None else seen
    names = set()
    for requirement in requirements:
        match = re.match(r"\s*([A-Za-z0-9_.-]+)(?:\[([^\]]+)\])?", requirement)
        name = match.group(1).lower().replace("_", "-")
        if name in ("eiq-lab", "."):
            for extra in (match.group(2) or "").split(","):
                if extra and extra not in seen:
                    seen.add(extra)
                    names |= _distributions(extras[extra], extras, seen)
        else:
            names.add(name)
    return names


def test_binder_installs_what_the_notebooks_use():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    lines = [line.strip() for line in (ROOT / "binder" / "requirements.txt").read_text().splitlines()]
    (install,) = [line for line in lines if line and not line.startswith("#")]
    chosen = re.fullmatch(r"-e \.\[([\w,]+)\]", install).group(1).split(",")
    assert set(chosen) <= set(extras), f"binder asks for extras pyproject.toml does not define: {chosen}"
    runtime = (ROOT / "binder" / "runtime.txt").read_text().strip()
    assert runtime == "python-3.11" and project["requires-python"] == ">=3.11"
    installed = _distributions(project["dependencies"], extras) | _distributions([f".[{','.join(chosen)}]"], extras)
    code = "\n".join(
        cell.source
        for path in [*NOTEBOOKS, ROOT / "notebooks" / "portal.ipynb"]
        if path.exists()
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
    )
    # what the notebooks import directly, and what the engine parts they call need
    needed = {
        module: [name.lower() for name in packages_distributions().get(module, [module])]
        for module in set(re.findall(r"^\s*(?:from|import) (\w+)", code, re.M))
        if module not in sys.stdlib_module_names and module != "eiq_lab"
    }
    uses = {
        "eiq_lab.train": ["tensorflow", "tf-keras"],
        "eiq_lab.runner": ["aiohttp", "requests"],
        "compile_for_ethos_u": ["ethos-u-vela"],
        'engine="vela"': ["ethos-u-vela"],
        "eiq_lab.widgets": ["ipywidgets", "bqplot", "voila"],
        "eiq_lab.convert import registry": ["onnx", "tf2onnx"],  # the converter's ONNX plugin is listed ready
    }
    needed |= {marker: names for marker, names in uses.items() if marker in code}
    for what, names in needed.items():
        assert any(name in installed for name in names), f"{what} needs {names}; binder installs {sorted(installed)}"


@pytest.mark.slow
@pytest.mark.parametrize("name", NAMES)
def test_notebook_runs(workspace, name):
    notebook = workspace.run(name)
    # every panel a notebook shows is a live widget
    for cell in notebook.cells:
        if cell.cell_type == "code" and re.search(r"from eiq_lab\.widgets[\w.]* import", cell.source):
            assert any(WIDGET_VIEW in output.get("data", {}) for output in cell.outputs), cell.source
    CHECKS[name](workspace.folder, notebook, text_of(notebook))


def check_import(folder: Path, notebook, text: str) -> None:
    # scikit-learn's digits: 1,797 images; 5 at the root, 20 % of the other 1,792 in test/
    assert "imported 1797 image(s)" in text
    assert "train 1434, test 358, no group 5" in text
    assert "imported 60 image(s)" in text and "train 48, test 12" in text  # 60 VOC images, val = 20 %
    assert "no mnist in" in text  # TFDS shown, not run: no local dataset
    with open_project(folder / "digits.eiqp") as project:
        assert project.count_images() == 1797
        assert project.count_images(annotated=False) == 5


def check_curate(folder: Path, notebook, text: str) -> None:
    from sklearn.datasets import load_digits

    truth = load_digits().target
    with open_project(folder / "digits.eiqp") as project:
        assert project.count_images(annotated=False) == 0
        assert project.info()["groups"]["none"] == 0  # the holdout put every image in train or test
        # the five images the folders left at the root, without a label (their source has no folder)
        roots = {i.source: project.annotations_with_image(i.id) for i in project.images() if "/" not in i.source}
    assert len(roots) == 5
    for source, pairs in roots.items():
        index = int(source.removeprefix("digit_").removesuffix(".png"))
        assert pairs == [(str(truth[index]), None)]
    with open_project(folder / "shapes.eiqp") as shapes:
        first = shapes.images(group="train", limit=1)[0]
        assert ("circle", (10.0, 10.0, 30.0, 30.0)) in shapes.annotations_with_image(first.id)
    assert "unlabeled: train 0, test 0, none 0, total 0" in text
    assert png_width(image_outputs(notebook)[0]) == 5 * 64  # the five unlabeled digits, side by side


def check_augment(folder: Path, notebook, text: str) -> None:
    with open_project(folder / "digits.eiqp") as project:
        steps = project.pipeline_operators("digits")
        assert [step["op"] for step in steps] == ["rotate", "random_brightness", "random_contrast"]
        assert load_draft(project).augmentation == "digits"
    assert png_width(image_outputs(notebook)[-1]) == 9 * 64  # the original and eight augmented versions


def check_select_model(folder: Path, notebook, text: str) -> None:
    assert "mobilenet_v2 alpha 0.5 input (128, 128, 3)" in text  # the wizard's balanced NPU choice (guide 3.7.5)
    with open_project(folder / "digits.eiqp") as project:
        draft = load_draft(project)
    assert (draft.model, draft.alpha, draft.input_size, draft.weights) == ("mobilenet_v2", 0.35, (32, 32, 3), "random")
    assert draft.augmentation == "digits"  # the model choice kept the augmentation notebook 03 chose


def check_train(folder: Path, notebook, text: str) -> None:
    with open_project(folder / "digits.eiqp") as project:
        (run,) = project.runs()
        checkpoints = project.checkpoints(run.id)
    assert run.state == "finished" and [c.epoch for c in checkpoints] == [1, 2, 3]
    accuracy = checkpoints[-1].metrics["test_accuracy"]
    assert f"run {run.id}: finished, test accuracy {accuracy:.1%}" in text
    assert accuracy > 0.25  # ten classes: guessing gives 10 %


def check_validate(folder: Path, notebook, text: str) -> None:
    with open_project(folder / "digits.eiqp") as project:
        tests = project.info()["groups"]["test"]
    assert "accuracy at threshold 0.5: " in text and f"of {tests} test images" in text
    loose, strict = (float(x) for x in re.findall(r"accuracy at threshold 0\.[58]: ([\d.]+)%", text))
    assert strict <= loose  # a higher threshold sends more predictions to the background column
    assert re.search(r"\d+ test image\(s\) of \d predicted as \d", text)


def check_export(folder: Path, notebook, text: str) -> None:
    models = folder / "models"
    int8, h5 = models / "digits_int8.tflite", models / "digits.h5"
    assert (models / "labels.txt").read_text().split() == [str(d) for d in range(10)]
    assert int8.stat().st_size * 3 < h5.stat().st_size  # int8 weights: about a quarter of float32
    with open_project(folder / "digits.eiqp") as project:
        records = {Path(r.path).name: r for r in project.exports()}
    assert records["digits_int8.tflite"].settings["type"] == "int8"
    assert records["digits_int8.tflite"].settings["per_channel"] is False
    assert records["digits.h5"].settings["type"] == "float32"
    assert records["digits_int8.tflite"].parity["top1_agreement"] >= 0.8
    assert re.search(r"test accuracy: float [\d.]+%, int8 [\d.]+%", text)


def check_byom(folder: Path, notebook, text: str) -> None:
    models = folder / "models"
    assert (models / "byom.tflite").exists() and (models / "byom_int8.tflite").exists()
    assert (models / "vela" / "byom_int8_vela.tflite").exists()
    assert "digits.h5 is a h5 model" in text
    assert re.search(r"input \S+: \[1, 32, 32, 3\] int8", text)  # the converted model's input is int8, as asked
    assert "per-channel (axis 0, 16 channels)" in text  # MobileNet v2's first convolution: 16 filters, one scale each
    assert re.search(r"ethos-u65-256: [\d.]+ ms per inference \(Vela's estimate\), \d+ operators on the NPU", text)


def check_runner(folder: Path, notebook, text: str) -> None:
    sevens = len(list((folder / "digits" / "test" / "7").glob("*.png")))
    assert re.search(r"runner at http://127\.0\.0\.1:\d+/v1", text)
    assert re.search(r"\(a 7\): the runner says \d with probability", text)
    assert f"Validated Samples: {sevens}" in text  # one reference sample per test image of a 7
    assert "All outputs validate within error." in text
    assert "CONV_2D" in text  # per-operator timings from the profiling runner


def check_profile(folder: Path, notebook, text: str) -> None:
    assert re.search(r"CONV_2D +\d+ layers", text)
    assert "per inference (Vela's estimate)" in text


CHECKS = {
    "01_import": check_import,
    "02_curate_and_annotate": check_curate,
    "03_augment": check_augment,
    "04_select_model": check_select_model,
    "05_train": check_train,
    "06_validate": check_validate,
    "07_quantize_and_export": check_export,
    "08_bring_your_own_model": check_byom,
    "09_model_runner": check_runner,
    "10_profile": check_profile,
}
