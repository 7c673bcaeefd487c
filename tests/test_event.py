"""The event-driven simulator (``simulator = event``, ``spike_code = ttfs_exact``): spike times
in closed form against hand-worked numbers, max pooling, branches of different depth,
negative inputs, the readout against the ANN's logits, the evaluation on its readout grid,
saving and loading, and the config / pipeline / ``--snn`` path."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

import snnconv
from snnconv.errors import ConfigError
from snnconv.ir import Graph, Node
from snnconv.simulators import get_simulator, simulator_for_file
from snnconv.simulators.event import (EventNetwork, layer_values, load_event_network,
                                      spike_times)


def _dense(name, src, kernel, bias, activation="relu"):
    kernel = np.asarray(kernel, np.float32)
    return Node(name, "dense", [src], (kernel.shape[1],), activation=activation,
                weights={"kernel": kernel, "bias": np.asarray(bias, np.float32)})


def _normalised(nodes, activation_max, name="net"):
    """A graph treated as normalised (scales 1) with the given largest activations."""
    g = Graph(nodes, name=name)
    g.scales = {n.name: np.float64(1.0) for n in nodes}
    g.metadata["activation_max"] = dict(activation_max)
    return g


def _logits(graph, x):
    """The graph's output pre-activation, computed by the rebuilt Keras ANN."""
    g = graph.copy()
    g.output_node.activation = "linear"
    return snnconv.build_ann(g).predict(np.asarray(x, np.float32), verbose=0)


# ------------------------------------------------------------------ a hand-worked network

def _two_layer_net():
    """in(2) -> d1 (4 neurons) -> d2 (2 neurons) -> out (2 classes).

    x = (1, -0.5)
    d1: Wx + b = (0.25, 0.75, -0.75, 1.5); largest activation 1.25, so T(1) = 1.25
        and the 4th neuron (1.5) is clipped at 1.25; window 1 = [1, 2.25)
    d2: (0.9375, 0.875); largest activation 0.5 -> T(2) = 1 (at least the scale);
        window 2 = [2.25, 3.25)
    out: (0.5625, 0.875), read at t = 3.25
    """
    nodes = [Node("in", "input", [], (2,)),
             _dense("d1", "in", [[0.5, 1.0, -1.0, 1.5], [1.0, 0.5, 0.5, 0.0]],
                    [0.25, 0.0, 0.5, 0.0]),
             _dense("d2", "d1", [[1, -1], [0.5, 1], [2, 2], [0.25, 0.5]], [0, -0.25]),
             _dense("out", "d2", [[1, 0], [-1, 1]], [0.5, 0], activation="softmax")]
    return _normalised(nodes, {"d1": 1.25, "d2": 0.5})


def test_hand_worked_spike_times_are_t_max_minus_relu():
    net = snnconv.convert(_two_layer_net(), simulator="event", spike_code="ttfs_exact")
    w = net.windows
    assert w.lengths == (1.0, 1.25, 1.0)
    assert (w.window("d1"), w.window("d2"), w.t_readout) == ((1.0, 2.25), (2.25, 3.25), 3.25)
    times = spike_times(net, np.array([[1.0, -0.5]]))
    # t_max - ReLU(Wx + b), clipped at the window: 2.25 - (0.25, 0.75, 0, 1.25)
    np.testing.assert_array_equal(times["d1"][0], [2.0, 1.5, math.inf, 1.0])
    # 3.25 - (0.9375, 0.875)
    np.testing.assert_array_equal(times["d2"][0], [2.3125, 2.375])
    values = layer_values(net, np.array([[1.0, -0.5]]))
    np.testing.assert_allclose(values["out"][0], [0.5625, 0.875], rtol=1e-6)


