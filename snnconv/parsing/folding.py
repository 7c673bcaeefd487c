"""Removing the layers that do not become IR nodes of their own.

The Keras walk (:mod:`snnconv.parsing.keras_parser`) produces, in topological
order, a mix of real IR :class:`~snnconv.ir.Node` objects and
:class:`RawLayer` records for three kinds of layers:

``passthrough``
    Dropout and friends: the identity at inference. Removed; readers are
    rewired to the layer's input and the name is recorded in the producer's
    ``source_layers``.
``batchnorm``
    Folded exactly into the preceding Dense / Conv2D / DepthwiseConv2D node
    when that node has a linear activation and the BN is its only reader:
    per output channel ``s = γ / sqrt(var + ε)``, ``W' = W·s``,
    ``b' = (b − mean)·s + β`` (γ = 1 when ``scale=False``, β = 0 when
    ``center=False``). On the model's input it is an elementwise affine map
    (as ``Normalization`` below). Anywhere else (after pooling, an ``Add``,
    a concatenation, a ReLU, or a layer others read too: the pre-activation
    blocks of ResNetV2 and DenseNet) it becomes a per-channel affine node of
    its own, a diagonal linear layer: a 1×1 ``depthwise_conv2d`` on images,
    a ``dense`` with a diagonal kernel otherwise. A ReLU after it merges into
    it, so it may be a layer of neurons.
``affine``
    ``Rescaling`` (``x·scale + offset``) and ``Normalization``
    (``(x − mean)/√var``): an elementwise affine map ``a·x + c``. It becomes no
    node: its output is carried as *virtual* (``a`` and ``c`` over the
    tensor's shape, on top of the IR value of its input), through Dropout
    and linear activations, Flatten and Reshape (the arrays reshaped),
    ZeroPadding2D (when ``c = 0``), average pooling and max pooling (when
    ``a`` and ``c`` are one value per channel, and ``a > 0`` for max), and
    chained affine layers (composed), and is folded exactly into each Dense /
    Conv2D / DepthwiseConv2D that reads it: ``W' = W·a`` along the input
    axis, ``b' = b + W·c``. A convolution whose padding adds zeros can take
    the offset only when ``c = 0`` (the zeros would stand for ``c``
    otherwise), and a convolution needs ``a`` and ``c`` per channel; anything
    else reading it is an error naming both layers. So the SNN takes the
    model's raw input (never negative because of an offset), and nothing of
    the preprocessing is lost.
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
    kind: str  # "passthrough", "batchnorm", "activation" or "affine"
    inputs: list[str]
    class_name: str
    output_shape: tuple[int, ...] = ()
    activation: str = "linear"
    bn: dict[str, Any] | None = None  # gamma, beta, mean, variance, epsilon
    affine: tuple | None = None  # (scale, offset), float64 arrays of output_shape
    params: dict | None = None  # node params an activation brings (QCFS: {"qcfs": ...})


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

    virtual: dict[str, _Virtual] = {}  # Keras tensor -> a·(IR value) + c, not folded yet

    for item in items:
        item.inputs = [resolve(src) for src in item.inputs]
        if isinstance(item, Node):
            if any(src in virtual for src in item.inputs):
                _apply_virtual(item, virtual, classes)
            live[item.name] = item
            continue
        src = item.inputs[0]
        if item.kind == "batchnorm" and (src in virtual or live[src].op == "input"):
            # on the input (or a scaling of it): an elementwise affine map like Normalization
            item = _bn_as_affine(item)
        if item.kind == "affine" or src in virtual:
            _virtual_through(item, src, virtual, classes)
            removed.add(item.name)
            continue
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
            _check_bn_channels(item, producer)
            if _foldable_bn(target, readers(src)):
                _fold_bn(item, target)
                alias[item.name] = src
                removed.add(item.name)
                target.source_layers.append(item.name)
            else:   # after pooling, an Add, a ReLU, a shared output: a node of its own
                live[item.name] = bn_node(item, src)
        elif item.kind == "activation":
            if item.activation == "linear":
                alias[item.name] = src
                removed.add(item.name)
                producer.source_layers.append(item.name)
            elif (target.op != "input" and target.activation == "linear"
                  and readers(src) == 1):
                target.activation = item.activation
                target.params.update(item.params or {})
                act_source[target.name] = item.name
                alias[item.name] = src
                removed.add(item.name)
                target.source_layers.append(item.name)
            else:
                live[item.name] = Node(
                    name=item.name, op="identity", inputs=[src],
                    output_shape=producer.output_shape, activation=item.activation,
                    params=dict(item.params or {}), source_layers=[item.name])
        else:  # pragma: no cover - the walker only makes the kinds above
            raise AssertionError(f"unknown raw layer kind {item.kind!r}")

    out_name = resolve(output)
    if out_name in virtual:
        v = virtual[out_name]
        raise unsupported(v.layers[-1], classes.get(v.layers[-1], "Rescaling"),
                          "an elementwise scaling (Rescaling/Normalization) at the model's output "
                          "cannot be converted; it must be read by a Dense or convolution layer")
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


@dataclasses.dataclass
class _Virtual:
    """A tensor that is ``scale·(IR value of ir_name) + offset`` (arrays of its shape)."""

    ir_name: str
    scale: np.ndarray
    offset: np.ndarray
    layers: list[str]  # the Keras layers that made the map, for source_layers and messages


def _per_channel(v: _Virtual):
    """``(scale, offset)`` as one value per channel (last axis), or None if they vary."""
    c = v.scale.shape[-1] if v.scale.ndim else 1
    s, o = v.scale.reshape(-1, c), v.offset.reshape(-1, c)
    if np.all(s == s[0]) and np.all(o == o[0]):
        return s[0], o[0]
    return None


def _virtual_through(item: RawLayer, src: str, virtual: dict, classes: dict) -> None:
    """An affine layer starts (or extends) a virtual tensor; identities pass it on."""
    if item.kind == "affine":
        scale, offset = item.affine
        if src in virtual:             # a·(a0·x + c0) + c = (a·a0)·x + (a·c0 + c)
            v = virtual[src]
            virtual[item.name] = _Virtual(v.ir_name, scale * v.scale, scale * v.offset + offset,
                                          v.layers + [item.name])
        else:
            virtual[item.name] = _Virtual(src, scale, offset, [item.name])
        return
    v = virtual[src]
    if item.kind == "passthrough" or (item.kind == "activation" and item.activation == "linear"):
        virtual[item.name] = _Virtual(v.ir_name, v.scale, v.offset, v.layers + [item.name])
        return
    raise unsupported(item.name, item.class_name,
                      f"it reads the output of {v.layers[-1]!r} "
                      f"({classes.get(v.layers[-1], 'Rescaling')}), an elementwise scaling that "
                      "can only be folded into the Dense or convolution layers reading it "
                      "(through Dropout, Flatten, Reshape, ZeroPadding2D and pooling)")


def _apply_virtual(node: Node, virtual: dict, classes: dict) -> None:
    """Fold the virtual inputs of ``node`` into it, or carry them past it."""
    v = virtual[node.inputs[0]] if len(node.inputs) == 1 else None
    name = next(virtual[s].layers[-1] for s in node.inputs if s in virtual)

    def refuse(reason: str):
        return unsupported(name, classes.get(name, "Rescaling"),
                           f"its elementwise scaling cannot be folded into {node.name!r} "
                           f"({classes.get(node.source_layers[0], node.op) if node.source_layers else node.op}): "
                           f"{reason}")

    if v is None:
        raise refuse(f"{node.op} layers with several inputs do not take it; put the scaling "
                     "before the branches or after a Dense or convolution")
    node.inputs = [v.ir_name]
    op = node.op
    if op in ("flatten", "reshape"):
        shape = node.output_shape
        virtual[node.name] = _Virtual(node.name, v.scale.reshape(shape), v.offset.reshape(shape),
                                      v.layers)
        return
    if op == "zero_padding2d":
        if np.any(v.offset != 0):
            raise refuse("zero padding would stand for the offset's value; only a scaling "
                         "without offset passes padding")
        # the padded zeros stay zero under any scale: repeat the edge's
        pad = tuple(node.params["padding"]) + ((0, 0),)
        virtual[node.name] = _Virtual(node.name, np.pad(v.scale, pad, mode="edge"),
                                      np.zeros(node.output_shape), v.layers)
        return
    per = _per_channel(v)
    if op in ("avg_pool2d", "max_pool2d", "global_avg_pool2d"):
        if per is None:
            raise refuse("pooling passes only one scale and offset per channel")
        if op == "max_pool2d" and np.any(per[0] <= 0):
            raise refuse("max pooling passes only a positive scale")
        shape = node.output_shape
        virtual[node.name] = _Virtual(node.name, np.broadcast_to(per[0], shape).copy(),
                                      np.broadcast_to(per[1], shape).copy(), v.layers)
        return
    if op not in ("dense", "conv2d", "depthwise_conv2d"):
        raise refuse(f"a {op} node does not take it")
    kernel = node.weights["kernel"].astype(np.float64)
    bias = node.weights["bias"].astype(np.float64)
    if op == "dense":
        n_in = kernel.shape[0]
        s, o = v.scale.reshape(-1, n_in), v.offset.reshape(-1, n_in)
        if not (np.all(s == s[0]) and np.all(o == o[0])):
            raise refuse("a Dense layer on a tensor of rank > 1 takes one scale and offset "
                         "per input feature (last axis)")
        scale, offset = s[0], o[0]
        new_kernel = kernel * scale[:, None]
        bias = bias + offset @ kernel
    else:
        if per is None:
            raise refuse("a convolution takes one scale and offset per input channel")
        scale, offset = per
        if np.any(offset != 0) and _pads(node, v.scale.shape):
            raise refuse("its padding adds zeros, which would stand for the offset's value; "
                         "use padding='valid', or a scaling without offset")
        if op == "conv2d":
            new_kernel = kernel * scale[None, None, :, None]
            bias = bias + np.einsum("hwio,i->o", kernel, offset)
        else:                                       # (kh, kw, C, multiplier)
            new_kernel = kernel * scale[None, None, :, None]
            bias = bias + (kernel.sum(axis=(0, 1)) * offset[:, None]).reshape(-1)
    node.weights["kernel"] = new_kernel.astype(np.float32)
    node.weights["bias"] = bias.astype(np.float32)
    node.source_layers[:0] = v.layers


def _pads(node: Node, in_shape: tuple) -> bool:
    """Whether a convolution's padding adds any zeros to an input of ``in_shape``."""
    if node.params.get("padding") != "same":
        return False
    k = node.weights["kernel"].shape[:2]
    for size, kk, s, d in zip(in_shape[:2], k, node.params["strides"],
                              node.params["dilation_rate"]):
        out = -(-size // s)
        if max((out - 1) * s + (kk - 1) * d + 1 - size, 0) > 0:
            return True
    return False


def _foldable_bn(producer: Node, n_readers: int) -> bool:
    return producer.op in WEIGHT_OPS and producer.activation == "linear" and n_readers == 1


def _check_bn_channels(bn: RawLayer, producer: Node) -> None:
    channels = producer.output_shape[-1]
    if np.shape(bn.bn["mean"]) != (channels,):
        raise unsupported(
            bn.name, bn.class_name,
            f"BatchNormalization has {np.shape(bn.bn['mean'])} statistics but "
            f"{producer.name!r} has {channels} output channels")


def _fold_bn(bn: RawLayer, producer: Node) -> None:
    params = bn.bn
    fold_batchnorm_into(producer, params["gamma"], params["beta"], params["mean"],
                        params["variance"], params["epsilon"])


def bn_affine(bn: dict) -> tuple[np.ndarray, np.ndarray]:
    """Inference-mode batch normalisation as ``scale·x + offset`` per channel (float64)."""
    mean = np.asarray(bn["mean"], np.float64)
    gamma = np.ones_like(mean) if bn["gamma"] is None else np.asarray(bn["gamma"], np.float64)
    beta = np.zeros_like(mean) if bn["beta"] is None else np.asarray(bn["beta"], np.float64)
    scale = gamma / np.sqrt(np.asarray(bn["variance"], np.float64) + float(bn["epsilon"]))
    return scale, beta - mean * scale


def _bn_as_affine(item: RawLayer) -> RawLayer:
    scale, offset = bn_affine(item.bn)
    shape = tuple(item.output_shape)
    return dataclasses.replace(item, kind="affine",
                               affine=(np.broadcast_to(scale, shape).copy(),
                                       np.broadcast_to(offset, shape).copy()))


def bn_node(item: RawLayer, src: str) -> Node:
    """A standalone batch normalisation as a diagonal linear node reading ``src``."""
    scale, offset = bn_affine(item.bn)
    shape = tuple(item.output_shape)
    c = len(scale)
    if len(shape) == 3:        # images: a 1x1 depthwise convolution, multiplier 1
        return Node(name=item.name, op="depthwise_conv2d", inputs=[src], output_shape=shape,
                    params={"strides": (1, 1), "padding": "valid", "dilation_rate": (1, 1),
                            "depth_multiplier": 1},
                    weights={"kernel": scale.reshape(1, 1, c, 1).astype(np.float32),
                             "bias": offset.astype(np.float32)},
                    source_layers=[item.name])
    return Node(name=item.name, op="dense", inputs=[src], output_shape=shape,
                weights={"kernel": np.diag(scale).astype(np.float32),
                         "bias": offset.astype(np.float32)},
                source_layers=[item.name])
