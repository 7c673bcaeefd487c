"""Max pooling of a signed (linear) signal under ``spike_code = ttfs_exact``.

Under ttfs_exact a spike carries a value ``x >= 0`` as ``t_max - x``; max
pooling of spikes is the earliest spike of each window, exactly the max of
the values. A linear signal ``z`` (a convolution with no ReLU after it, as
in Xception: separable conv -> BN -> max pool -> ``Add``) is no spike
signal but a current that the next neurons integrate, and a max of
currents is not a sum the next neurons' synapses can fold in. This module
rewrites such a pooling, before the time windows are planned, into parts
the exact code has:

    P = max_pool(z)    ->    N = relu((z + s) / k)    neurons (a 1x1 depthwise conv:
                                                      kernel 1/k, bias s/k per channel)
                             M = max_pool(N)          the earliest spike per window
                             P = k M - s              a current (a 1x1 depthwise conv:
                                                      kernel k, bias -s), P's activation

``k max_pool(relu((z + s) / k)) - s = max_pool(z)`` wherever ``z + s >= 0``
(``k > 0``): the shift ``s`` lifts the signal onto the non-negative range a
spike can carry, the scale ``k`` fits it into the window the neurons of
that clock have anyway, so the rewrite costs no latency. It is exact, not
only on the normalisation data, because ``z``'s range is bounded: every
neuron of the exact code carries a value in ``[0, B]``, ``B`` its window's
length (which clips it there) or its ReLU's ``max_value``, so ``z``, a
chain of linear operations of spike signals, has per-position bounds
``[lo, hi]`` given by interval arithmetic (each affine map ``y = A x + b``
of a box ``mid +- rad`` gives ``A mid + b +- |A| rad``; max pooling is
monotone). Per channel, ``s = -min(lo)`` and ``k = (max(hi) + s) / T``
(with a margin for float rounding), so no ``N`` is ever clipped. The
event-driven simulator carries values in floating point, so ``P`` is the
ANN's to float precision; the clocked INI simulator rounds ``N``'s spikes
to ``dt``, which is ``k dt`` in ``P``'s units: a worst-case bound ``k`` is
larger than what the data need, so ``P`` wants a finer ``dt`` than the
other layers. With ``clip=True`` (windows of length 1) ``T`` is 1.

A 1x1 max pooling (ResNet50V2's strided shortcuts) only picks values; it is
routing and needs no rewrite.

A linear signal that depends on the analog input through a merge with a
later clock (the input's range is not bounded by any window) is refused.
"""
from __future__ import annotations

import numpy as np

from .errors import UnsupportedLayerError
from .ir import Graph, Node
from .node_ops import node_op
from .time_windows import carried_bound, is_subsampling, signals, window_lengths


def signed_max_pools(graph: Graph) -> list[str]:
    """The ``max_pool2d`` nodes of ``graph`` that pool a current of a clock after the
    input's (those :func:`shift_signed_max_pools` rewrites; a 1x1 pooling only picks
    values and needs none)."""
    clocks, spikes, _ = signals(graph, exact=False)
    return [n.name for n in graph if n.op == "max_pool2d" and not is_subsampling(n)
            and not spikes[n.inputs[0]] and clocks[n.inputs[0]] > 0]


def shift_signed_max_pools(graph: Graph, clip: bool = False,
                           activation_max: dict | None = None) -> tuple[Graph, dict]:
    """``(graph, activation_max)``: ``graph`` with every max pooling of a signed current
    rewritten (see the module docstring), and the largest activations to plan the
    time windows with: ``activation_max`` (by default the graph's recorded ones) and
    that of every shift neuron node (its window's length). ``graph`` itself if there
    is nothing to do."""
    maxima = dict(graph.metadata.get("activation_max") or {}) if activation_max is None \
        else dict(activation_max)
    pools = signed_max_pools(graph)
    if not pools:
        return graph, maxima
    g = graph.copy()
    shifts = dict(_rewrite(g, g[name]) for name in pools)      # shift neurons -> pool
    clocks, _, neurons = signals(g)
    # the windows as the other neurons set them; the shift neurons fit into theirs
    lengths, _ = window_lengths(clocks, [n for n in neurons if n not in shifts], maxima,
                                clip)
    intervals: dict = {}
    last = max(g.nodes.index(g[name]) for name in shifts)
    for node in g.nodes[:last + 1]:
        if node.name in shifts:
            pool = shifts[node.name]            # now the unshifting current
            src = node.inputs[0]
            if intervals[src] is None:
                raise UnsupportedLayerError(
                    f"layer {_layer(graph[pool])!r} (MaxPooling2D): under ttfs_exact max "
                    f"pooling of the linear signal {src!r} needs its range, which depends on "
                    "the analog input (unbounded) through a merge; put a ReLU before the "
                    "pooling, or set max2avg_pool")
            lo, hi = (np.asarray(b, np.float64).reshape(-1, b.shape[-1]) for b in intervals[src])
            shift = -np.min(lo, axis=0)
            top = np.max(hi, axis=0) + shift
            margin = 1e-6 * (top + np.abs(shift)) + 1e-12       # float rounding
            shift, top = shift + margin, top + 2 * margin
            length = lengths[clocks[node.name]]
            k = top / length          # per channel: (z + shift) / k lies in (0, length)
            node.weights["kernel"] = (1.0 / k).astype(np.float32).reshape(1, 1, -1, 1)
            node.weights["bias"] = (shift / k).astype(np.float32)
            g[pool].weights["kernel"] = k.astype(np.float32).reshape(1, 1, -1, 1)
            g[pool].weights["bias"] = (-shift).astype(np.float32)
            maxima[node.name] = float(length)
            intervals[node.name] = (np.zeros(node.output_shape, np.float32),
                                    np.full(node.output_shape, length, np.float32))
        elif node.name in neurons:
            top = np.broadcast_to(np.asarray(carried_bound(g, node.name, clocks[node.name],
                                                           lengths), np.float32),
                                  node.output_shape)
            intervals[node.name] = (np.zeros(node.output_shape, np.float32), np.array(top))
        else:
            intervals[node.name] = _interval(node, intervals)
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


def _rewrite(g: Graph, pool: Node) -> tuple[str, str]:
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
    return shift.name, pool.name


def _interval(node: Node, intervals: dict):
    """``(lo, hi)`` (arrays of the node's shape) that bound the value of a node without
    neurons, or None where it depends on the analog input's (unbounded) range."""
    if node.op == "input":
        return None
    ins = [intervals[s] for s in node.inputs]
    if any(i is None for i in ins):
        return None
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
