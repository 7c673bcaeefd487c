"""Surrogate spike functions: the shared forward pass, and each gradient against its formula."""
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from snnconv import surrogates as S

RNG = np.random.default_rng(0)
V = RNG.uniform(-1.5, 5.5, (6, 40)).astype(np.float32)
TH = RNG.uniform(0.6, 1.6, (40,)).astype(np.float32)
MAX = 3


def expected_forward(v, th, m):
    n = np.where(v >= th, np.floor(v / th), 0.0)
    return np.minimum(n, m)


def step_pwl(v, th, m, window=0.5):
    mask = (v >= th - window).astype(np.float64)
    return mask / th, -mask * v / th ** 2


def periodic_exponential(v, th, m, window=0.5):
    vs = v - th / 2
    k = np.minimum(np.floor(vs / th), m - 1)
    vn = np.where(v < th, vs, vs - k * th)
    pdf = np.exp(-np.abs(vn - th / 2) / window) / th
    return pdf, -pdf * v / th


def fast_sigmoid(v, th, m, slope=25.0):
    d = 1 / (1 + slope * np.abs(v - th)) ** 2
    return d, -d


def arctan(v, th, m, alpha=2.0):
    d = alpha / 2 / (1 + (math.pi / 2 * alpha * (v - th)) ** 2)
    return d, -d


def straight_through(v, th, m):
    return np.ones_like(v) / th, -v / th ** 2


FORMULAS = {"step_pwl": step_pwl, "periodic_exponential": periodic_exponential,
            "fast_sigmoid": fast_sigmoid, "arctan": arctan,
            "straight_through": straight_through}


def gradients(surrogate, v=V, th=TH, m=MAX):
    """d(sum n)/dv and d(sum n)/dθ at v (θ per neuron, broadcast over the batch)."""
    v, th = tf.Variable(v), tf.Variable(th)
    with tf.GradientTape() as tape:
        n = surrogate(v, th, m)
        total = tf.reduce_sum(n)
    gv, gth = tape.gradient(total, [v, th])
    return n.numpy(), gv.numpy(), gth.numpy()


@pytest.mark.parametrize("name", list(FORMULAS))
def test_forward_and_gradients_follow_the_formulas(name):
    surrogate = S.get_surrogate(name)
    n, gv, gth = gradients(surrogate)
    np.testing.assert_array_equal(n, expected_forward(V, TH, MAX))
    dv, dth = FORMULAS[name](V.astype(np.float64), TH.astype(np.float64), MAX)
    np.testing.assert_allclose(gv, dv, rtol=1e-5, atol=1e-6)
    # the threshold is one per neuron: its gradient sums over the batch
    np.testing.assert_allclose(gth, dth.sum(axis=0), rtol=1e-4, atol=1e-5)


def test_parameters_change_the_gradient_and_the_surrogate_matters():
    _, g_default, _ = gradients(S.StepPWL())
    _, g_wide, _ = gradients(S.StepPWL(window=2.0))
    assert not np.allclose(g_default, g_wide)
    _, g_pe, _ = gradients(S.PeriodicExponential())
    _, g_fs, _ = gradients(S.FastSigmoid(slope=5.0))
    assert not np.allclose(g_default, g_pe) and not np.allclose(g_pe, g_fs)
    # ... but never the forward pass
    assert np.array_equal(gradients(S.StepPWL())[0], gradients(S.Arctan(alpha=7))[0])


def test_single_spike_and_clamp():
    v = np.array([[0.5, 1.0, 2.9, 100.0]], np.float32)
    n1 = S.StepPWL()(v, 1.0, 1).numpy()
    n31 = S.StepPWL()(v, 1.0, 31).numpy()
    np.testing.assert_array_equal(n1, [[0, 1, 1, 1]])
    np.testing.assert_array_equal(n31, [[0, 1, 2, 31]])


def test_lookup_and_serialization():
    assert S.get_surrogate("StepPWL") == S.StepPWL()
    assert S.get_surrogate({"name": "arctan", "alpha": 3.0}) == S.Arctan(3.0)
    s = S.FastSigmoid(slope=7.0)
    assert S.get_surrogate(S.to_config(s)) == s
    assert S.get_surrogate(keras.saving.serialize_keras_object(s)) == s
    assert keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(s)) == s
    with pytest.raises(ValueError, match="unknown surrogate 'nope'; known: step_pwl"):
        S.get_surrogate("nope")
    with pytest.raises(ValueError, match="window must be > 0"):
        S.StepPWL(window=0)


def test_choices_list_every_surrogate():
    from snnconv.choices import SURROGATES
    assert set(SURROGATES) == set(S.SURROGATES)
