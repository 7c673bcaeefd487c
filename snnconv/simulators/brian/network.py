"""A converted network as a Brian 2 ``Network``, built once and run sample after sample.

One ``NeuronGroup`` per layer with neurons, integrate-and-fire as in the
INI simulator (:mod:`snnconv.neurons.integrate_fire`); one ``Synapses``
object per (source, target) pair from :func:`.maps.plan_layers`; the output
layer (softmax / linear) is a group that only accumulates its input
current, which is the readout.

Time step ``t`` of the INI simulator runs every layer in order, each one
seeing the spikes the layers before it emitted in the same step. Brian 2
runs the objects of a step by their ``when`` slot and ``order``; here every
group's threshold, reset and outgoing synapses share the ``thresholds``
slot, ordered by layer, so a spike reaches the next layer within the step:

* ``start``: every group leaks (``v *= exp(-dt / tau_mem)``), adds its
  constant current ``bias * dt`` (network bias plus, for an analog input,
  the input's current) unless refractory, and counts down its refractory
  steps; the output group adds its constant current to its accumulator;
* ``thresholds``, layer by layer: threshold, reset, then the layer's spikes
  add ``w * v_thresh`` (one spike of amplitude ``v_thresh / dt`` over
  ``dt``) to the next layers' ``v`` (unless refractory) or ``w * v_thresh / dt``
  to the output accumulator;
* ``end``: monitors record spikes and the accumulator.

The network is built and ``store()``-d once; each sample ``restore()``-s
it, sets the constant currents (or Poisson rates) and runs.
"""
from __future__ import annotations

import math
import shutil

import numpy as np

from ... import defaults
from ...ann import count_macs
from ...choices import BRIAN2_CODEGEN_TARGETS as CODEGEN_TARGETS, SIMULATOR_REQUIRES
from ...errors import ConfigError, MissingDependencyError, SnnconvError
from ...ir import Graph
from ...synops import fanout_maps
from .maps import LayerPlan, plan_layers

BRIAN2_INSTALL_HINT = SIMULATOR_REQUIRES["brian2"][1]


def require_brian2():
    """The ``brian2`` module, or a :class:`MissingDependencyError` that says how to install it."""
    try:
        import brian2
    except ImportError as e:
        raise MissingDependencyError(
            f"simulation.simulator = brian2 needs the optional package 'brian2' ({e}); "
            f"{BRIAN2_INSTALL_HINT}") from None
    return brian2


