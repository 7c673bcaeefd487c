"""The common part of every Spike* layer.

A Spike* layer maps a sequence ``(batch, time, ...)`` to a sequence. It has
two parts:

* the *synapse* (``synapse(x)``, defined by each subclass): the layer's own
  operation (a dense product, a convolution, a pooling, a reshape...)
  applied to every time step at once, which turns the incoming signal into
  an input current;
* optional *neurons*: when ``activation == "relu"`` the current drives a
  neuron model (built from the ``neuron`` dict by
  :func:`snnconv.neurons.make_neuron`) and the layer outputs its spike
  signal; otherwise (``"linear"``, or ``"softmax"`` at the output) the
  current itself is passed on, so a linear layer costs nothing extra and a
  softmax output is read out from its accumulated input.

Processing whole sequences layer by layer is exact for feed-forward
networks (a layer's step t only depends on earlier layers' steps <= t) and
lets the synaptic operations of all T steps run as one batched op, leaving
only the element-wise neuron update inside a compiled time loop.

Layers whose neurons spike hold a non-trainable ``fanout`` weight: for
each neuron, the number of synapses its spike drives in the layers it
feeds (filled in by the converter; used to count synaptic operations).
"""
from __future__ import annotations

import keras
from keras import ops

from ..neurons import make_neuron

LAYER_ACTIVATIONS = ("linear", "relu", "softmax")


class SpikeLayer(keras.layers.Layer):
    """Base class: synapse + optional neurons over a time sequence."""

    def __init__(self, activation: str = "linear", neuron: dict | None = None, **kwargs):
        super().__init__(**kwargs)
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

    def synapse(self, inputs):
        raise NotImplementedError

    def synapse_output_shape(self, input_shape):
        raise NotImplementedError

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
        config.update(activation=self.activation, neuron=self.neuron_config)
        return config


def fold_time(x):
    """``(batch, time, ...)`` -> ``(batch*time, ...)`` plus what unfolds it."""
    shape = ops.shape(x)
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), (shape[0], shape[1])


def unfold_time(y, batch_time):
    return ops.reshape(y, tuple(batch_time) + tuple(y.shape[1:]))