def test_evaluation_on_the_readout_grid():
    net = snnconv.convert(_two_layer_net(), simulator="event", spike_code="ttfs_exact",
                          readout_steps=13)
    x = np.array([[1.0, -0.5], [0.0, 0.0]])
    r = snnconv.evaluate(net, x, np.array([1, 1]), batch_size=2, progress=False)
    assert r.num_steps == 13 and r.dt == pytest.approx(0.25)       # 3.25 / 13
    # every sample decides when the output is read, at the last step
    np.testing.assert_array_equal(r.decision_steps, [13, 13])
    assert r.mean_decision_time == pytest.approx(3.25)
    # d1 fires 3 neurons for sample 1 and 2 for sample 2 (zero input: the biases
    # 0.25, 0, 0.5, 0), a mean of 2.5 spikes per sample
    assert r.spikes_per_step["d1"].sum() == pytest.approx((3 + 2) / 2)
    # each spike lands in the step that ends at or after its time: d1's of sample 1
    # at 2.0 (step 8), 1.5 (step 6), 1.0 (step 4); sample 2's at 2.0 and 1.75 (step 7)
    np.testing.assert_allclose(r.spikes_per_step["d1"][[3, 5, 6, 7]], [0.5, 0.5, 0.5, 1.0])
    # before the output's window (t <= 2.25) nothing is integrated; at the end the logits
    out = layer_values(net, x)["out"]
    assert r.accuracy_per_step[-1] == np.mean(out.argmax(axis=1) == 1)


def test_zero_and_negative_activations_do_not_spike():
    rng = np.random.default_rng(3)
    nodes = [Node("in", "input", [], (6,)),
             _dense("h", "in", rng.normal(size=(6, 50)), rng.normal(size=50) - 0.5),
             _dense("out", "h", rng.normal(size=(50, 3)), np.zeros(3), activation="linear")]
    g = _normalised(nodes, {"h": 10.0})
    x = rng.normal(size=(20, 6)).astype(np.float32)
    # one neuron silenced exactly: its potential at t_min is 0
    g["h"].weights["kernel"][:, 0] = 0
    g["h"].weights["bias"][0] = 0
    net = snnconv.convert(g, simulator="event", spike_code="ttfs_exact")
    z = x @ g["h"].weights["kernel"] + g["h"].weights["bias"]
    t = spike_times(net, x)["h"]
    assert np.all(np.isinf(t[z <= 0])) and np.all(np.isfinite(t[z > 0]))
    assert np.all(np.isinf(t[:, 0]))
    r = snnconv.evaluate(net, x, np.zeros(20, int), progress=False)
    assert r.spikes_per_neuron["h"] == pytest.approx(np.mean(z > 0))
    assert r.spikes_per_neuron["h"] <= 1.0


def test_negative_inputs_enter_as_current():
    """The analog input is a current over the first window: negative and large values
    reach the first layer's potential unchanged."""
    rng = np.random.default_rng(0)
    nodes = [Node("in", "input", [], (5,)),
             _dense("h", "in", rng.normal(size=(5, 8)), rng.normal(size=8)),
             _dense("out", "h", rng.normal(size=(8, 4)), rng.normal(size=4), activation="linear")]
    g = _normalised(nodes, {"h": 100.0})
    x = rng.normal(scale=3.0, size=(50, 5)).astype(np.float32)
    assert (x < 0).any()
    net = snnconv.convert(g, simulator="event", spike_code="ttfs_exact")
    np.testing.assert_allclose(layer_values(net, x)["out"], _logits(g, x), rtol=1e-5, atol=1e-5)


# ------------------------------------------------------------------ max pooling, branches

