"""The compiled loop over time steps that every neuron model runs in.

``keras.ops.scan`` on the TensorFlow backend requires the per-step outputs
to have the structure of the carried state, and keeps the state in
TensorArrays; this is a plain ``tf.while_loop`` that carries the state as
tensors and stacks only the outputs asked for.
"""
from __future__ import annotations

import tensorflow as tf


def scan_time(step, state, inputs):
    """Run ``step(state, x_t) -> (new_state, outputs)`` over the time-major ``inputs``.

    ``inputs`` is a tensor or a tuple of tensors, time first; ``state`` a
    tuple of tensors; ``outputs`` a tuple of tensors. Returns the tuple of
    stacked outputs, each ``(time, ...)``.
    """
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    steps = tf.shape(tf.nest.flatten(inputs)[0])[0]

    def at(t):
        return tf.nest.map_structure(lambda x: x[t], inputs)

    _, probe_out = step(state, at(0))     # traced once, only for dtypes/shapes
    arrays = tuple(tf.TensorArray(o.dtype, size=steps, element_shape=o.shape)
                   for o in probe_out)

    def body(t, state, arrays):
        new_state, outs = step(state, at(t))
        return t + 1, tuple(new_state), tuple(a.write(t, o) for a, o in zip(arrays, outs))

    _, _, arrays = tf.while_loop(lambda t, *_: t < steps, body,
                                 (tf.constant(0), tuple(state), arrays))
    return tuple(a.stack() for a in arrays)
