"""Post-conversion calibration of a rate-coded INI network (after Li et al. 2021).

A converted network's layers are calibrated one after another, in network
order, on unlabelled data, each against the normalised ANN's activations
with the layers before it already calibrated:

* the *conversion error* of a layer is the normalised ANN activation (clipped
  to the highest output a neuron can reach) minus the layer's spike rate
  times the spike amplitude after ``T`` steps; for the output layer, the ANN's
  logits minus the layer's mean input current (its readout);
* ``light``: the layer's current is shifted per channel until the error's
  mean over the channel vanishes, through the layer's bias. A shift moves
  only the neurons that are active (in the ANN or the SNN), and spike counts
  are a staircase of the current, so the shift is the summed error over the
  active neurons, measured and corrected a few times on the batch, keeping
  per channel the shift with the smallest error. A layer whose neurons are
  fed without weights of its own (the ReLU after an ``Add``) takes the shift
  in the bias of a linear weight layer that feeds it alone, divided by that
  input's coefficient; failing that, in its neurons' initial potentials
  (``T·dt`` times the shift: the same charge over ``T`` steps);
* ``advanced``: that correction on the first batch, then on every batch a
  few gradient steps (Adam) per layer fit the layer's weights and bias,
  those of the linear weight layers that feed it alone, and every neuron's
  initial potential, to the ANN's activations. The layer's true rate is
  simulated once per batch; the steps follow a straight-through model of
  it: the rate moves as ``clip(mean current + v_init / (T·dt), 0, max)``
  does, computed from the SNN's own input rates (the loss is the squared
  error of that model, equal to the true rate's at the start of the batch).
  The output layer (a readout, no neurons) gets the light correction.

A *unit* is a layer with neurons (or the output layer) together with the
layers without neurons that feed only it (a linear convolution before an
``Add``, pooling, flatten): the unit's output is what the next units see.

The data goes through in batches and each layer is corrected on every
batch, with the layers before it already corrected on that batch (and the
earlier ones): a running estimate, so that only one batch's spike trains
are ever held in memory and the light calibration costs a few simulations
of the data. The light correction from batch ``k`` (counted from 0) is
applied with weight ``1 / (k + 1)``, so the biases settle on the mean of
the batches' corrections.
"""
from __future__ import annotations

import dataclasses
import logging

import keras
import numpy as np
import tensorflow as tf

from ...errors import ConfigError, SnnconvError
from ...ir import Graph
from ...layers import CUSTOM_OBJECTS, SpikeAdd, SpikeInput, SpikeLayer, SpikeMaxPooling2D
from .engine import input_layer, layer_inputs, output_layer

log = logging.getLogger(__name__)

METHODS = ("light", "advanced")
# the advanced method's Adam steps for the initial potentials, relative to the
# weights' (in thresholds: 0.03 at the default learning rate)
V_INIT_RATE = 10.0


@dataclasses.dataclass
class Unit:
    """A layer that is calibrated, with the layers without neurons that only it reads."""

    layer: SpikeLayer
    inputs: list[str]
    feeders: list[tuple[SpikeLayer, list[str]]]   # in model order
    output: bool                                  # the network's output (read out, no neurons)
    # where the light correction goes: (layer with a bias, factor by which the
    # unit's current moves per unit of that bias) or None: the initial potentials
    bias: tuple[SpikeLayer, np.ndarray] | None = None

    @property
    def name(self) -> str:
        return self.layer.name

    def current(self, values: dict):
        """:func:`unit_current`, compiled (traced once per batch shape)."""
        if "_current" not in self.__dict__:
            self.__dict__["_current"] = tf.function(lambda vals: unit_current(self, vals),
                                                    reduce_retracing=True)
        return self.__dict__["_current"]({n: values[n] for n in boundary(self)})

    def fire(self, current):
        """:func:`fire`, compiled."""
        if "_fire" not in self.__dict__:
            self.__dict__["_fire"] = tf.function(lambda c: fire(self, c), reduce_retracing=True)
        return self.__dict__["_fire"](current)

    def weight_layers(self) -> list[SpikeLayer]:
        """Layers whose kernel and bias the advanced method fits."""
        own = [self.layer] if hasattr(self.layer, "kernel") else []
        return own + [f for f, _ in self.feeders if hasattr(f, "kernel")]


