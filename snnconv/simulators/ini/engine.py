"""The INI backend's engine: a Spike* Keras model over a batch, all time steps in one compiled call.

:func:`simulate_batch` runs a compiled ``tf.while_loop`` over time in which
every layer takes one step (step mode, see :mod:`snnconv.layers.base`):
memory does not grow with the number of steps, and only small per-step
summaries (accumulated readout, spikes per layer, synaptic operations)
leave the loop. The function is traced once per network and reused for
every batch. What is the same at every step (an analog input's current
through the layers it alone feeds) is computed once before the loop. The
loop runs as a TensorFlow graph or compiled by XLA (``engine``), which takes
:data:`XLA_STEPS_PER_PASS` steps per pass of the loop on small networks.
"""
from __future__ import annotations

import math
from functools import lru_cache

import keras
import numpy as np
import tensorflow as tf

from ...choices import ENGINES
from ...layers import SpikeInput, SpikeLayer
from ...neurons import IFNeuron
from ..base import BatchOutput

# How a batch is run (ENGINES, simulation.engine): "graph", the compiled TensorFlow
# loop; "xla", the same loop compiled by XLA; "auto", the one measured faster for
# the kind of network (see xla_pays).
# XLA fuses a step's many small operations into a few kernels, which pays where
# the per-operation overhead dominates; but its CPU convolutions are slower than
# oneDNN's, and large matrix products gain nothing. Measured (benchmarks/
# bench_engine.py and docs/benchmarks.md, "Engines"; 2 cores, batch 32, T 50):
# small dense networks 2.1-2.8x faster under XLA, a 784-500-500 one 1.1x slower;
# convolutions on 8x8 maps 1.0-1.3x faster, on 12x12 1.25x and on 16x16 1.5x
# slower, on 28x28 (batch 100) 1.3-1.7x slower. So "auto" takes XLA when no
# layer works on more positions than this and one ANN pass is at most this many MACs.
XLA_MAX_POSITIONS = 100
XLA_MAX_MACS = 500_000
# Under XLA the loop takes this many time steps per pass (the rest of T one by
# one): the compiled steps then share one pass's bookkeeping and XLA schedules
# them together. Measured (benchmarks/bench_engine.py's digits CNN, batch 32, T 50,
# 2 cores, three rounds): 1 step per pass 6.6-7.5 us per sample·step, 5 steps
# 6.0-6.3, 10 steps 5.3-6.4, 25 steps 11.6-12.1 (the compiled code outgrows the
# caches) with a first call 4x as long. Large networks lose (fashion_resnet,
# batch 100, T 64: 147-161 us at 1 step, 163-170 at 5) and the TF graph gains
# nothing (digits 10.1-10.5 at 1 step, 9.6-11.2 at 4): so only the networks
# "auto" runs under XLA (xla_pays) take several steps per pass.
XLA_STEPS_PER_PASS = 5


def input_layer(snn: keras.Model) -> SpikeInput:
    for layer in snn.layers:
        if isinstance(layer, SpikeInput):
            return layer
    raise ValueError(f"model {snn.name!r} has no SpikeInput layer; it is not a snnconv SNN")


def output_layer(snn: keras.Model) -> SpikeLayer:
    return snn.get_layer(snn.output._keras_history[0].name)


def spiking_layers(snn: keras.Model) -> list[SpikeLayer]:
    """Layers whose output is spikes, in order (the input when Poisson-coded)."""
    return [lay for lay in snn.layers
            if isinstance(lay, SpikeLayer) and lay.spike_amplitude is not None]


