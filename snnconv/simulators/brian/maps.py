"""An IR graph as affine maps between its spiking layers (pure numpy, no Brian 2).

Every node's signal is linear in the signals of the *sources* that feed it —
the input and the layers with neurons — plus a constant:
``value(node) = sum_s signal(s) @ M_s + c``. Weightless nodes (flatten,
reshape, padding, concatenation, pooling, add) are index mappings or fixed
weights and fold into the maps; so do linear weight layers. What remains
is, for every layer with neurons and for the output layer, one sparse matrix
per source (the synapses) and a constant (the bias current).

A sparse matrix is a :class:`SparseMap` in coordinate form (``pre``,
``post``, ``w``); maps are built from kernels, strides and padding with
numpy broadcasting and composed by a sorted join — no loop over synapses.
Flattening is channels-last, C order, as in Keras.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from ...errors import UnsupportedLayerError
from ...ir import Graph, Node
from ...routing_ops import ROUTES, route
from ...shapes import pair


@dataclasses.dataclass
class SparseMap:
    """A sparse ``(n_pre, n_post)`` matrix: entry ``w[k]`` at ``(pre[k], post[k])``."""

    pre: np.ndarray
    post: np.ndarray
    w: np.ndarray
    n_pre: int
    n_post: int

    @classmethod
    def make(cls, pre, post, w, n_pre, n_post, coalesce: bool = True) -> "SparseMap":
        pre, post = np.broadcast_arrays(np.asarray(pre, np.int64), np.asarray(post, np.int64))
        w = np.broadcast_to(np.asarray(w, np.float64), pre.shape).ravel()
        pre, post = pre.ravel(), post.ravel()
        if coalesce and len(pre):
            key = pre * n_post + post
            uniq, inv = np.unique(key, return_inverse=True)
            w = np.bincount(inv.ravel(), weights=w, minlength=len(uniq))
            pre, post = uniq // n_post, uniq % n_post
        keep = w != 0
        return cls(pre[keep], post[keep], np.ascontiguousarray(w[keep]), int(n_pre), int(n_post))

    @classmethod
    def identity(cls, n: int) -> "SparseMap":
        idx = np.arange(n)
        return cls(idx, idx.copy(), np.ones(n), n, n)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """``x @ M`` for a vector ``x`` of length ``n_pre``."""
        return np.bincount(self.post, weights=x[self.pre] * self.w, minlength=self.n_post)

    def scaled(self, factor_post: np.ndarray) -> "SparseMap":
        return SparseMap(self.pre, self.post, self.w * factor_post[self.post],
                         self.n_pre, self.n_post)

    def __len__(self):
        return len(self.pre)


def compose(a: SparseMap, b: SparseMap) -> SparseMap:
    """The product ``a @ b`` (first ``a``, then ``b``)."""
    order = np.argsort(b.pre, kind="stable")
    bpre, bpost, bw = b.pre[order], b.post[order], b.w[order]
    starts = np.searchsorted(bpre, a.post, "left")
    counts = np.searchsorted(bpre, a.post, "right") - starts
    rep = np.repeat(np.arange(len(a.pre)), counts)
    offsets = np.arange(len(rep)) - np.repeat(np.cumsum(counts) - counts, counts)
    bi = starts[rep] + offsets
    return SparseMap.make(a.pre[rep], bpost[bi], a.w[rep] * bw[bi], a.n_pre, b.n_post)


def add_maps(maps: list[SparseMap]) -> SparseMap:
    return SparseMap.make(np.concatenate([m.pre for m in maps]),
                          np.concatenate([m.post for m in maps]),
                          np.concatenate([m.w for m in maps]), maps[0].n_pre, maps[0].n_post)


@dataclasses.dataclass
class Affine:
    """A node's signal: ``sum_s signal(s) @ maps[s] + const``."""

    maps: dict[str, SparseMap]
    const: np.ndarray

    def then(self, m: SparseMap) -> "Affine":
        return Affine({s: compose(a, m) for s, a in self.maps.items()}, m.apply(self.const))


def _sum(parts: list[Affine], n: int) -> Affine:
    maps: dict[str, list[SparseMap]] = {}
    const = np.zeros(n)
    for p in parts:
        const = const + p.const
        for s, m in p.maps.items():
            maps.setdefault(s, []).append(m)
    return Affine({s: ms[0] if len(ms) == 1 else add_maps(ms) for s, ms in maps.items()}, const)


@dataclasses.dataclass
class LayerPlan:
    """What a Brian 2 network needs: layers with neurons and their synapses.

    ``currents[layer]`` is the affine input current of each layer with
    neurons (in topological order) and of the output layer, from each
    source (the input node's name, or a layer with neurons).
    """

    input_name: str
    input_size: int
    spiking: list[str]                 # layers with neurons, in order
    sizes: dict[str, int]
    currents: dict[str, Affine]        # spiking layers and the output layer
    output_name: str
    output_spiking: bool