class Plan:
    """What is calibrated in a network, and the order its layers run in."""

    def __init__(self, snn: keras.Model, graph: Graph):
        self.snn = snn
        self.raw_input = snn.layers[0].name
        self.order = [(lay, ins) for lay, ins in layer_inputs(snn)
                      if isinstance(lay, SpikeLayer)]
        readers: dict[str, list[str]] = {}
        for lay, ins in self.order:
            for name in ins:
                readers.setdefault(name, []).append(lay.name)
        self.readers = readers
        layers = {lay.name: (lay, ins) for lay, ins in self.order}
        out = output_layer(snn)
        nodes = {n.name: n for n in graph}
        self.units: dict[str, Unit] = {}
        skipped = []
        for lay, ins in self.order:
            is_out = lay is out and not lay.spiking
            if not (lay.spiking or is_out) or lay is input_layer(snn):
                continue
            node = nodes.get(lay.name)
            if node is None or isinstance(lay, SpikeMaxPooling2D) or \
                    (lay.spiking and node.activation != "relu"):
                skipped.append(lay.name)
                continue
            unit = Unit(lay, list(ins), self._feeders(lay, layers), is_out)
            unit.bias = self._bias_target(unit, layers)
            self.units[lay.name] = unit
        if skipped:
            log.warning("calibration leaves layers %s as they are (not nodes of the graph, or "
                        "max pooling)", ", ".join(skipped))
        self.feeder_names = {f.name for u in self.units.values() for f, _ in u.feeders}

    def _feeders(self, lay, layers) -> list[tuple[SpikeLayer, list[str]]]:
        """The layers without neurons that feed ``lay`` and nothing else, transitively."""
        found: dict[str, tuple] = {}
        stack = list(layers[lay.name][1])
        while stack:
            name = stack.pop()
            if name not in layers or name in found:
                continue
            src, ins = layers[name]
            if isinstance(src, SpikeInput) or src.spike_amplitude is not None or \
                    len(self.readers.get(name, [])) != 1:
                continue
            found[name] = (src, ins)
            stack.extend(ins)
        return [(src, ins) for src, ins in self.order if src.name in found]

    def _bias_target(self, unit: Unit, layers):
        lay = unit.layer
        if getattr(lay, "bias", None) is not None:
            return lay, np.ones(lay.bias.shape, np.float32)
        if not isinstance(lay, SpikeAdd):
            return None
        feeders = {f.name for f, _ in unit.feeders}
        coeffs = lay.coefficients or [1.0] * len(unit.inputs)
        gain = 1.0 if lay.gain is None else np.asarray(lay.gain, np.float32)
        for name, c in zip(unit.inputs, coeffs):
            src = layers[name][0]
            if name not in feeders or getattr(src, "bias", None) is None:
                continue
            factor = np.asarray(c, np.float32) * gain
            if factor.ndim > 1 or np.any(factor == 0):
                continue    # varies across positions: no bias can carry it
            return src, np.broadcast_to(factor, src.bias.shape).astype(np.float32)
        return None


# -- running a network layer by layer on a batch (sequence mode) ----------------

def _gather(values, ins):
    got = [values[n] for n in ins]
    return got if len(got) > 1 else got[0]


def unit_current(unit: Unit, values: dict):
    """The unit's input current ``(B, T, ...)`` from the values of the layers it reads."""
    local = dict(values)
    for f, ins in unit.feeders:
        local[f.name] = f.synapse(_gather(local, ins))
    return unit.layer.synapse(_gather(local, unit.inputs))


def unit_mean_current(unit: Unit, means: dict):
    """The unit's mean current over time, from the mean signals it reads (every
    layer between is linear in time, max pooling of rates included)."""
    local = dict(means)
    for f, ins in unit.feeders:
        local[f.name] = f.current(_gather(local, ins))
    return unit.layer.current(_gather(local, unit.inputs))


def boundary(unit: Unit) -> list[str]:
    inside = {f.name for f, _ in unit.feeders}
    names = [n for _, ins in unit.feeders for n in ins] + list(unit.inputs)
    return list(dict.fromkeys(n for n in names if n not in inside))


