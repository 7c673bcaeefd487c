"""Post-conversion calibration (snnconv.calibrate), the T-aware normalisation and
their config keys ([calibration], normalization.method = t_aware)."""
from __future__ import annotations

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import snnconv  # noqa: E402
from snnconv.config import load_config  # noqa: E402
from snnconv.data import bundled_dataset_path, bundled_model_path  # noqa: E402
from snnconv.errors import ConfigError  # noqa: E402
from snnconv.normalization import t_aware_scale  # noqa: E402
from snnconv.simulators import get_simulator  # noqa: E402
from snnconv.simulators.ini.calibration import conversion_errors  # noqa: E402

from helpers import write_bundled_config  # noqa: E402

T = 8


@pytest.fixture(scope="module")
def cnn():
    """The bundled CNN normalised on 200 images, converted (v_init 0: its rates
    fall short by half a spike), 200 calibration and 100 held-out images."""
    with np.load(bundled_dataset_path()) as d:
        x_cal = (d["x_norm"][:200] / 255.0).astype(np.float32)
        x_held = (d["x_test"][:100] / 255.0).astype(np.float32)
    graph = snnconv.normalize(snnconv.parse(bundled_model_path()), x_cal)
    return graph, snnconv.convert(graph, v_init=0.0), x_cal, x_held


def _mean_abs(errors):
    return {layer: float(np.abs(e).mean()) for layer, e in errors.items()}


@pytest.mark.parametrize("method, factor", [("light", 0.6), ("advanced", 0.8)])
def test_calibration_reduces_each_layers_mean_error_on_held_out_data(cnn, method, factor):
    graph, snn, x_cal, x_held = cnn
    before = _mean_abs(conversion_errors(snn, graph, x_held, T))
    calibrated = snnconv.calibrate(snn, graph, x_cal, num_steps=T, method=method)
    after = _mean_abs(conversion_errors(calibrated, graph, x_held, T))
    assert set(before) == {"conv1", "conv2", "dense"}
    for layer in before:
        # advanced fits the squared error, of which the mean is a part
        assert after[layer] < factor * before[layer], (layer, before, after)


def test_light_calibration_corrects_a_network_of_bursting_neurons(cnn):
    """With cell.burst the top rate is burst spikes a step of a quarter each: calibration
    targets the same clipped activations and shifts the same biases."""
    graph, _, x_cal, x_held = cnn
    snn = snnconv.convert(graph, v_init=0.0, burst=4)
    before = _mean_abs(conversion_errors(snn, graph, x_held, T))
    calibrated = snnconv.calibrate(snn, graph, x_cal, num_steps=T, method="light")
    after = _mean_abs(conversion_errors(calibrated, graph, x_held, T))
    for layer in before:
        assert after[layer] < 0.6 * before[layer], (layer, before, after)


def test_calibration_returns_a_copy_and_none_returns_the_network(cnn):
    graph, snn, x_cal, _ = cnn
    kernel = snn.get_layer("conv1").bias.numpy().copy()
    calibrated = snnconv.calibrate(snn, graph, x_cal[:100], num_steps=T)
    assert calibrated is not snn
    np.testing.assert_array_equal(snn.get_layer("conv1").bias.numpy(), kernel)
    assert not np.array_equal(calibrated.get_layer("conv1").bias.numpy(), kernel)
    assert snnconv.calibrate(snn, graph, x_cal, num_steps=T, method="none") is snn


def test_calibrated_snn_saves_and_reloads_with_equal_results(cnn, tmp_path):
    graph, snn, x_cal, x_held = cnn
    calibrated = snnconv.calibrate(snn, graph, x_cal[:100], num_steps=T, method="advanced")
    assert calibrated.get_layer("conv1").initial_potentials
    path = tmp_path / "calibrated.keras"
    calibrated.save(path)
    loaded = snnconv.load_snn(path)
    np.testing.assert_array_equal(loaded.get_layer("conv2").v_init.numpy(),
                                  calibrated.get_layer("conv2").v_init.numpy())
    ini = get_simulator("INI")
    a = ini.simulate_batch(calibrated, x_held[:20], T)
    b = ini.simulate_batch(loaded, x_held[:20], T)
    np.testing.assert_array_equal(a.readout, b.readout)
    for layer in a.spikes:
        np.testing.assert_array_equal(a.spikes[layer], b.spikes[layer])