def plan_layers(graph: Graph, max2avg_pool: bool = False) -> LayerPlan:
    """Fold ``graph`` into synapse maps between its layers with neurons.

    Raises :class:`UnsupportedLayerError` (naming the layer) for what a
    network of integrate-and-fire neurons and static synapses cannot express.
    """
    inp = graph.input_node
    n_in = math.prod(inp.output_shape)
    values = {inp.name: Affine({inp.name: SparseMap.identity(n_in)}, np.zeros(n_in))}
    spiking, sizes, currents = [], {}, {}
    out = graph.output_node
    for node in graph:
        if node.op == "input":
            continue
        if node.activation == "softmax" and node is not out:
            raise UnsupportedLayerError(
                f"layer {_label(node)}: softmax on a hidden layer cannot be simulated in "
                "Brian 2 (only the output layer may be softmax: it is read out)")
        in_shapes = [graph[s].output_shape for s in node.inputs]
        op_maps, bias = node_maps(node, in_shapes, max2avg_pool)
        n = math.prod(node.output_shape)
        parts = [values[s].then(m) for s, m in zip(node.inputs, op_maps)]
        current = _sum(parts + [Affine({}, bias)], n)
        gain = node.params.get("gain")
        if gain is not None:
            g = np.broadcast_to(np.asarray(gain, np.float64), node.output_shape).ravel()
            current = Affine({s: m.scaled(g) for s, m in current.maps.items()},
                             current.const * g)
        sizes[node.name] = n
        if node.activation == "relu":
            spiking.append(node.name)
            currents[node.name] = current
            values[node.name] = Affine({node.name: SparseMap.identity(n)}, np.zeros(n))
        else:
            values[node.name] = current
            if node is out:
                currents[node.name] = current
    return LayerPlan(inp.name, n_in, spiking, sizes, currents, out.name,
                     out.activation == "relu")


def _label(node: Node) -> str:
    src = f" (Keras {', '.join(node.source_layers)})" if node.source_layers else ""
    return f"{node.name!r}{src}"


def node_maps(node: Node, in_shapes, max2avg_pool: bool = False):
    """The node's operation as one sparse map per input plus a bias vector."""
    op, p = node.op, node.params
    out_shape = node.output_shape
    n_out = math.prod(out_shape)
    zeros = np.zeros(n_out)
    if op in ("flatten", "reshape", "identity"):
        return [SparseMap.identity(n_out)], zeros
    if op == "dense":
        return _dense(node, in_shapes[0])
    if op in ("conv2d", "depthwise_conv2d"):
        return _conv(node, in_shapes[0])
    if op == "max_pool2d" and not max2avg_pool:
        raise UnsupportedLayerError(
            f"layer {_label(node)}: max pooling cannot be simulated in Brian 2 (spike-based "
            "max pooling needs state across time steps); use average pooling, or set "
            "conversion.max2avg_pool = true")
    if op in ("avg_pool2d", "max_pool2d"):
        return [_avg_pool(in_shapes[0], p["pool_size"], p["strides"], p["padding"],
                          out_shape)], zeros
    if op == "global_avg_pool2d":
        h, w, c = in_shapes[0]
        pos = np.arange(h * w)[:, None]
        ch = np.arange(c)[None, :]
        return [SparseMap.make(pos * c + ch, np.broadcast_to(ch, (h * w, c)), 1.0 / (h * w),
                               h * w * c, c, coalesce=False)], zeros
    if op == "zero_padding2d":
        (top, _), (left, _) = p["padding"]
        h, w, c = in_shapes[0]
        ho, wo, _ = out_shape
        grid = np.arange(n_out).reshape(ho, wo, c)[top:top + h, left:left + w, :]
        return [SparseMap.make(np.arange(h * w * c), grid.ravel(), 1.0, h * w * c, n_out,
                               coalesce=False)], zeros
    if op in ROUTES:
        return [_routing_map(node, in_shapes[0])], zeros
    if op == "concatenate":
        axis = p["axis"] % len(out_shape)
        grid = np.arange(n_out).reshape(out_shape)
        cuts = np.cumsum([s[axis] for s in in_shapes])[:-1]
        parts = np.split(grid, cuts, axis=axis)
        return [SparseMap.make(np.arange(part.size), part.ravel(), 1.0, part.size, n_out,
                               coalesce=False) for part in parts], zeros
    if op == "add":
        coeffs = p.get("coefficients") or [1.0] * len(in_shapes)
        maps = []
        for c in coeffs:
            factor = np.broadcast_to(np.asarray(c, np.float64), out_shape).ravel()
            maps.append(SparseMap.make(np.arange(n_out), np.arange(n_out), factor, n_out, n_out,
                                       coalesce=False))
        return maps, zeros
    raise UnsupportedLayerError(f"layer {_label(node)}: op {op!r} cannot be simulated in Brian 2")