def fire(unit: Unit, current):
    """The unit's output sequence for ``current`` (spikes times amplitude, or the current)."""
    lay = unit.layer
    if not lay.spiking:
        return current
    v0 = lay.v_init if lay.initial_potentials else None
    out = lay.neuron.run(current, v0=v0)
    return out * lay.neuron.spike_amplitude


class _Runner:
    """Steps through the network's layers on one batch, handing each unit to a callback."""

    def __init__(self, plan: Plan):
        self.plan = plan

    def run(self, x: np.ndarray, steps: int, on_unit):
        plan = self.plan
        frames = tf.repeat(tf.convert_to_tensor(x[:, None], tf.float32), steps, axis=1)
        values = {plan.raw_input: frames}
        pending = {name: len(r) for name, r in plan.readers.items()}
        for lay, ins in plan.order:
            if lay.name in plan.feeder_names:
                continue
            unit = plan.units.get(lay.name)
            if unit is None:
                values[lay.name] = lay(_gather(values, ins))
            else:
                values[lay.name] = on_unit(unit, values)
            for name in boundary(unit) if unit else ins:
                pending[name] -= 1
                if pending[name] == 0 and name != plan.raw_input:
                    values.pop(name, None)
        return values


def _targets(graph: Graph, names: list[str]):
    """A Keras model of the normalised ANN returning each unit's activation
    (the output node's logits, before its softmax)."""
    from ...ann import build_ann
    g = graph.copy()
    g[g.output_node.name].activation = "linear" if g.output_node.activation == "softmax" \
        else g.output_node.activation
    return build_ann(g, outputs=names)


def _batches(x, batch_size):
    from ...normalization import _batches as batches
    return batches(x, batch_size)


def _max_output(lay: SpikeLayer) -> float:
    return float(lay.neuron.max_spikes_per_dt * lay.neuron.spike_amplitude)


def _channel_mean(a) -> np.ndarray:
    a = np.asarray(a)
    return a.reshape(-1, a.shape[-1]).mean(axis=0)


# -- the calibration --------------------------------------------------------------

def calibrate(snn: keras.Model, graph: Graph, x, num_steps: int, method: str = "light",
              batch_size: int = 100, iterations: int = 8, learning_rate: float = 3e-3
              ) -> keras.Model:
    """A calibrated copy of the rate-coded ``snn`` (see the module docstring).

    ``graph`` is the normalised graph ``snn`` was converted from (its ANN gives
    the targets); ``x`` the calibration inputs (an array or a re-iterable of
    batches); ``num_steps`` the number of steps the network will be run for.
    ``iterations`` and ``learning_rate``: the advanced method's gradient
    steps per layer and batch, and their Adam step size (see :class:`_Fitter`).
    """
    if method not in METHODS:
        raise ConfigError(f"calibration.method = {method}: the INI simulator calibrates with "
                          f"{', '.join(METHODS)}")
    if input_layer(snn).spike_code != "rate":
        raise ConfigError(f"calibration.method = {method} needs conversion.spike_code = rate; "
                          f"the network uses {input_layer(snn).spike_code}")
    if int(num_steps) < 1:
        raise ConfigError(f"calibration.num_steps = {num_steps}: expected at least 1 step")
    steps = int(num_steps)
    advanced = method == "advanced"
    plan = Plan(snn, graph)
    needs_v0 = {name for name, u in plan.units.items()
                if u.layer.spiking and (advanced or u.bias is None)}
    snn = copy_network(snn, initial_potentials=needs_v0)
    plan = Plan(snn, graph)
    if not plan.units:
        raise SnnconvError(f"network {snn.name!r} has no layer to calibrate")
    names = list(plan.units)
    ann = _targets(graph, names)
    fitters = {name: _Fitter(u, steps, learning_rate, iterations)
               for name, u in plan.units.items() if u.layer.spiking} if advanced else {}
    runner = _Runner(plan)
    seen = 0
    for k, xb in enumerate(_batches(x, batch_size)):
        seen += len(xb)
        a = ann.predict_on_batch(xb)
        a = dict(zip(names, a if isinstance(a, (list, tuple)) else [a]))
        weight = 1.0 if k == 0 else 1.0 / (k + 1)

        def on_unit(unit, values, a=a, weight=weight, first=k == 0):
            target = np.asarray(a[unit.name], np.float32)
            if unit.layer.spiking:
                target = np.clip(target, 0.0, _max_output(unit.layer))
            current = unit.current(values)
            if advanced:
                if first:       # the gradient steps start from the corrected biases
                    _bias_correction(unit, current, target, steps)
                if unit.layer.spiking:    # the readout: the light correction only
                    fitters[unit.name].fit(values, target)
                    return unit.fire(unit.current(values))
            current = _bias_correction(unit, current, target, steps, weight)
            return unit.fire(current)

        runner.run(np.asarray(xb, np.float32), steps, on_unit)
    if seen == 0:
        raise SnnconvError("calibration data is empty")
    return snn


