"""Layers the parser lowers to IR ops (1-D pooling and padding, global max pooling,
Subtract / Average / Maximum, Conv2DTranspose, standalone BatchNormalization, ReLU6)
and the routing ops they bring (cropping, up-sampling, permute), through every stage:
the ANN rebuilt from the IR (tests/test_parse.py checks it against Keras), the rate
SNN and its save/load, ``ttfs_exact`` on the event simulator, SynOp fan-outs and the
Brian 2 connection maps."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import snnconv  # noqa: E402
from snnconv.ann import build_ann  # noqa: E402

L = keras.layers


def _randomize_bn(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            c = layer.moving_mean.shape[0]
            layer.moving_mean.assign(rng.normal(0, 0.1, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            layer.beta.assign(rng.normal(0, 0.1, c).astype("float32"))
    return model


def _image_model():
    keras.utils.set_random_seed(3)
    i = keras.Input((12, 12, 2), name="x")
    h = L.Conv2D(6, 3, padding="same", name="c1")(i)
    h = L.ReLU(max_value=6.0, name="r6")(h)
    crop = L.ZeroPadding2D(((1, 0), (1, 0)), name="pad")(L.Cropping2D(((1, 0), (1, 0)),
                                                                      name="crop")(h))
    h = L.Add(name="add")([h, crop])
    h = L.BatchNormalization(name="bn")(h)
    h = L.Activation("relu6", name="a6")(h)
    u = L.Conv2DTranspose(4, 3, strides=2, padding="same", activation="relu", name="up_t")(h)
    u = L.MaxPooling2D(2, name="mp")(u)
    d = L.Subtract(name="sub")([u, L.Conv2D(4, 1, activation="relu", name="c2")(h)])
    m = L.Maximum(name="max")([d, L.Conv2D(4, 1, activation="relu", name="c3")(h)])
    m = L.ReLU(name="r")(m)
    a = L.Average(name="avg")([m, L.Conv2D(4, 1, activation="relu", name="c4")(h)])
    a = L.AveragePooling2D(2, name="ap")(L.UpSampling2D(2, name="up")(a))
    a = L.Permute((2, 1, 3), name="perm")(a)
    a = L.Conv2D(8, 3, activation="relu", name="c5")(a)
    g = L.GlobalMaxPooling2D(name="gmp")(a)
    out = L.Dense(5, activation="softmax", name="out")(g)
    return _randomize_bn(keras.Model(i, out, name="lowered2d"))


def _sequence_model():
    keras.utils.set_random_seed(4)
    i = keras.Input((24, 3), name="x")
    h = L.Conv1D(6, 3, activation="relu", name="c1")(i)
    h = L.MaxPooling1D(2, name="mp")(h)
    h = L.ZeroPadding1D(1, name="zp")(h)
    h = L.Cropping1D((0, 1), name="cr")(h)
    h = L.UpSampling1D(2, name="up")(h)
    h = L.AveragePooling1D(2, name="ap")(h)
    h = L.BatchNormalization(name="bn")(h)
    h = L.ReLU(name="r")(h)
    h = L.Conv1D(8, 3, activation="relu", name="c2")(h)
    a = L.GlobalAveragePooling1D(name="gap")(h)
    b = L.GlobalMaxPooling1D(name="gmp")(h)
    out = L.Dense(4, name="out")(L.Concatenate(name="cat")([a, b]))
    return _randomize_bn(keras.Model(i, out, name="lowered1d"))


@pytest.fixture(scope="module", params=["image", "sequence"])
def normalised(request):
    model = _image_model() if request.param == "image" else _sequence_model()
    x = np.random.default_rng(5).uniform(0, 1, (24,) + model.input_shape[1:]).astype("float32")
    graph = snnconv.parse(model)
    np.testing.assert_allclose(np.asarray(build_ann(graph)(x)), np.asarray(model(x)),
                               rtol=1e-5, atol=1e-5)
    norm = snnconv.normalize(graph, x, method="max")
    target = np.asarray(build_ann(norm)(x)).argmax(axis=1)
    return request.param, norm, x, target


def test_lowering_uses_ir_ops():
    graph = snnconv.parse(_image_model())
    assert graph["bn"].op == "depthwise_conv2d" and graph["bn"].activation == "relu"
    assert graph["bn"].params["max_value"] == 6.0     # the relu6 after it merged into it
    assert graph["c1"].params["max_value"] == 6.0
    assert graph["sub"].params["coefficients"] == [1.0, -1.0]
    assert graph["avg"].params["coefficients"] == [0.5, 0.5]
    excess = graph["max_excess1"]
    assert excess.op == "add" and excess.activation == "relu"
    assert graph["max"].inputs == ["max_excess1", "c3"]
    assert graph["up_t_spread"].params == {"size": (2, 2), "mode": "zeros"}
    assert graph["up_t"].op == "conv2d" and graph["up_t"].inputs == ["up_t_pad"]
    assert graph["gmp_pool"].params["pool_size"] == (10, 10)


def test_rate_snn_follows_the_ann_and_saves(normalised, tmp_path):
    _, norm, x, target = normalised
    snn = snnconv.convert(norm, v_init=0.5)
    r = snnconv.evaluate(snn, x, target, num_steps=100, progress=False)
    assert r.accuracy >= 0.9, r.accuracy
    path = tmp_path / "snn.keras"
    snn.save(path)
    again = snnconv.evaluate(snnconv.load_snn(path), x, target, num_steps=100, progress=False)
    np.testing.assert_array_equal(again.predictions, r.predictions)
    np.testing.assert_array_equal(again.synops_per_step, r.synops_per_step)


def test_ttfs_exact_predicts_as_the_ann(normalised):
    kind, norm, x, target = normalised
    if kind == "image":
        # its max pooling and global max pooling read ReLU neurons, so this network
        # is exact under ttfs_exact; the sequence model pools a linear signal
        event = snnconv.convert(norm, simulator="event", spike_code="ttfs_exact")
        r = snnconv.evaluate(event, x, target, progress=False)
        assert r.accuracy == 1.0


def test_routing_fanout_counts_connections():
    """Fan-out of a neuron through cropping / up-sampling / permute into a 1x1 conv:
    the number of copies of it that reach the conv (0 where cropped away)."""
    from snnconv.ir import Graph, Node
    from snnconv.synops import fanout_maps
    one = {"kernel": np.ones((1, 1, 1, 1), np.float32), "bias": np.zeros(1, np.float32)}
    conv = dict(params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)},
                weights=one, activation="relu")
    nodes = [Node("x", "input", [], (3, 4, 1)),
             Node("a", "conv2d", ["x"], (3, 4, 1), **conv),
             Node("crop", "cropping2d", ["a"], (2, 2, 1), params={"cropping": ((1, 0), (1, 1))}),
             Node("up", "upsampling2d", ["crop"], (4, 6, 1),
                  params={"size": (2, 3), "mode": "nearest"}),
             Node("perm", "permute", ["up"], (6, 4, 1), params={"dims": (2, 1, 3)}),
             Node("b", "conv2d", ["perm"], (6, 4, 1), **conv)]
    fan = fanout_maps(Graph(nodes), ["a"])["a"][..., 0]
    expected = np.zeros((3, 4))
    expected[1:, 1:3] = 6
    np.testing.assert_array_equal(fan, expected)


@pytest.mark.parametrize("op, params, in_shape, out_shape", [
    ("cropping2d", {"cropping": ((1, 0), (2, 1))}, (4, 5, 2), (3, 2, 2)),
    ("upsampling2d", {"size": (2, 3), "mode": "nearest"}, (2, 3, 2), (4, 9, 2)),
    ("upsampling2d", {"size": (3, 2), "mode": "zeros"}, (2, 3, 2), (4, 5, 2)),
    ("permute", {"dims": (2, 3, 1)}, (2, 3, 4), (3, 4, 2)),
])
def test_brian2_connection_maps_move_values_as_the_op(op, params, in_shape, out_shape):
    from snnconv.ir import Node
    from snnconv.simulators.brian.maps import node_maps
    from snnconv.node_ops import node_op
    node = Node("n", op, ["x"], out_shape, params=params)
    x = np.random.default_rng(0).normal(size=(1,) + in_shape)
    (sparse,), bias = node_maps(node, [in_shape])
    y = np.zeros(int(np.prod(out_shape)))
    np.add.at(y, sparse.post, x.reshape(-1)[sparse.pre] * sparse.w)
    np.testing.assert_allclose(y, np.asarray(node_op(node, [x])).reshape(-1))
    assert not bias.any()
