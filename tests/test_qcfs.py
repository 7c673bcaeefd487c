"""The QCFS activation (snnconv.layers.QCFS): its function and gradients, saving,
parsing and conversion to IF neurons (threshold λ, initial potential λ/2)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

import snnconv  # noqa: E402
from snnconv.layers import QCFS  # noqa: E402
from snnconv.simulators import get_simulator  # noqa: E402


def test_qcfs_quantises_clips_and_shifts():
    layer = QCFS(levels=4, initial_threshold=2.0)
    x = np.array([[-1.0, 0.0, 0.2, 0.3, 1.0, 1.2, 2.5]], np.float32)
    # 2 * clip(floor(x * 4 / 2 + 1/2) / 4, 0, 1)
    np.testing.assert_allclose(np.asarray(layer(x)), [[0, 0, 0, 0.5, 1.0, 1.0, 2.0]])


def test_qcfs_gradients_pass_straight_through_the_floor():
    layer = QCFS(levels=4, initial_threshold=2.0)
    x = tf.constant([[-1.0, 0.3, 1.2, 2.5]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        h = layer(x)
        parts = [h[0, i] for i in range(4)]
    dx = np.asarray(tape.gradient(h, x))
    np.testing.assert_allclose(dx, [[0, 1, 1, 0]])
    # dh/dλ: (h - x) / λ inside (0, λ), 1 above
    per_value = [tape.gradient(p, layer.threshold.value) for p in parts]
    np.testing.assert_allclose([float(g) for g in per_value],
                               [0.0, (0.5 - 0.3) / 2, (1.0 - 1.2) / 2, 1.0], atol=1e-6)


def test_qcfs_refuses_bad_settings():
    with pytest.raises(ValueError, match="levels"):
        QCFS(levels=0)
    with pytest.raises(ValueError, match="initial_threshold"):
        QCFS(initial_threshold=0.0)


def _dense_net(levels=4, threshold=1.5):
    keras.utils.set_random_seed(0)
    inp = keras.Input((12,))
    h = keras.layers.Dense(16, name="hidden")(inp)
    h = QCFS(levels=levels, name="qcfs")(h)
    out = keras.layers.Dense(3, name="out")(h)      # logits: compared directly
    model = keras.Model(inp, out)
    model.get_layer("qcfs").threshold.assign(threshold)
    return model


def _conv_net(levels=4, threshold=0.8):
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 1))
    h = keras.layers.Conv2D(4, 3, padding="same", name="conv")(inp)
    h = keras.layers.BatchNormalization(name="bn")(h)
    h = QCFS(levels=levels, name="qcfs")(h)
    h = keras.layers.AveragePooling2D(2, name="pool")(h)
    h = keras.layers.Flatten(name="flat")(h)
    out = keras.layers.Dense(3, name="out")(h)
    model = keras.Model(inp, out)
    bn = model.get_layer("bn")
    bn.moving_mean.assign(np.full(4, 0.1, np.float32))
    bn.moving_variance.assign(np.full(4, 0.5, np.float32))
    model.get_layer("qcfs").threshold.assign(threshold)
    return model


def test_qcfs_model_saves_and_loads_safely(tmp_path):
    model = _dense_net(threshold=1.25)
    path = tmp_path / "qcfs.keras"
    model.save(path)
    loaded = snnconv.load_model(path)
    assert loaded.get_layer("qcfs").levels == 4
    assert float(loaded.get_layer("qcfs").threshold.numpy()) == 1.25
    x = np.random.default_rng(0).normal(size=(5, 12)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_parser_merges_qcfs_into_its_layer_and_its_threshold_is_the_scale():
    model = _conv_net(threshold=0.8)
    graph = snnconv.parse(model)
    conv = graph["conv"]
    assert conv.activation == "relu"
    assert conv.params["qcfs"] == {"threshold": pytest.approx(0.8), "levels": 4}
    assert "qcfs" not in [n.name for n in graph]
    x = np.random.default_rng(0).uniform(size=(20, 8, 8, 1)).astype(np.float32)
    for method in ("max", "percentile", "t_aware"):
        scales = snnconv.normalize(graph, x, method=method).scales
        assert float(scales["conv"]) == pytest.approx(0.8)


@pytest.mark.parametrize("make, shape", [(_dense_net, (12,)), (_conv_net, (8, 8, 1))])
def test_snn_at_t_equal_levels_matches_the_quantised_ann(make, shape):
    levels = 4
    model = make(levels=levels)
    rng = np.random.default_rng(2)
    x = rng.uniform(-1, 2, size=(64,) + shape).astype(np.float32)
    graph = snnconv.normalize(snnconv.parse(model), x)
    snn = snnconv.convert(graph)                     # v_init 0 everywhere else
    hidden = "hidden" if "hidden" in [n.name for n in graph] else "conv"
    assert snn.get_layer(hidden).neuron.v_init == 0.5
    readout = get_simulator("INI").simulate_batch(snn, x, levels).readout[:, -1]
    logits = readout * float(graph.scales["out"]) / levels
    ann = model.predict(x, verbose=0)
    np.testing.assert_allclose(logits, ann, rtol=1e-4, atol=1e-4)
    # not a coincidence of this input: the hidden activations are quantised and clipped
    h = keras.Model(model.inputs, model.get_layer("qcfs").output).predict(x, verbose=0)
    assert len(np.unique(h)) == levels + 1
