"""A synaptic delay: the signal of one connection, ``steps`` time steps later.

The converter puts one where a merge (``Add``, ``Concatenate``) reads a
branch that is fewer layers deep than the other, so that all its inputs are
read on one clock (the time-to-first-spike codes; see
:mod:`snnconv.time_windows`).

Two ways to delay:

* ``mode="step"``: for a post-synaptic potential that steps from 0 to 1 at
  the spike and stays 1 (the TTFS codes): the layer counts the steps the
  input has been on and outputs 1 once that count exceeds ``steps``. Its
  state is one number per element, whatever the delay;
* ``mode="fifo"``: any signal, through a ring buffer of ``steps`` frames.
  Before ``steps`` steps have passed it outputs zeros; under
  ``ttfs_dyn_thresh`` the prospective half of the frames then holds the
  first frame's (the branch's spikes are all still to come).
"""
from __future__ import annotations

import keras
from keras import ops

from .base import SpikeLayer

DELAY_MODES = ("step", "fifo")


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeDelay(SpikeLayer):
    """Delays its input by ``steps`` time steps."""

    def __init__(self, steps: int, mode: str = "fifo", **kwargs):
        super().__init__(**kwargs)
        if int(steps) < 0:
            raise ValueError(f"SpikeDelay {self.name!r}: steps must be >= 0, got {steps}")
        if mode not in DELAY_MODES:
            raise ValueError(f"SpikeDelay {self.name!r}: mode must be one of {DELAY_MODES}, "
                             f"got {mode!r}")
        self.steps = int(steps)
        self.mode = mode
        if self.prospective and mode == "step":
            raise ValueError(f"SpikeDelay {self.name!r}: ttfs_dyn_thresh frames carry "
                             "prospective spikes, which need mode 'fifo'")

    def frame_op(self, inputs):
        return inputs

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape)

    def initial_state(self, batch_size, input_frame_shape):
        rows = batch_size * 2 if self.prospective else batch_size
        frame = (rows,) + tuple(input_frame_shape)
        if self.steps == 0:
            return ()
        if self.mode == "step":
            return (ops.zeros(frame),)
        return (ops.zeros((self.steps,) + frame), ops.zeros((), dtype="int32"))

    def step(self, inputs, state):
        if self.steps == 0:
            return inputs, state
        if self.mode == "step":
            on = state[0] + ops.cast(inputs > 0, inputs.dtype)
            return ops.cast(on > self.steps, inputs.dtype), (on,)
        buffer, k = state
        if self.prospective:        # the prospective half starts as the first frame's
            half = ops.shape(inputs)[0] // 2
            first = ops.concatenate([ops.zeros_like(inputs[:half]), inputs[half:]], axis=0)
            buffer = ops.where(ops.equal(k, 0), ops.broadcast_to(first[None], ops.shape(buffer)),
                               buffer)
        slot = k % self.steps
        out = ops.take(buffer, slot, axis=0)
        start = (slot,) + (0,) * (len(buffer.shape) - 1)
        return out, (ops.slice_update(buffer, start, inputs[None]), k + 1)

    def call(self, inputs):
        if self.steps == 0:
            return inputs
        if self.mode == "step":
            on = ops.cumsum(ops.cast(inputs > 0, inputs.dtype), axis=1)
            return ops.cast(on > self.steps, inputs.dtype)
        length = ops.shape(inputs)[1]
        head = ops.repeat(inputs[:, :1], self.steps, axis=1)
        if self.prospective:
            half = ops.shape(inputs)[0] // 2
            head = ops.concatenate([ops.zeros_like(head[:half]), head[half:]], axis=0)
        else:
            head = ops.zeros_like(head)
        return ops.concatenate([head, inputs], axis=1)[:, :length]

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "mode": self.mode}
