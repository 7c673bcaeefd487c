"""Sample recordings (spike trains, membrane potentials, first-spike times) and their plots."""
import numpy as np
import pytest

import snnconv
from snnconv.simulators.ini.recording import record_samples
from snnconv.simulators.ini import simulate_batch


@pytest.fixture(scope="module")
def graph_and_x(bundled):
    return bundled.graph, bundled.data.x_test[:2]


@pytest.mark.parametrize("code, burst", [("rate", "auto"), ("rate", 1), ("ttfs", "auto"),
                                         ("ttfs_dyn_thresh", "auto")])
def test_recorded_spikes_equal_the_compiled_loop(graph_and_x, code, burst):
    graph, x = graph_and_x
    snn = snnconv.convert(graph, spike_code=code, burst=burst)
    steps = 12
    rec = record_samples(snn, x, steps, max_neurons=10**6)      # every neuron
    loop = simulate_batch(snn, x, steps)
    assert set(rec) == set(loop.spikes)
    for layer, r in rec.items():
        np.testing.assert_array_equal(r["neurons"], np.arange(r["spikes"].shape[2]))
        np.testing.assert_allclose(r["spikes"].sum(axis=2), loop.spikes[layer], rtol=1e-6)
        if code == "rate":
            # IF with reset by subtraction, up to k spikes per step (the default
            # burst, 4, or 1): a step with fewer than k spikes ends below threshold;
            # a spike came from v >= v_thresh, so what the subtraction leaves is >= 0
            k = snn.get_layer(layer).neuron.max_spikes_per_dt
            assert k == (4 if burst == "auto" else 1)
            assert set(np.unique(r["spikes"])) <= set(range(k + 1))
            spiked = r["spikes"] > 0
            assert np.all(r["v"][r["spikes"] < k] < r["v_thresh"])
            assert np.all(r["v"][spiked] >= -1e-5)
            assert "first_spike_steps" not in r
        else:
            assert "v" not in r
            assert r["spikes"].sum(axis=1).max() <= 1           # at most one spike each
            fired = r["spikes"].any(axis=1)
            first = np.where(fired, r["spikes"].argmax(axis=1) + 1, 0)
            np.testing.assert_array_equal(r["first_spike_steps"], first)


def test_subset_of_neurons_is_fixed_and_sorted(graph_and_x):
    graph, x = graph_and_x
    snn = snnconv.convert(graph)
    a = record_samples(snn, x, 5, max_neurons=16, seed=3)
    b = record_samples(snn, x, 5, max_neurons=16, seed=3)
    for layer in a:
        assert len(a[layer]["neurons"]) == 16
        assert np.all(np.diff(a[layer]["neurons"]) > 0)
        np.testing.assert_array_equal(a[layer]["neurons"], b[layer]["neurons"])
        np.testing.assert_array_equal(a[layer]["spikes"], b[layer]["spikes"])
