"""The STDP network: neuron dynamics, labels and votes, training, persistence, the pipeline.

The learning rules themselves are checked against hand-computed updates in
``test_stdp_rules.py``.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import tensorflow as tf

import snnconv
from snnconv.cli import main
from snnconv.data import bundled_dataset_path
from snnconv.stdp import (NetworkParams, assign_labels, label_neurons, load_stdp, new_network,
                          spike_counts, train)
from snnconv.stdp import labels as lab
from snnconv.stdp.network import initial_neuron_state, neuron_step


# --- labels and votes ---------------------------------------------------------

COUNTS = np.array([[4, 0, 1, 0],      # class 0
                   [2, 0, 3, 0],      # class 0
                   [0, 5, 1, 0],      # class 1
                   [0, 3, 5, 0]])     # class 2
LABELS = np.array([0, 0, 1, 2])


def test_labels_are_the_class_of_highest_mean_response_and_silent_neurons_abstain():
    assigned, proportions = assign_labels(COUNTS, LABELS, 3)
    # means per class: n0 (3, 0, 0) -> 0; n1 (0, 5, 3) -> 1; n2 (2, 1, 5) -> 2; n3 silent
    np.testing.assert_array_equal(assigned, [0, 1, 2, -1])
    np.testing.assert_allclose(proportions[2], [2 / 8, 1 / 8, 5 / 8])
    np.testing.assert_array_equal(proportions[3], [0, 0, 0])


def test_both_votes_on_constructed_counts():
    assigned, proportions = assign_labels(COUNTS, LABELS, 3)
    sample = np.array([[1.0, 2.0, 2.5, 9.0]])
    # all-activity: one neuron per class -> scores (1, 2, 2.5): class 2
    np.testing.assert_allclose(lab.all_activity_scores(sample, assigned, 3), [[1, 2, 2.5]])
    # proportion: n0 (1,0,0)*1 + n1 (0,5/8,3/8)*2 + n2 (2/8,1/8,5/8)*2.5
    expected = [1 + 2.5 * 2 / 8, 2 * 5 / 8 + 2.5 / 8, 2 * 3 / 8 + 2.5 * 5 / 8]
    np.testing.assert_allclose(lab.proportion_scores(sample, proportions), [expected])
    assert lab.predict(lab.proportion_scores(sample, proportions))[0] == 2


# --- neuron dynamics ------------------------------------------------------------

def test_one_excitatory_spike_drives_its_inhibitory_partner_which_inhibits_the_others():
    p = NetworkParams(n_input=2, n_exc=2, one_spike=False)
    w = tf.constant([[20.0, 5.0], [0.0, 0.0]])
    theta = tf.zeros((1, 2))
    state = initial_neuron_state(p, 1)
    # step 1: input 0 spikes: v0 = -65 + 20 = -45 >= -52 fires, v1 = -60 does not
    state, s, _ = neuron_step(p, state, tf.constant([[1.0, 0.0]]), w, theta)
    np.testing.assert_array_equal(s.numpy(), [[1, 0]])
    v, ref, _, vi, _, si = (t.numpy() for t in state)
    np.testing.assert_allclose(v, [[-60.0, -60.0]])
    np.testing.assert_allclose(ref, [[5.0, -1.0]])
    # step 2: the partner of neuron 0 gets 22.5: -60 + 22.5 = -37.5 >= -40 fires
    state, s, _ = neuron_step(p, state, tf.constant([[0.0, 0.0]]), w, theta)
    np.testing.assert_allclose(state[5].numpy(), [[1, 0]])
    v1 = -65 + (-60 + 65) * np.exp(-1 / 100)        # neuron 1 decays towards rest
    np.testing.assert_allclose(state[0].numpy()[0, 1], v1, rtol=1e-6)
    # step 3: inhibition of 120 reaches neuron 1 only (not the partner's own neuron 0)
    state, s, _ = neuron_step(p, state, tf.constant([[0.0, 0.0]]), w, theta)
    v1 = -65 + (v1 + 65) * np.exp(-1 / 100) - 120
    np.testing.assert_allclose(state[0].numpy()[0, 1], v1, rtol=1e-5)
    v0 = -65 + (-60 + 65) * np.exp(-1 / 100) ** 2    # refractory: no input, only decay
    np.testing.assert_allclose(state[0].numpy()[0, 0], v0, rtol=1e-6)


def test_one_spike_lets_only_the_neuron_furthest_above_threshold_fire():
    p = NetworkParams(n_input=1, n_exc=3, one_spike=True)
    state = initial_neuron_state(p, 1)
    state, s, _ = neuron_step(p, state, tf.constant([[1.0]]), tf.constant([[14.0, 20.0, 16.0]]),
                           tf.zeros((1, 3)))
    np.testing.assert_array_equal(s.numpy(), [[0, 1, 0]])
    np.testing.assert_allclose(state[0].numpy(), [[-51.0, -60.0, -49.0]])


def test_adaptive_threshold_blocks_a_neuron():
    p = NetworkParams(n_input=1, n_exc=1)
    state = initial_neuron_state(p, 1)
    _, s, _ = neuron_step(p, state, tf.constant([[1.0]]), tf.constant([[14.0]]),
                       tf.constant([[2.0]]))            # -51 < -52 + 2
    assert s.numpy()[0, 0] == 0


# --- training, persistence -----------------------------------------------------

@pytest.fixture(scope="module")
def mnist_small():
    with np.load(bundled_dataset_path()) as d:
        return (d["x_norm"].astype(np.float32) / 255, d["y_norm"].astype(np.int64),
                d["x_test"][:500].astype(np.float32) / 255, d["y_test"][:500].astype(np.int64))


SMALL = dict(n_exc=40, time_per_sample=150.0)


def test_short_training_beats_chance_by_a_wide_margin(mnist_small, tmp_path):
    x, y, xt, yt = mnist_small
    net = new_network(NetworkParams(**SMALL))
    before = net.weights.copy()
    log = train(net, x[:600], y[:600], progress=False)
    assert log.samples >= 600 and net.samples_seen == 600
    assert not np.allclose(before, net.weights)
    np.testing.assert_allclose(net.weights.sum(axis=0), 78.4, rtol=1e-4)   # normalised
    assert net.theta.max() > 0                                           # thresholds adapted
    label_neurons(net, x[600:], y[600:])
    result = snnconv.evaluate(net, xt, yt, num_steps=150, progress=False)
    assert result.accuracy > 0.3, result.accuracy            # chance: 0.10
    assert result.other_accuracy["proportion"] > 0.3
    assert result.neurons == {"excitatory": 40, "inhibitory": 40}
    # save -> load -> the same predictions
    path = net.save(tmp_path / "net.npz")
    back = load_stdp(path)
    assert dataclasses.asdict(back.params) == dataclasses.asdict(net.params)
    again = snnconv.evaluate(back, xt, yt, num_steps=150, progress=False)
    np.testing.assert_array_equal(again.predictions, result.predictions)
    np.testing.assert_array_equal(spike_counts(back, xt[:50]), spike_counts(net, xt[:50]))


def test_interrupted_training_resumes_to_the_same_weights(mnist_small, tmp_path, monkeypatch):
    x, y, _, _ = mnist_small
    params = NetworkParams(n_exc=10, time_per_sample=60.0)
    whole = new_network(params)
    train(whole, x[:30], y[:30], progress=False)

    ckpt = tmp_path / "ckpt.npz"
    part = new_network(params)

    class Stop(Exception):
        pass

    import snnconv.stdp.training as tr
    original, calls = tr._probabilities, []

    def interrupting(*args):
        calls.append(1)
        if len(calls) > 17:                 # a KeyboardInterrupt during the 18th presentation
            raise Stop
        return original(*args)

    monkeypatch.setattr(tr, "_probabilities", interrupting)
    with pytest.raises(Stop):
        train(part, x[:30], y[:30], checkpoint=ckpt, checkpoint_every=5, progress=False)
    monkeypatch.setattr(tr, "_probabilities", original)
    resumed = load_stdp(ckpt)
    assert 0 < resumed.samples_seen < 30 and resumed.samples_seen % 5 == 0
    train(resumed, x[:30], y[:30], checkpoint=ckpt, checkpoint_every=5, progress=False)
    np.testing.assert_allclose(resumed.weights, whole.weights, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(resumed.theta, whole.theta, rtol=1e-5)


# --- the pipeline ------------------------------------------------------------------

def stdp_config(tmp_path, extra=""):
    cfg = tmp_path / "stdp.ini"
    cfg.write_text(f"""
