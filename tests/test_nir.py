"""NIR export and import (snnconv.nirio): round trips that spike exactly alike, an
independent NIR interpreter, weight layouts against hand-built NIR nodes, refusals
of what NIR cannot express, and the command line."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

nir = pytest.importorskip("nir")

import keras  # noqa: E402

import snnconv  # noqa: E402
from snnconv.cli import main  # noqa: E402
from snnconv.errors import ExportError, MissingDependencyError, UnsupportedLayerError  # noqa: E402
from snnconv.ir import Graph, Node  # noqa: E402
from snnconv.nirio import from_nir, to_nir  # noqa: E402
from snnconv.simulators.ini import simulate_batch, spiking_layers  # noqa: E402

L = keras.layers
REPO = Path(__file__).resolve().parents[1]
NIR_MODE = dict(threshold_mode="strict", reset="zero", v_init=0.0)
STEPS = 25


def _normalised(model, shape, seed=0):
    x = np.random.default_rng(seed).uniform(0, 1, (40,) + shape).astype(np.float32)
    return snnconv.normalize(snnconv.parse(model), x), x


@pytest.fixture(scope="module")
def mlp():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((12,), name="x"),
                              L.Dense(16, activation="relu", name="fc1"),
                              L.Dense(10, activation="relu", name="fc2"),
                              L.Dense(4, activation="softmax", name="out")])
    return _normalised(model, (12,))


@pytest.fixture(scope="module")
def cnn():
    keras.utils.set_random_seed(2)
    model = keras.Sequential([
        keras.Input((9, 9, 2), name="img"),
        L.Conv2D(4, 3, padding="same", activation="relu", name="conv1"),
        L.AveragePooling2D(2, name="pool"),
        L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="dw"), L.ReLU(name="relu"),
        L.Conv2D(5, 2, strides=2, activation="relu", name="conv2"),
        L.Flatten(name="flat"),
        L.Dense(6, activation="relu", name="fc"),
        L.Dense(3, name="out")])
    return _normalised(model, (9, 9, 2), seed=3)


@pytest.fixture(scope="module")
def branched():
    """Zero padding, an asymmetric 'same' convolution at stride 2, an Add with a projected
    and one with an identity shortcut, a depthwise and a pointwise branch concatenated,
    global average pooling: what NIR export folds or writes as several edges."""
    keras.utils.set_random_seed(4)
    inp = keras.Input((10, 10, 2), name="img")
    x = L.ZeroPadding2D(1, name="pad")(inp)
    x = L.Conv2D(6, 3, activation="relu", name="conv1")(x)                      # 10x10x6
    a = L.Conv2D(6, 3, strides=2, padding="same", name="a_conv")(x)            # pads (0, 1)
    a = L.BatchNormalization(name="a_bn")(a)
    # 2x2, not 1x1, at stride 2: TensorFlow 2.21 (oneDNN) can corrupt the heap in the
    # gradient of a 1x1 stride-2 conv on an even map, which snnconv.synops computes
    p = L.Conv2D(6, 2, strides=2, name="proj")(x)
    y = L.ReLU(name="add1_relu")(L.Add(name="add1")([a, p]))                   # 5x5x6
    d = L.DepthwiseConv2D(3, padding="same", activation="relu", name="dw")(y)
    q = L.Conv2D(3, 1, activation="relu", name="pw")(y)
    c = L.Concatenate(name="cat")([d, q])                                      # 5x5x9
    r = L.Conv2D(6, 3, padding="same", name="res")(c)
    z = L.ReLU(name="add2_relu")(L.Add(name="add2")([r, y]))                   # identity
    g = L.GlobalAveragePooling2D(name="gap")(z)
    out = L.Dense(4, name="out")(g)
    model = keras.Model(inp, out)
    bn = model.get_layer("a_bn")
    bn.set_weights([w + np.random.default_rng(0).uniform(0.1, 0.5, w.shape).astype(np.float32)
                    for w in bn.get_weights()])
    return _normalised(model, (10, 10, 2), seed=6)


def _per_neuron_spikes(snn, x, steps):
    """Every spiking layer's spike counts ``(B, T, ...)`` from the model run layer by layer."""
    layers = spiking_layers(snn)
    probe = keras.Model(snn.inputs[0], [lay.output for lay in layers])
    frames = np.repeat(x[:, None], steps, axis=1)
    outs = probe(frames)
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {lay.name: np.asarray(o) / lay.spike_amplitude for lay, o in zip(layers, outs)}


def _roundtrip(snn, tmp_path):
    path = tmp_path / "net.nir"
    snnconv.export_nir(snn, path)
    return snnconv.import_nir(nir.read(path))      # type-checked read, then import


@pytest.mark.parametrize("net", ["mlp", "cnn"])
def test_roundtrip_spikes_exactly_alike(net, request, tmp_path):
    graph, x = request.getfixturevalue(net)
    snn = snnconv.convert(graph, **NIR_MODE)
    back = _roundtrip(snn, tmp_path)
    ours, theirs = _per_neuron_spikes(snn, x[:6], STEPS), _per_neuron_spikes(back, x[:6], STEPS)
    assert list(ours) == list(theirs)
    for name in ours:
        assert ours[name].sum() > 0, name                     # the layer does spike
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=name)
    a, b = simulate_batch(snn, x[:6], STEPS), simulate_batch(back, x[:6], STEPS)
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=name)
    np.testing.assert_array_equal(a.readout, b.readout)
    np.testing.assert_array_equal(a.synops, b.synops)


