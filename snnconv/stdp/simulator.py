"""The ``stdp`` simulator entry: runs a trained :class:`STDPNetwork` for the shared evaluation.

The class score after each step is the all-activity vote of the spikes so
far (mean count of the neurons labelled with each class); the proportion
weighting vote after the last step is reported beside it (``proportion``).
SynOps: every input spike reaches all excitatory neurons, every excitatory
spike its inhibitory partner, every inhibitory spike the other excitatory
neurons.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import SnnconvError
from ..simulators.base import BatchOutput, NetworkInfo, Simulator
from . import labels as lab
from .model import STDPNetwork, is_stdp_file, load_stdp
from .training import run_batch


class STDPSimulator(Simulator):
    name = "stdp"
    spike_codes = ("rate",)
    # trained by [stdp] enabled = true, not chosen as simulation.simulator
    configurable = False
    saves = True
    file_suffix = ".npz"

    def convert(self, graph, spike_code: str = "rate", **options):
        raise SnnconvError("STDP networks are trained, not converted from an ANN: set "
                           "[stdp] enabled = true and run the config")

    def accepts(self, snn) -> bool:
        return isinstance(snn, STDPNetwork)

    def info(self, net: STDPNetwork) -> NetworkInfo:
        if not net.labelled:
            raise SnnconvError("the STDP network has no neuron labels yet; label it with "
                               "snnconv.stdp.label_neurons(net, x, y) before evaluating")
        n = net.params.n_exc
        return NetworkInfo(dt=net.dt, ann_macs=0, neurons={"excitatory": n, "inhibitory": n},
                           output_name="excitatory")

    def save(self, net: STDPNetwork, path) -> Path:
        return net.save(self.file_name(path))

    def can_load(self, path: Path) -> bool:
        return Path(path).suffix == self.file_suffix and is_stdp_file(path)

    def load(self, path) -> STDPNetwork:
        return load_stdp(path)

    def run_facts(self, net: STDPNetwork) -> dict:
        return {"stdp_rule": net.rule}

    def simulate_batch(self, net: STDPNetwork, x, steps, *, strategy=None,
                       early_stopping=False) -> BatchOutput:
        x = np.asarray(x, np.float32)
        # a batch's input spikes are drawn from the seed and the batch's content, so
        # evaluating the same samples again gives the same result
        key = (net.params.seed + int(np.round(x.sum() * 1000)) % (1 << 30)) % (1 << 31)
        exc, inh, inputs = run_batch(net, x, steps, key=key)
        cumulative = np.cumsum(exc, axis=1)
        readout = lab.all_activity_scores(cumulative, net.assigned, net.num_classes)
        n = net.params.n_exc
        exc_total = exc.sum(axis=2)
        synops = inputs * n + exc_total + inh * (n - 1)
        return BatchOutput(readout.astype(np.float32),
                           {"excitatory": exc_total, "inhibitory": inh}, synops,
                           {"proportion": lab.proportion_scores(cumulative[:, -1],
                                                                net.proportions)})