[paths]
dataset_path = {bundled_dataset_path()}
log_dir_of_current_run = out
[input]
input_scale = 0.00392156862745098
[simulation]
num_to_test = 100
batch_size = 50
[stdp]
enabled = true
n_exc = 16
time_per_sample = 50
num_train = 60
num_label_samples = 30
checkpoint_every = 20
[output]
verbose = 0
{extra}
""")
    return cfg


def test_cli_run_trains_labels_and_evaluates(tmp_path):
    assert main(["run", str(stdp_config(tmp_path))]) == 0
    run = tmp_path / "out"
    summary = json.loads((run / "summary.json").read_text())
    assert summary["simulator"] == "stdp" and summary["stdp_rule"] == "postpre"
    assert 0 <= summary["accuracy_proportion_weighting"] <= 1
    assert summary["num_steps"] == 50 and summary["training_samples"] == 60
    for name in ("stdp.npz", "results.h5", "receptive_fields.png", "accuracy.png", "config.ini"):
        assert (run / name).is_file(), name
    assert not (tmp_path / ".out.stdp-checkpoint.npz").exists()
    net = load_stdp(run / "stdp.npz")
    assert net.samples_seen == 60 and net.labelled


def test_cli_stdp_config_errors(tmp_path, capsys):
    cfg = stdp_config(tmp_path).read_text()
    (tmp_path / "rule.ini").write_text(cfg.replace("[stdp]", "[stdp]\nrule = hebb"))
    assert main(["run", str(tmp_path / "rule.ini")]) == 2
    assert "stdp.rule" in capsys.readouterr().err
    cfg = cfg.replace("[stdp]", "[stdp]\nrule_params = nu_pre=x")
    (tmp_path / "bad.ini").write_text(cfg)
    assert main(["run", str(tmp_path / "bad.ini")]) == 2
    assert "stdp.rule_params" in capsys.readouterr().err


def test_saved_stdp_network_is_compared_with_evaluate_snn(mnist_small, tmp_path):
    """`snnconv evaluate CFG --snn stdp.npz` runs a trained STDP network on the config's data."""
    from helpers import write_bundled_config
    x, y, _, _ = mnist_small
    net = new_network(NetworkParams(n_exc=10, time_per_sample=40.0))
    train(net, x[:20], y[:20], progress=False)
    label_neurons(net, x[20:80], y[20:80])
    path = net.save(tmp_path / "stdp.npz")
    cfg = write_bundled_config(tmp_path / "cmp.ini", 50, dict(duration=40, num_to_test=40),
                               "plot = false\n")
    assert main(["evaluate", str(cfg), "--snn", str(path)]) == 0
    summary = json.loads((tmp_path / "out" / "stdp" / "summary.json").read_text())
    assert summary["simulator"] == "stdp" and summary["num_steps"] == 40
    assert summary["ann_accuracy"] > 0.9            # the config's ANN, for comparison