def _dense(node: Node, in_shape):
    kernel, bias = node.weights["kernel"], node.weights["bias"]
    n_i, n_o = kernel.shape
    prefix = math.prod(in_shape[:-1])
    i, o = np.nonzero(kernel)
    w = kernel[i, o]
    rows = np.arange(prefix)[:, None]
    return [SparseMap.make(rows * n_i + i, rows * n_o + o, np.broadcast_to(w, (prefix, len(w))),
                           prefix * n_i, prefix * n_o, coalesce=False)], \
        np.tile(np.asarray(bias, np.float64), prefix)


def window_taps(in_hw, kernel, strides, dilation, padding, out_hw):
    """Valid (output position, input position, tap) triples of a sliding window.

    Positions are flat ``y * width + x`` indices; TensorFlow's ``"same"``
    padding puts the smaller half of the padding before.
    """
    axes = []
    for d in range(2):
        k_eff = (kernel[d] - 1) * dilation[d] + 1
        before = 0 if padding == "valid" else \
            max((out_hw[d] - 1) * strides[d] + k_eff - in_hw[d], 0) // 2
        o = np.arange(out_hw[d])[:, None]
        k = np.arange(kernel[d])[None, :]
        axes.append((o, k, o * strides[d] - before + k * dilation[d]))
    (oy, ky, iy), (ox, kx, ix) = axes
    # broadcast to (oy, ky, ox, kx)
    iy4, ix4 = iy[:, :, None, None], ix[None, None, :, :]
    valid = (iy4 >= 0) & (iy4 < in_hw[0]) & (ix4 >= 0) & (ix4 < in_hw[1])
    shape = valid.shape
    o_flat = np.broadcast_to(oy[:, :, None, None] * out_hw[1] + ox[None, None, :, :], shape)
    i_flat = np.broadcast_to(iy4 * in_hw[1] + ix4, shape)
    t_flat = np.broadcast_to(ky[:, :, None, None] * kernel[1] + kx[None, None, :, :], shape)
    return o_flat[valid], i_flat[valid], t_flat[valid]


def _conv(node: Node, in_shape):
    p = node.params
    kernel = np.asarray(node.weights["kernel"], np.float64)
    kh, kw = kernel.shape[:2]
    h, w, c_in = in_shape
    ho, wo, c_out = node.output_shape
    o, i, t = window_taps((h, w), (kh, kw), pair(p.get("strides", 1)),
                          pair(p.get("dilation_rate", 1)), p.get("padding", "valid"), (ho, wo))
    k = kernel.reshape(kh * kw, kernel.shape[2], kernel.shape[3])
    ci = np.arange(c_in)
    if node.op == "conv2d":
        co = np.arange(c_out)
        pre = i[:, None, None] * c_in + ci[None, :, None]
        post = o[:, None, None] * c_out + co[None, None, :]
        weights = k[t]                                         # (taps, c_in, c_out)
    else:
        m = np.arange(kernel.shape[3])
        pre = i[:, None, None] * c_in + ci[None, :, None]
        post = o[:, None, None] * c_out + ci[None, :, None] * len(m) + m[None, None, :]
        weights = k[t]                                         # (taps, c, multiplier)
    pre, post = np.broadcast_to(pre, weights.shape), np.broadcast_to(post, weights.shape)
    nz = weights != 0
    return [SparseMap.make(pre[nz], post[nz], weights[nz], h * w * c_in, ho * wo * c_out,
                           coalesce=False)], np.tile(np.asarray(node.weights["bias"],
                                                                np.float64), ho * wo)


def _avg_pool(in_shape, pool_size, strides, padding, out_shape):
    h, w, c = in_shape
    ho, wo, _ = out_shape
    pool = pair(pool_size)
    o, i, _ = window_taps((h, w), pool, pair(strides or pool), (1, 1), padding, (ho, wo))
    count = np.bincount(o, minlength=ho * wo)                  # "same" excludes the padding
    ch = np.arange(c)[None, :]
    pre = i[:, None] * c + ch
    post = o[:, None] * c + ch
    return SparseMap.make(pre, post, np.broadcast_to((1.0 / count[o])[:, None], pre.shape),
                          h * w * c, ho * wo * c, coalesce=False)


__all__ = ["Affine", "LayerPlan", "SparseMap", "compose", "node_maps", "plan_layers",
           "window_taps"]


def _routing_map(node: Node, in_shape) -> "SparseMap":
    """The connections of an op that only moves values: run it on the input's
    (1-based) indices and read where each one lands (0: a zero the op adds)."""
    n_in = math.prod(in_shape)
    index = np.arange(1, n_in + 1, dtype=np.float64).reshape((1,) + tuple(in_shape))
    moved = np.asarray(route(node.op, node.params, index), dtype=np.float64).reshape(-1)
    dst = np.flatnonzero(moved)
    return SparseMap.make(moved[dst].astype(np.int64) - 1, dst, 1.0, n_in, moved.size,
                          coalesce=False)
