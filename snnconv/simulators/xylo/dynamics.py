"""Bit-accurate integer dynamics of a Xylo network, compiled over time.

The chip's arithmetic, step by step (all states int16, additions saturate):

1. input events: each channel's count (at most 15) adds that channel's
   shifted input weight to the hidden synaptic currents, once per event;
2. the hidden spikes of the previous step (at most 31 per neuron) add the
   shifted recurrent weights to the hidden currents and the shifted output
   weights to the output currents, once per spike;
3. every hidden neuron: ``Isyn -= decay(Isyn, dash_syn)``;
   ``dv = -decay(V, dash_mem)`` (an int16 negation: ``-(-32768)`` is
   ``-32768``); ``dv = sat(dv + ΣIsyn)``;
   ``dv = sat(dv + bias)``; ``V = sat(V + dv)``; then it spikes while
   ``V >= threshold`` (at most 31 times), subtracting the threshold each time;
4. the output neurons the same, with one synapse and at most one spike.

``decay(v, d)`` is the arithmetic shift ``v >> d``, except that it is 1
where that is 0 and ``v > 0``.

This is SynSense's XyloSim (``xylosim`` 0.1.3, the C++ core of Rockpool's
``XyloSim``) operation for operation; ``tests/test_interop_xylo.py`` checks
every current, potential and spike of every step against it.

Saturation makes the order of additions matter: the chip adds the
presynaptic neurons one after the other, input channels first. The
vectorised delivery (:func:`deliver`) computes the exact sum with a matrix
product whenever no partial sum can leave the int16 range (the sum of all
positive and of all negative contributions both stay inside it), and
otherwise replays the chip's order presynaptic neuron by presynaptic
neuron, which is exact in every case.

:func:`xylo_step` is the pure step function (state in, state out);
:func:`simulate_xylo` runs it over given input events.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .spec import INT16, MAX_HIDDEN_SPIKES, MAX_INPUT_EVENTS, MAX_OUTPUT_SPIKES, XyloSpec

LOW, HIGH = INT16


class XyloState(NamedTuple):
    """Per-sample state; every tensor int32 holding int16 values."""

    isyn: tf.Tensor        # (B, N * S) hidden synaptic currents, synapse axis last
    v: tf.Tensor           # (B, N) hidden membrane potentials
    spikes: tf.Tensor      # (B, N) hidden spikes of the last step (delivered next step)
    isyn_out: tf.Tensor    # (B, O)
    v_out: tf.Tensor       # (B, O)


class Synapses(NamedTuple):
    """One weight matrix, shifted, reduced to the rows and columns it connects.

    ``rows``: presynaptic neurons with a non-zero weight; ``cols``: the
    postsynaptic targets (neuron × synapse) they reach; ``w``: the shifted
    int32 weights on those; ``size``: the number of postsynaptic targets.
    A feed-forward chain laid out in one recurrent matrix connects a few
    blocks of it, and delivering only those saves most of the work.
    """

    w: tf.Tensor
    rows: np.ndarray
    cols: np.ndarray
    size: int


class XyloParams(NamedTuple):
    """The specification as tensors (int32)."""

    w_in: Synapses         # (I, N * S)
    w_rec: Synapses        # (N, N * S)
    w_out: Synapses        # (N, O)
    dash_syn: tf.Tensor    # (N * S,)
    dash_mem: tf.Tensor    # (N,)
    threshold: tf.Tensor   # (N,)
    bias: tf.Tensor        # (N,)
    dash_syn_out: tf.Tensor
    dash_mem_out: tf.Tensor
    threshold_out: tf.Tensor
    bias_out: tf.Tensor
    num_synapses: int


def params_from_spec(spec: XyloSpec) -> XyloParams:
    n, s = spec.num_hidden, spec.num_synapses

    def synapses(w, shift):
        w = np.asarray(w, np.int32) << shift      # int16(w << shift): |w| <= 128 << 7 fits
        w = w.reshape(w.shape[0], -1)
        rows = np.flatnonzero(w.any(axis=1))
        cols = np.flatnonzero(w.any(axis=0))
        return Synapses(tf.constant(w[np.ix_(rows, cols)], tf.int32), rows, cols, w.shape[1])

    dash = np.stack([spec.dash_syn, spec.dash_syn_2], axis=-1)[:, :s].reshape(n * s)
    i32 = lambda a: tf.constant(np.asarray(a, np.int32))  # noqa: E731
    return XyloParams(
        w_in=synapses(spec.weights_in, spec.weight_shift_in),
        w_rec=synapses(spec.weights_rec, spec.weight_shift_rec),
        w_out=synapses(spec.weights_out, spec.weight_shift_out),
        dash_syn=i32(dash), dash_mem=i32(spec.dash_mem), threshold=i32(spec.threshold),
        bias=i32(spec.bias), dash_syn_out=i32(spec.dash_syn_out),
        dash_mem_out=i32(spec.dash_mem_out), threshold_out=i32(spec.threshold_out),
        bias_out=i32(spec.bias_out), num_synapses=s)


def initial_state(params: XyloParams, batch) -> XyloState:
    n = int(params.dash_mem.shape[0])
    o = int(params.dash_mem_out.shape[0])
    zeros = lambda k: tf.zeros((batch, k), tf.int32)  # noqa: E731
    return XyloState(zeros(n * params.num_synapses), zeros(n), zeros(n), zeros(o), zeros(o))


def decay(v: tf.Tensor, dash: tf.Tensor) -> tf.Tensor:
    """``v >> dash`` (arithmetic), but 1 where that is 0 and ``v`` is positive."""
    dv = tf.bitwise.right_shift(v, tf.broadcast_to(dash, tf.shape(v)))
    return tf.where((dv == 0) & (v > 0), tf.ones_like(dv), dv)


def negate16(x: tf.Tensor) -> tf.Tensor:
    """``-x`` in int16 arithmetic, as the chip computes ``-decay(V)``: ``-(-32768)`` wraps
    to ``-32768`` (reached with ``dash_mem = 0`` and ``V = -32768``, where the decay is
    ``V`` itself; the membrane then stays pinned at ``-32768``)."""
    return tf.where(x == LOW, x, -x)


def saturate(x: tf.Tensor) -> tf.Tensor:
    return tf.clip_by_value(x, LOW, HIGH)


def deliver(isyn: tf.Tensor, counts: tf.Tensor, syn: Synapses) -> tf.Tensor:
    """Add ``counts[b, p]`` times weight row ``p`` to ``isyn[b]``, saturating after each add.

    The chip adds presynaptic neuron 0's events first, then neuron 1's, and so
    on; repeated additions of one weight move in one direction, so ``k`` of
    them saturate like one addition of ``k`` times the weight. Rows without
    weights add nothing and are skipped.

    Fast path: the positive and the negative contributions are summed apart
    by one float32 matrix product. Each is a sum of non-negative (or
    non-positive) integers, so all its partial sums are exact in float32
    while the total is below 2**24 in size; a larger total fails the range
    test below anyway. When neither sum can take a partial sum out of the
    int16 range, no addition saturated and the result is exact.
    """
    if len(syn.rows) == 0:
        return isyn
    whole = len(syn.cols) == syn.size
    part = isyn if whole else tf.gather(isyn, syn.cols, axis=1)
    if len(syn.rows) != counts.shape[1]:
        counts = tf.gather(counts, syn.rows, axis=1)
    c = tf.cast(counts, tf.float32)
    w = tf.cast(syn.w, tf.float32)
    both = tf.matmul(c, tf.concat([tf.maximum(w, 0.0), tf.minimum(w, 0.0)], axis=1))
    pos, neg = tf.split(both, 2, axis=1)
    base = tf.cast(part, tf.float32)
    no_saturation = tf.reduce_all((base + pos <= HIGH) & (base + neg >= LOW))

    def summed():
        return part + tf.cast(pos, tf.int32) + tf.cast(neg, tf.int32)

    def in_order():
        def body(p, acc):
            add = tf.gather(counts, [p], axis=1) * tf.gather(syn.w, [p], axis=0)
            return p + 1, tf.ensure_shape(saturate(acc + add), part.shape)
        _, out = tf.while_loop(lambda p, _: p < len(syn.rows), body, (tf.constant(0), part))
        return out

    new = tf.cond(no_saturation, summed, in_order)
    if whole:
        return new
    index = tf.constant(syn.cols[:, None], tf.int32)
    return tf.transpose(tf.tensor_scatter_nd_update(tf.transpose(isyn), index,
                                                    tf.transpose(new)))


def _evolve(isyn, v, dash_syn, dash_mem, bias, threshold, synapses, max_spikes):
    """Decay, integrate, fire and reset one population (step 3 / 4)."""
    isyn = isyn - decay(isyn, dash_syn)
    total = tf.reduce_sum(tf.reshape(isyn, (tf.shape(v)[0], -1, synapses)), axis=2)
    dv = saturate(negate16(decay(v, dash_mem)) + total)
    dv = saturate(dv + bias)
    v = saturate(v + dv)
    n = tf.clip_by_value(tf.math.floordiv(v, threshold), 0, max_spikes)
    return isyn, v - n * threshold, n


def xylo_step(state: XyloState, events: tf.Tensor, params: XyloParams):
    """One time step. ``events``: (B, I) input event counts (clamped to 15 here).

    Returns ``(new_state, hidden_spikes (B, N), output_spikes (B, O))``.
    """
    events = tf.minimum(tf.cast(events, tf.int32), MAX_INPUT_EVENTS)
    previous = tf.minimum(state.spikes, MAX_HIDDEN_SPIKES)
    isyn = deliver(state.isyn, events, params.w_in)
    isyn = deliver(isyn, previous, params.w_rec)
    isyn_out = deliver(state.isyn_out, previous, params.w_out)
    isyn, v, spikes = _evolve(isyn, state.v, params.dash_syn, params.dash_mem, params.bias,
                              params.threshold, params.num_synapses, MAX_HIDDEN_SPIKES)
    isyn_out, v_out, spikes_out = _evolve(isyn_out, state.v_out, params.dash_syn_out,
                                          params.dash_mem_out, params.bias_out,
                                          params.threshold_out, 1, MAX_OUTPUT_SPIKES)
    return XyloState(isyn, v, spikes, isyn_out, v_out), spikes, spikes_out


@dataclasses.dataclass
class XyloTrace:
    """What :func:`simulate_xylo` returns; arrays are ``(B, T, ...)``, int."""

    spikes: np.ndarray                 # (B, T, N) hidden spikes per step
    spikes_out: np.ndarray             # (B, T, O) output spikes per step
    isyn: np.ndarray | None = None     # (B, T, N, S) after the step
    v: np.ndarray | None = None        # (B, T, N)
    isyn_out: np.ndarray | None = None  # (B, T, O)
    v_out: np.ndarray | None = None     # (B, T, O)


def simulate_xylo(spec: XyloSpec, events, record: bool = False) -> XyloTrace:
    """Run ``spec`` on input ``events`` ``(B, T, I)`` (or ``(T, I)``) event counts.

    With ``record`` the synaptic currents and membrane potentials after every
    step come back too.
    """
    events = np.asarray(events)
    single = events.ndim == 2
    if single:
        events = events[None]
    if events.ndim != 3 or events.shape[2] != spec.num_inputs:
        raise ValueError(f"events must be (batch, time, {spec.num_inputs}), got {events.shape}")
    if events.size and (events.min() < 0 or np.any(events != np.round(events))):
        raise ValueError("events must be non-negative integer counts")
    params = params_from_spec(spec)
    out = _run(params, tf.constant(events.astype(np.int32)), bool(record))
    out = {k: np.asarray(v) for k, v in out.items()}
    if "isyn" in out:
        b, t = out["isyn"].shape[:2]
        out["isyn"] = out["isyn"].reshape(b, t, spec.num_hidden, spec.num_synapses)
    if single:
        out = {k: v[0] for k, v in out.items()}
    return XyloTrace(**out)


def _run(params: XyloParams, events: tf.Tensor, record: bool) -> dict:
    @tf.function
    def run(events):
        batch, steps = tf.shape(events)[0], tf.shape(events)[1]
        names = ["spikes", "spikes_out"] + (["isyn", "v", "isyn_out", "v_out"] if record else [])
        arrays = tuple(tf.TensorArray(tf.int32, size=steps) for _ in names)

        def body(t, state, arrays):
            state, spikes, spikes_out = xylo_step(state, events[:, t], params)
            values = [spikes, spikes_out]
            if record:
                values += [state.isyn, state.v, state.isyn_out, state.v_out]
            return t + 1, state, tuple(a.write(t, v) for a, v in zip(arrays, values))

        _, _, arrays = tf.while_loop(lambda t, *_: t < steps, body,
                                     (tf.constant(0), initial_state(params, batch), arrays))
        return {name: tf.transpose(a.stack(), [1, 0] + list(range(2, len(a.element_shape) + 1)))
                for name, a in zip(names, arrays)}

    return run(events)
