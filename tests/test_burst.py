"""``burst`` (``cell.burst``): rate-coded neurons that carry their value in finer steps.

With ``burst = k`` a neuron's threshold is ``v_thresh / k``, it emits up to
``k * max_spikes_per_dt`` spikes a step and starts at ``v_init / k``. Checked
against a hand-worked count (a neuron with a constant current ``a`` and the
default start at half its threshold has emitted ``floor(k*T*a + 1/2)``
spikes after T steps), against the same neurons given by their three keys,
against the ANN's activations (finer steps: closer at few steps), and the
refusals where several spikes a step do not apply.
"""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest

import snnconv
from helpers import make_branched_model, write_bundled_config
from snnconv.errors import ConfigError
from snnconv.simulators.ini import simulate_batch


def one_neuron_net():
    """Input -> one ReLU neuron with weight 1 (the input is its current) -> readout."""
    inp = keras.Input((1,))
    hidden = keras.layers.Dense(1, activation="relu", name="hidden",
                                kernel_initializer="ones", bias_initializer="zeros")(inp)
    out = keras.layers.Dense(2, activation="softmax", name="out")(hidden)
    return keras.Model(inp, out)


@pytest.mark.parametrize("burst", [1, 2, 4])
def test_a_neuron_counts_its_current_in_burst_times_finer_levels(burst):
    graph = snnconv.parse(one_neuron_net())
    snn = snnconv.convert(graph, burst=burst)
    a = np.array([[0.13], [0.37], [0.86], [1.0]], np.float32)
    steps = 5
    out = simulate_batch(snn, a, steps, engine="graph")
    counts = np.cumsum(out.spikes["hidden"], axis=1)[:, -1]
    # v starts at half the threshold 1/k and gains a a step: floor((T*a + 1/(2k)) * k)
    np.testing.assert_array_equal(counts, np.floor(burst * steps * a[:, 0] + 0.5))
    neuron = snn.get_layer("hidden").neuron
    assert (neuron.v_thresh, neuron.max_spikes_per_dt, neuron.v_init) == (
        1.0 / burst, burst, 0.5 / burst)
    # each spike carries 1/k: the layer's signal after T steps is the count / k
    assert snn.get_layer("hidden").spike_amplitude == pytest.approx(1.0 / burst)


@pytest.fixture(scope="module")
def branched():
    model = make_branched_model()
    x = np.random.default_rng(1).random((32, 10, 10, 2)).astype("float32")
    return snnconv.normalize(snnconv.parse(model), x, method="max"), x


def test_burst_is_the_three_cell_keys_it_stands_for(branched):
    graph, x = branched
    a = simulate_batch(snnconv.convert(graph, burst=3, v_thresh=1.5, max_spikes_per_dt=2,
                                       v_init=0.6), x, 12, engine="graph")
    b = simulate_batch(snnconv.convert(graph, v_thresh=0.5, max_spikes_per_dt=6, v_init=0.2,
                                       burst=1), x, 12, engine="graph")
    np.testing.assert_array_equal(a.readout, b.readout)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])


def test_bursts_bring_the_rates_closer_to_the_ann_in_few_steps(branched):
    """At T = 4 one spike a step quantises each rate to 1/4; four spikes a step to 1/16."""
    graph, x = branched
    steps = 4
    ann = snnconv.build_ann(graph, outputs="all")
    acts = dict(zip([n.name for n in graph if n.op != "input"], ann.predict_on_batch(x[:8])))
    frames = np.repeat(x[:8, None], steps, axis=1)
    errors = {}
    for burst in (1, 4):
        snn = snnconv.convert(graph, burst=burst)
        errors[burst] = {}
        for name in ("a", "b_relu", "add", "dw"):
            lay = snn.get_layer(name)
            signal = keras.Model(snn.inputs, lay.output).predict_on_batch(frames)
            # the layer's signal per step is what it stands for in the ANN
            errors[burst][name] = float(np.abs(signal.mean(axis=1)
                                               - np.clip(acts[name], 0, 1)).mean())
    for name in errors[1]:
        assert errors[4][name] < 0.6 * errors[1][name], (name, errors)
        assert errors[4][name] < 0.05, (name, errors)


