"""The intermediate representation (IR) every stage works on.

A parsed model is an ordered DAG of :class:`Node` objects held by a
:class:`Graph`. The nodes are in topological order (every node comes after
the nodes it reads), shapes exclude the batch dimension, weights are plain
numpy arrays in Keras's layout, and layers that only exist for training
(Dropout) or that fold into a neighbour (BatchNormalization, Activation) are
gone.

Op kinds and their ``params``:

==================== ==========================================================
op                   params
==================== ==========================================================
``input``            --
``dense``            -- (weights ``kernel`` ``(in, out)``, ``bias`` ``(out,)``)
``conv2d``           ``strides``, ``padding`` (``"valid"``/``"same"``),
                     ``dilation_rate`` (weights ``kernel`` ``(kh, kw, cin, cout)``,
                     ``bias``)
``depthwise_conv2d`` ``strides``, ``padding``, ``dilation_rate``,
                     ``depth_multiplier`` (weights ``kernel``
                     ``(kh, kw, c, multiplier)``, ``bias`` ``(c*multiplier,)``)
``avg_pool2d``       ``pool_size``, ``strides``, ``padding``
``max_pool2d``       ``pool_size``, ``strides``, ``padding``
``global_avg_pool2d`` --
``flatten``          --
``reshape``          ``target_shape``
``concatenate``      ``axis`` (negative, counted from the end)
``add``              ``coefficients`` optional (see below)
``zero_padding2d``   ``padding`` (``((top, bottom), (left, right))``)
``cropping2d``       ``cropping`` (``((top, bottom), (left, right))``)
``upsampling2d``     ``size`` (``(rows, cols)``), ``mode``: ``"nearest"`` (each
                     value repeated) or ``"zeros"`` (each value followed by
                     ``size - 1`` zeros, the last row and column dropped: the
                     input grid of a transposed convolution)
``permute``          ``dims`` (Keras's, 1-based, without the batch axis)
``identity``         -- (an activation that could not merge into its producer)
==================== ==========================================================

After normalisation, ``add`` nodes carry ``coefficients`` (one factor per
input, a number or one per channel) and other weightless nodes with a
``relu`` activation carry a ``gain`` (a number, per channel, or full
shape): the node's result is multiplied by them. Both are absent (meaning
1) in a parsed graph, except where the parser gives an ``add`` its own
(``Subtract``: ``[1, -1]``, ``Average``: ``1/n`` each), which normalisation
multiplies into its scale ratios.

A ``relu`` node may carry ``max_value`` (``ReLU(max_value=6)``, ``relu6``):
the ANN clips there; in the SNN the neuron's threshold, whose rate λ never
exceeds the clipped maximum, stands for the clip.

``activation`` is one of ``"linear"``, ``"relu"``, ``"softmax"``. Weight ops
always carry a ``bias`` (zeros when the Keras layer had none) so later stages
need no special case.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from .choices import ACTIVATIONS

OPS = (
    "input", "dense", "conv2d", "depthwise_conv2d", "avg_pool2d", "max_pool2d",
    "global_avg_pool2d", "flatten", "reshape", "concatenate", "add",
    "zero_padding2d", "cropping2d", "upsampling2d", "permute", "identity",
)
# weightless ops that only move values (no neurons of their own, no arithmetic)
ROUTING_OPS = ("flatten", "reshape", "zero_padding2d", "cropping2d", "upsampling2d",
               "permute", "identity", "concatenate")
WEIGHT_OPS = ("dense", "conv2d", "depthwise_conv2d")


@dataclasses.dataclass
class Node:
    """One operation of the parsed network."""

    name: str
    op: str
    inputs: list[str]
    output_shape: tuple[int, ...]
    params: dict[str, Any] = dataclasses.field(default_factory=dict)
    weights: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    activation: str = "linear"
    # Names of the Keras layers this node stands for (a conv and the BN and
    # Activation folded into it), for messages and logs.
    source_layers: list[str] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"node {self.name!r}: unknown op {self.op!r}; known: {', '.join(OPS)}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"node {self.name!r}: unknown activation {self.activation!r}; "
                f"known: {', '.join(ACTIVATIONS)}")
        self.output_shape = tuple(int(d) for d in self.output_shape)

    @property
    def has_weights(self) -> bool:
        return self.op in WEIGHT_OPS

    def __repr__(self) -> str:
        weights = ", ".join(f"{k} {tuple(np.shape(v))}" for k, v in self.weights.items())
        return (f"Node({self.name!r}, {self.op}, {self.output_shape}, {self.activation}"
                f" <- {', '.join(self.inputs) or '-'}" + (f"; {weights}" if weights else "") + ")")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        return all(values_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))

    __hash__ = None


@dataclasses.dataclass
class Graph:
    """An ordered DAG of nodes with one input and one output node.

    ``scales`` is empty until :func:`snnconv.normalize` fills it: for every
    node, the factor λ by which its ANN activations were divided (a numpy
    array broadcastable to the node's output shape: a scalar, or one value
    per channel after a concatenation of differently scaled branches).
    """

    nodes: list[Node]
    name: str = "model"
    scales: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        seen = set()
        for node in self.nodes:
            if node.name in seen:
                raise ValueError(f"duplicate node name {node.name!r}")
            for src in node.inputs:
                if src not in seen:
                    raise ValueError(
                        f"node {node.name!r} reads {src!r}, which is not an earlier node")
            seen.add(node.name)
        inputs = [n for n in self.nodes if n.op == "input"]
        if len(inputs) != 1:
            raise ValueError(f"a graph needs exactly one input node, found {len(inputs)}")

    def __getitem__(self, name: str) -> Node:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def __iter__(self):
        return iter(self.nodes)

    def __len__(self):
        return len(self.nodes)

    @property
    def input_node(self) -> Node:
        return next(n for n in self.nodes if n.op == "input")

    @property
    def output_node(self) -> Node:
        """The last node: the one no other node reads."""
        return self.nodes[-1]

    def consumers(self, name: str) -> list[Node]:
        return [n for n in self.nodes if name in n.inputs]

    def copy(self) -> "Graph":
        """A deep copy (weights copied) that a stage may change freely."""
        nodes = [dataclasses.replace(
            n, inputs=list(n.inputs), params=dict(n.params),
            weights={k: v.copy() for k, v in n.weights.items()},
            source_layers=list(n.source_layers)) for n in self.nodes]
        return Graph(nodes, name=self.name,
                     scales={k: np.array(v, copy=True) for k, v in self.scales.items()},
                     metadata=dict(self.metadata))

    def __repr__(self) -> str:
        if not self.nodes:
            return f"Graph({self.name!r}: empty)"
        params = sum(int(np.size(w)) for n in self.nodes for w in n.weights.values())
        out = self.output_node
        return (f"Graph({self.name!r}: {len(self.nodes)} nodes, input "
                f"{self.input_node.output_shape} -> {out.name} {out.output_shape} "
                f"{out.activation}, {params:,} weights"
                + (", normalised" if self.scales else "") + "; .summary() lists the nodes)")

    def __eq__(self, other) -> bool:
        if not isinstance(other, Graph):
            return NotImplemented
        return all(values_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))

    __hash__ = None

    def summary(self) -> str:
        """One line per node: name, op, output shape, activation and inputs."""
        lines = [f"Graph {self.name!r}: {len(self.nodes)} nodes"]
        for n in self.nodes:
            srcs = ", ".join(n.inputs) or "-"
            lines.append(f"  {n.name:<24} {n.op:<18} {str(n.output_shape):<16} "
                         f"{n.activation:<8} <- {srcs}")
        return "\n".join(lines)


def values_equal(a, b) -> bool:
    """Equality that compares numpy arrays (also inside dicts, lists and tuples) by value."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return np.shape(a) == np.shape(b) and bool(np.array_equal(a, b, equal_nan=_floats(a, b)))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(values_equal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            values_equal(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b) or (a != a and b != b)      # NaN equals NaN here
    except (TypeError, ValueError):
        return False


def _floats(a, b) -> bool:
    return all(np.issubdtype(np.asarray(v).dtype, np.floating) for v in (a, b))
