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
            _, v = lay.neuron.run(lay.synapse(inputs), return_potentials=True)
            rec["v"] = np.asarray(v).reshape(k, steps, -1)[:, :, pick].astype(np.float32)
            rec["v_thresh"] = np.float32(lay.neuron.v_thresh)
        else:
            fired = events > 0
            rec["first_spike_steps"] = np.where(fired.any(axis=1), fired.argmax(axis=1) + 1,
                                                0).astype(np.int32)
        out[lay.name] = rec
    return out
