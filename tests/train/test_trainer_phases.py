"""Pruning, clustering and QAT as phases of a run: the fine-tuning epochs follow training, wrappers
are stripped, the summary reports what was reached, and a QAT run converts to an int8 TFLite model."""

from __future__ import annotations

import numpy as np
import pytest

from eiq_lab import framework
from eiq_lab.project import open_project
from eiq_lab.train import Trainer, load_run_model

from .conftest import tiny_settings


def test_prune_after_training_reaches_its_sparsity(digits_path, tiny_plugin):
    prune = {"mode": "after", "sparsity": 0.6, "begin_step": 0, "end_step": 9, "frequency": 3, "epochs": 2,
             "layers": ["conv2", "conv3"]}  # fmt: skip
    with open_project(digits_path) as project:
        result = Trainer(project, tiny_settings(epochs=1, prune=prune)).fit()
        phases = [c.phase for c in project.checkpoints(result.run)]
        model = load_run_model(project, result.run)
    assert phases == ["train", "prune", "prune"]
    assert result.summary["phase_ends"] == {"train": 1, "prune": 3}
    for name in ("conv2", "conv3"):
        kernel = model.get_layer(name).get_weights()[0]
        assert np.mean(kernel == 0) == pytest.approx(0.6, abs=0.05), name
    assert np.mean(model.get_layer("conv1").get_weights()[0] == 0) < 0.05  # not selected: dense
    assert "prune_low_magnitude" not in " ".join(layer.name for layer in model.layers)


def test_clustering_leaves_at_most_n_values_per_kernel(digits_path, tiny_plugin):
    with open_project(digits_path) as project:
        result = Trainer(
            project, tiny_settings(epochs=1, cluster={"clusters": 4, "epochs": 1, "layers": ["conv3"]})
        ).fit()
        model = load_run_model(project, result.run)
    assert len(np.unique(model.get_layer("conv3").get_weights()[0])) <= 4
    assert len(np.unique(model.get_layer("conv2").get_weights()[0])) > 4
    assert result.summary["distinct_values"]["conv3"] <= 4


def test_a_qat_run_converts_to_an_int8_tflite_model(digits_path, tiny_plugin):
    from ai_edge_litert.interpreter import Interpreter

    with open_project(digits_path) as project:
        result = Trainer(project, tiny_settings(epochs=3, qat_epochs=1, learning_rate=5e-3)).fit()
        assert [c.phase for c in project.checkpoints(result.run)][-1] == "qat"
        images = [project.image(i).pil().convert("RGB").resize((32, 32)) for i in range(1, 21)]
    model = result.model
    assert any("quant" in layer.name for layer in model.layers)
    tf = framework.tf()
    x = np.stack([np.asarray(im, np.float32) / 127.5 - 1 for im in images])
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(len(x)))
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert inp["dtype"] == np.int8 and out["dtype"] == np.int8
    scale, zero = inp["quantization"]
    agree = 0
    keras_top = model.predict(x, verbose=0).argmax(1)
    for i in range(len(x)):
        interpreter.set_tensor(inp["index"], np.clip(np.round(x[i : i + 1] / scale + zero), -128, 127).astype(np.int8))
        interpreter.invoke()
        agree += int(interpreter.get_tensor(out["index"]).argmax() == keras_top[i])
    assert agree >= 18  # int8 and the QAT model agree on (nearly) every image


def test_continuing_inside_a_pruning_preserving_qat_phase_keeps_the_zeros(digits_path, tiny_plugin):
    prune = {"mode": "after", "sparsity": 0.5, "epochs": 1, "layers": ["conv2"]}
    with open_project(digits_path) as project:
        trainer = Trainer(project, tiny_settings(epochs=1, prune=prune, qat_epochs=2))
        first = trainer.fit(
            callbacks=[lambda e: trainer.stop() if e.kind == "epoch" and e.data["epoch"] == 3 else None]
        )
        assert (first.state, first.epoch) == ("stopped", 3)
        assert project.checkpoint(first.run, 3).phase == "qat"
        result = Trainer.resume(project).fit()
    assert result.state == "finished" and result.epoch == 4
    assert result.summary["sparsity"]["layers"]["conv2"]["sparsity"] == pytest.approx(0.5, abs=0.05)
