"""Pruning, clustering and QAT wrappers on a tiny MobileNet-like model that learned scikit-learn digits,
and on a real MobileNetV2: schedules, preserved zeros and clusters, weight round trips, int8 TFLite."""

from __future__ import annotations

import re

import numpy as np
import pytest

from eiq_lab import framework
from eiq_lab.errors import InputError
from eiq_lab.train import optimize
from eiq_lab.train.phases import Phase, rebuild

PRUNABLE = ["conv1", "pw", "predictions"]


def tiny_model():
    """Conv-BN-ReLU6, depthwise-BN-ReLU6, pointwise-BN-ReLU6, pooling, dropout, softmax: MobileNet in small."""
    keras = framework.keras()
    layers = keras.layers
    inputs = keras.Input((16, 16, 1), name="image")
    x = layers.Conv2D(16, 3, strides=2, padding="same", name="conv1")(inputs)
    x = layers.ReLU(6.0, name="relu1")(layers.BatchNormalization(name="bn1")(x))
    x = layers.DepthwiseConv2D(3, padding="same", name="dw")(x)
    x = layers.ReLU(6.0, name="relu2")(layers.BatchNormalization(name="bn2")(x))
    x = layers.Conv2D(32, 1, name="pw")(x)
    x = layers.ReLU(6.0, name="relu3")(layers.BatchNormalization(name="bn3")(x))
    x = layers.Dropout(0.1, name="dropout")(layers.GlobalAveragePooling2D(name="pool")(x))
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="tiny")


def fit(model, data, *, epochs=1, rate=1e-3, callbacks=(), samples=None, eager=False):
    keras = framework.keras()
    x, y = data
    if samples is not None:
        x, y = x[:samples], y[:samples]
    model.compile(keras.optimizers.Adam(rate), "sparse_categorical_crossentropy", ["accuracy"], run_eagerly=eager)
    history = model.fit(x, y, batch_size=32, epochs=epochs, callbacks=list(callbacks), verbose=0)
    return history.history["accuracy"][-1]


def unnumbered(name):
    return re.sub(r"_\d+", "", name.split("/")[-1])