@pytest.mark.parametrize("cell", [dict(v_thresh=0.3, dt=0.7),
                                  dict(tau_mem=6.0, v_thresh=0.6, reset="to_value", v_reset=0.1)])
def test_roundtrip_other_thresholds_steps_and_leak(cell, cnn, tmp_path):
    graph, x = cnn
    snn = snnconv.convert(graph, **{**NIR_MODE, **cell})
    back = _roundtrip(snn, tmp_path)
    a, b = simulate_batch(snn, x[:6], STEPS), simulate_batch(back, x[:6], STEPS)
    assert all(v.sum() > 0 for v in a.spikes.values())
    for name in a.spikes:
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=name)
    # v_thresh/dt = 0.43 is no power of two: W * 0.43 / 0.43 is W up to float32 rounding
    np.testing.assert_allclose(a.readout, b.readout, rtol=1e-6, atol=1e-6)
    if "tau_mem" in cell:
        node = to_nir(snn).nodes["conv1_lif"]
        assert isinstance(node, nir.LIF)
        decay = np.exp(-cell.get("dt", 1.0) / cell["tau_mem"])
        np.testing.assert_allclose(node.tau, 1.0 / (1.0 - decay), rtol=1e-6)  # Euler: 1-dt/tau


# ----------------------------------------------------------------------------- NIR semantics

