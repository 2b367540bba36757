"""The plugin interfaces: every default a plugin inherits, the input-shape check and parameter validation."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab.errors import InputError
from eiq_lab.models import ImageClassificationInterface, ObjectDetectionInterface
from eiq_lab.models.interfaces import parse_shape, resolve_weights, snake_case


class MyVGG16Net(ImageClassificationInterface):
    """Overrides nothing: every answer is a default."""


class BoxFinder(ObjectDetectionInterface):
    pass


class Tunable(ImageClassificationInterface):
    def get_exposed_parameters(self):
        return [
            {"name": "width", "type": "int", "default": 8, "min": 2, "max": 64, "help": "filters"},
            {"name": "rate", "type": "float", "default": 0.25, "min": 0.0, "max": 0.9},
            {"name": "bn", "type": "bool", "default": True},
            {"name": "act", "type": "str", "default": "relu"},
            {"name": "alpha", "type": "choice", "default": 0.5, "choices": [0.25, 0.5, 1.0]},
            {"name": "head", "type": "choice", "default": "dense", "choices": ["dense", "conv"]},
        ]


def test_classification_defaults():
    plugin = MyVGG16Net()
    assert plugin.get_name() == "my_vgg16_net"
    assert plugin.get_task() == "classification"
    assert plugin.is_base() is False
    assert plugin.get_exposed_parameters() == []
    assert plugin.get_optimizers() == ["adam", "sgd", "adagrad", "adadelta", "rmsprop", "adamax", "nadam"]
    assert plugin.get_losses() == ["categorical_crossentropy"]
    assert plugin.get_metrics() == ["accuracy"]
    assert plugin.get_loss_named_params() == {}
    assert plugin.get_pretrained_dimensions() == []
    assert plugin.get_allowed_dimensions() == [(s, s, 3) for s in (96, 128, 160, 192, 224)]
    for support in (plugin.get_qat_support(), plugin.get_ptq_support()):
        assert support == [
            {
                "framework": "tflite",
                "per_channel": True,
                "per_tensor": True,
                "input_types": ["int8", "uint8", "float32"],
                "output_types": ["int8", "uint8", "float32"],
            }
        ]
    meta = plugin.get_metadata()
    assert meta["normalization"] == "signed" and meta["preprocess"] == "x/127.5-1" and meta["input_order"] == "HWC"


def test_get_model_must_be_written_by_the_plugin():
    with pytest.raises(NotImplementedError, match=r"'my_vgg16_net'.*get_model\(self, input_shape, num_classes"):
        MyVGG16Net().get_model((128, 128, 3), 2, None, {})


def test_detection_defaults_and_codec_messages():
    plugin = BoxFinder()
    assert plugin.get_task() == "detection" and plugin.get_name() == "box_finder"
    assert plugin.get_qat_support() == []
    assert plugin.get_ptq_support()[0]["per_tensor"] is True
    with pytest.raises(NotImplementedError, match=r"'box_finder'.*encoder"):
        plugin.encoder()
    with pytest.raises(NotImplementedError, match=r"'box_finder'.*decoder"):
        plugin.decoder()


def test_the_default_preprocess_is_signed_normalization():
    from eiq_lab import framework

    tf = framework.tf()
    image = tf.constant(np.array([[[0, 127, 255]]], dtype=np.uint8))
    out = MyVGG16Net().get_preprocess_function()(image)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), [[[-1.0, 127 / 127.5 - 1, 1.0]]], atol=1e-6)


def test_check_input_shape_accepts_allowed_and_refuses_the_rest():
    plugin = MyVGG16Net()
    assert plugin.check_input_shape([128, 128, 3]) == (128, 128, 3)
    assert plugin.check_input_shape(tuple(np.array([96, 96, 3]))) == (96, 96, 3)
    with pytest.raises(
        InputError, match=r"input size must be \(H, W, C\) with .*\(96, 96, 3\).*received \(100, 100, 3\)"
    ):
        plugin.check_input_shape((100, 100, 3))
    for bad in [(128, 128), (128, 128, 3, 1), (128.0, 128, 3), (0, 128, 3), "128,128,3", 5, (True, 1, 3)]:
        with pytest.raises(InputError, match=r"input size must be \(H, W, C\).*received"):
            plugin.check_input_shape(bad)
    assert parse_shape((1, 2, 3)) == (1, 2, 3)


def test_validate_params_fills_defaults_and_converts_strings():
    plugin = Tunable()
    assert plugin.validate_params(None) == {
        "width": 8,
        "rate": 0.25,
        "bn": True,
        "act": "relu",
        "alpha": 0.5,
        "head": "dense",
    }
    values = plugin.validate_params({"width": "16", "rate": "0.5", "bn": "false", "alpha": "1", "head": "CONV"})
    assert values["width"] == 16 and values["rate"] == 0.5 and values["bn"] is False
    assert values["alpha"] == 1.0 and values["head"] == "conv"
    assert plugin.validate_params({"width": 4.0})["width"] == 4


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"widht": 3}, r"unknown model parameter\(s\) 'widht' for model 'tunable'; valid: width, rate, bn, act"),
        ({"width": 1}, r"'width' of 'tunable' must be at least 2; received 1"),
        ({"width": 100}, r"'width' .* must be at most 64; received 100"),
        ({"width": 2.5}, r"'width' .* must be of type int; received 2.5"),
        ({"width": True}, r"'width' .* must be of type int"),
        ({"rate": "lots"}, r"'rate' .* must be of type float; received 'lots'"),
        ({"rate": float("nan")}, r"'rate' .* must be of type float"),
        ({"bn": "maybe"}, r"'bn' .* must be of type bool; received 'maybe'"),
        ({"act": 3}, r"'act' .* must be of type str"),
        ({"alpha": 0.3}, r"'alpha' .* must be one of 0.25, 0.5, 1.0; received 0.3"),
        ({"head": "mlp"}, r"'head' .* must be one of dense, conv; received 'mlp'"),
    ],
)
def test_validate_params_errors_name_the_problem(params, message):
    with pytest.raises(InputError, match=message):
        Tunable().validate_params(params)


def test_a_model_without_parameters_says_so():
    with pytest.raises(InputError, match="valid: none"):
        MyVGG16Net().validate_params({"alpha": 0.5})


def test_resolve_weights(tmp_path):
    assert resolve_weights(None) is None and resolve_weights("random") is None and resolve_weights("None") is None
    assert resolve_weights("ImageNet") == "imagenet"
    path = tmp_path / "w.h5"
    path.write_bytes(b"")
    assert resolve_weights(str(path)) == path
    (tmp_path / "ckpt-3.index").write_bytes(b"")
    assert resolve_weights(tmp_path / "ckpt-3") == tmp_path / "ckpt-3"
    with pytest.raises(InputError, match=r"weights file .*nothere.h5 does not exist; weights must be 'imagenet'"):
        resolve_weights(tmp_path / "nothere.h5")
    with pytest.raises(InputError, match="weights must be"):
        resolve_weights(3)


def test_snake_case():
    assert snake_case("MobileNetV2") == "mobile_net_v2"
    assert snake_case("SSDLite") == "ssd_lite"
    assert snake_case("tiny") == "tiny"