def _pool_net():
    """(4, 4, 1) -> conv 1x1 relu (identity weights) -> max pool 2x2 -> flatten -> dense 3."""
    nodes = [Node("in", "input", [], (4, 4, 1)),
             Node("c", "conv2d", ["in"], (4, 4, 1), activation="relu",
                  params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                  weights={"kernel": np.ones((1, 1, 1, 1), np.float32),
                           "bias": np.zeros(1, np.float32)}),
             Node("mp", "max_pool2d", ["c"], (2, 2, 1),
                  params={"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
             Node("f", "flatten", ["mp"], (4,)),
             _dense("out", "f", np.ones((4, 3)), np.zeros(3), activation="linear")]
    return _normalised(nodes, {"c": 1.0})


def test_max_pooling_passes_the_earliest_spike_only():
    net = snnconv.convert(_pool_net(), simulator="event", spike_code="ttfs_exact")
    x = np.array([[0.1, 0.9, 0.0, 0.0],
                  [0.3, 0.2, 0.0, 0.5],
                  [0.0, 0.0, 0.7, 0.0],
                  [0.0, 0.0, 0.0, 0.0]], np.float32).reshape(1, 4, 4, 1)
    t = spike_times(net, x)["c"][0, ..., 0]           # window 1 = [1, 2)
    pooled = layer_values(net, x)["mp"][0, ..., 0]
    # the pooled spike of each window is its earliest one: t_max - value
    for i in range(2):
        for j in range(2):
            earliest = t[2 * i:2 * i + 2, 2 * j:2 * j + 2].min()
            assert (2.0 - pooled[i, j] == pytest.approx(earliest)) if np.isfinite(earliest) \
                else pooled[i, j] == 0
    # SynOps: 6 non-zero inputs x 1 synapse (conv 1x1) + 3 pooled spikes x 3 synapses;
    # the 3 conv spikes that lose their window reach nothing
    r = snnconv.evaluate(net, x, np.array([0]), progress=False)
    assert r.synops == pytest.approx(6 * 1 + 3 * 3)
    assert r.spikes_per_neuron["c"] == pytest.approx(6 / 16)


@pytest.mark.parametrize("merge", ["add", "concatenate"])
def test_branches_of_different_depth_are_read_on_one_clock(merge):
    """in -> a (relu) -> b (relu) -> c (linear); c merged with a (one layer shallower):
    a's spikes are delayed to c's clock and the merge equals the ANN's."""
    rng = np.random.default_rng(1)
    n = 6
    nodes = [Node("in", "input", [], (4,)),
             _dense("a", "in", rng.normal(size=(4, n)), rng.normal(size=n) * 0.3),
             _dense("b", "a", rng.normal(size=(n, n)), rng.normal(size=n) * 0.3),
             _dense("c", "b", rng.normal(size=(n, n)), rng.normal(size=n) * 0.3,
                    activation="linear")]
    if merge == "add":
        nodes.append(Node("m", "add", ["c", "a"], (n,), activation="relu"))
    else:
        nodes.append(Node("m", "concatenate", ["c", "a"], (2 * n,), params={"axis": -1}))
    nodes.append(_dense("out", "m", rng.normal(size=(nodes[-1].output_shape[0], 3)),
                        np.zeros(3), activation="linear"))
    x = rng.uniform(-1, 1, size=(200, 4)).astype(np.float32)
    g = snnconv.normalize(Graph(nodes, name="branches"), x, method="percentile",
                          percentile=99.0)
    net = snnconv.convert(g, simulator="event", spike_code="ttfs_exact")
    w = net.windows
    assert w.clocks["a"] == 1 and w.clocks["b"] == 2 and w.clocks["c"] == 2
    assert w.delays == {("m", "a"): (1, 2)}
    assert w.delay("m", "a") == pytest.approx(w.lengths[2])
    # a's spikes, delayed by T(2), carry on window 2 what they carried on window 1
    np.testing.assert_allclose(layer_values(net, x)["out"], _logits(g, x), rtol=1e-5,
                               atol=1e-6)


# ------------------------------------------------------------------ the bundled CNN

def test_output_potentials_equal_the_anns_logits(bundled):
    # equal where no activation of a test image lies beyond its layer's window: true
    # of these 200 images with one scale per layer (per channel, 19 of the 2000
    # logits come from a clipped activation)
    graph = snnconv.normalize(snnconv.parse(bundled.ann), bundled.data.x_norm[:200],
                              per_channel=False)
    net = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    x = np.asarray(bundled.data.x_test[:200], np.float32)
    raw = snnconv.parse(bundled.ann)
    raw.output_node.activation = "linear"
    logits = snnconv.build_ann(raw).predict(x, verbose=0)      # the original ANN's logits
    scale = float(graph.scales[graph.output_node.name])
    potentials = layer_values(net, x)["dense"] * scale
    np.testing.assert_allclose(potentials, logits, rtol=1e-5, atol=1e-5 * np.abs(logits).max())
    r = snnconv.evaluate(net, x, bundled.data.y_test[:200], batch_size=100, progress=False)
    np.testing.assert_array_equal(r.predictions, logits.argmax(axis=1))
    assert max(r.spikes_per_neuron.values()) < 1.0
    assert r.decided_fraction == 1.0
    assert r.mean_decision_time == pytest.approx(net.windows.t_readout)


def test_windows_cover_the_largest_activations(bundled):
    net = snnconv.convert(bundled.graph, simulator="event", spike_code="ttfs_exact")
    maxima = bundled.graph.metadata["activation_max"]
    for name in net.windows.neurons:
        length = net.windows.lengths[net.windows.clocks[name]]
        assert length >= maxima[name] and length >= 1.0
    # percentile normalisation: the largest activation is above the scale
    assert max(maxima[n] for n in net.windows.neurons) > 1.0
    clipped = snnconv.convert(bundled.graph, simulator="event", spike_code="ttfs_exact",
                              clip_windows=True)
    assert clipped.windows.lengths == (1.0,) * len(clipped.windows.lengths)
    assert clipped.windows.t_readout < net.windows.t_readout
    x = np.asarray(bundled.data.x_norm[:100], np.float32)    # normalisation data
    sim = get_simulator("event")
    sim.simulate_batch(clipped, x, clipped.readout_steps)
    sim.simulate_batch(net, x, net.readout_steps)
    assert sum(clipped.clipped.values()) > 0 and sum(net.clipped.values()) == 0
    assert sim.run_facts(clipped)["clipped_fraction"]["conv1"] > 0


# ------------------------------------------------------------------ files, config, pipeline

def test_save_and_load(tmp_path, bundled):
    net = snnconv.convert(bundled.graph, simulator="event", spike_code="ttfs_exact",
                          readout_steps=8)
    sim = get_simulator("event")
    path = sim.save(net, tmp_path / "snn.keras")
    assert path.name == "snn.npz"
    assert type(simulator_for_file(path)).__name__ == "EventSimulator"
    loaded = snnconv.simulators.load_network(path)
    assert isinstance(loaded, EventNetwork) and loaded.readout_steps == 8
    assert loaded.windows == net.windows
    x = np.asarray(bundled.data.x_test[:50], np.float32)
    a = sim.simulate_batch(net, x, 8)
    b = sim.simulate_batch(loaded, x, 8)
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.synops, b.synops)
    # an .npz of another kind is not taken for an event network
    np.savez(tmp_path / "other.npz", weights_in=np.zeros(3))
    assert not sim.can_load(tmp_path / "other.npz")
    with pytest.raises(Exception):
        load_event_network(tmp_path / "other.npz")


def test_config_choices(tmp_path, write_config):
    from snnconv.config import load_config
    cfg = load_config(write_config(tmp_path / "a.ini", 50, {"simulator": "event"},
                                   "[conversion]\nspike_code = ttfs_exact\n"))
    assert get_simulator("event").options_from_config(cfg) == {"max2avg_pool": False}
    bad = load_config(write_config(tmp_path / "b.ini", 50, {"simulator": "event"}))
    with pytest.raises(ConfigError, match="spike_code"):
        get_simulator("event").options_from_config(bad)
    with pytest.raises(ConfigError, match="early_stopping"):
        get_simulator("event").options_from_config(load_config(write_config(
            tmp_path / "c.ini", 50, {"simulator": "event", "early_stopping": "true"},
            "[conversion]\nspike_code = ttfs_exact\n")))


def test_run_and_run_saved(tmp_path, write_config):
    """`snnconv run` with simulator = event (no duration needed), then the saved network
    again as `--snn`."""
    from snnconv.config import load_config
    from snnconv.pipeline import run
    path = write_config(tmp_path / "ev.ini", 100, {"simulator": "event", "num_to_test": 100,
                                                   "batch_size": 50},
                        "[conversion]\nspike_code = ttfs_exact\n[tools]\nsave_snn = true\n")
    outcome = run(load_config(path))
    summary = json.loads((outcome.run_dir / "summary.json").read_text())
    assert summary["simulator"] == "event" and summary["spike_code"] == "ttfs_exact"
    assert summary["num_steps"] == 8 and summary["snn_accuracy"] > 0.95
    assert summary["mean_decision_time"] == pytest.approx(summary["t_readout"])
    assert set(summary["clipped_fraction"]) == {"conv1", "conv2"}
    for name in ("results.h5", "accuracy.png", "first_spike_times.png", "ann_vs_snn.png",
                 "snn.npz"):
        assert (outcome.run_dir / name).exists(), name
    from snnconv.report import read_results
    pairs = read_results(outcome.run_dir)["ann_vs_snn"]
    assert list(pairs) == ["conv1", "conv2"]
    assert pairs["conv1"]["snn_label"].startswith("t_max")
    assert pairs["conv1"]["correlation"] > 0.999
    saved = run(load_config(path, {"paths": {"log_dir_of_current_run": str(tmp_path / "re")}}),
                snn_file=outcome.run_dir / "snn.npz")
    assert saved.result.accuracy == outcome.result.accuracy


def test_max_pooling_of_a_current_converts_exactly():
    """Max pooling of a linear signal (e) runs as shift neurons, the pooling of their
    spikes and an unshifting current (snnconv.signed_max_pool), giving max(e) exactly."""
    nodes = [Node("in", "input", [], (4, 4, 1)),
             Node("c", "conv2d", ["in"], (4, 4, 1),
                  params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                  weights={"kernel": np.ones((1, 1, 1, 1), np.float32),
                           "bias": np.zeros(1, np.float32)}),
             Node("d", "conv2d", ["c"], (4, 4, 1),
                  params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                  weights={"kernel": np.ones((1, 1, 1, 1), np.float32),
                           "bias": np.zeros(1, np.float32)}, activation="relu"),
             Node("e", "conv2d", ["d"], (4, 4, 1),
                  params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                  weights={"kernel": np.ones((1, 1, 1, 1), np.float32),
                           "bias": np.zeros(1, np.float32)}),
             Node("mp", "max_pool2d", ["e"], (2, 2, 1),
                  params={"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}),
             Node("f", "flatten", ["mp"], (4,)),
             _dense("out", "f", np.ones((4, 3)), np.zeros(3), activation="linear")]
    g = _normalised(nodes, {"d": 1.0})
    net = snnconv.convert(g, simulator="event", spike_code="ttfs_exact")
    assert "mp_shift" in net.windows.neurons
    x = np.linspace(-1, 2, 16, dtype=np.float32).reshape(1, 4, 4, 1)
    e = np.clip(x, 0, 1)                                 # d's spikes carry clip(x, 0, T)
    expected = e.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(4, 4).max(axis=1)
    np.testing.assert_allclose(layer_values(net, x)["mp"].reshape(4), expected, atol=1e-6)
    # as an average pooling it converts too
    snnconv.convert(g, simulator="event", spike_code="ttfs_exact", max2avg_pool=True)
