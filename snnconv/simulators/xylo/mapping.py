"""Mapping a normalised IR graph onto Xylo's three weight matrices (still in float).

Xylo has 16 input channels, one pool of hidden neurons connected by one
recurrent matrix, and a few readout neurons. A feed-forward chain maps onto
it like this:

* the weightless linear nodes before the first weight layer (pooling,
  flatten, reshape, zero padding) are *input preprocessing* done on the
  host: their output is the input channels;
* every node with a ReLU is a hidden layer; hidden layers are laid out one
  after the other, the first one reading the input matrix, each next one
  reading the previous one through its block of the recurrent matrix;
* the nodes after the last hidden layer form the readout.

Between two hidden layers everything is linear (a dense or convolution
layer, pooling, flatten, padding, ...), so the whole stretch is *unrolled*
into one dense matrix by applying it to the unit vectors: a convolution
maps when its unrolled matrix fits the chip, like any dense layer.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from ...errors import UnsupportedLayerError
from ...ir import Graph, Node

LINEAR_OPS = ("dense", "conv2d", "depthwise_conv2d", "avg_pool2d", "global_avg_pool2d",
              "flatten", "reshape", "zero_padding2d", "cropping2d", "upsampling2d", "permute",
              "identity")
# unrolling applies a stretch to this many unit vectors at once
_UNROLL_BATCH = 1024


@dataclasses.dataclass
class Plan:
    """Which nodes become what, before any matrix is built."""

    preprocessing: list[Node]           # host-side nodes after the input
    hidden: list[list[Node]]            # per hidden layer: the stretch ending in its ReLU node
    readout: list[Node]                 # the stretch after the last hidden layer
    input_shape: tuple[int, ...]        # raw input (the graph's input node)

    @property
    def layers(self) -> list[tuple[str, int]]:
        return [(s[-1].name, int(np.prod(s[-1].output_shape))) for s in self.hidden]

    @property
    def num_inputs(self) -> int:
        last = self.preprocessing[-1].output_shape if self.preprocessing else self.input_shape
        return int(np.prod(last))

    @property
    def output_name(self) -> str:
        return self.readout[-1].name if self.readout else self.hidden[-1][-1].name

    @property
    def num_outputs(self) -> int:
        last = self.readout[-1] if self.readout else self.hidden[-1][-1]
        return int(np.prod(last.output_shape))


@dataclasses.dataclass
class FloatNetwork:
    """The network in Xylo's layout, float weights in the normalised units."""

    w_in: np.ndarray          # (I, N)
    w_rec: np.ndarray         # (N, N)
    w_out: np.ndarray         # (N, O)
    bias: np.ndarray          # (N,)
    bias_out: np.ndarray      # (O,)
    layers: list[tuple[str, int]]
    output_name: str
    input_map: np.ndarray | None   # (raw features, I) host preprocessing, None if none

    def layer_slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, size in self.layers:
            out[name] = slice(start, start + size)
            start += size
        return out


def plan(graph: Graph, max2avg_pool: bool = False) -> Plan:
    """Split ``graph`` into preprocessing, hidden layers and readout (or say why it cannot)."""
    nodes = [n for n in graph.nodes if n.op != "input"]
    for node in nodes:
        consumers = graph.consumers(node.name)
        if len(node.inputs) != 1 or len(consumers) > 1:
            raise UnsupportedLayerError(
                f"layer {node.name!r} ({node.op}) branches: the Xylo simulator maps a chain "
                "of layers (each reading the one before it); concatenate, add and skip "
                "connections are not supported")
        if node.op == "max_pool2d" and not max2avg_pool:
            raise UnsupportedLayerError(
                f"layer {node.name!r} is a max pooling, which Xylo's neurons cannot compute; "
                "set conversion.max2avg_pool = true to map it as average pooling")
        if node.op not in LINEAR_OPS and node.op != "max_pool2d":
            raise UnsupportedLayerError(
                f"layer {node.name!r} ({node.op}) cannot be mapped to Xylo; supported: "
                f"{', '.join(LINEAR_OPS)}")
    pre = []
    for node in nodes:
        if node.has_weights or node.activation == "relu":
            break
        pre.append(node)
    rest = nodes[len(pre):]
    hidden, stretch = [], []
    for node in rest[:-1]:
        stretch.append(node)
        if node.activation == "relu":
            hidden.append(stretch)
            stretch = []
    readout = stretch + rest[-1:]
    return Plan(pre, hidden, readout, graph.input_node.output_shape)


def unroll(nodes: list[Node], in_shape: tuple[int, ...], max2avg_pool: bool = False):
    """The dense matrix ``(in, out)`` and bias ``(out,)`` of a linear stretch of nodes."""
    from ...ann import build_ann

    first = dataclasses.replace(nodes[0], inputs=["unroll_input"])
    body = [first] + [dataclasses.replace(n) for n in nodes[1:]]
    body[-1] = dataclasses.replace(body[-1], activation="linear")
    for i, n in enumerate(body):
        if n.op == "max_pool2d" and max2avg_pool:
            body[i] = dataclasses.replace(n, op="avg_pool2d")
    sub = Graph([Node("unroll_input", "input", [], in_shape)] + body, name="unroll")
    model = build_ann(sub)
    n_in = int(np.prod(in_shape))
    bias = np.asarray(model(np.zeros((1,) + tuple(in_shape), np.float32))).reshape(-1)
    rows = []
    for start in range(0, n_in, _UNROLL_BATCH):
        eye = np.eye(n_in, dtype=np.float32)[start:start + _UNROLL_BATCH]
        out = np.asarray(model(eye.reshape((-1,) + tuple(in_shape)))).reshape(len(eye), -1)
        rows.append(out - bias)
    return np.concatenate(rows).astype(np.float64), bias.astype(np.float64)


def build_float_network(p: Plan, max2avg_pool: bool = False) -> FloatNetwork:
    """Unroll every stretch of ``p`` and lay the blocks out in Xylo's matrices."""
    layers = p.layers
    n = sum(size for _, size in layers)
    input_map = None
    if p.preprocessing:
        input_map, _ = unroll(p.preprocessing, p.input_shape, max2avg_pool)
    in_shape = p.preprocessing[-1].output_shape if p.preprocessing else p.input_shape
    w_in = np.zeros((p.num_inputs, n))
    w_rec = np.zeros((n, n))
    bias = np.zeros(n)
    start = 0
    prev = None
    for (name, size), stretch in zip(layers, p.hidden):
        m, b = unroll(stretch, in_shape, max2avg_pool)
        if prev is None:
            w_in[:, start:start + size] = m
        else:
            w_rec[prev, start:start + size] = m
        bias[start:start + size] = b
        prev = slice(start, start + size)
        start += size
        in_shape = stretch[-1].output_shape
    w_out, bias_out = unroll(p.readout, in_shape, max2avg_pool)
    full_out = np.zeros((n, w_out.shape[1]))
    full_out[prev] = w_out
    return FloatNetwork(w_in, w_rec, full_out, bias, bias_out, layers, p.output_name,
                        input_map)
