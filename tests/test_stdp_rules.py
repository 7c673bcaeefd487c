"""Tests of snnconv.stdp.rules: the STDP learning rules, step by step.

Expected numbers are worked out by hand in the comments. Throughout,
d = exp(-1/20) = 0.951229424500714 is the per-step decay of a 20 ms trace,
weights are laid out (n_pre, n_post), and pre/post spikes are given per step.
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402

from snnconv.stdp.rules import RULES, make_rule  # noqa: E402

D = math.exp(-1 / 20)          # 0.951229424500714
TOL = dict(rtol=0, atol=1e-6)


def _run(rule, w, pres, posts, vs=None, ths=None, seed0=0, state=None):
    """Apply ``rule.step`` once per (pre, post) pair; return (w as numpy, state)."""
    w = tf.constant(w, rule.dtype)
    n_pre, n_post = w.shape
    if state is None:
        state = rule.initial_state(n_pre, n_post)
    for t, (pre, post) in enumerate(zip(pres, posts)):
        v = np.zeros(n_post) if vs is None else vs[t]
        th = np.zeros(n_post) if ths is None else ths[t]
        w, state = rule.step(w, tf.constant(pre, tf.float32), tf.constant(post, tf.float32),
                             state, v_post=tf.constant(v, tf.float32),
                             threshold=tf.constant(th, tf.float32), t=tf.constant(t),
                             seed=tf.constant([seed0, t], tf.int32))
    return w.numpy(), state


def _np(state):
    return [s.numpy() for s in state]


# ------------------------------------------------------------------ make_rule


def test_rules_names():
    assert RULES == ("postpre", "weight_dependent", "nearest_online", "full_online",
                     "postpre_int", "exponential_wta")
    for name in RULES:
        rule = make_rule(name)
        assert rule.name == name
        assert rule.integer == (name == "postpre_int")
        assert rule.normalizes == (name in ("nearest_online", "full_online"))


def test_make_rule_errors():
    with pytest.raises(ValueError, match="postpre.*weight_dependent.*exponential_wta"):
        make_rule("hebb")
    with pytest.raises(ValueError, match="'nu_zero'"):
        make_rule("postpre", nu_zero=1.0)
    with pytest.raises(ValueError, match="'tau_pre'"):
        make_rule("postpre", tau_pre=-1.0)
    with pytest.raises(ValueError, match="'nu_post'"):
        make_rule("postpre", nu_post="fast")
    with pytest.raises(ValueError, match="'w_min'"):
        make_rule("weight_dependent", w_min=1.0, w_max=0.5)
    with pytest.raises(ValueError, match="'shift'"):
        make_rule("postpre_int", shift=2.5)
    with pytest.raises(ValueError, match="'levels'"):
        make_rule("exponential_wta", levels=[])
    with pytest.raises(ValueError, match="'wta'"):
        make_rule("exponential_wta", wta="yes")
    with pytest.raises(ValueError, match="'past_window'"):
        make_rule("exponential_wta", past_window=3)
    with pytest.raises(ValueError, match="'trace_decay'"):
        make_rule("postpre_int", trace_decay=2 ** 30)       # * 127 overflows int32


def test_defaults():
    assert make_rule("postpre").params == dict(nu_pre=1e-4, nu_post=1e-2, tau_pre=20.0,
                                               tau_post=20.0, w_min=0.0, w_max=1.0)
    no = make_rule("nearest_online").params
    assert (no["Apost"], no["Apre"], no["w_norm"]) == (1e-2, 1e-4, 78.4)
    pi = make_rule("postpre_int").params
    assert pi == dict(trace_decay=31169, shift_trace=15, trace_scale=127, nu_pre=14,
                      nu_post=141, shift=14, max_threshold=4915.0, w_min=0, w_max=109)
    ew = make_rule("exponential_wta")
    assert (ew.A_up, ew.A_down, ew.tau_up, ew.tau_down, ew.eta, ew.past_window, ew.wta) == \
        (0.8, -0.3, 5.0, 5.0, 0.01, -5, True)
    assert make_rule("postpre", nu_post=5e-3).config()["nu_post"] == 5e-3


# ------------------------------------------------------------------ postpre


def test_postpre_pre_before_post():
    # step 0: pre 0 spikes -> x_pre = [1, 0]; no post spike, x_post = 0: no change.
    # step 1: post 0 spikes -> x_pre = [d, 0], x_post = [1, 0]:
    #         w[0, 0] += 1e-2 * d = 0.5 + 0.00951229 = 0.50951229
    w, state = _run(make_rule("postpre"), np.full((2, 2), 0.5),
                    [[1, 0], [0, 0]], [[0, 0], [1, 0]])
    np.testing.assert_allclose(w, [[0.50951229, 0.5], [0.5, 0.5]], **TOL)
    x_pre, x_post = _np(state)
    np.testing.assert_allclose(x_pre, [D, 0], **TOL)
    np.testing.assert_allclose(x_post, [1, 0], **TOL)


def test_postpre_post_before_pre():
    # step 0: post 0 spikes (x_pre = 0: no change); step 1: pre 0 spikes, x_post = [d, 0]:
    # w[0, 0] -= 1e-4 * d = 0.5 - 0.0000951229 = 0.49990488
    w, _ = _run(make_rule("postpre"), np.full((2, 2), 0.5), [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[0.49990488, 0.5], [0.5, 0.5]], **TOL)


def test_postpre_simultaneous():
    # both traces are set to 1 before the update: w[0, 0] += 1e-2 - 1e-4 = 0.5099
    w, _ = _run(make_rule("postpre"), np.full((2, 2), 0.5), [[1, 0]], [[1, 0]])
    np.testing.assert_allclose(w, [[0.5099, 0.5], [0.5, 0.5]], **TOL)


def test_postpre_clamp():
    # nu_pre = nu_post = 0.5.
    # step 0: pre 0 and post 0 together: w[0,0] += 0.5 * 1 - 0.5 * 1 = 0 -> 0.999.
    # step 1: post 0 alone, x_pre = [d, 0]: w[0,0] += 0.5 * d -> 1.475 -> clamped to 1.
    # step 2: pre 1 alone, x_post = [d, 0]: w[1,0] -= 0.5 * d -> 0.3 - 0.476 -> clamped to 0;
    #         w[1,1] keeps 0.7 (x_post[1] = 0); w[0,1] never changes.
    rule = make_rule("postpre", nu_pre=0.5, nu_post=0.5)
    w, _ = _run(rule, [[0.999, 0.2], [0.3, 0.7]],
                [[1, 0], [0, 0], [0, 1]], [[1, 0], [1, 0], [0, 0]])
    # w[1,1]: x_post[1] = 0 -> unchanged 0.7
    np.testing.assert_allclose(w, [[1.0, 0.2], [0.0, 0.7]], **TOL)


def test_postpre_trace_decay_and_reset():
    # one pre spike, then 3 silent steps: x_pre = d^3 = exp(-3/20) = 0.86070798
    rule = make_rule("postpre")
    _, state = _run(rule, np.full((2, 3), 0.5), [[1, 0]] + [[0, 0]] * 3, [[0, 0, 0]] * 4)
    np.testing.assert_allclose(_np(state)[0], [0.86070798, 0], **TOL)
    fresh = rule.reset(state)
    assert [s.shape for s in fresh] == [(2,), (3,)]
    assert all(not s.numpy().any() for s in fresh)
    w = tf.constant(np.full((2, 3), 0.5), tf.float32)
    assert rule.end_of_sample(w, state) is w                   # identity by default


# ------------------------------------------------------------------ weight_dependent


def test_weight_dependent_pre_before_post():
    # w[0,0] += 1e-2 * d * (1 - 0.8) = 0.8 + 0.00190246 = 0.80190246
    w, _ = _run(make_rule("weight_dependent"), np.full((2, 2), 0.8),
                [[1, 0], [0, 0]], [[0, 0], [1, 0]])
    np.testing.assert_allclose(w, [[0.80190246, 0.8], [0.8, 0.8]], **TOL)


def test_weight_dependent_post_before_pre():
    # w[0,0] -= 1e-4 * d * (0.8 - 0) = 0.8 - 0.0000760984 = 0.79992390
    w, _ = _run(make_rule("weight_dependent"), np.full((2, 2), 0.8),
                [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[0.7999239, 0.8], [0.8, 0.8]], **TOL)


def test_weight_dependent_simultaneous_and_soft_bounds():
    # step 0: pre [1, 1], post [1, 0] -> x_pre = [1, 1], x_post = [1, 0]:
    #   w[0,0] = 0.8 + 1e-2 * (1 - 0.8) - 1e-4 * 0.8 = 0.80192
    #   w[1,0] = 0.5 + 1e-2 * (1 - 0.5) - 1e-4 * 0.5 = 0.50495
    #   column 1: no post spike and x_post[1] = 0 -> unchanged.
    # step 1: post 1 alone, x_pre = [d, d]:
    #   w[0,1] = 0 + 1e-2 * d * (1 - 0) = 0.00951229
    #   w[1,1] = 1 + 1e-2 * d * (1 - 1) = 1 (soft bound: no growth at w_max)
    w, _ = _run(make_rule("weight_dependent"), [[0.8, 0.0], [0.5, 1.0]],
                [[1, 1], [0, 0]], [[1, 0], [0, 1]])
    np.testing.assert_allclose(w, [[0.80192, 0.00951229], [0.50495, 1.0]], **TOL)
    # depression at w_min: post 0 then pre 0 -> 0 - 1e-4 * d * (0 - 0) = 0 exactly
    w, _ = _run(make_rule("weight_dependent"), [[0.0, 0.5]], [[0], [1]], [[1, 0], [0, 0]])
    assert w.tolist() == [[0.0, 0.5]]


def test_weight_dependent_clamp():
    # nu_post = 2: w = 0.5 + 2 * 1 * 0.5 = 1.5 -> 1.0; nu_pre = 2 on w=0.5: 0.5 - 2*d*0.5 < 0 -> 0
    rule = make_rule("weight_dependent", nu_pre=2.0, nu_post=2.0)
    w, _ = _run(rule, np.full((2, 2), 0.5), [[0, 0], [0, 1]], [[1, 0], [0, 0]])
    # step 0: post 0 alone, x_pre = 0 -> nothing. step 1: pre 1: w[1,0] -= 2*d*0.5 -> 0
    np.testing.assert_allclose(w, [[0.5, 0.5], [0.0, 0.5]], **TOL)
    w, _ = _run(rule, np.full((2, 2), 0.5), [[1, 0], [0, 0]], [[0, 0], [1, 0]])
    # step 1: w[0,0] += 2 * d * 0.5 = 0.95 -> 1.45 -> 1.0
    np.testing.assert_allclose(w, [[1.0, 0.5], [0.5, 0.5]], **TOL)


# ------------------------------------------------------------------ nearest_online


def test_nearest_online_pre_before_post_with_normalisation():
    # w_norm = 1, columns already sum to 1: step 0 changes nothing.
    # step 1: w[0,0] = 0.5 + 1e-2 * d = 0.50951229; column 0 sums to 1.00951229:
    #   w[:,0] = [0.50951229, 0.5] / 1.00951229 = [0.50471133, 0.49528867]
    rule = make_rule("nearest_online", w_norm=1.0)
    w, state = _run(rule, np.full((2, 2), 0.5), [[1, 0], [0, 0]], [[0, 0], [1, 0]])
    np.testing.assert_allclose(w, [[0.50471133, 0.5], [0.49528867, 0.5]], **TOL)
    np.testing.assert_allclose(_np(state)[0], [D, 0], **TOL)


def test_nearest_online_post_before_pre_and_simultaneous():
    rule = make_rule("nearest_online", w_norm=1.0)
    # post then pre: w[0,0] = 0.5 - 1e-4 * d = 0.49990488; column sum 0.99990488:
    #   [0.49990488, 0.5] / 0.99990488 = [0.49995244, 0.50004756]
    w, _ = _run(rule, np.full((2, 2), 0.5), [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[0.49995244, 0.5], [0.50004756, 0.5]], **TOL)
    # simultaneous: w[0,0] = 0.5099, sum 1.0099: [0.50490148, 0.49509852]
    w, _ = _run(rule, np.full((2, 2), 0.5), [[1, 0]], [[1, 0]])
    np.testing.assert_allclose(w, [[0.50490148, 0.5], [0.49509852, 0.5]], **TOL)


def test_nearest_online_normalises_every_step_and_clamps():
    # no spikes: column 0 = [0.2, 0.3, 0.5] (sum 1) stays; column 1 = [0.1, 0.1, 0.2]
    # (sum 0.4) becomes [0.25, 0.25, 0.5] after the first step already.
    rule = make_rule("nearest_online", w_norm=1.0)
    w0 = [[0.2, 0.1], [0.3, 0.1], [0.5, 0.2]]
    w, _ = _run(rule, w0, [[0, 0, 0]], [[0, 0]])
    np.testing.assert_allclose(w, [[0.2, 0.25], [0.3, 0.25], [0.5, 0.5]], **TOL)
    # w_norm = 2: column 1 -> [0.5, 0.5, 1.0]; column 0 -> [0.4, 0.6, 1.0];
    # w_norm = 3: column 0 -> [0.6, 0.9, 1.5 -> clamped 1.0]
    w, _ = _run(make_rule("nearest_online", w_norm=3.0), w0, [[0, 0, 0]], [[0, 0]])
    np.testing.assert_allclose(w[:, 0], [0.6, 0.9, 1.0], **TOL)
    # default w_norm 78.4 on a zero column: stays 0 (no NaN)
    w, _ = _run(make_rule("nearest_online"), np.zeros((3, 2)), [[1, 1, 1]], [[0, 0]])
    assert not np.isnan(w).any() and not w.any()


# ------------------------------------------------------------------ full_online


def test_full_online_additive_traces_and_no_normalisation_during_sample():
    # pre 0 spikes at steps 0 and 1, post 0 at step 2: x_pre[0] = (1*d + 1)*d = d + d^2
    #   = 1.85606684; w[0,0] = 0.5 + 1e-2 * 1.85606684 = 0.51856067 (no normalisation yet)
    rule = make_rule("full_online", w_norm=1.0)
    w, state = _run(rule, np.full((2, 2), 0.5), [[1, 0], [1, 0], [0, 0]],
                    [[0, 0], [0, 0], [1, 0]])
    np.testing.assert_allclose(w, [[0.51856067, 0.5], [0.5, 0.5]], **TOL)
    np.testing.assert_allclose(_np(state)[0], [1.85606684, 0], **TOL)
    # end of sample: column 0 / 1.01856067 = [0.50911178, 0.49088822]; column 1 unchanged
    w_end = rule.end_of_sample(tf.constant(w), state).numpy()
    np.testing.assert_allclose(w_end, [[0.50911178, 0.5], [0.49088822, 0.5]], **TOL)


def test_full_online_post_before_pre_and_simultaneous():
    rule = make_rule("full_online", w_norm=1.0)
    # post at step 0, pre at step 1: x_post = d -> w[0,0] = 0.5 - 1e-4 * d = 0.49990488
    w, _ = _run(rule, np.full((2, 2), 0.5), [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[0.49990488, 0.5], [0.5, 0.5]], **TOL)
    # together: +1e-2 - 1e-4 -> 0.5099
    w, _ = _run(rule, np.full((2, 2), 0.5), [[1, 0]], [[1, 0]])
    np.testing.assert_allclose(w, [[0.5099, 0.5], [0.5, 0.5]], **TOL)


def test_full_online_clamps_only_at_end():
    # Apre = 1: post 0 at step 0, pre 0 at step 1: w[0,0] = 0.01 - d = -0.94122942 (kept)
    rule = make_rule("full_online", Apre=1.0, w_norm=2.0)
    w, state = _run(rule, [[0.01, 0.4], [0.6, 0.6]], [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[-0.94122942, 0.4], [0.6, 0.6]], **TOL)
    # end: column 0 sum |w| = 1.54122942 -> 2 * [-0.94122942, 0.6] / 1.54122942
    #      = [-1.22140080, 0.77859920] -> clamp [0, 0.77859920];
    #      column 1: 2 * [0.4, 0.6] / 1.0 = [0.8, 1.2 -> 1]
    w_end = rule.end_of_sample(tf.constant(w), state).numpy()
    np.testing.assert_allclose(w_end, [[0.0, 0.8], [0.7785992, 1.0]], **TOL)


# ------------------------------------------------------------------ postpre_int


def test_postpre_int_trace_decay_is_integer():
    # 127 -> (31169 * 127) >> 15 = 3958463 >> 15 = 120 -> 114 -> 108
    rule = make_rule("postpre_int")
    w, state = _run(rule, np.full((2, 2), 50), [[1, 0]] + [[0, 0]] * 3, [[0, 1]] * 1 + [[0, 0]] * 3)
    x_pre, x_post = _np(state)
    assert x_pre.dtype == np.int32 and w.dtype == np.int32
    assert x_pre.tolist() == [108, 0] and x_post.tolist() == [0, 108]


def test_postpre_int_stays_integer_and_rounds_stochastically():
    # pre 0 at step 0, post 0 at step 1: x_pre[0] = 120; 120 * 141 = 16920 = 1 * 2**14 + 536:
    # w[0,0] gains 1 or 2 (2 with probability 536/16384). At step 0 (pre 0 alone) x_post = 0,
    # so the depression term R(0) is exactly 0.
    rule = make_rule("postpre_int")
    for seed0 in range(5):
        w, _ = _run(rule, np.full((2, 2), 50), [[1, 0], [0, 0]], [[0, 0], [1, 0]], seed0=seed0)
        assert w.dtype == np.int32
        assert w[0, 0] in (51, 52) and w[0, 1] == 50 and w[1].tolist() == [50, 50]
    # many synapses: every one is floor or ceil of 50 + 16920 / 16384 = 51.0327, and the
    # mean is near it (std of the mean sqrt(p(1-p)/n) = 0.0018 for n = 10000)
    n = 100
    pre = np.ones(n)
    w, _ = _run(rule, np.full((n, n), 50), [pre, np.zeros(n)], [np.zeros(n), np.ones(n)],
                seed0=3)
    assert set(np.unique(w)) <= {51, 52}
    assert abs(w.mean() - (50 + 16920 / 16384)) < 0.01
    # same seed -> same weights; another seed -> others
    w2, _ = _run(rule, np.full((n, n), 50), [pre, np.zeros(n)], [np.zeros(n), np.ones(n)],
                 seed0=3)
    w3, _ = _run(rule, np.full((n, n), 50), [pre, np.zeros(n)], [np.zeros(n), np.ones(n)],
                 seed0=4)
    assert (w == w2).all() and not (w == w3).all()


def test_postpre_int_exact_when_fraction_is_zero():
    # trace_scale 128, nu_post 128: 128 * 128 = 16384 = 2**14 -> exactly +1;
    # nu_pre 256: 128 * 256 = 32768 -> exactly -2. Simultaneous spikes: 50 + 1 - 2 = 49.
    rule = make_rule("postpre_int", trace_scale=128, nu_pre=256, nu_post=128)
    for seed0 in range(4):
        w, _ = _run(rule, np.full((2, 2), 50), [[1, 0]], [[1, 0]], seed0=seed0)
        assert w.tolist() == [[49, 50], [50, 50]]
    # pre before post with an exact halving decay (16384 >> 15 = 1/2): x_pre = 64 at step 1,
    # nu_post 256: 64 * 256 = 16384 -> +1. Post before pre: x_post = 64, nu_pre 256 -> -1.
    rule = make_rule("postpre_int", trace_decay=16384, trace_scale=128, nu_pre=256,
                     nu_post=256)
    w, _ = _run(rule, np.full((2, 2), 50), [[1, 0], [0, 0]], [[0, 0], [1, 0]])
    assert w.tolist() == [[51, 50], [50, 50]]
    w, _ = _run(rule, np.full((2, 2), 50), [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    assert w.tolist() == [[49, 50], [50, 50]]


def test_postpre_int_halving_and_clamp():
    # no spikes; threshold of post 0 above 4915 -> column 0 halved: 100 -> 50, 7 -> 3
    rule = make_rule("postpre_int")
    w, _ = _run(rule, [[100, 100], [7, 7]], [[0, 0]], [[0, 0]], ths=[[5000.0, 100.0]])
    assert w.tolist() == [[50, 100], [3, 7]]
    # clamp: 108 + 2 (exact, see above) -> 109; 1 - 2 -> 0
    rule = make_rule("postpre_int", trace_scale=128, nu_pre=256, nu_post=256)
    w, _ = _run(rule, [[108, 1], [5, 5]], [[0, 0], [1, 0]], [[1, 0], [0, 0]])
    # step 0: post 0, x_pre = 0 -> +0. step 1: pre 0, x_post[0] = (31169*128)>>15 = 121,
    # 121 * 256 = 30976 = 1 * 16384 + 14592 -> -1 or -2 on w[0,0]: 107 or 106
    assert w[0, 0] in (106, 107) and w[0, 1] == 1 and w[1].tolist() == [5, 5]
    w, _ = _run(rule, [[108, 1], [5, 5]], [[1, 1]], [[1, 0]])
    # together: w[:,0] += 2 - 2 = 0 (x_post[0] = 128); w[:,1] -= 0 (x_post[1] = 0)
    assert w.tolist() == [[108, 1], [5, 5]]
    w, _ = _run(rule, [[108, 1], [5, 5]], [[1, 0], [0, 0]], [[0, 0], [1, 1]])
    # step 1: x_pre[0] = 121 -> +1 or +2 on row 0: 108 -> 109 (clamped either way),
    # 1 -> 2 or 3
    assert w[0, 0] == 109 and w[0, 1] in (2, 3) and w[1].tolist() == [5, 5]
    w, _ = _run(make_rule("postpre_int", trace_scale=128, nu_pre=2048), [[5, 1], [5, 5]],
                [[0, 0], [1, 0]], [[0, 1], [0, 0]])
    # x_post[1] = 121 at step 1: 121 * 2048 / 16384 = 15.125 -> -15 or -16: 1 -> 0
    assert w.tolist() == [[5, 0], [5, 5]]


def test_postpre_int_needs_threshold_seed_and_int_weights():
    rule = make_rule("postpre_int")
    w = tf.constant([[1, 2]], tf.int32)
    state = rule.initial_state(1, 2)
    with pytest.raises(ValueError, match="threshold"):
        rule.step(w, tf.ones(1), tf.ones(2), state, seed=tf.constant([1, 2]))
    with pytest.raises(ValueError, match="seed"):
        rule.step(w, tf.ones(1), tf.ones(2), state, threshold=tf.zeros(2))
    with pytest.raises(TypeError):
        rule.step(tf.cast(w, tf.float32), tf.ones(1), tf.ones(2), state,
                  threshold=tf.zeros(2), seed=tf.constant([1, 2]))


# ------------------------------------------------------------------ exponential_wta

# f(dt) = 0.8 exp(-dt/5) for dt >= 0, -0.3 exp(dt/5) for dt < 0; eta = 0.01;
# at w = 0.5 both distances to the bounds are 0.5 and 0.5**0.9 = 0.53588673.
HALF09 = 0.5 ** 0.9


def test_exponential_wta_pre_before_post():
    # pre 0 at step 0, post 0 (winner, v = [1, 0]) at step 2: dt = 2:
    #   f = 0.8 * exp(-0.4) = 0.53625604; w[0,0] = 0.5 + 0.01 * 0.53625604 * 0.53588673
    #   = 0.50287372. pre 1 never spiked -> dt = past_window = -5: f = -0.3/e = -0.11036383:
    #   w[1,0] = 0.5 - 0.01 * 0.11036383 * 0.53588673 = 0.49940857. Column 1 untouched.
    rule = make_rule("exponential_wta")
    w, state = _run(rule, np.full((2, 2), 0.5), [[1, 0], [0, 0], [0, 0]],
                    [[0, 0], [0, 0], [1, 0]], vs=[[0, 0], [0, 0], [1, 0]])
    np.testing.assert_allclose(w, [[0.50287372, 0.5], [0.49940857, 0.5]], **TOL)
    (age,) = _np(state)
    assert age.tolist() == [2, 2 ** 30]
    assert rule.reset(state)[0].numpy().tolist() == [2 ** 30, 2 ** 30]


def test_exponential_wta_post_before_pre_and_window_edge():
    rule = make_rule("exponential_wta")
    # post 0 at step 0 before any pre spike: both synapses are unpaired -> depression
    # 0.49940857; pre 0 at step 1 (no post spike) changes nothing.
    w, _ = _run(rule, np.full((2, 2), 0.5), [[0, 0], [1, 0]], [[1, 0], [0, 0]],
                vs=[[1, 0], [0, 0]])
    np.testing.assert_allclose(w, [[0.49940857, 0.5], [0.49940857, 0.5]], **TOL)
    # pre 0 at step 0, post 0 at step 5 (dt = 5, last step inside the window):
    #   0.5 + 0.01 * 0.8 * exp(-1) * 0.53588673 = 0.50157713; at step 6 (dt = 6): unpaired
    sil = [[0, 0]] * 4
    w, _ = _run(rule, np.full((2, 2), 0.5), [[1, 0]] + sil + [[0, 0]],
                [[0, 0]] + sil + [[1, 0]], vs=[[1, 0]] * 6)
    np.testing.assert_allclose(w[:, 0], [0.50157713, 0.49940857], **TOL)
    w, _ = _run(rule, np.full((2, 2), 0.5), [[1, 0]] + sil + [[0, 0], [0, 0]],
                [[0, 0]] + sil + [[0, 0], [1, 0]], vs=[[1, 0]] * 7)
    np.testing.assert_allclose(w[:, 0], [0.49940857, 0.49940857], **TOL)


def test_exponential_wta_simultaneous_and_bounds():
    # dt = 0: 0.5 + 0.01 * 0.8 * 0.53588673 = 0.50428709; w = 1 cannot grow (|1 - 1|^0.9 = 0),
    # w = 0 cannot shrink.
    rule = make_rule("exponential_wta")
    w, _ = _run(rule, [[0.5, 0.5], [0.0, 0.5], [1.0, 0.5]], [[1, 0, 1]], [[1, 0]],
                vs=[[1, 0]])
    np.testing.assert_allclose(w[:, 0], [0.50428709, 0.0, 1.0], **TOL)
    # eta = 10: 0.5 + 10 * 0.8 * 0.53588673 = 4.79 -> clamped to 1
    w, _ = _run(make_rule("exponential_wta", eta=10.0), np.full((2, 2), 0.5), [[1, 1]],
                [[1, 0]], vs=[[1, 0]])
    np.testing.assert_allclose(w, [[1.0, 0.5], [1.0, 0.5]], **TOL)


def test_exponential_wta_winner_vs_all_synapses():
    # both post neurons spike, v = [1, 2]: WTA updates only column 1; all-synapse both.
    # pre 0 spikes now (dt = 0): 0.50428709; pre 1 unpaired: 0.49940857
    args = ([[1, 0]], [[1, 1]])
    w, _ = _run(make_rule("exponential_wta"), np.full((2, 2), 0.5), *args, vs=[[1, 2]])
    np.testing.assert_allclose(w, [[0.5, 0.50428709], [0.5, 0.49940857]], **TOL)
    w, _ = _run(make_rule("exponential_wta", wta=False), np.full((2, 2), 0.5), *args,
                vs=[[1, 2]])
    np.testing.assert_allclose(w, [[0.50428709] * 2, [0.49940857] * 2], **TOL)
    # the winner (v = 3) did not spike, post 1 did: no update in WTA mode, one in all mode
    w, _ = _run(make_rule("exponential_wta"), np.full((2, 2), 0.5), [[1, 0]], [[0, 1]],
                vs=[[3, 1]])
    np.testing.assert_allclose(w, np.full((2, 2), 0.5), **TOL)
    w, _ = _run(make_rule("exponential_wta", wta=False), np.full((2, 2), 0.5), [[1, 0]],
                [[0, 1]], vs=[[3, 1]])
    np.testing.assert_allclose(w, [[0.5, 0.50428709], [0.5, 0.49940857]], **TOL)


def test_exponential_wta_levels():
    # eta = 0.5, dt = 0: 0.5 + 0.5 * 0.8 * 0.53588673 = 0.71435469 -> nearest level 0.75;
    # unpaired: 0.5 - 0.5 * 0.11036383 * 0.53588673 = 0.47042872 -> 0.5.
    # Column 1 (not updated) keeps 0.3, which is not a level.
    rule = make_rule("exponential_wta", eta=0.5, levels=[0, 0.25, 0.5, 0.75, 1.0])
    w, _ = _run(rule, [[0.5, 0.3], [0.5, 0.3]], [[1, 0]], [[1, 0]], vs=[[1, 0]])
    np.testing.assert_allclose(w, [[0.75, 0.3], [0.5, 0.3]], **TOL)


def test_exponential_wta_noise_bounded_and_seeded():
    # noise h = 0.2: each updated weight is w' * (1 + n), |n| <= 0.2, w' the noiseless value
    n_pre, h = 400, 0.2
    rule = make_rule("exponential_wta", noise=h)
    clean = make_rule("exponential_wta")
    pre = [np.r_[np.ones(n_pre // 2), np.zeros(n_pre // 2)]]
    args = (np.full((n_pre, 2), 0.5), pre, [[1, 0]])
    w_ref, _ = _run(clean, *args, vs=[[1, 0]])
    w, _ = _run(rule, *args, vs=[[1, 0]], seed0=7)
    ratio = w[:, 0] / w_ref[:, 0] - 1
    assert np.abs(ratio).max() <= h + 1e-6
    assert 0.04 < ratio.std() < 0.09                     # ~ h/3 = 0.0667 (slightly less)
    assert (w[:, 1] == 0.5).all()                          # not updated: no noise
    assert (w >= 0).all() and (w <= 1).all()
    w_same, _ = _run(rule, *args, vs=[[1, 0]], seed0=7)
    w_other, _ = _run(rule, *args, vs=[[1, 0]], seed0=8)
    assert (w == w_same).all() and not np.allclose(w, w_other)
    # near the upper bound the noisy weight is clipped to 1
    w, _ = _run(make_rule("exponential_wta", noise=0.5), np.full((n_pre, 1), 0.99),
                [np.ones(n_pre)], [[1]], vs=[[1]])
    assert w.max() == 1.0 and (w == 1.0).sum() > n_pre // 4


def test_exponential_wta_needs_v_post():
    rule = make_rule("exponential_wta")
    with pytest.raises(ValueError, match="v_post"):
        rule.step(tf.zeros((1, 2)), tf.ones(1), tf.ones(2), rule.initial_state(1, 2))
    # all-synapse mode does not need it
    make_rule("exponential_wta", wta=False).step(tf.zeros((1, 2)), tf.ones(1), tf.ones(2),
                                                 rule.initial_state(1, 2))


# ------------------------------------------------------------------ XLA


_JIT_CASES = [(name, {}) for name in RULES] + [
    ("nearest_online", {"w_norm": 2.0}),
    ("exponential_wta", {"wta": False, "noise": 0.1}),
    ("exponential_wta", {"eta": 0.5, "levels": [0.0, 0.25, 0.5, 0.75, 1.0]}),
]


@pytest.mark.parametrize("name,params", _JIT_CASES,
                         ids=[f"{n}-{'-'.join(p) or 'default'}" for n, p in _JIT_CASES])
def test_step_compiles_with_xla_and_matches_eager(name, params):
    rule = make_rule(name, **params)
    n_pre, n_post, steps = 6, 3, 5
    rng = np.random.default_rng(0)
    pre = tf.constant(rng.random((steps, n_pre)) < 0.5, tf.float32)
    post = tf.constant(rng.random((steps, n_post)) < 0.5, tf.float32)
    v = tf.constant(rng.random((steps, n_post)), tf.float32)
    th = tf.constant([[5000.0, 0.0, 0.0]] * steps, tf.float32)
    if rule.integer:
        w0 = tf.constant(rng.integers(20, 90, (n_pre, n_post)), tf.int32)
    else:
        w0 = tf.constant(rng.uniform(0.2, 0.8, (n_pre, n_post)), tf.float32)

    def run(w):
        state = rule.initial_state(n_pre, n_post)

        def body(t, w, state):
            w, state = rule.step(w, pre[t], post[t], state, v_post=v[t], threshold=th[t], t=t,
                                 seed=tf.stack([tf.constant(11), t]))
            return t + 1, w, state

        _, w, state = tf.while_loop(lambda t, *_: t < steps, body, (tf.constant(0), w, state))
        return rule.end_of_sample(w, state), state

    w_eager, s_eager = run(w0)
    w_jit, s_jit = tf.function(run, jit_compile=True)(w0)
    assert w_jit.dtype == rule.dtype
    if rule.integer:
        assert (w_jit.numpy() == w_eager.numpy()).all()
    else:
        np.testing.assert_allclose(w_jit.numpy(), w_eager.numpy(), rtol=0, atol=1e-5)
    for a, b in zip(s_jit, s_eager):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=0, atol=1e-5)
    assert not np.array_equal(w_eager.numpy(), w0.numpy())       # the rule did something