def predict(model, x):
    return model(x, training=False).numpy()


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits drawn at 16x16, values 0..1."""
    from sklearn.datasets import load_digits

    data = load_digits()
    images = (data.images / 16.0).astype("float32").repeat(2, axis=1).repeat(2, axis=2)[..., None]
    return images, data.target


@pytest.fixture(scope="module")
def trained(digits):
    """The tiny model after a few epochs: it has learned something (and is never changed by a test)."""
    framework.keras().utils.set_random_seed(0)
    model = tiny_model()
    assert fit(model, digits, epochs=6, rate=1e-2) > 0.6
    return model


def test_select_layers_defaults_names_and_refusals(trained):
    assert optimize.select_layers(trained, None, "prune") == PRUNABLE
    assert optimize.select_layers(trained, [], "cluster") == PRUNABLE
    assert optimize.select_layers(trained, ["predictions", "conv1"], "prune") == ["conv1", "predictions"]
    # conv1 has 144 kernel weights: too few for 150 clusters, left out unless named
    assert optimize.select_layers(trained, None, "cluster", clusters=150) == ["pw", "predictions"]
    with pytest.raises(InputError, match="144 kernel weights, not more than 150 clusters"):
        optimize.select_layers(trained, ["conv1"], "cluster", clusters=150)
    with pytest.raises(InputError, match=r"no layer named 'nope'; layers that can be pruned: conv1, pw, predictions"):
        optimize.select_layers(trained, ["pw", "nope"], "prune")
    with pytest.raises(InputError, match=r"'dw' \(DepthwiseConv2D\) cannot be pruned.*conv1, pw, predictions"):
        optimize.select_layers(trained, ["dw"], "prune")
    with pytest.raises(InputError, match=r"'bn1' \(BatchNormalization\) cannot be clustered"):
        optimize.select_layers(trained, ["bn1"], "cluster")
    with pytest.raises(InputError, match="kind must be one of prune, cluster"):
        optimize.select_layers(trained, None, "quantize")


def test_pruning_reaches_final_sparsity_on_chosen_layers_only(trained, digits):
    before = trained.get_weights()
    pruned = optimize.prune_wrap(
        trained, final_sparsity=0.6, begin_step=0, end_step=40, frequency=10, layers=["pw", "predictions"]
    )
    fit(pruned, digits, callbacks=optimize.prune_callbacks())  # 57 steps, past the end step
    report = optimize.sparsity_report(pruned, ["pw", "predictions"])
    assert report["sparsity"] == pytest.approx(0.6, abs=0.05)
    assert set(report["layers"]) == {"pw", "predictions"}
    assert optimize.sparsity_report(pruned, ["conv1"])["sparsity"] == 0.0
    stripped = optimize.strip(pruned)
    assert [type(layer).__name__ for layer in stripped.layers] == [type(layer).__name__ for layer in trained.layers]
    assert optimize.sparsity_report(stripped, ["pw", "predictions"]) == report
    # the wrapped copy trained alone: the input model is unchanged
    assert all(np.array_equal(a, b) for a, b in zip(before, trained.get_weights()))


def test_pruning_schedule_is_checked(trained):
    def wrap(**changes):
        arguments = {"final_sparsity": 0.5, "begin_step": 0, "end_step": 10, "frequency": 5, **changes}
        return optimize.prune_wrap(trained, **arguments)

    with pytest.raises(InputError, match=r"pruning end step \(4\) must be after begin step \(8\)"):
        wrap(begin_step=8, end_step=4)
    with pytest.raises(InputError, match="between 0 and 1"):
        wrap(final_sparsity=1.0)
    with pytest.raises(InputError, match="frequency must be an integer >= 1; received 0"):
        wrap(frequency=0)
    with pytest.raises(InputError, match="begin step must be an integer >= 0"):
        wrap(begin_step=-1)
    # the guide's example: end step 4 with frequency 5 never prunes
    assert optimize.scheduled_sparsity(0.5, 0, 4, 5) == 0.0
    assert optimize.scheduled_sparsity(0.5, 0, 10, 5) == 0.5
    assert optimize.scheduled_sparsity(0.5, 0, 10, 5, steps=5) == pytest.approx(0.5 * (1 - 0.5**3))
    with pytest.warns(UserWarning, match="sparsity of 0.000, not 0.5.*set the end step to 5"):
        wrap(end_step=4)


def test_clustered_kernels_hold_at_most_n_values(trained, digits):
    clustered = optimize.cluster_wrap(trained, clusters=4)
    fit(clustered, digits)
    stripped = optimize.strip(clustered)
    assert [type(layer).__name__ for layer in stripped.layers] == [type(layer).__name__ for layer in trained.layers]
    for name in PRUNABLE:
        assert optimize.distinct_values(stripped, name) <= 4
        assert optimize.distinct_values(clustered, name) <= 4
    assert optimize.distinct_values(stripped, "dw", "depthwise_kernel") == 144  # not clustered
    with pytest.raises(InputError, match="no weight 'bias'; its kernels: kernel"):
        optimize.distinct_values(stripped, "pw", "bias")


PHASES = [
    Phase("prune", {"final_sparsity": 0.5, "begin_step": 0, "end_step": 20, "frequency": 5}),
    Phase("cluster", {"clusters": 6, "preserve_sparsity": True}),
    Phase("qat", {"preserve": "prune_cluster"}),
]


@pytest.fixture(scope="module")
def chain(trained, digits):
    """Beyond eIQ Portal: pruning, sparsity-preserving clustering, then QAT preserving both (PCQAT),
    each phase wrapping the model the previous one ended with, as the trainer does."""
    models, ended = [], []
    model = trained
    # pruning runs past its end step (20 steps), clustering fine-tunes briefly, QAT for an epoch
    for phase, samples, eager in zip(PHASES, (640, 320, None), (True, True, False)):
        model = phase.wrap(model)
        extra = optimize.prune_callbacks() if phase.kind == "prune" else ()
        accuracy = fit(model, digits, callbacks=extra, samples=samples, eager=eager)
        models.append(model)
        ended.append([np.array(w) for w in model.get_weights()])
    assert accuracy > 0.6
    return models, ended


def kernels(model):
    """Each prunable layer's kernel values as the model computes with them (zeros of QAT masks applied)."""
    out = {}
    for layer in optimize.strip(model).layers:
        name = getattr(layer, "layer", layer).name  # a QAT wrapper holds its layer's kernel
        if name in PRUNABLE:
            out[name] = next(w.numpy() for w in layer.weights if w.name.split("/")[-1] == "kernel:0")
    return out


def test_sparsity_preserving_clustering_keeps_the_zeros(chain, digits):
    (pruned, clustered, _), _ = chain
    assert optimize.sparsity_report(pruned)["sparsity"] == pytest.approx(0.5, abs=0.02)
    zeros = {name: kernel == 0 for name, kernel in kernels(pruned).items()}
    for name, kernel in kernels(clustered).items():
        assert np.all(kernel[zeros[name]] == 0), name
        assert np.unique(kernel).size <= 6
    # without it, the zero centroid (k-means++ picks one) moves off zero at the first steps
    unpreserved = optimize.cluster_wrap(pruned, clusters=6)
    fit(unpreserved, digits, samples=64, eager=True)
    assert optimize.sparsity_report(unpreserved)["sparsity"] < 0.1


