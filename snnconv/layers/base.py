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
  with its state passed in and out, which :mod:`snnconv.simulators.ini.engine` chains
  through the whole network inside one compiled loop over time. It keeps
  memory independent of the number of steps and the working set in cache.

Every layer knows the network's ``spike_code``. Under the TTFS codes a
weight layer injects its bias only into samples whose input has spiked;
under ``ttfs_dyn_thresh`` every frame carries, in a second half of the
batch, the prospective spikes that give each neuron's missing impulse
(``prospective_op``: the operation with ``|W|`` and no bias).

Layers whose neurons spike hold a non-trainable ``fanout`` weight: for
each neuron, the number of synapses its spike drives in the layers it
feeds (filled in by the converter; used to count synaptic operations).
A rate-coded layer made with ``initial_potentials=True`` also holds a
``v_init`` weight: every neuron's own initial membrane potential (set by
calibration, :mod:`snnconv.calibration`), in place of the neuron model's
single ``v_init``.
"""
from __future__ import annotations

import keras
import numpy as np
from keras import ops

from ..choices import ACTIVATIONS, SPIKE_CODES
from ..neurons import make_neuron


class SpikeLayer(keras.layers.Layer):
    """Base class: synapse + optional neurons over a time sequence."""

    def __init__(self, activation: str = "linear", neuron: dict | None = None, gain=None,
                 spike_code: str = "rate", initial_potentials: bool = False, **kwargs):
        super().__init__(**kwargs)
        if spike_code not in SPIKE_CODES:
            raise ValueError(f"{type(self).__name__} {self.name!r}: spike_code must be one of "
                             f"{SPIKE_CODES}, got {spike_code!r}")
        self.spike_code = spike_code
        # ttfs_dyn_thresh frames carry prospective spikes in a second batch half
        self.prospective = spike_code == "ttfs_dyn_thresh"
        # Factor on the current (a number or nested lists broadcastable to a
        # frame): set by normalisation for neurons fed without weights.
        self.gain = None if gain is None else np.asarray(gain, dtype="float32").tolist()
        if activation not in ACTIVATIONS:
            raise ValueError(f"{type(self).__name__} {self.name!r}: activation must be one of "
                             f"{ACTIVATIONS}, got {activation!r}")
        if activation == "relu" and neuron is None:
            raise ValueError(f"{type(self).__name__} {self.name!r}: a spiking (relu) layer "
                             "needs a neuron config")
        self.activation = activation
        self.neuron_config = dict(neuron) if activation == "relu" else None
        self.neuron = make_neuron(self.neuron_config)
        self.initial_potentials = bool(initial_potentials)
        if self.initial_potentials and (activation != "relu" or spike_code != "rate"):
            raise ValueError(f"{type(self).__name__} {self.name!r}: initial_potentials needs "
                             "rate-coded neurons (activation relu, spike_code rate)")

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
        """``frame_op`` times the gain, if any: the current the neurons integrate.

        Under a TTFS code a layer with a bias only injects it into the samples
        in which some input has spiked already.
        """
        out = self.frame_op(inputs)
        if self.gain is not None:
            out = out * ops.convert_to_tensor(np.asarray(self.gain, dtype="float32"))
        if self.spike_code in _BIAS_GATED and getattr(self, "bias", None) is not None:
            # max |x| is the cheap reduction here (a boolean any() costs ~3x more on CPU)
            heard = ops.max(ops.abs(inputs), axis=tuple(range(1, len(inputs.shape))),
                            keepdims=True)
            silent = ops.cast(ops.equal(heard, 0), out.dtype)
            out = out - ops.reshape(silent, (-1,) + (1,) * (len(out.shape) - 1)) * self.bias
        return out

    def prospective_op(self, inputs):
        """What the prospective spikes ``inputs`` could still bring: the layer's
        operation with non-negative weights and no bias (``ttfs_dyn_thresh``).
        Weightless layers route them like any signal."""
        out = self.frame_op(inputs)
        if self.gain is not None:
            out = out * ops.convert_to_tensor(np.abs(np.asarray(self.gain, dtype="float32")))
        return out

    # -- sequence mode: all time steps at once ---------------------------
    def synapse(self, inputs, op=None):
        op = op or self.current
        if isinstance(inputs, (list, tuple)):
            folded = [fold_time(x) for x in inputs]
            return unfold_time(op([f for f, _ in folded]), folded[0][1])
        x, bt = fold_time(inputs)
        return unfold_time(op(x), bt)

    def synapse_output_shape(self, input_shape):
        if _is_shape_list(input_shape):
            lead = tuple(input_shape[0][:2])
            return lead + tuple(self.frame_output_shape([tuple(s[2:]) for s in input_shape]))
        return tuple(input_shape[:2]) + tuple(self.frame_output_shape(tuple(input_shape[2:])))

    # -- step mode: one time step, state carried by the caller ------------
    def initial_state(self, batch_size, input_frame_shape):
        """State of the layer before the first step (a tuple of tensors).

        ``batch_size`` counts samples (not the prospective half of a
        ``ttfs_dyn_thresh`` frame)."""
        if not self.spiking:
            return ()
        shape = (batch_size,) + tuple(self.frame_output_shape(input_frame_shape))
        if self.initial_potentials:
            return tuple(self.neuron.initial_state(ops.zeros(shape), self.v_init))
        return tuple(self.neuron.initial_state(ops.zeros(shape)))

    def step(self, inputs, state):
        """One time step: ``(frames in, state) -> (frame out, new state)``.

        Under ``ttfs_dyn_thresh`` a frame holds the samples in its first half
        and their prospective spikes in its second half.
        """
        if not self.prospective:
            current = self.current(inputs)
            if not self.spiking:
                return current, state
            return self.integrate(current, state)
        x, p = _split_halves(inputs)
        current, missing = self.current(x), self.prospective_op(p)
        if not self.spiking:
            return ops.concatenate([current, missing], axis=0), state
        out, prospective, new_state = self.neuron.advance(current, state, missing)
        return ops.concatenate([out * self.neuron.spike_amplitude, prospective], axis=0), \
            tuple(new_state)

    def integrate(self, current, state):
        """The neurons' part of :meth:`step`: one step on the input ``current``
        (what :meth:`current` gives; not under ``ttfs_dyn_thresh``). The engine
        calls it directly for a layer whose current is the same at every step."""
        out, _, new_state = self.neuron.advance(current, state)
        return self._amplified(out), tuple(new_state)

    def events(self, out, old_state, new_state):
        """Spikes (or, for analog signals, non-zero values) this step's output carries."""
        if self.spike_amplitude is not None:
            counts = out if self.spike_amplitude == 1.0 else out / self.spike_amplitude
            return self.neuron.events(counts, old_state, new_state) if self.spiking else counts
        return ops.cast(ops.not_equal(out, 0), out.dtype)

    def readout_bonus(self, state):
        """Added to the accumulated output when this layer is the network's output
        (a tie-breaker for TTFS outputs); 0 for other codes."""
        return self.neuron.readout_bonus(state) if self.spiking else 0.0

    # -- Keras API -------------------------------------------------------
    def build(self, input_shape):
        self.build_synapse(input_shape)
        if self.spike_amplitude is not None:
            out = self.synapse_output_shape(input_shape)
            self.fanout = self.add_weight(name="fanout", shape=tuple(out[2:]),
                                          initializer="zeros", trainable=False)
            if self.initial_potentials:
                self.v_init = self.add_weight(
                    name="v_init", shape=tuple(out[2:]), trainable=False,
                    initializer=keras.initializers.Constant(self.neuron.v_init))
        self.built = True

    def call(self, inputs):
        if not self.prospective:
            current = self.synapse(inputs)
            if not self.spiking:
                return current
            out = self.neuron.run(current, v0=self.v_init) if self.initial_potentials \
                else self.neuron.run(current)
            out = out[0] if isinstance(out, tuple) else out
            return self._amplified(out)
        x, p = _split_halves(inputs)
        current, missing = self.synapse(x), self.synapse(p, op=self.prospective_op)
        if not self.spiking:
            return ops.concatenate([current, missing], axis=0)
        psp, prospective = self.neuron.run(current, missing)
        return ops.concatenate([psp * self.neuron.spike_amplitude, prospective], axis=0)

    def compute_output_shape(self, input_shape):
        return self.synapse_output_shape(input_shape)

    def get_config(self):
        config = super().get_config()
        config.update(activation=self.activation, neuron=self.neuron_config, gain=self.gain,
                      spike_code=self.spike_code)
        if self.initial_potentials:   # absent otherwise: files saved before it load unchanged
            config["initial_potentials"] = True
        return config


    def _amplified(self, out):
        """The neurons' output times the spike amplitude (an output neuron that only
        integrates, with no amplitude, emits nothing)."""
        amplitude = self.neuron.spike_amplitude
        return out if amplitude is None or amplitude == 1.0 else out * amplitude


# codes under which a layer injects its bias only once some input has spiked
_BIAS_GATED = ("ttfs", "ttfs_dyn_thresh")


def _split_halves(inputs):
    """Split frames (or each of a list of frames) into samples and prospective spikes."""
    if isinstance(inputs, (list, tuple)):
        halves = [_split_halves(x) for x in inputs]
        return [h[0] for h in halves], [h[1] for h in halves]
    half = ops.shape(inputs)[0] // 2
    return inputs[:half], inputs[half:]


def _is_shape_list(shape) -> bool:
    return isinstance(shape, (list, tuple)) and len(shape) > 0 and \
        isinstance(shape[0], (list, tuple))


def fold_time(x):
    """``(batch, time, ...)`` -> ``(batch*time, ...)`` plus what unfolds it."""
    shape = ops.shape(x)
    return ops.reshape(x, (-1,) + tuple(x.shape[2:])), (shape[0], shape[1])


def unfold_time(y, batch_time):
    return ops.reshape(y, tuple(batch_time) + tuple(y.shape[1:]))
