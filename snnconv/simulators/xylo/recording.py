"""Spike trains and membrane potentials of a few samples on the Xylo simulation.

The counterpart of :func:`snnconv.simulators.ini.recording.record_samples` for a
:class:`XyloNetwork`, in the same layout (so results.h5 and the report's
raster and membrane plots read both): per hidden layer and the readout, a
fixed random choice of up to ``max_neurons`` neurons with their spikes per
step and their membrane potential after each step, in units of their own
threshold (``v_thresh`` = 1), since per-neuron quantization gives every
neuron its own integer threshold.
"""
from __future__ import annotations

import numpy as np

from .dynamics import simulate_xylo
from .encoding import encode_events


def record_xylo_samples(net, x, steps: int, max_neurons: int = 64,
                        seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    trace = simulate_xylo(net.spec, encode_events(net, x, steps), record=True)
    rng = np.random.default_rng(seed)
    spec = net.spec
    populations = []
    start = 0
    for name, size in net.layers:
        cols = slice(start, start + size)
        populations.append((name, trace.spikes[:, :, cols], trace.v[:, :, cols],
                            spec.threshold[cols]))
        start += size
    populations.append((net.output_name, trace.spikes_out, trace.v_out, spec.threshold_out))
    out = {}
    for name, spikes, v, threshold in populations:
        n = spikes.shape[2]
        pick = np.sort(rng.choice(n, size=min(max_neurons, n), replace=False))
        out[name] = {"neurons": pick, "spikes": spikes[:, :, pick].astype(np.float32),
                     "v": (v[:, :, pick] / threshold[pick].astype(np.float64))
                     .astype(np.float32),
                     "v_thresh": np.float32(1.0)}
    return out
