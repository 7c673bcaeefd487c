"""Tests of snnconv.synops (fan-out maps, connection counts) and the SynOp counts of
evaluate(), against fan-outs worked out by hand / in numpy."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnconv.ann import count_macs  # noqa: E402
from snnconv.simulators.ini import build_spiking_model  # noqa: E402
from snnconv.evaluation import evaluate  # noqa: E402
from snnconv.ir import Graph, Node  # noqa: E402
from snnconv.synops import fanout_maps  # noqa: E402

CONV = dict(strides=(1, 1), padding="same", dilation_rate=(1, 1))


def _w(rng, *shape):
    return rng.normal(0, 0.5, size=shape).astype(np.float32)


def _dense(name, src, n_in, units, rng, activation="linear", positions=()):
    return Node(name, "dense", [src], tuple(positions) + (units,),
                weights=dict(kernel=_w(rng, n_in, units), bias=np.zeros(units, np.float32)),
                activation=activation)


def _conv(name, src, cin, f, out_hw, rng, k=3, activation="relu", **params):
    p = {**CONV, **params}
    return Node(name, "conv2d", [src], tuple(out_hw) + (f,), params=p,
                weights=dict(kernel=_w(rng, k, k, cin, f), bias=np.zeros(f, np.float32)),
                activation=activation)


def _coverage(n, k, stride, padding):
    """How many output positions of a 1-D window op read each of the n input positions
    (TensorFlow's 'same' padding puts the extra pad at the end)."""
    if padding == "same":
        out = -(-n // stride)
        pad_before = max((out - 1) * stride + k - n, 0) // 2
    else:
        out = (n - k) // stride + 1
        pad_before = 0
    cover = np.zeros(n, int)
    for o in range(out):
        start = o * stride - pad_before
        for i in range(start, start + k):
            if 0 <= i < n:
                cover[i] += 1
    return cover


# ----------------------------------------------------------------------------- fan-out maps

def test_fanout_into_dense_is_units():
    rng = np.random.default_rng(0)
    g = Graph([Node("in", "input", [], (5,)), _dense("d", "in", 5, 7, rng)])
    fan = fanout_maps(g, ["in"])["in"]
    assert fan.shape == (5,)
    np.testing.assert_array_equal(fan, np.full(5, 7))
    # the output node drives nothing
    np.testing.assert_array_equal(fanout_maps(g, ["d"])["d"], np.zeros(7))


@pytest.mark.parametrize("F", [1, 3])
def test_fanout_same_conv_stride_one_hand_worked(F):
    rng = np.random.default_rng(0)
    g = Graph([Node("in", "input", [], (5, 6, 2)), _conv("c", "in", 2, F, (5, 6), rng)])
    fan = fanout_maps(g, ["in"])["in"]
    assert fan.shape == (5, 6, 2)
    for ch in range(2):
        f = fan[..., ch]
        assert f[0, 0] == f[0, -1] == f[-1, 0] == f[-1, -1] == 4 * F     # corners
        assert f[0, 2] == f[2, 0] == f[-1, 3] == f[3, -1] == 6 * F      # edges
        np.testing.assert_array_equal(f[1:-1, 1:-1], 9 * F)              # interior


@pytest.mark.parametrize("padding,stride,k", [("same", 2, 3), ("valid", 2, 3),
                                              ("valid", 1, 2), ("same", 3, 2)])
def test_fanout_conv_matches_numpy_coverage(padding, stride, k):
    rng = np.random.default_rng(0)
    h, w, F = 7, 6, 4
    oh = -(-h // stride) if padding == "same" else (h - k) // stride + 1
    ow = -(-w // stride) if padding == "same" else (w - k) // stride + 1
    g = Graph([Node("in", "input", [], (h, w, 2)),
               _conv("c", "in", 2, F, (oh, ow), rng, k=k, strides=(stride, stride),
                     padding=padding)])
    fan = fanout_maps(g, ["in"])["in"]
    ref = np.outer(_coverage(h, k, stride, padding), _coverage(w, k, stride, padding)) * F
    np.testing.assert_array_equal(fan, np.repeat(ref[..., None], 2, axis=-1))


@pytest.mark.parametrize("pool_op", ["avg_pool2d", "max_pool2d"])
def test_fanout_through_pooling_then_dense(pool_op):
    rng = np.random.default_rng(0)
    g = Graph([
        Node("in", "input", [], (4, 4, 2)),
        _conv("c", "in", 2, 3, (4, 4), rng),
        Node("p", pool_op, ["c"], (2, 2, 3),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("f", "flatten", ["p"], (12,)),
        _dense("d", "f", 12, 5, rng),
    ])
    fan = fanout_maps(g, ["c"])["c"]
    np.testing.assert_array_equal(fan, np.full((4, 4, 3), 5))


def test_fanout_overlapping_pool_and_padding():
    """3x3 pool with stride 2 after zero padding: each neuron reaches as many pool
    windows as cover it (numpy), each of which feeds Dense(2)."""
    rng = np.random.default_rng(0)
    g = Graph([
        Node("in", "input", [], (5, 5, 1)),
        Node("z", "zero_padding2d", ["in"], (7, 7, 1), params=dict(padding=((1, 1), (1, 1)))),
        Node("p", "avg_pool2d", ["z"], (3, 3, 1),
             params=dict(pool_size=(3, 3), strides=(2, 2), padding="valid")),
        Node("f", "flatten", ["p"], (9,)),
        _dense("d", "f", 9, 2, rng),
    ])
    fan = fanout_maps(g, ["in"])["in"][..., 0]
    cover = _coverage(7, 3, 2, "valid")[1:-1]            # drop the padded border
    np.testing.assert_array_equal(fan, np.outer(cover, cover) * 2)


def test_fanout_multiple_consumers_concat_add_identity():
    rng = np.random.default_rng(0)
    g = Graph([
        Node("in", "input", [], (4,)),
        _dense("a", "in", 4, 3, rng, activation="relu"),
        _dense("b", "in", 4, 3, rng, activation="relu"),
        Node("cat", "concatenate", ["a", "b"], (6,), params=dict(axis=-1)),
        _dense("d1", "cat", 6, 7, rng, activation="relu"),
        Node("sum", "add", ["a", "b"], (3,)),
        Node("r", "identity", ["sum"], (3,), activation="relu"),
        _dense("d2", "r", 3, 2, rng),
        _dense("d3", "d1", 7, 2, rng),
        Node("out", "add", ["d2", "d3"], (2,)),
    ])
    fans = fanout_maps(g, ["in", "a", "b", "d1", "r"])
    np.testing.assert_array_equal(fans["in"], np.full(4, 6))         # a (3) + b (3)
    np.testing.assert_array_equal(fans["a"], np.full(3, 8))          # d1 (7) + r (1)
    np.testing.assert_array_equal(fans["b"], np.full(3, 8))
    np.testing.assert_array_equal(fans["d1"], np.full(7, 2))
    np.testing.assert_array_equal(fans["r"], np.full(3, 2))


# ----------------------------------------------------------------------------- MACs

def _small_cnn(padding):
    rng = np.random.default_rng(1)
    in_hw = (9, 8) if padding == "same" else (11, 9)      # c1 outputs (5, 4) either way
    return Graph([
        Node("in", "input", [], in_hw + (2,)),
        _conv("c1", "in", 2, 4, (5, 4), rng, strides=(2, 2), padding=padding),
        Node("z", "zero_padding2d", ["c1"], (7, 5, 4), params=dict(padding=((1, 1), (0, 1)))),
        Node("dw", "depthwise_conv2d", ["z"], (5, 3, 8),
             params=dict(strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                         depth_multiplier=2),
             weights=dict(kernel=_w(rng, 3, 3, 4, 2), bias=np.zeros(8, np.float32)),
             activation="relu"),
        _conv("c2", "dw", 8, 3, (3, 1), rng, k=3, padding="valid", dilation_rate=(1, 1)),
        _dense("pos", "c2", 3, 6, rng, activation="relu", positions=(3, 1)),
        Node("f", "flatten", ["pos"], (18,)),
        _dense("d", "f", 18, 5, rng),
    ], name="small_cnn")


def test_count_macs_by_hand_valid_padding():
    g = _small_cnn("valid")
    assert count_macs(g) == {"c1": 5 * 4 * 4 * 3 * 3 * 2, "dw": 5 * 3 * 8 * 3 * 3,
                             "c2": 3 * 1 * 3 * 3 * 3 * 8, "pos": 3 * 1 * 3 * 6, "d": 18 * 5}


def test_count_macs_counts_padded_taps_with_same_padding():
    """The ANN's MACs count every kernel tap, padded positions included."""
    g = _small_cnn("same")
    assert count_macs(g)["c1"] == 5 * 4 * 4 * 3 * 3 * 2


def test_fanout_sum_counts_only_real_synapses_with_same_padding():
    """Spikes are delivered over real synapses only: the input's fan-out map of a strided
    'same' conv sums to the non-padded connections (numpy coverage), fewer than the
    kernel taps of the ANN's MACs."""
    g = _small_cnn("same")
    real = (np.outer(_coverage(9, 3, 2, "same"), _coverage(8, 3, 2, "same")) * 4).sum() * 2
    assert fanout_maps(g, ["in"])["in"].sum() == real
    assert real < count_macs(g)["c1"]


# ----------------------------------------------------------------------------- evaluate()

def _eval_graph():
    rng = np.random.default_rng(2)
    conv = _conv("conv", "in", 1, 2, (4, 4), rng)
    conv.weights["kernel"] = np.abs(conv.weights["kernel"])
    conv.weights["bias"] = np.array([0.05, -0.1], np.float32)
    hid = _dense("hid", "flat", 8, 5, rng, activation="relu")
    hid.weights["bias"] = np.full(5, 0.2, np.float32)
    return Graph([
        Node("in", "input", [], (4, 4, 1)),
        conv,
        Node("pool", "avg_pool2d", ["conv"], (2, 2, 2),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("flat", "flatten", ["pool"], (8,)),
        hid,
        _dense("out", "hid", 5, 3, rng, activation="softmax"),
    ], name="tiny")


# spike amplitudes of 2 and of a quarter (four spikes a step, as cell.burst = 4
# makes them) are powers of two, whose division the graph engine folds into its
# records; 3 is not
@pytest.mark.parametrize("engine", ["graph", "xla"])
@pytest.mark.parametrize("v_thresh,max_spikes", [(2.0, 1), (0.25, 4), (3.0, 1)])
def test_evaluate_synops_equal_spikes_times_fanout(engine, v_thresh, max_spikes):
    graph = _eval_graph()
    neuron = {"model": "if", "v_thresh": v_thresh, "dt": 1.0,
              "max_spikes_per_dt": max_spikes}               # spike amplitude v_thresh
    snn = build_spiking_model(graph, neuron)
    T, n = 12, 5
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 1, size=(n, 4, 4, 1)).astype(np.float32)
    x[x < 0.3] = 0.0                                        # zeros cost no SynOps
    y = np.arange(n) % 3
    if v_thresh < 1:
        x = x * v_thresh * 3                                  # up to 3 of its 4 spikes a step
    result = evaluate(snn, x, y, num_steps=T, batch_size=2, progress=False, engine=engine)

    # the layers' own outputs, step by step
    names = ["in_spikes", "conv", "hid"]
    probe = keras.Model(snn.input, [snn.get_layer(nm).output for nm in names])
    frames = np.broadcast_to(x[:, None], (n, T, 4, 4, 1)).copy()
    inp, conv, hid = (np.asarray(o) for o in probe(frames))
    np.testing.assert_array_equal(inp, frames)               # analog input
    conv_spikes, hid_spikes = conv / v_thresh, hid / v_thresh
    assert set(np.unique(conv_spikes)) <= set(range(max_spikes + 1)) and conv_spikes.sum() > 0
    if max_spikes > 1:
        assert conv_spikes.max() > 1
    assert hid_spikes.sum() > 0

    # fan-outs worked out by hand: input -> 3x3 'same' conv with 2 filters
    cover = np.array([2, 3, 3, 2])
    fan_in = (np.outer(cover, cover) * 2)[..., None]          # corners 8, edges 12, inside 18
    fan_conv = 5                                              # -> pool -> flatten -> Dense(5)
    fan_hid = 3                                               # -> Dense(3)
    # the analog input is a constant current: its SynOps count once, in the first step
    input_ops = ((inp != 0) * fan_in).sum(axis=(2, 3, 4))
    input_ops[:, 1:] = 0
    per_sample = input_ops \
        + conv_spikes.sum(axis=(2, 3, 4)) * fan_conv + hid_spikes.sum(axis=2) * fan_hid
    np.testing.assert_allclose(result.synops_per_step, per_sample.mean(axis=0), rtol=1e-6)
    assert result.synops == pytest.approx(per_sample.sum() / n, rel=1e-6)
    # spike counts per layer and step
    np.testing.assert_allclose(result.spikes_per_step["conv"],
                               conv_spikes.sum(axis=(2, 3, 4)).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(result.spikes_per_step["hid"],
                               hid_spikes.sum(axis=2).mean(axis=0), rtol=1e-6)
    assert set(result.spikes_per_step) == {"conv", "hid"}
    assert result.neurons == {"conv": 32, "hid": 5}
    # the readout accumulates the output layer's current
    out = np.asarray(snn(frames))
    pred = np.cumsum(out, axis=1)[:, -1].argmax(axis=1)
    np.testing.assert_array_equal(result.predictions, pred)
    assert result.accuracy == pytest.approx(np.mean(pred == y))


def test_snn_ann_macs_equal_count_macs():
    """The SNN records the MACs of the ANN it came from (SpikeInput.ann_macs, reported
    by evaluate() and used for SynOps / MAC): the same number as ann.count_macs()."""
    graph = _eval_graph()
    snn = build_spiking_model(graph, {"model": "if"})
    result = evaluate(snn, np.zeros((1, 4, 4, 1), np.float32), [0], num_steps=2,
                      progress=False)
    assert sum(count_macs(graph).values()) == 16 * 2 * 9 + 8 * 5 + 5 * 3
    assert result.ann_macs == sum(count_macs(graph).values())
