"""Rebuilding a plain Keras ANN from the IR, and counting its multiply-accumulates.

:func:`build_ann` turns a :class:`~snnconv.ir.Graph` back into a functional
``keras.Model`` made of standard layers holding the IR weights. It is used to
compute the activations the normalisation needs and to check the parser
against the original model.

Each node becomes one Keras layer with the node's weights; a weight node
applies its activation inside the layer, any other node with a non-linear
activation gets a separate ``Activation`` layer after it, so every node's
*post-activation* output is one Keras tensor. A node trained with a QCFS
activation (``params["qcfs"]``) gets its :class:`~snnconv.layers.QCFS` after
it, with the threshold in the node's normalised units. Layer names are the node names
(characters Keras refuses, such as ``/``, become ``_``).
"""
from __future__ import annotations

import re

import numpy as np

from snnconv.files import unique_name
from snnconv.ir import Graph, Node
from snnconv.routing_ops import spread_with_zeros


def _layer_name(name: str, used: set[str]) -> str:
    candidate = unique_name(re.sub(r"[^A-Za-z0-9_.\-]", "_", name) or "node", used)
    used.add(candidate)
    return candidate


def _apply(node: Node, inputs: list, used: set[str], scale=None):
    import keras

    L = keras.layers
    p = node.params
    name = _layer_name(node.name, used)
    op = node.op
    # a clipped ReLU gets its own layer after the weights
    weight_activation = "linear" if p.get("max_value") is not None else node.activation
    if op == "dense":
        kernel, bias = node.weights["kernel"], node.weights["bias"]
        layer = L.Dense(kernel.shape[1], activation=weight_activation, name=name)
        out = layer(inputs[0])
        layer.set_weights([kernel, bias])
        return _clipped(node, out, used, scale)
    if op == "conv2d":
        kernel, bias = node.weights["kernel"], node.weights["bias"]
        layer = L.Conv2D(kernel.shape[3], kernel.shape[:2], strides=tuple(p["strides"]),
                         padding=p["padding"], dilation_rate=tuple(p["dilation_rate"]),
                         activation=weight_activation, name=name)
        out = layer(inputs[0])
        layer.set_weights([kernel, bias])
        return _clipped(node, out, used, scale)
    if op == "depthwise_conv2d":
        kernel, bias = node.weights["kernel"], node.weights["bias"]
        layer = L.DepthwiseConv2D(kernel.shape[:2], strides=tuple(p["strides"]),
                                  padding=p["padding"],
                                  depth_multiplier=int(p["depth_multiplier"]),
                                  dilation_rate=tuple(p["dilation_rate"]),
                                  activation=weight_activation, name=name)
        out = layer(inputs[0])
        layer.set_weights([kernel, bias])
        return _clipped(node, out, used, scale)
    if op == "avg_pool2d":
        out = L.AveragePooling2D(tuple(p["pool_size"]), strides=tuple(p["strides"]),
                                 padding=p["padding"], name=name)(inputs[0])
    elif op == "max_pool2d":
        out = L.MaxPooling2D(tuple(p["pool_size"]), strides=tuple(p["strides"]),
                             padding=p["padding"], name=name)(inputs[0])
    elif op == "global_avg_pool2d":
        out = L.GlobalAveragePooling2D(name=name)(inputs[0])
    elif op == "flatten":
        out = L.Flatten(name=name)(inputs[0])
    elif op == "reshape":
        out = L.Reshape(tuple(p["target_shape"]), name=name)(inputs[0])
    elif op == "concatenate":
        out = L.Concatenate(axis=int(p["axis"]), name=name)(inputs)
    elif op == "add":
        coeffs = p.get("coefficients")
        if coeffs is not None:   # set by normalisation: branches met at different scales
            inputs = [keras.ops.multiply(t, np.asarray(c, dtype="float32"))
                      for t, c in zip(inputs, coeffs)]
        out = L.Add(name=name)(inputs)
    elif op == "zero_padding2d":
        (t, b), (l, r) = p["padding"]
        out = L.ZeroPadding2D(((t, b), (l, r)), name=name)(inputs[0])
    elif op == "cropping2d":
        out = L.Cropping2D(tuple(tuple(c) for c in p["cropping"]), name=name)(inputs[0])
    elif op == "upsampling2d":
        out = (L.UpSampling2D(tuple(p["size"]), interpolation="nearest", name=name)(inputs[0])
               if p["mode"] == "nearest" else zero_spread()(p["size"], name=name)(inputs[0]))
    elif op == "permute":
        out = L.Permute(tuple(p["dims"]), name=name)(inputs[0])
    elif op == "identity":
        out = inputs[0]
    else:
        raise ValueError(f"node {node.name!r}: build_ann cannot rebuild op {op!r}")
    if p.get("gain") is not None:   # set by normalisation for weightless ReLU nodes
        out = keras.ops.multiply(out, np.asarray(p["gain"], dtype="float32"))
    if p.get("max_value") is not None and node.activation == "relu":
        return _clipped(node, out, used, scale, name if op == "identity" else None)
    if op == "identity":
        return L.Activation(node.activation, name=name)(out)
    if node.activation != "linear":
        out = L.Activation(node.activation, name=_layer_name(f"{node.name}_act", used))(out)
    return out


