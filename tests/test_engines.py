"""The INI engines (``graph``, ``xla``, ``auto``) simulate the same network.

XLA fuses and reorders float operations, so a membrane potential that
reaches the threshold exactly can cross it in one engine and not in the
other. The engines are compared as issue 22 asks: the same predictions, and
every layer's spike count equal within float rounding (1e-5 relative; on
the small branched network every spike is the same). Every spike code, the rate code's neuron
variants, branches with ``Add``/``Concatenate``/max pooling, and TTFS merge
delays are covered. Poisson input is the exception: XLA draws its own
random numbers, so its spikes are a different (equally distributed) draw.
"""
from __future__ import annotations

import numpy as np
import pytest

import snnconv
from helpers import make_branched_model, normalise_on_random
from snnconv.simulators.ini import simulate_batch

CASES = {
    "rate": {},
    "rate zero reset": {"reset": "zero"},
    "lif": {"tau_mem": 5.0},
    "multi-spike": {"max_spikes_per_dt": 3},
    "refractory": {"tau_refrac": 2.0},
    "ttfs": {"spike_code": "ttfs", "dt": 0.25},
    "ttfs_dyn_thresh": {"spike_code": "ttfs_dyn_thresh", "dt": 0.25},
    "ttfs_exact": {"spike_code": "ttfs_exact", "dt": 0.05},
}


@pytest.fixture(scope="module")
def branched():
    return normalise_on_random(make_branched_model(), n=48)


def _same(a, b, exact=True):
    assert np.array_equal(a.readout[:, -1].argmax(1), b.readout[:, -1].argmax(1))
    assert a.spikes.keys() == b.spikes.keys()
    for name in a.spikes:
        if exact:
            np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=name)
        else:
            np.testing.assert_allclose(a.spikes[name].sum(), b.spikes[name].sum(), rtol=1e-5,
                                       err_msg=name)
    if exact:
        np.testing.assert_allclose(a.readout, b.readout, rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(a.synops, b.synops, rtol=1e-6)
    else:
        np.testing.assert_allclose(a.synops.sum(), b.synops.sum(), rtol=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_xla_equals_graph_on_a_branched_network(branched, case):
    graph, x = branched
    snn = snnconv.convert(graph, **CASES[case])
    # 33 steps: XLA takes them 5 per pass of its loop, and the last 3 one by one
    _same(simulate_batch(snn, x, 33, engine="graph"), simulate_batch(snn, x, 33, engine="xla"))


@pytest.mark.parametrize("case", ["ttfs", "ttfs_dyn_thresh"])
def test_early_stopping_under_xla_with_several_steps_per_pass(branched, case):
    """XLA takes this small network's steps 5 per pass; the samples still stop
    at the step they decide, inside a pass."""
    graph, x = branched
    snn = snnconv.convert(graph, **CASES[case])
    a = simulate_batch(snn, x, 33, early_stopping=True, engine="graph")
    b = simulate_batch(snn, x, 33, early_stopping=True, engine="xla")
    _same(a, b)
    # it stopped: the steps it skipped would have spent synaptic operations
    full = simulate_batch(snn, x, 33, early_stopping=False, engine="xla")
    assert b.synops.sum() < full.synops.sum()
    np.testing.assert_array_equal(b.readout[:, -1].argmax(1), full.readout[:, -1].argmax(1))


def test_xla_equals_graph_on_the_bundled_cnn_with_early_stopping(bundled):
    x = bundled.data.x_test[:40]
    for code, stop in (("rate", False), ("ttfs", True)):
        snn = snnconv.convert(bundled.graph, spike_code=code, dt=1.0 if code == "rate" else 0.5)
        _same(simulate_batch(snn, x, 24, early_stopping=stop, engine="graph"),
              simulate_batch(snn, x, 24, early_stopping=stop, engine="xla"), exact=False)


def test_auto_takes_xla_for_small_maps_and_the_graph_for_large_ones(bundled, branched):
    from snnconv.simulators.ini.engine import xla_pays
    from snnconv.simulators.ini.simulator import IniSimulator
    graph, _ = branched                                   # 10x10 maps: 100 positions
    assert xla_pays(snnconv.convert(graph))
    assert not xla_pays(snnconv.convert(graph, poisson_input=True))
    cnn = snnconv.convert(bundled.graph)                  # 28x28 maps
    assert not xla_pays(cnn)
    assert IniSimulator().engine_used(cnn, "auto") == "graph"
    assert IniSimulator().engine_used(cnn, "xla") == "xla"


def test_evaluate_takes_the_engine_and_refuses_an_unknown_one(bundled):
    snn = snnconv.convert(bundled.graph)
    x, y = bundled.data.x_test[:50], bundled.data.y_test[:50]
    results = [snnconv.evaluate(snn, x, y, num_steps=12, batch_size=25, progress=False,
                                engine=engine) for engine in ("graph", "xla", "auto")]
    for r in results[1:]:
        assert np.array_equal(r.predictions, results[0].predictions)
        for name, counts in r.spikes_per_step.items():
            np.testing.assert_allclose(counts.sum(), results[0].spikes_per_step[name].sum(),
                                       rtol=1e-5)
    with pytest.raises(ValueError, match="engine 'fast'.*auto"):
        snnconv.evaluate(snn, x, y, num_steps=4, progress=False, engine="fast")


def test_poisson_input_under_xla_is_a_draw_of_the_same_rates(branched):
    graph, x = branched
    snn = snnconv.convert(graph, poisson_input=True, seed=3)
    steps = 400
    a = simulate_batch(snn, x, steps, engine="graph")
    b = simulate_batch(snn, x, steps, engine="xla")
    name = snn.layers[1].name if snn.layers[1].name in a.spikes else next(iter(a.spikes))
    rate_a, rate_b = a.spikes[name].mean(), b.spikes[name].mean()
    assert rate_a > 0
    assert abs(rate_a - rate_b) < 0.05 * rate_a


def test_snnconv_run_takes_simulation_engine_and_refuses_it_where_it_does_not_apply(tmp_path):
    import json

    from helpers import write_bundled_config
    from snnconv.cli import main
    from snnconv.config import load_config
    from snnconv.errors import ConfigError
    runs = {}
    for engine in ("graph", "xla"):
        folder = tmp_path / engine
        folder.mkdir()
        path = write_bundled_config(folder / "c.ini", 50, {
            "duration": 6, "num_to_test": 40, "batch_size": 40, "engine": engine})
        snnconv.run(load_config(path))
        runs[engine] = json.loads((folder / "out" / "summary.json").read_text())
    assert runs["graph"]["snn_accuracy"] == runs["xla"]["snn_accuracy"]
    assert runs["graph"]["engine"] == "graph" and runs["xla"]["engine"] == "xla"
    bad = write_bundled_config(tmp_path / "bad.ini", 50, {
        "duration": 6, "simulator": "xylo", "engine": "xla"}, extra="[cell]\nv_init = 0\n")
    with pytest.raises(ConfigError, match=r"simulation\.engine = xla cannot be used with "
                                          r"simulation\.simulator = xylo"):
        snnconv.run(load_config(bad))
    assert main(["run", str(bad)]) == 2
    assert not (tmp_path / "out").exists()
