"""The Xylo simulator: mapping, quantization, limits, export, encoding and the pipeline.

The integer dynamics themselves are checked against hand-worked traces in
``test_xylo_dynamics.py``.
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

import snnconv
import snnconv.report
from snnconv.cli import main
from snnconv.data import bundled_dataset_path
from snnconv.errors import ConfigError, UnsupportedLayerError
from snnconv.simulators.xylo import (XyloLimitError, build_xylo_network, encode_events,
                                     load_xylo, simulate_xylo)
from snnconv.simulators.xylo.mapping import build_float_network, plan
from snnconv.simulators.xylo.network import dash_for

EXAMPLE_MODEL = Path(__file__).resolve().parent.parent / "examples" / "models" / "mnist_xylo.keras"


def mlp(sizes, n_in=16, n_out=10, seed=0, input_shape=None):
    """A ReLU MLP with random weights: n_in -> sizes... -> n_out (linear)."""
    keras.utils.set_random_seed(seed)
    inp = keras.Input(input_shape or (n_in,))
    x = inp if input_shape is None else keras.layers.Flatten()(inp)
    for i, k in enumerate(sizes):
        x = keras.layers.Dense(k, activation="relu", name=f"dense_{i + 1}")(x)
    out = keras.layers.Dense(n_out, name="readout")(x)
    return keras.Model(inp, out)


def small_graph(sizes=(12, 8), seed=0):
    """A parsed and normalised 16 -> 12 -> 8 -> 8 MLP on random non-negative inputs."""
    model = mlp(list(sizes), n_out=8, seed=seed)
    x = np.random.default_rng(seed).uniform(0, 1, (200, 16)).astype(np.float32)
    # one scale per layer: the quantization checks below reason about the layer's range
    return snnconv.normalize(snnconv.parse(model), x, method="max", per_channel=False), x


# --- mapping ----------------------------------------------------------------

def test_unrolled_matrices_reproduce_the_ann_including_a_convolution():
    keras.utils.set_random_seed(3)
    inp = keras.Input((6, 6, 1))
    x = keras.layers.AveragePooling2D(3)(inp)                   # host preprocessing -> 2x2x1
    x = keras.layers.ZeroPadding2D(1)(x)                        # 4x4x1
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(x)   # 2x2x3 = 12 neurons
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5, activation="relu", name="dense")(x)
    out = keras.layers.Dense(4, name="readout")(x)
    model = keras.Model(inp, out)
    graph = snnconv.parse(model)
    p = plan(graph)
    assert [n.op for n in p.preprocessing] == ["avg_pool2d", "zero_padding2d"]
    assert p.num_inputs == 16
    assert p.layers == [("conv", 12), ("dense", 5)] and p.output_name == "readout"
    net = build_float_network(p)
    x = np.random.default_rng(0).uniform(0, 1, (7, 6, 6, 1)).astype(np.float32)
    acts = snnconv.build_ann(graph, outputs=["conv", "dense", "readout"]).predict(x, verbose=0)
    channels = x.reshape(7, -1) @ net.input_map
    h1 = np.maximum(channels @ net.w_in[:, :12] + net.bias[:12], 0)
    np.testing.assert_allclose(h1, acts[0].reshape(7, -1), atol=1e-5)
    h2 = np.maximum(h1 @ net.w_rec[:12, 12:] + net.bias[12:], 0)
    np.testing.assert_allclose(h2, acts[1], atol=1e-5)
    np.testing.assert_allclose(h2 @ net.w_out[12:] + net.bias_out, acts[2], atol=1e-5)
    # nothing but the chain's blocks is connected
    assert not net.w_rec[:, :12].any() and not net.w_rec[12:].any() and not net.w_out[:12].any()


def test_conv1d_maps_when_its_unrolled_matrix_fits():
    keras.utils.set_random_seed(5)
    inp = keras.Input((8, 2))
    x = keras.layers.Conv1D(6, 3, activation="relu", name="conv")(inp)      # 6 x 6 = 36 neurons
    x = keras.layers.Flatten()(x)
    model = keras.Model(inp, keras.layers.Dense(3, name="readout")(x))
    x = np.random.default_rng(1).uniform(0, 1, (50, 8, 2)).astype(np.float32)
    # one scale per layer: no tap is so small against the others that it rounds to 0
    graph = snnconv.normalize(snnconv.parse(model), x, method="max", per_channel=False)
    net = build_xylo_network(graph, chip="syns65302", weight_shift=0)
    assert net.layers == [("conv", 36)] and net.spec.num_inputs == 16
    # the layer's non-zero input weights are the convolution's taps: 3 taps x 2 channels
    assert set((net.spec.weights_in != 0).sum(axis=0).tolist()) <= {6}
    # the INI network with binary spikes, as Xylo's neurons fire them
    ini = snnconv.evaluate(snnconv.convert(graph, burst=1), x, np.zeros(50), num_steps=50,
                           progress=False)
    xy = snnconv.evaluate(net, x, np.zeros(50), num_steps=50, progress=False)
    assert abs(ini.spikes_per_neuron["conv"] - xy.spikes_per_neuron["conv"]) \
        < 0.1 * ini.spikes_per_neuron["conv"] + 1


def test_branching_and_max_pooling_are_refused_with_the_layer_name():
    inp = keras.Input((16,))
    a = keras.layers.Dense(4, activation="relu", name="a")(inp)
    b = keras.layers.Dense(4, activation="relu", name="b")(inp)
    model = keras.Model(inp, keras.layers.Dense(2, name="out")(keras.layers.Add(name="sum")([a, b])))
    with pytest.raises(UnsupportedLayerError, match="chain"):
        plan(snnconv.parse(model))
    inp = keras.Input((4, 4, 1))
    x = keras.layers.MaxPooling2D(2, name="pool")(inp)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(3, activation="relu")(x)
    model = keras.Model(inp, keras.layers.Dense(2)(x))
    with pytest.raises(UnsupportedLayerError, match="'pool'.*max2avg_pool"):
        plan(snnconv.parse(model))
    assert plan(snnconv.parse(model), max2avg_pool=True).num_inputs == 4


# --- limits -----------------------------------------------------------------

def limit_messages(model, chip):
    with pytest.raises(XyloLimitError) as info:
        build_xylo_network(snnconv.parse(model), chip=chip)
    return info.value.violations


def test_too_many_hidden_neurons_names_every_layer():
    msgs = limit_messages(mlp([800, 400], n_out=8), "syns61201")
    assert msgs == ["hidden neurons: 1 200 > 1 000 on Xylo Audio 2 "
                    "(layers dense_1: 800, dense_2: 400)"]


@pytest.mark.parametrize("chip, sizes, n_in, n_out, expected", [
    ("syns61201", [20], 16, 10, "output neurons: 10 > 8 on Xylo Audio 2 (layer readout)"),
    ("syns63300", [20], 16, 17, "output neurons: 17 > 16 on Xylo IMU (layer readout)"),
    ("syns65302", [20], 20, 4, "input channels: 20 > 16 on Xylo Audio 3"),
    ("syns65302", [200, 20], 16, 4, "input reaches the first 128 hidden neurons on Xylo Audio 3, "
                                    "but the first hidden layer dense_1 has 200"),
    ("syns63300", [20, 130], 16, 4, "the readout reads the last 128 hidden neurons on Xylo IMU, "
                                    "but the last hidden layer dense_2 has 130"),
    ("syns61201", [70, 70], 16, 4, "fan-out per hidden neuron: 70 > 64 on Xylo Audio 2 "
                                   "(largest per layer: dense_1: 70)"),
    ("syns65302", [], 16, 4, "hidden layers: 0"),
])
def test_each_limit_has_its_message(chip, sizes, n_in, n_out, expected):
    msgs = limit_messages(mlp(sizes, n_in=n_in, n_out=n_out), chip)
    assert any(m.startswith(expected) for m in msgs), msgs


def test_a_network_that_fits_passes_and_reports_its_use():
    graph, _ = small_graph()
    net = build_xylo_network(graph, chip="syns61201")
    report = net.fit_report()
    assert "hidden neurons          20 / 1000" in report and "dense_1: 12" in report


# --- quantization -----------------------------------------------------------

def test_global_quantization_shares_one_scale():
    graph, _ = small_graph()
    net = build_xylo_network(graph, quantization="global", weight_shift=0)
    s = net.spec
    w = np.concatenate([s.weights_in, s.weights_rec])
    assert np.abs(w.astype(int)).max() == 127
    assert len(set(s.threshold.tolist())) == 1         # one factor: one threshold
    assert np.abs(s.weights_out.astype(int)).max() == 127


def test_per_channel_quantization_uses_each_neurons_range():
    graph, _ = small_graph()
    net = build_xylo_network(graph, quantization="per_channel", weight_shift=0)
    s = net.spec
    w = np.abs(np.concatenate([s.weights_in, s.weights_rec]).astype(int))
    np.testing.assert_array_equal(w.max(axis=0), 127)
    np.testing.assert_array_equal(np.abs(s.weights_out.astype(int)).max(axis=0), 127)
    # the integer threshold / weight ratio keeps the float one
    exact = graph["dense_1"].weights["kernel"]
    ratio = s.threshold[:12] / np.abs(s.weights_in[:, :12].astype(int)).max(axis=0)
    np.testing.assert_allclose(ratio, 1.0 / np.abs(exact).max(axis=0) * 1.0, rtol=0.02)
    err = net.quantization_error
    assert set(err) == {"dense_1", "dense_2", "readout"}
    assert all(0 < e["weights"] < 0.02 for e in err.values())


def test_thresholds_that_would_overflow_rescale_the_weights():
    graph, _ = small_graph()
    net = build_xylo_network(graph, quantization="global", weight_shift=0, v_thresh=1000.0)
    s = net.spec
    assert s.threshold.max() == 32767                     # capped at int16
    w = np.concatenate([s.weights_in, s.weights_rec]).astype(int)
    # weights shrink by the same factor: threshold / max weight stays 1000 / max|w_float|
    w_float = np.concatenate([graph["dense_1"].weights["kernel"].ravel(),
                              graph["dense_2"].weights["kernel"].ravel()])
    assert abs(32767 / np.abs(w).max() - 1000 / np.abs(w_float).max()) \
        < 0.02 * 1000 / np.abs(w_float).max()


def test_auto_weight_shift_keeps_headroom_and_explicit_shift_is_used():
    graph, _ = small_graph()
    auto = build_xylo_network(graph, quantization="global", weight_shift="auto").spec
    assert auto.threshold.max() <= 32767 // 8 and auto.weight_shift_rec > 0
    assert auto.threshold.max() * 2 > 32767 // 8     # one more shift would break the rule
    three = build_xylo_network(graph, quantization="global", weight_shift=3).spec
    assert three.weight_shift_in == three.weight_shift_rec == 3


def test_time_constants_become_decay_shifts():
    assert dash_for(2.0, 1.0, "k") == 1 and dash_for(16.0, 1.0, "k") == 4
    np.testing.assert_array_equal(dash_for([3.0, 40.0], 1.0, "k"), [2, 5])
    with pytest.raises(ConfigError, match="xylo.tau_syn = 1 must exceed the time step"):
        dash_for(1.0, 1.0, "xylo.tau_syn")
    with pytest.raises(ConfigError, match="slowest decay"):
        dash_for(1e6, 1.0, "cell.tau_mem")
    graph, _ = small_graph()
    net = build_xylo_network(graph, tau_syn=8.0, tau_mem=20.0)
    assert set(net.spec.dash_syn) == {3} and set(net.spec.dash_mem) == {4}
    assert set(build_xylo_network(graph).spec.dash_mem) == {15}


# --- encoding, simulation, export --------------------------------------------

def test_sigma_delta_events_count_the_value_exactly():
    graph, _ = small_graph()
    net = build_xylo_network(graph)
    net.events_per_unit = 2.0
    x = np.zeros((1, 16)); x[0, :4] = [0.25, 1.0, 9.0, -1.0]
    ev = encode_events(net, x, 40)
    assert ev.shape == (1, 40, 16)
    np.testing.assert_array_equal(ev[0].sum(axis=0)[:4], [20, 80, 40 * 15, 0])
    np.testing.assert_array_equal(ev[0, :4, 0], [0, 1, 0, 1])   # 0.5 per step accumulates


def test_poisson_events_have_the_mean_rate():
    graph, _ = small_graph()
    net = build_xylo_network(graph)
    net.encoding = "poisson"
    x = np.full((50, 16), 0.5)
    ev = encode_events(net, x, 100)
    assert abs(ev.mean() - 0.5) < 0.02
    np.testing.assert_array_equal(ev, encode_events(net, x, 100))   # seeded


def test_evaluation_runner_matches_the_step_by_step_simulation():
    graph, x = small_graph()
    net = build_xylo_network(graph, quantization="global")
    out = snnconv.simulators.get_simulator("xylo").simulate_batch(net, x[:5], 30)
    trace = simulate_xylo(net.spec, encode_events(net, x[:5], 30), record=True)
    np.testing.assert_array_equal(out.spikes["dense_1"], trace.spikes[:, :, :12].sum(axis=2))
    np.testing.assert_array_equal(out.spikes["dense_2"], trace.spikes[:, :, 12:].sum(axis=2))
    np.testing.assert_array_equal(out.spikes["readout"], trace.spikes_out.sum(axis=2))
    # the score: output spikes so far plus the membrane potential in thresholds
    score = np.cumsum(trace.spikes_out, axis=1) + trace.v_out / net.spec.threshold_out
    np.testing.assert_allclose(out.readout, score, rtol=1e-6)


def test_export_load_simulate_reproduces_the_spikes(tmp_path):
    graph, x = small_graph()
    net = build_xylo_network(graph, quantization="per_channel", chip="syns61201")
    path = net.save(tmp_path / "net.npz")
    with np.load(path) as f:
        for key in ("weights_in", "weights_rec", "weights_out", "dash_mem", "dash_syn",
                    "dash_syn_2", "dash_mem_out", "dash_syn_out", "threshold", "threshold_out",
                    "bias", "bias_out", "weight_shift_in", "weight_shift_rec",
                    "weight_shift_out", "dt", "chip"):
            assert key in f.files, key
        assert f["weights_in"].dtype == np.int8 and f["threshold"].dtype == np.int16
    back = load_xylo(path)
    assert back.layers == net.layers and back.spec.chip == "syns61201"
    sim = snnconv.simulators.get_simulator("xylo")
    a, b = sim.simulate_batch(net, x[:8], 25), sim.simulate_batch(back, x[:8], 25)
    np.testing.assert_array_equal(a.readout, b.readout)
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k])


# --- accuracy against the float SNN -----------------------------------------

@pytest.fixture(scope="module")
def example():
    with np.load(bundled_dataset_path()) as d:
        x = d["x_test"][:300].astype(np.float32) / 255
        y = d["y_test"][:300]
        xn = d["x_norm"][:300].astype(np.float32) / 255
    graph = snnconv.normalize(snnconv.parse(EXAMPLE_MODEL), xn)
    return graph, x, y


def test_quantized_network_stays_close_to_the_float_snn(example):
    graph, x, y = example
    ini = snnconv.evaluate(snnconv.convert(graph), x, y, num_steps=60, progress=False)
    for method in ("global", "per_channel"):
        net = snnconv.convert(graph, simulator="xylo", quantization=method, input_rate=4000)
        r = snnconv.evaluate(net, x, y, num_steps=60, progress=False)
        assert r.accuracy > ini.accuracy - 0.03, (method, r.accuracy, ini.accuracy)
        assert r.neurons == {"dense1": 128, "dense2": 64, "readout": 10}
        assert r.synops > 0 and r.decision_steps is None


# --- the command line ---------------------------------------------------------

def xylo_config(tmp_path, extra="", cell="v_init = 0"):
    cfg = tmp_path / "xylo.ini"
    cfg.write_text(f"""
