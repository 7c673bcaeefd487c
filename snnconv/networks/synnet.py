"""SynNet (Bos & Muir 2022, 2024): feed-forward LIF layers with a range of synaptic time constants.

Rockpool's architecture for temporal signals on Xylo, as a ``keras.Model``
of :class:`~snnconv.layers.lif.LIF` layers: ``compile`` / ``fit`` /
``evaluate`` / ``save`` work as for any Keras model; inputs are
``(batch, time, n_channels)`` event counts, outputs ``(batch, time,
n_classes)`` spikes or membrane potentials (``output``).

The semantics are Rockpool's (``rockpool.nn.networks.SynNet``):

* hidden layer ``i`` has ``time_constants_per_layer[i]`` synaptic time
  constants ``tau_j = (tau_syn_base / dt) ** j * dt``, ``j = 1..n``, tiled
  over its neurons and cut to its size;
* with ``quantize_time_constants`` every time constant is rounded to the
  nearest one a Xylo bit-shift decay has (``round(tau_to_bitshift)``);
* weights have no bias; at initialisation each neuron's incoming weights
  are multiplied by ``dt / tau_syn`` of that neuron, so that slow synapses,
  which integrate longer, start with proportionally smaller weights;
* ``p_dropout`` drops single time steps of hidden neurons' spikes in training;
* ``output="vmem"``: the readout neurons only integrate (Rockpool sets their
  threshold to 2**15 - 1 so that they never fire).

One addition: ``delay`` (on by default) delays every layer-to-layer
connection by one step, as Xylo does (hidden-to-hidden and hidden-to-output
spikes arrive one step after they were fired; the input reaches the first
layer in the same step). Rockpool trains without this delay, so its
networks change behaviour on the chip; with ``delay=True`` what is trained
is what the chip runs. ``delay=False`` gives Rockpool's network exactly.
"""
from __future__ import annotations

import keras
import numpy as np

from ..layers.dropout import TimeStepDropout
from ..layers.lif import LIF
from ..neurons.lif import bitshift_to_tau, tau_to_bitshift
from ..surrogates import get_surrogate, to_config

# Rockpool's readout threshold in membrane mode (the int16 maximum)
THRESHOLD_OUT_VMEM = 2 ** 15 - 1
OUTPUTS = ("spikes", "vmem")


def quantize_tau(tau, dt: float) -> np.ndarray:
    """The time constant(s) of the nearest Xylo bit-shift decay."""
    return bitshift_to_tau(dt, np.round(tau_to_bitshift(dt, tau)))


