"""The common part of every Spike* layer.

A Spike* layer maps a sequence ``(batch, time, ...)`` to a sequence. It has
two parts:

* the *synapse* (``frame_op``, defined by each subclass): the layer's own
  operation (a dense product, a convolution, a pooling, a reshape...) on
  one time step's frames, which turns the incoming signal into an input
  current;
* optional *neurons*: when ``activation == "relu"`` the current drives a
  neuron model (built from the ``neuron`` dict by
  :func:`snnconv.neurons.make_neuron`) and the layer outputs its spike
  signal; otherwise (``"linear"``, or ``"softmax"`` at the output) the
  current itself is passed on, so a linear layer costs nothing extra and a
  softmax output is read out from its accumulated input.

A layer runs in two modes that compute the same thing:

* *sequence mode* (``call``, what ``snn(frames)`` does in Keras): the whole
  sequence layer after layer, exact for feed-forward networks since a
  layer's step t only depends on earlier layers' steps <= t;
* *step mode* (``initial_state`` / ``step``): one time step of one layer
  with its state passed in and out, which :mod:`snnconv.simulation` chains
  through the whole network inside one compiled loop over time. It keeps
  memory independent of the number of steps and the working set in cache.

Layers whose neurons spike hold a non-trainable ``fanout`` weight: for
each neuron, the number of synapses its spike drives in the layers it
feeds (filled in by the converter; used to count synaptic operations).
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..neurons import make_neuron

LAYER_ACTIVATIONS = ("linear", "relu", "softmax")


class SpikeLayer(keras.layers.Layer):
    """Base class: synapse + optional neurons over a time sequence."""

    def __init__(self, activation: str = "linear", neuron: dict | None = None, gain=None,
                 **kwargs):
        super().__init__(**kwargs)
        # Factor on the current (a number or nested lists broadcastable to a
        # frame): set by normalisation for neurons fed without weights.
        self.gain = None if gain is None else np.asarray(gain, dtype="float32").tolist()
        if activation not in LAYER_ACTIVATIONS:
            raise ValueError(f"{type(self).__name__} {self.name!r}: activation must be one of "
                             f"{LAYER_ACTIVATIONS}, got {activation!r}")
        if activation == "relu" and neuron is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a spiking (relu) layer "
                             "needs a neuron config")
        self.activation = activation
        self.neuron_config = dict(neuron) if activation == "relu" else None
        self.neuron = make_neuron(self.neuron_config)

    @property
    def spiking(self) -> bool:
        """True when the layer has neurons (its output is a spike signal)."""
        return self.neuron is not None

    @property
    def spike_amplitude(self) -> float | None:
        """Value of one spike in this layer's output, or None if it emits no spikes."""
        return self.neuron.spike_amplitude if self.spiking else None

    # -- subclasses implement these ------------------------------------
    def build_synapse(self, input_shape):
        """Create the synaptic weights (if any) for ``input_shape`` (with batch and time)."""

    def frame_op(self, inputs):
        """The layer's operation on one time step's frames ``(batch, ...)`` (a list
        for layers with several inputs): returns the input current."""
        raise NotImplementedError

    def frame_output_shape(self, frame_shape):
        """Output shape of one frame (no batch or time axis) for input frame shape(s)."""
        raise NotImplementedError

    def current(self, inputs):
        """``frame_op`` times the gain, if any: the current the neurons integrate."""
        out = self.frame_op(inputs)
        if self.gain is not None:
            out = out * ops.convert_to_tensor(np.asarray(self.gain, dtype="float32"))
        return out

    # -- sequence mode: all time steps at once ---------------------------
    def synapse(self, inputs):
        if isinstance(inputs, (list, tuple)):
            folded = [fold_time(x) for x in inputs]
            return unfold_time(self.current([f for f, _ in folded]), folded[0][1])
        x, bt = fold_time(inputs)
        return unfold_time(self.current(x), bt)

    def synapse_output_shape(self, input_shape):
        if _is_shape_list(input_shape):
            lead = tuple(input_shape[0][:2])
            return lead + tuple(self.frame_output_shape([tuple(s[2:]) for s in input_shape]))
        return tuple(input_shape[:2]) + tuple(self.frame_output_shape(tuple(input_shape[2:])))

    # -- step mode: one time step, state carried by the caller ------------
    def initial_state(self, batch_size, input_frame_shape):
        """State of the layer before the first step (a tuple of tensors)."""
        if not self.spiking:
            return ()
        shape = (batch_size,) + tuple(self.frame_output_shape(input_frame_shape))
        return tuple(self.neuron.initial_state(ops.zeros(shape)))

    def step(self, inputs, state):
        """One time step: ``(frames in, state) -> (frame out, new state)``."""
        current = self.current(inputs)
        if not self.spiking:
            return current, state
        n, new_state = self.neuron.step(current, state)
        return n * self.neuron.spike_amplitude, tuple(new_state)

    # -- Keras API -------------------------------------------------------
    def build(self, input_shape):
        self.build_synapse(input_shape)
        if self.spike_amplitude is not None:
            out = self.synapse_output_shape(input_shape)
            self.fanout = self.add_weight(name="fanout", shape=tuple(out[2:]),
                                          initializer="zeros", trainable=False)
        self.built = True

    def call(self, inputs):
        current = self.synapse(inputs)
        if not self.spiking:
            return current
        return self.neuron.run(current) * self.neuron.spike_amplitude

    def compute_output_shape(self, input_shape):
        return self.synapse_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(activation=self.activation, neuron=self.neuron_config, gain=self.gain)
        return config


def _is_shape_list(shape) -> bool:
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and \
        isinstance(shape[0], (list, tuple))


def fold_time(x):
    """``(batch, time, ...)`` -> ``(batch*time, ...)`` plus what unfolds it."""
    shape = ops.shape(x)
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), (shape[0], shape[1])


def unfold_time(y, batch_time):
    return ops.reshape(y, tuple(batch_time) + tuple(y.shape[1:]))
