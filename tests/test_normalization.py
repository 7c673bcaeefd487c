"""Tests of snnconv.normalization: exact streaming percentiles and weight rescaling."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnconv.ann import build_ann  # noqa: E402
from snnconv.ir import Graph, Node  # noqa: E402
from snnconv.normalization import activation_scales, apply_scales, normalize  # noqa: E402


def _w(rng, *shape, scale=0.5):
    return rng.normal(0, scale, size=shape).astype(np.float32)


def _cnn(seed=0):
    rng = np.random.default_rng(seed)
    nodes = [
        Node("in", "input", [], (6, 6, 2)),
        Node("conv", "conv2d", ["in"], (6, 6, 4),
             params=dict(strides=(1, 1), padding="same", dilation_rate=(1, 1)),
             weights=dict(kernel=_w(rng, 3, 3, 2, 4), bias=_w(rng, 4, scale=0.1)),
             activation="relu"),
        Node("pool", "avg_pool2d", ["conv"], (3, 3, 4),
             params=dict(pool_size=(2, 2), strides=(2, 2), padding="valid")),
        Node("flat", "flatten", ["pool"], (36,)),
        Node("fc1", "dense", ["flat"], (8,),
             weights=dict(kernel=_w(rng, 36, 8), bias=_w(rng, 8, scale=0.1)),
             activation="relu"),
        Node("out", "dense", ["fc1"], (3,),
             weights=dict(kernel=_w(rng, 8, 3), bias=_w(rng, 3, scale=0.1)),
             activation="softmax"),
    ]
    return Graph(nodes, name="cnn")


def _data(n=37, shape=(6, 6, 2), seed=1):
    return np.random.default_rng(seed).uniform(0, 1, size=(n,) + shape).astype(np.float32)


def _relu_acts(graph, x):
    names = [n.name for n in graph if n.activation == "relu"]
    outs = build_ann(graph, outputs=names).predict(x, verbose=0, batch_size=len(x))
    outs = outs if isinstance(outs, list) else [outs]
    return dict(zip(names, [np.asarray(o) for o in outs]))


def _ref_percentile(a, q, per_channel):
    """np.percentile of the positive values; a column without any gets 1 (documented)."""
    def pct(v):
        v = v[v > 0]
        return np.percentile(v, q) if v.size else 1.0
    if per_channel:
        return np.array([pct(c) for c in a.reshape(-1, a.shape[-1]).T])
    return pct(a.reshape(-1))


def _logits(graph, x):
    """The output node's pre-activation values, computed with a linear output."""
    g = graph.copy()
    g[g.output_node.name].activation = "linear"
    return np.asarray(build_ann(g).predict(x, verbose=0, batch_size=len(x)))


_REF_ACTS = {}


def _cnn_acts():
    if not _REF_ACTS:
        _REF_ACTS.update(_relu_acts(_cnn(), _data()))
    return _REF_ACTS


@pytest.mark.parametrize("q,per_channel,batch_size", [
    (99.9, False, 10), (99.9, True, 500), (50.0, False, 500), (50.0, True, 10),
    (100.0, False, 10), (100.0, True, 500), (7.3, True, 16),
])
def test_activation_scales_equal_numpy_percentile(q, per_channel, batch_size):
    graph, x = _cnn(), _data()
    acts = _cnn_acts()
    got = activation_scales(graph, x, q, batch_size=batch_size, per_channel=per_channel)
    # ReLU nodes, and the output's logits (one scale for all classes)
    assert set(got) == {"conv", "fc1", "out"}
    np.testing.assert_allclose(got["out"], _ref_percentile(_logits(graph, x), q, False),
                               rtol=1e-6)
    for name, a in acts.items():
        ref = _ref_percentile(a, q, per_channel)
        assert np.shape(got[name]) == np.shape(ref), name
        np.testing.assert_allclose(got[name], ref, rtol=1e-6, err_msg=name)
        if q == 100.0:
            # "max": the largest activation (silent channels get 1)
            top = a.reshape(-1, a.shape[-1]).max(0) if per_channel else a.max()
            np.testing.assert_allclose(got[name], np.where(top > 0, top, 1.0), rtol=1e-6)


