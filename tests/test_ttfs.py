"""Tests of the time-to-first-spike codes (``ttfs`` and ``ttfs_dyn_thresh``): the neuron's
step function, spike times of converted networks against an independent numpy simulation,
the missing impulse, max pooling, the TTFS output / decision time, saving and bias gating.

Weights and inputs are dyadic fractions (multiples of 1/4, 1/8, 1/16) so that every sum
the simulator forms is exact in float32: the numpy reference (float64) and the library
then cross every threshold at exactly the same step.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import ops  # noqa: E402

import snnconv  # noqa: E402
from snnconv.evaluation import evaluate  # noqa: E402
from snnconv.ir import Graph, Node  # noqa: E402
from snnconv.layers import SpikeDense, SpikeMaxPooling2D  # noqa: E402
from snnconv.layers.io import load_snn  # noqa: E402
from snnconv.neurons import TTFSNeuron, TTFSParams, TTFSState, ttfs_step  # noqa: E402
from snnconv.simulators.ini import simulate_batch  # noqa: E402

CODES = ["ttfs", "ttfs_dyn_thresh"]
NEVER = 10 ** 6   # first-spike step of a neuron that never fires


# ----------------------------------------------------------------------------- helpers

def _dyadic(rng, shape, lo, hi, denom):
    return (rng.integers(lo, hi + 1, size=shape) / denom).astype(np.float32)


def _dense_node(name, src, kernel, bias, activation="relu"):
    return Node(name, "dense", [src], (kernel.shape[1],),
                weights=dict(kernel=np.asarray(kernel, np.float32),
                             bias=np.asarray(bias, np.float32)),
                activation=activation)


def _dense_graph(layers, n_in, out_activation="linear"):
    """in -> dense ... -> dense (output); ``layers`` is a list of (kernel, bias)."""
    nodes = [Node("in", "input", [], (n_in,))]
    src = "in"
    for i, (k, b) in enumerate(layers):
        last = i == len(layers) - 1
        name = "out" if last else f"d{i + 1}"
        nodes.append(_dense_node(name, src, k, b, out_activation if last else "relu"))
        src = name
    g = Graph(nodes, name="dense_net")
    g.scales = {n.name: np.float32(1.0) for n in nodes}   # treat as normalised
    return g


def _frames(x, steps):
    return np.repeat(np.asarray(x, np.float32)[:, None], steps, axis=1)


def _probe(snn, names, x, steps):
    """Sequence-mode outputs of the named layers: (samples' PSP, prospective or None)."""
    model = keras.Model(snn.inputs, [snn.get_layer(n).output for n in names])
    outs = model([_frames(x, steps)])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    res = {}
    for name, o in zip(names, outs):
        o = np.asarray(o)
        if snn.get_layer(name).prospective:
            half = len(o) // 2
            res[name] = (o[:half], o[half:])
        else:
            res[name] = (o, None)
    return res


def _first_spike_steps(psp):
    """(B, T, ...) PSP -> 1-based step at which it first becomes 1 (NEVER if never)."""
    on = psp > 0.5
    return np.where(on.any(axis=1), on.argmax(axis=1) + 1, NEVER)


def reference_dense(x, layers, steps, v_thresh, dt, dyn):
    """Independent numpy (float64) simulation of a chain of TTFS dense layers fed with the
    analog input ``x`` at every step; written from the semantics, not from the library.

    Returns per layer ``first`` (B, n) 1-based first-spike steps (NEVER if none), ``v_fire``
    (B, n), ``psp`` (B, T, n) and the number of spikes of each neuron (B, n).
    """
    x = np.asarray(x, np.float64)
    B = len(x)
    st = [dict(v=np.zeros((B, k.shape[1])), fired=np.zeros((B, k.shape[1])),
               v_fire=np.zeros((B, k.shape[1])), first=np.full((B, k.shape[1]), NEVER),
               count=np.zeros((B, k.shape[1])), psp=np.zeros((B, steps, k.shape[1])))
          for k, _ in layers]
    for t in range(steps):
        signal, pro = x, np.zeros_like(x)        # analog input: nothing prospective
        for s, (k, b) in zip(st, layers):
            k = np.asarray(k, np.float64)
            b = np.asarray(b, np.float64)
            n_out = k.shape[1]
            new_pro = np.zeros((B, n_out))
            new_sig = np.zeros((B, n_out))
            for i in range(B):
                has_input = any(val != 0 for val in signal[i])
                for j in range(n_out):
                    current = sum(signal[i, a] * k[a, j] for a in range(k.shape[0]))
                    if has_input:
                        current += b[j]
                    missing = sum(pro[i, a] * abs(k[a, j]) for a in range(k.shape[0]))
                    if not s["fired"][i, j]:
                        s["v"][i, j] += current * dt
                        thr = v_thresh + missing * dt if dyn else v_thresh
                        if s["v"][i, j] >= thr:
                            s["v_fire"][i, j] = s["v"][i, j]
                            s["v"][i, j] = 0.0
                            s["fired"][i, j] = 1.0
                            s["first"][i, j] = t + 1
                            s["count"][i, j] += 1
                    new_sig[i, j] = s["fired"][i, j]
                    new_pro[i, j] = float(not s["fired"][i, j] and current > 0)
            s["psp"][:, t] = new_sig
            signal, pro = new_sig, new_pro
    return st


def _random_dense_layers(seed):
    rng = np.random.default_rng(seed)
    k1 = _dyadic(rng, (4, 6), -3, 6, 8)
    b1 = _dyadic(rng, (6,), -2, 2, 16)
    k2 = _dyadic(rng, (6, 3), -4, 6, 8)
    b2 = _dyadic(rng, (3,), -2, 2, 16)
    x = _dyadic(rng, (5, 4), 0, 4, 4)
    x[0] = [0.25, 0.0, 0.5, 0.0]
    return x, [(k1, b1), (k2, b2)]


# ----------------------------------------------------------------------------- 1. ttfs_step

def _trace(current, steps, p, missing=0.0):
    state = TTFSState(*(ops.zeros((1,)) for _ in range(3)))
    cur = ops.convert_to_tensor(np.array([current], np.float32))
    miss = ops.convert_to_tensor(np.array([missing], np.float32))
    rows = []
    for _ in range(steps):
        psp, spikes, pro, state = ttfs_step(cur, miss, state, p)
        # (prospective spikes only matter with the dynamic threshold; nan if not given)
        rows.append([np.nan if a is None else float(np.asarray(a).reshape(-1)[0])
                     for a in (psp, spikes, pro, state.v, state.fired, state.v_fire)])
    return np.array(rows)   # columns: psp, spikes, prospective, v, fired, v_fire


def test_ttfs_step_hand_worked_trace():
    r = _trace(0.3, 10, TTFSParams(v_thresh=1.0, dt=1.0))
    psp, spikes, pro, v, fired, v_fire = r.T
    # v: 0.3, 0.6, 0.9, then 1.2 >= 1 fires at step 4
    np.testing.assert_allclose(v[:3], [0.3, 0.6, 0.9], rtol=1e-6)
    np.testing.assert_array_equal(psp, [0, 0, 0, 1, 1, 1, 1, 1, 1, 1])
    np.testing.assert_array_equal(spikes, [0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    assert spikes.sum() == 1
    np.testing.assert_array_equal(v[3:], 0.0)            # reset, and no further integration
    np.testing.assert_array_equal(fired, psp)
    np.testing.assert_allclose(v_fire[3:], 1.2, rtol=1e-6)
    np.testing.assert_array_equal(v_fire[:3], 0.0)
    # with the dynamic threshold and nothing missing: the same trace, and the prospective
    # spike is 1 while it has not fired (current > 0), 0 from its spike on
    dyn = _trace(0.3, 10, TTFSParams(v_thresh=1.0, dt=1.0, dyn_thresh=True))
    np.testing.assert_array_equal(dyn[:, [0, 1, 3, 4, 5]], r[:, [0, 1, 3, 4, 5]])
    np.testing.assert_array_equal(dyn[:, 2], [1, 1, 1, 0, 0, 0, 0, 0, 0, 0])


def test_ttfs_step_dt_scales_integration():
    r = _trace(0.3, 12, TTFSParams(v_thresh=1.0, dt=0.5))
    psp, spikes = r[:, 0], r[:, 1]
    # 0.15 per step: v = 0.9 after 6 steps, 1.05 after 7
    assert np.flatnonzero(spikes).tolist() == [6]
    np.testing.assert_array_equal(psp, [0] * 6 + [1] * 6)
    np.testing.assert_allclose(r[6, 5], 1.05, rtol=1e-5)


def test_ttfs_step_dynamic_threshold():
    dyn = TTFSParams(v_thresh=1.0, dt=1.0, dyn_thresh=True)
    # missing 0.5 -> threshold 1.5: 0.25 per step reaches 1.5 at step 6 (instead of 4)
    r = _trace(0.25, 10, dyn, missing=0.5)
    assert np.flatnonzero(r[:, 1]).tolist() == [5]
    assert r[5, 5] == 1.5
    assert np.flatnonzero(_trace(0.25, 10, dyn, missing=0.0)[:, 1]).tolist() == [3]
    # missing 0.4 -> threshold 1.4: 1.2 at step 4 is not enough, 1.5 at step 5 is
    r = _trace(0.3, 10, dyn, missing=0.4)
    assert np.flatnonzero(r[:, 1]).tolist() == [4]
    # dt enters the threshold too: dt 0.5, missing 0.8 -> threshold 1.4, 0.15 per step -> 10
    r = _trace(0.3, 14, TTFSParams(1.0, 0.5, True), missing=0.8)
    assert np.flatnonzero(r[:, 1]).tolist() == [9]
    # without dyn_thresh the missing impulse is ignored
    r = _trace(0.3, 10, TTFSParams(1.0, 1.0, False), missing=5.0)
    assert np.flatnonzero(r[:, 1]).tolist() == [3]
    # prospective: 0 for a non-positive current (never fires)
    r = _trace(0.0, 5, dyn)
    np.testing.assert_array_equal(r[:, 2], 0)
    np.testing.assert_array_equal(r[:, 0], 0)
    r = _trace(-0.2, 5, dyn)
    np.testing.assert_array_equal(r[:, 2], 0)
    np.testing.assert_allclose(r[:, 3], -0.2 * np.arange(1, 6), rtol=1e-6)


def test_ttfs_neuron_run_matches_step_and_refuses_bad_params():
    currents = np.array([[[0.3, 0.0, 0.6, -0.1]]], np.float32).repeat(6, axis=1)  # (1, 6, 4)
    out = TTFSNeuron(v_thresh=1.0, dt=1.0).run(ops.convert_to_tensor(currents))
    psp = np.asarray(out[0] if isinstance(out, tuple) else out)
    np.testing.assert_array_equal(_first_spike_steps(psp)[0], [4, NEVER, 2, NEVER])
    neuron = TTFSNeuron(v_thresh=1.0, dt=1.0, dyn_thresh=True)
    psp, pro = (np.asarray(a) for a in neuron.run(ops.convert_to_tensor(currents)))
    np.testing.assert_array_equal(_first_spike_steps(psp)[0], [4, NEVER, 2, NEVER])
    np.testing.assert_array_equal(pro[0, :, 0], [1, 1, 1, 0, 0, 0])
    np.testing.assert_array_equal(pro[0, :, 3], 0)
    with pytest.raises(ValueError):
        TTFSNeuron(v_thresh=0.0)
    with pytest.raises(ValueError):
        TTFSNeuron(dt=-1.0)


# ----------------------------------------------------------------------------- 2. spike times

@pytest.mark.parametrize("code,dt", [("ttfs", 1.0), ("ttfs_dyn_thresh", 1.0),
                                     ("ttfs_dyn_thresh", 0.5)])
def test_dense_first_spike_times_match_numpy_reference(code, dt):
    x, layers = _random_dense_layers(3)
    steps = 40
    dyn = code == "ttfs_dyn_thresh"
    ref = reference_dense(x, layers, steps, 1.0, dt, dyn)
    # the reference exercises what it should: spikes in both layers, at several steps
    assert len(np.unique(ref[0]["first"][ref[0]["first"] < NEVER])) >= 3
    assert len(np.unique(ref[1]["first"][ref[1]["first"] < NEVER])) >= 2
    if dyn:   # the missing impulse delays some output spikes
        plain = reference_dense(x, layers, steps, 1.0, dt, False)
        assert (ref[1]["first"] != plain[1]["first"]).any()
        assert (ref[1]["first"] >= plain[1]["first"]).all()

    snn = snnconv.convert(_dense_graph(layers, 4), spike_code=code, v_thresh=1.0, dt=dt)
    probed = _probe(snn, ["d1", "out"], x, steps)
    for s, name in zip(ref, ["d1", "out"]):
        psp, _ = probed[name]
        np.testing.assert_array_equal(psp, s["psp"], err_msg=name)
        np.testing.assert_array_equal(_first_spike_steps(psp), s["first"], err_msg=name)

    out = simulate_batch(snn, x, steps)
    for s, name in zip(ref, ["d1", "out"]):
        per_step = np.diff(s["psp"], axis=1, prepend=0).sum(axis=2)
        np.testing.assert_array_equal(out.spikes[name], per_step, err_msg=name)


# ----------------------------------------------------------------------------- 3. CNN: one spike

def _cnn_graph(seed):
    rng = np.random.default_rng(seed)
    conv = dict(strides=(1, 1), padding="same", dilation_rate=(1, 1))
    nodes = [
        Node("in", "input", [], (8, 8, 1)),
        Node("c1", "conv2d", ["in"], (8, 8, 3), params=conv, activation="relu",
             weights=dict(kernel=_dyadic(rng, (3, 3, 1, 3), -2, 4, 8),
                          bias=_dyadic(rng, (3,), -1, 1, 16))),
        Node("ap", "avg_pool2d", ["c1"], (4, 4, 3),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("c2", "conv2d", ["ap"], (4, 4, 4), params=conv, activation="relu",
             weights=dict(kernel=_dyadic(rng, (3, 3, 3, 4), -2, 4, 8),
                          bias=_dyadic(rng, (4,), -1, 1, 16))),
        Node("mp", "max_pool2d", ["c2"], (2, 2, 4),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("fl", "flatten", ["mp"], (16,)),
        Node("out", "dense", ["fl"], (3,), activation="softmax",
             weights=dict(kernel=_dyadic(rng, (16, 3), -3, 4, 8),
                          bias=np.zeros(3, np.float32))),
    ]
    g = Graph(nodes, name="cnn")
    g.scales = {n.name: np.float32(1.0) for n in nodes}
    x = _dyadic(rng, (3, 8, 8, 1), 0, 4, 16)
    return g, x


@pytest.mark.parametrize("code", CODES)
def test_cnn_every_neuron_fires_at_most_once(code):
    g, x = _cnn_graph(1)
    steps = 30
    snn = snnconv.convert(g, spike_code=code)
    out = simulate_batch(snn, x, steps)
    neurons = {"c1": 8 * 8 * 3, "c2": 4 * 4 * 4, "out": 3}
    assert set(neurons) <= set(out.spikes)
    for name, n in neurons.items():
        total = out.spikes[name].sum(axis=1)
        assert (total <= n).all(), name
        assert total.sum() > 0, f"{name} never fired: the test would prove nothing"

    probed = _probe(snn, ["c1", "ap", "c2", "mp", "out"], x, steps)
    for name in ["c1", "c2", "mp", "out"]:
        psp = probed[name][0]
        assert set(np.unique(psp)) <= {0.0, 1.0}, name
        assert (np.diff(psp, axis=1) >= 0).all(), f"{name}: PSP not monotone 0 -> 1"
    for name in ["c1", "c2", "out"]:   # per-neuron spike counts agree with step mode
        psp = probed[name][0]
        per_step = np.diff(psp, axis=1, prepend=0).reshape(len(x), steps, -1).sum(axis=2)
        np.testing.assert_array_equal(out.spikes[name], per_step, err_msg=name)
    # avg pool: the mean of each 2x2 window of c1's PSPs
    c1 = probed["c1"][0]
    expect_ap = c1.reshape(len(x), steps, 4, 2, 4, 2, 3).mean(axis=(3, 5))
    np.testing.assert_allclose(probed["ap"][0], expect_ap, rtol=0, atol=1e-7)
    # max pool passes the first spike of each 2x2 window of c2
    c2_first = _first_spike_steps(probed["c2"][0])               # (B, 4, 4, 4)
    expect = c2_first.reshape(len(x), 2, 2, 2, 2, 4).min(axis=(2, 4))
    np.testing.assert_array_equal(_first_spike_steps(probed["mp"][0]), expect)
    assert (expect < NEVER).any()


# ----------------------------------------------------------------------------- 4. missing impulse

def _dyn_dense(kernel, bias, v_thresh=1.0, dt=1.0):
    layer = SpikeDense(kernel.shape[1], activation="relu", spike_code="ttfs_dyn_thresh",
                       neuron={"model": "ttfs", "v_thresh": v_thresh, "dt": dt,
                               "dyn_thresh": True}, name="dd")
    layer.build((None, None, kernel.shape[0]))
    layer.kernel.assign(kernel)
    layer.bias.assign(bias)
    return layer


def test_missing_impulse_is_abs_weights_times_prospective():
    kernel = np.array([[0.5, -0.25, 1.0],
                       [-0.75, 0.5, 0.0],
                       [0.25, -1.0, -0.5]], np.float32)
    bias = np.array([0.125, 0.25, -0.125], np.float32)
    layer = _dyn_dense(kernel, bias)
    p = np.array([[1, 0, 1], [0, 1, 1], [0, 0, 0]], np.float32)
    np.testing.assert_allclose(np.asarray(layer.prospective_op(p)), p @ np.abs(kernel),
                               rtol=0, atol=1e-7)
    # no bias, no sign: an all-zero prospective frame brings nothing
    np.testing.assert_array_equal(np.asarray(layer.prospective_op(np.zeros((1, 3), "float32"))),
                                  0)


def test_dynamic_threshold_in_layer_step():
    # one neuron, weights 1 and -0.5 from two inputs
    kernel = np.array([[1.0], [-0.5]], np.float32)
    layer = _dyn_dense(kernel, np.zeros(1, np.float32))
    x = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], np.float32)   # input 0 has fired
    p = np.array([[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]], np.float32)   # what may still come
    missing = p @ np.abs(kernel)                                    # 0.5, 0, 1.5
    np.testing.assert_array_equal(missing[:, 0], [0.5, 0.0, 1.5])
    state = layer.initial_state(3, (2,))
    fired_at = np.full(3, NEVER)
    for t in range(1, 5):
        out, state = layer.step(np.concatenate([x, p]), state)
        out = np.asarray(out)
        assert out.shape == (6, 1)
        psp, pro = out[:3, 0], out[3:, 0]
        fired_at[(psp > 0) & (fired_at == NEVER)] = t
        # prospective: current 1 > 0, so 1 until the neuron fires
        np.testing.assert_array_equal(pro, (psp == 0).astype(np.float32))
    # current 1 per step, threshold 1 + missing: steps 2 (1.5), 1 (1.0), 3 (2.5)
    np.testing.assert_array_equal(fired_at, [2, 1, 3])


def test_threshold_falls_back_when_inputs_have_fired():
    # layer 2's missing impulse shrinks to 0 once every input neuron of it has fired
    x = np.array([[0.5, 0.25]], np.float32)
    k1 = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)        # d1 fires at steps 2 and 4
    k2 = np.array([[0.25], [0.75]], np.float32)
    layers = [(k1, np.zeros(2, np.float32)), (k2, np.zeros(1, np.float32))]
    snn = snnconv.convert(_dense_graph(layers, 2), spike_code="ttfs_dyn_thresh")
    probed = _probe(snn, ["d1", "out"], x, 8)
    np.testing.assert_array_equal(_first_spike_steps(probed["d1"][0])[0], [2, 4])
    # d1 prospective: each neuron until it fires
    np.testing.assert_array_equal(probed["d1"][1][0, :, 0], [1, 0, 0, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(probed["d1"][1][0, :, 1], [1, 1, 1, 0, 0, 0, 0, 0])
    # out: current 0 (step 1), 0.25 (2, 3), 1.0 from step 4 -> v 0, .25, .5, 1.5
    # missing 1.0, 0.75, 0.75, 0 -> threshold back to 1 at step 4: fires at step 4
    # (with a threshold stuck at 1.75 it would fire at step 5, v = 2.5)
    assert _first_spike_steps(probed["out"][0])[0, 0] == 4
    ref = reference_dense(x, layers, 8, 1.0, 1.0, True)
    assert ref[1]["first"][0, 0] == 4
    assert simulate_batch(snn, x, 8).spikes["out"][0].tolist() == [0, 0, 0, 1, 0, 0, 0, 0]


# ----------------------------------------------------------------------------- 5. max pooling

def _window_psp(first_steps, steps):
    """(1, T, 2, 2, 1) PSPs of a 2x2 window whose neurons first fire at ``first_steps``."""
    t = np.arange(1, steps + 1)[:, None]
    psp = (t >= np.asarray(first_steps)[None, :]).astype(np.float32)    # (T, 4)
    return psp.reshape(1, steps, 2, 2, 1)


@pytest.mark.parametrize("firsts,expected", [([5, 3, 7, NEVER], 3), ([NEVER, NEVER, 6, 2], 2),
                                             ([4, 4, 4, 4], 4), ([NEVER] * 4, NEVER)])
def test_max_pool_passes_first_spike_of_window(firsts, expected):
    steps = 8
    psp = _window_psp(firsts, steps)
    pool = SpikeMaxPooling2D(pool_size=(2, 2), spike_code="ttfs", name="mp")
    seq = np.asarray(pool(psp))
    assert seq.shape == (1, steps, 1, 1, 1)
    want = (np.arange(1, steps + 1) >= expected).astype(np.float32)
    np.testing.assert_array_equal(seq[0, :, 0, 0, 0], want)
    # step mode gives the same, one frame at a time
    state = pool.initial_state(1, (2, 2, 1))
    stepped = []
    for t in range(steps):
        out, state = pool.step(psp[:, t], state)
        stepped.append(float(np.asarray(out).reshape(-1)[0]))
    np.testing.assert_array_equal(stepped, want)


def test_max_pool_dyn_prospective_stops_after_first_spike():
    steps = 6
    psp = _window_psp([3, 5, NEVER, NEVER], steps)                        # (1, T, 2, 2, 1)
    # prospective: neurons 0, 1 until they fire; 2 always (current > 0); 3 never
    pro = np.stack([1 - psp[..., 0, 0, 0], 1 - psp[..., 0, 1, 0],
                    np.ones((1, steps)), np.zeros((1, steps))], axis=-1)
    pro = pro.reshape(1, steps, 2, 2, 1).astype(np.float32)
    # a second window whose inputs never fire and none of which is prospective
    psp2, pro2 = np.zeros_like(psp), np.zeros_like(pro)
    frames = np.concatenate([psp, psp2, pro, pro2], axis=0)               # (4, T, 2, 2, 1)
    pool = SpikeMaxPooling2D(pool_size=(2, 2), spike_code="ttfs_dyn_thresh", name="mpd")
    seq = np.asarray(pool(frames))[:, :, 0, 0, 0]
    np.testing.assert_array_equal(seq[0], [0, 0, 1, 1, 1, 1])     # first spike at step 3
    np.testing.assert_array_equal(seq[1], 0)
    # prospective: 1 until the window's first spike, then 0 (though input 2 may still fire)
    np.testing.assert_array_equal(seq[2], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(seq[3], 0)
    state = pool.initial_state(2, (2, 2, 1))
    for t in range(steps):
        out, state = pool.step(frames[:, t], state)
        np.testing.assert_array_equal(np.asarray(out)[:, 0, 0, 0], seq[:, t])


# ----------------------------------------------------------------------------- 6. TTFS output

def _softmax_net(seed=17):
    rng = np.random.default_rng(seed)
    k1 = _dyadic(rng, (4, 6), -2, 6, 8)
    b1 = _dyadic(rng, (6,), -1, 2, 16)
    k2 = _dyadic(rng, (6, 4), -3, 6, 8)
    b2 = _dyadic(rng, (4,), -1, 2, 16)
    x = _dyadic(rng, (8, 4), 1, 4, 4)
    return x, [(k1, b1), (k2, b2)]


def _predicted_by_first_spike(first, v_fire):
    """Earliest output spike wins, ties go to the larger membrane potential at the spike
    (then to the lower index)."""
    preds = []
    for f, v in zip(first, v_fire):
        tied = np.flatnonzero(f == f.min())
        preds.append(int(tied[np.argmax(v[tied])]))
    return np.array(preds)


@pytest.mark.parametrize("code", CODES)
def test_softmax_output_becomes_ttfs_and_first_spike_decides(code):
    x, layers = _softmax_net()
    g = _dense_graph(layers, 4, out_activation="softmax")
    dt, steps = 0.5, 60
    snn = snnconv.convert(g, spike_code=code, dt=dt)
    out_layer = snn.get_layer("out")
    assert out_layer.activation == "relu"
    assert isinstance(out_layer.neuron, TTFSNeuron)
    assert out_layer.neuron.dyn_thresh == (code == "ttfs_dyn_thresh")
    assert out_layer.neuron.dt == dt

    ref = reference_dense(x, layers, steps, 1.0, dt, code == "ttfs_dyn_thresh")[1]
    assert (ref["first"].min(axis=1) < NEVER).all(), "every sample must decide"
    assert (ref["count"] <= 1).all()
    expected = _predicted_by_first_spike(ref["first"], ref["v_fire"])
    assert len(set(expected.tolist())) >= 3          # not a constant prediction
    # some first-spike ties are decided by the membrane potential, not by the index
    assert (expected != ref["first"].argmin(axis=1)).any()

    psp = _probe(snn, ["out"], x, steps)["out"][0]
    first = _first_spike_steps(psp)
    np.testing.assert_array_equal(first, ref["first"])
    decision = first.min(axis=1)

    res = simulate_batch(snn, x, steps)
    np.testing.assert_array_equal(res.readout[:, -1].argmax(axis=1), expected)
    # from the decision step on, the prediction is already the final one
    for i, d in enumerate(decision):
        np.testing.assert_array_equal(res.readout[i, d - 1:].argmax(axis=1), expected[i])

    labels = expected.copy()
    labels[0] = (labels[0] + 1) % 4               # one wrong label
    result = evaluate(snn, x, labels, num_steps=steps, batch_size=3, progress=False)
    np.testing.assert_array_equal(result.predictions, expected)
    np.testing.assert_array_equal(result.decision_steps, decision)
    assert result.decided_fraction == 1.0
    assert result.mean_decision_time == pytest.approx(decision.mean() * dt)
    assert result.accuracy == pytest.approx(7 / 8)


def test_decision_step_zero_when_output_never_fires():
    x = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)
    layers = [(np.eye(2, dtype=np.float32), np.zeros(2, np.float32)),
              (np.array([[0.25, 0.0], [0.0, 0.5]], np.float32), np.zeros(2, np.float32))]
    snn = snnconv.convert(_dense_graph(layers, 2, "softmax"), spike_code="ttfs")
    # d1 fires at steps 1 and 2; out: neuron 0 gets 0.25 from step 1 -> fires at 4;
    # neuron 1 gets 0.5 from step 2 -> v 0.5, 1.0 -> fires at 3. Sample 2: nothing.
    result = evaluate(snn, x, [1, 0], num_steps=6, progress=False)
    np.testing.assert_array_equal(result.decision_steps, [3, 0])
    assert result.predictions[0] == 1
    assert result.decided_fraction == 0.5
    assert result.mean_decision_time == 3.0


@pytest.mark.parametrize("code", CODES)
def test_early_stopping_ends_the_batch_at_the_last_decision(code):
    x, layers = _softmax_net()
    snn = snnconv.convert(_dense_graph(layers, 4, out_activation="softmax"), spike_code=code,
                          dt=0.5)
    steps = 60
    full = simulate_batch(snn, x, steps)
    early = simulate_batch(snn, x, steps, early_stopping=True)
    out_spikes = full.spikes["out"]
    decision = (out_spikes > 0).argmax(axis=1) + 1
    assert (out_spikes > 0).any(axis=1).all() and decision.max() < steps
    last = decision.max()          # the step at which the whole batch has decided
    # identical up to the last decision; afterwards the scores stay as they were
    np.testing.assert_array_equal(early.readout[:, :last], full.readout[:, :last])
    np.testing.assert_array_equal(early.readout[:, last:],
                                  np.repeat(full.readout[:, last - 1:last], steps - last, 1))
    np.testing.assert_array_equal(early.readout.argmax(2), full.readout.argmax(2))
    np.testing.assert_array_equal(early.synops[:, :last], full.synops[:, :last])
    assert not early.synops[:, last:].any()
    for name, s in full.spikes.items():
        np.testing.assert_array_equal(early.spikes[name][:, :last], s[:, :last])
        assert not early.spikes[name][:, last:].any()
    # the full run keeps spiking after the decision: stopping saves operations
    assert full.synops[:, last:].sum() > 0

    labels = full.readout[:, -1].argmax(1)
    r_full = evaluate(snn, x, labels, num_steps=steps, batch_size=8, progress=False)
    r_early = evaluate(snn, x, labels, num_steps=steps, batch_size=8, progress=False,
                       early_stopping=True)
    np.testing.assert_array_equal(r_early.predictions, r_full.predictions)
    np.testing.assert_array_equal(r_early.accuracy_per_step, r_full.accuracy_per_step)
    np.testing.assert_array_equal(r_early.decision_steps, r_full.decision_steps)
    assert r_early.synops < r_full.synops


def test_early_stopping_runs_on_while_a_sample_is_undecided():
    x = np.array([[1.0, 0.5], [0.0, 0.0]], np.float32)
    layers = [(np.eye(2, dtype=np.float32), np.zeros(2, np.float32)),
              (np.array([[0.25, 0.0], [0.0, 0.5]], np.float32), np.zeros(2, np.float32))]
    snn = snnconv.convert(_dense_graph(layers, 2, "softmax"), spike_code="ttfs")
    full, early = (simulate_batch(snn, x, 6, early_stopping=stop) for stop in (False, True))
    # sample 2 never decides, so the batch runs to the end exactly as without stopping
    np.testing.assert_array_equal(early.readout, full.readout)
    np.testing.assert_array_equal(early.synops, full.synops)
    # alone, sample 1 decides at step 3 and nothing is simulated after it
    alone = simulate_batch(snn, x[:1], 6, early_stopping=True)
    assert alone.spikes["out"][0].tolist() == [0, 0, 1, 0, 0, 0]
    assert not alone.spikes["d1"][0, 3:].any() and not alone.synops[0, 3:].any()


def test_early_stopping_leaves_rate_code_unchanged():
    x, layers = _softmax_net()
    snn = snnconv.convert(_dense_graph(layers, 4, out_activation="softmax"))
    full, early = (simulate_batch(snn, x, 20, early_stopping=stop) for stop in (False, True))
    np.testing.assert_array_equal(early.readout, full.readout)
    np.testing.assert_array_equal(early.synops, full.synops)


# ----------------------------------------------------------------------------- 7. save / load

@pytest.mark.parametrize("code", CODES)
def test_save_load_ttfs_snn_same_results(code, tmp_path):
    g, x = _cnn_graph(2)
    snn = snnconv.convert(g, spike_code=code, v_thresh=0.75, dt=0.5)
    before = simulate_batch(snn, x, 20)
    path = tmp_path / "t.keras"
    snn.save(path)
    loaded = load_snn(path)
    assert loaded.get_layer("c2").spike_code == code
    assert loaded.get_layer("out").neuron == snn.get_layer("out").neuron
    after = simulate_batch(loaded, x, 20)
    np.testing.assert_array_equal(after.readout, before.readout)
    np.testing.assert_array_equal(after.synops, before.synops)
    assert after.spikes.keys() == before.spikes.keys()
    for k in before.spikes:
        np.testing.assert_array_equal(after.spikes[k], before.spikes[k], err_msg=k)
    assert sum(v.sum() for v in before.spikes.values()) > 0


# ----------------------------------------------------------------------------- 8. bias gating

@pytest.mark.parametrize("code", CODES)
def test_bias_is_gated_until_input_arrives(code):
    # d1: zero weights, bias 0.25 -> fires at step 4 in a sample with any non-zero input,
    # never in the all-zero sample. out: zero weights, bias 0.5, gated until d1 has fired
    # (step 4): v 0.5 at step 4, 1.0 at step 5 (without gating it would fire at step 2).
    x = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, -0.5]], np.float32)
    layers = [(np.zeros((2, 1), np.float32), np.array([0.25], np.float32)),
              (np.zeros((1, 1), np.float32), np.array([0.5], np.float32))]
    snn = snnconv.convert(_dense_graph(layers, 2), spike_code=code)
    steps = 10
    probed = _probe(snn, ["d1", "out"], x, steps)
    np.testing.assert_array_equal(_first_spike_steps(probed["d1"][0])[:, 0], [NEVER, 4, 4])
    np.testing.assert_array_equal(_first_spike_steps(probed["out"][0])[:, 0], [NEVER, 5, 5])
    out = simulate_batch(snn, x, steps)
    np.testing.assert_array_equal(out.spikes["d1"].sum(axis=1), [0, 1, 1])
    np.testing.assert_array_equal(np.flatnonzero(out.spikes["out"][1]), [4])
    assert out.spikes["out"][0].sum() == 0
    ref = reference_dense(x, layers, steps, 1.0, 1.0, code == "ttfs_dyn_thresh")
    np.testing.assert_array_equal(ref[1]["first"][:, 0], [NEVER, 5, 5])


@pytest.mark.parametrize("code", CODES)
def test_conv_bias_gated_per_sample(code):
    conv = dict(strides=(1, 1), padding="same", dilation_rate=(1, 1))
    nodes = [Node("in", "input", [], (3, 3, 1)),
             Node("c", "conv2d", ["in"], (3, 3, 2), params=conv, activation="relu",
                  weights=dict(kernel=np.zeros((3, 3, 1, 2), np.float32),
                               bias=np.array([0.5, 0.25], np.float32))),
             Node("fl", "flatten", ["c"], (18,)),
             _dense_node("out", "fl", np.zeros((18, 2), np.float32), np.zeros(2), "softmax")]
    g = Graph(nodes, name="convbias")
    g.scales = {n.name: np.float32(1.0) for n in nodes}
    snn = snnconv.convert(g, spike_code=code)
    x = np.zeros((2, 3, 3, 1), np.float32)
    x[1, 2, 0, 0] = 0.125
    psp = _probe(snn, ["c"], x, 6)["c"][0]
    first = _first_spike_steps(psp)
    # the all-zero sample gets no bias; the other one gets it at every position
    assert (first[0] == NEVER).all()
    assert (first[1, ..., 0] == 2).all() and (first[1, ..., 1] == 4).all()
    out = simulate_batch(snn, x, 6)
    np.testing.assert_array_equal(out.spikes["c"].sum(axis=1), [0, 18])
    np.testing.assert_array_equal(out.spikes["c"][1], [0, 9, 0, 9, 0, 0])


# ------------------------------------------------------- branches of different depth

def _branch_graph():
    """in -> a (relu) -> b (relu); concat(b, a) -> out: a reaches the merge one layer
    of neurons earlier than b."""
    rng = np.random.default_rng(4)
    nodes = [Node("in", "input", [], (4,)),
             _dense_node("a", "in", _dyadic(rng, (4, 5), 0, 6, 8), np.zeros(5)),
             _dense_node("b", "a", _dyadic(rng, (5, 5), -2, 6, 8), np.zeros(5)),
             Node("cat", "concatenate", ["b", "a"], (10,), params={"axis": -1}),
             _dense_node("out", "cat", _dyadic(rng, (10, 3), -4, 4, 8), np.zeros(3),
                         activation="linear")]
    g = Graph(nodes, name="branch")
    g.scales = {n.name: np.float32(1.0) for n in nodes}
    return g, _dyadic(rng, (6, 4), 1, 4, 4)


@pytest.mark.parametrize("code", CODES)
def test_shallow_branch_is_delayed_at_the_merge(code):
    from snnconv.simulators.ini.simulator import MERGE_DELAY
    graph, x = _branch_graph()
    dt = 0.25
    snn = snnconv.convert(graph, spike_code=code, dt=dt)
    delay = snn.get_layer("a_to_cat_delay")
    assert delay.steps == round(MERGE_DELAY[code] / dt)
    assert delay.mode == ("fifo" if code == "ttfs_dyn_thresh" else "step")
    assert [lay.name for lay in snn.layers if "delay" in lay.name] == ["a_to_cat_delay"]
    out = _probe(snn, ["a", "a_to_cat_delay"], x, 40)
    first = _first_spike_steps(out["a"][0])
    delayed = _first_spike_steps(out["a_to_cat_delay"][0])
    fired = first != NEVER
    assert fired.any()
    np.testing.assert_array_equal(delayed[fired], first[fired] + delay.steps)
    # merge_delay=0: no delay layer, the seed's behaviour
    plain = snnconv.convert(graph, spike_code=code, dt=dt, merge_delay=0)
    assert not [lay for lay in plain.layers if "delay" in lay.name]
    # the delayed network decides in its compiled loop when its output first spikes
    # in sequence mode
    r = snnconv.evaluate(snn, x, np.zeros(len(x), int), num_steps=40, progress=False)
    first_out = _first_spike_steps(_probe(snn, ["out"], x, 40)["out"][0]).min(axis=1)
    np.testing.assert_array_equal(r.decision_steps, np.where(first_out == NEVER, 0, first_out))


def test_delay_keeps_prospective_spikes_of_the_delayed_branch():
    """ttfs_dyn_thresh: while a delayed branch's spikes are in transit, the merge still
    counts them as prospective: before the delay has passed, the delayed prospective
    half is the branch's first one."""
    from snnconv.layers import SpikeDelay
    layer = SpikeDelay(3, mode="fifo", spike_code="ttfs_dyn_thresh")
    rng = np.random.default_rng(0)
    psp = (rng.uniform(size=(2, 8, 4)) > 0.5).astype(np.float32)
    pro = (rng.uniform(size=(2, 8, 4)) > 0.5).astype(np.float32)
    frames = np.concatenate([psp, pro], axis=0)                # samples, then prospective
    seq = np.asarray(layer(frames))
    np.testing.assert_array_equal(seq[:2, :3], 0)
    np.testing.assert_array_equal(seq[2:, :3], np.repeat(pro[:, :1], 3, axis=1))
    np.testing.assert_array_equal(seq[:, 3:], frames[:, :5])
    state = layer.initial_state(2, (4,))
    steps = []
    for t in range(8):
        out, state = layer.step(frames[:, t], state)
        steps.append(np.asarray(out))
    np.testing.assert_array_equal(np.stack(steps, axis=1), seq)


@pytest.mark.parametrize("code", CODES)
def test_ttfs_diagnostic_first_spike_time_against_activation(code):
    """Per layer: first-spike times against the ANN activation, and their rank
    correlation. The first layer, fed a constant current, fires at v_thresh / a: its
    order is the activation order."""
    from snnconv.simulators import get_simulator
    graph, x = _branch_graph()
    snn = snnconv.convert(graph, spike_code=code, dt=0.125)
    pairs = get_simulator("INI").diagnostics(graph, snn, x, 80)
    assert list(pairs) == ["a", "b", "out"]
    for p in pairs.values():
        assert p["snn_label"] == "first-spike time"
        fired = ~np.isnan(p["snn"])
        assert np.all(p["snn"][fired] > 0)
    a = pairs["a"]
    assert a["correlation"] > 0.95
    # a neuron whose ANN activation is 0 never fires
    assert np.all(np.isnan(a["snn"][a["ann"] <= 0]))