[paths]
filename_ann = {EXAMPLE_MODEL}
dataset_path = {bundled_dataset_path()}
log_dir_of_current_run = out
[input]
input_scale = 0.00392156862745098
input_rate = 4000
[normalization]
num_norm_samples = 200
[simulation]
simulator = xylo
duration = 20
num_to_test = 100
[output]
verbose = 0
plot = false
[cell]
{cell}
{extra}
""")
    return cfg


def test_cli_check_reports_fit_and_misfit(tmp_path, capsys):
    cfg = xylo_config(tmp_path)
    assert main(["run", str(cfg), "--check", "--set", "output.verbose=1"]) == 0
    out = capsys.readouterr().out
    assert "hidden neurons         192 / 992" in out and "fits" in out
    assert main(["run", str(cfg), "--check", "--set", "xylo.chip=audio2"]) == 2
    err = capsys.readouterr().err
    assert "output neurons: 10 > 8 on Xylo Audio 2 (layer readout)" in err
    assert "fan-out per hidden neuron: 64" not in err           # 64 is allowed
    assert not (tmp_path / "out").exists()


def test_cli_run_writes_the_specification_and_evaluates_it_again(tmp_path):
    cfg = xylo_config(tmp_path)
    assert main(["run", str(cfg)]) == 0
    run = tmp_path / "out"
    summary = (run / "summary.json").read_text()
    assert '"simulator": "xylo"' in summary and '"xylo_quantization_error"' in summary
    assert (run / "snn.npz").is_file() and not (run / "snn.keras").exists()
    first = snnconv.report.read_results(run)
    cfg2 = xylo_config(tmp_path, "").read_text().replace("log_dir_of_current_run = out",
                                                         "log_dir_of_current_run = again")
    (tmp_path / "again.ini").write_text(cfg2)
    assert main(["evaluate", str(tmp_path / "again.ini"), "--snn", str(run / "snn.npz")]) == 0
    again = snnconv.report.read_results(tmp_path / "again" / "snn")
    np.testing.assert_array_equal(first["accuracy_per_step"], again["accuracy_per_step"])


def test_cli_refuses_cell_settings_xylo_cannot_run(tmp_path, capsys):
    cfg = xylo_config(tmp_path, cell="v_init = 0\nreset = zero")
    assert main(["run", str(cfg)]) == 2
    assert "cell.reset = zero cannot be used with simulation.simulator = xylo" \
        in capsys.readouterr().err