def _bias_correction(unit: Unit, current, target, steps: int, weight: float = 1.0,
                     repeats: int = 4):
    """Zero the unit's mean error per channel on this batch and keep ``weight`` of
    that correction. Spike counts are a staircase of the current, so a shift
    moves the error by more or less than itself: the shift is measured and
    corrected ``repeats`` times, and each channel keeps the shift whose error
    was smallest. Returns the corrected current sequence."""
    if not unit.layer.spiking:     # the readout is linear in its bias: one exact step
        rate = np.asarray(tf.reduce_mean(unit.fire(current), axis=1))
        return _correct(unit, current, weight * _step(target, rate, False), steps)
    total = best = 0.0
    best_err = None
    for i in range(repeats):
        rate = np.asarray(tf.reduce_mean(unit.fire(current), axis=1))
        err = np.abs(_channel_mean(target - rate))
        if best_err is None or i == 0:
            best, best_err = np.zeros_like(err), err
        else:
            better = err < best_err
            best, best_err = np.where(better, total, best), np.where(better, err, best_err)
        if i < repeats - 1:
            delta = _step(target, rate, True)
            current = _correct(unit, current, delta, steps)
            total = total + delta
    return _correct(unit, current, weight * best - total, steps)


def _step(target: np.ndarray, rate: np.ndarray, spiking: bool) -> np.ndarray:
    """The per-channel shift of the current that zeroes the mean error: the error
    summed over the channel's neurons, divided by the number of them that
    respond to a shift (active in the ANN or the SNN; the others stay silent)."""
    err = (target - rate).reshape(-1, target.shape[-1])
    if not spiking:
        return err.mean(axis=0)
    live = ((target > 0) | (rate > 0)).reshape(-1, target.shape[-1]).sum(axis=0)
    return err.sum(axis=0) / np.maximum(live, 1)


def _correct(unit: Unit, current, delta: np.ndarray, steps: int):
    """Move the unit's current by ``delta`` per channel: through a bias, or the
    initial potentials. Returns the corrected current sequence."""
    lay = unit.layer
    if unit.bias is not None:
        target, factor = unit.bias
        target.bias.assign(target.bias.numpy() + delta / factor)
        return current + delta
    dt = lay.neuron.dt
    lay.v_init.assign(lay.v_init.numpy() + steps * dt * delta)
    return current


