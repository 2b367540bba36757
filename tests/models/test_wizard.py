"""The wizard's table, its errors and MCU memory estimates; the footprint estimate on models small enough
to count by hand; the package imports without TensorFlow."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from eiq_lab import framework
from eiq_lab.errors import InputError
from eiq_lab.models import default_model, recommend, registry, table
from eiq_lab.models.footprint import BIAS_BYTES, BYTES_FIXED, BYTES_PER_OPERATION, estimate_int8_footprint
from eiq_lab.models.wizard import PRIORITIES, TARGETS


def test_every_cell_has_a_row_with_a_reason():
    rows = table()
    assert len(rows) == 2 * len(PRIORITIES) * len(TARGETS)
    seen = set()
    for row in rows:
        seen.add((row.task, row.priority, row.target))
        assert row.reason and row.model and row.alpha > 0
        assert len(row.input_size) == 3 and row.input_size[2] == 3
        assert row.quantization["type"] in ("int8", "float16", "float32")
        assert row.named_params == {"alpha": row.alpha}
        assert row.flash_bytes is None  # table() builds no model unless asked
        if row.task == "classification":
            assert row.available, row
            plugin = registry().get(row.model)
            plugin.validate_params(row.named_params)  # every recommended alpha is one the model offers
            plugin.check_input_shape(row.input_size, "imagenet")
            plugin.check_imagenet(plugin.validate_params(row.named_params))  # and has ImageNet weights
        else:
            assert row.model == "ssd_mobilenet_v2"
            assert row.available and not row.note, row  # tests/models/test_ssd.py checks its shapes and alphas
            assert row.quantization["output_type"] == "float32"
    assert len(seen) == len(rows)


def test_the_balanced_row_is_the_guides_recommended_setting():
    row = recommend("Classification", "BALANCED", "npu")
    assert (row.model, row.input_size, row.alpha) == ("mobilenet_v2", (128, 128, 3), 0.5)
    assert row.quantization == {
        "type": "int8",
        "per_channel": False,
        "input_type": "int8",
        "output_type": "int8",
        "qat": True,
    }
    assert "per-tensor" in row.reason
    assert default_model("classification") == "mobilenet_v2"
    assert default_model("detection") == "ssd_mobilenet_v2"
    assert recommend("classification", "accuracy", "gpu").quantization["type"] == "float32"
    assert recommend("classification", "balanced", "mcu").quantization["per_channel"] is True


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("segmentation", "balanced", "npu"), "task must be one of classification, detection; received 'segmentation'"),
        (("classification", "fast", "npu"), "priority must be one of performance, balanced, accuracy; received 'fast'"),
        (("classification", "balanced", "tpu"), "target must be one of npu, gpu, cpu, mcu; received 'tpu'"),
    ],
)
def test_unknown_values_list_the_valid_ones(args, message):
    with pytest.raises(InputError, match=message):
        recommend(*args)
    with pytest.raises(InputError, match="task must be one of"):
        default_model("segmentation")


@pytest.mark.parametrize("priority", PRIORITIES)
def test_mcu_rows_estimate_flash_and_ram(priority):
    row = recommend("classification", priority, "mcu", num_classes=10)
    assert row.flash_bytes and row.ram_bytes and "flash" in row.note
    model = registry().get(row.model).get_model(row.input_size, 10, None, row.named_params)
    kernels = sum(int(np.prod(w.shape)) for w in model.weights if len(w.shape) >= 2)
    # at least one byte per kernel weight, less than the float32 model
    assert kernels < row.flash_bytes < 4 * model.count_params()
    height, width, channels = row.input_size
    assert row.ram_bytes >= height * width * channels  # the first convolution reads the input
    assert row.ram_bytes < sum(int(np.prod(layer.output.shape[1:])) for layer in model.layers[1:])
    # fits the MCUs the reasons name
    assert row.flash_bytes < 1.1e6 and row.ram_bytes < 300e3


def test_estimate_of_a_model_counted_by_hand():
    keras = framework.keras()
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)  # 108 weights, 4 channels
    x = keras.layers.BatchNormalization()(x)  # folds into the conv's bias
    x = keras.layers.ReLU()(x)  # fused: no tensor of its own
    skip = x
    y = keras.layers.Conv2D(4, 1)(x)  # 16 weights + 4 bias
    y = keras.layers.Add()([skip, y])
    y = keras.layers.Flatten()(y)
    outputs = keras.layers.Dense(2)(y)  # 512 weights + 2 bias
    model = keras.Model(inputs, outputs)
    footprint = estimate_int8_footprint(model)
    operations = 4  # conv, conv, add, dense (batch normalization, ReLU and flatten make no operation)
    channels = 4 + 4 + 2
    expected = BYTES_FIXED + operations * BYTES_PER_OPERATION + (108 + 16 + 512) + channels * (BIAS_BYTES + 24)
    assert footprint.flash_bytes == expected
    # the skip tensor (256 bytes) lives until the add, which reads it and the second conv's output and writes a third
    assert footprint.ram_bytes == 3 * 8 * 8 * 4
    per_tensor = estimate_int8_footprint(model, per_channel=False)
    assert per_tensor.flash_bytes == expected - (channels - 3) * 24


def test_importing_the_package_loads_no_tensorflow():
    code = (
        "import sys, eiq_lab.models\n"
        "from eiq_lab.models import registry, recommend\n"
        "assert registry().names()\n"
        "assert recommend('classification', 'balanced', 'mcu', estimate=False).model\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
