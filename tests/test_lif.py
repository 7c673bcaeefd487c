"""The trainable LIF layer: a hand-computed trace, delay, streaming, decays, saving."""
import keras
import numpy as np
import pytest

from snnconv.layers.lif import LIF
from snnconv.neurons.lif import bitshift_to_tau, decay, tau_to_bitshift


def reference(x, w, tau_mem, tau_syn, threshold, dt, max_spikes, delay=0, bias=0.0):
    """Rockpool's order step by step in numpy: isyn += Wx; v *= a; isyn *= b;
    v += isyn + bias; n = floor(v / θ) (v >= θ, at most max_spikes); v -= nθ."""
    if delay:
        x = np.concatenate([np.zeros_like(x[:, :1]), x[:, :-1]], axis=1)
    a, b = np.exp(-dt / tau_mem), np.exp(-dt / tau_syn)
    batch, steps, _ = x.shape
    isyn = np.zeros((batch, w.shape[1]))
    v = np.zeros((batch, w.shape[1]))
    spikes, vs = [], []
    for t in range(steps):
        isyn = isyn + x[:, t] @ w
        v = v * a
        isyn = isyn * b
        v = v + isyn + bias
        n = np.where(v >= threshold, np.minimum(np.floor(v / threshold), max_spikes), 0)
        v = v - n * threshold
        spikes.append(n)
        vs.append(v.copy())
    return np.stack(spikes, 1), np.stack(vs, 1)


def layer_with(w, **kw):
    layer = LIF(w.shape[1], **kw)
    layer.build((None, None, w.shape[0]))
    layer.kernel.assign(w[:, :, None])
    return layer


@pytest.mark.parametrize("delay", [0, 1])
def test_trace_equals_the_hand_computed_one(delay):
    rng = np.random.default_rng(1)
    x = rng.poisson(1.5, (3, 40, 5)).astype(np.float32)
    w = rng.normal(0.8, 0.6, (5, 4)).astype(np.float32)
    tau_mem = np.array([0.02, 0.05, 0.01, 0.1])
    tau_syn = np.array([0.005, 0.02, 0.04, 0.01])
    layer = layer_with(w, tau_mem=tau_mem, tau_syn=tau_syn, threshold=[1.0, 0.7, 1.3, 2.0],
                       dt=1e-3 * 5, max_spikes_per_dt=3, delay=delay, bias=0.05)
    out, _ = layer.evolve(x)
    spikes, v = reference(x.astype(np.float64), w, tau_mem, tau_syn,
                          np.array([1.0, 0.7, 1.3, 2.0]), 5e-3, 3, delay, 0.05)
    assert spikes.sum() > 20              # the trace exercises the spikes and the reset
    np.testing.assert_array_equal(out["spikes"].numpy(), spikes)
    np.testing.assert_allclose(out["vmem"].numpy(), v, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer(x).numpy(), spikes)


def test_membrane_readout_only_integrates():
    w = np.full((2, 3), 5.0, np.float32)
    x = np.ones((1, 10, 2), np.float32)
    layer = layer_with(w, output="vmem", threshold=1.0)
    v = layer(x).numpy()
    _, v_ref = reference(x, w, 0.02, 0.02, 1e9, 1e-3, 1)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5)
    assert v.max() > 10


def test_several_synapses_add_their_currents():
    rng = np.random.default_rng(2)
    x = rng.poisson(1.0, (2, 30, 3)).astype(np.float32)
    layer = LIF(4, synapses=2, tau_syn=[[0.002, 0.02]] * 4, dt=1e-3)
    layer.build((None, None, 3))
    out, _ = layer.evolve(x)
    w = layer.kernel.numpy()
    # the same neurons with one synapse each, fed through each kernel slice alone
    isyn = np.zeros((2, 4, 2))
    for s, tau in enumerate((0.002, 0.02)):
        single = layer_with(w[:, :, s], tau_syn=tau, output="vmem")
        isyn[..., s] = single.evolve(x)[0]["isyn"].numpy()[:, -1, :, 0]
    np.testing.assert_allclose(out["isyn"].numpy()[:, -1], isyn, rtol=1e-5, atol=1e-6)


def test_streaming_in_chunks_equals_one_call():
    rng = np.random.default_rng(3)
    x = rng.poisson(2.0, (2, 50, 4)).astype(np.float32)
    whole = LIF(6, delay=1, dt=1e-3, tau_mem=0.01, tau_syn=0.005)
    whole.build((None, None, 4))
    stream = LIF(6, delay=1, dt=1e-3, tau_mem=0.01, tau_syn=0.005, stateful=True)
    stream.build((2, None, 4))
    stream.set_weights(whole.get_weights() + [w.numpy() for w in stream.weights[5:]])
    expected = whole(x).numpy()
    parts = [stream(x[:, i:i + 17]).numpy() for i in range(0, 50, 17)]
    np.testing.assert_array_equal(np.concatenate(parts, axis=1), expected)
    stream.reset_state()
    np.testing.assert_array_equal(stream(x).numpy(), expected)
    # without a stateful layer each call starts from rest
    np.testing.assert_array_equal(whole(x).numpy(), expected)


def test_bitshift_decays():
    d = tau_to_bitshift(1e-3, 0.02)
    assert 1 - 2 ** -d == pytest.approx(np.exp(-1e-3 / 0.02))
    assert bitshift_to_tau(1e-3, 4) == pytest.approx(-1e-3 / np.log(1 - 1 / 16))
    # the bit-shift form rounds the shift: 20 ms at dt = 1 ms is d = 4.3 -> 4
    assert float(decay(np.float32(0.02), 1e-3, "bitshift")) == pytest.approx(1 - 2 ** -4)


def test_noise_only_while_training():
    x = np.ones((2, 20, 3), np.float32)
    layer = LIF(5, noise_std=1.0, output="vmem")
    layer.build((None, None, 3))
    a, b = layer(x).numpy(), layer(x).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(layer(x, training=True).numpy(), a)


def test_save_and_load(tmp_path):
    inp = keras.Input((None, 3))
    out = LIF(4, tau_mem=[0.01, 0.02, 0.03, 0.04], surrogate={"name": "arctan", "alpha": 3.0},
              delay=1, train_threshold=True)(inp)
    model = keras.Model(inp, out)
    x = np.random.default_rng(4).poisson(2.0, (2, 30, 3)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    np.testing.assert_array_equal(loaded(x).numpy(), model(x).numpy())
    lif = loaded.layers[-1]
    assert lif.surrogate.alpha == 3.0 and lif.delay == 1 and lif.threshold.trainable


def test_bad_arguments():
    with pytest.raises(ValueError, match="tau_syn must be a number or broadcast"):
        LIF(3, tau_syn=[0.1, 0.2])
    with pytest.raises(ValueError, match="output must be one of"):
        LIF(3, output="rate")
    with pytest.raises(ValueError, match="stateful=True needs a fixed batch size"):
        LIF(3, stateful=True).build((None, None, 2))