def test_activation_scales_from_iterable_of_batches():
    graph, x = _cnn(), _data()
    batches = [x[:5], x[5:20], x[20:]]
    got = activation_scales(graph, batches, 99.0)
    acts = _cnn_acts()
    for name, a in acts.items():
        np.testing.assert_allclose(got[name], _ref_percentile(a, 99.0, False), rtol=1e-6)


def test_percentile_with_many_ties_and_few_values():
    """A relu dense node on hand-chosen inputs: activations are exactly the inputs."""
    nodes = [Node("in", "input", [], (2,)),
             Node("d", "dense", ["in"], (2,),
                  weights=dict(kernel=np.eye(2, dtype=np.float32),
                               bias=np.zeros(2, np.float32)), activation="relu")]
    graph = Graph(nodes)
    x = np.array([[1, -1], [2, 0], [2, 0], [2, 0], [5, 0], [0.5, 3]], np.float32)
    # positives of column 0: .5 1 2 2 2 5 ; of column 1: 3 ; all: .5 1 2 2 2 3 5
    for q in (10.0, 50.0, 75.0, 99.9):
        got = activation_scales(graph, x, q, batch_size=4)
        np.testing.assert_allclose(got["d"], np.percentile([.5, 1, 2, 2, 2, 3, 5], q),
                                   rtol=1e-9)
        got = activation_scales(graph, x, q, batch_size=4, per_channel=True)
        np.testing.assert_allclose(got["d"], [np.percentile([.5, 1, 2, 2, 2, 5], q), 3.0],
                                   rtol=1e-9)
    # the median of .5 1 2 2 2 3 5 is 2; q=100 the max 5
    assert float(activation_scales(graph, x, 50.0)["d"]) == 2.0
    assert float(activation_scales(graph, x, 100.0)["d"]) == 5.0


def test_silent_node_gets_scale_one():
    nodes = [Node("in", "input", [], (2,)),
             Node("d", "dense", ["in"], (2,),
                  weights=dict(kernel=-np.eye(2, dtype=np.float32),
                               bias=np.zeros(2, np.float32)), activation="relu")]
    x = np.abs(_data(5, (2,)))
    assert float(activation_scales(Graph(nodes), x, 99.0)["d"]) == 1.0
    assert float(activation_scales(Graph(nodes), x, 100.0)["d"]) == 1.0


