"""Spike* layers with synaptic weights: dense, convolution, depthwise convolution."""
from __future__ import annotations

import keras
from keras import ops

from ..shapes import conv_out_len, pair
from .base import SpikeLayer


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeDense(SpikeLayer):
    """Dense synapses: ``current = x @ kernel + bias`` on the last axis."""

    def __init__(self, units: int, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)

    def build_synapse(self, input_shape):
        self.kernel = self.add_weight(name="kernel", shape=(input_shape[-1], self.units),
                                      initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.units,), initializer="zeros")

    def frame_op(self, inputs):
        return ops.matmul(inputs, self.kernel) + self.bias

    def prospective_op(self, inputs):
        return ops.matmul(inputs, ops.abs(self.kernel))

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _SpikeConvBase(SpikeLayer):
    def __init__(self, kernel_size, strides=(1, 1), padding="valid", dilation_rate=(1, 1),
                 **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = pair(kernel_size)
        self.strides = pair(strides)
        self.padding = padding
        self.dilation_rate = pair(dilation_rate)

    def _spatial_out(self, frame_shape):
        return tuple(conv_out_len(frame_shape[i], self.kernel_size[i], self.strides[i],
                                   self.padding, self.dilation_rate[i]) for i in range(2))

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size,
                "strides": self.strides, "padding": self.padding,
                "dilation_rate": self.dilation_rate}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeConv2D(_SpikeConvBase):
    """2D convolution synapses (channels last), applied to every time step."""

    def __init__(self, filters: int, kernel_size, **kwargs):
        super().__init__(kernel_size, **kwargs)
        self.filters = int(filters)

    def build_synapse(self, input_shape):
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (input_shape[-1], self.filters),
            initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer="zeros")

    def frame_op(self, inputs):
        return self._conv(inputs, self.kernel) + self.bias

    def prospective_op(self, inputs):
        return self._conv(inputs, ops.abs(self.kernel))

    def _conv(self, inputs, kernel):
        return ops.conv(inputs, kernel, strides=self.strides, padding=self.padding,
                        dilation_rate=self.dilation_rate)

    def frame_output_shape(self, frame_shape):
        return self._spatial_out(frame_shape) + (self.filters,)

    def get_config(self):
        return {**super().get_config(), "filters": self.filters}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeDepthwiseConv2D(_SpikeConvBase):
    """Depthwise convolution synapses (channels last)."""

    def __init__(self, kernel_size, depth_multiplier: int = 1, **kwargs):
        super().__init__(kernel_size, **kwargs)
        self.depth_multiplier = int(depth_multiplier)

    def build_synapse(self, input_shape):
        channels = input_shape[-1]
        self.kernel = self.add_weight(
            name="kernel", shape=self.kernel_size + (channels, self.depth_multiplier),
            initializer="zeros")
        self.bias = self.add_weight(name="bias", shape=(channels * self.depth_multiplier,),
                                    initializer="zeros")

    def frame_op(self, inputs):
        return self._conv(inputs, self.kernel) + self.bias

    def prospective_op(self, inputs):
        return self._conv(inputs, ops.abs(self.kernel))

    def _conv(self, inputs, kernel):
        return ops.depthwise_conv(inputs, kernel, strides=self.strides, padding=self.padding,
                                  dilation_rate=self.dilation_rate)

    def frame_output_shape(self, frame_shape):
        return self._spatial_out(frame_shape) + (frame_shape[-1] * self.depth_multiplier,)

    def get_config(self):
        return {**super().get_config(), "depth_multiplier": self.depth_multiplier}
