"""Connection counts: how many synapses each spike drives.

A spike of neuron ``i`` of node ``s`` travels through nodes without weights
(pooling, flatten, padding, concatenation...) to the next nodes that
integrate it (weight nodes, or neurons fed directly). Its *fan-out* is the
number of synaptic connections it reaches there; a synaptic operation
(SynOp) is one such delivery. The fan-out map of a node is computed exactly,
borders and strides included, as the gradient of a "counting" copy of the
downstream network (every weight replaced by 1, every pooling by a sum
pooling) with respect to the node's output: since that network is linear,
the gradient at neuron ``i`` is the number of paths, i.e. connections, from
``i``.

The counting network runs in float64: the counts are exact integers there,
and TensorFlow's CPU kernels for float64 are not oneDNN's, whose float32
backward pass of a strided 1x1 convolution has been seen to corrupt the heap
(TensorFlow 2.21).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf
from keras import ops

from .ir import Graph, Node
from .routing_ops import ROUTES, route

COUNT_DTYPE = tf.float64


def fanout_maps(graph: Graph, sources: list[str],
                through_max_pool: bool = True) -> dict[str, np.ndarray]:
    """Fan-out of every element of each source node (shape: the node's output shape).

    ``through_max_pool=False``: spikes stop at max pooling nodes (which then
    count the spikes they pass on as sources of their own: under the exact
    TTFS code only a window's earliest spike goes through).
    """
    return {name: _fanout(graph, name, through_max_pool) for name in sources}


def _fanout(graph: Graph, source: str, through_max_pool: bool = True) -> np.ndarray:
    x = tf.ones((1,) + graph[source].output_shape, COUNT_DTYPE)
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = _delivered(graph, source, x, through_max_pool)
    grad = tape.gradient(total, x) if total is not None else None
    if grad is None:
        return np.zeros(graph[source].output_shape, dtype=np.float32)
    return np.rint(grad.numpy()[0]).astype(np.float32)


def _delivered(graph: Graph, source: str, x, through_max_pool: bool = True):
    values, total = {source: x}, None
    for node in graph.nodes:
        if node.name == source or not any(i in values for i in node.inputs):
            continue
        if node.op == "max_pool2d" and not through_max_pool:
            continue
        ins = [values[i] if i in values
               else tf.zeros((1,) + graph[i].output_shape, COUNT_DTYPE) for i in node.inputs]
        y = _count_op(node, ins)
        if node.has_weights or node.activation == "relu":
            total = ops.sum(y) if total is None else total + ops.sum(y)
        else:
            values[node.name] = y
    return total


def _sum_pool(x, node: Node):
    # channels as the batch of a one-channel convolution (a depthwise convolution
    # would do, but TF's takes only equal strides, and 1-D pooling has (1, k))
    kernel = tf.ones(tuple(node.params["pool_size"]) + (1, 1), COUNT_DTYPE)
    planes = ops.expand_dims(ops.transpose(x, (3, 1, 2, 0))[..., 0], -1)
    y = ops.conv(planes, kernel, strides=node.params["strides"],
                 padding=node.params["padding"])
    return ops.expand_dims(ops.transpose(y[..., 0], (1, 2, 0)), 0)


def _count_op(node: Node, ins):
    """The node's operation with every weight 1 and every average a sum."""
    x, p = ins[0], node.params
    if node.op == "dense":
        return ops.matmul(x, tf.ones(node.weights["kernel"].shape, COUNT_DTYPE))
    if node.op == "conv2d":
        return ops.conv(x, tf.ones(node.weights["kernel"].shape, COUNT_DTYPE),
                        strides=p["strides"], padding=p["padding"],
                        dilation_rate=p.get("dilation_rate", 1))
    if node.op == "depthwise_conv2d":
        return ops.depthwise_conv(x, tf.ones(node.weights["kernel"].shape, COUNT_DTYPE),
                                  strides=p["strides"], padding=p["padding"],
                                  dilation_rate=p.get("dilation_rate", 1))
    if node.op in ("avg_pool2d", "max_pool2d"):
        return _sum_pool(x, node)
    if node.op == "global_avg_pool2d":
        return ops.sum(x, axis=(1, 2))
    if node.op in ("flatten", "reshape"):
        return ops.reshape(x, (1,) + node.output_shape)
    if node.op == "zero_padding2d":
        return ops.pad(x, [(0, 0), *p["padding"], (0, 0)])
    if node.op in ROUTES:
        return route(node.op, p, x)
    if node.op == "concatenate":
        return ops.concatenate(ins, axis=p["axis"])
    if node.op == "add":
        return sum(ins[1:], ins[0])
    if node.op == "identity":
        return x
    raise ValueError(f"no connection count for op {node.op!r} (node {node.name!r})")