@pytest.mark.parametrize("per_channel", [False, True])
def test_normalized_ann_carries_activations_over_lambda(per_channel):
    graph, x = _cnn(), _data()
    norm = normalize(graph, x, method="percentile", percentile=99.0, batch_size=16,
                     per_channel=per_channel)
    stats = activation_scales(graph, x, 99.0, per_channel=per_channel)
    np.testing.assert_allclose(norm.scales["conv"], stats["conv"], rtol=1e-12)
    np.testing.assert_allclose(norm.scales["fc1"], stats["fc1"], rtol=1e-12)
    assert float(norm.scales["in"]) == 1.0
    assert float(norm.scales["out"]) == pytest.approx(float(stats["out"]), rel=1e-12)
    # the original graph is untouched
    np.testing.assert_array_equal(graph["conv"].weights["kernel"], _cnn()["conv"].weights["kernel"])
    names = [n.name for n in graph if n.op != "input"]
    orig = dict(zip(names, build_ann(graph, "all").predict(x, verbose=0)))
    new = dict(zip(names, build_ann(norm, "all").predict(x, verbose=0)))
    for name in ("conv", "pool", "fc1"):
        lam = np.asarray(stats["conv" if name == "pool" else name])
        np.testing.assert_allclose(new[name], orig[name] / lam, rtol=2e-5, atol=1e-6,
                                   err_msg=name)
    np.testing.assert_allclose(new["flat"], orig["flat"] / np.asarray(norm.scales["flat"]),
                               rtol=2e-5, atol=1e-6)
    if not per_channel:
        # the percentile maps to 1: at most n-1-floor(q/100 (n-1)) positive values exceed it
        pos = new["fc1"][new["fc1"] > 0]
        assert np.sum(pos > 1 + 1e-5) <= len(pos) - 1 - np.floor(0.99 * (len(pos) - 1))
        assert np.sum(pos > 1 - 1e-5) >= 1
    # the logits are divided by the output's λ, so the decision is unchanged
    np.testing.assert_allclose(_logits(norm, x), _logits(graph, x) / float(stats["out"]),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(new["out"].argmax(1), orig["out"].argmax(1))


def test_normalize_max_method_bounds_activations_by_one():
    graph, x = _cnn(), _data()
    norm = normalize(graph, x, method="max")
    acts = _relu_acts(norm, x)
    for name, a in acts.items():
        assert a.max() == pytest.approx(1.0, rel=1e-5), name


def test_normalize_rejects_bad_arguments():
    graph, x = _cnn(), _data(4)
    with pytest.raises(ValueError):
        normalize(graph, x, method="mean")
    with pytest.raises(ValueError):
        normalize(graph, x, percentile=0)


def _two_branch(op, seed=3):
    """in(6) -> dense a (relu, 4) and dense b (relu, 4 or 3; weights x10) -> op -> dense out."""
    rng = np.random.default_rng(seed)
    nb = 4 if op == "add" else 3
    merged = 4 if op == "add" else 7
    merge_params = {} if op == "add" else dict(axis=-1)
    nodes = [
        Node("in", "input", [], (6,)),
        Node("a", "dense", ["in"], (4,),
             weights=dict(kernel=_w(rng, 6, 4), bias=np.full(4, 0.1, np.float32)),
             activation="relu"),
        Node("b", "dense", ["in"], (nb,),
             weights=dict(kernel=10 * _w(rng, 6, nb), bias=np.full(nb, 0.5, np.float32)),
             activation="relu"),
        Node("m", "concatenate" if op == "concatenate" else "add", ["a", "b"], (merged,),
             params=merge_params, activation="relu" if op == "add" else "linear"),
        Node("out", "dense", ["m"], (2,),
             weights=dict(kernel=_w(rng, merged, 2), bias=_w(rng, 2, scale=0.1)),
             activation="linear"),
    ]
    return Graph(nodes, name=f"two_{op}")


def test_concatenate_of_differently_scaled_branches():
    graph, x = _two_branch("concatenate"), _data(50, (6,))
    norm = normalize(graph, x, method="percentile", percentile=99.0, per_channel=False)
    stats = activation_scales(graph, x, 99.0)
    assert stats["b"] > 5 * stats["a"]                 # really differently scaled
    expected = np.r_[np.full(4, stats["a"]), np.full(3, stats["b"])]
    np.testing.assert_allclose(norm.scales["m"], expected, rtol=1e-12)
    names = ["a", "b", "m", "out"]
    orig = dict(zip(names, build_ann(graph, "all").predict(x, verbose=0)))
    new = dict(zip(names, build_ann(norm, "all").predict(x, verbose=0)))
    np.testing.assert_allclose(new["m"], orig["m"] / expected, rtol=2e-5, atol=1e-6)
    # the linear output layer absorbs the per-channel scale: outputs divided by λ_out only
    lam_out = float(stats["out"])
    np.testing.assert_allclose(new["out"], orig["out"] / lam_out, rtol=1e-4, atol=1e-5)
    # a numpy forward pass with the normalised weights agrees as well
    ka, kb, ko = (norm[n].weights["kernel"] for n in ("a", "b", "out"))
    ba, bb, bo = (norm[n].weights["bias"] for n in ("a", "b", "out"))
    h = np.concatenate([np.maximum(x @ ka + ba, 0), np.maximum(x @ kb + bb, 0)], axis=1)
    np.testing.assert_allclose(h @ ko + bo, orig["out"] / lam_out, rtol=1e-4, atol=1e-5)


def test_add_gets_coefficients():
    graph, x = _two_branch("add"), _data(50, (6,))
    norm = normalize(graph, x, method="max", per_channel=False)
    stats = activation_scales(graph, x, 100.0)
    lam_a, lam_b, lam_m = (float(stats[n]) for n in ("a", "b", "m"))
    coeffs = [float(c) for c in norm["m"].params["coefficients"]]
    np.testing.assert_allclose(coeffs, [lam_a / lam_m, lam_b / lam_m], rtol=1e-12)
    assert "coefficients" not in graph["m"].params
    # numpy forward pass of the normalised graph, with the coefficients
    ka, kb, ko = (norm[n].weights["kernel"] for n in ("a", "b", "out"))
    ba, bb, bo = (norm[n].weights["bias"] for n in ("a", "b", "out"))
    a = np.maximum(x @ ka + ba, 0)
    b = np.maximum(x @ kb + bb, 0)
    m = np.maximum(coeffs[0] * a + coeffs[1] * b, 0)
    names = ["a", "b", "m", "out"]
    orig = dict(zip(names, build_ann(graph, "all").predict(x, verbose=0)))
    np.testing.assert_allclose(a, orig["a"] / lam_a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(b, orig["b"] / lam_b, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(m, orig["m"] / lam_m, rtol=1e-4, atol=1e-6)
    assert m.max() == pytest.approx(1.0, rel=1e-5)
    np.testing.assert_allclose(m @ ko + bo, orig["out"] / float(stats["out"]),
                               rtol=1e-4, atol=1e-5)


def test_apply_scales_by_hand():
    """Hand-given λ: W <- W λ_in / λ_out, b <- b / λ_out."""
    graph = _two_branch("concatenate")
    stats = {"a": np.array(2.0), "b": np.array(4.0)}
    norm = apply_scales(graph, stats)
    np.testing.assert_allclose(norm["a"].weights["kernel"], graph["a"].weights["kernel"] / 2,
                               rtol=1e-6)
    np.testing.assert_allclose(norm["a"].weights["bias"], graph["a"].weights["bias"] / 2,
                               rtol=1e-6)
    np.testing.assert_allclose(norm["b"].weights["bias"], graph["b"].weights["bias"] / 4,
                               rtol=1e-6)
    lam_in = np.array([2.0] * 4 + [4.0] * 3)[:, None]
    np.testing.assert_allclose(norm["out"].weights["kernel"],
                               graph["out"].weights["kernel"] * lam_in, rtol=1e-6)
    np.testing.assert_allclose(norm["out"].weights["bias"], graph["out"].weights["bias"],
                               rtol=1e-6)


def test_relu_identity_node_is_normalised():
    """An activation that could not merge into its producer is an ``identity`` node with
    ``relu``: a layer of neurons like any other, so its λ must be its own activation
    percentile (module docstring: "For a ReLU node λ is the max or percentile of its
    positive activations"); otherwise its neurons saturate in the SNN."""
    rng = np.random.default_rng(4)
    nodes = [
        Node("in", "input", [], (6,)),
        Node("d", "dense", ["in"], (4,),
             weights=dict(kernel=5 * _w(rng, 6, 4), bias=np.full(4, 0.5, np.float32)),
             activation="linear"),
        Node("r", "identity", ["d"], (4,), activation="relu"),
        Node("out", "dense", ["r"], (2,),
             weights=dict(kernel=_w(rng, 4, 2), bias=np.zeros(2, np.float32))),
    ]
    graph, x = Graph(nodes), _data(40, (6,))
    stats = activation_scales(graph, x, 100.0)
    assert float(stats["r"]) > 2.0              # activations well above 1 before scaling
    norm = normalize(graph, x, method="max", per_channel=False)
    np.testing.assert_allclose(norm.scales["r"], stats["r"], rtol=1e-12)
    acts = _relu_acts(norm, x)
    assert acts["r"].max() == pytest.approx(1.0, rel=1e-5)
    orig_out = build_ann(graph).predict(x, verbose=0) / float(stats["out"])
    np.testing.assert_allclose(build_ann(norm).predict(x, verbose=0), orig_out,
                               rtol=1e-4, atol=1e-5)
