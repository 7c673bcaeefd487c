"""The Keras Applications architectures users bring (random weights, small inputs, every
BatchNormalization given random statistics so that none is the identity):

* ``snnconv.parse``'s IR rebuilt by ``build_ann`` gives Keras's logits (1e-5 relative);
* normalised on a few random inputs, the rate code on the INI simulator runs a short
  simulation with the shapes the evaluation promises;
* ``ttfs_exact`` on the event simulator predicts what the normalised ANN predicts, with
  the same logits;
* EfficientNetB0, MobileNetV3Small and ConvNeXtTiny (silu, hard_silu, LayerNormalization)
  are refused by the parser in one line naming the layer.

Each architecture is one test, so that its model is built once (also under
pytest-xdist); the heaviest are marked ``slow`` (``make test`` runs them too;
``-m "not slow"`` leaves them out).
"""
from __future__ import annotations

import re

import keras
import numpy as np
import pytest

import snnconv
from snnconv.errors import UnsupportedLayerError
from snnconv.simulators.event import layer_values

A = keras.applications
SMALL = (32, 32, 3)
CLASSES = 10
SAMPLES = 4

# name -> (constructor, input shape, options)
CONVERTED = {
    "VGG16": (A.VGG16, SMALL, {}),
    "ResNet50": (A.ResNet50, SMALL, {}),
    "ResNet50V2": (A.ResNet50V2, SMALL, {}),
    "DenseNet121": (A.DenseNet121, SMALL, {}),
    "MobileNet": (A.MobileNet, SMALL, {}),
    "MobileNetV2": (A.MobileNetV2, SMALL, {"alpha": 0.35}),
    "NASNetMobile": (A.NASNetMobile, SMALL, {}),
    "Xception": (A.Xception, (71, 71, 3), {}),
    "InceptionV3": (A.InceptionV3, (75, 75, 3), {}),
}
REFUSED = {
    "EfficientNetB0": A.EfficientNetB0,
    "MobileNetV3Small": A.MobileNetV3Small,
    "ConvNeXtTiny": A.ConvNeXtTiny,
}
# the heaviest to build, normalise and trace (about 40-90 s each on two busy cores)
SLOW = ("DenseNet121", "NASNetMobile", "InceptionV3")
# what makes a layer of the refused architectures unconvertible
NON_RELU = ("silu", "swish", "hard_silu", "hard_swish", "gelu")


def build(constructor, shape, seed=0, **options):
    """The architecture with random weights and random BatchNormalization statistics."""
    keras.utils.set_random_seed(seed)
    model = constructor(weights=None, input_shape=shape, classes=CLASSES,
                        classifier_activation="softmax", **options)
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            c = int(layer.moving_mean.shape[-1])
            layer.moving_mean.assign(rng.normal(0.0, 0.2, c).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            if layer.gamma is not None:
                layer.gamma.assign(rng.uniform(0.5, 1.5, c).astype("float32"))
            if layer.beta is not None:
                layer.beta.assign(rng.normal(0.0, 0.2, c).astype("float32"))
    return model


def keras_logits(model, x):
    """The input of the model's final softmax (a Dense layer's, or an Activation's)."""
    last = model.layers[-1]
    if isinstance(last, keras.layers.Dense):
        assert last.activation.__name__ == "softmax"
        features = np.asarray(keras.Model(model.input, last.input)(x, training=False),
                              np.float64)
        kernel, bias = (np.asarray(w, np.float64) for w in last.get_weights())
        return features @ kernel + bias
    assert isinstance(last, keras.layers.Activation) and last.activation.__name__ == "softmax"
    return np.asarray(keras.Model(model.input, last.input)(x, training=False), np.float64)


def ir_logits(graph, x):
    """The pre-softmax output of ``build_ann`` of ``graph``."""
    g = graph.copy()
    g.output_node.activation = "linear"
    return np.asarray(snnconv.build_ann(g)(x, training=False), np.float64)


def assert_logits_close(actual, expected, rtol, what):
    np.testing.assert_allclose(actual, expected, rtol=rtol,
                               atol=rtol * float(np.max(np.abs(expected))), err_msg=what)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


@pytest.mark.parametrize("name", [
    pytest.param(name, marks=pytest.mark.slow) if name in SLOW else name
    for name in CONVERTED])
def test_converts(name):
    """One architecture, built once: (1) the IR's ANN gives Keras's logits; (2) the
    normalised graph's rate-coded SNN runs a short simulation; (3) ttfs_exact on the
    event simulator predicts what the normalised ANN predicts, with its logits."""
    constructor, shape, options = CONVERTED[name]
    model = build(constructor, shape, **options)
    x = np.random.default_rng(1).uniform(0, 1, (SAMPLES,) + shape).astype("float32")

    # (1) parse: the IR rebuilt equals Keras
    graph = snnconv.parse(model)
    expected = keras_logits(model, x)
    logits = ir_logits(graph, x)
    assert_logits_close(logits, expected, 1e-5, f"{name}: IR logits vs Keras")
    np.testing.assert_allclose(softmax(logits), np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-6, err_msg=f"{name}: IR output vs Keras")

    # (2) normalise; the rate code on the INI simulator runs
    norm = snnconv.normalize(graph, x)
    norm_logits = ir_logits(norm, x)
    # normalisation keeps the function: the logits divided by the output's scale
    assert_logits_close(norm_logits * np.asarray(norm.scales[graph.output_node.name]),
                        expected, 1e-5, f"{name}: normalised logits")
    target = norm_logits.argmax(axis=1)
    steps = 3
    r = snnconv.evaluate(snnconv.convert(norm), x, target, num_steps=steps, progress=False)
    assert r.num_samples == SAMPLES and r.num_steps == steps
    assert r.accuracy_per_step.shape == (steps,) and r.synops_per_step.shape == (steps,)
    assert r.predictions.shape == (SAMPLES,) and set(r.predictions) <= set(range(CLASSES))
    assert np.all((r.accuracy_per_step >= 0) & (r.accuracy_per_step <= 1))
    assert r.neurons and all(n > 0 for n in r.neurons.values())
    assert all(s.shape == (steps,) for s in r.spikes_per_step.values())
    assert sum(float(s.sum()) for s in r.spikes_per_step.values()) > 0, f"{name}: no spikes"
    assert r.ann_macs > 0

    # (3) ttfs_exact, event-driven: the ANN's predictions and logits
    event = snnconv.convert(norm, simulator="event", spike_code="ttfs_exact")
    scores = layer_values(event, x)[event.windows.output]
    np.testing.assert_array_equal(scores.argmax(axis=1), target,
                                  err_msg=f"{name}: ttfs_exact predictions")
    assert_logits_close(scores, norm_logits, 1e-4, f"{name}: ttfs_exact logits")


@pytest.mark.parametrize("name", list(REFUSED))
def test_refused_in_one_line_naming_the_layer(name):
    model = REFUSED[name](weights=None, input_shape=SMALL, classes=CLASSES,
                          classifier_activation="softmax")
    with pytest.raises(UnsupportedLayerError) as e:
        snnconv.parse(model)
    message = str(e.value)
    assert "\n" not in message
    found = re.match(r"layer '([^']+)' \((\w+)\)", message)
    assert found, message
    layer = next(lay for lay in _all_layers(model) if lay.name == found.group(1))
    assert type(layer).__name__ == found.group(2)
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    assert type(layer).__name__ == "LayerNormalization" or activation in NON_RELU, message


def _all_layers(model):
    """Every layer, those of nested models (ConvNeXt's stem) too."""
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)
