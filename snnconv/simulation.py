"""Running a Spike* Keras model over a batch, all time steps in one compiled call.

:func:`simulate_batch` feeds the input frames ``(batch, time, ...)`` to a
*probe*: a Keras model that wraps the SNN's own layers and returns, besides
the accumulated readout, small per-step summaries computed inside the graph
(spike counts per layer, synaptic operations), so the big spike tensors
never leave the device. Keras compiles the probe once per input shape and
reuses it for every batch.
"""
from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

import keras
import numpy as np
from keras import ops

from .layers import SpikeInput, SpikeLayer


@dataclasses.dataclass
class BatchOutput:
    """Per-step results of one batch (``B`` samples, ``T`` steps)."""

    readout: np.ndarray                   # (B, T, classes): accumulated output signal
    spikes: dict[str, np.ndarray]         # layer -> (B, T) spikes emitted per step
    synops: np.ndarray                    # (B, T) synaptic operations per step


def input_layer(snn: keras.Model) -> SpikeInput:
    for layer in snn.layers:
        if isinstance(layer, SpikeInput):
            return layer
    raise ValueError(f"model {snn.name!r} has no SpikeInput layer; it is not a snnconv SNN")


def spiking_layers(snn: keras.Model) -> list[SpikeLayer]:
    """Layers whose output is spikes, in order (the input when Poisson-coded)."""
    return [lay for lay in snn.layers
            if isinstance(lay, SpikeLayer) and lay.spike_amplitude is not None]


def num_steps(snn: keras.Model, duration: float) -> int:
    dt = input_layer(snn).dt
    steps = duration / dt
    if steps < 1 or abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ValueError(f"duration {duration} is not a whole number (>= 1) of time steps "
                         f"dt = {dt}")
    return int(round(steps))


def encode(x: np.ndarray, steps: int) -> np.ndarray:
    """Input frames: the same analog frame at every step (the input layer may
    turn it into Poisson spikes inside the graph)."""
    x = np.asarray(x, dtype=np.float32)
    return np.ascontiguousarray(np.broadcast_to(x[:, None], (x.shape[0], steps) + x.shape[1:]))


def simulate_batch(snn: keras.Model, x: np.ndarray, steps: int) -> BatchOutput:
    """Simulate ``steps`` time steps of the SNN on the batch ``x`` (no time axis)."""
    probe, names = _probe(snn)
    out = probe.predict_on_batch(encode(x, steps))
    readout, synops, *spikes = [np.asarray(o) for o in out]
    return BatchOutput(readout, dict(zip(names, spikes)), synops)


@lru_cache(maxsize=8)
def _probe(snn: keras.Model):
    layers = spiking_layers(snn)
    inp = input_layer(snn)

    def per_step(t):
        return ops.sum(t, axis=tuple(range(2, len(t.shape))))

    spikes = [per_step(lay.output / lay.spike_amplitude) for lay in layers]
    synops = []
    for lay in [inp] + [lay for lay in layers if lay is not inp]:
        events = (lay.output / lay.spike_amplitude if lay.spike_amplitude is not None
                  else ops.cast(ops.not_equal(lay.output, 0), "float32"))
        fan = ops.convert_to_tensor(np.asarray(lay.fanout.numpy(), dtype="float32"))
        synops.append(per_step(events * fan))
    total_synops = synops[0] if len(synops) == 1 else keras.layers.Add()(synops)
    readout = ops.cumsum(snn.output, axis=1)
    probe = keras.Model(snn.input, [readout, total_synops, *spikes], name=f"{snn.name}_probe")
    return probe, [lay.name for lay in layers]


def neuron_count(layer: SpikeLayer) -> int:
    return int(math.prod(layer.output.shape[2:]))
