"""The model registry: built-ins, user and base plugin folders (with sibling imports and broken files),
entry points, and name lookup."""

from __future__ import annotations

import importlib.metadata
import sys

import pytest

from eiq_lab.errors import InputError, NotFoundError
from eiq_lab.models import ImageClassificationInterface, registry
from eiq_lab.models.registry import ModelRegistry, load_entry_point, normalize_name, plugin_folders

CLASSIFIERS = ["mobilenet_v1", "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"]
BUILTINS = [*CLASSIFIERS, "ssd_mobilenet_v2"]

TINY = '''
"""A user model importing a sibling module of its family, as the guide shows."""
from classification.image.Tiny import utils

from eiq_lab.models import ImageClassificationInterface


class TinyNet(ImageClassificationInterface):
    def get_exposed_parameters(self):
        return [{"name": "width", "type": "int", "default": utils.WIDTH, "min": 1, "max": 64}]

    def get_allowed_dimensions(self):
        return [(32, 32, 3)]

    def get_model(self, input_shape, num_classes, weights, named_params):
        return utils.build(input_shape, num_classes, named_params["width"])


class _Helper(ImageClassificationInterface):
    """Private: not a plugin."""
'''

UTILS = """
WIDTH = 4


def build(input_shape, num_classes, width):
    from eiq_lab import framework

    keras = framework.keras()
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(width, 3)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="softmax")(x))
"""


def test_builtins_only(monkeypatch):
    reg = registry(refresh=True)
    assert reg.names() == BUILTINS
    assert reg.names("classification") == CLASSIFIERS and reg.names("detection") == ["ssd_mobilenet_v2"]
    assert reg.problems == []
    entry = reg.entry("mobilenet_v2")
    assert entry.origin == "builtin" and entry.base and entry.source == "eiq_lab.models.mobilenet"
    assert registry() is reg  # cached


@pytest.mark.parametrize("spelling", ["mobilenet_v2", "MobileNet-V2", "mobilenet v2", " MOBILENET_V2 "])
def test_names_are_case_and_separator_insensitive(spelling):
    assert registry().get(spelling).get_name() == "mobilenet_v2"
    assert spelling in registry()


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(NotFoundError, match=r"no model named 'resnet'; valid: mobilenet_v1, mobilenet_v2, "):
        registry().get("resnet")
    with pytest.raises(NotFoundError, match=r"no detection model named 'mobilenet_v2'; valid: ssd_mobilenet_v2$"):
        registry().get("mobilenet_v2", task="detection")
    with pytest.raises(InputError, match="task must be one of classification, detection; received 'segmentation'"):
        registry().get("mobilenet_v2", task="segmentation")
    assert normalize_name("SSD-MobileNet v2") == "ssd_mobilenet_v2"


def test_a_user_folder_with_a_sibling_import_and_broken_plugins(plugin_folder, monkeypatch):
    plugin_folder("classification/image/Tiny/tiny.py", TINY)
    plugin_folder("classification/image/Tiny/utils.py", UTILS)
    plugin_folder("classification/image/Broken/syntax.py", "def oops(:\n    pass\n")
    plugin_folder("classification/image/Broken/missing.py", "import no_such_module_for_eiq\n")
    plugin_folder(
        "classification/image/Broken/nameless.py",
        """
        from eiq_lab.models import ImageClassificationInterface

        class Nameless(ImageClassificationInterface):
            def get_name(self):
                raise RuntimeError("no name today")
        """,
    )
    plugin_folder(
        "classification/image/Broken/clash.py",
        """
        from eiq_lab.models import ImageClassificationInterface

        class Clash(ImageClassificationInterface):
            def get_name(self):
                return "MobileNet_V2"
        """,
    )
    monkeypatch.setenv("EIQ_PLUGINS_USER", str(plugin_folder.root))
    reg = registry(refresh=True)
    assert reg.names() == [*BUILTINS, "tiny_net"]
    entry = reg.entry("Tiny-Net")
    assert entry.origin == "user" and not entry.base and entry.source.endswith("tiny.py")
    plugin = reg.get("tiny_net", task="classification")
    assert plugin.validate_params() == {"width": 4}  # the default came from the sibling module
    model = plugin.get_model((32, 32, 3), 2, None, plugin.validate_params())
    assert model.output_shape == (None, 2)

    problems = {p.source.rsplit("/", 1)[-1].split(" ")[0]: p.message for p in reg.problems}
    assert set(problems) == {"syntax.py", "missing.py", "nameless.py", "clash.py"}, reg.problems
    assert problems["syntax.py"].startswith("SyntaxError")
    assert "no_such_module_for_eiq" in problems["missing.py"]
    assert "RuntimeError: no name today" in problems["nameless.py"]
    assert "'MobileNet_V2' is already taken by eiq_lab.models.mobilenet" in problems["clash.py"]
    assert reg.entry("mobilenet_v2").origin == "builtin"  # the first registered keeps the name
    with pytest.raises(NotFoundError, match=r"\(4 plugin\(s\) failed to load: see `eiq models`\)"):
        reg.get("nothing")


