"""Models as users have them: Rescaling / Normalization folded exactly, custom layers and
.hdf5 files named in one-line errors."""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import snnconv  # noqa: E402
from snnconv.ann import build_ann  # noqa: E402
from snnconv.config import load_config  # noqa: E402
from snnconv.data import bundled_dataset_path, bundled_model_path  # noqa: E402
from snnconv.errors import ModelLoadError, UnsupportedLayerError  # noqa: E402
from snnconv.parsing import load_model, parse  # noqa: E402

L = keras.layers


def _model(shape, *layers, seed=0):
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape, name="inp"), *layers], name="m")
    rng = np.random.default_rng(seed)
    for w in model.weights:
        if w.path.endswith("bias"):
            w.assign(rng.normal(0, 0.3, tuple(w.shape)).astype("float32"))
    return model


def _raw(shape, n=4, seed=1):
    """Inputs as a user's data are before the model's own scaling: 0..255."""
    return np.random.default_rng(seed).uniform(0, 255, (n,) + shape).astype("float32")


def _assert_same_as_keras(model, x):
    graph = parse(model)
    ref = model.predict(x, verbose=0)
    got = build_ann(graph).predict(x, verbose=0)
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4 * float(np.abs(ref).max()))
    return graph


def _adapted_normalization(shape, **kw):
    norm = L.Normalization(name="norm", **kw)
    norm.adapt(_raw(shape, n=64, seed=5) * np.arange(1, shape[-1] + 1) + 40.0)
    return norm


FOLDED = {
    # the Keras tutorials' first layer, before a 'same' convolution (scale only: exact)
    "rescale_same_conv": lambda: _model(
        (8, 8, 3), L.Rescaling(1 / 255, name="scale"),
        L.Conv2D(4, 3, padding="same", activation="relu", name="c"),
        L.Flatten(name="f"), L.Dense(3, name="o")),
    # an offset that makes the inputs negative, into a valid convolution's bias
    "rescale_offset_valid_conv": lambda: _model(
        (8, 8, 3), L.Rescaling(1 / 127.5, offset=-1, name="scale"),
        L.Conv2D(4, 3, activation="relu", name="c"), L.GlobalAveragePooling2D(name="g"),
        L.Dense(3, name="o")),
    # per-channel normalisation (adapted), through pooling, into a depthwise convolution
    "normalization_pool_depthwise": lambda: _model(
        (8, 8, 3), _adapted_normalization((8, 8, 3)),
        L.AveragePooling2D(2, name="avg"), L.MaxPooling2D(2, padding="same", name="max"),
        L.DepthwiseConv2D(2, depth_multiplier=2, activation="relu", name="dw"),
        L.Flatten(name="f"), L.Dense(3, name="o")),
    # per-pixel normalisation through Flatten and Dropout into a Dense layer
    "normalization_per_pixel_dense": lambda: _model(
        (5, 4, 2), _adapted_normalization((5, 4, 2), axis=(1, 2, 3)),
        L.Flatten(name="f"), L.Dropout(0.5, name="drop"),
        L.Dense(6, activation="relu", name="d"), L.Dense(3, name="o")),
    # two affine layers composed, and zero padding (no offset) before the convolution
    "rescale_twice_zero_padding": lambda: _model(
        (8, 8, 1), L.Rescaling(2 / 255, name="s1"), L.Rescaling(0.5, name="s2"),
        L.ZeroPadding2D(1, name="pad"), L.Conv2D(2, 3, strides=2, activation="relu", name="c"),
        L.Flatten(name="f"), L.Dense(3, name="o")),
    # an inverted normalisation before a separable convolution, and one scale per channel
    "invert_separable": lambda: _model(
        (8, 8, 2), L.Rescaling([0.5, 2.0], offset=[1.0, -3.0], name="scale"),
        L.Normalization(mean=[1.0, 2.0], variance=[4.0, 0.25], invert=True, name="inv"),
        L.SeparableConv2D(3, 3, activation="relu", name="sep"),
        L.Flatten(name="f"), L.Dense(3, name="o")),
}


@pytest.mark.parametrize("key", sorted(FOLDED))
def test_affine_preprocessing_folds_exactly(key):
    model = FOLDED[key]()
    graph = _assert_same_as_keras(model, _raw(tuple(model.inputs[0].shape[1:])))
    assert all(n.op in ("input", "dense", "conv2d", "depthwise_conv2d", "flatten", "reshape",
                        "avg_pool2d", "max_pool2d", "global_avg_pool2d", "zero_padding2d")
               for n in graph)
    first = next(n for n in graph if n.has_weights)
    assert {"scale", "norm", "s1", "inv"} & set(first.source_layers)


