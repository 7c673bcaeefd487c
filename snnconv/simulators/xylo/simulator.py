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

from pathlib import Path

import numpy as np
import tensorflow as tf

from ...errors import ConfigError, DataError
from ..base import BatchOutput, NetworkInfo, Simulator
from .dynamics import initial_state, params_from_spec, xylo_step
from .encoding import Encoder, channel_values
from .limits import fanout
from .network import XyloNetwork, build_xylo_network, load_xylo


class XyloSimulator(Simulator):
    name = "xylo"
    spike_codes = ("rate",)
    saves = True
    file_suffix = ".npz"

    def convert(self, graph, spike_code: str = "rate", *, chip: str = "syns65302",
                quantization: str = "global", weight_shift="auto", v_thresh: float = 1.0,
                dt: float = 1.0, tau_mem=None, tau_syn=None, input_rate: float = 1000.0,
                poisson_input: bool = False, seed: int | None = None,
                max2avg_pool: bool = False, check: bool = True) -> XyloNetwork:
        """``input_rate`` (Hz, with ``dt`` in ms): events per second of a channel whose
        value is 1; ``poisson_input`` picks Poisson instead of sigma-delta events."""
        self.check_spike_code(spike_code)
        return build_xylo_network(
            graph, chip=chip, quantization=quantization, weight_shift=weight_shift,
            v_thresh=v_thresh, dt=dt, tau_mem=tau_mem, tau_syn=tau_syn,
            events_per_unit=input_rate * dt / 1000.0,
            encoding="poisson" if poisson_input else "sigma_delta",
            seed=0 if seed is None else seed, max2avg_pool=max2avg_pool, check=check)

    def options_from_config(self, config) -> dict:
        self.check_config(config)
        cell, sim, inp, x = config.cell, config.simulation, config.input, config.xylo
        for key, bad, why in (("cell.reset", cell.reset != "subtraction",
                               "Xylo resets by subtraction; set it to subtraction"),
                              ("cell.tau_refrac", cell.tau_refrac != 0,
                               "Xylo neurons have no refractory period; set it to 0"),
                              ("cell.v_init", cell.v_init != 0,
                               "Xylo neurons start at 0; set it to 0"),
                              ("cell.threshold_mode", cell.threshold_mode != "inclusive",
                               "Xylo neurons fire at V >= threshold; set it to inclusive")):
            if bad:
                raise ConfigError(f"{key} = {getattr(cell, key.split('.')[1])} cannot be "
                                  f"used with simulation.simulator = xylo: {why}")
        return dict(chip=x.chip, quantization=x.quantization,
                    weight_shift=x.weight_shift if x.weight_shift == "auto"
                    else int(x.weight_shift),
                    v_thresh=cell.v_thresh, dt=sim.dt,
                    tau_mem=cell.tau_mem if cell.leak else None, tau_syn=x.tau_syn,
                    input_rate=inp.input_rate, poisson_input=inp.poisson_input,
                    seed=sim.seed, max2avg_pool=config.conversion.max2avg_pool)

    def accepts(self, snn) -> bool:
        return isinstance(snn, XyloNetwork)

    def info(self, net: XyloNetwork) -> NetworkInfo:
        neurons = dict(net.layers)
        neurons[net.output_name] = net.spec.num_outputs
        if net.temporal:
            return NetworkInfo(dt=net.dt, ann_macs=net.ann_macs, neurons=neurons,
                               output_name=net.output_name, temporal=True,
                               num_classes=net.spec.num_outputs,
                               check_input=lambda x: check_events(net, x))
        return NetworkInfo(dt=net.dt, ann_macs=net.ann_macs, neurons=neurons,
                           output_name=net.output_name, spike_code="rate")

    def save(self, net: XyloNetwork, path) -> Path:
        return net.save(self.file_name(path))

    def can_load(self, path: Path) -> bool:
        if Path(path).suffix != self.file_suffix:
            return False
        try:
            with np.load(path, allow_pickle=False) as f:
                return "weights_in" in f.files
        except (OSError, ValueError):
            return False

    def load(self, path) -> XyloNetwork:
        return load_xylo(path)

    def target(self, net: XyloNetwork) -> str:
        return f"simulator xylo on {net.spec.chip}"

    def summary_lines(self, net: XyloNetwork) -> list[str]:
        return net.fit_report().splitlines()

    def run_facts(self, net: XyloNetwork) -> dict:
        s = net.spec
        return {"xylo_chip": s.chip, "xylo_quantization": net.quantization,
                "xylo_weight_shifts": [s.weight_shift_in, s.weight_shift_rec,
                                       s.weight_shift_out],
                "xylo_quantization_error": net.quantization_error}

    def record_samples(self, net: XyloNetwork, x, steps: int):
        from .recording import record_xylo_samples
        return record_xylo_samples(net, x, steps)

    def simulate_batch(self, net: XyloNetwork, x, steps, *, strategy=None,
                       early_stopping=False) -> BatchOutput:
        if net.temporal:
            check_events(net, x)
            readout, synops, spikes = _runner(net)(tf.constant(np.asarray(x, np.float64)),
                                                   tf.constant(int(np.shape(x)[1])))
        else:
            x = channel_values(net, x)
            readout, synops, spikes = _runner(net)(tf.constant(x), tf.constant(int(steps)))
        names = [n for n, _ in net.layers] + [net.output_name]
        return BatchOutput(np.asarray(readout),
                           {n: np.asarray(s) for n, s in zip(names, spikes)},
                           np.asarray(synops))


