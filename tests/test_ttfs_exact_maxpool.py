"""``spike_code = ttfs_exact`` and max pooling of a signed (linear) signal, as in Xception
(separable conv -> BN -> max pool -> Add, no ReLU in between): the rewrite into shift
neurons, their pooled spikes and an unshifting current (snnconv.signed_max_pool); the
event simulator's predictions and logits equal the ANN's; the pooled signal is exact for
any input, not only the normalisation data; the clocked INI simulator converges to the
event-driven one as dt shrinks; a pooled signal the analog input reaches through a merge
is refused in one line; the rate code's path is unchanged."""
from __future__ import annotations

import keras
import numpy as np
import pytest

import snnconv
from snnconv.errors import UnsupportedLayerError
from snnconv.signed_max_pool import shift_signed_max_pools, signed_max_pools
from snnconv.simulators.event import layer_values, load_event_network
from snnconv.simulators.event.engine import simulate
from snnconv.simulators.ini.exact import window_steps

from helpers import make_branched_model, normalise_on_random

SHAPE = (12, 12, 3)


def _model(seed=0):
    """conv relu -> conv -> BN -> max pool 3x3/2 'same' (linear) -> + 1x1/2 conv -> ReLU
    -> conv -> max pool 2 -> ReLU (merges into the pool: a ReLU max pool of a linear
    signal) -> dense softmax. The BN's statistics are random, so it is not the identity."""
    keras.utils.set_random_seed(seed)
    L = keras.layers
    inp = keras.Input(SHAPE, name="x")
    a = L.Conv2D(6, 3, padding="same", activation="relu", name="a")(inp)
    z = L.BatchNormalization(name="bn")(L.Conv2D(8, 3, padding="same", name="z")(a))
    p = L.MaxPooling2D(3, strides=2, padding="same", name="p")(z)
    r = L.Conv2D(8, 1, strides=2, name="r")(a)
    s = L.Activation("relu", name="add_relu")(L.Add(name="add")([p, r]))
    q = L.MaxPooling2D(2, name="p2")(L.Conv2D(5, 3, name="z2")(s))
    q = L.Activation("relu", name="p2_relu")(q)
    out = L.Dense(4, activation="softmax", name="out")(L.Flatten(name="flat")(q))
    model = keras.Model(inp, out, name="signed_pool")
    rng = np.random.default_rng(seed)
    model.get_layer("bn").set_weights([rng.uniform(0.5, 1.5, 8), rng.normal(size=8),
                                       0.3 * rng.normal(size=8), rng.uniform(0.5, 2.0, 8)])
    return model


@pytest.fixture(scope="module")
def case():
    """``(model, normalised graph, x, event network)``: normalised (percentile 99.9, the
    default) on 32 random inputs."""
    model = _model()
    x = np.random.default_rng(1).uniform(0, 1, (32,) + SHAPE).astype(np.float32)
    graph = snnconv.normalize(snnconv.parse(model), x)
    event = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    return model, graph, x, event


def _logits(graph, x):
    g = graph.copy()
    g.output_node.activation = "linear"
    return np.asarray(snnconv.build_ann(g).predict(x, verbose=0))


