"""Spike trains, membrane potentials and first-spike times of a few samples.

For every layer with neurons, a fixed random choice of up to
``max_neurons`` neurons is recorded over the whole simulation of each of
the given samples: their spikes per step and, for the rate code's IF
neurons, their membrane potential after each step. Under the TTFS codes
the first-spike step of *every* neuron is kept too (0 = never fired), for
the distribution of first-spike times. The recordings come from the
layers' sequence mode, which the tests check against the compiled loop.
"""
from __future__ import annotations

import numpy as np


def record_samples(snn, x: np.ndarray, steps: int, max_neurons: int = 64,
                   seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``{layer: {"neurons", "spikes", ["v"], ["first_spike_steps"]}}``."""
    import keras

    from .engine import spiking_layers

    x = np.asarray(x, np.float32)
    k = len(x)
    frames = np.repeat(x[:, None], steps, axis=1)
    rng = np.random.default_rng(seed)
    out = {}
    for lay in spiking_layers(snn):
        if not lay.spiking:                 # a Poisson input layer: nothing to record
            continue
        signal = np.asarray(keras.Model(snn.inputs, lay.output)([frames]))[:k]
        signal = signal.reshape(k, steps, -1)
        if lay.neuron.signal_is_psp:        # TTFS: the output steps from 0 to 1 at the spike
            events = np.diff(signal, axis=1, prepend=0.0)
        else:
            events = signal / lay.spike_amplitude
        n = events.shape[2]
        pick = np.sort(rng.choice(n, size=min(max_neurons, n), replace=False))
        rec = {"neurons": pick, "spikes": events[:, :, pick].astype(np.float32)}
        if not lay.neuron.signal_is_psp:    # IF neurons: their membrane potential too
            inputs = keras.Model(snn.inputs, lay.input)([frames])
            v0 = lay.v_init if lay.initial_potentials else None    # calibrated, per neuron
            _, v = lay.neuron.run(lay.synapse(inputs), return_potentials=True, v0=v0)
            rec["v"] = np.asarray(v).reshape(k, steps, -1)[:, :, pick].astype(np.float32)
            rec["v_thresh"] = np.float32(lay.neuron.v_thresh)
        else:
            fired = events > 0
            rec["first_spike_steps"] = np.where(fired.any(axis=1), fired.argmax(axis=1) + 1,
                                                0).astype(np.int32)
        out[lay.name] = rec
    return out


def first_spike_values(snn, x: np.ndarray, steps: int) -> dict[str, np.ndarray]:
    """Per TTFS layer, every neuron's first-spike time for the samples ``x`` (NaN: it
    did not fire within ``steps``); for ``ttfs_exact`` neurons the value the spike
    carries instead, ``t_max - t_spike`` on the grid (0 without a spike).
    ``{layer: (samples, ...)}``, from the layers' sequence mode."""
    import keras

    from ...neurons import TTFSExactNeuron
    from .engine import spiking_layers

    x = np.asarray(x, np.float32)
    k = len(x)
    layers = [lay for lay in spiking_layers(snn) if lay.spiking and lay.neuron.signal_is_psp]
    if not layers:
        return {}
    frames = np.repeat(x[:, None], steps, axis=1)
    outs = keras.Model(snn.inputs, [lay.output for lay in layers])([frames])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    result = {}
    for lay, psp in zip(layers, outs):
        psp = np.asarray(psp)[:k] > 0                      # (k, T, ...); drop a prospective half
        fired = psp.any(axis=1)
        first = psp.argmax(axis=1)                         # step of the spike, 0-based
        neuron = lay.neuron
        if isinstance(neuron, TTFSExactNeuron):
            result[lay.name] = np.where(fired, (neuron.window[2] - first) * neuron.dt, 0.0)
        else:
            result[lay.name] = np.where(fired, (first + 1) * neuron.dt, np.nan)
    return result