def test_per_neuron_initial_potentials_agree_in_step_and_sequence_mode(cnn):
    graph, snn, x_cal, x_held = cnn
    calibrated = snnconv.calibrate(snn, graph, x_cal[:100], num_steps=T, method="advanced")
    frames = np.repeat(x_held[:5, None], T, axis=1)
    sequence = np.asarray(calibrated(frames)).cumsum(axis=1)
    step = get_simulator("INI").simulate_batch(calibrated, x_held[:5], T).readout
    np.testing.assert_allclose(step, sequence, rtol=1e-5, atol=1e-4)


def _residual(two_spiking_inputs: bool):
    """A small residual network: conv-ReLU, then an Add of (a linear conv of it, or a
    second conv-ReLU) and the first conv's output, ReLU, global pooling, dense."""
    keras.utils.set_random_seed(3)
    inp = keras.Input((8, 8, 2))
    a = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="a")(inp)
    b = keras.layers.Conv2D(6, 3, padding="same", name="b",
                            activation="relu" if two_spiking_inputs else None)(a)
    x = keras.layers.Add(name="add")([b, a])
    x = keras.layers.ReLU(name="add_relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    out = keras.layers.Dense(3, activation="softmax", name="out")(x)
    model = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    return model, rng.uniform(0, 1, (200, 8, 8, 2)).astype(np.float32)


@pytest.mark.parametrize("two_spiking_inputs", [False, True])
def test_calibration_corrects_the_neurons_after_an_add(two_spiking_inputs):
    model, x = _residual(two_spiking_inputs)
    graph = snnconv.normalize(snnconv.parse(model), x[:100])
    # binary spikes: with the default four a step the first layer is already within
    # 6e-5 of the ANN (bursts: test_light_calibration_corrects_a_network_of_bursting_neurons)
    snn = snnconv.convert(graph, burst=1)
    calibrated = snnconv.calibrate(snn, graph, x[:100], num_steps=T)
    before = _mean_abs(conversion_errors(snn, graph, x[100:], T))
    after = _mean_abs(conversion_errors(calibrated, graph, x[100:], T))
    assert "add" in before
    for layer in before:
        assert after[layer] < before[layer], (layer, before, after)
    add = calibrated.get_layer("add")
    if two_spiking_inputs:
        # no linear weight layer feeds the Add alone: its initial potentials take it
        assert add.initial_potentials
    else:
        # the linear conv before the Add takes it in its bias
        assert not add.initial_potentials
        assert not np.array_equal(calibrated.get_layer("b").bias.numpy(),
                                  snn.get_layer("b").bias.numpy())


def test_backends_that_cannot_calibrate_refuse(cnn):
    graph, snn, x_cal, _ = cnn
    with pytest.raises(ConfigError, match=r"calibration.method = light .*xylo"):
        get_simulator("xylo").calibrate(snn, graph, x_cal, T, "light")
    ttfs = snnconv.convert(graph, spike_code="ttfs")
    with pytest.raises(ConfigError, match=r"calibration.method = light.*spike_code = rate"):
        snnconv.calibrate(ttfs, graph, x_cal, num_steps=T)


# -- T-aware normalisation ------------------------------------------------------

def test_t_aware_scale_trades_clipping_for_resolution():
    hist = np.exp(-np.linspace(0, 8, 4096))     # values in [0, 2], most of them small
    scales = [t_aware_scale(hist, 2.0, steps, v_init=0.5) for steps in (1, 2, 8, 64, 4096)]
    assert scales == sorted(scales)      # more steps: a higher scale, less clipping
    assert scales[0] < 0.6
    assert scales[-1] > 1.95             # resolution no longer matters: nothing clipped
    # one step, values evenly spread over [0, 2]: λ·[a >= λ/2] errs by
    # λ³/12 + (2 - λ)³/3, least at λ = 4/3
    assert t_aware_scale(np.ones(4096), 2.0, 1, v_init=0.5) == pytest.approx(4 / 3, abs=0.01)
    # without the half-threshold start, λ·[a >= λ]: λ³/3 + (2 - λ)³/3, least at λ = 1
    assert t_aware_scale(np.ones(4096), 2.0, 1, v_init=0.0) == pytest.approx(1.0, abs=0.01)


def test_t_aware_normalisation_scales_lie_below_the_maximum(cnn):
    _, _, x_cal, _ = cnn
    graph = snnconv.parse(bundled_model_path())
    top = snnconv.normalize(graph, x_cal, method="max", per_channel=False).scales
    for steps in (4, 32):
        scales = snnconv.normalize(graph, x_cal, method="t_aware", num_steps=steps,
                                   v_init=0.5, per_channel=False).scales
        for node in ("conv1", "conv2"):
            assert 0 < float(scales[node]) <= float(top[node])
    few = snnconv.normalize(graph, x_cal, method="t_aware", num_steps=4, per_channel=False).scales
    many = snnconv.normalize(graph, x_cal, method="t_aware", num_steps=64, per_channel=False).scales
    assert float(few["conv2"]) < float(many["conv2"])


# -- config ---------------------------------------------------------------------

def _config(tmp_path, **overrides):
    """The bundled CNN's config (8 steps, 20 test images) with ``section={key: value}``."""
    path = write_bundled_config(tmp_path / "c.ini", 50, {"duration": 8, "num_to_test": 20})
    return load_config(path, overrides=overrides)


@pytest.mark.parametrize("section, key, value, message", [
    ("calibration", "method", "lite", r"calibration\.method = 'lite'.*none, light, advanced"),
    ("calibration", "num_samples", "0", r"calibration\.num_samples = '0'.*>= 1"),
    ("calibration", "num_steps", "-4", r"calibration\.num_steps = '-4'.*>= 0"),
    ("normalization", "method", "t_awre", r"normalization\.method = 't_awre'.*t_aware"),
    ("normalization", "num_steps", "x", r"normalization\.num_steps = 'x'.*integer"),
])
def test_config_keys_are_validated(tmp_path, section, key, value, message):
    with pytest.raises(ConfigError, match=message) as info:
        _config(tmp_path, **{section: {key: value}})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("overrides, message", [
    ({"calibration": {"method": "light"}, "simulation": {"simulator": "xylo"}},
     r"calibration\.method = light cannot be used with simulation\.simulator = xylo"),
    ({"calibration": {"method": "advanced"}, "conversion": {"spike_code": "ttfs"}},
     r"calibration\.method = advanced cannot be used with conversion\.spike_code = ttfs"),
])
def test_config_refuses_calibration_a_backend_cannot_do(tmp_path, overrides, message):
    config = _config(tmp_path, **overrides)
    with pytest.raises(ConfigError, match=message):
        get_simulator(config.simulation.simulator).options_from_config(config)


def test_run_calibrates_between_conversion_and_simulation(tmp_path):
    config = _config(tmp_path, calibration={"method": "light", "num_samples": 40},
                     normalization={"method": "t_aware"}, cell={"v_init": 0.5},
                     output={"plot": False})
    outcome = snnconv.run(config)
    summary = json.loads((outcome.run_dir / "summary.json").read_text())
    assert summary["calibration"] == {"method": "light", "num_samples": 40, "num_steps": 8,
                                      "seconds": summary["calibration"]["seconds"]}
    saved = snnconv.load_snn(outcome.run_dir / "snn.keras")
    np.testing.assert_array_equal(saved.get_layer("conv1").bias.numpy(),
                                  outcome.snn.get_layer("conv1").bias.numpy())


def test_nir_export_refuses_calibrated_initial_potentials(cnn, tmp_path):
    """Per-neuron initial potentials are not NIR: the export names them, not drops them."""
    pytest.importorskip("nir")
    from snnconv.errors import ExportError
    graph, _, x_cal, _ = cnn
    snn = snnconv.convert(graph, threshold_mode="strict", reset="zero", max2avg_pool=True)
    calibrated = snnconv.calibrate(snn, graph, x_cal[:50], num_steps=T, method="advanced")
    with pytest.raises(ExportError, match="initial potential v_init"):
        snnconv.export_nir(calibrated, tmp_path / "c.nir")
