"""Tests of the Spike* Keras layers: synapses against plain Keras layers applied step
by step, max pooling on spike trains, and saving/loading converted networks."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import snnconv.layers as SL  # noqa: E402
from snnconv.simulators.ini import build_spiking_model  # noqa: E402
from snnconv.ir import Graph, Node  # noqa: E402
from snnconv.layers.io import load_snn  # noqa: E402
from snnconv.neurons import IFNeuron  # noqa: E402

L = keras.layers
B, T = 2, 3


def _parse(model):
    try:
        from snnconv.parsing import parse
    except ImportError:
        from snnconv.parse import parse
    return parse(model)


def _rand(shape, seed=0, low=-1.0, high=1.0):
    return np.random.default_rng(seed).uniform(low, high, size=shape).astype(np.float32)


def _per_step(layer, x):
    """Apply a plain Keras layer to every time step of ``x`` (B, T, ...)."""
    if isinstance(x, list):
        flat = [xi.reshape((-1,) + xi.shape[2:]) for xi in x]
        y = np.asarray(layer(flat))
        b, t = x[0].shape[:2]
    else:
        y = np.asarray(layer(x.reshape((-1,) + x.shape[2:])))
        b, t = x.shape[:2]
    return y.reshape((b, t) + y.shape[1:])


def _check(spike_layer, keras_layer, x, rtol=1e-5, atol=1e-5):
    got = np.asarray(spike_layer(x))
    ref = _per_step(keras_layer, x)
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, rtol=rtol, atol=atol)
    shape_in = [xi.shape for xi in x] if isinstance(x, list) else x.shape
    assert tuple(spike_layer.compute_output_shape(shape_in)) == ref.shape
    return got


# ----------------------------------------------------------------------------- synapses

def test_dense_synapse():
    x = _rand((B, T, 5))
    k, b = _rand((5, 7), 1), _rand((7,), 2)
    s = SL.SpikeDense(7, activation="linear")
    s.build(x.shape)
    s.kernel.assign(k)
    s.bias.assign(b)
    ref = L.Dense(7)
    ref.build((None, 5))
    ref.set_weights([k, b])
    got = _check(s, ref, x)
    np.testing.assert_allclose(got, x @ k + b, rtol=1e-5, atol=1e-5)   # numpy too


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("strides", [1, 2])
def test_conv2d_synapse(padding, strides):
    x = _rand((B, T, 7, 6, 3))
    k, b = _rand((3, 3, 3, 4), 1), _rand((4,), 2)
    s = SL.SpikeConv2D(4, (3, 3), strides=strides, padding=padding, activation="linear")
    s.build(x.shape)
    s.kernel.assign(k)
    s.bias.assign(b)
    ref = L.Conv2D(4, 3, strides=strides, padding=padding)
    ref.build((None, 7, 6, 3))
    ref.set_weights([k, b])
    _check(s, ref, x)


def test_conv2d_synapse_dilated():
    x = _rand((B, T, 7, 7, 2))
    k, b = _rand((3, 3, 2, 3), 1), _rand((3,), 2)
    s = SL.SpikeConv2D(3, 3, dilation_rate=2, padding="valid", activation="linear")
    s.build(x.shape)
    s.kernel.assign(k)
    s.bias.assign(b)
    ref = L.Conv2D(3, 3, dilation_rate=2)
    ref.build((None, 7, 7, 2))
    ref.set_weights([k, b])
    _check(s, ref, x)


@pytest.mark.parametrize("padding,strides,mult", [("same", 2, 1), ("valid", 1, 2)])
def test_depthwise_conv2d_synapse(padding, strides, mult):
    x = _rand((B, T, 6, 5, 3))
    k, b = _rand((3, 3, 3, mult), 1), _rand((3 * mult,), 2)
    s = SL.SpikeDepthwiseConv2D((3, 3), depth_multiplier=mult, strides=strides,
                                padding=padding, activation="linear")
    s.build(x.shape)
    s.kernel.assign(k)
    s.bias.assign(b)
    ref = L.DepthwiseConv2D(3, strides=strides, padding=padding, depth_multiplier=mult)
    ref.build((None, 6, 5, 3))
    ref.set_weights([k, b])
    _check(s, ref, x)


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("pool,strides", [(2, None), (3, 2)])
def test_average_pooling_synapse(padding, pool, strides):
    x = _rand((B, T, 5, 7, 2))
    s = SL.SpikeAveragePooling2D(pool_size=pool, strides=strides, padding=padding)
    _check(s, L.AveragePooling2D(pool, strides=strides, padding=padding), x)


def test_average_pooling_numpy():
    x = _rand((1, 2, 4, 4, 1))
    got = np.asarray(SL.SpikeAveragePooling2D(pool_size=2)(x))
    ref = x.reshape(1, 2, 2, 2, 2, 2, 1).mean(axis=(3, 5))
    np.testing.assert_allclose(got, ref, rtol=1e-6)


def test_global_average_pooling_synapse():
    x = _rand((B, T, 3, 4, 5))
    got = _check(SL.SpikeGlobalAveragePooling2D(), L.GlobalAveragePooling2D(), x)
    np.testing.assert_allclose(got, x.mean(axis=(2, 3)), rtol=1e-5, atol=1e-6)


def test_flatten_synapse():
    x = _rand((B, T, 3, 2, 4))
    got = _check(SL.SpikeFlatten(), L.Flatten(), x, rtol=0, atol=0)
    np.testing.assert_array_equal(got, x.reshape(B, T, -1))


def test_reshape_synapse():
    x = _rand((B, T, 12))
    _check(SL.SpikeReshape((2, 3, 2)), L.Reshape((2, 3, 2)), x, rtol=0, atol=0)


def test_zero_padding_synapse():
    x = _rand((B, T, 3, 4, 2))
    pad = ((1, 2), (0, 3))
    got = _check(SL.SpikeZeroPadding2D(pad), L.ZeroPadding2D(pad), x, rtol=0, atol=0)
    assert got.shape == (B, T, 6, 7, 2)
    np.testing.assert_array_equal(got, np.pad(x, ((0, 0), (0, 0), (1, 2), (0, 3), (0, 0))))


@pytest.mark.parametrize("axis", [-1, -2])
def test_concatenate_synapse(axis):
    a, b = _rand((B, T, 3, 4, 2), 1), _rand((B, T, 3, 4, 5) if axis == -1 else
                                           (B, T, 3, 1, 2), 2)
    _check(SL.SpikeConcatenate(axis), L.Concatenate(axis=axis), [a, b], rtol=0, atol=0)


def test_concatenate_refuses_positive_axis():
    with pytest.raises(ValueError):
        SL.SpikeConcatenate(axis=1)


def test_add_synapse_plain_and_with_coefficients():
    a, b, c = _rand((B, T, 2, 2, 3), 1), _rand((B, T, 2, 2, 3), 2), _rand((B, T, 2, 2, 3), 3)
    _check(SL.SpikeAdd(), L.Add(), [a, b, c])
    coeffs = [0.5, [1.0, 2.0, -3.0], 4.0]
    got = np.asarray(SL.SpikeAdd(coeffs)([a, b, c]))
    ref = 0.5 * a + np.array([1.0, 2.0, -3.0], np.float32) * b + 4.0 * c
    np.testing.assert_allclose(got, ref, rtol=1e-6, atol=1e-6)


def test_identity_synapse():
    x = _rand((B, T, 4))
    np.testing.assert_array_equal(np.asarray(SL.SpikeIdentity()(x)), x)


def test_relu_layer_is_neurons_on_the_current():
    """A spiking layer outputs IFNeuron.run(current) * spike_amplitude."""
    neuron = {"model": "if", "v_thresh": 2.0, "dt": 0.5}
    x = _rand((B, 20, 5), low=0.0, high=1.0)
    k, b = _rand((5, 3), 1), _rand((3,), 2, 0.0, 0.5)
    s = SL.SpikeDense(3, activation="relu", neuron=neuron)
    s.build(x.shape)
    s.kernel.assign(k)
    s.bias.assign(b)
    assert s.spiking and s.spike_amplitude == 4.0
    got = np.asarray(s(x))
    ref = np.asarray(IFNeuron(v_thresh=2.0, dt=0.5).run(x @ k + b)) * 4.0
    np.testing.assert_array_equal(got, ref)
    assert tuple(s.fanout.shape) == (3,)
    with pytest.raises(ValueError):
        SL.SpikeDense(3, activation="relu")           # no neuron config
    with pytest.raises(ValueError):
        SL.SpikeDense(3, activation="tanh")


# ----------------------------------------------------------------------------- max pooling

def _gating_reference(s):
    """numpy max-pool gating for 0/1 spikes ``s`` of shape (T, k) (one window, k inputs).

    At each step the winners are the inputs with the highest cumulative count
    (current step included); the output is the spike of a winner. Among tied
    winners the one that was ahead before this step (i.e. did not spike) wins,
    so the output spikes only if every tied winner spiked.
    """
    counts = np.cumsum(s, axis=0)
    out = np.zeros(len(s))
    for t in range(len(s)):
        winners = np.flatnonzero(counts[t] == counts[t].max())
        out[t] = s[t, winners].min()
    return out


def _windows(x):
    """(B, T, H, W, C) with H, W even -> (B, T, H/2, W/2, C, 4) of 2x2 windows."""
    b, t, h, w, c = x.shape
    x = x.reshape(b, t, h // 2, 2, w // 2, 2, c)
    return x.transpose(0, 1, 2, 4, 6, 3, 5).reshape(b, t, h // 2, w // 2, c, 4)


def _bernoulli_trains(T=60, seed=0):
    rng = np.random.default_rng(seed)
    rates = rng.uniform(0.0, 1.0, size=(2, 1, 4, 4, 3))
    # one window with sharply different rates, one with all equal rates
    rates[0, 0, :2, :2, 0] = [[0.1, 0.8], [0.4, 0.6]]
    rates[1, 0, :2, :2, 1] = 0.5
    return (rng.uniform(size=(2, T, 4, 4, 3)) < rates).astype(np.float32)


def test_max_pool_count_equals_max_of_input_counts():
    s = _bernoulli_trains()
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2)(s))
    assert out.shape == (2, 60, 2, 2, 3)
    assert out.min() >= 0
    assert set(np.unique(out)) <= {0.0, 1.0}
    win = _windows(s)
    np.testing.assert_array_equal(out.sum(axis=1), win.sum(axis=1).max(axis=-1))
    # at every step, not only at the end: the output has fired as often as the leader
    np.testing.assert_array_equal(np.cumsum(out, axis=1), np.cumsum(win, axis=1).max(axis=-1))


def test_max_pool_matches_numpy_gating():
    s = _bernoulli_trains(T=40, seed=1)
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2)(s))
    win = _windows(s)
    b, _, h, w, c, _ = win.shape
    for i in range(b):
        for y in range(h):
            for x in range(w):
                for ch in range(c):
                    np.testing.assert_array_equal(out[i, :, y, x, ch],
                                                  _gating_reference(win[i, :, y, x, ch]))


def test_max_pool_regular_trains_hand_worked():
    # One 2x2 window, regular trains with periods 2, 3, 4 and a silent input.
    T = 12
    t = np.arange(1, T + 1)
    trains = np.stack([(t % 2 == 0), (t % 3 == 0), (t % 4 == 0), np.zeros(T, bool)], -1)
    x = trains.astype(np.float32).reshape(1, T, 2, 2, 1)
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2)(x))[0, :, 0, 0, 0]
    # the period-2 train leads from step 2 on: the output is that train exactly
    np.testing.assert_array_equal(out, trains[:, 0].astype(np.float32))
    # a train that overtakes: input A fires at steps 1,2 then stops; B fires from step 3 on
    a = np.zeros(T, np.float32)
    a[:2] = 1
    b_ = np.zeros(T, np.float32)
    b_[2:] = 1
    x = np.stack([a, b_, np.zeros(T), np.zeros(T)], -1).astype(np.float32).reshape(1, T, 2, 2, 1)
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2)(x))[0, :, 0, 0, 0]
    # counts A: 1 2 2 2 ..., B: 0 0 1 2 3 4 ...: max 1 2 2 2 3 4 ... -> B leads from step 5
    np.testing.assert_array_equal(out, [1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1])


def test_max_pool_scaled_and_multi_spike_inputs():
    """Spike signals of amplitude 4 and up to 3 spikes per step: counts in units of 4."""
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 4, size=(1, 30, 4, 4, 2)).astype(np.float32)
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2)(counts * 4.0)) / 4.0
    assert out.min() >= 0
    win = _windows(counts)
    np.testing.assert_array_equal(np.cumsum(out, axis=1), np.cumsum(win, axis=1).max(axis=-1))


def test_max_pool_same_padding_odd_input():
    s = (np.random.default_rng(2).uniform(size=(1, 25, 3, 3, 1)) < 0.5).astype(np.float32)
    out = np.asarray(SL.SpikeMaxPooling2D(pool_size=2, padding="same")(s))
    assert out.shape == (1, 25, 2, 2, 1)
    # windows: rows {0,1},{2}, cols {0,1},{2}
    for (r0, r1), (c0, c1), (i, j) in [((0, 2), (0, 2), (0, 0)), ((0, 2), (2, 3), (0, 1)),
                                       ((2, 3), (0, 2), (1, 0)), ((2, 3), (2, 3), (1, 1))]:
        w = s[0, :, r0:r1, c0:c1, 0].reshape(25, -1)
        np.testing.assert_array_equal(np.cumsum(out[0, :, i, j, 0]),
                                      np.cumsum(w, axis=0).max(axis=1))


# ----------------------------------------------------------------------------- save / load

NEURON = {"model": "if", "v_thresh": 1.0, "reset": "subtraction", "tau_refrac": 0.0,
          "dt": 1.0, "tau_mem": None, "max_spikes_per_dt": 1, "v_init": 0.0}


def _small_graph():
    rng = np.random.default_rng(0)
    w = lambda *s: rng.normal(0, 0.5, size=s).astype(np.float32)  # noqa: E731
    nodes = [
        Node("in", "input", [], (6, 6, 1)),
        Node("conv", "conv2d", ["in"], (6, 6, 3),
             params=dict(strides=(1, 1), padding="same", dilation_rate=(1, 1)),
             weights=dict(kernel=w(3, 3, 1, 3), bias=np.abs(w(3)) * 0.2), activation="relu"),
        Node("pool", "max_pool2d", ["conv"], (3, 3, 3),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("dw", "depthwise_conv2d", ["pool"], (3, 3, 3),
             params=dict(strides=(1, 1), padding="same", dilation_rate=(1, 1),
                         depth_multiplier=1),
             weights=dict(kernel=w(3, 3, 3, 1), bias=w(3)), activation="relu"),
        Node("cat", "concatenate", ["pool", "dw"], (3, 3, 6), params=dict(axis=-1)),
        Node("avg", "avg_pool2d", ["cat"], (1, 1, 6),
             params=dict(pool_size=(3, 3), strides=(3, 3), padding="valid")),
        Node("flat", "flatten", ["avg"], (6,)),
        Node("fc", "dense", ["flat"], (4,), weights=dict(kernel=w(6, 4), bias=w(4)),
             activation="softmax"),
    ]
    return Graph(nodes, name="small")


def test_saved_snn_gives_identical_outputs(tmp_path):
    snn = build_spiking_model(_small_graph(), NEURON)
    x = np.broadcast_to(_rand((3, 1, 6, 6, 1), 4, 0.0, 1.0), (3, 15, 6, 6, 1)).copy()
    before = np.asarray(snn(x))
    assert np.any(before != 0)
    path = tmp_path / "s.keras"
    snn.save(path)
    loaded = load_snn(path)
    after = np.asarray(loaded(x))
    assert np.array_equal(before, after)
    # the fan-out maps travel with the model
    for lay in snn.layers:
        if hasattr(lay, "fanout"):
            np.testing.assert_array_equal(lay.fanout.numpy(),
                                          loaded.get_layer(lay.name).fanout.numpy())
    # plain keras loading after importing snnconv.layers works too
    again = keras.saving.load_model(path, compile=False)
    assert np.array_equal(np.asarray(again(x)), before)


def test_saved_parsed_snn_with_add_coefficients(tmp_path):
    inp = keras.Input((5,))
    a = L.Dense(4, activation="relu")(inp)
    b = L.Dense(4, activation="relu")(inp)
    out = L.Dense(3, activation="softmax")(L.Add()([a, b]))
    model = keras.Model(inp, out)
    graph = _parse(model)
    add = next(n for n in graph if n.op == "add")
    add.params["coefficients"] = [0.5, [1.0, 2.0, 3.0, 4.0]]
    snn = build_spiking_model(graph, NEURON)
    x = np.broadcast_to(_rand((2, 1, 5), 1, 0.0, 1.0), (2, 10, 5)).copy()
    before = np.asarray(snn(x))
    snn.save(tmp_path / "s.keras")
    loaded = load_snn(tmp_path / "s.keras")
    assert loaded.get_layer(add.name).coefficients == [0.5, [1.0, 2.0, 3.0, 4.0]]
    assert np.array_equal(np.asarray(loaded(x)), before)


def test_saved_poisson_snn_reproduces_first_call(tmp_path):
    graph = _small_graph()
    x = np.broadcast_to(_rand((2, 1, 6, 6, 1), 4, 0.0, 1.0), (2, 12, 6, 6, 1)).copy()
    fresh = build_spiking_model(graph, NEURON, poisson_input=True, seed=123)
    fresh.save(tmp_path / "p.keras")
    reference = build_spiking_model(graph, NEURON, poisson_input=True, seed=123)
    first = np.asarray(reference(x))
    np.testing.assert_array_equal(np.asarray(fresh(x)), first)   # same seed, same spikes
    loaded = load_snn(tmp_path / "p.keras")
    inp = next(lay for lay in loaded.layers if isinstance(lay, SL.SpikeInput))
    assert inp.poisson and inp.seed == 123
    np.testing.assert_array_equal(np.asarray(loaded(x)), first)


def test_load_snn_missing_file(tmp_path):
    from snnconv.errors import ModelLoadError
    with pytest.raises(ModelLoadError):
        load_snn(tmp_path / "nope.keras")


@pytest.mark.parametrize("input_rate,dt", [(1000.0, 1.0), (500.0, 1.0), (250.0, 2.0)])
def test_poisson_input_rate(input_rate, dt):
    layer = SL.SpikeInput(poisson=True, input_rate=input_rate, dt=dt, seed=0)
    amp = 1000.0 / (input_rate * dt)
    assert layer.spike_amplitude == amp
    T = 4000
    vals = np.linspace(0.0, amp, 9, dtype=np.float32)
    x = np.broadcast_to(vals[None, None], (1, T, len(vals))).copy()
    out = np.asarray(layer(x))[0]
    assert set(np.unique(out)) <= {0.0, np.float32(amp)}
    p = vals / amp
    mean = out.mean(axis=0)
    sigma = amp * np.sqrt(p * (1 - p) / T)
    assert np.all(np.abs(mean - vals) <= 5 * sigma + 1e-6), (mean, vals)
    assert mean[0] == 0 and mean[-1] == pytest.approx(amp)


def test_analog_input_passes_through():
    layer = SL.SpikeInput()
    x = _rand((2, 3, 4))
    np.testing.assert_array_equal(np.asarray(layer(x)), x)
    assert layer.spike_amplitude is None
