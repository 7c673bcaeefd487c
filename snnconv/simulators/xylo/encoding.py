"""Xylo's host side: samples -> input channel values -> event counts per step.

Each sample becomes the input channel values (after the host
preprocessing, ``input_map``), and every time step the encoder turns those
values into event counts per channel: the deterministic
accumulate-and-fire (sigma-delta) encoder emits ``floor`` of the
accumulated ``value · events_per_unit``; the Poisson one draws counts with
that mean. Negative values send no events (Xylo's inputs are event counts).
The chip counts at most 15 events per channel and step.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ...errors import SnnconvError
from .network import XyloNetwork
from .spec import MAX_INPUT_EVENTS


def channel_values(net: XyloNetwork, x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.shape[1:] != tuple(net.input_shape) and x.reshape(len(x), -1).shape[1] != \
            int(np.prod(net.input_shape)):
        raise SnnconvError(f"inputs of shape {x.shape[1:]} do not fit the network's input "
                           f"{tuple(net.input_shape)}")
    flat = x.reshape(len(x), -1)
    return flat @ net.input_map if net.input_map is not None else flat


def encode_events(net: XyloNetwork, x, steps: int) -> np.ndarray:
    """The input event counts ``(B, T, channels)`` the simulator feeds for samples ``x``."""
    values = tf.constant(channel_values(net, x))
    encoder = Encoder(net)
    acc = tf.zeros_like(values)
    out = []
    for t in range(int(steps)):
        events, acc = encoder(values, acc, tf.constant(t))
        out.append(np.asarray(events))
    return np.stack(out, axis=1)


class Encoder:
    """Channel values -> event counts of one step (sigma-delta or Poisson)."""

    def __init__(self, net: XyloNetwork):
        self.rate = float(net.events_per_unit)
        self.poisson = net.encoding == "poisson"
        self.seed = int(net.seed)

    def __call__(self, values, acc, t):
        mean = tf.maximum(values, 0.0) * self.rate
        if self.poisson:
            events = tf.random.stateless_poisson(tf.shape(mean), [self.seed, t], mean,
                                                 dtype=tf.float64)
        else:
            acc = acc + mean
            events = tf.floor(acc)
            acc = acc - events
        return tf.cast(tf.minimum(events, MAX_INPUT_EVENTS), tf.int32), acc