class Brian2Network:
    """A converted network in Brian 2, with what the evaluation needs to know about it."""

    def __init__(self, graph: Graph, plan: LayerPlan, *, v_thresh: float, reset: str,
                 refrac_steps: int, dt: float, decay: float, v_init: float, strict: bool,
                 v_reset: float, poisson_input: bool, input_rate: float, seed: int | None,
                 codegen_target: str):
        b2 = require_brian2()
        self.name = f"{graph.name}_brian2"
        self.plan = plan
        self.dt = float(dt)
        self.v_thresh = float(v_thresh)
        self.poisson = bool(poisson_input)
        self.input_rate = float(input_rate)
        self.seed = seed
        self.codegen_target = codegen_target
        self._runs = 0
        self.ann_macs = int(sum(count_macs(graph).values()))
        self.input_shape = tuple(graph.input_node.output_shape)
        self.input_layer_name = f"{plan.input_name}_spikes"
        # one input spike: amplitude 1000 / (input_rate * dt), as SpikeInput
        self.input_amplitude = 1000.0 / (self.input_rate * self.dt)

        b2.prefs.codegen.target = codegen_target
        clock = b2.Clock(dt=self.dt * b2.ms)
        objects = []
        self.groups, self.monitors = {}, {}
        spike_amp = {name: self.v_thresh / self.dt for name in plan.spiking}
        if self.poisson:
            group = b2.PoissonGroup(plan.input_size, rates=0 * b2.Hz, clock=clock)
            group.thresholder["spike"].when = "thresholds"
            group.thresholder["spike"].order = 0
            self.groups[plan.input_name] = group
            spike_amp[plan.input_name] = self.input_amplitude
        order = {plan.input_name: 0}
        for k, name in enumerate(plan.spiking, start=1):
            order[name] = 3 * k
            # per-neuron initial potentials (a fine-tuned network's), in thresholds
            v0 = graph[name].params.get("v_init")
            v0 = v_init if v0 is None else \
                np.asarray(v0, np.float64).reshape(-1) * float(v_thresh)
            self.groups[name] = self._neurons(b2, clock, plan.sizes[name], v_thresh, reset,
                                              refrac_steps, decay, v0, strict, v_reset)
        out = plan.output_name
        if not plan.output_spiking:
            group = b2.NeuronGroup(plan.sizes[out], "acc : 1\nbias : 1", clock=clock)
            group.run_regularly("acc = acc + bias", when="start")
            self.groups[out] = group
            self.readout_monitor = b2.StateMonitor(group, "acc", record=True, when="end",
                                                   clock=clock)
            objects.append(self.readout_monitor)
        # constant currents (per spiking layer and the output): network bias, and the
        # map that turns the analog input into current
        self.const, self.input_maps = {}, {}
        self.synapses = []
        for target, current in plan.currents.items():
            self.const[target] = current.const
            to_readout = target == out and not plan.output_spiking
            for source, m in current.maps.items():
                if source == plan.input_name and not self.poisson:
                    self.input_maps[target] = m
                    continue
                if len(m) == 0:
                    continue
                per_spike = spike_amp[source] * (1.0 if to_readout else self.dt)
                code = "acc_post += w" if to_readout else \
                    ("v_post += w * gate_post" if refrac_steps > 0 else "v_post += w")
                syn = b2.Synapses(self.groups[source], self.groups[target], "w : 1 (constant)",
                                  on_pre=code, clock=clock)
                syn.connect(i=m.pre, j=m.post)
                syn.w = m.w * per_spike
                syn.pre.when = "thresholds"
                syn.pre.order = order[source] + 2
                self.synapses.append(syn)
        for name in ([plan.input_name] if self.poisson else []) + plan.spiking:
            self.monitors[name] = b2.SpikeMonitor(self.groups[name], record=True, when="end")
        self._order_layers()
        objects += list(self.groups.values()) + self.synapses + list(self.monitors.values())
        sources = [plan.input_name] + plan.spiking
        self.fanout = {k: np.asarray(v, np.float64).ravel()
                       for k, v in fanout_maps(graph, sources).items()}
        self.network = b2.Network(*objects)
        self.network.store("initial")
        self._b2 = b2

    @staticmethod
    def _neurons(b2, clock, n, v_thresh, reset, refrac_steps, decay, v_init, strict, v_reset):
        vt = repr(float(v_thresh))
        threshold = f"v > {vt}" if strict else f"v >= {vt}"
        resets = {"subtraction": f"v = v - {vt}", "zero": "v = 0",
                  "to_value": f"v = {float(v_reset)!r}"}
        reset_code = resets[reset]
        leak = "" if decay == 1.0 else f" * {float(decay)!r}"
        dt = repr(float(clock.dt_ * 1000.0))
        if refrac_steps > 0:
            reset_code += f"\nrefrac = {float(refrac_steps)!r}"
            start = (f"gate = int(refrac < 0.5)\nv = v{leak} + gate * bias * {dt}\n"
                     "refrac = refrac - int(refrac > 0.5)")
        else:
            start = f"v = v{leak} + bias * {dt}"
        group = b2.NeuronGroup(n, "v : 1\nbias : 1\ngate : 1\nrefrac : 1", threshold=threshold,
                               reset=reset_code, clock=clock)
        group.v = v_init if isinstance(v_init, np.ndarray) else float(v_init)
        group.run_regularly(start, when="start")
        return group

    def _order_layers(self):
        for k, name in enumerate(self.plan.spiking, start=1):
            group = self.groups[name]
            group.thresholder["spike"].when = "thresholds"
            group.thresholder["spike"].order = 3 * k
            group.resetter["spike"].when = "thresholds"
            group.resetter["spike"].order = 3 * k + 1

    def neuron_counts(self) -> dict:
        counts = {self.input_layer_name: self.plan.input_size} if self.poisson else {}
        counts.update({n: self.plan.sizes[n] for n in self.plan.spiking})
        return counts

    def layer_key(self, name: str) -> str:
        return self.input_layer_name if name == self.plan.input_name else name

    def run_sample(self, x: np.ndarray, steps: int, with_counts: bool = False) -> dict:
        """Simulate one sample ``x`` (flat) for ``steps`` steps.

        Returns ``readout (T, classes)``, ``spikes {layer: (T,)}``, ``synops (T,)``
        and, with ``with_counts``, ``counts {layer: (neurons,)}`` (spikes per neuron).
        """
        b2 = self._b2
        b2.prefs.codegen.target = self.codegen_target
        net = self.network
        net.restore("initial")
        plan = self.plan
        x = np.asarray(x, np.float64).ravel()
        for target, const in self.const.items():
            current = const
            if target in self.input_maps:
                current = current + self.input_maps[target].apply(x)
            self.groups[target].bias = current
        if self.poisson:
            self.groups[plan.input_name].rates = x * self.input_rate * b2.Hz
        if self.poisson and self.seed is not None:
            # reproducible, and a different draw for every sample run by this network
            b2.seed(self.seed + self._runs)
        self._runs += 1
        net.run(steps * self.dt * b2.ms, namespace={})
        dt_s = self.dt * 1e-3
        spikes, counts = {}, {}
        synops = np.zeros(steps)
        if not self.poisson:
            # a constant current: its non-zero values are delivered once, in the first step
            synops[0] += self.fanout[plan.input_name][x != 0].sum()
        out_spikes = None
        for name, mon in self.monitors.items():
            i = np.asarray(mon.i[:], np.int64)
            t = np.rint(np.asarray(mon.t_[:]) / dt_s).astype(np.int64)
            spikes[self.layer_key(name)] = np.bincount(t, minlength=steps)[:steps].astype(float)
            synops += np.bincount(t, weights=self.fanout[name][i], minlength=steps)[:steps]
            if with_counts:
                counts[self.layer_key(name)] = np.bincount(i, minlength=plan.sizes.get(
                    name, plan.input_size))
            if name == plan.output_name:
                out_spikes = np.zeros((steps, plan.sizes[name]))
                np.add.at(out_spikes, (t, i), self.v_thresh / self.dt)
        if plan.output_spiking:
            readout = np.cumsum(out_spikes, axis=0)
        else:
            readout = np.asarray(self.readout_monitor.acc[:]).T[:steps]
        result = {"readout": readout, "spikes": spikes, "synops": synops}
        if with_counts:
            result["counts"] = counts
        return result