def hidden_time_constants(size: int, count: int, tau_base: float, dt: float) -> np.ndarray:
    """``(tau_base/dt)**j * dt`` for ``j = 1..count``, tiled over ``size`` neurons."""
    taus = np.array([(tau_base / dt) ** j * dt for j in range(1, count + 1)])
    return np.tile(taus, -(-size // count))[:size]


@keras.saving.register_keras_serializable(package="snnconv")
class SynNet(keras.Model):
    """Rockpool's SynNet as a Keras model; arguments as Rockpool's (see the module doc).

    Extra arguments: ``delay`` (Xylo's one-step delay per connection, default
    True), ``surrogate`` (the spike function's gradient, by name or object;
    Rockpool's SynNet uses ``periodic_exponential``), ``noise_std`` (membrane
    noise while training).
    """

    def __init__(self, n_classes: int, n_channels: int, size_hidden_layers=(60,),
                 time_constants_per_layer=(10,), tau_syn_base: float = 2e-3,
                 tau_mem: float = 2e-3, tau_syn_out: float = 2e-3,
                 quantize_time_constants: bool = True, train_time_constants: bool = False,
                 threshold: float = 1.0, threshold_out=None, train_threshold: bool = False,
                 max_spikes_per_dt: int = 31, max_spikes_per_dt_out: int = 1,
                 p_dropout: float = 0.0, dt: float = 1e-3, output: str = "spikes",
                 delay: bool = True, surrogate="periodic_exponential",
                 noise_std: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        sizes = [int(s) for s in size_hidden_layers]
        counts = [int(c) for c in time_constants_per_layer]
        if len(sizes) != len(counts):
            raise ValueError("SynNet: size_hidden_layers and time_constants_per_layer need "
                             f"the same length, got {len(sizes)} and {len(counts)}")
        if not sizes or min(sizes) < 1 or min(counts) < 1:
            raise ValueError("SynNet: every hidden layer needs >= 1 neuron and >= 1 time "
                             f"constant, got sizes {sizes} and counts {counts}")
        if not tau_syn_base > dt:
            raise ValueError(f"SynNet: tau_syn_base = {tau_syn_base:g} must be larger than "
                             f"the time step dt = {dt:g}")
        if output not in OUTPUTS:
            raise ValueError(f"SynNet: output must be one of {OUTPUTS}, got {output!r}")
        if output == "vmem" and threshold_out is not None:
            raise ValueError("SynNet: threshold_out applies only to output='spikes' "
                             "(in membrane mode the readout neurons do not fire)")
        if int(n_classes) < 1 or int(n_channels) < 1:
            raise ValueError("SynNet: n_classes and n_channels must be >= 1")
        self.n_classes, self.n_channels = int(n_classes), int(n_channels)
        self.size_hidden_layers, self.time_constants_per_layer = sizes, counts
        self.tau_syn_base, self.dt = float(tau_syn_base), float(dt)
        self.tau_mem_init, self.tau_syn_out_init = float(tau_mem), float(tau_syn_out)
        self.quantize_time_constants = bool(quantize_time_constants)
        self.train_time_constants = bool(train_time_constants)
        self.threshold_value = float(threshold)
        self.threshold_out = None if threshold_out is None else np.asarray(
            threshold_out, np.float64).tolist()
        self.train_threshold = bool(train_threshold)
        self.max_spikes_per_dt = int(max_spikes_per_dt)
        self.max_spikes_per_dt_out = int(max_spikes_per_dt_out)
        self.p_dropout = float(p_dropout)
        self.output_mode = output
        self.delay = bool(delay)
        self.surrogate = get_surrogate(surrogate)
        self.noise_std = float(noise_std)

        def q(tau, name="tau_syn_base"):
            if not quantize_time_constants:
                return np.asarray(tau, np.float64)
            shift = np.round(tau_to_bitshift(self.dt, tau))
            if np.any(shift < 1):
                raise ValueError(f"SynNet: {name} = {np.min(tau):g} s rounds to a decay shift "
                                 f"of 0 at dt = {self.dt:g} s (a state that forgets every "
                                 f"step); use at least {0.7 * self.dt:.3g} s")
            return bitshift_to_tau(self.dt, shift)
        tau_mem_q, tau_out_q = float(q(tau_mem, "tau_mem")), float(q(tau_syn_out, "tau_syn_out"))
        common = dict(dt=self.dt, surrogate=self.surrogate, noise_std=self.noise_std,
                      kernel_initializer="he_uniform")
        self.hidden = []
        self.dropouts = []
        n_in = self.n_channels
        for i, (size, count) in enumerate(zip(sizes, counts)):
            tau_syn = q(hidden_time_constants(size, count, self.tau_syn_base, self.dt))
            layer = LIF(size, tau_mem=tau_mem_q, tau_syn=tau_syn, threshold=threshold,
                        train_tau_mem=train_time_constants, train_tau_syn=train_time_constants,
                        train_threshold=train_threshold, max_spikes_per_dt=max_spikes_per_dt,
                        delay=int(self.delay and i > 0), kernel_scale=self.dt / tau_syn,
                        name=f"lif_{i}", **common)
            layer.build((None, None, n_in))
            self.hidden.append(layer)
            self.dropouts.append(TimeStepDropout(self.p_dropout, name=f"dropout_{i}")
                                 if self.p_dropout > 0 else None)
            n_in = size
        vmem = output == "vmem"
        th_out = threshold if threshold_out is None else threshold_out
        self.readout = LIF(self.n_classes, tau_mem=tau_mem_q, tau_syn=tau_out_q,
                           threshold=THRESHOLD_OUT_VMEM if vmem else th_out,
                           max_spikes_per_dt=max_spikes_per_dt_out, output=output,
                           delay=int(self.delay), kernel_scale=self.dt / tau_out_q,
                           name="readout", **common)
        self.readout.build((None, None, n_in))
        # one step of one sample builds the model (fit's checkpoints need a built model)
        self(keras.ops.zeros((1, 1, self.n_channels)))

    @property
    def lif_layers(self) -> list:
        """The hidden LIF layers and the readout, in order."""
        return [*self.hidden, self.readout]

    def call(self, inputs, training=None):
        x = inputs
        for layer, drop in zip(self.hidden, self.dropouts):
            x = layer(x, training=training)
            if drop is not None:
                x = drop(x, training=training)
        return self.readout(x, training=training)

    def record(self, inputs) -> dict:
        """Every layer's ``spikes``, ``vmem`` and ``isyn`` (numpy, ``(B, T, ...)``) on
        ``inputs`` (no dropout or noise): ``{layer name: {...}}``. Compiled once per
        network (one graph for any batch size and length)."""
        import tensorflow as tf
        if getattr(self, "_recorder", None) is None:
            def run(x):
                out = {}
                for layer in self.lif_layers:
                    rec, _ = layer.evolve(x)
                    out[layer.name] = rec
                    x = rec["spikes"]
                return out
            self._recorder = tf.function(run, reduce_retracing=True)
        out = self._recorder(tf.constant(np.asarray(inputs, np.float32)))
        return {name: {k: v.numpy() for k, v in rec.items()} for name, rec in out.items()}

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.n_classes,)

    def get_config(self):
        return {**super().get_config(), "n_classes": self.n_classes,
                "n_channels": self.n_channels, "size_hidden_layers": self.size_hidden_layers,
                "time_constants_per_layer": self.time_constants_per_layer,
                "tau_syn_base": self.tau_syn_base, "tau_mem": self.tau_mem_init,
                "tau_syn_out": self.tau_syn_out_init,
                "quantize_time_constants": self.quantize_time_constants,
                "train_time_constants": self.train_time_constants,
                "threshold": self.threshold_value, "threshold_out": self.threshold_out,
                "train_threshold": self.train_threshold,
                "max_spikes_per_dt": self.max_spikes_per_dt,
                "max_spikes_per_dt_out": self.max_spikes_per_dt_out,
                "p_dropout": self.p_dropout, "dt": self.dt, "output": self.output_mode,
                "delay": self.delay, "surrogate": to_config(self.surrogate),
                "noise_std": self.noise_std}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