def simulate_batch(snn: keras.Model, x: np.ndarray, steps: int,
                   strategy: tf.distribute.Strategy | None = None,
                   early_stopping: bool = False, engine: str = "auto") -> BatchOutput:
    """Simulate ``steps`` time steps of the SNN on the batch ``x`` (no time axis).

    ``engine``: ``"graph"`` runs the loop as a TensorFlow graph, ``"xla"``
    compiles it with XLA (once per number of steps), ``"auto"`` takes the one
    faster for this kind of network (:func:`xla_pays`). They give the same
    spikes and predictions; the readouts differ by float rounding (XLA sums in
    another order), and a Poisson input draws other random numbers under XLA.
    Under a ``tf.distribute`` strategy of several replicas the graph runs.

    ``early_stopping``: for a network whose output layer spikes (the TTFS
    codes, where the class is the first output spike) stop simulating once
    every sample of the batch has decided. The remaining steps keep the
    scores of the last simulated step (the decision cannot change any more)
    and record no spikes and no synaptic operations. No effect on other
    networks.

    The input frame is ``x`` at every step (analog current, or the Poisson
    spikes the input layer draws from it). With a ``tf.distribute`` strategy
    of several replicas the batch is split across them and the per-sample
    results are put back together in order: the same numbers as on one
    device, since samples do not interact. Under a multi-worker strategy
    every worker passes the same batch, simulates its replicas' share and
    receives the whole result.
    """
    jit = _use_xla(snn, engine)
    x = np.asarray(x, dtype=np.float32)
    # XLA needs the loop's length at compile time (one compilation per T)
    steps_t = int(steps) if jit else tf.constant(int(steps))
    stop = tf.constant(bool(early_stopping))
    replicas = strategy.num_replicas_in_sync if strategy is not None else 1
    if replicas < 2 or len(x) < replicas:
        readout, synops, spikes = _runner(snn, jit)(tf.constant(x), steps_t, stop)
    else:
        chunks = np.array_split(x, replicas)
        per_replica = strategy.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(chunks[ctx.replica_id_in_sync_group]))
        out = _distributed_runner(snn, strategy)(per_replica, steps_t, stop)
        # gathered across all replicas, of every worker under a multi-worker strategy
        readout, synops, spikes = tf.nest.map_structure(
            lambda v: strategy.gather(v, axis=0), out)
    return BatchOutput(np.asarray(readout), {k: np.asarray(v) for k, v in spikes.items()},
                       np.asarray(synops))


def _use_xla(snn: keras.Model, engine: str) -> bool:
    if engine not in ENGINES:
        raise ValueError(f"engine {engine!r}: expected one of {ENGINES}")
    return xla_pays(snn) if engine == "auto" else engine == "xla"


@lru_cache(maxsize=32)
def xla_pays(snn: keras.Model) -> bool:
    """Whether ``engine="auto"`` runs ``snn`` under XLA: when no layer's frames
    have more than :data:`XLA_MAX_POSITIONS` spatial positions, the ANN's MACs
    per sample are at most :data:`XLA_MAX_MACS`, and the input is not
    Poisson-coded (XLA draws other random numbers than the graph does, and a
    seeded run should give the spikes it gave before); never when TensorFlow
    gives each operation one thread (:mod:`snnconv.tf_threads`)."""
    from ...tf_threads import intra_op_threads
    inp = input_layer(snn)
    # with one thread per operation XLA's loops run on one core: slower than the
    # graph on every network measured (snnconv.tf_threads)
    if inp.poisson or inp.ann_macs > XLA_MAX_MACS or intra_op_threads() == 1:
        return False
    for lay in snn.layers:
        if isinstance(lay, SpikeLayer):
            frame = tuple(lay.output.shape[2:])
            if len(frame) >= 2 and math.prod(frame[:-1]) > XLA_MAX_POSITIONS:
                return False
    return True


@lru_cache(maxsize=8)
def _distributed_runner(snn: keras.Model, strategy: tf.distribute.Strategy):
    run = _runner(snn)

    @tf.function(reduce_retracing=True)
    def distributed(per_replica_x, steps, stop):
        return strategy.run(run, args=(per_replica_x, steps, stop))

    return distributed


def layer_inputs(snn: keras.Model) -> list[tuple[keras.layers.Layer, list[str]]]:
    """The model's layers in order, each with the names of the layers it reads.

    Read from the functional model's config (its documented serialisation),
    so it works the same for a freshly converted and a loaded model.
    """
    config = snn.get_config()
    out = []
    for entry in config["layers"]:
        names: list[str] = []
        _collect_history(entry.get("inbound_nodes", []), names)
        out.append((snn.get_layer(entry["config"]["name"]), names))
    return out


def _collect_history(obj, names):
    if isinstance(obj, dict):
        if obj.get("class_name") == "__keras_tensor__":
            names.append(obj["config"]["keras_history"][0])
            return
        for v in obj.values():
            _collect_history(v, names)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _collect_history(v, names)