def _conv_nchw(x, w, b, stride, padding, dilation, groups):
    """PyTorch-style grouped 2-D cross-correlation in numpy (float64)."""
    if groups > 1:
        from snnconv.nirio.export import block_diagonal
        w = block_diagonal(w, groups)
    kh, kw = w.shape[2:]
    if isinstance(padding, str):
        ph = pw = (kh - 1) // 2                 # stride-1 'same' with odd kernels here
    else:
        ph, pw = (int(p) for p in np.broadcast_to(padding, (2,)))
    sy, sx = (int(s) for s in np.broadcast_to(stride, (2,)))
    dy, dx = (int(d) for d in np.broadcast_to(dilation, (2,)))
    x = np.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    oh = (x.shape[2] - (kh - 1) * dy - 1) // sy + 1
    ow = (x.shape[3] - (kw - 1) * dx - 1) // sx + 1
    out = np.zeros((x.shape[0], w.shape[0], oh, ow))
    for i in range(kh):
        for j in range(kw):
            rows = slice(i * dy, i * dy + sy * (oh - 1) + 1, sy)
            cols = slice(j * dx, j * dx + sx * (ow - 1) + 1, sx)
            patch = x[:, :, rows, cols]
            out += np.einsum("bihw,oi->bohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def _avg_pool_nchw(x, kernel, stride):
    (kh, kw), (sy, sx) = (int(k) for k in kernel), (int(s) for s in stride)
    oh, ow = (x.shape[2] - kh) // sy + 1, (x.shape[3] - kw) // sx + 1
    out = np.zeros(x.shape[:2] + (oh, ow))
    for i in range(kh):
        for j in range(kw):
            out += x[:, :, i:i + sy * (oh - 1) + 1:sy, j:j + sx * (ow - 1) + 1:sx]
    return out / (kh * kw)


def _topological(graph) -> list[str]:
    """Node names with every node after all the nodes that feed it (no recurrence)."""
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    order, done = [], set()
    while len(order) < len(graph.nodes):
        ready = [n for n in graph.nodes if n not in done and all(p in done for p in preds[n])]
        assert ready, "the graph has a cycle"
        order += ready
        done.update(ready)
    return order


def nir_reference(graph, x, steps, dt):
    """Run a NIR graph (any DAG) with forward Euler at step ``dt`` (float64, batch first):
    NIR's semantics written out from its documentation, sharing no code with snnconv. A
    node with several incoming edges gets the sum of their signals. Returns the spikes
    of every neuron node ``(B, T, ...)`` and the Output per step."""
    order = _topological(graph)
    preds = {n: [a for a, b in graph.edges if b == n] for n in graph.nodes}
    v = {n: 0.0 for n in order}
    spikes = {n: [] for n in order if isinstance(graph.nodes[n], (nir.IF, nir.LIF))}
    outputs = []
    for _ in range(steps):
        out = {}
        for name in order:
            node = graph.nodes[name]
            s = sum(out[p] for p in preds[name]) if preds[name] else None
            if isinstance(node, nir.Input):
                s = np.asarray(x, np.float64)
            elif isinstance(node, nir.Affine):
                s = s @ np.asarray(node.weight, np.float64).T + node.bias
            elif isinstance(node, nir.Conv2d):
                s = _conv_nchw(s, np.asarray(node.weight, np.float64), node.bias, node.stride,
                               node.padding, node.dilation, int(node.groups))
            elif isinstance(node, nir.AvgPool2d):
                s = _avg_pool_nchw(s, node.kernel_size, node.stride)
            elif isinstance(node, nir.SumPool2d):
                k = np.asarray(node.kernel_size)
                s = _avg_pool_nchw(s, k, node.stride) * k.prod()
            elif isinstance(node, nir.Flatten):
                s = s.reshape(len(s), -1)
            elif isinstance(node, nir.I):
                v[name] = v[name] + dt * node.r * s
                s = v[name]
            elif isinstance(node, nir.Output):
                outputs.append(s)
            if isinstance(node, (nir.IF, nir.LIF)):
                if isinstance(node, nir.IF):
                    v[name] = v[name] + dt * node.r * s
                else:
                    v[name] = v[name] + dt / node.tau * (node.v_leak - v[name] + node.r * s)
                z = v[name] > node.v_threshold
                v[name] = np.where(z, node.v_reset, v[name])
                s = z.astype(np.float64)
                spikes[name].append(s)
            out[name] = s
    return {n: np.stack(z, 1) for n, z in spikes.items()}, np.stack(outputs, 1)


@pytest.mark.parametrize("net, avg_pool", [("mlp", "sum"), ("cnn", "sum"), ("cnn", "avg"),
                                           ("branched", "sum")])
def test_exported_graph_means_what_snnconv_simulates(net, avg_pool, request, tmp_path):
    """An independent NIR interpreter of the written file reproduces snnconv's spikes."""
    graph, x = request.getfixturevalue(net)
    snn = snnconv.convert(graph, **NIR_MODE)
    path = tmp_path / "net.nir"
    snnconv.export_nir(snn, path, avg_pool=avg_pool)
    g = nir.read(path)
    x_nir = np.moveaxis(x[:6], -1, 1) if x.ndim == 4 else x[:6]
    ref_spikes, ref_out = nir_reference(g, x_nir, STEPS, dt=float(g.metadata["dt"]))
    ours = _per_neuron_spikes(snn, x[:6], STEPS)
    for name, z in ours.items():
        ref = ref_spikes[f"{name}_if"]
        ref = np.moveaxis(ref, 2, -1) if ref.ndim == 5 else ref    # (B, T, C, H, W) -> HWC
        # float64 against snnconv's float32: a neuron may land on its threshold differently
        # once in a long while, and its layer then diverges a little
        assert np.mean(ref != z) < 0.01, (name, np.mean(ref != z))
        assert abs(ref.sum() - z.sum()) <= 0.01 * z.sum() + 2, name
    readout = simulate_batch(snn, x[:6], STEPS).readout
    np.testing.assert_allclose(np.cumsum(ref_out, axis=1), readout, rtol=1e-3, atol=1e-3)
    kinds = {type(node).__name__ for node in g.nodes.values()}
    if net != "mlp":
        assert ("SumPool2d" in kinds) == (avg_pool == "sum") != ("AvgPool2d" in kinds)
    # Norse ignores r (and v_reset): the neurons have r = 1, their factors sit in weights
    for node in g.nodes.values():
        if isinstance(node, (nir.IF, nir.LIF)):
            np.testing.assert_array_equal(node.r, 1.0)


def test_branches_padding_and_pooling_fold_into_weights_and_edges(branched):
    graph, _ = branched
    g = to_nir(snnconv.convert(graph, **NIR_MODE))
    into = lambda n: sorted(a for a, b in g.edges if b == n)  # noqa: E731
    kinds = {name: type(node).__name__ for name, node in g.nodes.items()}
    # ZeroPadding2D is conv1's padding; the asymmetric stride-2 'same' padding (0, 1) is
    # padding 1 with a zero row and column in front of the 3x3 kernel
    assert "pad" not in g.nodes and tuple(g.nodes["conv1"].padding) == (1, 1)
    assert into("conv1") == ["img"]
    a_conv = g.nodes["a_conv"]
    assert a_conv.weight.shape[2:] == (4, 4) and tuple(a_conv.padding) == (1, 1)
    assert not a_conv.weight[:, :, 0].any() and not a_conv.weight[:, :, :, 0].any()
    # Add: several edges into one neuron node; the Add's coefficients are in the weights,
    # and the identity shortcut's spikes reach add2's neurons through a scaling 1x1 conv
    assert into("add1_if") == ["a_conv", "proj"]
    assert into("add2_if") == ["add2_if_in2", "res", "res_part1"]
    assert kinds["add2_if_in2"] == "Conv2d" and into("add2_if_in2") == ["add1_if"]
    # Concatenate: the next convolution split by input channels, both parts into add2
    assert "cat" not in g.nodes and into("res") == ["dw_if"] and into("res_part1") == ["pw_if"]
    assert g.nodes["res"].weight.shape[1] == 6 and g.nodes["res_part1"].weight.shape[1] == 3
    assert kinds["gap_pool"] == "SumPool2d" and kinds["gap"] == "Flatten"
    with pytest.raises(UnsupportedLayerError, match="chain"):
        from_nir(g)                  # snnconv's own import reads chains only


def test_one_node_reaching_neurons_twice_gets_a_scaling_node_per_path():
    """Add([h, h]) and Concatenate([a, a]): NIR's edges are a set, so the second path
    is never a duplicate edge; the graph still means what snnconv simulates."""
    keras.utils.set_random_seed(1)
    inp = keras.Input((6,), name="x")
    h = L.Dense(5, activation="relu", name="h")(inp)
    a = L.ReLU(name="r")(L.Add(name="add")([h, h]))
    out = L.Dense(3, name="out")(L.Concatenate(name="cat")([a, a]))
    graph, x = _normalised(keras.Model(inp, out), (6,))
    snn = snnconv.convert(graph, **NIR_MODE)
    g = to_nir(snn)
    assert len(set(g.edges)) == len(g.edges)
    assert sorted(a for a, b in g.edges if b == "add_if") == ["add_if_in0", "add_if_in1"]
    ref_spikes, ref_out = nir_reference(g, x[:4], STEPS, dt=1.0)
    for name, z in _per_neuron_spikes(snn, x[:4], STEPS).items():
        assert z.sum() > 0 and np.mean(ref_spikes[f"{name}_if"] != z) < 0.01, name
    np.testing.assert_allclose(np.cumsum(ref_out, axis=1),
                               simulate_batch(snn, x[:4], STEPS).readout, rtol=1e-4, atol=1e-4)


def test_zero_padding_before_pooling_is_refused():
    model = keras.Sequential([keras.Input((8, 8, 1)), L.ZeroPadding2D(1, name="zp"),
                              L.AveragePooling2D(2, name="ap"), L.Flatten(), L.Dense(2)])
    g, _ = _normalised(model, (8, 8, 1))
    with pytest.raises(ExportError, match="layer 'ap' .*zero-padded"):
        to_nir(snnconv.convert(g, **NIR_MODE))


def test_imports_foreign_graph_with_nir_semantics():
    """A hand-built graph with per-neuron r, thresholds and resets, a SumPool2d, a LIF
    with a leak potential and an integrator readout: snnconv's simulation of the
    import equals the NIR interpreter."""
    rng = np.random.default_rng(5)
    f32 = np.float32
    conv_w = rng.normal(0, 0.6, (3, 2, 3, 3)).astype(f32)
    r1 = rng.uniform(0.5, 1.5, (3, 6, 6)).astype(f32)          # per neuron
    th1 = np.full((3, 6, 6), 0.8, f32)
    aff_w = rng.normal(0, 0.4, (5, 27)).astype(f32)
    th2 = rng.uniform(0.5, 1.0, 5).astype(f32)
    w3 = rng.normal(0, 0.5, (3, 5)).astype(f32)
    nodes = {
        "in": nir.Input(np.array([2, 6, 6])),
        "conv": nir.Conv2d(input_shape=(6, 6), weight=conv_w, stride=1, padding=(1, 1),
                           dilation=1, groups=1, bias=rng.normal(0, 0.1, 3).astype(f32)),
        "n1": nir.IF(r=r1, v_threshold=th1, v_reset=np.full((3, 6, 6), 0.2, f32)),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]),
                              padding=np.array([0, 0])),
        "flat": nir.Flatten(input_type=np.array([3, 3, 3]), start_dim=0),
        "fc": nir.Affine(weight=aff_w, bias=rng.normal(0, 0.1, 5).astype(f32)),
        "n2": nir.LIF(tau=np.full(5, 8.0, f32), r=rng.uniform(4, 9, 5).astype(f32),
                      v_leak=np.full(5, 0.05, f32), v_threshold=th2, v_reset=0.1 * th2),
        "readout": nir.Affine(weight=w3, bias=np.zeros(3, f32)),
        "acc": nir.I(r=np.array([1.0, 2.0, 0.5], f32)),
        "out": nir.Output(np.array([3])),
    }
    order = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(order, order[1:])), metadata={})
    x = rng.uniform(0, 1.5, (4, 2, 6, 6))
    ref_spikes, ref_out = nir_reference(g, x, STEPS, dt=1.0)
    imported = from_nir(g)
    snn = imported.build()
    ours = _per_neuron_spikes(snn, np.moveaxis(x, 1, -1).astype(np.float32), STEPS)
    assert set(imported.neurons) == {"conv", "fc"}        # n1 drives conv, n2 drives fc
    np.testing.assert_array_equal(np.moveaxis(ours["conv"], -1, 2), ref_spikes["n1"])
    np.testing.assert_array_equal(ours["fc"], ref_spikes["n2"])
    assert ref_spikes["n1"].sum() > 0 and ref_spikes["n2"].sum() > 0
    readout = simulate_batch(snn, np.moveaxis(x, 1, -1).astype(np.float32), STEPS).readout
    np.testing.assert_allclose(readout, ref_out, rtol=1e-4, atol=1e-4)   # I's state


