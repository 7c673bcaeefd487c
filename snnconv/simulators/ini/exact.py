"""``spike_code = ttfs_exact`` clocked on the INI simulator: the exact TTFS network on a dt grid.

The time windows of :mod:`snnconv.time_windows`, each rounded up to whole
steps of ``dt`` (so that every window starts and ends on the grid and is at
least as long as the exact one), become:

* neurons (:class:`~snnconv.neurons.TTFSExactNeuron`) that integrate during
  their input window, rise with slope 1 in their own and fire once there;
  the output layer's neurons only integrate (their potential is the score);
* the analog input as a current ``x / T(0)`` during the input window only;
* a neuron with a ceiling (ReLU's ``max_value``, or a window made longer by
  the shift neurons of a signed max pooling) may fire only from the step
  ``round(ceiling / dt)`` before its window's end;
* every bias spread over the window in which it is integrated
  (``b / T(c)``: a current that adds up to ``b`` over the window);
* a :class:`~snnconv.layers.SpikeDelay` where a merge reads a branch of an
  earlier clock. A delay in front of a linear layer with a single consumer
  is moved in front of that layer's inputs (copying a layer that others
  read undelayed), so that it delays spikes (a step per element,
  ``mode="step"``) or the analog input, never a current with a bias.

The spike times then land on the grid: a neuron's spike carries its
potential at ``t_min`` rounded to a multiple of ``dt``; as ``dt`` shrinks
the predictions become those of the event-driven simulator.
"""
from __future__ import annotations

import math

import numpy as np

from ...ann import count_macs
from ...errors import SnnconvError
from ...ir import Graph
from ...signed_max_pool import shift_signed_max_pools
from ...time_windows import TimeWindows, plan_windows
from .builder import build_spiking_model
from .delays import place_delays


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
    g, maxima = shift_signed_max_pools(g, clip=clip_windows,
                                       activation_max=_maxima(graph, activation_max))
    win = plan_windows(g, clip=clip_windows, activation_max=maxima)
    n = window_steps(win, dt)
    k_max = [sum(n[:c + 1]) for c in range(len(n))]
    k_min = [k - m for k, m in zip(k_max, n)]
    delays = place_delays(g, win, lambda a, b: k_max[b] - k_max[a])
    win = plan_windows(g, clip=clip_windows, activation_max=maxima)
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
        if name in win.ceilings:
            # a ceiling m: it fires no earlier than m before its window's end
            steps = np.round(np.asarray(win.ceiling(name), np.float64) / dt).astype(np.int64)
            first = np.clip(k_max[c] - steps, k_min[c], k_max[c])
            neurons[name]["first_step"] = int(first) if first.ndim == 0 else first.tolist()
    c = win.readout_clock
    neurons[win.output] = {"model": "ttfs_exact", "dt": float(dt),
                           "window": [k_min[c], k_max[c], k_max[c]], "fires": False}
    model = build_spiking_model(g, neurons[win.output], max2avg_pool=False,
                                spike_code="ttfs_exact", layer_neurons=neurons,
                                delays=delays, input_window=n[0], input_gain=1.0 / (n[0] * dt))
    # the ANN's MACs, not those of the rewritten graph (shifts, copies for delays)
    model.get_layer(f"{graph.input_node.name}_spikes").ann_macs = \
        int(sum(count_macs(graph).values()))
    return model, win


def _maxima(graph: Graph, activation_max: dict | None) -> dict:
    """The largest activations to plan with: the given ones, or the graph's."""
    return dict(graph.metadata.get("activation_max") or {}) if activation_max is None \
        else dict(activation_max)