def test_qat_keeps_the_zeros_and_clusters_of_earlier_phases(chain):
    (pruned, _, qat), _ = chain
    zeros = {name: kernel == 0 for name, kernel in kernels(pruned).items()}
    for name, kernel in kernels(qat).items():
        assert np.all(kernel[zeros[name]] == 0), name
    # Dense kernels keep 6 values; Conv2D kernels keep 6 per output channel (int8 scales are per channel)
    assert optimize.distinct_values(qat, "predictions") <= 6
    pointwise = kernels(qat)["pw"]
    assert all(np.unique(pointwise[..., c]).size <= 6 for c in range(32))


def test_rebuild_replays_the_phases_from_the_weights_each_ended_with(chain, trained, digits):
    models, ended = chain
    x = digits[0][:64]
    rebuilt = rebuild(trained, PHASES, ended)
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt.get_weights(), ended[-1]))
    np.testing.assert_array_equal(predict(rebuilt, x), predict(models[-1], x))


def test_stripped_collaborative_qat_model_saves_and_loads(chain, digits, tmp_path):
    keras = framework.keras()
    x = digits[0][:64]
    qat = chain[0][-1]
    final = optimize.strip(qat)  # default QAT wrappers holding the same values
    assert final is not qat
    assert {type(layer).__name__ for layer in final.layers} >= {"QuantizeWrapperV2", "QuantizeLayer"}
    np.testing.assert_allclose(predict(final, x), predict(qat, x), atol=1e-6)
    with optimize.custom_objects_scope():
        final.save(tmp_path / "model.h5")
        loaded = keras.models.load_model(tmp_path / "model.h5", compile=False)
    np.testing.assert_allclose(predict(loaded, x), predict(qat, x), atol=1e-6)


@pytest.mark.parametrize(
    "phase",
    [
        Phase("prune", {"final_sparsity": 0.5, "begin_step": 0, "end_step": 8, "frequency": 2}),
        Phase("cluster", {"clusters": 8, "layers": ["pw", "predictions"]}),
        Phase("qat"),
    ],
    ids=lambda phase: phase.kind,
)
def test_wrapped_weights_load_into_a_fresh_wrapping(trained, digits, phase):
    wrapped = phase.wrap(trained)
    extra = optimize.prune_callbacks() if phase.kind == "prune" else []
    fit(wrapped, digits, samples=160, callbacks=extra, eager=True)  # 5 steps: pruning under way, not done
    if phase.kind == "prune":  # the schedule is where scheduled_sparsity says it is
        expected = optimize.scheduled_sparsity(0.5, 0, 8, 2, steps=5)
        assert optimize.sparsity_report(wrapped)["sparsity"] == pytest.approx(expected, abs=0.01)
    saved = [np.array(w) for w in wrapped.get_weights()]
    rebuilt = rebuild(trained, [phase], [saved])
    # the same variables in the same order (Keras numbers the QAT input layer's name per process)
    assert [(unnumbered(w.name), w.shape) for w in rebuilt.weights] == [
        (unnumbered(w.name), w.shape) for w in wrapped.weights
    ]
    assert all(np.array_equal(a, b) for a, b in zip(rebuilt.get_weights(), saved))
    x = digits[0][:64]
    np.testing.assert_array_equal(predict(rebuilt, x), predict(wrapped, x))


def test_qat_model_converts_to_int8_tflite_that_runs_in_litert(chain, digits):
    from ai_edge_litert.interpreter import Interpreter

    tf = framework.tf()
    x, y = digits
    qat = optimize.strip(chain[0][-1])
    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(0, 1000, 10))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    interpreter = Interpreter(model_content=converter.convert())
    interpreter.allocate_tensors()
    source, target = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert source["dtype"] == np.int8 and target["dtype"] == np.int8
    float_tensors = [t["name"] for t in interpreter.get_tensor_details() if t["dtype"] == np.float32]
    assert not float_tensors
    scale, zero = source["quantization"]
    chosen = np.arange(0, 1797, 18)
    found = []
    for i in chosen:
        interpreter.set_tensor(
            source["index"], np.clip(np.round(x[i : i + 1] / scale + zero), -128, 127).astype(np.int8)
        )
        interpreter.invoke()
        found.append(int(interpreter.get_tensor(target["index"])[0].argmax()))
    keras_labels = predict(qat, x[chosen]).argmax(axis=1)
    assert np.mean(np.array(found) == keras_labels) >= 0.9
    # not degenerate: well above the 10 % of chance (the fixture trains only briefly, and its accuracy varies
    # with the order tests run in; agreement with the Keras QAT model above is the conversion check)
    assert np.mean(np.array(found) == y[chosen]) > 0.3


