"""Tests of snnconv.neurons: the pure IF step function and IFNeuron.run.

Hand-worked traces use dyadic inputs (0.375, 0.625, 0.25, ...) so that every
membrane value is exact in float32 and the expected spike steps are exact.
"""
from __future__ import annotations

import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from keras import ops  # noqa: E402

from snnconv.neurons import IFNeuron, IFParams, IFState, if_step, make_neuron  # noqa: E402


def _trace(inputs, params: IFParams, v0=0.0, refrac0=0.0):
    """Run if_step over a list of scalar currents; return (spike counts, potentials)."""
    state = IFState(ops.convert_to_tensor(np.float32([v0])),
                    ops.convert_to_tensor(np.float32([refrac0])))
    spikes, vs, refracs = [], [], []
    for i in inputs:
        n, state = if_step(ops.convert_to_tensor(np.float32([i])), state, params)
        spikes.append(float(ops.convert_to_numpy(n)[0]))
        vs.append(float(ops.convert_to_numpy(state.v)[0]))
        refracs.append(float(ops.convert_to_numpy(state.refrac)[0]))
    return np.array(spikes), np.array(vs), np.array(refracs)


# ----------------------------------------------------------------------------- if_step

def test_subtraction_reset_hand_trace():
    # v: .375 .75 1.125->.125 .5 .875 1.25->.25 .625 1.0->0 .375
    spikes, v, _ = _trace([0.375] * 9, IFParams(v_thresh=1.0, reset="subtraction"))
    assert list(np.nonzero(spikes)[0] + 1) == [3, 6, 8]
    np.testing.assert_array_equal(spikes, [0, 0, 1, 0, 0, 1, 0, 1, 0])
    np.testing.assert_array_equal(v, [.375, .75, .125, .5, .875, .25, .625, 0.0, .375])


def test_subtraction_reset_spikes_exactly_at_threshold():
    # 0.5 per step: v reaches exactly 1.0 at every even step -> spikes there, v back to 0.
    spikes, v, _ = _trace([0.5] * 6, IFParams())
    np.testing.assert_array_equal(spikes, [0, 1, 0, 1, 0, 1])
    np.testing.assert_array_equal(v, [.5, 0, .5, 0, .5, 0])


