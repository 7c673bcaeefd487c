"""Removing the layers that do not become IR nodes of their own.

The Keras walk (:mod:`snnconv.parsing.keras_parser`) produces, in topological
order, a mix of real IR :class:`~snnconv.ir.Node` objects and
:class:`RawLayer` records for three kinds of layers:

``passthrough``
    Dropout and friends: the identity at inference. Removed; readers are
    rewired to the layer's input and the name is recorded in the producer's
    ``source_layers``.
``batchnorm``
    Folded exactly into the preceding Dense / Conv2D / DepthwiseConv2D node:
    per output channel ``s = γ / sqrt(var + ε)``, ``W' = W·s``,
    ``b' = (b − mean)·s + β`` (γ = 1 when ``scale=False``, β = 0 when
    ``center=False``). The producer must have a linear activation and the BN
    must be its only reader; anything else is an error.
``activation``
    An ``Activation``/``ReLU``/``Softmax`` layer. ``linear`` is removed.
    ``relu``/``softmax`` merge into the producer's ``activation`` when the
    producer is not the input, has a linear activation and this layer is its
    only reader; otherwise it becomes an ``identity`` node (named after the
    activation layer) carrying the activation.

Everything is processed in one pass in topological order, so a chain such as
Conv2D → Dropout → BatchNormalization → ReLU ends up as one conv2d node with
``activation="relu"`` and ``source_layers`` naming all four layers.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from snnconv.ir import WEIGHT_OPS, Node
from snnconv.parsing.common import unsupported


@dataclasses.dataclass
class RawLayer:
    """A Keras layer that will be removed or folded into a neighbour."""

    name: str
    kind: str  # "passthrough", "batchnorm" or "activation"
    inputs: list[str]
    class_name: str
    output_shape: tuple[int, ...] = ()
    activation: str = "linear"
    bn: dict[str, Any] | None = None  # gamma, beta, mean, variance, epsilon


def fold_batchnorm_into(node: Node, gamma: np.ndarray | None, beta: np.ndarray | None,
                        mean: np.ndarray, variance: np.ndarray, epsilon: float) -> None:
    """Fold inference-mode batch normalisation into ``node``'s kernel and bias, in place."""
    mean = np.asarray(mean, np.float64)
    variance = np.asarray(variance, np.float64)
    gamma = np.ones_like(mean) if gamma is None else np.asarray(gamma, np.float64)
    beta = np.zeros_like(mean) if beta is None else np.asarray(beta, np.float64)
    scale = gamma / np.sqrt(variance + float(epsilon))
    kernel = node.weights["kernel"].astype(np.float64)
    bias = node.weights["bias"].astype(np.float64)
    if node.op == "depthwise_conv2d":
        # Output channel c*multiplier + m comes from kernel[..., c, m].
        kernel = kernel * scale.reshape(kernel.shape[-2], kernel.shape[-1])
    else:  # dense (in, out), conv2d (kh, kw, cin, cout): output channel is the last axis
        kernel = kernel * scale
    bias = (bias - mean) * scale + beta
    node.weights["kernel"] = kernel.astype(np.float32)
    node.weights["bias"] = bias.astype(np.float32)


def fold(items: list, output: str,
         classes: dict[str, str] | None = None) -> tuple[list[Node], str]:
    """Resolve the :class:`RawLayer` records; return the IR nodes and the output node's name.

    ``classes`` maps Keras layer names to class names, for error messages.
    """
    classes = classes or {}
    alias: dict[str, str] = {}
    live: dict[str, Node] = {}
    removed: set[str] = set()
    act_source: dict[str, str] = {}  # node name -> layer that gave it its activation

    def resolve(name: str) -> str:
        while name in alias:
            name = alias[name]
        return name

    def readers(name: str) -> int:
        count = 0
        for item in items:
            if item.name in removed:
                continue
            if any(resolve(src) == name for src in item.inputs):
                count += 1
        if resolve(output) == name:
            count += 1  # the model output is read by the outside world
        return count

    for item in items:
        item.inputs = [resolve(src) for src in item.inputs]
        if isinstance(item, Node):
            live[item.name] = item
            continue
        src = item.inputs[0]
        producer = live[src]
        # BN and activations act per channel, so they move through the reshape
        # that ends a Conv1D onto its conv2d (consumers still read the reshape)
        target = live[producer.params["conv1d"]] if producer.params.get("conv1d") \
            and readers(src) == 1 else producer
        if item.kind == "passthrough":
            alias[item.name] = src
            removed.add(item.name)
            producer.source_layers.append(item.name)
        elif item.kind == "batchnorm":
            _fold_bn(item, target, readers(src))
            alias[item.name] = src
            removed.add(item.name)
            target.source_layers.append(item.name)
        elif item.kind == "activation":
            if item.activation == "linear":
                alias[item.name] = src
                removed.add(item.name)
                producer.source_layers.append(item.name)
            elif (target.op != "input" and target.activation == "linear"
                  and readers(src) == 1):
                target.activation = item.activation
                act_source[target.name] = item.name
                alias[item.name] = src
                removed.add(item.name)
                target.source_layers.append(item.name)
            else:
                live[item.name] = Node(
                    name=item.name, op="identity", inputs=[src],
                    output_shape=producer.output_shape, activation=item.activation,
                    source_layers=[item.name])
        else:  # pragma: no cover - the walker only makes the kinds above
            raise AssertionError(f"unknown raw layer kind {item.kind!r}")

    out_name = resolve(output)
    nodes = list(live.values())
    if nodes[-1].name != out_name:
        # Every node of a Keras functional graph feeds the output, so the output is
        # last in any topological order; move it there defensively if not.
        out = live[out_name]
        nodes = [n for n in nodes if n is not out] + [out]
    for node in nodes:
        if node.activation == "softmax" and node.name != out_name:
            layer = act_source.get(node.name, node.name)
            raise unsupported(
                layer, classes.get(layer, "softmax activation"),
                f"softmax is only supported on the model's output layer, but it feeds "
                f"{', '.join(repr(c.name) for c in nodes if node.name in c.inputs)}")
    return nodes, out_name


def _fold_bn(bn: RawLayer, producer: Node, n_readers: int) -> None:
    cls = bn.class_name
    if producer.op not in WEIGHT_OPS:
        raise unsupported(
            bn.name, cls,
            f"BatchNormalization must directly follow a Dense, Conv2D, DepthwiseConv2D or "
            f"SeparableConv2D layer to be folded, but it follows {producer.name!r} "
            f"(op {producer.op})")
    if producer.activation != "linear":
        raise unsupported(
            bn.name, cls,
            f"BatchNormalization follows {producer.name!r}, whose activation is "
            f"{producer.activation!r}; it can only be folded into a layer with a linear "
            f"activation")
    if n_readers != 1:
        raise unsupported(
            bn.name, cls,
            f"BatchNormalization cannot be folded into {producer.name!r} because that layer's "
            f"output is also read by other layers")
    params = bn.bn
    channels = producer.output_shape[-1]
    if np.shape(params["mean"]) != (channels,):
        raise unsupported(
            bn.name, cls,
            f"BatchNormalization has {np.shape(params['mean'])} statistics but "
            f"{producer.name!r} has {channels} output channels")
    fold_batchnorm_into(producer, params["gamma"], params["beta"], params["mean"],
                        params["variance"], params["epsilon"])