class _Fitter:
    """The advanced method's gradient steps for one layer with neurons (Adam on a
    straight-through model of its rate). Weights and biases take steps of
    ``learning_rate``, initial potentials of :data:`V_INIT_RATE` times that
    (in thresholds)."""

    def __init__(self, unit: Unit, steps: int, learning_rate: float, iterations: int):
        self.unit, self.steps, self.iterations = unit, steps, iterations
        lay = unit.layer
        self.variables, rates = [], []
        for w in unit.weight_layers():
            self.variables += [w.kernel, w.bias]
            rates += [learning_rate, learning_rate]
        self.variables.append(lay.v_init)
        rates.append(learning_rate * V_INIT_RATE * lay.neuron.v_thresh)
        self.rates = rates
        # the backend variables (Keras's non-trainable ones are not watched by default)
        self.watched = [getattr(v, "value", v) for v in self.variables]
        self.m = [np.zeros(v.shape, np.float32) for v in self.variables]
        self.s = [np.zeros(v.shape, np.float32) for v in self.variables]
        self.t = 0

    def fit(self, values: dict, target: np.ndarray):
        unit, lay = self.unit, self.unit.layer
        means = {n: tf.reduce_mean(values[n], axis=1) for n in boundary(unit)}
        target = tf.convert_to_tensor(target)
        # the true rate, once per batch: the steps follow its straight-through model
        rate = tf.reduce_mean(unit.fire(unit.current(values)), axis=1)
        offset = None
        for _ in range(self.iterations):
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                tape.watch(self.watched)
                z = unit_mean_current(unit, means) + lay.v_init / (self.steps * lay.neuron.dt)
                z = tf.clip_by_value(z, 0.0, _max_output(lay))
                if offset is None:
                    offset = tf.stop_gradient(rate - z)
                r = z + offset
                loss = tf.reduce_mean(tf.square(r - target))
            grads = tape.gradient(loss, self.watched)
            self._adam(grads)

    def _adam(self, grads, b1=0.9, b2=0.999, eps=1e-8):
        self.t += 1
        for i, (v, g) in enumerate(zip(self.variables, grads)):
            if g is None:
                continue
            g = np.asarray(g)
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.s[i] = b2 * self.s[i] + (1 - b2) * g * g
            mh = self.m[i] / (1 - b1 ** self.t)
            sh = self.s[i] / (1 - b2 ** self.t)
            v.assign(v.numpy() - self.rates[i] * mh / (np.sqrt(sh) + eps))


def copy_network(snn: keras.Model, initial_potentials=()) -> keras.Model:
    """A copy of ``snn`` with its own weights; the layers named in
    ``initial_potentials`` get per-neuron initial potentials (starting at their
    neurons' ``v_init``)."""
    config = snn.get_config()
    for entry in config["layers"]:
        if entry["config"].get("name") in initial_potentials:
            entry["config"]["initial_potentials"] = True
    return rebuild(snn, config)


def rebuild(snn: keras.Model, config: dict) -> keras.Model:
    """The network of the (edited) model ``config``, with the weights of ``snn``
    (layers matched by name, weights by their own name)."""
    copy = keras.Model.from_config(config, custom_objects=CUSTOM_OBJECTS)
    for lay in snn.layers:
        new = copy.get_layer(lay.name)
        by_name = {_var_name(v): v for v in new.weights}
        for v in lay.weights:
            by_name[_var_name(v)].assign(v.numpy())
    return copy


def _var_name(v) -> str:
    return v.path.rsplit("/", 1)[-1] if hasattr(v, "path") else v.name


def conversion_errors(snn: keras.Model, graph: Graph, x, num_steps: int,
                      batch_size: int = 100) -> dict[str, np.ndarray]:
    """Every calibrated layer's conversion error, averaged per channel over ``x``:
    ``{layer: (channels,) mean of ANN activation (clipped) minus SNN rate}``
    (for the output layer: logits minus mean current). What calibration drives
    towards zero."""
    plan = Plan(snn, graph)
    names = list(plan.units)
    ann = _targets(graph, names)
    sums: dict[str, np.ndarray] = {}
    count = 0

    for xb in _batches(x, batch_size):
        a = ann.predict_on_batch(xb)
        a = dict(zip(names, a if isinstance(a, (list, tuple)) else [a]))

        def on_unit(unit, values, a=a):
            target = np.asarray(a[unit.name], np.float32)
            if unit.layer.spiking:
                target = np.clip(target, 0.0, _max_output(unit.layer))
            out = unit.fire(unit.current(values))
            err = _channel_mean(target - np.asarray(tf.reduce_mean(out, axis=1))) * len(xb)
            sums[unit.name] = sums.get(unit.name, 0.0) + err
            return out

        _Runner(plan).run(np.asarray(xb, np.float32), int(num_steps), on_unit)
        count += len(xb)
    if count == 0:
        raise SnnconvError("data is empty")
    return {name: s / count for name, s in sums.items()}


__all__ = ["METHODS", "calibrate", "conversion_errors", "copy_network"]
