"""Tests of snnconv.parsing (Keras -> IR) and snnconv.ann (IR -> Keras, MAC counts)."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from snnconv.ann import build_ann, count_macs  # noqa: E402
from snnconv.errors import ModelLoadError, UnsupportedLayerError  # noqa: E402
from snnconv.parsing import SUPPORTED_LAYERS, load_model, parse  # noqa: E402

L = keras.layers


def _qcfs(**kwargs):
    from snnconv.layers import QCFS
    return QCFS(levels=4, initial_threshold=0.7, **kwargs)


# ----------------------------------------------------------------------------- helpers

def _randomize(model, seed=0):
    """Give biases and BN parameters/statistics non-trivial random values."""
    rng = np.random.default_rng(seed)
    for w in model.weights:
        leaf = w.path.split("/")[-1]
        shape = tuple(w.shape)
        if leaf == "moving_variance":
            w.assign(rng.uniform(0.3, 2.0, shape).astype("float32"))
        elif leaf == "gamma":
            w.assign(rng.uniform(0.5, 1.5, shape).astype("float32") * rng.choice([-1, 1], shape))
        elif leaf in ("beta", "moving_mean", "bias"):
            w.assign(rng.normal(0.0, 0.3, shape).astype("float32"))
    return model


def _seq(input_shape, *layers, name="seq"):
    model = keras.Sequential([keras.Input(input_shape, name="inp"), *layers], name=name)
    return _randomize(model)


def _check_topological(graph):
    seen = set()
    for node in graph.nodes:
        assert all(src in seen for src in node.inputs), node.name
        seen.add(node.name)
    assert graph.output_node.name not in {s for n in graph.nodes for s in n.inputs}


def _assert_equivalent(model, seed=1):
    graph = parse(model)
    _check_topological(graph)
    ann = build_ann(graph)
    shape = (3,) + tuple(model.inputs[0].shape[1:])
    x = np.random.default_rng(seed).normal(size=shape).astype("float32")
    ref = model.predict(x, verbose=0)
    got = ann.predict(x, verbose=0)
    assert got.shape == ref.shape
    diff = float(np.max(np.abs(got - ref)))
    assert diff < 1e-4, f"max abs diff {diff}"
    return graph


# ------------------------------------------------------------------ one model per layer type

LAYER_MODELS = {
    "dense_relu": lambda: _seq((6,), L.Dense(5, activation="relu", name="d"), L.Dense(3, name="o")),
    "dense_nobias_softmax": lambda: _seq((6,), L.Dense(4, use_bias=False, name="d"),
                                         L.Dense(3, activation="softmax", name="o")),
    "dense_rank3": lambda: _seq((4, 4, 3), L.Dense(5, activation="relu", name="d")),
    "conv_valid_strided": lambda: _seq((9, 9, 3), L.Conv2D(4, 3, strides=2, activation="relu",
                                                           name="c")),
    "conv_same_nobias": lambda: _seq((8, 8, 2), L.Conv2D(3, (3, 2), padding="same",
                                                         use_bias=False, name="c")),
    "conv_dilated": lambda: _seq((10, 10, 2), L.Conv2D(3, 3, dilation_rate=2, padding="same",
                                                       name="c")),
    "depthwise": lambda: _seq((8, 8, 3), L.DepthwiseConv2D(3, depth_multiplier=2, strides=2,
                                                           padding="same", activation="relu",
                                                           name="dw")),
    "depthwise_valid_nobias": lambda: _seq((7, 7, 2), L.DepthwiseConv2D(3, use_bias=False,
                                                                        name="dw")),
    "separable": lambda: _seq((8, 8, 3), L.SeparableConv2D(4, 3, depth_multiplier=2,
                                                           padding="same", activation="relu",
                                                           name="sep")),
    "avg_pool": lambda: _seq((8, 8, 2), L.AveragePooling2D(2, name="p")),
    "avg_pool_same": lambda: _seq((7, 7, 2), L.AveragePooling2D(3, strides=2, padding="same",
                                                                name="p")),
    "max_pool": lambda: _seq((8, 8, 2), L.Conv2D(2, 1, name="c"), L.MaxPooling2D((2, 3), name="p")),
    "gap": lambda: _seq((6, 6, 3), L.Conv2D(4, 3, name="c"), L.GlobalAveragePooling2D(name="g")),
    "gap_keepdims": lambda: _seq((6, 6, 3), L.GlobalAveragePooling2D(keepdims=True, name="g"),
                                 L.Conv2D(2, 1, name="c")),
    "flatten": lambda: _seq((4, 4, 2), L.Flatten(name="f"), L.Dense(3, name="o")),
    "reshape": lambda: _seq((12,), L.Reshape((2, -1, 3), name="r"), L.Conv2D(2, 1, name="c")),
    "zero_padding": lambda: _seq((5, 5, 2), L.ZeroPadding2D(((1, 2), (0, 1)), name="z"),
                                 L.Conv2D(2, 3, name="c")),
    "bn_dense": lambda: _seq((6,), L.Dense(5, name="d"), L.BatchNormalization(name="bn"),
                             L.Activation("relu", name="a")),
    "bn_conv": lambda: _seq((6, 6, 3), L.Conv2D(4, 3, name="c"),
                            L.BatchNormalization(epsilon=0.01, name="bn"), L.ReLU(name="r")),
    "bn_conv_nobias_noscale": lambda: _seq((6, 6, 3), L.Conv2D(4, 3, use_bias=False, name="c"),
                                           L.BatchNormalization(scale=False, name="bn")),
    "bn_nocenter": lambda: _seq((6,), L.Dense(4, name="d"),
                                L.BatchNormalization(center=False, name="bn")),
    "bn_depthwise": lambda: _seq((6, 6, 3), L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
                                 L.BatchNormalization(name="bn")),
    "bn_separable": lambda: _seq((6, 6, 3), L.SeparableConv2D(4, 3, name="sep"),
                                 L.BatchNormalization(name="bn")),
    "dropouts": lambda: _seq((6, 6, 2), L.GaussianNoise(0.5, name="gn"), L.Conv2D(3, 3, name="c"),
                             L.SpatialDropout2D(0.5, name="sd"), L.Flatten(name="f"),
                             L.Dropout(0.5, name="dr"), L.GaussianDropout(0.3, name="gd"),
                             L.AlphaDropout(0.3, name="ad"), L.Identity(name="idn"),
                             L.Dense(2, name="o")),
    "activation_layers": lambda: _seq((6,), L.Dense(5, name="d"),
                                      L.Activation("linear", name="lin"),
                                      L.Activation("relu", name="a"), L.Dense(3, name="d2"),
                                      L.Softmax(name="sm")),
    "activation_on_input": lambda: _seq((6,), L.ReLU(name="r"), L.Dense(3, name="d")),
    "conv1d_bn_relu": lambda: _seq((12, 2), L.Conv1D(4, 3, strides=2, padding="same",
                                                     use_bias=False, name="c"),
                                   L.BatchNormalization(name="bn"), L.ReLU(name="r"),
                                   L.Conv1D(3, 2, dilation_rate=2, activation="relu", name="c2"),
                                   L.Flatten(name="f"), L.Dense(2, name="o")),
    # elementwise affine preprocessing, folded into the layers that read it
    # (tests/test_preprocessing.py has the cases in detail)
    "qcfs": lambda: _seq((6,), L.Dense(5, name="d"), _qcfs(name="q"), L.Dense(3, name="o")),
    "rescaling_normalization": lambda: _seq(
        (6, 6, 2), L.Rescaling(0.5, offset=-1.0, name="rs"),
        L.Normalization(mean=[0.5, -1.0], variance=[2.0, 0.5], name="nz"),
        L.Conv2D(3, 3, activation="relu", name="c"), L.Flatten(name="f"), L.Dense(2, name="o")),
    # layers lowered to IR ops, and standalone batch normalisation
    "relu6": lambda: _seq((5, 5, 2), L.Conv2D(3, 3, name="c"), L.ReLU(max_value=6.0, name="r6"),
                          L.Conv2D(4, 1, activation="relu6", name="c2"),
                          L.Activation("relu6", name="a6"), L.Flatten(name="f"),
                          L.Dense(2, activation="relu6", name="o")),
    "bn_standalone": lambda: _seq((6, 6, 2), L.Conv2D(3, 3, activation="relu", name="c"),
                                  L.BatchNormalization(name="bn1"), L.ReLU(name="r"),
                                  L.AveragePooling2D(2, name="p"),
                                  L.BatchNormalization(name="bn2"), L.Flatten(name="f"),
                                  L.BatchNormalization(name="bn3"), L.Dense(2, name="o")),
    "bn_on_input": lambda: _seq((4, 4, 2), L.BatchNormalization(name="bn"),
                                L.Conv2D(3, 3, name="c"), L.Flatten(name="f"),
                                L.Dense(2, name="o")),
    "crop_upsample_permute": lambda: _seq(
        (6, 5, 2), L.Conv2D(3, 2, activation="relu", name="c"),
        L.Cropping2D(((1, 0), (0, 2)), name="crop"), L.UpSampling2D((2, 3), name="up"),
        L.Permute((2, 1, 3), name="perm"), L.GlobalMaxPooling2D(name="gmp"),
        L.Dense(2, name="o")),
    "conv2d_transpose": lambda: _seq(
        (4, 5, 2), L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="relu",
                                     name="t1"),
        L.Conv2DTranspose(2, (2, 3), strides=(3, 1), name="t2"), L.Flatten(name="f"),
        L.Dense(2, name="o")),
    "pooling_1d": lambda: _seq(
        (16, 3), L.Conv1D(4, 3, activation="relu", name="c"), L.MaxPooling1D(2, name="mp"),
        L.ZeroPadding1D((1, 2), name="zp"), L.Cropping1D((2, 1), name="cr"),
        L.UpSampling1D(2, name="up"), L.AveragePooling1D(3, strides=2, padding="same",
                                                        name="ap"),
        L.GlobalMaxPooling1D(name="gmp"), L.Dense(2, name="o")),
    "gap_1d": lambda: _seq((10, 3), L.Conv1D(4, 3, name="c"), L.BatchNormalization(name="bn"),
                           L.ReLU(name="r"), L.GlobalAveragePooling1D(name="gap"),
                           L.Dense(2, name="o")),
    "merges": lambda: _merges(),
    # batch normalisation that cannot fold into the layer before: a node of its own
    "bn_after_pool": lambda: _seq((4, 4, 2), L.MaxPooling2D(2, name="p"),
                                  L.BatchNormalization(name="bn"), L.Flatten(name="f"),
                                  L.Dense(2, name="o")),
    "bn_after_relu": lambda: _seq((4,), L.Dense(3, activation="relu", name="d"),
                                  L.BatchNormalization(name="bn")),
    "bn_shared_producer": lambda: _bn_shared_producer(),
}


def _bn_shared_producer():
    inp = keras.Input((4,), name="x")
    d = L.Dense(3, name="d")(inp)
    bn = L.BatchNormalization(name="bn")(d)
    return _randomize(keras.Model(inp, L.Add(name="add")([d, bn])))


def _merges():
    inp = keras.Input((6, 6, 2), name="x")
    a = L.Conv2D(3, 3, name="a")(inp)
    b = L.Conv2D(3, 3, activation="relu", name="b")(inp)
    c = L.Conv2D(3, 3, name="c")(inp)
    m = L.Maximum(name="max")([a, b, c])
    s = L.Subtract(name="sub")([m, b])
    v = L.Average(name="avg")([s, a, c])
    v = L.BatchNormalization(name="bn")(v)
    out = L.Dense(2, name="o")(L.Flatten(name="f")(v))
    return _randomize(keras.Model(inp, out, name="merges"))


@pytest.mark.parametrize("key", sorted(LAYER_MODELS))
def test_layer_equivalence(key):
    _assert_equivalent(LAYER_MODELS[key]())


def test_every_supported_layer_is_covered():
    covered = set()
    for make in list(LAYER_MODELS.values()) + [_branchy]:
        model = make()
        stack = [model]
        while stack:
            m = stack.pop()
            for layer in m.layers:
                covered.add(type(layer).__name__)
                if isinstance(layer, keras.Model):
                    stack.append(layer)
    covered |= {"InputLayer", "Sequential", "Functional"}
    # layer types that are plain aliases of covered behaviour
    covered |= {"SpatialDropout1D", "SpatialDropout3D"}
    assert set(SUPPORTED_LAYERS) <= covered, set(SUPPORTED_LAYERS) - covered


def test_folded_structure_and_params():
    graph = parse(LAYER_MODELS["bn_conv"]())
    assert [n.op for n in graph.nodes] == ["input", "conv2d"]
    conv = graph["c"]
    assert conv.activation == "relu"
    assert conv.source_layers == ["c", "bn", "r"]
    assert conv.params == {"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1)}
    assert graph.name == "seq"
    assert conv.output_shape == (4, 4, 4)

    graph = parse(LAYER_MODELS["bn_conv_nobias_noscale"]())
    assert graph["c"].weights["bias"].shape == (4,)

    graph = parse(LAYER_MODELS["dense_nobias_softmax"]())
    np.testing.assert_array_equal(graph["d"].weights["bias"], np.zeros(4, np.float32))
    assert graph.output_node.activation == "softmax"

    graph = parse(LAYER_MODELS["avg_pool"]())
    assert graph["p"].params == {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
    graph = parse(LAYER_MODELS["zero_padding"]())
    assert graph["z"].params["padding"] == ((1, 2), (0, 1))
    graph = parse(LAYER_MODELS["reshape"]())
    assert graph["r"].params["target_shape"] == (2, 2, 3)
    graph = parse(LAYER_MODELS["separable"]())
    assert [n.name for n in graph.nodes] == ["inp", "sep_depthwise", "sep"]
    assert graph["sep_depthwise"].activation == "linear"
    assert graph["sep"].activation == "relu"
    assert graph["sep"].weights["kernel"].shape == (1, 1, 6, 4)

    graph = parse(LAYER_MODELS["dropouts"]())
    assert [n.op for n in graph.nodes] == ["input", "conv2d", "flatten", "dense"]
    assert graph["inp"].source_layers == ["inp", "gn"]
    assert graph["c"].source_layers == ["c", "sd"]
    assert graph["f"].source_layers == ["f", "dr", "gd", "ad", "idn"]

    graph = parse(LAYER_MODELS["activation_layers"]())
    assert [n.name for n in graph.nodes] == ["inp", "d", "d2"]
    assert graph["d"].activation == "relu" and graph["d2"].activation == "softmax"

    graph = parse(LAYER_MODELS["activation_on_input"]())
    assert [(n.name, n.op, n.activation) for n in graph.nodes] == [
        ("inp", "input", "linear"), ("r", "identity", "relu"), ("d", "dense", "linear")]


def test_conv1d_is_a_conv2d_between_reshapes_holding_bn_and_activation():
    graph = parse(LAYER_MODELS["conv1d_bn_relu"]())
    ops = [(n.name, n.op, n.activation) for n in graph.nodes[1:5]]
    assert ops == [("c_2d", "reshape", "linear"), ("c", "conv2d", "relu"),
                   ("c_1d", "reshape", "linear"), ("c2_2d", "reshape", "linear")]
    assert graph["c"].weights["kernel"].shape == (1, 3, 2, 4)
    assert graph["c"].params["strides"] == (1, 2) and graph["c_1d"].output_shape == (6, 4)
    assert "bn" in graph["c"].source_layers


def test_bn_fold_formula():
    model = LAYER_MODELS["bn_dense"]()
    dense, bn = model.get_layer("d"), model.get_layer("bn")
    w, b = (np.asarray(v) for v in dense.get_weights())
    gamma, beta, mean, var = (np.asarray(v, np.float64) for v in bn.get_weights())
    s = gamma / np.sqrt(var + bn.epsilon)
    node = parse(model)["d"]
    np.testing.assert_allclose(node.weights["kernel"], w * s, rtol=1e-6)
    np.testing.assert_allclose(node.weights["bias"], (b - mean) * s + beta, rtol=1e-5, atol=1e-7)
    assert node.weights["kernel"].dtype == np.float32


# ----------------------------------------------------------------------------- functional graphs

def _branchy():
    inp = keras.Input((8, 8, 3), name="x")
    a = L.Conv2D(4, 3, padding="same", name="a_conv")(inp)
    a = L.BatchNormalization(name="a_bn")(a)
    a = L.Activation("relu", name="a_relu")(a)
    b = L.DepthwiseConv2D(3, padding="same", depth_multiplier=2, name="b_dw")(inp)
    b = L.Conv2D(4, 1, activation="relu", name="b_pw")(b)
    s = L.Add(name="sum")([a, b])
    s = L.ReLU(name="sum_relu")(s)
    c = L.Concatenate(name="cat")([a, s, b])
    c = L.MaxPooling2D(2, name="pool")(c)
    c = L.ZeroPadding2D(1, name="pad")(c)
    c = L.AveragePooling2D(2, name="avg")(c)
    c = L.Flatten(name="flat")(c)
    c = L.Dropout(0.2, name="drop")(c)
    out = L.Dense(5, activation="softmax", name="out")(c)
    return _randomize(keras.Model(inp, out, name="branchy"))


def test_functional_branches():
    graph = _assert_equivalent(_branchy())
    assert graph["cat"].params["axis"] == -1
    assert graph["cat"].inputs == ["a_conv", "sum", "b_pw"]
    assert graph["sum"].op == "add" and graph["sum"].activation == "relu"
    assert graph["a_conv"].source_layers == ["a_conv", "a_bn", "a_relu"]
    assert graph.output_node.name == "out"


def test_concat_axis_normalised_negative():
    inp = keras.Input((4, 4, 2), name="x")
    a = L.Conv2D(2, 1, name="a")(inp)
    b = L.Conv2D(2, 1, name="b")(inp)
    c = L.Concatenate(axis=2, name="cat")([a, b])
    graph = _assert_equivalent(keras.Model(inp, L.Flatten(name="f")(c)))
    assert graph["cat"].params["axis"] == -2


def test_activation_on_shared_producer_becomes_identity():
    inp = keras.Input((6,), name="x")
    d = L.Dense(4, name="d")(inp)
    r = L.Activation("relu", name="r")(d)
    out = L.Add(name="add")([d, r])
    graph = _assert_equivalent(_randomize(keras.Model(inp, out)))
    assert graph["d"].activation == "linear"
    assert graph["r"].op == "identity" and graph["r"].activation == "relu"
    assert graph["add"].inputs == ["d", "r"]


def test_nested_models_are_flattened():
    block = keras.Sequential([L.Conv2D(3, 3, padding="same", name="inner_conv"),
                              L.BatchNormalization(name="inner_bn"),
                              L.ReLU(name="inner_relu")], name="block")
    sub_in = keras.Input((8, 8, 3), name="sub_in")
    sub_out = L.Conv2D(3, 1, name="sub_conv")(sub_in)
    sub = keras.Model(sub_in, sub_out, name="sub")
    inp = keras.Input((8, 8, 3), name="x")
    y = block(inp)
    z = sub(y)
    out = L.Add(name="add")([y, z])
    model = _randomize(keras.Model(inp, L.GlobalAveragePooling2D(name="gap")(out), name="outer"))
    graph = _assert_equivalent(model)
    assert [n.name for n in graph.nodes] == ["x", "inner_conv", "sub_conv", "add", "gap"]
    assert graph["inner_conv"].source_layers == ["inner_conv", "inner_bn", "inner_relu"]
    assert graph["sub_conv"].inputs == ["inner_conv"]


def test_sequential_in_sequential():
    inner = keras.Sequential([L.Dense(4, activation="relu", name="i1"), L.Dense(3, name="i2")],
                             name="inner")
    model = _seq((5,), inner, L.Dense(2, name="o"))
    graph = _assert_equivalent(model)
    assert [n.name for n in graph.nodes] == ["inp", "i1", "i2", "o"]


# ----------------------------------------------------------------------------- files

@pytest.mark.parametrize("make", [_branchy, LAYER_MODELS["bn_conv"]],
                         ids=["functional", "sequential"])
def test_keras_and_h5_round_trip(tmp_path, make):
    model = make()
    reference = parse(model)
    for suffix in (".keras", ".h5"):
        path = tmp_path / f"model{suffix}"
        model.save(path)
        loaded = load_model(path)
        assert isinstance(loaded, keras.Model) and type(loaded) is type(model)
        for graph in (parse(path), parse(str(path))):
            assert [(n.name, n.op, n.inputs, n.output_shape, n.activation, n.params)
                    for n in graph.nodes] == [
                (n.name, n.op, n.inputs, n.output_shape, n.activation, n.params)
                for n in reference.nodes]
            for node in graph.nodes:
                for k, v in node.weights.items():
                    np.testing.assert_allclose(v, reference[node.name].weights[k], rtol=1e-6,
                                               err_msg=f"{suffix} {node.name}.{k}")


def _lambda_model(marker):
    marker = str(marker)
    inp = keras.Input((3,), name="x")
    d = L.Dense(2, name="d")(inp)
    out = L.Lambda(lambda t: (open(marker, "w").close(), t * 2.0)[1], name="evil")(d)
    return keras.Model(inp, out)


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_file_refused_without_running_it(tmp_path, monkeypatch, suffix):
    marker = tmp_path / "lambda_ran"
    model = _lambda_model(marker)
    path = tmp_path / f"evil{suffix}"
    model.save(path)
    if marker.exists():  # building the model traced the lambda once
        marker.unlink()

    def _must_not_be_called(*args, **kwargs):
        raise AssertionError("keras.saving.load_model was reached")

    monkeypatch.setattr(keras.saving, "load_model", _must_not_be_called)
    with pytest.raises(ModelLoadError) as info:
        load_model(path)
    msg = str(info.value)
    assert "Lambda" in msg and "'evil'" in msg and "arbitrary code" in msg and path.name in msg
    with pytest.raises(ModelLoadError):
        parse(path)
    assert not marker.exists()


def test_lambda_in_memory_is_unsupported(tmp_path):
    with pytest.raises(UnsupportedLayerError, match=r"'evil' \(Lambda\)"):
        parse(_lambda_model(tmp_path / "m"))


def test_load_errors(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "missing.keras")
    wrong = tmp_path / "model.onnx"
    wrong.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="model.onnx.*extension"):
        load_model(wrong)
    for name in ("junk.keras", "junk.h5"):
        junk = tmp_path / name
        junk.write_bytes(b"this is not a model")
        with pytest.raises(ModelLoadError, match=name):
            load_model(junk)
    with pytest.raises(ModelLoadError, match="directory"):
        load_model(tmp_path)
    # an HDF5 file without a model architecture (weights only)
    import h5py

    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as fh:
        fh["w"] = np.zeros(3)
    with pytest.raises(ModelLoadError, match="weights.h5"):
        load_model(weights_only)


# ----------------------------------------------------------------------------- unsupported models

def _unsupported_cases():
    def multi_input():
        a, b = keras.Input((3,), name="a"), keras.Input((3,), name="b")
        return keras.Model([a, b], L.Add(name="add")([a, b]))

    def softmax_inside():
        return _seq((4,), L.Dense(3, activation="softmax", name="d"), L.Dense(2, name="o"))

    return {
        "lstm": (lambda: _seq((5, 3), L.LSTM(4, name="rnn")), r"'rnn' \(LSTM\)"),
        "tanh_layer": (lambda: _seq((4,), L.Dense(3, name="d"), L.Activation("tanh", name="t")),
                       r"'t' \(Activation\).*'tanh'"),
        "sigmoid_arg": (lambda: _seq((4,), L.Dense(3, activation="sigmoid", name="d")),
                        r"'d' \(Dense\).*'sigmoid'"),
        "relu_threshold": (lambda: _seq((4,), L.ReLU(threshold=0.5, name="rt")),
                           r"'rt' \(ReLU\).*threshold=0.5"),
        "bilinear": (lambda: _seq((3, 3, 1), L.UpSampling2D(2, interpolation="bilinear",
                                                            name="up")),
                     r"'up' \(UpSampling2D\).*'bilinear'"),
        "output_padding": (lambda: _seq((3, 3, 1), L.Conv2DTranspose(
            2, 3, strides=2, output_padding=1, name="t")),
            r"'t' \(Conv2DTranspose\).*output_padding"),
        "leaky": (lambda: _seq((4,), L.ReLU(negative_slope=0.1, name="lr")),
                  r"'lr' \(ReLU\).*negative_slope"),
        "channels_first": (lambda: _seq((2, 6, 6), L.Conv2D(3, 3, data_format="channels_first",
                                                            name="cf")),
                           r"'cf' \(Conv2D\).*channels_first"),
        "softmax_inside": (softmax_inside, r"'d' \(Dense\).*softmax"),
        "multi_input": (multi_input, "exactly one input"),
    }


@pytest.mark.parametrize("key", sorted(_unsupported_cases()))
def test_unsupported(key):
    make, pattern = _unsupported_cases()[key]
    with pytest.raises(UnsupportedLayerError, match=pattern) as info:
        parse(make())
    if key != "multi_input":
        assert "Supported layers: InputLayer, Dense" in str(info.value)


# ----------------------------------------------------------------------------- build_ann / MACs

def test_build_ann_outputs():
    model = _branchy()
    graph = parse(model)
    non_input = [n for n in graph.nodes if n.op != "input"]
    ann_all = build_ann(graph, outputs="all")
    assert len(ann_all.outputs) == len(non_input)
    assert [tuple(t.shape[1:]) for t in ann_all.outputs] == [n.output_shape for n in non_input]
    x = np.random.default_rng(3).normal(size=(2, 8, 8, 3)).astype("float32")
    outs = ann_all.predict(x, verbose=0)
    np.testing.assert_allclose(outs[-1], model.predict(x, verbose=0), atol=1e-5)
    # post-activation outputs: the relu nodes are non-negative
    for node, out in zip(non_input, outs):
        if node.activation == "relu":
            assert out.min() >= 0.0, node.name
    sub = build_ann(graph, outputs=["sum", "a_conv"])
    got = sub.predict(x, verbose=0)
    names = [n.name for n in non_input]
    np.testing.assert_allclose(got[0], outs[names.index("sum")], atol=1e-6)
    np.testing.assert_allclose(got[1], outs[names.index("a_conv")], atol=1e-6)
    with pytest.raises(ValueError, match="nope"):
        build_ann(graph, outputs=["nope"])


def test_count_macs():
    model = _seq((10, 10, 3),
                 L.Conv2D(8, 3, strides=2, padding="same", name="c"),        # -> 5x5x8
                 L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),      # -> 3x3x16
                 L.SeparableConv2D(4, 3, name="sep"),                       # -> 1x1x4
                 L.Flatten(name="f"),
                 L.Dense(6, name="d"))
    macs = count_macs(parse(model))
    assert macs == {
        "c": 5400,              # H_out*W_out*C_out*kh*kw*C_in = 5*5*8*3*3*3
        "dw": 1296,             # H_out*W_out*C*mult*kh*kw = 3*3*8*2*3*3
        "sep_depthwise": 144,   # 1*1*16*1*3*3
        "sep": 64,              # pointwise 1x1 conv: 1*1*4*1*1*16
        "d": 24,                # in*out = 4*6
    }
    # dense applied at every position of a rank-3 tensor
    macs = count_macs(parse(LAYER_MODELS["dense_rank3"]()))
    assert macs == {"d": 4 * 4 * 3 * 5}


def test_nested_name_collision_is_qualified():
    def block(name):
        return keras.Sequential([L.Dense(3, activation="relu", name="dense")], name=name)

    inp = keras.Input((3,), name="x")
    model = _randomize(keras.Model(inp, block("b2")(block("b1")(inp))))
    graph = _assert_equivalent(model)
    assert [n.name for n in graph.nodes] == ["x", "dense", "b2_dense"]
