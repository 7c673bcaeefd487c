"""One IR node's operation on values (a dense product, a convolution, a pooling, a
routing op...), as one ANN forward pass computes it: what the event simulator
propagates and the interval bounds of ``signed_max_pool`` are built from."""
from __future__ import annotations

import numpy as np
from keras import ops

from .routing_ops import ROUTES, route


def node_op(node, ins):
    """One IR node's (linear or pooling) operation on its inputs' values."""
    p, op, x = node.params, node.op, ins[0]
    if op == "dense":
        y = ops.matmul(x, node.weights["kernel"]) + node.weights["bias"]
    elif op == "conv2d":
        y = ops.conv(x, node.weights["kernel"], strides=tuple(p["strides"]),
                     padding=p["padding"], dilation_rate=tuple(p["dilation_rate"])) \
            + node.weights["bias"]
    elif op == "depthwise_conv2d":
        y = ops.depthwise_conv(x, node.weights["kernel"], strides=tuple(p["strides"]),
                               padding=p["padding"], dilation_rate=tuple(p["dilation_rate"])) \
            + node.weights["bias"]
    elif op == "avg_pool2d":
        y = ops.average_pool(x, tuple(p["pool_size"]), strides=tuple(p["strides"]),
                             padding=p["padding"])
    elif op == "max_pool2d":
        y = ops.max_pool(x, tuple(p["pool_size"]), strides=tuple(p["strides"]),
                         padding=p["padding"])
    elif op == "global_avg_pool2d":
        y = ops.mean(x, axis=(1, 2))
    elif op in ("flatten", "reshape"):
        y = ops.reshape(x, (-1,) + tuple(node.output_shape))
    elif op == "concatenate":
        y = ops.concatenate(list(ins), axis=int(p["axis"]))
    elif op == "add":
        coeffs = p.get("coefficients") or [1.0] * len(ins)
        y = None
        for c, v in zip(coeffs, ins):
            term = v * np.asarray(c, np.float32)
            y = term if y is None else y + term
    elif op == "zero_padding2d":
        y = ops.pad(x, [(0, 0), *[tuple(q) for q in p["padding"]], (0, 0)])
    elif op in ROUTES:
        y = route(op, p, x)
    elif op == "identity":
        y = x
    else:
        raise ValueError(f"node {node.name!r}: no event-driven form of op {op!r}")
    if p.get("gain") is not None:
        y = y * np.asarray(p["gain"], np.float32)
    return y