@pytest.mark.parametrize("burst", [0, 1.5, True])
def test_burst_must_be_a_positive_integer(branched, burst):
    with pytest.raises(ConfigError, match="cell.burst"):
        snnconv.convert(branched[0], burst=burst)


@pytest.mark.parametrize("code", ["ttfs", "ttfs_dyn_thresh", "ttfs_exact"])
def test_burst_is_refused_by_the_ttfs_codes(branched, code):
    with pytest.raises(ConfigError, match=r"cell.burst = 2 applies to the rate code only"):
        snnconv.convert(branched[0], spike_code=code, burst=2)


def test_snnconv_run_takes_cell_burst(tmp_path, capsys):
    from snnconv.cli import main
    cfg = write_bundled_config(tmp_path / "c.ini", 50, {"num_to_test": 20, "duration": 3,
                                                       "batch_size": 20},
                               extra="[cell]\nburst = 4\n")
    assert main(["run", str(cfg)]) == 0
    snn = snnconv.load_snn(next((tmp_path / "out").rglob("*.keras")))
    neuron = snn.get_layer("conv1").neuron
    assert (neuron.v_thresh, neuron.max_spikes_per_dt, neuron.v_init) == (0.25, 4, 0.125)


def test_snnconv_run_refuses_cell_burst_on_xylo(tmp_path, capsys):
    from snnconv.cli import main
    cfg = write_bundled_config(tmp_path / "c.ini", 20, {"simulator": "xylo", "num_to_test": 5,
                                                       "duration": 5},
                               extra="[cell]\nv_init = 0\nburst = 2\n")
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "cell.burst = 2" in err and "xylo" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.keras"))


def test_brian2_refuses_bursts_before_it_needs_brian2(branched):
    with pytest.raises(ConfigError, match=r"cell.burst = 2 cannot be used with "
                                          r"simulation.simulator = brian2"):
        snnconv.convert(branched[0], simulator="brian2", burst=2)


def test_nir_export_refuses_bursts_naming_the_setting(branched, tmp_path):
    pytest.importorskip("nir")
    snn = snnconv.convert(branched[0], burst=2, max2avg_pool=True)
    with pytest.raises(Exception, match="burst=1"):
        snnconv.export_nir(snn, tmp_path / "net.nir")


def test_every_backend_takes_burst_only_where_it_says_so():
    """Simulator.bursts decides, one check for all backends (config and API)."""
    from snnconv.simulators import SIMULATORS, get_simulator
    for name in SIMULATORS:
        sim = get_simulator(name)
        for code in sim.spike_codes or ("rate",):
            assert sim.check_burst(1, code) == 1
            if code in sim.bursts:
                assert sim.check_burst(4, code) == 4
            else:
                with pytest.raises(ConfigError, match="cell.burst = 4"):
                    sim.check_burst(4, code)
    assert get_simulator("INI").bursts == ("rate",)


def _neuron(snn, name):
    neuron = snn.get_layer(name).neuron
    return neuron.v_thresh, neuron.max_spikes_per_dt, neuron.v_init


def test_auto_is_the_default_and_gives_the_plain_rate_code_four_spikes_a_step(branched):
    """The API's default (cell.burst = auto) is defaults.AUTO_BURST spikes a step,
    the same network as burst = 4 spike for spike."""
    from snnconv import defaults
    graph, x = branched
    assert (defaults.BURST, defaults.AUTO_BURST) == ("auto", 4)
    auto, four = snnconv.convert(graph), snnconv.convert(graph, burst=4)
    assert _neuron(auto, "a") == _neuron(four, "a") == (0.25, 4, 0.125)
    a = simulate_batch(auto, x, 6, engine="graph")
    b = simulate_batch(four, x, 6, engine="graph")
    np.testing.assert_array_equal(a.readout, b.readout)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name])


