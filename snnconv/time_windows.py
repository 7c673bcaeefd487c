"""Time windows of the exact TTFS mapping (``spike_code = ttfs_exact``).

After Stanojevic et al., "An exact mapping from ReLU networks to spiking
neural networks" (Neural Networks 2023) and "High-performance deep spiking
neural networks with 0.3 spikes per neuron" (Nature Communications 2024).
The plan is computed from a normalised IR graph alone; both the event-driven
simulator (:mod:`snnconv.simulators.event`) and the clocked INI simulator
run it.

Clocks. Every node's value lives in one time window, its *clock* ``c``:

* the analog input is clock 0: a constant current over the input window
  ``[0, T(0))``, ``T(0) = 1``;
* a node with neurons (a ReLU node other than the output) is one clock
  later than its latest input: ``c = 1 + max(c_inputs)``. Its neurons
  integrate their inputs during window ``c - 1`` and may fire, once, inside
  their own window ``[t_min(c), t_max(c))``;
* every other node (linear weight layers, pooling, flatten, padding,
  concatenation, add) stays on the clock of its latest input: it is either
  a *spike* signal (max pooling, routing of spikes: the spikes of its
  inputs, unchanged) or a *current* (anything linear in its inputs, which
  the next neurons integrate: its synapses fold into theirs).

Max pooling of a current of a later clock than the input's (a signed,
linear signal) has neither form; the simulators first rewrite it into
neurons that carry the signal shifted onto a bounded non-negative range,
the pooling of their spikes and a current that shifts it back
(:mod:`snnconv.signed_max_pool`).

Windows. ``t_min(c) = t_max(c - 1)`` and the window length ``T(c)`` is the
largest normalised activation of the neuron nodes of clock ``c`` on the
normalisation data (``graph.metadata["activation_max"]``, recorded by
:func:`snnconv.normalize`), and at least 1 (the normalisation scale). With
``clip=True`` every window is 1: activations above the normalisation scale
(the percentile) are clipped, trading exactness for latency.

The algebra (neuron ``i`` of a node at clock ``c``, inputs ``j`` at clock
``c - 1`` spiking at ``t_j = t_max(c-1) - x_j``, or never when ``x_j = 0``):
until ``t_min(c) = t_max(c-1)`` its potential rises by ``W_ij`` per unit of
time after each input spike; the bias comes in as a constant current
``b_i / T(c-1)`` over the input window. So

    V_i(t_min(c)) = sum_j W_ij (t_min(c) - t_j) + b_i = sum_j W_ij x_j + b_i,

where a silent input contributes nothing, as ``x_j = 0`` should. From
``t_min(c)`` on the input currents stop and the potential rises with slope
1; the threshold is ``T(c)``; the neuron may fire only inside its window.
It crosses at ``t_max(c) - V_i(t_min(c))``: it fires at

    t_i = t_max(c) - min(ReLU(sum_j W_ij x_j + b_i), T(c))

(at ``t_min(c)`` when the potential already exceeds the threshold there,
i.e. the activation is clipped at ``T(c)``; never when it is <= 0). The
value a spike carries is ``x_i = t_max(c) - t_i``: the ReLU, exactly.

Branches. ``Add`` and ``Concatenate`` (any node with several inputs) read
all inputs on the clock of the latest one; an input of an earlier clock
``c_j`` is delayed by ``t_max(c) - t_max(c_j)`` (a synaptic delay), which
keeps ``x = t_max - t`` on the common clock.

Output. The output node has no threshold: its potential at the end of its
integration window, ``t_readout = t_max(c_out)``, is its pre-activation (the
ANN's logit; softmax is monotone), which is the class score.
"""
from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np

from .errors import SnnconvError
from .ir import ROUTING_OPS, Graph

log = logging.getLogger(__name__)

# length of the input window: the analog input is a constant current over [0, 1)
INPUT_WINDOW = 1.0
# ops that pass spikes on unchanged (a spike signal stays one)
_ROUTING = ROUTING_OPS