REFUSED = {
    # zero padding would stand for the offset's value
    "offset_same_conv": (lambda: _model((6, 6, 2), _adapted_normalization((6, 6, 2)),
                                        L.Conv2D(2, 3, padding="same", name="c")),
                         r"'norm' \(Normalization\).*'c'.*padding adds zeros"),
    "offset_zero_padding": (lambda: _model((6, 6, 1), L.Rescaling(1.0, offset=-1.0, name="s"),
                                           L.ZeroPadding2D(1, name="pad"),
                                           L.Conv2D(2, 3, name="c")),
                            r"'s' \(Rescaling\).*'pad'.*offset"),
    "negative_scale_max_pool": (lambda: _model((6, 6, 1), L.Rescaling(-1.0, name="s"),
                                               L.MaxPooling2D(2, name="p"),
                                               L.Flatten(), L.Dense(2)),
                                r"'s' \(Rescaling\).*positive scale"),
    "relu_after_scaling": (lambda: _model((4,), L.Rescaling(2.0, name="s"), L.ReLU(name="r"),
                                          L.Dense(2)),
                           r"'r' \(ReLU\).*'s' \(Rescaling\)"),
    "scaling_at_output": (lambda: _model((4,), L.Dense(2, name="d"),
                                         L.Rescaling(2.0, name="s")),
                          r"'s' \(Rescaling\).*output"),
    "per_pixel_into_conv": (lambda: _model((4, 4, 1),
                                           _adapted_normalization((4, 4, 1), axis=(1, 2, 3)),
                                           L.Conv2D(2, 3, name="c")),
                            r"'norm' \(Normalization\).*one scale and offset per input channel"),
}


@pytest.mark.parametrize("key", sorted(REFUSED))
def test_what_cannot_fold_is_named(key):
    make, pattern = REFUSED[key]
    with pytest.raises(UnsupportedLayerError, match=pattern) as info:
        parse(make())
    assert "\n" not in str(info.value)


def test_rescaling_model_converts_like_the_model_on_scaled_data(tmp_path):
    """The bundled CNN (trained on x / 255) behind Rescaling(1/255), on the raw
    images, gives the SNN the bundled CNN gives on x / 255."""
    base = load_model(bundled_model_path())
    inp = keras.Input((28, 28, 1))
    wrapped = keras.Model(inp, base(L.Rescaling(1 / 255, name="scale")(inp)), name="wrapped")
    wrapped.save(tmp_path / "wrapped.keras")
    raw = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1.0)
    scaled = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    results = []
    for model, data in ((tmp_path / "wrapped.keras", raw), (bundled_model_path(), scaled)):
        graph = snnconv.normalize(snnconv.parse(model), data.x_norm[:100])
        snn = snnconv.convert(graph)
        results.append(snnconv.evaluate(snn, data.x_test[:40], data.y_test[:40], num_steps=20,
                                        batch_size=40, progress=False))
    np.testing.assert_allclose(results[0].accuracy_per_step, results[1].accuracy_per_step,
                               atol=1.5 / 40)
    assert results[0].accuracy > 0.8


def test_custom_layer_is_named_when_the_file_cannot_be_loaded(tmp_path):
    @keras.saving.register_keras_serializable(package="UserPkg")
    class Twice(L.Layer):
        def call(self, x):
            return 2 * x

    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d"), Twice(name="twice")])
    for name in ("custom.keras", "custom.h5"):
        model.save(tmp_path / name)
    keras.saving.get_custom_objects().pop("UserPkg>Twice")     # a fresh process knows nothing
    for name in ("custom.keras", "custom.h5"):
        with pytest.raises(ModelLoadError, match=rf"{name}.*'twice' \(UserPkg>Twice\)") as info:
            load_model(tmp_path / name)
        assert "could not be deserialized" not in str(info.value)


def test_hdf5_suffix_is_accepted(tmp_path):
    model = keras.Sequential([keras.Input((4,)), L.Dense(3, name="d")])
    model.save(tmp_path / "m.h5")
    os.replace(tmp_path / "m.h5", tmp_path / "m.hdf5")
    cfg = tmp_path / "c.ini"
    cfg.write_text("[paths]\nfilename_ann = m.hdf5\n")
    assert load_config(cfg).paths.filename_ann == tmp_path / "m.hdf5"
    assert [n.op for n in parse(tmp_path / "m.hdf5")] == ["input", "dense"]
