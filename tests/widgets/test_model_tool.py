"""The Model Tool: open a model and read its layers, quantization and weights; select layers; convert; profile;
the plugins screen; netron served offline for the graph view."""

import urllib.request

import numpy as np
import pytest
from convert.tiny_sources import sources  # noqa: F401  (pytest finds fixtures by name)

from eiq_lab.convert.registry import convert
from eiq_lab.widgets import ModelTool, Plugins
from eiq_lab.widgets.netron_view import NetronServer


@pytest.fixture(scope="module")
def int8_model(sources, tmp_path_factory):  # noqa: F811
    path = tmp_path_factory.mktemp("tool") / "tiny_int8.tflite"
    convert(sources.h5, path, {"quantize": True, "samples": str(sources.calibration), "num_samples": 16})
    return path


def test_open_shows_summary_layers_quantization_and_histogram(int8_model):
    tool = ModelTool(int8_model, graph=False)
    assert "eiq-error" not in tool.status.value
    assert "quantized" in tool.summary.value and "tiny_int8.tflite" in tool.summary.value
    assert tool.table.value.count("CONV_2D") == 2
    conv = next(name for name in tool.layer.options if tool.info.layer(name).type == "CONV_2D")
    tool.layer.value = conv
    assert "per-channel (axis 0, 8 channels)" in tool.details.value
    layer = tool.info.layer(conv)
    assert sum(tool.hist_bars.y) == layer.stats.count == layer.params
    assert len(tool.hist_bars.x) == 50


def test_selection_mode_offers_weighted_layers_and_reports_the_choice(sources):  # noqa: F811
    chosen = []
    tool = ModelTool(sources.h5, select=True, graph=False)
    tool.on_selection = chosen.append
    assert list(tool.selection.options) == ["conv1", "conv2", "scores"]
    tool.selection.value = ("conv1", "scores")
    assert chosen[-1] == ["conv1", "scores"] == tool.selected_layers


def test_a_bad_file_is_reported_and_the_open_model_stays(int8_model, tmp_path):
    tool = ModelTool(int8_model, graph=False)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00\x01not a model")
    tool.path_box.value = str(junk)
    tool.open_button.click()
    assert "eiq-error" in tool.status.value
    assert tool.info.path == int8_model  # the model already open is still shown


def test_convert_form_writes_the_file_and_reports_errors(sources, tmp_path):  # noqa: F811
    tool = ModelTool(sources.h5, graph=False)
    form = tool.convert
    form.output.value = str(tmp_path / "out.onnx")
    form.button.click()
    assert "eiq-error" in form.status.value and "must end in .tflite" in form.status.value
    form.output.value = str(tmp_path / "out_int8.tflite")
    form.quantize.value = True
    form.samples.value = str(sources.calibration)
    form.per_tensor.value = True
    form.button.click()
    form.job.wait(300)
    out = tmp_path / "out_int8.tflite"
    assert out.is_file() and str(out) in form.result.value
    assert tool.path_box.value == str(out)
    tool.open_model(out)
    kernels = [t for layer in tool.info.layers if layer.type == "CONV_2D" for t in layer.weights if len(t.shape) == 4]
    assert kernels and all(t.quantization == "per-tensor" for t in kernels)


def test_profile_view_charts_layers_types_and_totals(int8_model):
    tool = ModelTool(int8_model, graph=False)
    view = tool.profile
    view.runs.value = 3
    view.button.click()
    profile = view.job.wait(300)
    assert len(view.layer_bars.x) == len(profile.layers) > 0
    np.testing.assert_allclose(view.layer_bars.y, [layer.avg_ns / 1e3 for layer in profile.layers])
    view.statistic.value = "share (%)"
    np.testing.assert_allclose(sum(view.layer_bars.y), 100 * profile.layers_ns / profile.total_ns, rtol=1e-6)
    assert "execution_time (us)" in view.totals.value
    assert "CONV_2D" in view.type_bars.x
    assert "original layers" in view.mapping.value


def test_plugins_screen_lists_readiness_and_refuses_a_missing_wheel(tmp_path):
    screen = Plugins()
    names = [p.name for p in screen.plugins]
    assert {"tensorflow", "onnx2tf", "rtm"} <= set(names)
    text = " ".join(card.children[0].children[1].value for card in screen.cards.children)
    assert "[ready]" in text and "[needs setup]" in text
    screen.wheel.value = str(tmp_path / "missing.whl")
    screen.install_button.click()
    with pytest.raises(Exception):  # noqa: B017  (the panel shows the engine's own error)
        screen.job.wait(60)
    assert "eiq-error" in screen.status.value and "missing.whl" in screen.status.value


def test_netron_server_serves_the_model_offline(int8_model):
    server = NetronServer(int8_model)
    try:
        page = urllib.request.urlopen(server.url).read().decode()
        assert '<meta name="file" content="data/tiny_int8.tflite">' in page
        assert '<meta name="version" content="0.0.0">' in page  # unpackaged: netron sends no telemetry
        data = urllib.request.urlopen(server.url + "data/tiny_int8.tflite").read()
        assert data == int8_model.read_bytes()
        for hostile in ("../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "__init__.py"):
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(server.url + hostile)
            assert refused.value.code == 404
    finally:
        server.stop()
