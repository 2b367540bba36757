"""The base MobileNets: tiny builds with random weights, ImageNet rules (offline, deterministic) and
weights files that fit or do not."""

from __future__ import annotations

import urllib.request

import numpy as np
import pytest

from eiq_lab import framework
from eiq_lab.errors import EiqError, InputError
from eiq_lab.models import registry
from eiq_lab.models.mobilenet import MobileNetV1, MobileNetV2, MobileNetV3Large, MobileNetV3Small


@pytest.mark.parametrize(
    ("name", "shape", "params"),
    [
        ("mobilenet_v1", (48, 64, 3), {"alpha": 0.25}),
        ("mobilenet_v2", (32, 32, 1), {"alpha": 0.35, "dropout": 0.0}),
        ("mobilenet_v3_small", (32, 32, 3), {"alpha": 0.35}),
        ("mobilenet_v3_large", (40, 40, 3), {"alpha": 0.35, "minimalistic": True}),
    ],
)
def test_each_base_model_builds_small_with_random_weights(name, shape, params):
    keras = framework.keras()
    plugin = registry().get(name)
    assert plugin.is_base() and plugin.get_task() == "classification"
    model = plugin.get_model(shape, 5, None, params)
    assert tuple(model.input_shape) == (None, *shape)
    batch = np.random.default_rng(0).uniform(-1, 1, (2, *shape)).astype(np.float32)
    out = model(batch, training=False).numpy()
    assert out.shape == (2, 5)
    assert np.all(out >= 0) and np.allclose(out.sum(axis=1), 1.0, atol=1e-5)
    assert model.layers[-1].name == "predictions" and model.layers[-1].get_config()["activation"] == "softmax"
    # flat: the backbone's layers are the model's own (quantization-aware training cannot wrap nested models)
    assert not any(isinstance(layer, keras.Model) for layer in model.layers)
    assert not any(type(layer).__name__ == "Rescaling" for layer in model.layers)  # one preprocess for all


def test_defaults_and_published_weights():
    assert MobileNetV1().validate_params()["alpha"] == 0.5
    assert MobileNetV2().validate_params() == {"alpha": 0.5, "dropout": 0.2}
    # v3 has no ImageNet weights at 0.5: its default is the nearest alpha that has
    assert MobileNetV3Small().validate_params() == {"alpha": 0.75, "dropout": 0.2, "minimalistic": False}
    v1 = MobileNetV1().get_pretrained_dimensions()
    assert [d["shape"] for d in v1] == [(s, s, 3) for s in (128, 160, 192, 224)]
    assert v1[0]["alphas"] == [0.25, 0.5, 0.75, 1.0] and v1[0]["weights"] == "imagenet" and v1[0]["source"]
    assert [d["shape"][0] for d in MobileNetV2().get_pretrained_dimensions()] == [96, 128, 160, 192, 224]
    assert MobileNetV3Large().get_pretrained_dimensions()[0]["alphas"] == [0.75, 1.0]
    meta = MobileNetV3Large().get_metadata()
    assert meta["normalization"] == "signed" and meta["preprocess"] == "x/127.5-1" and meta["input_order"] == "HWC"


@pytest.mark.parametrize(
    ("shape", "weights", "message"),
    [
        ((16, 64, 3), None, r"H, W >= 32 and C in \(1, 3\) for mobilenet_v2; received \(16, 64, 3\)"),
        ((64, 64, 2), None, r"C in \(1, 3\).*received \(64, 64, 2\)"),
        ((64, 64, 1), "imagenet", r"C = 3 for ImageNet weights.*received \(64, 64, 1\).*weights=None"),
        ((64, 64), None, r"input size must be \(H, W, C\).*received \(64, 64\)"),
    ],
)
def test_input_shape_checks(shape, weights, message):
    with pytest.raises(InputError, match=message):
        MobileNetV2().get_model(shape, 3, weights, {"alpha": 0.35})