# ----------------------------------------------------------------------------- layouts

def _hand_graph(nodes):
    graph = Graph(nodes, name="hand")
    graph.scales = {n.name: np.float32(1.0) for n in nodes}
    return snnconv.convert(graph, **NIR_MODE)


def test_dense_weight_layout_against_hand_built_affine():
    kernel = np.array([[1., 2.], [3., 4.], [5., 6.]], np.float32)     # Keras (in=3, out=2)
    bias = np.array([0.5, -0.5], np.float32)
    snn = _hand_graph([Node("x", "input", [], (3,)),
                       Node("fc", "dense", ["x"], (2,), weights={"kernel": kernel, "bias": bias},
                            activation="relu"),
                       Node("out", "dense", ["fc"], (2,), activation="softmax",
                            weights={"kernel": np.eye(2, dtype=np.float32),
                                     "bias": np.zeros(2, np.float32)})])
    g = to_nir(snn)
    expected = nir.Affine(weight=np.array([[1., 3., 5.], [2., 4., 6.]], np.float32),
                          bias=np.array([0.5, -0.5], np.float32))     # NIR (out=2, in=3)
    np.testing.assert_array_equal(g.nodes["fc"].weight, expected.weight)
    np.testing.assert_array_equal(g.nodes["fc"].bias, expected.bias)
    assert [tuple(e) for e in g.edges] == [("x", "fc"), ("fc", "fc_if"), ("fc_if", "out"),
                                           ("out", "output")]
    assert isinstance(g.nodes["fc_if"], nir.IF) and isinstance(g.nodes["output"], nir.Output)
    np.testing.assert_array_equal(g.nodes["fc_if"].v_threshold, [1.0, 1.0])
    np.testing.assert_array_equal(g.nodes["fc_if"].r, [1.0, 1.0])


