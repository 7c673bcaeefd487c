"""``LIF``: a trainable layer of leaky integrate-and-fire neurons over ``(batch, time, features)``.

The layer is its input weights plus the neurons of
:mod:`snnconv.neurons.lif` (Rockpool's ``LinearTorch`` + ``LIFTorch`` in
one). The weighted input of every step is one matrix product over the
whole sequence; the neurons then run in one compiled loop over time.
Gradients pass the spike through a surrogate (:mod:`snnconv.surrogates`).

Per neuron: ``tau_mem``, ``tau_syn`` (``synapses`` of them, each with its
own weights), ``threshold`` and ``bias``, each fixed or trainable
(``train_*``). ``delay=1`` delays the input by one step, as Xylo delivers
hidden and output neurons' input spikes one step after they were fired.

Stateless by default: every call starts from rest, so batches and epochs
need no reset. ``stateful=True`` (fixed batch size) carries the state from
one call to the next, for streaming a long signal in chunks;
:meth:`reset_state` returns it to rest.

``output``: ``"spikes"`` (spike counts per step) or ``"vmem"`` (the
membrane potential after each step; the neurons then only integrate and
never fire, as a readout).
"""
from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from ..neurons.lif import DECAY_MODES, LIFParams, LIFState, decay, lif_step
from ..surrogates import get_surrogate, to_config

OUTPUTS = ("spikes", "vmem")


def _values(value, shape, name, layer):
    arr = np.asarray(value, np.float64)
    if len(shape) == 2 and arr.shape == shape[:1]:     # one value per neuron, every synapse
        arr = arr[:, None]
    try:
        return np.broadcast_to(arr, shape).astype(np.float32)
    except ValueError:
        raise ValueError(f"LIF {layer!r}: {name} must be a number or broadcast to "
                         f"{shape}, got shape {arr.shape}") from None


def _plain(arr: np.ndarray):
    """A config value: a float when all entries are equal, else nested lists."""
    arr = np.asarray(arr)
    if arr.size and np.all(arr == arr.flat[0]):
        return float(arr.flat[0])
    return arr.tolist()


