"""Spike* pooling layers."""
from __future__ import annotations

import keras
from keras import ops

from ..shapes import conv_out_len, pair
from .base import SpikeLayer, fold_time, unfold_time


class _SpikePool2D(SpikeLayer):
    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.pool_size = pair(pool_size)
        self.strides = pair(strides) if strides is not None else self.pool_size
        self.padding = padding

    def frame_output_shape(self, frame_shape):
        spatial = tuple(conv_out_len(frame_shape[i], self.pool_size[i], self.strides[i],
                                      self.padding, 1) for i in range(2))
        return spatial + (frame_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeAveragePooling2D(_SpikePool2D):
    """Average pooling of the incoming signal, step by step (a linear map)."""

    def frame_op(self, inputs):
        return ops.average_pool(inputs, self.pool_size, strides=self.strides,
                                padding=self.padding)


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeMaxPooling2D(_SpikePool2D):
    """Max pooling in the spiking domain: passes the spikes of the max-rate input.

    Taking the max of spikes at each step would pass the union of all
    inputs' spikes (over-estimating the max); averaging would be an average
    pool in disguise. Instead each window tracks the running maximum of its
    inputs' *cumulative* spike counts, and emits the increase of that
    maximum: at every step the output has fired exactly as often as the
    input that has fired most so far. With one spike per step this is the
    same as gating through the input with the highest count.

    Under the TTFS codes a neuron's output is 0 before and 1 after its one
    spike, so the plain max of each step passes the first spike of the
    window. Its prospective spike (``ttfs_dyn_thresh``) is 1 while the
    window has not passed a spike yet and some input in it may still fire:
    once the first spike is through, later ones change nothing.
    """

    def _gate(self, out):
        """``[psp; max of prospective]`` -> ``[psp; prospective of windows not yet fired]``."""
        half = ops.shape(out)[0] // 2
        psp = out[:half]
        return ops.concatenate([psp, out[half:] * (1.0 - psp)], axis=0)

    def frame_op(self, inputs):
        return ops.max_pool(inputs, self.pool_size, strides=self.strides, padding=self.padding)

    def call(self, inputs):
        out = super().call(inputs)
        return self._gate(out) if self.prospective else out

    def synapse(self, inputs, op=None):
        if self.spike_code != "rate":
            return super().synapse(inputs, op)
        x, bt = fold_time(ops.cumsum(inputs, axis=1))
        running_max = unfold_time(self.frame_op(x), bt)
        previous = ops.pad(running_max[:, :-1], [(0, 0), (1, 0)] + [(0, 0)] * 3)
        return running_max - previous

    def initial_state(self, batch_size, input_frame_shape):
        if self.spike_code != "rate":
            return super().initial_state(batch_size, input_frame_shape)
        # (cumulative input so far, running maximum emitted so far)
        return (ops.zeros((batch_size,) + tuple(input_frame_shape)),
                ops.zeros((batch_size,) + tuple(self.frame_output_shape(input_frame_shape))))

    def step(self, inputs, state):
        if self.spike_code != "rate":
            out, state = super().step(inputs, state)
            return (self._gate(out) if self.prospective else out), state
        cumulative = state[0] + inputs
        running_max = self.frame_op(cumulative)
        return running_max - state[1], (cumulative, running_max)


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeGlobalAveragePooling2D(SpikeLayer):
    """Global average pooling over height and width, step by step."""

    def frame_op(self, inputs):
        return ops.mean(inputs, axis=(1, 2))

    def frame_output_shape(self, frame_shape):
        return (frame_shape[-1],)