def test_zero_reset_hand_trace():
    # v: .375 .75 1.125->0 .375 .75 1.125->0 ... : the residue .125 is lost.
    spikes, v, _ = _trace([0.375] * 7, IFParams(reset="zero"))
    np.testing.assert_array_equal(spikes, [0, 0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(v, [.375, .75, 0, .375, .75, 0, .375])


def test_threshold_other_than_one():
    # v_thresh 2, dt 0.5, current 1.5 -> +0.75 per step:
    # .75 1.5 2.25->.25 1.0 1.75 2.5->.5
    spikes, v, _ = _trace([1.5] * 6, IFParams(v_thresh=2.0, dt=0.5))
    np.testing.assert_array_equal(spikes, [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(v, [.75, 1.5, .25, 1.0, 1.75, .5])


def test_negative_current_never_spikes():
    spikes, v, _ = _trace([-0.5, -0.25, 0.5, 0.5], IFParams())
    np.testing.assert_array_equal(spikes, [0, 0, 0, 0])
    np.testing.assert_array_equal(v, [-.5, -.75, -.25, .25])


def test_refractory_blocks_integration_for_exactly_refrac_steps():
    # refrac_steps 2, current .625:
    # 1: .625  2: 1.25 spike -> .25  3,4: blocked (.25)  5: .875  6: 1.5 spike -> .5
    # 7,8: blocked (.5)  9: 1.125 spike -> .125  10,11 blocked  12: .75
    spikes, v, refrac = _trace([0.625] * 12, IFParams(refrac_steps=2))
    np.testing.assert_array_equal(spikes, [0, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(v, [.625, .25, .25, .25, .875, .5, .5, .5, .125, .125, .125,
                                      .75])
    np.testing.assert_array_equal(refrac, [0, 2, 1, 0, 0, 2, 1, 0, 2, 1, 0, 0])


def test_refractory_one_step():
    spikes, v, _ = _trace([0.5] * 6, IFParams(refrac_steps=1))
    # 1: .5  2: 1.0 spike -> 0  3: blocked 0  4: .5  5: 1.0 spike -> 0  6: blocked
    np.testing.assert_array_equal(spikes, [0, 1, 0, 0, 1, 0])
    np.testing.assert_array_equal(v, [.5, 0, 0, .5, 0, 0])


def test_refractory_from_neuron_parameters():
    # tau_refrac 2 ms with dt 0.5 ms -> 4 blocked steps.
    assert IFNeuron(tau_refrac=2.0, dt=0.5).params.refrac_steps == 4
    assert IFNeuron(tau_refrac=0.0).params.refrac_steps == 0


def test_leak_multiplies_before_integration():
    p = IFParams(decay=0.5)
    # v0 .5: leak -> .25, integrate .25 -> .5 (integrate-then-leak would give .375)
    _, v, _ = _trace([0.25], p, v0=0.5)
    assert v[0] == 0.5
    # from rest with .25 per step: .25, .375, .4375, .46875 -> approaches .5, never fires
    spikes, v, _ = _trace([0.25] * 4, p)
    np.testing.assert_array_equal(v, [.25, .375, .4375, .46875])
    assert spikes.sum() == 0
    spikes, _, _ = _trace([0.25] * 40, p)
    assert spikes.sum() == 0


def test_leak_decay_from_tau_mem():
    n = IFNeuron(tau_mem=20.0, dt=2.0)
    assert n.params.decay == pytest.approx(math.exp(-0.1), rel=1e-12)
    assert IFNeuron().params.decay == 1.0


def test_max_spikes_per_dt_floor_and_clamp():
    # 2.5 per step, at most 3 spikes: v 2.5 -> n 2, v .5; 3.0 -> n 3, v 0; 2.5 -> 2 ...
    spikes, v, _ = _trace([2.5] * 3, IFParams(max_spikes_per_dt=3))
    np.testing.assert_array_equal(spikes, [2, 3, 2])
    np.testing.assert_array_equal(v, [.5, 0, .5])
    # 4.25 per step is above the ceiling: floor(4.25)=4 clamped to 3, the excess accumulates
    spikes, v, _ = _trace([4.25] * 3, IFParams(max_spikes_per_dt=3))
    np.testing.assert_array_equal(spikes, [3, 3, 3])
    np.testing.assert_array_equal(v, [1.25, 2.5, 3.75])
    # with the default of 1 the same input gives one spike per step
    spikes, v, _ = _trace([2.5] * 2, IFParams())
    np.testing.assert_array_equal(spikes, [1, 1])
    np.testing.assert_array_equal(v, [1.5, 3.0])


def test_max_spikes_with_zero_reset():
    spikes, v, _ = _trace([2.5, 0.25], IFParams(max_spikes_per_dt=4, reset="zero"))
    np.testing.assert_array_equal(spikes, [2, 0])
    np.testing.assert_array_equal(v, [0, .25])


def test_v_init():
    neuron = IFNeuron(v_init=0.75)
    currents = np.full((1, 6, 1), 0.375, np.float32)
    n, v = neuron.run(currents, return_potentials=True)
    # 1.125 -> .125, .5, .875, 1.25 -> .25, .625, 1.0 -> 0
    np.testing.assert_array_equal(np.asarray(n)[0, :, 0], [1, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(np.asarray(v)[0, :, 0], [.125, .5, .875, .25, .625, 0])
    n0 = np.asarray(IFNeuron().run(currents))
    np.testing.assert_array_equal(n0[0, :, 0], [0, 0, 1, 0, 0, 1])


# ----------------------------------------------------------------------------- IFNeuron

def test_neuron_validation_and_config_roundtrip():
    with pytest.raises(ValueError):
        IFNeuron(reset="bogus")
    with pytest.raises(ValueError):
        IFNeuron(v_thresh=0.0)
    with pytest.raises(ValueError):
        IFNeuron(max_spikes_per_dt=0)
    neuron = IFNeuron(v_thresh=2.0, reset="zero", tau_refrac=1.0, dt=0.5, tau_mem=10.0,
                      max_spikes_per_dt=2, v_init=0.25)
    assert make_neuron(neuron.get_config()) == neuron


def test_rate_equals_constant_input_within_one_over_T():
    T = 50
    a = np.linspace(0.0, 1.0, 201, dtype=np.float32)
    currents = np.broadcast_to(a[:, None], (len(a), T)).copy()
    spikes = np.asarray(IFNeuron(v_thresh=1.0, dt=1.0).run(currents))
    assert spikes.shape == (len(a), T)
    assert set(np.unique(spikes)) <= {0.0, 1.0}
    rate = spikes.sum(axis=1) / T
    assert np.all(np.abs(rate - a) <= 1.0 / T + 1e-6), np.max(np.abs(rate - a))
    # subtraction reset never loses charge: count = floor(a*T) up to float rounding
    assert np.all(np.abs(spikes.sum(axis=1) - np.floor(a.astype(np.float64) * T + 1e-4)) <= 1)
    # and the rate is monotone in the input
    assert np.all(np.diff(spikes.sum(axis=1)) >= 0)


def test_output_signal_average_with_other_threshold_and_dt():
    neuron = IFNeuron(v_thresh=2.0, dt=0.5)
    assert neuron.spike_amplitude == 4.0 == neuron.v_thresh / neuron.dt
    T = 200
    a = np.linspace(0.0, 4.0, 81, dtype=np.float32)   # up to v_thresh / dt
    currents = np.broadcast_to(a[:, None, None], (len(a), T, 1)).copy()
    signal = np.asarray(neuron.run(currents)) * neuron.spike_amplitude
    mean = signal.mean(axis=(1, 2))
    assert np.all(np.abs(mean - a) <= neuron.spike_amplitude / T + 1e-6), np.abs(mean - a).max()
    # the analog input in [0, 1] as in the brief
    low = a <= 1.0
    assert np.all(np.abs(mean[low] - a[low]) <= 4.0 / T + 1e-6)


def _numpy_if(currents, p: IFParams, v_init=0.0):
    """Independent float32 re-implementation of the documented dynamics."""
    currents = np.asarray(currents, np.float32)
    f = np.float32
    v = np.full(currents.shape[:1] + currents.shape[2:], v_init, np.float32)
    refrac = np.zeros_like(v)
    spikes, pots = [], []
    for t in range(currents.shape[1]):
        i = currents[:, t]
        if p.decay != 1.0:
            v = v * f(p.decay)
        integrate = i * f(p.dt)
        if p.refrac_steps > 0:
            integrate = np.where(refrac > 0, f(0), integrate)
        v = v + integrate
        n = np.clip(np.floor(v / f(p.v_thresh)), 0, p.max_spikes_per_dt).astype(np.float32)
        if p.reset == "subtraction":
            v = v - n * f(p.v_thresh)
        else:
            v = np.where(n > 0, f(0), v)
        refrac = np.where(n > 0, f(p.refrac_steps), np.maximum(refrac - 1, 0)).astype(np.float32)
        spikes.append(n)
        pots.append(v)
    return np.stack(spikes, 1), np.stack(pots, 1)


@pytest.mark.parametrize("kwargs", [
    dict(),
    dict(reset="zero"),
    dict(v_thresh=0.7, dt=0.5, tau_refrac=1.0),
    dict(tau_mem=5.0, max_spikes_per_dt=3, v_init=0.3),
    dict(reset="zero", tau_mem=3.0, tau_refrac=2.0, max_spikes_per_dt=2),
])
def test_run_matches_numpy_loop(kwargs):
    rng = np.random.default_rng(7)
    currents = rng.uniform(-0.5, 2.5, size=(3, 25, 4)).astype(np.float32)
    neuron = IFNeuron(**kwargs)
    n, v = neuron.run(currents, return_potentials=True)
    n, v = np.asarray(n), np.asarray(v)
    ref_n, ref_v = _numpy_if(currents, neuron.params, neuron.v_init)
    assert n.shape == currents.shape and v.shape == currents.shape
    np.testing.assert_array_equal(n, ref_n)
    np.testing.assert_allclose(v, ref_v, rtol=0, atol=1e-5)
    assert np.asarray(neuron.run(currents)).shape == currents.shape


def test_run_4d_frames():
    """(B, T, H, W, C) currents: every element is an independent neuron."""
    rng = np.random.default_rng(3)
    currents = rng.uniform(0, 1, size=(2, 12, 3, 3, 2)).astype(np.float32)
    neuron = IFNeuron()
    n = np.asarray(neuron.run(currents))
    flat = currents.reshape(2, 12, -1)
    ref, _ = _numpy_if(flat, neuron.params)
    np.testing.assert_array_equal(n.reshape(2, 12, -1), ref)


# ----------------------------------------------------------------------------- NIR mode

def test_strict_threshold_does_not_fire_on_the_threshold():
    # 0.5 per step reaches exactly 1.0 at step 2: inclusive fires there, strict one step later
    strict = IFParams(reset="zero", strict=True)
    spikes, v, _ = _trace([0.5] * 6, strict)
    np.testing.assert_array_equal(spikes, [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(v, [.5, 1.0, 0, .5, 1.0, 0])
    inclusive, _, _ = _trace([0.5] * 6, IFParams(reset="zero"))
    np.testing.assert_array_equal(inclusive, [0, 1, 0, 1, 0, 1])


def test_reset_to_value():
    # .375 .75 1.125 -> .25, .625, 1.0 (not above), 1.375 -> .25
    spikes, v, _ = _trace([0.375] * 6, IFParams(reset="to_value", v_reset=0.25, strict=True))
    np.testing.assert_array_equal(spikes, [0, 0, 1, 0, 0, 1])
    np.testing.assert_array_equal(v, [.375, .75, .25, .625, 1.0, .25])


def test_strict_threshold_with_several_spikes_per_step():
    # v = 2.0 exactly: two thresholds reached but only one exceeded; v = 2.5: two spikes
    p = IFParams(strict=True, max_spikes_per_dt=3)
    spikes, v, _ = _trace([2.0], p)
    assert spikes[0] == 1 and v[0] == 1.0
    spikes, v, _ = _trace([2.5], p)
    assert spikes[0] == 2 and v[0] == 0.5
    spikes, v, _ = _trace([9.5], p)
    assert spikes[0] == 3 and v[0] == 6.5


def test_nir_mode_neuron_config_roundtrip_and_defaults():
    neuron = IFNeuron(threshold_mode="strict", reset="to_value", v_reset=-0.5)
    assert make_neuron(neuron.get_config()) == neuron
    assert neuron.params.strict and neuron.params.v_reset == -0.5
    # configs saved before these options existed load with the old behaviour
    old = {"model": "if", "v_thresh": 1.0, "reset": "subtraction", "tau_refrac": 0.0,
           "dt": 1.0, "tau_mem": None, "max_spikes_per_dt": 1, "v_init": 0.0}
    assert make_neuron(old).threshold_mode == "inclusive"
    with pytest.raises(ValueError, match="threshold_mode"):
        IFNeuron(threshold_mode="greater")