@keras.saving.register_keras_serializable(package="snnconv")
class LIF(keras.layers.Layer):
    """``units`` LIF neurons with ``synapses`` synaptic currents each; see the module doc.

    ``kernel``: ``(input_dim, units, synapses)``. ``use_kernel=False``: no
    weights; the input is the current itself (``input_dim`` must be
    ``units * synapses``). ``kernel_scale``: factor per neuron (or scalar)
    applied to the initial kernel (SynNet scales by ``dt / tau_syn``).
    """

    def __init__(self, units: int, synapses: int = 1, tau_mem=0.02, tau_syn=0.02,
                 threshold=1.0, bias=0.0, dt: float = 1e-3, train_tau_mem: bool = False,
                 train_tau_syn: bool = False, train_threshold: bool = False,
                 train_bias: bool = False, noise_std: float = 0.0,
                 max_spikes_per_dt: int = 31, surrogate="periodic_exponential",
                 decay: str = "exp", output: str = "spikes", delay: int = 0,
                 stateful: bool = False, use_kernel: bool = True,
                 kernel_initializer="glorot_uniform", kernel_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.units, self.synapses = int(units), int(synapses)
        if self.units < 1 or self.synapses < 1:
            raise ValueError(f"LIF {self.name!r}: units and synapses must be >= 1")
        if not dt > 0:
            raise ValueError(f"LIF {self.name!r}: dt must be > 0, got {dt!r}")
        if decay not in DECAY_MODES:
            raise ValueError(f"LIF {self.name!r}: decay must be one of {DECAY_MODES}, "
                             f"got {decay!r}")
        if output not in OUTPUTS:
            raise ValueError(f"LIF {self.name!r}: output must be one of {OUTPUTS}, "
                             f"got {output!r}")
        if int(delay) not in (0, 1):
            raise ValueError(f"LIF {self.name!r}: delay must be 0 or 1, got {delay!r}")
        if int(max_spikes_per_dt) < 1:
            raise ValueError(f"LIF {self.name!r}: max_spikes_per_dt must be >= 1")
        self.dt = float(dt)
        self.tau_mem_init = _values(tau_mem, (self.units,), "tau_mem", self.name)
        self.tau_syn_init = _values(tau_syn, (self.units, self.synapses), "tau_syn", self.name)
        for key, tau in (("tau_mem", self.tau_mem_init), ("tau_syn", self.tau_syn_init)):
            if np.any(tau <= 0):
                raise ValueError(f"LIF {self.name!r}: {key} must be > 0")
        self.threshold_init = _values(threshold, (self.units,), "threshold", self.name)
        self.bias_init = _values(bias, (self.units,), "bias", self.name)
        self.kernel_scale = _values(kernel_scale, (self.units,), "kernel_scale", self.name)
        self.train_tau_mem, self.train_tau_syn = bool(train_tau_mem), bool(train_tau_syn)
        self.train_threshold, self.train_bias = bool(train_threshold), bool(train_bias)
        self.noise_std = float(noise_std)
        self.max_spikes_per_dt = int(max_spikes_per_dt)
        self.surrogate = get_surrogate(surrogate)
        self.decay_mode = decay
        self.output_mode = output
        self.delay = int(delay)
        self.stateful = bool(stateful)
        self.use_kernel = bool(use_kernel)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.input_spec = keras.layers.InputSpec(ndim=3)
        self.seed_generator = keras.random.SeedGenerator()

    # -- weights -------------------------------------------------------------------
    def build(self, input_shape):
        n_in = int(input_shape[-1])
        width = self.units * self.synapses
        if self.use_kernel:
            base = self.kernel_initializer
            scale = self.kernel_scale[None, :, None]

            def init(shape, dtype=None):
                w = ops.reshape(base((n_in, width), dtype=dtype), shape)
                return w * ops.cast(scale, w.dtype)

            self.kernel = self.add_weight(name="kernel", shape=(n_in, self.units, self.synapses),
                                          initializer=init)
        elif n_in != width:
            raise ValueError(f"LIF {self.name!r} without a kernel needs {width} input "
                             f"features (units x synapses), got {n_in}")
        const = keras.initializers.Constant
        self.tau_mem = self.add_weight(name="tau_mem", shape=(self.units,),
                                       initializer=const(self.tau_mem_init),
                                       trainable=self.train_tau_mem)
        self.tau_syn = self.add_weight(name="tau_syn", shape=(self.units, self.synapses),
                                       initializer=const(self.tau_syn_init),
                                       trainable=self.train_tau_syn)
        self.threshold = self.add_weight(name="threshold", shape=(self.units,),
                                         initializer=const(self.threshold_init),
                                         trainable=self.train_threshold)
        self.bias = self.add_weight(name="bias", shape=(self.units,),
                                    initializer=const(self.bias_init), trainable=self.train_bias)
        if self.stateful:
            batch = input_shape[0]
            if batch is None:
                raise ValueError(f"LIF {self.name!r}: stateful=True needs a fixed batch size "
                                 "(keras.Input(batch_shape=(B, None, features)))")
            zeros = keras.initializers.Zeros()
            self.state_isyn = self.add_weight(name="state_isyn", shape=(batch, width),
                                              initializer=zeros, trainable=False)
            self.state_v = self.add_weight(name="state_v", shape=(batch, self.units),
                                           initializer=zeros, trainable=False)
            self.state_input = self.add_weight(name="state_input", shape=(batch, n_in),
                                               initializer=zeros, trainable=False)
        self.built = True

    def reset_state(self):
        """Return a stateful layer's neurons (and its delayed input) to rest."""
        if self.stateful and self.built:
            for var in (self.state_isyn, self.state_v, self.state_input):
                var.assign(ops.zeros_like(var))

    # -- dynamics ------------------------------------------------------------------
    def params(self) -> LIFParams:
        alpha = decay(ops.maximum(self.tau_mem, 1e-6), self.dt, self.decay_mode)
        beta = decay(ops.maximum(ops.reshape(self.tau_syn, (-1,)), 1e-6), self.dt,
                     self.decay_mode)
        return LIFParams(alpha=alpha, beta=beta, threshold=self.threshold, bias=self.bias,
                         synapses=self.synapses, max_spikes=float(self.max_spikes_per_dt),
                         spike_fn=self.surrogate, spiking=self.output_mode == "spikes")

    def currents(self, inputs, previous_input=None):
        """The weighted input of every step, ``(B, T, units * synapses)``; with a delay,
        step t gets the input of step t - 1 (``previous_input`` before the first)."""
        x = ops.cast(inputs, self.compute_dtype)
        if self.delay:
            first = (ops.zeros_like(x[:, :1]) if previous_input is None
                     else ops.expand_dims(ops.cast(previous_input, x.dtype), 1))
            x = ops.concatenate([first, x[:, :-1]], axis=1)
        if not self.use_kernel:
            return x
        w = ops.reshape(self.kernel, (ops.shape(self.kernel)[0], -1))
        return ops.matmul(x, w)

    def evolve(self, inputs, state: LIFState | None = None, training=False,
               previous_input=None):
        """Run the layer on ``inputs`` from ``state`` (rest if None).

        Returns ``({"spikes", "vmem", "isyn"}: (B, T, ...), final state)``;
        ``isyn`` is ``(B, T, units, synapses)``.
        """
        from ..neurons.time_loop import scan_time
        cur = self.currents(inputs, previous_input)
        batch, steps = ops.shape(cur)[0], ops.shape(cur)[1]
        if state is None:
            state = LIFState(ops.zeros((batch, self.units * self.synapses), cur.dtype),
                             ops.zeros((batch, self.units), cur.dtype))
        p = self.params()
        time_major = ops.transpose(cur, (1, 0, 2))
        noisy = bool(training) and self.noise_std > 0
        if noisy:
            sigma = self.noise_std * math.sqrt(self.dt)
            noise = sigma * keras.random.normal((steps, batch, self.units), dtype=cur.dtype,
                                               seed=self.seed_generator)
            xs = (time_major, noise)
        else:
            xs = (time_major,)

        def step(s, x):
            s, n, v, isyn = lif_step(LIFState(*s), x[0], x[1] if noisy else None, p)
            return tuple(s), (n, v, isyn)

        init = tuple(state)
        outs = scan_time(step, init, xs)
        # the last state: the step function again would cost a step; read it off the records
        spikes, v, isyn = (ops.transpose(o, (1, 0, 2)) for o in outs)
        final = LIFState(isyn[:, -1], v[:, -1])
        isyn = ops.reshape(isyn, (batch, steps, self.units, self.synapses))
        return {"spikes": spikes, "vmem": v, "isyn": isyn}, final

    def call(self, inputs, training=None):
        if not self.stateful:
            out, _ = self.evolve(inputs, training=training)
            return out[self.output_mode]
        state = LIFState(ops.convert_to_tensor(self.state_isyn),
                         ops.convert_to_tensor(self.state_v))
        out, final = self.evolve(inputs, state, training, previous_input=self.state_input)
        self.state_isyn.assign(final.isyn)
        self.state_v.assign(final.v)
        self.state_input.assign(ops.cast(inputs[:, -1], self.state_input.dtype))
        return out[self.output_mode]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units, synapses=self.synapses,
            tau_mem=_plain(self.tau_mem_init), tau_syn=_plain(self.tau_syn_init),
            threshold=_plain(self.threshold_init), bias=_plain(self.bias_init), dt=self.dt,
            train_tau_mem=self.train_tau_mem, train_tau_syn=self.train_tau_syn,
            train_threshold=self.train_threshold, train_bias=self.train_bias,
            noise_std=self.noise_std, max_spikes_per_dt=self.max_spikes_per_dt,
            surrogate=to_config(self.surrogate), decay=self.decay_mode, output=self.output_mode,
            delay=self.delay, stateful=self.stateful, use_kernel=self.use_kernel,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
            kernel_scale=_plain(self.kernel_scale))
        return config
