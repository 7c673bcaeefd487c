"""Spike* layers that only route signals (no synaptic weights), and the input layer."""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ..routing_ops import route
from .base import SpikeLayer


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeInput(SpikeLayer):
    """Turns the analog input frames ``(batch, time, ...)`` into the network's input signal.

    ``poisson=False`` (default): the analog values are the input current of
    the first layer at every step. ``poisson=True``: each element fires a
    spike with probability ``x * input_rate * dt / 1000`` per step
    (``input_rate`` in Hz, ``dt`` in ms) of amplitude ``1000 / (input_rate * dt)``,
    so that the expected signal equals ``x``; ``x`` must then lie in
    ``[0, 1000 / (input_rate * dt)]``.

    ``window`` (``ttfs_exact``): the input is a current during the first
    ``window`` steps only (the input time window), zero after; ``gain``
    scales it.

    It also records what the network is compared against: ``dt`` (the time
    step of every neuron) and ``ann_macs``, the multiply-accumulates of one
    forward pass of the ANN it was converted from.
    """

    def __init__(self, poisson: bool = False, input_rate: float = 1000.0, dt: float = 1.0,
                 seed: int | None = None, ann_macs: int = 0, window: int | None = None,
                 **kwargs):
        super().__init__(**kwargs)
        self.window = None if window is None else int(window)
        self.ann_macs = int(ann_macs)
        self.poisson = bool(poisson)
        self.input_rate = float(input_rate)
        self.dt = float(dt)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if self.poisson else None

    @property
    def spike_amplitude(self):
        return 1000.0 / (self.input_rate * self.dt) if self.poisson else None

    def build(self, input_shape):
        # The input always has a fan-out map: analog values cost synaptic
        # operations too (one per connection of every non-zero value).
        self.fanout = self.add_weight(name="fanout", shape=tuple(input_shape[2:]),
                                      initializer="zeros", trainable=False)
        self.built = True

    def frame_op(self, inputs):
        if not self.poisson:
            return inputs
        amplitude = self.spike_amplitude
        noise = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator)
        return ops.cast(noise < inputs / amplitude, inputs.dtype) * amplitude

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape)

    def initial_state(self, batch_size, input_frame_shape):
        return () if self.window is None else (ops.zeros((), dtype="int32"),)

    def step(self, inputs, state):
        out = self.current(inputs)
        if self.window is not None:
            out = out * ops.cast(state[0] < self.window, out.dtype)
            state = (state[0] + 1,)
        if self.prospective:   # the input is all there from the start: nothing missing
            out = ops.concatenate([out, ops.zeros_like(out)], axis=0)
        return out, state

    def call(self, inputs):
        out = self.synapse(inputs)
        if self.window is not None:
            steps = ops.arange(ops.shape(out)[1])
            on = ops.cast(steps < self.window, out.dtype)
            out = out * ops.reshape(on, (1, -1) + (1,) * (len(out.shape) - 2))
        if self.prospective:
            out = ops.concatenate([out, ops.zeros_like(out)], axis=0)
        return out

    def get_config(self):
        return {**super().get_config(), "poisson": self.poisson, "input_rate": self.input_rate,
                "dt": self.dt, "seed": self.seed, "ann_macs": self.ann_macs,
                **({} if self.window is None else {"window": self.window})}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeFlatten(SpikeLayer):
    """Flattens every time step's frame."""

    def frame_op(self, inputs):
        return ops.reshape(inputs, (-1, math.prod(inputs.shape[1:])))

    def frame_output_shape(self, frame_shape):
        return (math.prod(frame_shape),)


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeReshape(SpikeLayer):
    """Reshapes every time step's frame to ``target_shape``."""

    def __init__(self, target_shape, **kwargs):
        super().__init__(**kwargs)
        self.target_shape = tuple(int(d) for d in target_shape)

    def frame_op(self, inputs):
        return ops.reshape(inputs, (-1,) + self.target_shape)

    def frame_output_shape(self, frame_shape):
        return self.target_shape

    def get_config(self):
        return {**super().get_config(), "target_shape": self.target_shape}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeZeroPadding2D(SpikeLayer):
    """Zero-pads height and width of every frame: ``padding=((top, bottom), (left, right))``."""

    def __init__(self, padding=((1, 1), (1, 1)), **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(int(p) for p in pair) for pair in padding)

    def frame_op(self, inputs):
        return ops.pad(inputs, [(0, 0), *self.padding, (0, 0)])

    def frame_output_shape(self, frame_shape):
        (t, b), (l, r) = self.padding
        return (frame_shape[0] + t + b, frame_shape[1] + l + r, frame_shape[2])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeCropping2D(SpikeLayer):
    """Crops height and width of every frame: ``cropping=((top, bottom), (left, right))``."""

    def __init__(self, cropping=((0, 0), (0, 0)), **kwargs):
        super().__init__(**kwargs)
        self.cropping = tuple(tuple(int(c) for c in pair) for pair in cropping)

    def frame_op(self, inputs):
        return route("cropping2d", {"cropping": self.cropping}, inputs)

    def frame_output_shape(self, frame_shape):
        (t, b), (l, r) = self.cropping
        return (frame_shape[0] - t - b, frame_shape[1] - l - r, frame_shape[2])

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeUpSampling2D(SpikeLayer):
    """Enlarges every frame by ``size = (rows, cols)``: ``mode="nearest"`` repeats each
    value; ``mode="zeros"`` puts ``size - 1`` zeros after each (not after the last row
    and column), the input grid of a transposed convolution."""

    def __init__(self, size=(2, 2), mode: str = "nearest", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("nearest", "zeros"):
            raise ValueError(f"SpikeUpSampling2D mode must be 'nearest' or 'zeros', got {mode!r}")
        self.size = tuple(int(v) for v in size)
        self.mode = mode

    def frame_op(self, inputs):
        return route("upsampling2d", {"size": self.size, "mode": self.mode}, inputs)

    def frame_output_shape(self, frame_shape):
        h, w, c = frame_shape
        if self.mode == "nearest":
            return (h * self.size[0], w * self.size[1], c)
        return ((h - 1) * self.size[0] + 1, (w - 1) * self.size[1] + 1, c)

    def get_config(self):
        return {**super().get_config(), "size": self.size, "mode": self.mode}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikePermute(SpikeLayer):
    """Permutes the axes of every frame: ``dims`` as Keras's ``Permute`` (1-based)."""

    def __init__(self, dims=(1,), **kwargs):
        super().__init__(**kwargs)
        self.dims = tuple(int(d) for d in dims)

    def frame_op(self, inputs):
        return route("permute", {"dims": self.dims}, inputs)

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape[d - 1] for d in self.dims)

    def get_config(self):
        return {**super().get_config(), "dims": self.dims}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeConcatenate(SpikeLayer):
    """Concatenates its inputs along ``axis`` (negative: counted from the last axis)."""

    def __init__(self, axis: int = -1, **kwargs):
        super().__init__(**kwargs)
        if axis >= 0:
            raise ValueError("SpikeConcatenate takes a negative axis (frames have a time axis)")
        self.axis = int(axis)

    def frame_op(self, inputs):
        return ops.concatenate(list(inputs), axis=self.axis)

    def frame_output_shape(self, frame_shape):
        shape = list(frame_shape[0])
        shape[self.axis] = sum(s[self.axis] for s in frame_shape)
        return tuple(shape)

    def get_config(self):
        return {**super().get_config(), "axis": self.axis}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeAdd(SpikeLayer):
    """Weighted sum of its inputs: ``sum_i coefficients[i] * x_i``.

    The coefficients (a number, or one per channel) let branches that were
    normalised with different scales meet at the same scale.
    """

    def __init__(self, coefficients=None, **kwargs):
        super().__init__(**kwargs)
        self.coefficients = None if coefficients is None else [
            c if np.ndim(c) == 0 else list(np.asarray(c, dtype=float).tolist())
            for c in coefficients]

    def frame_op(self, inputs):
        inputs = list(inputs)
        coeffs = self.coefficients or [1.0] * len(inputs)
        total = None
        for c, x in zip(coeffs, inputs):
            term = x * ops.convert_to_tensor(np.asarray(c, dtype="float32"))
            total = term if total is None else total + term
        return total

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape[0])

    def get_config(self):
        return {**super().get_config(), "coefficients": self.coefficients}


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeIdentity(SpikeLayer):
    """Passes its input on; with ``activation="relu"`` it is a layer of neurons
    driven directly by the incoming signal (an activation that could not be
    merged into the layer before it)."""

    def frame_op(self, inputs):
        return inputs

    def frame_output_shape(self, frame_shape):
        return tuple(frame_shape)
