"""The numba kernels against the TF reference: same spike trains in, same network out.

Training: for every rule the fast path covers, the numba trainer and the
XLA trainer (which runs the TF rules of ``test_stdp_rules.py``) learn from
the same input spikes on a small random network; spike counts must be equal
and weights and thresholds equal to float32 rounding. Inference: the batch
kernel against ``network.neuron_step``.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from snnconv.stdp import NetworkParams, new_network, run_batch, spike_counts, train
from snnconv.stdp.kernels import poisson_trains
from snnconv.stdp.network import initial_neuron_state, neuron_step
from snnconv.stdp.training import _FastTrainer, _trainer, _XLATrainer

# 64 inputs, 8 neurons, 3 samples of 120 steps: a few hundred steps of learning
SMALL = NetworkParams(n_input=64, n_exc=8, time_per_sample=120.0, w_norm=16.0, seed=3)

_CASES = [
    ("postpre", {}, {}),
    ("postpre", {"nu_pre": 0.02, "nu_post": 0.05, "w_max": 0.4}, {}),   # starts out of bounds
    ("postpre", {}, {"one_spike": False, "w_norm": 0.0}),
    ("weight_dependent", {"nu_pre": 0.05, "nu_post": 0.1}, {}),
    ("nearest_online", {"w_norm": 16.0}, {}),
    ("full_online", {"w_norm": 16.0}, {}),
    ("exponential_wta", {}, {}),
    ("exponential_wta", {"wta": False, "eta": 0.05, "unpaired_dt": -2.0}, {"one_spike": False}),
    ("exponential_wta", {"eta": 0.5, "levels": [0.0, 0.25, 0.5, 0.75, 1.0], "noise": 0.1}, {}),
    ("exponential_wta", {"eta": 0.05, "noise": 0.1}, {}),
    ("exponential_wta", {"wta": False, "noise": 0.3}, {"one_spike": False}),
    ("postpre_int", {}, {}),
    ("postpre_int", {"nu_pre": 400, "max_threshold": 3340.0}, {"theta_plus": 0.02}),  # halving
]


def _inputs(params, samples, seed=0):
    rng = np.random.default_rng(seed)
    prob = rng.uniform(0, 0.15, (samples, params.n_input)).astype(np.float32)
    prob[:, ::5] = 0                                     # silent pixels, as in images
    return [poisson_trains(p, params.steps, params.seed, k) for k, p in enumerate(prob)]


@pytest.mark.parametrize("rule,rule_params,net_params", _CASES,
                         ids=[f"{r}-{'-'.join([*p, *n]) or 'default'}" for r, p, n in _CASES])
def test_fast_training_equals_the_xla_reference(rule, rule_params, net_params):
    params = dataclasses.replace(SMALL, **net_params)
    net = new_network(params, rule, rule_params)
    net.theta[:2] = 1.0           # raised thresholds (postpre_int: halved from the first step)
    fast, ref = _trainer(net), _XLATrainer(net)
    assert isinstance(fast, _FastTrainer)
    total = 0
    for k, trains in enumerate(_inputs(params, 3)):
        counts_fast = fast.sample(trains, params.seed + k)
        counts_ref = ref.sample(trains, params.seed + k)
        np.testing.assert_array_equal(counts_fast, counts_ref)
        (w_fast, th_fast), (w_ref, th_ref) = fast.state(), ref.state()
        assert w_fast.dtype == w_ref.dtype
        np.testing.assert_allclose(w_fast, w_ref, rtol=1e-5, atol=1e-6)     # ints: equal
        np.testing.assert_allclose(th_fast, th_ref, rtol=1e-6, atol=0)
        total += counts_ref.sum()
    assert total > 10                                      # the neurons fired ...
    assert not np.allclose(w_ref, net.weights, atol=1e-4)  # ... and the rule learned


def test_fast_postpre_int_halves_every_synapse_of_a_neuron_over_max_threshold():
    """Also in the rows of spiking inputs when the neuron has neither spiked nor a trace."""
    net = new_network(SMALL, "postpre_int", {"max_threshold": 3340.0})
    net.theta[:2] = 1.0                                  # (13 + 1) * 256 > 3340
    trains = np.zeros((3, SMALL.n_input), bool)
    trains[1, ::2] = True
    fast, ref = _trainer(net), _XLATrainer(net)
    np.testing.assert_array_equal(fast.sample(trains, 0), ref.sample(trains, 0))
    np.testing.assert_array_equal(fast.state()[0], ref.state()[0])
    np.testing.assert_array_equal(fast.state()[0][:, :2], net.weights[:, :2] >> 3)


def test_train_gives_the_same_network_on_the_xla_path(monkeypatch):
    """A rule the kernel does not know trains in XLA: the whole loop, with repeats."""
    import snnconv.stdp.training as tr
    x = np.random.default_rng(0).uniform(0, 1, (6, 64)).astype(np.float32)
    x[:2] *= 0.05                           # too dim: shown again, brighter
    params = dataclasses.replace(SMALL, min_spikes=3)
    nets = {}
    for path in ("fast", "xla"):
        if path == "xla":
            monkeypatch.setattr(tr, "fast_rule", lambda rule: None)
        nets[path] = net = new_network(params, "postpre")
        log = train(net, x, np.zeros(6, int), progress=False)
        assert log.repeats > 0
    np.testing.assert_allclose(nets["fast"].weights, nets["xla"].weights, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(nets["fast"].theta, nets["xla"].theta, rtol=1e-6)


def test_inference_kernel_equals_the_tf_neuron_step():
    params = dataclasses.replace(SMALL, one_spike=False)
    net = new_network(params)
    net.theta = np.linspace(0, 3, params.n_exc).astype(np.float32)
    x = np.random.default_rng(1).uniform(0, 1, (3, params.n_input)).astype(np.float32)
    x[:, ::4] = 0
    exc, inh, inputs = run_batch(net, x)                 # key: the seed
    prob = x * np.float32(params.intensity * params.dt / 1000.0)      # as run_batch draws
    trains = np.stack([poisson_trains(row, params.steps, params.seed, b)
                       for b, row in enumerate(prob)])
    state = initial_neuron_state(params, len(x))
    w, theta = tf.constant(net.weights), tf.constant(net.theta[None])
    for t in range(params.steps):
        s_in = tf.constant(trains[:, t], tf.float32)
        state, s, _ = neuron_step(params, state, s_in, w, theta)
        np.testing.assert_array_equal(exc[:, t], s.numpy(), err_msg=f"step {t}")
        np.testing.assert_array_equal(inh[:, t], state[5].numpy().sum(axis=1))
        np.testing.assert_array_equal(inputs[:, t], trains[:, t].sum(axis=1))
    assert exc.sum() > 10
    # spike_counts runs the same kernel without recording every step
    np.testing.assert_array_equal(spike_counts(net, x), exc.sum(axis=1))
    


def test_poisson_trains_fire_at_their_probability_and_are_fixed_by_the_keys():
    prob = np.array([0.0, 0.02, 0.1, 0.5, 1.0], np.float32)
    trains = poisson_trains(prob, 20000, 0, 5)
    np.testing.assert_allclose(trains.mean(axis=0), prob, atol=0.01)
    assert not trains[:, 0].any() and trains[:, 4].all()
    np.testing.assert_array_equal(trains, poisson_trains(prob, 20000, 0, 5))
    assert not np.array_equal(trains, poisson_trains(prob, 20000, 0, 6))
    assert not np.array_equal(trains, poisson_trains(prob, 20000, 1, 5))
    # pixels draw independently: two equal probabilities, different trains
    two = poisson_trains(np.array([0.3, 0.3], np.float32), 2000, 0, 0)
    assert abs(np.corrcoef(two.T.astype(float))[0, 1]) < 0.1