def test_the_guides_variables_and_import_path(plugin_folder, tmp_path, monkeypatch):
    plugin_folder(
        "detection/boxes/Boxes/finder.py",
        """
        from deepview.trainer.extensions.interfaces import ObjectDetectionInterface

        class BoxFinder(ObjectDetectionInterface):
            def is_base(self):
                return False
        """,
    )
    monkeypatch.setenv("DEEVIEW_PLUGINS_USER", str(plugin_folder.root))
    base = tmp_path / "base_models"
    (base / "classification" / "image" / "VGG").mkdir(parents=True)
    (base / "classification" / "image" / "VGG" / "vgg.py").write_text(
        "from eiq_lab.models import ImageClassificationInterface\n\n\n"
        "class VGG16(ImageClassificationInterface):\n    pass\n"
    )
    monkeypatch.setenv("DEEPVIEW_PLUGINS_BASE", str(base))
    reg = registry(refresh=True)
    assert reg.problems == []
    assert reg.names("detection") == ["ssd_mobilenet_v2", "box_finder"] and reg.entry("box_finder").origin == "user"
    assert reg.entry("vgg16").origin == "base" and reg.entry("vgg16").base
    assert [origin for origin, _, _ in plugin_folders()] == ["base", "user"]


def test_editing_a_plugin_and_refreshing_reads_it_again(plugin_folder, monkeypatch):
    source = "from eiq_lab.models import ImageClassificationInterface\n\n\n"
    source += "class {name}(ImageClassificationInterface):\n    pass\n"
    path = plugin_folder("classification/image/Fam/net.py", source.format(name="FirstNet"))
    monkeypatch.setenv("EIQ_PLUGINS_USER", str(plugin_folder.root))
    assert "first_net" in registry(refresh=True)
    path.write_text(source.format(name="SecondNet"))
    names = registry(refresh=True).names()
    assert "second_net" in names and "first_net" not in names


def test_a_missing_folder_is_a_problem_not_a_crash(tmp_path, monkeypatch):
    monkeypatch.setenv("EIQ_PLUGINS_USER", str(tmp_path / "nowhere"))
    reg = registry()  # the variable changed: scanned again without refresh
    assert reg.names() == BUILTINS
    assert len(reg.problems) == 1 and "EIQ_PLUGINS_USER names" in reg.problems[0].message


ENTRY_MODULE = """
from eiq_lab.models import ImageClassificationInterface, ObjectDetectionInterface


class EntryNet(ImageClassificationInterface):
    pass


class EntryBoxes(ObjectDetectionInterface):
    pass


class Ignored:
    pass
"""


def _install_distribution(tmp_path, monkeypatch, entry_points: str) -> None:
    """A module and an installed distribution (a .dist-info folder) declaring entry points, on sys.path."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "eiqtest_entry_models.py").write_text(ENTRY_MODULE)
    info = site / "eiqtest_entry_models-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: eiqtest-entry-models\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "eiqtest_entry_models", raising=False)


def test_entry_points_add_classes_and_modules_and_report_bad_ones(tmp_path, monkeypatch):
    _install_distribution(
        tmp_path,
        monkeypatch,
        "[eiq_lab.models]\n"
        "one = eiqtest_entry_models:EntryNet\n"
        "bad = eiqtest_entry_models:Ignored\n"
        "gone = eiqtest_no_such_module:Net\n",
    )
    reg = registry(refresh=True)
    assert reg.names() == [*BUILTINS, "entry_net"]
    entry = reg.entry("entry_net")
    assert entry.origin == "entry point" and "one = eiqtest_entry_models:EntryNet" in entry.source
    assert "eiqtest-entry-models" in entry.source
    messages = {p.source.split(" = ")[0].removeprefix("entry point "): p.message for p in reg.problems}
    assert set(messages) == {"bad", "gone"}
    assert "neither a model plugin class" in messages["bad"]
    assert "eiqtest_no_such_module" in messages["gone"]


def test_an_entry_point_may_name_a_module(tmp_path, monkeypatch):
    _install_distribution(tmp_path, monkeypatch, "[eiq_lab.models]\nall = eiqtest_entry_models\n")
    reg = ModelRegistry(folders=[])
    assert reg.names("classification")[-1] == "entry_net" and reg.names("detection") == [
        "ssd_mobilenet_v2",
        "entry_boxes",
    ]
    point = importlib.metadata.EntryPoint("x", "eiqtest_entry_models:EntryNet", "eiq_lab.models")
    assert [cls.__name__ for cls in load_entry_point(point)] == ["EntryNet"]
    assert issubclass(load_entry_point(point)[0], ImageClassificationInterface)
    empty = importlib.metadata.EntryPoint("y", "json", "eiq_lab.models")
    with pytest.raises(InputError, match="module json defines no subclass"):
        load_entry_point(empty)