def _clipped(node: Node, out, used: set[str], scale, name=None):
    """``ReLU(max_value)`` after ``out`` where the node carries one (in the node's own
    units: the clip divided by its normalisation scale); ``out`` otherwise."""
    import keras

    max_value = node.params.get("max_value")
    if max_value is None or node.activation != "relu":
        return out
    name = name or _layer_name(f"{node.name}_act", used)
    clip = np.asarray(max_value / (1.0 if scale is None else np.asarray(scale, np.float64)))
    if clip.ndim == 0 or np.all(clip == clip.flat[0]):
        return keras.layers.ReLU(max_value=float(clip.flat[0]), name=name)(out)
    return keras.ops.minimum(keras.layers.ReLU(name=name)(out), clip.astype("float32"))


_ZERO_SPREAD = []


def zero_spread():
    """The ``ZeroSpread`` Keras layer class: :func:`spread_with_zeros` as a layer (made on
    first use, as keras is imported lazily here)."""
    if _ZERO_SPREAD:
        return _ZERO_SPREAD[0]
    import keras

    @keras.saving.register_keras_serializable(package="snnconv")
    class ZeroSpread(keras.layers.Layer):
        def __init__(self, size=(2, 2), **kwargs):
            super().__init__(**kwargs)
            self.size = tuple(int(v) for v in size)

        def call(self, x):
            return spread_with_zeros(x, self.size)

        def compute_output_shape(self, shape):
            return (shape[0], (shape[1] - 1) * self.size[0] + 1,
                    (shape[2] - 1) * self.size[1] + 1, shape[3])

        def get_config(self):
            return {**super().get_config(), "size": self.size}

    _ZERO_SPREAD.append(ZeroSpread)
    return ZeroSpread


def _apply_qcfs(node: Node, inputs: list, used: set[str], scale):
    """A node trained with a QCFS activation: its layer, then the QCFS (with the
    threshold in the node's normalised units when the graph is normalised)."""
    import dataclasses

    from .layers.qcfs import QCFS

    out = _apply(dataclasses.replace(node, activation="linear"), inputs, used)
    qcfs = node.params["qcfs"]
    threshold = qcfs["threshold"] / (1.0 if scale is None else float(np.max(scale)))
    return QCFS(qcfs["levels"], initial_threshold=threshold,
                name=_layer_name(f"{node.name}_qcfs", used))(out)


def build_ann(graph: Graph, outputs=None):
    """Rebuild ``graph`` as a Keras functional model.

    ``outputs``: ``None`` -> the model returns the output node's tensor;
    ``"all"`` -> a list with every non-input node's post-activation output, in
    graph order (``[n for n in graph.nodes if n.op != "input"]``); a list of
    node names -> those nodes' outputs, in that order.
    """
    import keras

    used: set[str] = set()
    tensors = {}
    model_input = None
    for node in graph.nodes:
        if node.op == "input":
            model_input = keras.Input(shape=node.output_shape,
                                      name=_layer_name(node.name, used))
            tensors[node.name] = model_input
        else:
            ins = [tensors[s] for s in node.inputs]
            tensors[node.name] = _apply_qcfs(node, ins, used, graph.scales.get(node.name)) \
                if node.params.get("qcfs") and node.activation == "relu" \
                else _apply(node, ins, used, graph.scales.get(node.name))
    if outputs is None:
        selected = tensors[graph.output_node.name]
    elif isinstance(outputs, str) and outputs == "all":
        selected = [tensors[n.name] for n in graph.nodes if n.op != "input"]
    else:
        if isinstance(outputs, str):
            raise ValueError(
                f"outputs must be None, 'all' or a list of node names, got {outputs!r}")
        missing = [o for o in outputs if o not in tensors]
        if missing:
            raise ValueError(f"outputs: unknown node name(s) {missing}; graph nodes: "
                             f"{', '.join(tensors)}")
        selected = [tensors[o] for o in outputs]
    model_name = re.sub(r"[^A-Za-z0-9_.\-]", "_", graph.name) or "ann"
    return keras.Model(model_input, selected, name=model_name)


def count_macs(graph: Graph) -> dict[str, int]:
    """Multiply-accumulate operations per weight node, for one sample.

    Exact formulas (zero padding counts as real input positions; bias adds are
    not counted):

    * ``dense``: ``P · in_features · out`` where ``P`` is the number of
      positions the dense layer is applied at (the product of the output
      shape without its last axis; 1 for a plain vector input);
    * ``conv2d``: ``H_out · W_out · C_out · kh · kw · C_in``;
    * ``depthwise_conv2d``: ``H_out · W_out · C · multiplier · kh · kw``.

    Returns ``{node_name: macs}`` for the weight nodes, in graph order.
    """
    macs: dict[str, int] = {}
    for node in graph.nodes:
        kernel = node.weights.get("kernel")
        if node.op == "dense":
            positions = int(np.prod(node.output_shape[:-1], dtype=np.int64))
            in_features, units = kernel.shape
            macs[node.name] = positions * int(in_features) * int(units)
        elif node.op == "conv2d":
            h, w, c_out = node.output_shape
            kh, kw, c_in, _ = kernel.shape
            macs[node.name] = int(h) * int(w) * int(c_out) * int(kh) * int(kw) * int(c_in)
        elif node.op == "depthwise_conv2d":
            h, w, _ = node.output_shape
            kh, kw, c, mult = kernel.shape
            macs[node.name] = int(h) * int(w) * int(c) * int(mult) * int(kh) * int(kw)
    return macs