def test_the_rewrite(case):
    _, graph, _, event = case
    assert signed_max_pools(graph) == ["p", "p2"]
    g = event.graph
    # shift neurons (relu), the pooling of their spikes, the unshift current under the
    # pool's own name (p: a current, p2: a ReLU, so neurons)
    assert [(g[n].op, g[n].activation) for n in ("p_shift", "p_shifted", "p")] == \
        [("depthwise_conv2d", "relu"), ("max_pool2d", "linear"), ("depthwise_conv2d", "linear")]
    assert (g["p2"].op, g["p2"].activation) == ("depthwise_conv2d", "relu")
    # p_shift = relu((z + s) / k), p = k * pooled - s, per channel
    k = g["p"].weights["kernel"].ravel()
    assert (k > 0).all()
    np.testing.assert_allclose(g["p_shift"].weights["kernel"].ravel(), 1 / k, rtol=1e-6)
    np.testing.assert_allclose(g["p_shift"].weights["bias"] * k, -g["p"].weights["bias"],
                               rtol=1e-6)
    w = event.windows
    assert {"p_shift", "p2_shift", "p2"} <= set(w.neurons) and "p" not in w.neurons
    assert w.spikes["p_shifted"] and not w.spikes["p"]
    # the shift neurons fit into their clock's window (here alone in it: length 1);
    # the add reads r one window later
    assert g.metadata["activation_max"]["p_shift"] == w.lengths[w.clocks["p_shift"]] == 1.0
    assert w.clocks["add"] == w.clocks["p_shift"] + 1
    assert ("add", "r") in w.delays
    # the ANN's MACs, not the rewritten graph's
    assert event.ann_macs == sum(snnconv.ann.count_macs(graph).values())
    # nothing to rewrite: the same graph; the input graph is not changed
    plain, _ = normalise_on_random(make_branched_model(0), n=8)
    assert shift_signed_max_pools(plain)[0] is plain
    assert graph["p"].op == "max_pool2d"