def test_conv_and_flatten_layout_against_hand_built_nodes():
    # Keras conv kernel (kh, kw, cin=1, cout=2): channel 0 taps [[1, 2], [3, 4]],
    # channel 1 taps [[10, 20], [30, 40]]
    kernel = np.array([[[[1., 10.]], [[2., 20.]]], [[[3., 30.]], [[4., 40.]]]], np.float32)
    assert kernel.shape == (2, 2, 1, 2) and kernel[1, 0, 0, 1] == 30
    # a dense layer after the flatten: row index = Keras's channels-last (h, w, c) order
    dense = np.arange(1, 9, dtype=np.float32).reshape(8, 1)           # (2*2*2 -> 1)
    snn = _hand_graph([
        Node("img", "input", [], (3, 3, 1)),
        Node("conv", "conv2d", ["img"], (2, 2, 2), params={"strides": (1, 1), "padding": "valid",
                                                           "dilation_rate": (1, 1)},
             weights={"kernel": kernel, "bias": np.array([0.1, 0.2], np.float32)},
             activation="relu"),
        Node("flat", "flatten", ["conv"], (8,)),
        Node("fc", "dense", ["flat"], (1,), weights={"kernel": dense,
                                                     "bias": np.zeros(1, np.float32)})])
    g = to_nir(snn)
    expected = nir.Conv2d(input_shape=(3, 3), weight=np.array(
        [[[[1., 2.], [3., 4.]]], [[[10., 20.], [30., 40.]]]], np.float32),  # (C_out, C_in, kH, kW)
        stride=1, padding=0, dilation=1, groups=1, bias=np.array([0.1, 0.2], np.float32))
    conv = g.nodes["conv"]
    np.testing.assert_array_equal(conv.weight, expected.weight)
    np.testing.assert_array_equal(conv.bias, expected.bias)
    np.testing.assert_array_equal(conv.output_type["output"], expected.output_type["output"])
    np.testing.assert_array_equal(g.nodes["img"].output_type["output"], [1, 3, 3])
    flat = g.nodes["flat"]
    assert isinstance(flat, nir.Flatten) and flat.start_dim == 0
    np.testing.assert_array_equal(flat.input_type["input"], [2, 2, 2])
    # Keras flattens (h, w, c): element k = (h, w, c) -> h*4 + w*2 + c; NIR flattens
    # (c, h, w) -> c*4 + h*2 + w. Column c*4 + h*2 + w of NIR's weight = row h*4 + w*2 + c.
    want = np.zeros((1, 8), np.float32)
    for h in range(2):
        for w in range(2):
            for c in range(2):
                want[0, c * 4 + h * 2 + w] = dense[h * 4 + w * 2 + c, 0]
    np.testing.assert_array_equal(g.nodes["fc"].weight, want)


