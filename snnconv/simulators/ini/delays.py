"""Synaptic delays at merges: where an ``Add`` or ``Concatenate`` (any node with several
inputs) reads a branch fewer layers deep than its deepest input, that branch is delayed
so that all its inputs are read on one clock.

Used by the exact TTFS code (delays of whole time windows, see
:mod:`snnconv.time_windows`) and by ``ttfs`` / ``ttfs_dyn_thresh`` (a time per
layer of depth difference). The delays become
:class:`~snnconv.layers.SpikeDelay` layers on connections of the graph.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from ...ir import Graph
from ...time_windows import TimeWindows


def place_delays(g: Graph, win: TimeWindows, steps: Callable[[int, int], int],
                 ring_buffers: bool = False) -> dict:
    """The :class:`~snnconv.layers.SpikeDelay` options per connection ``(node, input)``
    for every merge of ``g`` that reads an input of an earlier clock (``win.delays``);
    ``steps(a, b)`` is the delay, in steps, of clock ``a`` read on clock ``b``.

    A delay in front of a current (a linear layer, pooling...) moves in front
    of that node's inputs (a delay commutes with a linear map), until it
    reaches spikes (delayed by ``mode="step"``, one number per element) or the
    analog input (a ring buffer). A current that other nodes read undelayed is
    first copied into ``g`` (the copy, with the same weights, is the delayed
    path's own synapses), so that its bias stays a constant current.
    ``ring_buffers``: delay spikes with ring buffers too (frames that are not
    a step per element, such as ``ttfs_dyn_thresh``'s prospective spikes).
    """
    delays: dict = {}

    def push(node: str, src: str, n: int):
        s = g[src]
        if win.spikes[src] or s.op == "input":
            mode = "step" if win.spikes[src] and not ring_buffers else "fifo"
            edge = delays.setdefault((node, src), {"steps": 0, "mode": mode})
            edge["steps"] += n
            return
        if len(g.consumers(src)) > 1:
            src = _copy_for(g, win, s, node)
        for inp in g[src].inputs:
            push(src, inp, n)

    for (node, src), (a, b) in win.delays.items():
        n = int(steps(a, b))
        if n > 0:
            push(node, src, n)
    return delays


def _copy_for(g: Graph, win: TimeWindows, node, reader: str) -> str:
    """A copy of ``node`` that only ``reader`` reads (inserted after it); its name."""
    name = f"{node.name}_for_{reader}"
    copy = dataclasses.replace(node, name=name, inputs=list(node.inputs),
                               params=dict(node.params),
                               weights={k: v.copy() for k, v in node.weights.items()})
    g.nodes.insert(g.nodes.index(node) + 1, copy)
    r = g[reader]
    r.inputs = [name if i == node.name else i for i in r.inputs]
    win.clocks[name], win.spikes[name] = win.clocks[node.name], win.spikes[node.name]
    if node.name in g.scales:
        g.scales[name] = g.scales[node.name]
    return name


def ttfs_merge_delays(graph: Graph, merge_delay: float, dt: float, dyn_thresh: bool,
                      max2avg_pool: bool = False) -> tuple[Graph, dict]:
    """``(graph, delays)`` for ``ttfs`` / ``ttfs_dyn_thresh``: a branch read by a merge
    ``d`` layers of neurons shallower than the merge's deepest input is delayed by
    ``d * merge_delay`` (rounded to whole steps of ``dt``). The graph is a copy
    (with the copies :func:`place_delays` may add)."""
    from ...time_windows import plan_windows

    g = graph.copy()
    if max2avg_pool:
        for node in g:
            if node.op == "max_pool2d":
                node.op = "avg_pool2d"
    if merge_delay <= 0:
        return g, {}
    win = plan_windows(g, clip=True, activation_max={}, exact=False)
    return g, place_delays(g, win, lambda a, b: round((b - a) * merge_delay / dt),
                           ring_buffers=dyn_thresh)