def test_models_and_phases_that_cannot_be_wrapped(trained):
    keras = framework.keras()
    inputs = keras.Input((16, 16, 1))
    nested = keras.Model(inputs, trained(inputs))
    with pytest.raises(InputError, match="needs a flat model; layer 'tiny' is a nested model"):
        optimize.qat_wrap(nested)
    with pytest.raises(InputError, match="needs a Keras 2"):
        optimize.cluster_wrap(object(), clusters=4)
    with pytest.raises(InputError, match="number of clusters must be an integer >= 2; received 1"):
        optimize.cluster_wrap(trained, clusters=1)
    with pytest.raises(InputError, match="with sparsity preserved must be an integer >= 3"):
        optimize.cluster_wrap(trained, clusters=2, preserve_sparsity=True)
    with pytest.raises(InputError, match="initialization must be one of kmeans\\+\\+, linear, density"):
        optimize.cluster_wrap(trained, clusters=4, init="random")
    with pytest.raises(InputError, match="preserve must be one of None, prune, cluster, prune_cluster"):
        optimize.qat_wrap(trained, preserve="sparsity")
    with pytest.raises(InputError, match="must be one of prune, cluster, qat; received 'train'"):
        Phase("train")
    with pytest.raises(InputError, match="options do not fit cluster_wrap"):
        Phase("cluster", {"cluster": 4}).wrap(trained)
    with pytest.raises(InputError, match="order prune, cluster, qat, each at most once; received cluster, prune"):
        rebuild(trained, [Phase("cluster", {"clusters": 4}), Phase("prune")], [None, None])
    with pytest.raises(InputError, match=r"weights of phase 1 \(qat\) do not fit its wrapped model"):
        rebuild(trained, [Phase("qat")], [[np.zeros(3)]])
    with pytest.raises(InputError, match="'nope' is not a layer of model tiny; layers with kernels: conv1, dw, pw"):
        optimize.sparsity_report(trained, ["nope"])


def test_qat_warns_about_weights_tfmot_leaves_in_float():
    keras = framework.keras()
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.ReLU(name="relu")(keras.layers.Conv2D(4, 3, name="conv_then_relu")(inputs))
    x = keras.layers.Conv2D(4, 3, activation="relu", name="conv_relu")(x)
    outputs = keras.layers.Dense(2, name="dense")(keras.layers.Flatten()(x))
    with pytest.warns(UserWarning, match="QAT leaves the weights of conv_then_relu in float") as caught:
        optimize.qat_wrap(keras.Model(inputs, outputs))
    assert len([w for w in caught if "QAT leaves" in str(w.message)]) == 1


@pytest.mark.slow
def test_wrappers_work_on_mobilenet_v2():
    """The models users train: a tf_keras MobileNetV2 (alpha 0.35, 32x32, random weights), trained eagerly
    for a few steps (tracing its training graph alone would take longer). About 20 s: QAT wrapping alone
    takes 9 s."""
    keras = framework.keras()
    keras.utils.set_random_seed(1)
    model = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35, weights=None, classes=4)
    x = np.random.default_rng(0).random((24, 32, 32, 3), dtype=np.float32)
    data = (x, np.arange(24) % 4)
    layers = optimize.select_layers(model, None, "prune")
    assert len(layers) == 36 and "block_1_depthwise" not in layers  # 35 Conv2D and the classifier

    pruned = optimize.prune_wrap(model, final_sparsity=0.5, begin_step=0, end_step=3, frequency=1)
    fit(pruned, data, epochs=3, callbacks=optimize.prune_callbacks(), eager=True)  # 3 steps
    assert optimize.sparsity_report(pruned)["sparsity"] == pytest.approx(0.5, abs=0.01)

    clustered = optimize.cluster_wrap(model, clusters=8, layers=layers[-4:])
    fit(clustered, data, eager=True)
    stripped = optimize.strip(clustered)
    assert all(optimize.distinct_values(stripped, name) <= 8 for name in layers[-4:])

    qat = optimize.qat_wrap(pruned, preserve="prune")
    fit(qat, data, eager=True)
    assert sum(type(layer).__name__ == "QuantizeWrapperV2" for layer in qat.layers) > 100
    assert optimize.sparsity_report(qat)["sparsity"] == pytest.approx(0.5, abs=0.01)