@pytest.mark.parametrize("options", [{"reset": "zero"}, {"reset": "to_value", "v_reset": 0.1},
                                     {"tau_refrac": 1.0}])
def test_auto_keeps_binary_spikes_where_the_neurons_are_not_the_plain_rate_code(branched,
                                                                                 options):
    snn = snnconv.convert(branched[0], **options)
    assert _neuron(snn, "a") == (1.0, 1, 0.5)


def test_auto_keeps_binary_spikes_for_a_network_trained_with_qcfs():
    """QCFS's conversion is exact with one spike of the trained threshold a step."""
    inp = keras.Input((4,))
    hidden = keras.layers.Dense(3, name="hidden")(inp)
    hidden = snnconv.layers.QCFS(levels=4, name="q")(hidden)
    model = keras.Model(inp, keras.layers.Dense(2, activation="softmax", name="out")(hidden))
    graph = snnconv.parse(model)
    assert any(node.params.get("qcfs") for node in graph.nodes)
    snn = snnconv.convert(graph)
    v_thresh, spikes, v_init = next(_neuron(snn, lay.name) for lay in snn.layers
                                    if getattr(lay, "neuron", None) is not None)
    assert spikes == 1 and v_init == pytest.approx(0.5 * v_thresh)
    four = snnconv.convert(graph, burst=4)
    assert next(lay.neuron.max_spikes_per_dt for lay in four.layers
                if getattr(lay, "neuron", None) is not None) == 4


def test_auto_is_one_wherever_bursts_do_not_apply():
    from snnconv.simulators import SIMULATORS, get_simulator
    for name in SIMULATORS:
        sim = get_simulator(name)
        for code in sim.spike_codes or ("rate",):
            assert sim.check_burst("auto", code) == (4 if code in sim.bursts else 1), (name, code)


@pytest.mark.parametrize("code", ["ttfs", "ttfs_dyn_thresh", "ttfs_exact"])
def test_the_ttfs_codes_convert_with_the_default_burst(branched, code):
    snn = snnconv.convert(branched[0], spike_code=code)
    assert not any(getattr(getattr(lay, "neuron", None), "max_spikes_per_dt", 1) > 1
                   for lay in snn.layers)


def test_config_reads_auto_and_integers_and_says_what_it_takes(tmp_path):
    from snnconv.config import load_config
    for text, value in (("auto", "auto"), ("AUTO", "auto"), ("3", 3)):
        cfg = write_bundled_config(tmp_path / "c.ini", 5, {"duration": 3},
                                   extra=f"[cell]\nburst = {text}\n")
        assert load_config(cfg).cell.burst == value
    cfg = write_bundled_config(tmp_path / "c.ini", 5, {"duration": 3},
                               extra="[cell]\nburst = many\n")
    with pytest.raises(ConfigError, match=r"cell.burst.*an integer >= 1 or auto"):
        load_config(cfg)


def test_snnconv_run_with_the_template_default_bursts_and_normalises_for_its_levels(
        tmp_path, capsys):
    """The template's cell.burst = auto: four spikes a step, and the T-aware
    normalisation over 4 T levels."""
    from snnconv.cli import main
    cfg = write_bundled_config(tmp_path / "c.ini", 50, {"num_to_test": 20, "duration": 3,
                                                       "batch_size": 20})
    cfg.write_text(cfg.read_text().replace("num_norm_samples = 50",
                                           "num_norm_samples = 50\nmethod = t_aware")
                   .replace("verbose = 0", "verbose = 1"))
    assert main(["run", str(cfg)]) == 0
    assert "12 levels" in capsys.readouterr().out
    snn = snnconv.load_snn(next((tmp_path / "out").rglob("*.keras")))
    assert _neuron(snn, "conv1") == (0.25, 4, 0.125)
    assert snn.get_layer("conv1").neuron.burst == 4
    summary = json.loads(next((tmp_path / "out").rglob("summary.json")).read_text())
    assert summary["burst"] == 4