def test_event_predictions_and_logits_equal_the_ann(case, tmp_path):
    _, graph, x, event = case
    values = layer_values(event, x)
    logits = _logits(graph, x)
    ann = snnconv.build_ann(graph, outputs=["p", "add", "p2"])
    p, add, p2 = (np.asarray(a) for a in ann.predict(x, verbose=0))
    np.testing.assert_allclose(values["p"], p, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values["add"], add, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values["p2"], p2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(values["out"], logits, rtol=1e-5, atol=1e-5)
    assert np.min(p) < 0 < np.max(p)                 # the pooled signal is signed
    r = snnconv.evaluate(event, x, logits.argmax(axis=1), progress=False)
    assert r.accuracy == 1.0
    # saved and loaded: the rewritten graph and its windows
    again = load_event_network(event.save(tmp_path / "event.npz"))
    assert again.windows == event.windows
    np.testing.assert_array_equal(layer_values(again, x)["out"], values["out"])


def test_the_pooled_signal_is_exact_for_any_input(case):
    """Inputs far outside the normalisation data clip neurons upstream at their windows;
    the shift neurons are never clipped and p is still the max pooling of z."""
    _, _, _, event = case
    rng = np.random.default_rng(5)
    x = rng.uniform(-20, 20, (16,) + SHAPE).astype(np.float32)
    values = layer_values(event, x)
    z = values["z"]
    pooled = np.asarray(keras.ops.max_pool(z, 3, strides=2, padding="same"))
    np.testing.assert_allclose(values["p"], pooled, rtol=1e-5, atol=1e-5 * np.abs(z).max())
    _, _, _, clipped = simulate(event, x)
    assert clipped["a"].sum() > 0
    assert clipped["p_shift"].sum() == 0 and clipped["p2_shift"].sum() == 0
    assert (values["p_shift"] > 0).all()
    # windows of length 1 (clip_windows): the shift neurons fit into them as well
    clipped_net = snnconv.convert(case[1], simulator="event", spike_code="ttfs_exact",
                                  clip_windows=True)
    values = layer_values(clipped_net, x)
    pooled = np.asarray(keras.ops.max_pool(values["z"], 3, strides=2, padding="same"))
    np.testing.assert_allclose(values["p"], pooled, rtol=1e-5,
                               atol=1e-5 * np.abs(values["z"]).max())


def test_clocked_converges_to_the_event_driven(case):
    """The clocked INI simulator's logits approach the event-driven ones as dt shrinks
    (each spike is off by at most dt / 2, a shift neuron's k dt / 2 in the pooled
    signal's units); where the event-driven margin between the two best classes exceeds
    the clocked error, the predictions are the same."""
    from snnconv.simulators import get_simulator

    _, graph, x, event = case
    target = layer_values(event, x)["out"]
    errors = {}
    for dt in (0.01, 0.0025):
        snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
        steps = sum(window_steps(event.windows, dt)) + 1
        readout = get_simulator("INI").simulate_batch(snn, x, steps).readout[:, -1]
        errors[dt] = err = float(np.max(np.abs(readout - target)))
        top2 = np.sort(target, axis=1)[:, -2:]
        safe = top2[:, 1] - top2[:, 0] > 2 * err
        np.testing.assert_array_equal(readout[safe].argmax(axis=1),
                                      target[safe].argmax(axis=1))
    assert safe.mean() >= 0.5                        # at dt = 0.0025
    assert errors[0.0025] < 0.5 * errors[0.01]
    assert errors[0.0025] < 0.1 * np.abs(target).max()


def _input_reaches_the_pool():
    keras.utils.set_random_seed(3)
    L = keras.layers
    inp = keras.Input((8, 8, 2), name="x")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    b = L.Conv2D(4, 1, name="b")(inp)
    c = L.Conv2D(4, 3, padding="same", name="c")(a)
    p = L.MaxPooling2D(2, name="pool")(L.Add(name="mix")([b, c]))
    out = L.Dense(3, activation="softmax", name="out")(L.Flatten()(p))
    return keras.Model(inp, out)


def test_a_pooled_signal_of_the_analog_input_is_refused_in_one_line():
    graph, x = normalise_on_random(_input_reaches_the_pool(), n=16)
    for simulator in ("event", "INI"):
        with pytest.raises(UnsupportedLayerError) as e:
            snnconv.convert(graph, simulator=simulator, spike_code="ttfs_exact")
        msg = str(e.value)
        assert "\n" not in msg and "'pool'" in msg and "analog input" in msg
        assert "ReLU before the pooling" in msg
    # the rate code converts it, max pooling as it was
    snn = snnconv.convert(graph)
    assert type(snn.get_layer("pool")).__name__ == "SpikeMaxPooling2D"
    assert snnconv.evaluate(snn, x, np.zeros(len(x), int), num_steps=4,
                            progress=False).accuracy_per_step.shape == (4,)


def test_a_1x1_max_pooling_of_a_linear_signal_is_routing():
    """ResNet50V2's strided shortcuts: a 1x1 max pooling only picks values, so it needs
    no shift neurons; the event simulator gives the ANN's logits."""
    keras.utils.set_random_seed(2)
    L = keras.layers
    inp = keras.Input((8, 8, 2), name="x")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    z = L.Conv2D(4, 3, padding="same", name="z")(a)
    short = L.MaxPooling2D(1, strides=2, name="short")(z)
    s = L.Activation("relu", name="s_relu")(
        L.Add(name="s")([short, L.Conv2D(4, 3, strides=2, padding="same", name="r")(z)]))
    out = L.Dense(3, activation="softmax", name="out")(L.Flatten()(s))
    graph, x = normalise_on_random(keras.Model(inp, out), n=16)
    assert signed_max_pools(graph) == []
    event = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    assert [n.name for n in event.graph] == [n.name for n in graph]
    target = layer_values(event, x)["out"]
    np.testing.assert_allclose(target, _logits(graph, x), rtol=1e-5, atol=1e-5)
    # clocked: the pooling picks the current; the logits converge as dt shrinks
    from snnconv.simulators import get_simulator
    errors = []
    for dt in (0.02, 0.005):
        snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
        steps = sum(window_steps(event.windows, dt)) + 1
        readout = get_simulator("INI").simulate_batch(snn, x, steps).readout[:, -1]
        errors.append(float(np.max(np.abs(readout - target))))
    assert errors[1] < 0.5 * errors[0] and errors[1] < 0.02 * np.abs(target).max()