def test_depthwise_and_spike_amplitude_in_weights():
    rng = np.random.default_rng(0)
    dw = rng.normal(size=(3, 3, 2, 2)).astype(np.float32)             # (kh, kw, C, M)
    fc = rng.normal(size=(32, 2)).astype(np.float32)
    nodes = [Node("img", "input", [], (4, 4, 2)),
             Node("dw", "depthwise_conv2d", ["img"], (2, 2, 4),
                  params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1),
                          "depth_multiplier": 2},
                  weights={"kernel": dw, "bias": np.zeros(4, np.float32)}, activation="relu"),
             Node("flat", "flatten", ["dw"], (16,)),
             Node("fc", "dense", ["flat"], (2,), weights={"kernel": fc[:16],
                                                          "bias": np.zeros(2, np.float32)})]
    graph = Graph(nodes)
    graph.scales = {n.name: 1.0 for n in nodes}
    snn = snnconv.convert(graph, v_thresh=0.5, dt=0.25, **NIR_MODE)     # amplitude 2
    g = to_nir(snn)
    conv = g.nodes["dw"]
    # output channel c*M + m of the depthwise conv reads input channel c only
    grouped = np.stack([dw[:, :, c, m] for c in range(2) for m in range(2)])[:, None]
    if int(conv.groups) == 2:
        np.testing.assert_array_equal(conv.weight, grouped)
    else:   # nir 1.0.8 cannot type-check groups > 1: written block-diagonal, groups = 1
        from snnconv.nirio.export import block_diagonal
        np.testing.assert_array_equal(conv.weight, block_diagonal(grouped, 2))
        assert conv.metadata["depthwise_groups"] == 2
    # the dense layer after spiking neurons takes their amplitude v_thresh/dt = 2
    assert g.nodes["dw_if"].metadata["spike_amplitude"] == 2.0
    back = from_nir(g)
    assert back.graph["dw"].op == "depthwise_conv2d"
    np.testing.assert_array_equal(back.graph["dw"].weights["kernel"], dw)
    np.testing.assert_array_equal(back.graph["fc"].weights["kernel"], fc[:16])


# ----------------------------------------------------------------------------- refusals

@pytest.mark.parametrize("options, feature", [
    (dict(threshold_mode="strict"), "reset by subtraction"),
    (dict(reset="zero"), "threshold v >= v_thresh"),
    (dict(NIR_MODE, max_spikes_per_dt=2), "several spikes per step"),
    (dict(NIR_MODE, tau_refrac=2.0), "refractory period"),
    (dict(NIR_MODE, v_init=0.5), "initial potential v_init"),
    (dict(NIR_MODE, poisson_input=True), "Poisson input"),
])
def test_inexpressible_features_are_refused_or_approximated(options, feature, mlp):
    graph, _ = mlp
    snn = snnconv.convert(graph, **options)
    with pytest.raises(ExportError) as err:
        to_nir(snn)
    message = str(err.value)
    assert feature in message and "--approximate" in message and "\n" not in message
    layer = "x" if feature == "Poisson input" else "fc1, fc2"
    assert layer in message
    g = to_nir(snn, approximate=True)
    assert feature in str(g.metadata["approximations"])
    if feature == "Poisson input":       # the import restores the Poisson input layer
        back = from_nir(g)
        assert back.poisson_input and back.input_rate == 1000.0
        np.testing.assert_array_equal(back.graph["fc1"].weights["kernel"],
                                      snn.get_layer("fc1").kernel.numpy())


def test_approximation_of_default_snn_resets_to_zero(mlp, tmp_path):
    """The default SNN with binary spikes (burst 1; reset by subtraction, v >= threshold)
    exports with --approximate as a graph whose neurons reset to 0; importing it
    simulates the NIR-mode SNN."""
    graph, x = mlp
    default = snnconv.convert(graph, burst=1)
    path = tmp_path / "approx.nir"
    snnconv.export_nir(default, path, approximate=True)
    g = nir.read(path)
    assert "reset by subtraction" in g.metadata["approximations"]
    np.testing.assert_array_equal(g.nodes["fc1_if"].v_reset, 0.0)
    back = snnconv.import_nir(path)
    nir_mode = snnconv.convert(graph, **NIR_MODE)
    a, b = simulate_batch(nir_mode, x[:6], STEPS), simulate_batch(back, x[:6], STEPS)
    np.testing.assert_array_equal(a.readout, b.readout)


def test_approximation_of_a_bursting_snn_is_the_binary_neuron_it_stands_for(branched):
    """The default INI network (cell.burst = auto: 4 spikes of a quarter a step)
    exports with approximate=True as the network with one spike of the full
    threshold a step (burst 1): the same nodes, thresholds, weights and scales."""
    graph, _ = branched
    bursting, binary = snnconv.convert(graph), snnconv.convert(graph, burst=1)
    assert spiking_layers(bursting)[0].neuron.max_spikes_per_dt == 4
    with pytest.raises(ExportError, match="burst=1"):
        to_nir(bursting)
    a, b = to_nir(bursting, approximate=True), to_nir(binary, approximate=True)
    assert "several spikes per step" in a.metadata["approximations"]
    assert "several spikes per step" not in b.metadata["approximations"]
    assert set(a.nodes) == set(b.nodes) and sorted(a.edges) == sorted(b.edges)
    for name, node in b.nodes.items():
        other = a.nodes[name]
        assert type(other) is type(node), name
        for field in ("weight", "bias", "v_threshold", "v_reset", "r"):
            if hasattr(node, field):
                np.testing.assert_array_equal(getattr(other, field), getattr(node, field),
                                              err_msg=f"{name}.{field}")
        assert other.metadata == node.metadata, name
    # the metadata differ in what they record of the approximation and the source
    assert a.metadata["conversion"]["burst"] == 4 and "burst" not in b.metadata["conversion"]
    rest = ("approximations", "conversion")
    assert {k: v for k, v in a.metadata.items() if k not in rest} == \
        {k: v for k, v in b.metadata.items() if k not in rest}


