"""The ``event`` target simulator: ``ttfs_exact`` networks run event-driven, in continuous time.

No time step: every layer's spike times are computed in closed form, one
layer after the other (:mod:`.engine`), so a sample costs about one ANN
forward pass whatever the time resolution. For the shared evaluation the
run is reported on a grid of ``readout_steps`` steps (default 8) of
``dt = t_readout / readout_steps``: the readout after step ``k`` is the
output potential at ``k dt`` (what a readout at that time would give; the
logits at ``t_readout``), spikes and SynOps are binned by spike time, and
every sample's decision time is ``t_readout``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import ConfigError, SnnconvError
from ..base import BatchOutput, NetworkInfo, Simulator
from ...diagnostics import EXACT_VALUE_LABEL
from .network import (DEFAULT_READOUT_STEPS, EventNetwork, build_event_network, is_event_file,
                      load_event_network)


class EventSimulator(Simulator):
    name = "event"
    spike_codes = ("ttfs_exact",)
    saves = True
    file_suffix = ".npz"
    needs_steps = False

    def convert(self, graph, spike_code: str = "ttfs_exact", *, clip_windows: bool = False,
                max2avg_pool: bool = False, readout_steps: int = DEFAULT_READOUT_STEPS,
                activation_max: dict | None = None) -> EventNetwork:
        """``clip_windows``: windows of length 1 (the normalisation scale) instead of
        each layer's largest activation: lower latency, activations above the scale
        clipped. ``readout_steps``: the grid the run is reported on.
        ``activation_max``: node -> largest normalised activation, in place of what
        :func:`snnconv.normalize` recorded in the graph."""
        self.check_spike_code(spike_code)
        if not graph.scales:
            import logging
            logging.getLogger(__name__).warning(
                "graph %r is not normalised; converting its weights as they are", graph.name)
        return build_event_network(graph, clip=clip_windows, max2avg_pool=max2avg_pool,
                                   readout_steps=readout_steps, activation_max=activation_max)

    def options_from_config(self, config) -> dict:
        self.check_config(config)
        if config.input.poisson_input:
            raise ConfigError("input.poisson_input = true cannot be used with "
                              "simulation.simulator = event: the analog input enters as a "
                              "current over the first time window; set it to false")
        return dict(max2avg_pool=config.conversion.max2avg_pool)

    def accepts(self, net) -> bool:
        return isinstance(net, EventNetwork)

    def info(self, net: EventNetwork) -> NetworkInfo:
        return NetworkInfo(dt=net.dt, ann_macs=net.ann_macs, neurons=net.neurons,
                           output_name=net.windows.output, spike_code="ttfs_exact",
                           decision_time=net.windows.t_readout)

    def num_steps(self, net: EventNetwork) -> int:
        return net.readout_steps

    def simulate_batch(self, net: EventNetwork, x, steps, *, strategy=None,
                       early_stopping=False) -> BatchOutput:
        from .engine import simulate
        if int(steps) != net.readout_steps:
            raise SnnconvError(f"the event simulator reports {net.readout_steps} readout "
                               f"steps, not {steps}")
        readout, spikes, synops, clipped = simulate(net, x)
        for name, c in clipped.items():
            net.clipped[name] = net.clipped.get(name, 0) + int(c.sum())
            net.counted[name] = net.counted.get(name, 0) + int(len(x) * net.neurons[name])
        return BatchOutput(readout, spikes, synops)

    def save(self, net: EventNetwork, path) -> Path:
        return net.save(self.file_name(path))

    def can_load(self, path: Path) -> bool:
        return Path(path).suffix == self.file_suffix and is_event_file(path)

    def load(self, path) -> EventNetwork:
        return load_event_network(path)

    def summary_lines(self, net: EventNetwork) -> list[str]:
        return net.windows.describe()

    def run_facts(self, net: EventNetwork) -> dict:
        w = net.windows
        facts = {"t_readout": w.t_readout, "time_windows": list(w.lengths),
                 "windows_clipped_at_scale": w.clipped}
        if net.counted:
            facts["clipped_activations"] = {n: net.clipped.get(n, 0) for n in w.neurons}
            facts["clipped_fraction"] = net.clipping()
        return facts

    def record_samples(self, net: EventNetwork, x, steps: int, max_neurons: int = 64,
                       seed: int = 0):
        """Every neuron's exact spike time (``first_spike_times``, NaN = none) and the
        grid step it falls in (``first_spike_steps``, 0 = none), and the spikes of up
        to ``max_neurons`` neurons per layer on the grid."""
        from .engine import spike_times
        times = spike_times(net, x)
        rng = np.random.default_rng(seed)
        k, dt = len(x), net.dt
        out = {}
        for name, t in times.items():
            t = t.reshape(k, -1)
            fired = np.isfinite(t)
            steps_ = np.where(fired, np.clip(np.ceil(t / dt - 1e-9), 1, steps), 0).astype(np.int32)
            pick = np.sort(rng.choice(t.shape[1], size=min(max_neurons, t.shape[1]),
                                      replace=False))
            spikes = np.zeros((k, steps, len(pick)), np.float32)
            ks, js = np.nonzero(steps_[:, pick] > 0)
            spikes[ks, steps_[:, pick][ks, js] - 1, js] = 1.0
            out[name] = {"neurons": pick, "spikes": spikes, "first_spike_steps": steps_,
                         "first_spike_times": np.where(fired, t, np.nan).astype(np.float32)}
        return out

    def diagnostics(self, graph, net: EventNetwork, x, steps: int):
        """Per neuron node: the normalised ANN activation against the value its spike
        carries, ``t_max - t_spike`` (equal but where clipped at the window)."""
        from ...diagnostics import ann_vs_values
        from .engine import layer_values
        values = layer_values(net, x)
        return ann_vs_values(graph, x, {n: values[n] for n in net.windows.neurons
                                        if n in {m.name for m in graph}},
                             label=EXACT_VALUE_LABEL)
