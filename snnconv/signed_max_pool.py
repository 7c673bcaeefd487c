"""Max pooling of a signed (linear) signal under ``spike_code = ttfs_exact``.

Under ttfs_exact a spike carries a value ``x >= 0`` as ``t_max - x``; max
pooling of spikes is the earliest spike of each window, exactly the max of
the values. A linear signal ``z`` (a convolution with no ReLU after it, as
in Xception: separable conv -> BN -> max pool -> ``Add``) is no spike
signal but a current that the next neurons integrate, and a max of
currents is not a sum the next neurons' synapses can fold in. This module
rewrites such a pooling, before the time windows are planned, into parts
the exact code has:

    P = max_pool(z)    ->    N = relu(z + s)          neurons (a 1x1 depthwise conv,
                                                      kernel 1, bias s per channel)
                             M = max_pool(N)          the earliest spike per window
                             P = M - s                a current (a 1x1 depthwise conv,
                                                      kernel 1, bias -s), P's activation

``max_pool(relu(z + s)) - s = max_pool(z)`` wherever ``z + s >= 0``: the
shift ``s`` lifts the signal onto the non-negative range a spike can carry.
It is exact, not only on the normalisation data, because ``z``'s range is
bounded: every neuron of the exact code carries a value in ``[0, T(c)]``
(its window clips it there), so ``z``, a chain of linear operations of
spike signals, has per-position bounds ``[lo, hi]`` given by interval
arithmetic (each affine map ``y = A x + b`` of a box ``mid +- rad`` gives
``A mid + b +- |A| rad``; max pooling is monotone). The shift is
``s = -min(lo)`` per channel, and ``N``'s largest value ``max(hi + s)``
becomes its window length (``activation_max``), so no ``N`` is ever
clipped. The price is latency: one more window per such pooling, whose
length is a worst-case bound rather than a measured maximum. With
``clip=True`` (windows of length 1) the bounds use the clipped windows
and ``N`` is clipped at 1 like every other neuron.

A linear signal that depends on the analog input through a merge with a
later clock (the input's range is not bounded by any window) is refused.
"""
from __future__ import annotations

import numpy as np

from .errors import UnsupportedLayerError
from .ir import Graph, Node
from .time_windows import signals


def signed_max_pools(graph: Graph) -> list[str]:
    """The ``max_pool2d`` nodes of ``graph`` that pool a current of a clock after the
    input's (those :func:`shift_signed_max_pools` rewrites)."""
    clocks, spikes, _ = signals(graph, exact=False)
    return [n.name for n in graph if n.op == "max_pool2d"
            and not spikes[n.inputs[0]] and clocks[n.inputs[0]] > 0]


def shift_signed_max_pools(graph: Graph, clip: bool = False,
                           activation_max: dict | None = None) -> tuple[Graph, dict]:
    """``(graph, activation_max)``: ``graph`` with every max pooling of a signed current
    rewritten (see the module docstring), and the largest activations to plan the
    time windows with: ``activation_max`` (by default the graph's recorded ones) and
    the bound of every new neuron node. ``graph`` itself if there is nothing to do."""
    maxima = dict(graph.metadata.get("activation_max") or {}) if activation_max is None \
        else dict(activation_max)
    pools = signed_max_pools(graph)
    if not pools:
        return graph, maxima
    g = graph.copy()
    shifts = {}                 # pool name -> (shift node, unshift node)
    for name in pools:
        shifts[name] = _rewrite(g, g[name])
    clocks, _, neurons = signals(g)
    intervals: dict = {}
    done: set = set()
    for c in range(1, max(clocks[a.name] for a, _ in shifts.values()) + 1):
        # the bounds of the clocks before c are final: those of the nodes on c - 1
        lengths = _lengths(clocks, neurons, maxima, clip)
        for node in g:
            if node.name not in done and clocks[node.name] <= c - 1:
                intervals[node.name] = _interval(node, intervals, lengths, clocks,
                                                 neurons)
                done.add(node.name)
        for pool, (shift, unshift) in shifts.items():
            if clocks[shift.name] != c:
                continue
            src = shift.inputs[0]
            if intervals[src] is None:
                raise UnsupportedLayerError(
                    f"layer {_layer(graph[pool])!r} (MaxPooling2D): under ttfs_exact max "
                    f"pooling of the linear signal {src!r} needs its range, which depends on "
                    "the analog input (unbounded) through a merge; put a ReLU before the "
                    "pooling, or set max2avg_pool")
            lo, hi = intervals[src]
            channels = lo.shape[-1]
            s = -np.min(lo.reshape(-1, channels), axis=0).astype(np.float64)
            s = s + 1e-6 * (np.abs(s) + 1.0)             # float rounding: stay above 0
            shift.weights["bias"] = s.astype(np.float32)
            unshift.weights["bias"] = (-s).astype(np.float32)
            maxima[shift.name] = float(np.max(hi.reshape(-1, channels) + s, initial=0.0))
    g.metadata["activation_max"] = dict(maxima)
    return g, maxima