def test_ttfs_and_max_pooling_are_refused_even_approximately(mlp):
    graph, _ = mlp
    with pytest.raises(ExportError, match="spike code 'ttfs'.*time-to-first-spike"):
        to_nir(snnconv.convert(graph, spike_code="ttfs"), approximate=True)
    model = keras.Sequential([keras.Input((4, 4, 1)), L.Conv2D(2, 3, activation="relu"),
                              L.MaxPooling2D(2, name="mp"), L.Flatten(), L.Dense(2)])
    g, _ = _normalised(model, (4, 4, 1))
    with pytest.raises(ExportError, match="layer 'mp' .*max2avg_pool"):
        to_nir(snnconv.convert(g, **NIR_MODE), approximate=True)
    to_nir(snnconv.convert(g, max2avg_pool=True, **NIR_MODE))            # the way out


def test_asymmetric_zero_padding_that_no_kernel_shift_expresses_is_refused():
    # more padding before than after: the window would have to start later than NIR's
    model = keras.Sequential([keras.Input((8, 8, 1)), L.ZeroPadding2D(((2, 0), (2, 0))),
                              L.Conv2D(2, 3, activation="relu", name="c"),
                              L.Flatten(), L.Dense(2)])
    g, _ = _normalised(model, (8, 8, 1))
    with pytest.raises(ExportError, match="layer 'c' .*symmetric"):
        to_nir(snnconv.convert(g, **NIR_MODE))


def _chain_graph(*middle):
    nodes = {"in": nir.Input(np.array([3]))}
    nodes.update(middle)
    nodes["out"] = nir.Output(np.array([3]))
    names = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={})


def test_import_drops_a_leading_batch_dimension_of_one():
    """norse.torch.to_nir writes Input and Output shapes with the sample data's batch
    axis, (1, N); NIR shapes have none, so the import drops it."""
    f32 = np.float32
    nodes = {"in": nir.Input(np.array([1, 3])),
             "fc": nir.Affine(weight=np.eye(3, dtype=f32), bias=np.zeros(3, f32)),
             "n": nir.IF(r=np.ones(3, f32), v_threshold=np.ones(3, f32), v_reset=np.zeros(3, f32)),
             "out": nir.Output(np.array([1, 3]))}
    names = list(nodes)
    g = nir.NIRGraph(nodes=nodes, edges=list(zip(names, names[1:])), metadata={},
                     type_check=False)
    back = from_nir(g)
    assert back.graph["in"].output_shape == (3,) and back.graph["fc"].output_shape == (3,)


def test_unsupported_nir_nodes_are_refused_by_name():
    ones = np.ones(3, np.float32)
    g = _chain_graph(("cuba", nir.CubaLIF(tau_syn=ones, tau_mem=ones * 2, r=ones, v_leak=0 * ones,
                                          v_threshold=ones, v_reset=0 * ones)),
                     ("wait", nir.Delay(delay=ones)))
    with pytest.raises(UnsupportedLayerError) as err:
        snnconv.import_nir(g)
    assert "cuba (CubaLIF)" in str(err.value) and "wait (Delay)" in str(err.value)
    # an integrator anywhere but at the readout, and a graph that is not a chain
    with pytest.raises(UnsupportedLayerError, match="integrator"):
        snnconv.import_nir(_chain_graph(("acc", nir.I(r=ones)),
                                        ("fc", nir.Affine(weight=np.eye(3), bias=0 * ones))))
    branch = nir.NIRGraph(nodes={"in": nir.Input(np.array([3])),
                                 "a": nir.Affine(weight=np.eye(3), bias=0 * ones),
                                 "b": nir.Affine(weight=np.eye(3), bias=0 * ones),
                                 "out": nir.Output(np.array([3]))},
                          edges=[("in", "a"), ("in", "b"), ("a", "out"), ("b", "out")],
                          metadata={})
    with pytest.raises(UnsupportedLayerError, match="chain"):
        snnconv.import_nir(branch)


# ----------------------------------------------------------------------------- neurons

def test_nir_mode_neurons_save_and_load(mlp, tmp_path):
    graph, x = mlp
    snn = snnconv.convert(graph, threshold_mode="strict", reset="to_value", v_reset=0.25)
    snn.save(tmp_path / "snn.keras")
    back = snnconv.load_snn(tmp_path / "snn.keras")
    neuron = back.get_layer("fc1").neuron
    assert (neuron.threshold_mode, neuron.reset, neuron.v_reset) == ("strict", "to_value", 0.25)
    np.testing.assert_array_equal(simulate_batch(snn, x[:4], 10).readout,
                                  simulate_batch(back, x[:4], 10).readout)


# ----------------------------------------------------------------------------- CLI

@pytest.fixture(scope="module")
def mnist_files(tmp_path_factory):
    """The bundled MNIST CNN in NIR mode (max pooling as average), saved and exported."""
    from snnconv.data import bundled_dataset_path, bundled_model_path
    folder = tmp_path_factory.mktemp("mnist_nir")
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(bundled_model_path()), data.x_norm[:200])
    snn = snnconv.convert(graph, max2avg_pool=True, **NIR_MODE)
    snn.save(folder / "snn.keras")
    return folder, data, graph