@pytest.mark.parametrize(
    ("plugin", "params", "message"),
    [
        (MobileNetV3Small(), {"alpha": 0.35}, r"ImageNet weights only for alpha 0.75, 1.0; received alpha 0.35"),
        (MobileNetV3Large(), {"alpha": 0.75, "minimalistic": True}, r"minimalistic has ImageNet weights only"),
    ],
)
def test_imagenet_without_published_weights_is_refused(plugin, params, message):
    with pytest.raises(InputError, match=message):
        plugin.get_model((96, 96, 3), 3, "imagenet", params)


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """No network and an empty Keras cache: any download fails at once (a proxy on a closed port)."""
    home = tmp_path / "home"
    (home / ".keras").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    for variable in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(variable, "http://127.0.0.1:9")
    for variable in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(variable, "")
    monkeypatch.setattr(urllib.request, "_opener", None)  # urlopen builds its opener (and proxies) again
    return home / ".keras" / "models"


def test_offline_imagenet_names_the_file_and_where_to_put_it(offline):
    plugin = MobileNetV2()
    with pytest.raises(EiqError) as caught:
        plugin.get_model((96, 96, 3), 3, "imagenet", {"alpha": 0.35})
    message = str(caught.value)
    name = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5"
    assert plugin.weights_file_name({"alpha": 0.35}, (96, 96, 3)) == name
    assert f"fetch {name} (https://storage.googleapis.com/" in message
    assert f"place it in {offline}/" in message and "weights=None" in message
    assert not (offline / name).exists()


def test_imagenet_at_an_unpublished_size_is_explained(offline):
    note = r"ImageNet weights for 128, 160, 192, 224 px.*for 96x96 the 224x224"
    with pytest.warns(UserWarning, match=note), pytest.raises(EiqError, match=r"mobilenet_2_5_224_tf_no_top\.h5"):
        MobileNetV1().get_model((96, 96, 3), 3, "imagenet", {"alpha": 0.25})


@pytest.fixture(scope="module")
def saved_v1(tmp_path_factory):
    """A mobilenet_v1 (alpha 0.25, 32x32x3, 3 classes) and its weights in three formats."""
    folder = tmp_path_factory.mktemp("weights")
    model = MobileNetV1().get_model((32, 32, 3), 3, None, {"alpha": 0.25})
    files = {ext: folder / f"v1{ext}" for ext in (".h5", ".weights.h5", ".keras")}
    model.save_weights(files[".h5"])
    model.save_weights(files[".weights.h5"])
    model.save(files[".keras"])
    return model, files


@pytest.mark.parametrize("ext", [".h5", ".weights.h5", ".keras"])
def test_a_matching_weights_file_loads(saved_v1, ext):
    model, files = saved_v1
    loaded = MobileNetV1().get_model((32, 32, 3), 3, str(files[ext]), {"alpha": 0.25})
    for expected, actual in zip(model.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(expected, actual)


@pytest.mark.parametrize(
    ("ext", "plugin", "classes", "alpha"),
    [
        (".h5", MobileNetV1(), 4, 0.25),  # another number of classes: neither the whole model nor the backbone
        (".h5", MobileNetV2(), 3, 0.35),
        (".weights.h5", MobileNetV1(), 4, 0.25),  # would load the backbone alone, silently: refused
        (".weights.h5", MobileNetV1(), 3, 0.5),
    ],
)
def test_a_weights_file_of_another_model_is_refused(saved_v1, ext, plugin, classes, alpha):
    _, files = saved_v1
    with pytest.raises(InputError) as caught:
        plugin.get_model((32, 32, 3), classes, files[ext], {"alpha": alpha})
    message = str(caught.value)
    assert f"weights file {files[ext]} does not match {plugin.get_name()} (alpha {alpha}" in message
    assert "mismatch" in message.lower() or "incompatible" in message.lower()


def test_a_backbone_only_h5_file_loads_into_the_backbone(tmp_path):
    keras = framework.keras()
    backbone = keras.applications.MobileNet(
        input_shape=(32, 32, 3), alpha=0.25, include_top=False, weights=None, pooling="avg"
    )
    path = tmp_path / "no_top.h5"
    backbone.save_weights(path)
    model = MobileNetV1().get_model((32, 32, 3), 3, path, {"alpha": 0.25})
    np.testing.assert_array_equal(
        model.get_layer("conv1").get_weights()[0], backbone.get_layer("conv1").get_weights()[0]
    )