@dataclasses.dataclass(frozen=True)
class TimeWindows:
    """Clocks, windows and delays of a network under ``ttfs_exact``."""

    clocks: dict            # node -> clock of its value (0: the analog input)
    spikes: dict            # node -> True for a spike signal, False for a current
    neurons: tuple          # nodes with neurons (they spike), in graph order
    lengths: tuple          # T(c) for c = 0 .. readout clock
    output: str             # the output node
    # (node, input) -> (clock of the input, clock it is read on) for inputs read later
    delays: dict
    # weight node -> clocks of the windows in which its output is integrated
    # downstream (one, but for a linear layer read on several clocks); the
    # clocked simulator spreads its bias over that window
    bias_clocks: dict
    clipped: bool = False   # windows of length 1 (the normalisation scale), not the maxima
    # neuron nodes whose largest activation was not recorded (their window is 1)
    unmeasured: tuple = ()
    # neuron node -> the largest value its spikes carry where that is below its
    # window's length (a number or one per channel): a ReLU's max_value. They fire
    # no earlier than t_max - ceiling
    ceilings: dict = dataclasses.field(default_factory=dict)

    @property
    def readout_clock(self) -> int:
        return self.clocks[self.output]

    def t_max(self, clock: int) -> float:
        return float(math.fsum(self.lengths[:clock + 1]))

    def t_min(self, clock: int) -> float:
        return self.t_max(clock) - self.lengths[clock]

    @property
    def t_readout(self) -> float:
        """When the output is read: the end of its integration window."""
        return self.t_max(self.readout_clock)

    def window(self, node: str) -> tuple[float, float]:
        """``(t_min, t_max)`` of the window in which the node's spikes (or values) lie."""
        c = self.clocks[node]
        return self.t_min(c), self.t_max(c)

    def ceiling(self, node: str):
        """The largest value the spikes of neuron node ``node`` carry: its window's
        length, or its ceiling (a float, or a numpy array per channel)."""
        length = self.lengths[self.clocks[node]]
        if node not in self.ceilings:
            return length
        return np.minimum(np.asarray(self.ceilings[node], np.float64), length)

    def delay(self, node: str, src: str) -> float:
        """The synaptic delay of ``src``'s signal where ``node`` reads it (0 if none)."""
        if (node, src) not in self.delays:
            return 0.0
        a, b = self.delays[(node, src)]
        return self.t_max(b) - self.t_max(a)

    def describe(self) -> list[str]:
        rows = [f"ttfs_exact time windows (readout at t = {self.t_readout:.4g}):"]
        for c, length in enumerate(self.lengths):
            names = [n for n in self.neurons if self.clocks[n] == c] if c else ["input"]
            rows.append(f"  window {c}: [{self.t_min(c):.4g}, {self.t_max(c):.4g})  "
                        f"T = {length:.4g}  {', '.join(names) or '-'}")
        for (node, src), (a, b) in self.delays.items():
            rows.append(f"  delay {src} -> {node}: {self.t_max(b) - self.t_max(a):.4g} "
                        f"(window {a} read on window {b})")
        return rows

    def to_dict(self) -> dict:
        """Plain JSON types (for saving)."""
        return {"clocks": dict(self.clocks), "spikes": dict(self.spikes),
                "neurons": list(self.neurons), "lengths": list(self.lengths),
                "output": self.output,
                "delays": [[n, s, a, b] for (n, s), (a, b) in self.delays.items()],
                "bias_clocks": {k: list(v) for k, v in self.bias_clocks.items()},
                "clipped": self.clipped, "unmeasured": list(self.unmeasured),
                "ceilings": {k: np.asarray(v).tolist() for k, v in self.ceilings.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "TimeWindows":
        return cls(clocks={k: int(v) for k, v in d["clocks"].items()},
                   spikes={k: bool(v) for k, v in d["spikes"].items()},
                   neurons=tuple(d["neurons"]), lengths=tuple(float(v) for v in d["lengths"]),
                   output=d["output"],
                   delays={(n, s): (int(a), int(b)) for n, s, a, b in d["delays"]},
                   bias_clocks={k: tuple(int(c) for c in v) for k, v in d["bias_clocks"].items()},
                   clipped=bool(d["clipped"]), unmeasured=tuple(d.get("unmeasured", ())),
                   ceilings=dict(d.get("ceilings", {})))


def is_subsampling(node) -> bool:
    """A max pooling of 1x1 windows (ResNet50V2's strided shortcuts): it only picks
    values, a routing of spikes or of a current alike."""
    return node.op == "max_pool2d" and tuple(int(k) for k in node.params["pool_size"]) == (1, 1)


def signals(graph: Graph, max2avg_pool: bool = False, exact: bool = True):
    """``(clocks, spikes, neurons)`` of a graph: every node's clock, whether its value
    is a spike signal (else a current), and the nodes with neurons, in graph order.

    ``exact``: max pooling of a current of a clock after the input's is an error
    (it has no spike-time form; :func:`snnconv.signed_max_pool.shift_signed_max_pools`
    rewrites it into neurons that have one).
    """
    out = graph.output_node
    clocks: dict[str, int] = {}
    spikes: dict[str, bool] = {}
    neurons: list[str] = []
    for node in graph:
        if node.op == "input":
            clocks[node.name], spikes[node.name] = 0, False
            continue
        latest = max(clocks[s] for s in node.inputs)
        if node is not out and node.activation == "relu":
            clocks[node.name], spikes[node.name] = latest + 1, True
            neurons.append(node.name)
            continue
        if node.activation == "softmax" and node is not out:
            raise SnnconvError(f"node {node.name!r}: softmax is only supported on the output")
        clocks[node.name] = latest
        if node.op == "max_pool2d" and not max2avg_pool and not is_subsampling(node):
            src = node.inputs[0]
            if not spikes[src] and clocks[src] > 0 and exact:
                raise SnnconvError(
                    f"node {node.name!r}: max pooling of {src!r}, a linear (non-spiking) "
                    "signal, has no exact spike-time form under ttfs_exact (only the "
                    "earliest of a window's spikes is); rewrite the graph with "
                    "snnconv.signed_max_pool.shift_signed_max_pools (the simulators do), "
                    "put the ReLU before the pooling or set max2avg_pool")
            spikes[node.name] = spikes[src]
        elif (node.op in _ROUTING or is_subsampling(node)) and node is not out:
            spikes[node.name] = all(spikes[s] for s in node.inputs)
        else:
            spikes[node.name] = False
    return clocks, spikes, neurons


def plan_windows(graph: Graph, clip: bool = False, max2avg_pool: bool = False,
                 activation_max: dict | None = None, exact: bool = True) -> TimeWindows:
    """The :class:`TimeWindows` of a normalised graph.

    ``activation_max``: node -> largest normalised activation; by default
    ``graph.metadata["activation_max"]`` (recorded by :func:`snnconv.normalize`).
    A neuron node without one gets a window of 1 (with a warning): its
    activations above the normalisation scale are then clipped.
    ``max2avg_pool``: max pooling runs as average pooling (a current).
    ``exact=False``: only the clocks and delays are wanted (the other TTFS
    codes' merges): max pooling of a current is then a current, not an error.
    """
    maxima = dict(graph.metadata.get("activation_max") or {}) if activation_max is None \
        else dict(activation_max)
    out = graph.output_node
    clocks, spikes, neurons = signals(graph, max2avg_pool=max2avg_pool, exact=exact)
    readout = clocks[out.name]
    base, unmeasured = window_lengths(clocks, neurons, maxima, clip)
    lengths = [INPUT_WINDOW] + [base[c] for c in range(1, readout + 1)]
    if unmeasured:
        log.warning("ttfs_exact: no recorded largest activation for %s (normalise the graph "
                    "with snnconv.normalize); their windows are 1, so activations above the "
                    "normalisation scale are clipped", ", ".join(unmeasured))
    ceilings = {}
    for name in neurons:
        bound = carried_bound(graph, name, clocks[name], base)
        if np.any(np.asarray(bound) < base[clocks[name]]):
            ceilings[name] = bound
    delays = {}
    for node in graph:
        if len(node.inputs) > 1:
            latest = max(clocks[s] for s in node.inputs)
            for s in node.inputs:
                if clocks[s] < latest:
                    delays[(node.name, s)] = (clocks[s], latest)
    return TimeWindows(clocks=clocks, spikes=spikes, neurons=tuple(neurons),
                       lengths=tuple(lengths), output=out.name, delays=delays,
                       bias_clocks=_bias_clocks(graph, clocks, set(neurons)),
                       clipped=bool(clip), unmeasured=tuple(unmeasured), ceilings=ceilings)


def window_lengths(clocks: dict, neurons, maxima: dict, clip: bool) -> tuple:
    """``({clock: length}, unmeasured)``: each window's length, the largest recorded
    activation of its neuron nodes and at least 1 (1 with ``clip``), and the neuron
    nodes without a recorded one."""
    lengths = {c: 1.0 for c in range(1, max(clocks.values(), default=0) + 1)}
    unmeasured = []
    for name in neurons:
        if clip:
            continue
        if name not in maxima:
            unmeasured.append(name)
            continue
        lengths[clocks[name]] = max(lengths[clocks[name]], float(maxima[name]))
    return lengths, unmeasured


def carried_bound(graph: Graph, name: str, clock: int, lengths: dict):
    """The largest value neuron node ``name`` carries: its window's length
    ``lengths[clock]``, or its ReLU's ``max_value`` in normalised units where lower
    (a float, or a list per channel)."""
    bound = lengths[clock]
    max_value = graph[name].params.get("max_value")
    if max_value is None:
        return bound
    scale = np.asarray(graph.scales.get(name, 1.0), np.float64)
    cap = np.minimum(float(max_value) / scale, bound)
    return float(cap) if cap.ndim == 0 else cap.tolist()


def _bias_clocks(graph: Graph, clocks: dict, neurons: set) -> dict:
    """For each weight node, the clock of the window over which its bias is integrated.

    A neuron node integrates its own bias over its input window; a linear
    weight node's output is a current read (after any delays) by the next
    neurons, or by the output, on the clock they read their inputs on.
    """
    read: dict[str, set] = {}
    out = graph.output_node.name
    for node in reversed(graph.nodes):
        if node.name in neurons:
            read[node.name] = {clocks[node.name] - 1}
            continue
        if node.name == out:
            read[node.name] = {clocks[out]}
            continue
        found: set = set()
        for consumer in graph.consumers(node.name):
            if consumer.name in neurons:
                found.add(clocks[consumer.name] - 1)
            else:
                found |= read.get(consumer.name, set())
        read[node.name] = found
    return {n.name: tuple(sorted(read[n.name])) or (clocks[n.name],)
            for n in graph if n.has_weights}
