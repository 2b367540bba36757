"""Training fixtures: a small learnable project (scikit-learn digits drawn at 32x32) and a user
model plugin folder with a tiny CNN, so trainer tests run in seconds."""

from __future__ import annotations

import io
import textwrap

import numpy as np
import pytest
from PIL import Image

from eiq_lab.project import create_project

DIGITS = (0, 1, 7)

TINY_PLUGIN = '''
"""A user plugin as eIQ users write them: a small CNN, imports a sibling module of its family."""

from tensorflow import keras

from classification.image.Tiny import layers_of_tiny

from eiq_lab.models import ImageClassificationInterface


class TinyCNN(ImageClassificationInterface):
    def get_name(self):
        return "tiny_cnn"

    def get_exposed_parameters(self):
        return [
            {"name": "width", "type": "int", "default": 8, "min": 2, "max": 64, "help": "filters of the first layer"},
            {"name": "dropout", "type": "float", "default": 0.25, "min": 0.0, "max": 0.9, "help": "head dropout"},
        ]

    def get_allowed_dimensions(self):
        return [(32, 32, 3), (32, 32, 1)]

    def get_model(self, input_shape, num_classes, weights, named_params):
        inputs = keras.Input(input_shape)
        x = layers_of_tiny.features(inputs, named_params["width"])
        x = keras.layers.GlobalAveragePooling2D()(x)
        x = keras.layers.Dropout(named_params["dropout"])(x)
        outputs = keras.layers.Dense(num_classes, activation="softmax", name="classes")(x)
        model = keras.Model(inputs, outputs, name="tiny_cnn")
        if weights not in (None, "imagenet"):
            model.load_weights(weights)
        return model
'''

TINY_LAYERS = """
from tensorflow import keras


def features(x, width):
    x = keras.layers.Conv2D(width, 3, padding="same", activation="relu", name="conv1")(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(2 * width, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.MaxPooling2D()(x)
    return keras.layers.Conv2D(4 * width, 3, padding="same", activation="relu", name="conv3")(x)
"""


def digit_png(pixels: np.ndarray, size: int = 32) -> bytes:
    """An 8x8 digit (0..16) as a size x size RGB PNG."""
    gray = (pixels * (255 / 16)).astype(np.uint8)
    image = Image.fromarray(gray, "L").resize((size, size), Image.Resampling.BILINEAR).convert("RGB")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def make_digits_project(path, per_class_train: int = 30, per_class_test: int = 10):
    """A project of three digit classes with full-image labels in train and test groups."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    with create_project(path) as project:
        for digit in DIGITS:
            rows = np.flatnonzero(digits.target == digit)
            for group, chunk in (
                ("train", rows[:per_class_train]),
                ("test", rows[per_class_train : per_class_train + per_class_test]),
            ):
                images = project.add_images([digit_png(digits.images[i]) for i in chunk], group)
                for image in images:
                    project.add_annotation(image, str(digit))
    return path


@pytest.fixture(scope="session")
def digits_template(tmp_path_factory):
    return make_digits_project(tmp_path_factory.mktemp("digits") / "digits.eiqp")


@pytest.fixture
def digits_path(digits_template, tmp_path):
    """A fresh copy of the digits project for one test."""
    path = tmp_path / "digits.eiqp"
    path.write_bytes(digits_template.read_bytes())
    return path


@pytest.fixture
def tiny_plugin(tmp_path, monkeypatch):
    """A user plugin folder (classification/image/Tiny) named by EIQ_PLUGINS_USER."""
    family = tmp_path / "user_models" / "classification" / "image" / "Tiny"
    family.mkdir(parents=True)
    (family / "tiny.py").write_text(textwrap.dedent(TINY_PLUGIN))
    (family / "layers_of_tiny.py").write_text(textwrap.dedent(TINY_LAYERS))
    monkeypatch.setenv("EIQ_PLUGINS_USER", str(tmp_path / "user_models"))
    from eiq_lab.models import registry

    registry(refresh=True)
    yield "tiny_cnn"
    monkeypatch.delenv("EIQ_PLUGINS_USER")
    registry(refresh=True)


def tiny_settings(**changes):
    """Settings for the tiny CNN on the digits project: random weights, 32x32, no augmentation."""
    from eiq_lab.train import TrainingSettings

    values = dict(
        model="tiny_cnn",
        input_size=(32, 32, 3),
        weights="random",
        learning_rate=3e-3,
        batch_size=10,
        epochs=2,
        augmentation="none",
        seed=7,
    )
    values.update(changes)
    return TrainingSettings.from_json(values)


@pytest.fixture(scope="session")
def shapes_template(tmp_path_factory):
    """A project of coloured shapes with known boxes (40 images, 32 train, 8 test), imported from VOC."""
    from eiq_lab.datasets.samples import write_shapes_voc
    from eiq_lab.datasets.voc import import_voc

    folder = tmp_path_factory.mktemp("shapes")
    write_shapes_voc(folder / "voc", count=40)
    path = folder / "shapes.eiqp"
    import_voc(folder / "voc", path)
    return path


@pytest.fixture
def shapes_path(shapes_template, tmp_path):
    """A fresh copy of the shapes project for one test."""
    path = tmp_path / "shapes.eiqp"
    path.write_bytes(shapes_template.read_bytes())
    return path
