"""``spike_code = ttfs_exact``: the neuron's closed form and clocked step, the time-window plan,
the synaptic delay layer, and the code clocked on the INI simulator against the event-driven
one (spike times on the dt grid, the same predictions at a fine dt, saving)."""
from __future__ import annotations

import keras
import numpy as np
import pytest
from keras import ops

import snnconv
from snnconv.errors import SnnconvError
from snnconv.ir import Graph, Node
from snnconv.layers import SpikeDelay
from snnconv.neurons import (TTFSExactNeuron, TTFSExactParams, TTFSExactState,
                             ttfs_exact_fire, ttfs_exact_step)
from snnconv.simulators.event import layer_values, spike_times
from snnconv.time_windows import plan_windows

from helpers import make_branched_model, normalise_on_random


def _np(t):
    return np.asarray(ops.convert_to_numpy(t))


# ------------------------------------------------------------------ the neuron

def test_closed_form():
    v0 = np.array([-0.5, 0.0, 0.25, 1.0, 1.5], np.float32)
    values, fired, clipped = ttfs_exact_fire(v0, 1.25)
    np.testing.assert_array_equal(_np(values), [0, 0, 0.25, 1.0, 1.25])
    np.testing.assert_array_equal(_np(fired), [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(_np(clipped), [0, 0, 0, 0, 1])


def test_clocked_step_by_hand():
    """dt 0.5; input window steps 0-1, own window steps 2-3 (T = 1, threshold 1.25).

    Current 0.6 over the input window: V(t_min) = 0.6; then +0.5 per step:
    1.1 after step 2, 1.6 after step 3 -> fires in step 3, i.e. at t = 2.0 = t_max,
    carrying t_max(next) ... its value on the grid is 0.5 = round(0.6 / 0.5) * 0.5.
    A current of 0.2 (V = 0.2 < dt / 2) never fires; 1.4 (clipped) fires in step 2.
    """
    p = TTFSExactParams(dt=0.5, k_in=0, k_min=2, k_max=4)
    current = np.array([0.6, 0.2, 1.4], np.float32)
    state = TTFSExactState(np.zeros(3, np.float32), np.zeros(3, np.float32), np.float32(0))
    vs, spikes = [], []
    for _ in range(5):
        psp, s, state = ttfs_exact_step(current, state, p)
        vs.append(_np(state.v))
        spikes.append(_np(s))
    np.testing.assert_allclose(np.array(vs)[:, 0], [0.3, 0.6, 1.1, 1.6, 1.6], rtol=1e-6)
    np.testing.assert_array_equal(np.array(spikes), [[0, 0, 0], [0, 0, 0], [0, 0, 1],
                                                     [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(_np(psp), [1, 0, 1])
    # an output neuron only integrates: no spikes, its potential is the score
    out = TTFSExactNeuron(dt=0.5, window=(0, 2, 2), fires=False)
    assert out.spike_amplitude is None
    _, s, st = out.step(current, out.initial_state(current))
    assert not _np(s).any()


def test_clocked_values_are_rounded_to_the_grid():
    """Over a sweep of potentials, a clocked neuron's spike carries clip(round(V/dt)*dt, 0, T)."""
    dt, n_in, n_own = 0.125, 8, 12            # input window 1, own window T = 1.5
    neuron = TTFSExactNeuron(dt=dt, window=(0, n_in, n_in + n_own))
    v0 = np.linspace(-0.3, 2.0, 93).astype(np.float32)
    steps = n_in + n_own + 2
    currents = np.repeat((v0 / (n_in * dt))[None, None], steps, axis=1)   # (1, T, n)
    psp, _ = neuron.run(currents)
    psp = _np(psp)[0]
    fired = psp.max(axis=0) > 0
    k = np.where(fired, psp.argmax(axis=0), -1)
    carried = np.where(fired, (n_in + n_own - k) * dt, 0.0)
    expected = np.clip(np.round(v0 / dt) * dt, 0, n_own * dt)
    # half-way potentials may go either way
    exact = np.abs(v0 / dt - np.round(v0 / dt)) < 0.49
    np.testing.assert_allclose(carried[exact], expected[exact], atol=1e-6)


# ------------------------------------------------------------------ the plan

def test_plan_of_a_branched_network():
    model = make_branched_model(0)
    graph, _ = normalise_on_random(model)
    w = plan_windows(graph)
    # a and b_relu spike in window 1; c (linear) and b_pool (linear, of the input)
    # are currents; the add's neurons read c (clock 1) and b_pool (clock 0, delayed)
    assert (w.clocks["a"], w.clocks["b_relu"], w.clocks["add"], w.clocks["dw"]) == (1, 1, 2, 3)
    assert w.spikes["cat"] and w.spikes["mp"] and w.spikes["zp"] and not w.spikes["c"]
    assert w.delays == {("add", "b_pool"): (0, 1)}
    assert w.readout_clock == 3 and w.t_readout == pytest.approx(sum(w.lengths))
    # b's bias is integrated by b_relu over window 0 and, delayed, by add over window 1
    assert w.bias_clocks["b"] == (0, 1)


# ------------------------------------------------------------------ the delay layer

@pytest.mark.parametrize("mode", ["step", "fifo"])
def test_delay_layer_step_and_sequence_modes_agree(mode):
    rng = np.random.default_rng(0)
    if mode == "step":      # post-synaptic potentials: 0 until a spike, then 1
        onset = rng.integers(0, 12, size=(3, 5))
        frames = (np.arange(10)[None, :, None] >= onset[:, None, :]).astype(np.float32)
    else:
        frames = rng.normal(size=(3, 10, 5)).astype(np.float32)
    layer = SpikeDelay(3, mode=mode)
    seq = _np(layer(frames))
    expected = np.concatenate([np.zeros((3, 3, 5), np.float32), frames[:, :-3]], axis=1)
    np.testing.assert_array_equal(seq, expected)
    state = layer.initial_state(3, (5,))
    outs = []
    for t in range(10):
        out, state = layer.step(frames[:, t], state)
        outs.append(_np(out))
    np.testing.assert_array_equal(np.stack(outs, axis=1), expected)


# ------------------------------------------------------------------ clocked on INI

def _dense_net():
    rng = np.random.default_rng(2)
    nodes = [Node("in", "input", [], (6,))]
    src = "in"
    for i, (n_in, n_out) in enumerate([(6, 12), (12, 10)]):
        kernel = rng.normal(size=(n_in, n_out)).astype(np.float32) * 0.5
        bias = rng.normal(size=n_out).astype(np.float32) * 0.2
        nodes.append(Node(f"h{i}", "dense", [src], (n_out,), activation="relu",
                          weights={"kernel": kernel, "bias": bias}))
        src = f"h{i}"
    nodes.append(Node("out", "dense", [src], (4,), activation="softmax",
                      weights={"kernel": rng.normal(size=(10, 4)).astype(np.float32),
                               "bias": np.zeros(4, np.float32)}))
    x = rng.uniform(-1, 1, size=(64, 6)).astype(np.float32)
    return snnconv.normalize(Graph(nodes, name="dense"), x, method="percentile",
                             percentile=95.0), x


def test_clocked_spikes_carry_the_exact_values_rounded_to_the_grid():
    """A clocked neuron of the first layer that fires in step k (its window ending at
    step k_max) carries (k_max - k) dt: the exact value, off by at most dt / 2."""
    from snnconv.simulators.ini.exact import window_steps
    graph, x = _dense_net()
    dt = 0.05
    event = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
    n = window_steps(event.windows, dt)
    steps = sum(n) + 2
    probe = keras.Model(snn.inputs, snn.get_layer("h0").output)
    psp = _np(probe([np.repeat(x[:, None], steps, axis=1)]))
    fired = psp.max(axis=1) > 0
    carried = np.where(fired, (n[0] + n[1] - psp.argmax(axis=1)) * dt, 0.0)
    exact = layer_values(event, x)["h0"]
    assert fired.any() and (~fired).any()
    np.testing.assert_allclose(carried, exact, atol=dt / 2 + 1e-5)
    # the spike times themselves: within dt / 2 of the exact ones, up to the shift of
    # window 1's end by its rounding up to the grid
    shift = (n[0] + n[1]) * dt - event.windows.t_max(1)
    t_exact = spike_times(event, x)["h0"]
    t_clocked = np.where(fired, psp.argmax(axis=1) * dt, np.inf)
    both = np.isfinite(t_exact) & fired
    np.testing.assert_allclose(t_clocked[both], t_exact[both] + shift, atol=dt / 2 + 1e-5)


def test_clocked_at_fine_dt_predicts_as_the_event_driven(bundled):
    x = np.asarray(bundled.data.x_test[:100], np.float32)
    y = bundled.data.y_test[:100]
    event = snnconv.convert(bundled.graph, simulator="event", spike_code="ttfs_exact")
    r_event = snnconv.evaluate(event, x, y, batch_size=100, progress=False)
    dt = 0.01
    snn = snnconv.convert(bundled.graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
    steps = int(np.ceil(event.windows.t_readout / dt)) + 3
    r = snnconv.evaluate(snn, x, y, num_steps=steps, batch_size=100, progress=False)
    np.testing.assert_array_equal(r.predictions, r_event.predictions)
    assert r.decided_fraction == 1.0 and r.mean_decision_time <= steps * dt
    # the output layer only integrates: it has no neurons that spike
    assert "dense" not in r.spikes_per_neuron


def test_clocked_branched_network(tmp_path):
    """Concatenate, Add with a branch of the input one window earlier, max pooling, zero
    padding, depthwise conv, global pooling: the same predictions as event-driven at a
    fine dt, also after saving and loading."""
    model = make_branched_model(0)
    graph, x = normalise_on_random(model)
    event = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    target = layer_values(event, x)["out"].argmax(axis=1)
    dt = 0.02
    snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
    steps = int(np.ceil(event.windows.t_readout / dt)) + 2
    r = snnconv.evaluate(snn, x, target, num_steps=steps, progress=False)
    assert r.accuracy == 1.0
    path = tmp_path / "snn.keras"
    snn.save(path)
    again = snnconv.evaluate(snnconv.load_snn(path), x, target, num_steps=steps,
                             progress=False)
    np.testing.assert_array_equal(again.accuracy_per_step, r.accuracy_per_step)
    np.testing.assert_array_equal(again.synops_per_step, r.synops_per_step)


def test_clocked_refuses_poisson_input():
    graph, _ = _dense_net()
    with pytest.raises(SnnconvError, match="Poisson"):
        snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", poisson_input=True)


# ------------------------------------------------------------------ ceilings (ReLU6)

def _relu6_beside_relu():
    """A ReLU6 branch (often clipped) and a ReLU branch in the same window, concatenated."""
    keras.utils.set_random_seed(4)
    L = keras.layers
    inp = keras.Input((8, 8, 2), name="x")
    a = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(inp)
    b = L.Conv2D(4, 3, padding="same", name="b",
                 kernel_initializer=keras.initializers.RandomNormal(0.0, 4.0))(inp)
    b = L.ReLU(max_value=6.0, name="b6")(b)
    c = L.Conv2D(5, 3, activation="relu", name="c")(L.Concatenate(name="cat")([a, b]))
    out = L.Dense(3, activation="softmax", name="out")(L.Flatten(name="flat")(c))
    return keras.Model(inp, out)


@pytest.mark.parametrize("per_channel", [False, True])
def test_relu6_is_a_ceiling_below_the_window(per_channel):
    """A ReLU(max_value) neuron whose window is longer than its clip (another node of its
    clock sets the window) fires no earlier than t_max - clip: its spikes carry the ANN's
    clipped value, event-driven and clocked (one clip per channel with per-channel
    normalisation)."""
    model = _relu6_beside_relu()
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 2)).astype(np.float32)
    graph = snnconv.normalize(snnconv.parse(model), x, method="percentile", percentile=90.0,
                              per_channel=per_channel)
    assert graph["b"].params.get("max_value") == 6.0
    event = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    w = event.windows
    length = w.lengths[w.clocks["b"]]
    cap = np.minimum(6.0 / np.asarray(graph.scales["b"], np.float64), length)
    assert w.clocks["a"] == w.clocks["b"] and np.any(cap < length / 1.2)
    assert "b" in w.ceilings and "a" not in w.ceilings
    np.testing.assert_allclose(w.ceiling("b"), cap, rtol=1e-6)
    ann = snnconv.build_ann(graph, outputs=["b", "c"])
    b_ann, c_ann = (np.asarray(v) for v in ann.predict(x, verbose=0))
    assert np.mean(np.isclose(b_ann, cap, rtol=1e-5)) > 0.05        # the clip is at work
    values = layer_values(event, x)
    np.testing.assert_allclose(values["b"], b_ann, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(values["c"], c_ann, rtol=1e-5, atol=1e-5)
    # clocked: b's spikes carry at most the clip, each within dt / 2 of the exact value
    from snnconv.simulators.ini.exact import window_steps
    from snnconv.simulators.ini.recording import first_spike_values
    dt = 0.02
    snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
    carried = first_spike_values(snn, x[:8], sum(window_steps(w, dt)) + 1)["b"]
    assert np.all(carried <= cap + dt / 2 + 1e-6)
    np.testing.assert_allclose(carried, values["b"][:8], atol=dt / 2 + 1e-5)