def check_events(net: XyloNetwork, x) -> None:
    """A :class:`DataError` unless ``x`` is ``(N, T, channels)`` non-negative counts."""
    x = np.asarray(x)
    if x.ndim != 3 or x.shape[2] != net.spec.num_inputs:
        raise DataError(f"inputs must be event counts (samples, time steps, "
                        f"{net.spec.num_inputs}) for {net.name}, got shape {x.shape}")
    if x.size and (not np.all(np.isfinite(x)) or x.min() < 0 or np.any(x != np.round(x))):
        raise DataError(f"inputs to {net.name} must be non-negative integer event counts")


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
    scale = tf.constant(np.ones(spec.num_outputs) if net.output_scale is None
                        else np.asarray(net.output_scale), tf.float32)
    encoder = Encoder(net)

    def inputs(values, acc, t):
        """This step's events: the given counts (temporal) or the encoder's."""
        if net.temporal:
            return tf.cast(tf.minimum(values[:, t], 15.0), tf.int32), acc
        return encoder(values, acc, t)

    def score(count, best, state):
        """The class score after this step, and the running maximum of the membrane."""
        v = tf.cast(state.v_out, tf.float32) / scale
        best = tf.maximum(best, v)
        if net.readout == "vmem":
            return best, best
        if net.readout == "spikes":
            return count, best
        return count + tf.cast(state.v_out, tf.float32) / threshold_out, best

    @tf.function(reduce_retracing=True)
    def run(values, steps):
        batch = tf.shape(values)[0]
        n_layers = len(net.layers) + 1
        arrays = (tf.TensorArray(tf.float32, size=steps), tf.TensorArray(tf.float32, size=steps),
                  tuple(tf.TensorArray(tf.float32, size=steps) for _ in range(n_layers)))
        count0 = tf.zeros((batch, spec.num_outputs), tf.float32)
        best0 = tf.fill((batch, spec.num_outputs), -np.inf)
        acc0 = tf.zeros_like(values[:, 0] if net.temporal else values)

        def body(t, state, acc, count, best, arrays):
            events, acc = inputs(values, acc, t)
            state, spikes, spikes_out = xylo_step(state, events, params)
            s = tf.cast(spikes, tf.float32)
            so = tf.cast(spikes_out, tf.float32)
            count = count + so
            value, best = score(count, best, state)
            synops = tf.reduce_sum(tf.cast(events, tf.float32) * fan_in, axis=1) \
                + tf.reduce_sum(s * fan_hidden, axis=1)
            per_layer = [tf.reduce_sum(s[:, bounds[i]:bounds[i + 1]], axis=1)
                         for i in range(len(net.layers))] + [tf.reduce_sum(so, axis=1)]
            arrays = (arrays[0].write(t, value), arrays[1].write(t, synops),
                      tuple(a.write(t, v) for a, v in zip(arrays[2], per_layer)))
            return t + 1, state, acc, count, best, arrays

        _, _, _, _, _, arrays = tf.while_loop(
            lambda t, *_: t < steps, body,
            (tf.constant(0), initial_state(params, batch), acc0, count0, best0, arrays))
        readout = tf.transpose(arrays[0].stack(), [1, 0, 2])
        synops = tf.transpose(arrays[1].stack())
        spikes = tuple(tf.transpose(a.stack()) for a in arrays[2])
        return readout, synops, spikes

    net._compiled = run
    return run