@lru_cache(maxsize=8)
def _runner(snn: keras.Model, jit: bool = False):
    """A compiled function running the whole network for ``steps`` steps.

    One ``tf.while_loop`` over time; inside it every layer takes one step
    (:meth:`SpikeLayer.step`) with its state carried by the loop. Per step it
    records the readout ``(B, classes)`` (the output layer's accumulated
    signal plus its tie-breaker), synaptic operations ``(B,)`` and spikes of
    every spiking layer ``(B,)``.

    SynOps count each spike's fan-out. An analog input is a constant current:
    the first layers compute its effect once, so its non-zero values are
    counted with their fan-out in the first step only (Poisson input spikes
    are counted like any spikes).
    """
    order = [(lay, ins) for lay, ins in layer_inputs(snn) if isinstance(lay, SpikeLayer)]
    index = {lay.name: i for i, (lay, _) in enumerate(order)}
    frame_shapes = {lay.name: tuple(lay.output.shape[2:]) for lay, _ in order}
    raw_input_name = snn.layers[0].name
    frame_shapes[raw_input_name] = tuple(snn.inputs[0].shape[2:])
    out_layer = output_layer(snn)
    spiking = spiking_layers(snn)
    counted = [lay for lay, _ in order if hasattr(lay, "fanout")]
    # per-step records in one pass over each layer's events: a product with
    # (fan-out, 1) gives the layer's synaptic operations and spikes per sample
    # together (the events of a large layer are read once, not three times). The
    # TF graph takes it as rows times the transposed events, (2, N) x (N, B), which
    # oneDNN runs faster than events times columns, (B, N) x (N, 2); XLA ran the
    # bundled CNN slower so (docs/benchmarks.md, "Engines"). The sums are of whole
    # numbers, so exact in either order.
    fanouts = {lay.name: np.asarray(lay.fanout.numpy(), np.float32).reshape(-1)
               for lay in counted}
    # Under the graph, a layer whose events are its output over a power-of-two
    # amplitude (the bursting neurons' quarter) has that division folded into its
    # rows: exact, and one pass over the layer's output fewer a step. With the
    # transposed product, the bundled CNN's step cost 10-18 % less with one spike a
    # step and 15-22 % less with cell.burst = auto (docs/benchmarks.md, "Engines").
    # XLA fuses the division into the neurons' update already, and ran the digits
    # CNN no faster folded.
    folded = {} if jit else {lay.name: lay.spike_amplitude for lay in counted
                             if folds_amplitude(lay)}
    tallies = {name: tf.constant(np.stack([f, np.ones_like(f)], axis=1 if jit else 0)
                                 / np.float32(folded.get(name, 1.0)))
               for name, f in fanouts.items()}

    def tally(name, ev):
        """``(synaptic operations, spikes)`` per sample of a layer's events ``ev``."""
        flat = tf.reshape(ev, (tf.shape(ev)[0], -1))
        if jit:
            both = tf.matmul(flat, tallies[name])
            return both[:, 0], both[:, 1]
        both = tf.matmul(tallies[name], flat, transpose_b=True)
        return both[0], both[1]
    inp = input_layer(snn)
    constant_input = inp.spike_amplitude is None

    def per_sample(t):
        return tf.reduce_sum(tf.reshape(t, (tf.shape(t)[0], -1)), axis=1)

    def samples(lay, out):
        """The samples' half of a frame (``ttfs_dyn_thresh`` frames are doubled)."""
        return out[:tf.shape(out)[0] // 2] if lay.prospective else out

    # early stopping needs a decision: the first spike of an output layer with neurons
    can_decide = out_layer.spike_amplitude is not None

    def _hoisted(x, states):
        """What is the same at every step, computed once before the loop: an
        analog input is a constant current, so are the outputs of the stateless
        layers without neurons that only it feeds (``{name: frame}``), and the
        input currents of the spiking layers that only those feed (``{name:
        current}``, integrated by :meth:`SpikeLayer.integrate`). The same
        operations on the same values as inside the loop: bit for bit the
        same results, one convolution (or more) per step fewer."""
        constant, currents = {}, {}
        if not constant_input:
            return constant, currents
        known = {raw_input_name: x}
        for (lay, ins), state in zip(order, states):
            if lay.prospective or not all(n in known for n in ins):
                continue
            frames = [known[n] for n in ins]
            frames = frames if len(frames) > 1 else frames[0]
            if not lay.spiking and len(state) == 0 and type(lay).step in _PLAIN_STEPS:
                known[lay.name] = constant[lay.name] = lay.step(frames, state)[0]
            elif lay.spiking and type(lay).step is SpikeLayer.step:
                currents[lay.name] = lay.current(frames)
        return constant, currents

    @tf.function(reduce_retracing=True, jit_compile=jit)
    def run(x, steps, stop):
        batch = tf.shape(x)[0]

        def in_shapes(ins):
            shapes = [frame_shapes[n] for n in ins]
            return shapes if len(shapes) > 1 else shapes[0]

        states = tuple(lay.initial_state(batch, in_shapes(ins)) for lay, ins in order)
        constant, currents = _hoisted(x, states)
        # an analog input's events (its non-zero values) are the same at every step
        input_synops = (per_sample(inp.events(x, (), ()) * fanouts[inp.name].reshape(
            tuple(frame_shapes[raw_input_name]))) if constant_input and inp in counted else None)
        readout0 = tf.zeros((batch,) + frame_shapes[out_layer.name])
        arrays = (tf.TensorArray(tf.float32, size=steps),
                  tf.TensorArray(tf.float32, size=steps),
                  tuple(tf.TensorArray(tf.float32, size=steps) for _ in spiking))

        def simulate_step(t, states, readout):
            values, new_states = {}, []
            for (lay, ins), state in zip(order, states):
                if lay.name in constant:
                    out = constant[lay.name]
                elif lay.name in currents:
                    out, state = lay.integrate(currents[lay.name], state)
                else:
                    frames = [x if n == raw_input_name else values[n] for n in ins]
                    out, state = lay.step(frames if len(frames) > 1 else frames[0], state)
                values[lay.name] = out
                new_states.append(tuple(state))

            def events(lay):
                i = index[lay.name]
                return lay.events(samples(lay, values[lay.name]), states[i], new_states[i])

            readout = readout + samples(out_layer, values[out_layer.name])
            score = readout + out_layer.readout_bonus(new_states[index[out_layer.name]])
            synops, spikes = tf.zeros((batch,)), {}
            for lay in counted:
                if lay is inp and constant_input:
                    synops = synops + input_synops * tf.cast(tf.equal(t, 0), tf.float32)
                    continue
                ev = (samples(lay, values[lay.name]) if lay.name in folded
                      else events(lay))
                layer_synops, spikes[lay.name] = tally(lay.name, ev)
                synops = synops + layer_synops
            spikes = tuple(spikes[lay.name] if lay.name in spikes else per_sample(events(lay))
                           for lay in spiking)
            return tuple(new_states), readout, score, synops, spikes

        def one_step(t, states, readout, score, decided, arrays):
            if can_decide:
                # once every sample has decided, the steps left only repeat the scores
                states, readout, score, synops, spikes = tf.cond(
                    stop & tf.reduce_all(decided),
                    lambda: (states, readout, score, tf.zeros((batch,)),
                             tuple(tf.zeros((batch,)) for _ in spiking)),
                    lambda: simulate_step(t, states, readout))
                decided = tf.ensure_shape(decided | (spikes[spiking.index(out_layer)] > 0),
                                          decided.shape)
            else:
                states, readout, score, synops, spikes = simulate_step(t, states, readout)
            arrays = (arrays[0].write(t, score), arrays[1].write(t, synops),
                      tuple(a.write(t, s) for a, s in zip(arrays[2], spikes)))
            return t + 1, states, readout, score, decided, arrays

        def several_steps(n):
            def body(*carried):
                for _ in range(n):
                    carried = one_step(*carried)
                return carried
            return body

        carried = (tf.constant(0), states, readout0, readout0,
                   tf.zeros((batch,), tf.bool), arrays)
        k = XLA_STEPS_PER_PASS if jit and xla_pays(snn) else 1
        if k > 1:
            carried = tf.while_loop(lambda t, *_: t + k <= steps, several_steps(k), carried)
        _, _, _, _, _, arrays = tf.while_loop(lambda t, *_: t < steps, several_steps(1), carried)
        readouts = tf.transpose(arrays[0].stack(), [1, 0, 2])
        synops = tf.transpose(arrays[1].stack())
        spikes = {lay.name: tf.transpose(a.stack()) for lay, a in zip(spiking, arrays[2])}
        return readouts, synops, spikes

    return run


def folds_amplitude(layer: SpikeLayer) -> bool:
    """Whether ``layer``'s events are its output divided by its spike amplitude
    (rate-coded IF neurons, Poisson input spikes) and that amplitude is a power of
    two other than 1, so that the division is exact anywhere it is done."""
    amplitude = layer.spike_amplitude
    if amplitude is None or amplitude == 1.0 or layer.prospective:
        return False
    neuron_events = getattr(type(layer.neuron), "events", None)
    if layer.spiking and neuron_events is not IFNeuron.events:
        return False
    return math.frexp(amplitude)[0] == 0.5


# steps that are a function of the input frames alone when the layer has no state
_PLAIN_STEPS = (SpikeLayer.step, SpikeInput.step)


def neuron_count(layer: SpikeLayer) -> int:
    return int(math.prod(layer.output.shape[2:]))
