"""SynNet: Rockpool's time constants and initialisation, training, saving, and its map onto Xylo."""
import keras
import numpy as np
import pytest

import snnconv
from snnconv.errors import DataError
from snnconv.networks.synnet import hidden_time_constants, quantize_tau
from snnconv.neurons.lif import bitshift_to_tau, tau_to_bitshift
from snnconv.simulators.xylo import XyloLimitError, simulate_xylo
from snnconv.simulators.xylo.from_synnet import dequantized

KWS = dict(tau_syn_base=0.02, tau_mem=0.02, tau_syn_out=0.02, dt=0.01)


def small(**kw):
    keras.utils.set_random_seed(kw.pop("seed", 0))
    args = dict(size_hidden_layers=[10, 7], time_constants_per_layer=[3, 2], output="vmem",
                **KWS)
    args.update(kw)
    return snnconv.SynNet(4, 5, **args)


def test_time_constants_follow_rockpool():
    taus = hidden_time_constants(7, 3, 0.02, 0.01)
    np.testing.assert_allclose(taus, [0.02, 0.04, 0.08, 0.02, 0.04, 0.08, 0.02])
    net = small()
    expected = bitshift_to_tau(0.01, np.round(tau_to_bitshift(0.01, taus[:3])))
    np.testing.assert_allclose(net.hidden[0].tau_syn.numpy()[:3, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(net.hidden[0].tau_mem.numpy(), quantize_tau(0.02, 0.01),
                               rtol=1e-6)
    raw = small(quantize_time_constants=False)
    np.testing.assert_allclose(raw.hidden[1].tau_syn.numpy()[:, 0],
                               hidden_time_constants(7, 2, 0.02, 0.01), rtol=1e-6)


def test_weights_scaled_by_dt_over_tau_syn():
    net = small(quantize_time_constants=False)
    w = net.hidden[0].kernel.numpy()[:, :, 0]          # (5 inputs, 10 neurons)
    scale = 0.01 / net.hidden[0].tau_syn.numpy()[:, 0]
    limit = np.sqrt(6 / 5)                             # He uniform, fan-in 5
    unscaled = w / scale
    assert np.abs(unscaled).max() <= limit + 1e-6
    assert np.abs(unscaled).max() > 0.6 * limit


def test_delay_is_one_step_per_connection():
    x = np.zeros((1, 12, 5), np.float32)
    x[0, 0] = 15
    with_delay = small(delay=True, threshold=0.05).record(x)
    without = small(delay=False, threshold=0.05).record(x)
    first = {name: int(np.argmax(r["spikes"].sum(axis=2) > 0)) for name, r in with_delay.items()}
    assert first["lif_0"] == 0 and first["lif_1"] == 1
    first_out = int(np.argmax(np.abs(with_delay["readout"]["vmem"][0]).sum(axis=1) > 0))
    assert first_out == 2
    assert int(np.argmax(without["lif_1"]["spikes"].sum(axis=2) > 0)) == 0


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="same length"):
        snnconv.SynNet(4, 5, [10, 10], [2])
    with pytest.raises(ValueError, match="tau_syn_base"):
        snnconv.SynNet(4, 5, [10], [2], tau_syn_base=1e-3, dt=1e-3)
    with pytest.raises(ValueError, match="tau_syn_out = 0.002 s rounds to a decay shift of 0"):
        snnconv.SynNet(4, 5, [10], [2], tau_syn_base=0.02, tau_mem=0.02, dt=0.01)
    with pytest.raises(ValueError, match="threshold_out applies only"):
        snnconv.SynNet(4, 5, [10], [2], output="vmem", threshold_out=3.0)


def separable_task(n=96, steps=20, seed=0):
    """Class k fires channels 2k and 2k+1 (Poisson), the rest background."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    rate = np.full((n, steps, 5), 0.2)
    for c in range(4):
        rate[y == c, :, c] = 3.0
    return rng.poisson(rate).astype(np.float32), y


def test_trains_saves_and_loads(tmp_path):
    x, y = separable_task()
    net = small()
    history = snnconv.train_synnet(net, x, y, epochs=15, batch_size=16, learning_rate=1e-2,
                                   seed=0, verbose=0, augmentation=None)
    losses = history.history["loss"]
    assert losses[-1] < 0.6 * losses[0]
    result = snnconv.evaluate(net, x, y, batch_size=32, progress=False)
    assert result.accuracy > 0.8 and result.num_steps == 20
    assert set(result.spikes_per_step) == {"lif_0", "lif_1", "readout"}
    net.save(tmp_path / "net.keras")
    loaded = keras.saving.load_model(tmp_path / "net.keras")
    np.testing.assert_array_equal(loaded(x[:8]).numpy(), net(x[:8]).numpy())
    assert loaded.get_config() == net.get_config()


def test_train_rejects_bad_data():
    net = small()
    x, y = separable_task(16)
    with pytest.raises(DataError, match="3 channels, but the network has 5"):
        snnconv.train_synnet(net, x[:, :, :3], y, epochs=1)
    with pytest.raises(DataError, match="label 7 is not a class"):
        snnconv.train_synnet(net, x, np.full(16, 7), epochs=1)
    with pytest.raises(DataError, match="must be \\(samples, time steps, channels\\)"):
        snnconv.train_synnet(net, x[:, 0], y, epochs=1)
    with pytest.raises(DataError, match="NaN"):
        bad = x.copy()
        bad[0, 0, 0] = np.nan
        snnconv.train_synnet(net, bad, y, epochs=1)
    with pytest.raises(DataError, match="inputs must be \\(samples, time steps, 5\\)"):
        snnconv.evaluate(net, x[:, :, :4], y, progress=False)


def test_checkpoint_resumes_after_an_interruption(tmp_path):
    x, y = separable_task(32)

    class Stop(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    net = small()
    with pytest.raises(KeyboardInterrupt):
        snnconv.train_synnet(net, x, y, epochs=4, batch_size=16, checkpoint_dir=tmp_path,
                             callbacks=[Stop()], verbose=0)
    seen = []

    class Count(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            seen.append(epoch)

    again = small()
    snnconv.train_synnet(again, x, y, epochs=4, batch_size=16, checkpoint_dir=tmp_path,
                         callbacks=[Count()], verbose=0)
    assert seen == [2, 3]
    rows = (tmp_path / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1", "2", "3"]


def test_xylo_layout_and_quantization():
    net = small()
    xn = snnconv.to_xylo(net)
    spec = xn.spec
    w0, w1, wo = (layer.kernel.numpy()[:, :, 0] for layer in net.lif_layers)
    assert spec.weights_in.shape == (5, 17) and spec.weights_rec.shape == (17, 17)
    assert spec.weights_out.shape == (17, 4)
    # blocks off the diagonal; nothing else
    assert not spec.weights_in[:, 10:].any() and not spec.weights_rec[:, :10].any()
    assert not spec.weights_rec[10:].any() and not spec.weights_out[:10].any()
    f = 127 / max(np.abs(w0).max(), np.abs(w1).max())
    np.testing.assert_array_equal(spec.weights_in[:, :10], np.round(w0 * f))
    np.testing.assert_array_equal(spec.weights_rec[:10, 10:], np.round(w1 * f))
    np.testing.assert_array_equal(spec.threshold, np.round(f))
    # the membrane readout keeps its resolution (Rockpool's 2**15 - 1 threshold would
    # round every output weight to zero)
    assert np.abs(spec.weights_out).max() == 127 and np.all(spec.threshold_out == 32767)
    tau = net.hidden[0].tau_syn.numpy()[:, 0]
    np.testing.assert_array_equal(spec.dash_syn[:10], np.round(np.log2(tau / 0.01)))
    np.testing.assert_array_equal(spec.dash_mem, 1)
    per_channel = snnconv.to_xylo(net, quantization="per_channel").spec
    assert np.all(np.abs(per_channel.weights_in[:, :10]).max(axis=0) == 127)


def test_chip_simulation_follows_the_float_network():
    x, y = separable_task(64, 30, seed=3)
    net = small()
    snnconv.train_synnet(net, x, y, epochs=15, batch_size=16, learning_rate=1e-2, seed=0,
                         verbose=0, augmentation=None)
    xn = snnconv.to_xylo(net)
    float_result = snnconv.evaluate(net, x, y, progress=False)
    chip_result = snnconv.evaluate(xn, x, y, progress=False)
    q_result = snnconv.evaluate(dequantized(net, xn), x, y, progress=False)
    assert np.mean(chip_result.predictions == float_result.predictions) >= 0.9
    assert np.mean(q_result.predictions == float_result.predictions) >= 0.9
    # the evaluation's chip run is the integer simulation of the exported specification
    trace = simulate_xylo(xn.spec, x[:4].astype(int))
    hidden = chip_result.spikes_per_step["lif_0"].sum() + chip_result.spikes_per_step[
        "lif_1"].sum()
    assert hidden > 0 and trace.spikes.shape == (4, 30, 17)


def test_limits_are_named():
    big = snnconv.SynNet(4, 5, [600, 600], [2, 2], **KWS)
    with pytest.raises(XyloLimitError, match="hidden neurons: 1 200 > 1 000"):
        snnconv.to_xylo(big)
    wide = snnconv.SynNet(4, 5, [10, 80], [2, 2], **KWS)
    with pytest.raises(XyloLimitError, match="fan-out per hidden neuron: 80 > 64"):
        snnconv.to_xylo(wide)
    no_delay = small(delay=False)
    with pytest.raises(XyloLimitError, match="delay=0"):
        snnconv.to_xylo(no_delay)
    slow = snnconv.SynNet(4, 5, [10], [2], tau_syn_base=0.02, tau_mem=1000.0,
                          tau_syn_out=0.02, dt=0.01)
    with pytest.raises(XyloLimitError, match="tau_mem: decay shifts"):
        snnconv.to_xylo(slow)
