"""The ``brian2`` target simulator: the rate-coded network run by Brian 2.

Samples of a batch run one after another through the same network (built
once, restored to its initial state before each sample): Brian 2 code
generation and the synapse tables are paid once per network, and memory
does not grow with the batch.
"""
from __future__ import annotations

import numpy as np

from ...errors import DataError, SnnconvError
from ..base import BatchOutput, NetworkInfo, Simulator, if_neuron_options
from .network import Brian2Network, build_brian2_network


class Brian2Simulator(Simulator):
    name = "brian2"
    spike_codes = ("rate",)

    def convert(self, graph, spike_code: str = "rate", **options) -> Brian2Network:
        """Options: the INI simulator's cell and input options, plus ``codegen_target``
        (``"numpy"`` or ``"cython"``)."""
        code = self.check_spike_code(spike_code)
        # burst is one of the INI neurons' options; Brian 2's fire once a step
        self.check_burst(options.pop("burst", 1), code)
        return build_brian2_network(graph, **options)

    def options_from_config(self, config) -> dict:
        self.check_config(config)
        # the same neurons as the INI simulator's rate code, run by Brian 2
        options = if_neuron_options(config)
        options["codegen_target"] = config.brian2.codegen_target
        return options

    def accepts(self, snn) -> bool:
        return isinstance(snn, Brian2Network)

    def info(self, net: Brian2Network) -> NetworkInfo:
        def check_input(xb):
            if net.poisson and (xb.min() < 0 or xb.max() > net.input_amplitude):
                raise DataError(
                    f"Poisson input needs values in [0, {net.input_amplitude:g}] "
                    f"(1000 / (input_rate * dt)); the data spans [{xb.min():g}, {xb.max():g}]")

        counts = net.neuron_counts()
        return NetworkInfo(dt=net.dt, ann_macs=net.ann_macs, neurons=counts,
                           output_name=net.plan.output_name,
                           decides=net.plan.output_name in counts, spike_code="rate",
                           check_input=check_input)

    def simulate_batch(self, net: Brian2Network, x, steps, *, strategy=None,
                       early_stopping=False) -> BatchOutput:
        x = np.asarray(x, np.float64)
        if x.reshape(len(x), -1).shape[1] != net.plan.input_size:
            raise SnnconvError(f"inputs of shape {x.shape[1:]} do not fit the network's input "
                               f"{net.input_shape}")
        runs = [net.run_sample(sample, int(steps)) for sample in x]
        names = list(net.neuron_counts())
        return BatchOutput(np.stack([r["readout"] for r in runs]),
                           {n: np.stack([r["spikes"][n] for r in runs]) for n in names},
                           np.stack([r["synops"] for r in runs]))
