"""The ``lif`` simulator: trained LIF networks (a SynNet) in floating point, as trained.

The network runs on sequences: every sample is ``(T, channels)`` event
counts and the run takes its ``T`` steps. The class score after each step
is what the training loss reads: the largest readout membrane so far
(``output="vmem"``) or the readout's spike count so far (``"spikes"``).
SynOps count, per step, every input event and spike times the synapses it
drives (the non-zero weights of its row in the next layer).
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .base import BatchOutput, NetworkInfo, Simulator


def _is_lif_network(net) -> bool:
    layers = getattr(net, "lif_layers", None)
    return bool(layers) and callable(getattr(net, "record", None))


class LIFSimulator(Simulator):
    name = "lif"
    configurable = False           # networks are trained (snnconv train), not converted

    def accepts(self, net) -> bool:
        return _is_lif_network(net)

    def info(self, net) -> NetworkInfo:
        layers = net.lif_layers
        neurons = {layer.name: int(layer.units) for layer in layers}
        channels = int(net.n_channels)

        def check_input(x):
            if x.ndim != 3 or x.shape[2] != channels:
                raise DataError(f"inputs must be (samples, time steps, {channels}) for "
                                f"{net.name}, got shape {x.shape}")
        return NetworkInfo(dt=float(net.dt), ann_macs=0, neurons=neurons,
                           output_name=layers[-1].name, temporal=True,
                           num_classes=int(layers[-1].units), check_input=check_input)

    def simulate_batch(self, net, x, steps, *, strategy=None,
                       early_stopping=False) -> BatchOutput:
        import keras
        rec = net.record(x)
        layers = net.lif_layers
        out = rec[layers[-1].name]
        if layers[-1].output_mode == "vmem":
            readout = np.maximum.accumulate(out["vmem"], axis=1)
        else:
            readout = np.cumsum(out["spikes"], axis=1)
        fan = [(keras.ops.convert_to_numpy(layer.kernel) != 0).reshape(
            layer.kernel.shape[0], -1).sum(axis=1) for layer in layers]
        synops = np.asarray(x, np.float64) @ fan[0]
        spikes = {}
        for i, layer in enumerate(layers):
            s = rec[layer.name]["spikes"]
            spikes[layer.name] = s.sum(axis=2)
            if i + 1 < len(layers):
                synops = synops + s @ fan[i + 1]
        return BatchOutput(readout, spikes, synops)

    def target(self, net) -> str:
        return "simulator lif (floating point, as trained)"
