"""The compiled loop over time steps that every neuron model runs in.

``keras.ops.scan`` on the TensorFlow backend requires the per-step outputs
to have the structure of the carried state, and keeps the state in
TensorArrays; this is a plain ``tf.while_loop`` that carries the state as
tensors and stacks only the outputs asked for.

A sequence whose length is known when the graph is traced and at most
:data:`UNROLL_STEPS` is unrolled instead: a few steps of straight-line ops
run (and, above all, backpropagate: fine-tuning) about twice as fast as a
``while_loop`` with its TensorArray bookkeeping, and XLA compiles them.
"""
from __future__ import annotations

import tensorflow as tf

# the longest sequence unrolled (longer ones loop; see the module docstring)
UNROLL_STEPS = 32


def scan_time(step, state, inputs):
    """Run ``step(state, x_t) -> (new_state, outputs)`` over the time-major ``inputs``.

    ``inputs`` is a tensor or a tuple of tensors, time first; ``state`` a
    tuple of tensors; ``outputs`` a tuple of tensors. Returns the tuple of
    stacked outputs, each ``(time, ...)``.
    """
    inputs = tf.nest.map_structure(tf.convert_to_tensor, inputs)
    known = tf.nest.flatten(inputs)[0].shape[0]

    def at(t):
        return tf.nest.map_structure(lambda x: x[t], inputs)

    if known is not None and 0 < known <= UNROLL_STEPS:
        outs = []
        for t in range(known):
            state, out = step(tuple(state), at(t))
            outs.append(out)
        return tuple(tf.stack(column) for column in zip(*outs))

    steps = tf.shape(tf.nest.flatten(inputs)[0])[0]
    _, probe_out = step(state, at(0))     # traced once, only for dtypes/shapes
    arrays = tuple(tf.TensorArray(o.dtype, size=steps, element_shape=o.shape)
                   for o in probe_out)

    def body(t, state, arrays):
        new_state, outs = step(state, at(t))
        return t + 1, tuple(new_state), tuple(a.write(t, o) for a, o in zip(arrays, outs))

    _, _, arrays = tf.while_loop(lambda t, *_: t < steps, body,
                                 (tf.constant(0), tuple(state), arrays))
    return tuple(a.stack() for a in arrays)
