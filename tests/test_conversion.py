"""Conversion of whole networks: step mode vs sequence mode, and SNN rates vs ANN activations."""
import keras
import numpy as np
import pytest

import snnconv
from snnconv.simulators.ini import layer_inputs, simulate_batch

from helpers import make_branched_model


@pytest.fixture(scope="module")
def converted():
    model = make_branched_model()
    rng = np.random.default_rng(1)
    x = rng.random((64, 10, 10, 2)).astype("float32")
    graph = snnconv.normalize(snnconv.parse(model), x, method="max")
    return model, graph, x


def test_step_mode_equals_sequence_mode(converted):
    """The compiled whole-network loop and the layer-by-layer Keras call agree exactly."""
    _, graph, x = converted
    snn = snnconv.convert(graph, tau_refrac=1.0, v_init=0.25)
    steps = 25
    out = simulate_batch(snn, x[:8], steps)
    seq = snn.predict_on_batch(np.repeat(x[:8, None], steps, axis=1))
    np.testing.assert_allclose(out.readout, np.cumsum(seq, axis=1), rtol=1e-5, atol=1e-5)
    # per-layer spikes of the step loop equal the sequence outputs of each layer
    names = [lay.name for lay, _ in layer_inputs(snn) if lay.name in out.spikes]
    probe = keras.Model(snn.inputs, [snn.get_layer(n).output for n in names])
    outs = probe.predict_on_batch(np.repeat(x[:8, None], steps, axis=1))
    for name, o in zip(names, outs):
        amp = snn.get_layer(name).spike_amplitude
        np.testing.assert_allclose(out.spikes[name], o.reshape(8, steps, -1).sum(2) / amp)


def test_snn_rates_approach_normalised_ann_activations(converted):
    """Rate of every spiking layer ~ the normalised ANN activation (the conversion's premise)."""
    _, graph, x = converted
    snn = snnconv.convert(graph)
    steps = 400
    frames = np.repeat(x[:4, None], steps, axis=1)
    ann = snnconv.build_ann(graph, outputs="all")
    ann_acts = dict(zip([n.name for n in graph if n.op != "input"], ann.predict_on_batch(x[:4])))
    for name in ("a", "b_relu", "add", "dw"):
        lay = snn.get_layer(name)
        spikes = keras.Model(snn.inputs, lay.output).predict_on_batch(frames)
        # the signal per step stands for the activation (with the default four
        # spikes of a quarter a step, as with one of 1)
        rate = spikes.mean(axis=1)
        target = np.clip(ann_acts[name], 0, 1)
        # rates are quantised to 1/T and errors accumulate across layers
        assert np.abs(rate - target).mean() < 0.02, name
        assert np.corrcoef(rate.ravel(), target.ravel())[0, 1] > 0.97, name


def test_converted_branched_model_predicts_like_the_ann(converted):
    model, graph, x = converted
    snn = snnconv.convert(graph)
    y = model.predict(x, verbose=0).argmax(1)
    r = snnconv.evaluate(snn, x, y, num_steps=200, batch_size=32, progress=False, top_k=2)
    assert r.accuracy >= 0.9                 # agreement with the ANN's own predictions
    assert r.spikes_per_neuron["a"] > 0


def test_max2avg_pool_and_leak_options(converted):
    _, graph, x = converted
    snn = snnconv.convert(graph, max2avg_pool=True, tau_mem=1e6)
    assert type(snn.get_layer("mp")).__name__ == "SpikeAveragePooling2D"
    assert snn.get_layer("a").neuron.tau_mem == 1e6


def test_unknown_spike_code_or_simulator_is_refused(converted):
    _, graph, _ = converted
    with pytest.raises(snnconv.errors.SnnconvError, match="spike code 'ttfs_corrective'"):
        snnconv.convert(graph, spike_code="ttfs_corrective")
    with pytest.raises(snnconv.errors.SnnconvError, match="unknown simulator 'nest'"):
        snnconv.convert(graph, simulator="nest")


def test_poisson_input_out_of_range_is_refused(converted):
    _, graph, x = converted
    snn = snnconv.convert(graph, poisson_input=True)
    with pytest.raises(snnconv.errors.DataError, match="Poisson input"):
        snnconv.evaluate(snn, x * 5, np.zeros(len(x)), num_steps=5, progress=False)
