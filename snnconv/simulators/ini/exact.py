"""``spike_code = ttfs_exact`` clocked on the INI simulator: the exact TTFS network on a dt grid.

The time windows of :mod:`snnconv.time_windows`, each rounded up to whole
steps of ``dt`` (so that every window starts and ends on the grid and is at
least as long as the exact one), become:

* neurons (:class:`~snnconv.neurons.TTFSExactNeuron`) that integrate during
  their input window, rise with slope 1 in their own and fire once there;
  the output layer's neurons only integrate (their potential is the score);
* the analog input as a current ``x / T(0)`` during the input window only;
* every bias spread over the window in which it is integrated
  (``b / T(c)``: a current that adds up to ``b`` over the window);
* a :class:`~snnconv.layers.SpikeDelay` where a merge reads a branch of an
  earlier clock. A delay in front of a linear layer with a single consumer
  is moved in front of that layer's inputs, so that where possible it
  delays spikes (a step per element, ``mode="step"``) rather than currents
  (a ring buffer of frames).

The spike times then land on the grid: a neuron's spike carries its
potential at ``t_min`` rounded to a multiple of ``dt``; as ``dt`` shrinks
the predictions become those of the event-driven simulator.
"""
from __future__ import annotations

import math

from ...errors import SnnconvError
from ...ir import Graph
from ...time_windows import TimeWindows, plan_windows
from .builder import build_spiking_model


def window_steps(windows: TimeWindows, dt: float) -> list[int]:
    """Steps of ``dt`` per window: each window rounded up to the grid."""
    return [max(1, math.ceil(length / dt - 1e-9)) for length in windows.lengths]


def build_ttfs_exact_model(graph: Graph, dt: float, clip_windows: bool = False,
                           max2avg_pool: bool = False, activation_max: dict | None = None):
    """The Spike* Keras model of ``graph`` under ``ttfs_exact`` with time step ``dt``."""
    g = graph.copy()
    if max2avg_pool:
        for node in g:
            if node.op == "max_pool2d":
                node.op = "avg_pool2d"
    win = plan_windows(g, clip=clip_windows, activation_max=activation_max)
    n = window_steps(win, dt)
    k_max = [sum(n[:c + 1]) for c in range(len(n))]
    k_min = [k - m for k, m in zip(k_max, n)]
    for node in g:
        if node.has_weights:
            lengths = {n[c] for c in win.bias_clocks[node.name]}
            if len(lengths) > 1:
                raise SnnconvError(
                    f"node {node.name!r}: its output is integrated in windows of different "
                    "lengths, so its bias has no clocked ttfs_exact form; use the event "
                    "simulator")
            node.weights["bias"] = node.weights["bias"] / (lengths.pop() * dt)
    neurons = {}
    for name in win.neurons:
        c = win.clocks[name]
        neurons[name] = {"model": "ttfs_exact", "dt": float(dt),
                         "window": [k_min[c - 1], k_min[c], k_max[c]], "fires": True}
    c = win.readout_clock
    neurons[win.output] = {"model": "ttfs_exact", "dt": float(dt),
                           "window": [k_min[c], k_max[c], k_max[c]], "fires": False}
    delays = {}
    for (node, src), (a, b) in win.delays.items():
        for edge in _hoisted(g, win, node, src):
            steps = delays.get(edge, {}).get("steps", 0) + (k_max[b] - k_max[a])
            spikes = win.spikes[edge[1]]
            if not spikes and g[edge[1]].op != "input" and win.clocks[edge[1]] == 0:
                raise SnnconvError(
                    f"node {edge[1]!r}: a linear map of the input read by several layers "
                    f"and delayed where {edge[0]!r} reads it has no clocked ttfs_exact "
                    "form; use the event simulator")
            # a delayed current (linear in spikes plus a constant bias) has carried its
            # bias since before the start: the ring buffer starts full of its first frame
            delays[edge] = {"steps": steps, "mode": "step" if spikes else "fifo",
                            "hold_first": not spikes and g[edge[1]].op != "input"}
    model = build_spiking_model(g, neurons[win.output], max2avg_pool=False,
                                spike_code="ttfs_exact", layer_neurons=neurons,
                                delays=delays, input_window=n[0], input_gain=1.0 / (n[0] * dt))
    return model, win


def _hoisted(graph: Graph, win: TimeWindows, node: str, src: str) -> list[tuple[str, str]]:
    """The connections that carry the delay of ``src`` where ``node`` reads it: moved in
    front of ``src`` while ``src`` is a current (not spikes, not the input) that only
    ``node`` reads (a linear map commutes with a delay)."""
    s = graph[src]
    if win.spikes[src] or s.op == "input" or len(graph.consumers(src)) != 1:
        return [(node, src)]
    return [edge for inp in s.inputs for edge in _hoisted(graph, win, src, inp)]
