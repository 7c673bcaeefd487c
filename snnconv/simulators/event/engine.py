"""The event-driven simulator's engine: each layer's spike times in closed form, layer by layer.

For a batch, one compiled function walks the graph once. Each node's
operation is computed once (a dense product, a convolution, a pooling...,
as in one ANN forward pass); a neuron node turns its potentials at
``t_min`` into spikes with :func:`snnconv.neurons.ttfs_exact_fire`: the
value ``x = clip(V, 0, T)`` each spike carries (``T`` the window's length, or
the node's ceiling where lower), i.e. the spike time
``t_max - x`` (``x = t_max - t`` is what the next layer integrates, so the
values are carried, not the times, which in float32 would round to the
time's magnitude). Max pooling takes the largest value: the earliest spike.

Per batch it returns, on a grid of ``readout_steps`` steps of
``dt = t_readout / readout_steps``:

* the readout after each step: the output neurons' potential at the step's
  end, ``V(t) = sum_j W_ij (t - t_j)^+`` plus the bias integrated so far
  (0 before the output's integration window; the logits at ``t_readout``);
* the spikes of every neuron node and the synaptic operations (spikes
  times their fan-out) in each step, from the spike times;
* the number of activations clipped at their window, per neuron node.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from ...neurons.ttfs_exact import ttfs_exact_fire
from ...node_ops import node_op
from .network import EventNetwork


def _per_sample(t):
    return tf.reduce_sum(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)


def runner(net: EventNetwork):
    """The compiled batch function of ``net``: ``x -> (readout, spikes, synops, clipped)``.

    ``readout`` ``(B, K, classes)``; ``spikes`` a tuple of ``(B, K)`` per
    neuron node; ``synops`` ``(B, K)``; ``clipped`` a tuple of ``(B,)``
    per neuron node. Traced once per network (cached on it).
    """
    cached = getattr(net, "_runner", None)
    if cached is not None:
        return cached
    graph, win = net.graph, net.windows
    nodes = [_float32_weights(n) for n in graph]
    neurons = list(win.neurons)
    out_name = win.output
    K = net.readout_steps
    dt = net.dt
    grid = [(k + 1) * dt for k in range(K)]
    grid[-1] = win.t_readout
    # the largest value each neuron node's spikes carry: its window, or its ceiling
    lengths = {n: np.asarray(win.ceiling(n), np.float32) for n in neurons}
    fanouts = {k: tf.constant(np.asarray(v, np.float32)) for k, v in net.fanouts.items()}
    spike_sources = [n for n in net.fanouts if win.spikes.get(n) and win.clocks[n] > 0]
    # (N, 2) per spike source: a column of ones (spike counts), one of fan-outs (SynOps)
    counts = {n: tf.constant(np.stack([np.ones(np.size(net.fanouts[n])),
                                       np.ravel(net.fanouts[n])], axis=1).astype(np.float32))
              for n in spike_sources}
    ones = {n: tf.ones((int(math.prod(graph[n].output_shape)), 1)) for n in neurons}
    analog_sources = [n for n in net.fanouts if n not in spike_sources]
    stretch, frontier = _readout_stretch(graph, win)
    readout_clock = win.readout_clock
    t_lo, t_hi = win.t_min(readout_clock), win.t_readout
    # grid points inside the output's integration window, before the readout itself
    partial = [(k, t) for k, t in enumerate(grid[:-1]) if t > t_lo]

    def cumulative(values, node, weights):
        """(B, K, m): the columns of ``weights`` (N, m) summed over the spikes of
        ``node`` up to the end of each step (a spike counts from its time on)."""
        t_min, t_max = win.window(node)
        flat = tf.reshape(values, (tf.shape(values)[0], -1))
        cols, total = [], None
        for t in grid:
            if t < t_min:
                cols.append(None)
                continue
            if t >= t_max:
                if total is None:
                    total = tf.matmul(tf.cast(flat > 0, tf.float32), weights)
                cols.append(total)
                continue
            cols.append(tf.matmul(tf.cast(flat >= np.float32(t_max - t), tf.float32), weights))
        zero = tf.zeros((tf.shape(flat)[0], weights.shape[1]))
        return tf.stack([zero if c is None else c for c in cols], axis=1)

    def per_step(cum):
        return cum - tf.pad(cum[:, :-1], [(0, 0), (1, 0)] + [(0, 0)] * (len(cum.shape) - 2))

    def run_stretch(values, partial_values):
        vals = dict(partial_values)
        for node in stretch:
            vals[node.name] = node_op(node, [vals[s] if s in vals else values[s]
                                             for s in node.inputs])
        return vals[out_name]

    @tf.function(reduce_retracing=True)
    def run(x):
        values = {}
        clipped = []
        for node in nodes:
            if node.op == "input":
                values[node.name] = x
                continue
            z = node_op(node, [values[s] for s in node.inputs])
            if node.name in neurons:
                v, _, c = ttfs_exact_fire(z, lengths[node.name])
                clipped.append(_per_sample(c))
                values[node.name] = v
            else:
                values[node.name] = z
        batch = tf.shape(x)[0]
        # per spike source one pass per grid point in its window: (count, fan-out) sums
        counted = {n: per_step(cumulative(values[n], n, counts[n])) for n in spike_sources}
        spikes = tuple(counted[n][..., 0] if n in counted
                       else per_step(cumulative(values[n], n, ones[n]))[..., 0]
                       for n in neurons)
        synops = tf.zeros((batch, K))
        for n in spike_sources:
            synops = synops + counted[n][..., -1]
        if analog_sources:
            first = sum(_per_sample(tf.cast(tf.not_equal(values[n], 0), tf.float32)
                                    * fanouts[n]) for n in analog_sources)
            synops = synops + tf.pad(first[:, None], [(0, 0), (0, K - 1)])
        logits = values[out_name]
        # the output's potential at the grid points inside its integration window:
        # inputs of clock c_out have delivered (x - s)^+ by s before the readout, a
        # delayed analog input its share of its window, the biases their share
        zeros = {n: tf.zeros_like(values[n][:1]) for n in frontier}
        bias = run_stretch(values, zeros)
        cols = [None] * K
        for k, t in partial:
            s = np.float32(t_hi - t)
            part = {}
            for n in frontier:
                if win.spikes[n]:
                    part[n] = tf.nn.relu(values[n] - s)
                else:
                    part[n] = values[n] * np.float32(max(0.0, 1.0 - s / win.lengths[0]))
            frac = np.float32(min(1.0, (t - t_lo) / (t_hi - t_lo)))
            cols[k] = run_stretch(values, part) - (1.0 - frac) * bias
        cols[-1] = logits
        readout = tf.stack([tf.zeros_like(logits) if c is None else c for c in cols], axis=1)
        return readout, spikes, synops, tuple(clipped)

    net._runner = run
    return run


def _float32_weights(node):
    """The node with float32 weights (constants folded into the traced function)."""
    return dataclasses.replace(node, weights={k: np.asarray(v, np.float32)
                                              for k, v in node.weights.items()})


def _readout_stretch(graph, win):
    """The nodes between the last spikes and the output (currents, computed again for
    each early readout), in graph order, and the signals they read (the frontier)."""
    keep, frontier = set(), set()
    todo = [win.output]
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        for s in graph[name].inputs:
            if win.spikes[s] or graph[s].op == "input":
                frontier.add(s)
            else:
                todo.append(s)
    return [n for n in graph if n.name in keep and n.op != "input"], sorted(frontier)


def simulate(net: EventNetwork, x: np.ndarray):
    """Run one batch; returns numpy ``(readout, {node: spikes}, synops, {node: clipped})``."""
    readout, spikes, synops, clipped = runner(net)(tf.constant(np.asarray(x, np.float32)))
    names = list(net.windows.neurons)
    return (np.asarray(readout), {n: np.asarray(s) for n, s in zip(names, spikes)},
            np.asarray(synops), {n: np.asarray(c) for n, c in zip(names, clipped)})


def layer_values(net: EventNetwork, x: np.ndarray) -> dict:
    """Every node's value for the batch ``x`` (numpy): for a neuron node the value its
    spikes carry (``t_max - t_spike``, 0 = no spike), for the output its potentials at
    the readout, for the others their current or spikes."""
    values = {}
    for node in net.graph:
        if node.op == "input":
            values[node.name] = tf.constant(np.asarray(x, np.float32))
            continue
        z = node_op(_float32_weights(node),
                    [values[s] for s in node.inputs])
        if node.name in net.windows.neurons:
            z = ttfs_exact_fire(z, np.asarray(net.windows.ceiling(node.name), np.float32))[0]
        values[node.name] = z
    return {k: np.asarray(v) for k, v in values.items()}


def spike_times(net: EventNetwork, x: np.ndarray) -> dict:
    """Spike time of every neuron of every neuron node for the batch ``x`` (``inf`` =
    no spike), ``{node: (B, *shape)}``, in the network's continuous time."""
    values = layer_values(net, x)
    out = {}
    for n in net.windows.neurons:
        t_max = net.windows.window(n)[1]
        v = values[n]
        out[n] = np.where(v > 0, t_max - v.astype(np.float64), math.inf)
    return out
