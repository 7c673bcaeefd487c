"""The ``xylo`` target simulator: quantize a converted network to a Xylo chip and run it.

Samples are static inputs, as for the other simulators: each becomes the
input channel values (after the host preprocessing), and every time step
the encoder turns those values into event counts per channel — the
deterministic accumulate-and-fire (sigma-delta) encoder emits
``floor`` of the accumulated ``value · events_per_unit``; the Poisson one
draws counts with that mean. Negative values send no events (Xylo's inputs
are event counts). The chip counts at most 15 events per channel and step.

The class score after each step is the output neurons' total charge in
thresholds: their spike count so far plus membrane potential over
threshold (the counterpart of the rate code's accumulated output current).
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from ...codes import SPIKE_CODE_ALIASES
from ...errors import ConfigError, SnnconvError
from ...simulation import BatchOutput
from .dynamics import initial_state, params_from_spec, xylo_step
from .limits import fanout
from .network import XyloNetwork, build_xylo_network
from .spec import MAX_INPUT_EVENTS


class XyloSimulator:
    name = "xylo"
    spike_codes = ("rate",)

    def convert(self, graph, spike_code: str = "rate", *, chip: str = "syns65302",
                quantization: str = "global", weight_shift="auto", v_thresh: float = 1.0,
                dt: float = 1.0, tau_mem=None, tau_syn=None, input_rate: float = 1000.0,
                poisson_input: bool = False, seed: int | None = None,
                max2avg_pool: bool = False, check: bool = True) -> XyloNetwork:
        """``input_rate`` (Hz, with ``dt`` in ms): events per second of a channel whose
        value is 1; ``poisson_input`` picks Poisson instead of sigma-delta events."""
        code = SPIKE_CODE_ALIASES.get(spike_code, spike_code)
        if code not in self.spike_codes:
            raise ConfigError(f"conversion.spike_code = {spike_code}: the xylo simulator "
                              "runs the rate code only")
        return build_xylo_network(
            graph, chip=chip, quantization=quantization, weight_shift=weight_shift,
            v_thresh=v_thresh, dt=dt, tau_mem=tau_mem, tau_syn=tau_syn,
            events_per_unit=input_rate * dt / 1000.0,
            encoding="poisson" if poisson_input else "sigma_delta",
            seed=0 if seed is None else seed, max2avg_pool=max2avg_pool, check=check)

    def accepts(self, snn) -> bool:
        return isinstance(snn, XyloNetwork)

    def describe(self, net: XyloNetwork) -> dict:
        neurons = dict(net.layers)
        neurons[net.output_name] = net.spec.num_outputs
        return {"dt": net.dt, "ann_macs": net.ann_macs, "neurons": neurons,
                "output_name": net.output_name, "decides": False, "check_input": None}

    def simulate_batch(self, net: XyloNetwork, x, steps, strategy=None) -> BatchOutput:
        x = _channel_values(net, x)
        readout, synops, spikes = _runner(net)(tf.constant(x), tf.constant(int(steps)))
        names = [n for n, _ in net.layers] + [net.output_name]
        return BatchOutput(np.asarray(readout),
                           {n: np.asarray(s) for n, s in zip(names, spikes)},
                           np.asarray(synops))


def _channel_values(net: XyloNetwork, x) -> np.ndarray:
    x = np.asarray(x, np.float64)
    if x.shape[1:] != tuple(net.input_shape) and x.reshape(len(x), -1).shape[1] != \
            int(np.prod(net.input_shape)):
        raise SnnconvError(f"inputs of shape {x.shape[1:]} do not fit the network's input "
                           f"{tuple(net.input_shape)}")
    flat = x.reshape(len(x), -1)
    return flat @ net.input_map if net.input_map is not None else flat


def encode_events(net: XyloNetwork, x, steps: int) -> np.ndarray:
    """The input event counts ``(B, T, channels)`` the simulator feeds for samples ``x``."""
    values = tf.constant(_channel_values(net, x))
    encoder = _Encoder(net)
    acc = tf.zeros_like(values)
    out = []
    for t in range(int(steps)):
        events, acc = encoder(values, acc, tf.constant(t))
        out.append(np.asarray(events))
    return np.stack(out, axis=1)


class _Encoder:
    """Channel values -> event counts of one step (sigma-delta or Poisson)."""

    def __init__(self, net: XyloNetwork):
        self.rate = float(net.events_per_unit)
        self.poisson = net.encoding == "poisson"
        self.seed = int(net.seed)

    def __call__(self, values, acc, t):
        mean = tf.maximum(values, 0.0) * self.rate
        if self.poisson:
            events = tf.random.stateless_poisson(tf.shape(mean), [self.seed, t], mean,
                                                 dtype=tf.float64)
        else:
            acc = acc + mean
            events = tf.floor(acc)
            acc = acc - events
        return tf.cast(tf.minimum(events, MAX_INPUT_EVENTS), tf.int32), acc


def _runner(net: XyloNetwork):
    """A compiled function ``(values (B, I), steps) -> (readout, synops, spikes per layer)``."""
    cached = getattr(net, "_compiled", None)
    if cached is not None:
        return cached
    params = params_from_spec(net.spec)
    spec = net.spec
    fan_in = tf.constant((np.asarray(spec.weights_in) != 0).reshape(spec.num_inputs, -1, 
                         spec.num_synapses).any(axis=2).sum(axis=1).astype(np.float32))
    fan_hidden = tf.constant(fanout(spec.weights_rec, spec.weights_out).astype(np.float32))
    bounds = np.cumsum([0] + [k for _, k in net.layers])
    threshold_out = tf.constant(np.asarray(spec.threshold_out, np.float32))
    encoder = _Encoder(net)

    @tf.function(reduce_retracing=True)
    def run(values, steps):
        batch = tf.shape(values)[0]
        n_layers = len(net.layers) + 1
        arrays = (tf.TensorArray(tf.float32, size=steps), tf.TensorArray(tf.float32, size=steps),
                  tuple(tf.TensorArray(tf.float32, size=steps) for _ in range(n_layers)))
        count0 = tf.zeros((batch, spec.num_outputs), tf.float32)

        def body(t, state, acc, count, arrays):
            events, acc = encoder(values, acc, t)
            state, spikes, spikes_out = xylo_step(state, events, params)
            s = tf.cast(spikes, tf.float32)
            so = tf.cast(spikes_out, tf.float32)
            count = count + so
            score = count + tf.cast(state.v_out, tf.float32) / threshold_out
            synops = tf.reduce_sum(tf.cast(events, tf.float32) * fan_in, axis=1) \
                + tf.reduce_sum(s * fan_hidden, axis=1)
            per_layer = [tf.reduce_sum(s[:, bounds[i]:bounds[i + 1]], axis=1)
                         for i in range(len(net.layers))] + [tf.reduce_sum(so, axis=1)]
            arrays = (arrays[0].write(t, score), arrays[1].write(t, synops),
                      tuple(a.write(t, v) for a, v in zip(arrays[2], per_layer)))
            return t + 1, state, acc, count, arrays

        _, _, _, _, arrays = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), initial_state(params, batch), tf.zeros_like(values), count0,
             arrays))
        readout = tf.transpose(arrays[0].stack(), [1, 0, 2])
        synops = tf.transpose(arrays[1].stack())
        spikes = tuple(tf.transpose(a.stack()) for a in arrays[2])
        return readout, synops, spikes

    net._compiled = run
    return run