def build_brian2_network(graph: Graph, *, v_thresh: float = 1.0, reset: str = "subtraction",
                         tau_refrac: float = 0.0, dt: float = 1.0, tau_mem: float | None = None,
                         max_spikes_per_dt: int = 1, v_init: float = defaults.V_INIT,
                         threshold_mode: str = "inclusive", v_reset: float = 0.0,
                         poisson_input: bool = False, input_rate: float = 1000.0,
                         seed: int | None = None, max2avg_pool: bool = False,
                         codegen_target: str = "numpy") -> Brian2Network:
    """Build the Brian 2 network of a (normalised) graph; the options are the INI simulator's."""
    if int(max_spikes_per_dt) != 1:
        raise ConfigError(f"cell.max_spikes_per_dt = {max_spikes_per_dt} cannot be used with "
                          "simulation.simulator = brian2: a Brian 2 neuron fires at most once "
                          "per time step; set it to 1")
    if codegen_target not in CODEGEN_TARGETS:
        raise ConfigError(f"brian2.codegen_target = {codegen_target}: allowed "
                          f"{', '.join(CODEGEN_TARGETS)}")
    require_brian2()
    plan = plan_layers(graph, max2avg_pool=max2avg_pool)
    if codegen_target == "cython":
        try:
            import Cython  # noqa: F401
        except ImportError:
            raise SnnconvError("brian2.codegen_target = cython needs the package 'Cython' and "
                               "a C++ compiler; use codegen_target = numpy") from None
        if not any(shutil.which(c) for c in ("c++", "g++", "clang++")):
            raise SnnconvError("brian2.codegen_target = cython: no C++ compiler found; use "
                               "codegen_target = numpy")
    decay = 1.0 if tau_mem is None else math.exp(-float(dt) / float(tau_mem))
    return Brian2Network(graph, plan, v_thresh=v_thresh, reset=reset,
                         refrac_steps=int(round(float(tau_refrac) / float(dt))), dt=dt,
                         decay=decay, v_init=v_init, strict=threshold_mode == "strict",
                         v_reset=v_reset, poisson_input=poisson_input, input_rate=input_rate,
                         seed=seed, codegen_target=codegen_target)