def test_cli_export_writes_a_readable_graph(mnist_files, capsys):
    folder = mnist_files[0]
    out = folder / "snn.nir"
    assert main(["export", "--format", "nir", str(folder / "snn.keras"), str(out)]) == 0
    g = nir.read(out)
    text = capsys.readouterr().out
    assert "conv1_if" in text and f"wrote {out}" in text
    kinds = {name: type(node).__name__ for name, node in g.nodes.items()}
    assert kinds == {"image": "Input", "conv1": "Conv2d", "conv1_if": "IF",
                     "avgpool1": "SumPool2d", "conv2": "Conv2d", "conv2_if": "IF",
                     "maxpool2": "SumPool2d", "flatten": "Flatten", "dense": "Affine",
                     "output": "Output"}
    assert len(g.edges) == 9 and float(g.metadata["dt"]) == 1.0
    assert g.metadata["conversion"]["threshold_mode"] == "strict"
    avg = folder / "snn_avg.nir"
    assert main(["export", "--format", "nir", "--avg-pool", "avg", str(folder / "snn.keras"),
                 str(avg)]) == 0
    kinds = {name: type(node).__name__ for name, node in nir.read(avg).nodes.items()}
    assert kinds["avgpool1"] == kinds["maxpool2"] == "AvgPool2d"


def test_cli_export_errors_exit_2(mnist_files, tmp_path, capsys, monkeypatch):
    folder, _, graph = mnist_files
    assert main(["export", "--format", "nir", str(tmp_path / "missing.keras"),
                 str(tmp_path / "x.nir")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["export", "--format", "onnx", str(folder / "snn.keras"),
                 str(tmp_path / "x.onnx")]) == 2
    assert "invalid choice" in capsys.readouterr().err
    default = tmp_path / "default.keras"
    snnconv.convert(graph, max2avg_pool=True).save(default)      # reset by subtraction
    assert main(["export", "--format", "nir", str(default), str(tmp_path / "d.nir")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnconv: error: NIR cannot express reset by subtraction")
    assert err.count("\n") == 1 and not (tmp_path / "d.nir").exists()
    assert main(["export", "--format", "nir", "--approximate", str(default),
                 str(tmp_path / "d.nir")]) == 0
    monkeypatch.setitem(sys.modules, "nir", None)          # nir not installed
    assert main(["export", "--format", "nir", str(default), str(tmp_path / "e.nir")]) == 2
    assert "pip install 'snnconv[nir]'" in capsys.readouterr().err
    with pytest.raises(MissingDependencyError):
        snnconv.export_nir(default, tmp_path / "e.nir")


def test_cli_import_nir_summarizes_saves_and_evaluates(mnist_files, tmp_path, capsys):
    from helpers import write_bundled_config
    folder, data, _ = mnist_files
    nir_file = folder / "snn.nir"
    if not nir_file.exists():
        snnconv.export_nir(folder / "snn.keras", nir_file)
    assert main(["import-nir", str(nir_file)]) == 0
    text = capsys.readouterr().out
    assert "NIR graph: 10 nodes, 9 edges" in text and "nothing saved" in text
    out = tmp_path / "imported.keras"
    cfg = write_bundled_config(tmp_path / "eval.ini", 200, dict(duration=10, num_to_test=60,
                                                                 batch_size=30))
    assert main(["import-nir", str(nir_file), "--out", str(out), "--config", str(cfg)]) == 0
    rows = json.loads((tmp_path / "out" / "comparison.json").read_text())
    direct = snnconv.evaluate(snnconv.load_snn(folder / "snn.keras"), data.x_test[:60],
                              data.y_test[:60], num_steps=10, batch_size=30, progress=False)
    assert rows[0]["setting"] == "imported"
    assert rows[0]["snn_accuracy"] == pytest.approx(direct.accuracy)
    assert rows[0]["synops_per_sample"] == pytest.approx(direct.synops, rel=1e-6)
    assert main(["import-nir", str(tmp_path / "missing.nir")]) == 2
    assert main(["import-nir", str(nir_file), "--out", str(tmp_path / "x.h5")]) == 2


def test_cli_stays_free_of_nir_and_tensorflow_at_import():
    code = ("import sys, snnconv, snnconv.cli, snnconv.nirio; "
            "heavy = [m for m in ('tensorflow', 'keras', 'nir') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_cli_run_in_nir_mode_exports_exactly(tmp_path, capsys):
    """`snnconv run` with the NIR-mode cell keys gives an SNN that exports without approximations."""
    from helpers import write_bundled_config
    cfg = write_bundled_config(tmp_path / "nir.ini", 100, dict(duration=5, num_to_test=20),
                               "[cell]\nthreshold_mode = strict\nreset = to_value\n"
                               "v_reset = 0.0\nv_init = 0.0\n[conversion]\nmax2avg_pool = true\n")
    assert main(["run", str(cfg)]) == 0
    out = tmp_path / "snn.nir"
    assert main(["export", "--format", "nir", str(tmp_path / "out" / "snn.keras"),
                 str(out)]) == 0
    g = nir.read(out)
    assert g.metadata["conversion"]["threshold_mode"] == "strict"
    assert str(g.metadata.get("approximations", "none")) == "none"