def _layer(node: Node) -> str:
    return node.source_layers[0] if node.source_layers else node.name


def _unique(g: Graph, name: str) -> str:
    taken = {n.name for n in g}
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}_{i}"
    return candidate


def _pointwise(name, src, shape, activation="linear", params=None, source_layers=()):
    """A 1x1 depthwise convolution with kernel 1 (its bias set later)."""
    channels = int(shape[-1])
    return Node(name, "depthwise_conv2d", [src], tuple(shape),
                params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1),
                        "depth_multiplier": 1, **(params or {})},
                weights={"kernel": np.ones((1, 1, channels, 1), np.float32),
                         "bias": np.zeros(channels, np.float32)},
                activation=activation, source_layers=list(source_layers))


def _rewrite(g: Graph, pool: Node) -> tuple[Node, Node]:
    """Replace ``pool`` by shift neurons, the pooling of their spikes and the unshift
    current (named as ``pool``, so its readers and its activation stay)."""
    src = pool.inputs[0]
    in_shape = g[src].output_shape
    shift = _pointwise(_unique(g, f"{pool.name}_shift"), src, in_shape, activation="relu",
                       source_layers=pool.source_layers)
    pooled = Node(_unique(g, f"{pool.name}_shifted"), "max_pool2d", [shift.name],
                  pool.output_shape,
                  params={k: pool.params[k] for k in ("pool_size", "strides", "padding")},
                  source_layers=list(pool.source_layers))
    rest = {k: v for k, v in pool.params.items() if k not in ("pool_size", "strides", "padding")}
    unshift = _pointwise(pool.name, pooled.name, pool.output_shape, activation=pool.activation,
                         params=rest, source_layers=pool.source_layers)
    i = g.nodes.index(pool)
    g.nodes[i:i + 1] = [shift, pooled, unshift]
    if src in g.scales:
        g.scales[shift.name] = g.scales[src]
        g.scales[pooled.name] = g.scales[src]
    return shift, unshift


def _lengths(clocks, neurons, maxima, clip) -> dict:
    """Window length per clock, as :func:`snnconv.time_windows.plan_windows` plans it."""
    lengths = {0: None}
    for c in range(1, max(clocks.values()) + 1):
        lengths[c] = 1.0
    if not clip:
        for n in neurons:
            if n in maxima:
                lengths[clocks[n]] = max(lengths[clocks[n]], float(maxima[n]))
    return lengths


def _interval(node: Node, intervals: dict, lengths: dict, clocks: dict, neurons: list):
    """``(lo, hi)`` (arrays of the node's shape) that bound its value in the exact code,
    or None where the value depends on the analog input's (unbounded) range."""
    if node.op == "input":
        return None
    if node.name in neurons:
        zero = np.zeros(node.output_shape, np.float32)
        return zero, zero + np.float32(lengths[clocks[node.name]])
    ins = [intervals[s] for s in node.inputs]
    if any(i is None for i in ins):
        return None
    from .simulators.event.engine import node_op

    if node.op == "max_pool2d":                 # monotone
        return tuple(_np(node_op(node, [b[k][None] for b in ins])) for k in (0, 1))
    mids = [((lo + hi) / 2)[None] for lo, hi in ins]
    rads = [((hi - lo) / 2)[None] for lo, hi in ins]
    mid = _np(node_op(node, mids))
    rad = _np(node_op(_magnitude(node), rads))
    return mid - rad, mid + rad


def _magnitude(node: Node) -> Node:
    """The node's linear part with every coefficient's magnitude and no bias: ``|A|``."""
    weights = dict(node.weights)
    if "kernel" in weights:
        weights["kernel"] = np.abs(weights["kernel"])
        weights["bias"] = np.zeros_like(weights["bias"])
    params = dict(node.params)
    if params.get("coefficients") is not None:
        params["coefficients"] = [np.abs(np.asarray(c, np.float64)) for c in
                                  params["coefficients"]]
    if params.get("gain") is not None:
        params["gain"] = np.abs(np.asarray(params["gain"], np.float64))
    return Node(node.name, node.op, list(node.inputs), node.output_shape, params=params,
                weights=weights, activation="linear")


def _np(t):
    return np.asarray(t)[0].astype(np.float32)
