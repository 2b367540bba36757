"""A detector trained for a few epochs on the shapes project, shared by the export tests."""

import pytest
from train.conftest import shapes_template  # noqa: F401  (pytest finds fixtures by name; tests/ is on sys.path)


@pytest.fixture(scope="session")
def detector_project(shapes_template, tmp_path_factory):  # noqa: F811
    """A copy of the shapes project holding one finished detection run (ssd_mobilenet_v2 a0.35, 96x96)."""
    from eiq_lab.project import open_project
    from eiq_lab.train import Trainer, TrainingSettings

    path = tmp_path_factory.mktemp("detector") / "shapes.eiqp"
    path.write_bytes(shapes_template.read_bytes())
    settings = TrainingSettings(
        task="detection", alpha=0.35, input_size=(96, 96, 3), weights="random", epochs=3, batch_size=8,
        learning_rate=1e-3, augmentation="none", seed=1,
    )  # fmt: skip
    with open_project(path) as project:
        Trainer(project, settings).fit()
    return path
