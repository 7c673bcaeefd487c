"""Numba kernels for the Diehl & Cook network: input spikes, neuron dynamics, inference.

Why numba and not a TensorFlow graph: per 1 ms step only a few percent of
the inputs spike and excitatory spikes are rare, so the useful work of a
step is a few rows of the weight matrix. A compiled loop over the spiking
inputs does that work directly; TF/XLA on the CPU pays for the dense
``(n_input, n_exc)`` matrix every step (and for gather/scatter, which it
does badly). The dynamics are those of :func:`.network.neuron_step`, in the
same float32 operations and order, for one sample at a time (the tests
compare the two).

Input spikes come from a counter-based generator: the uniform draw of pixel
``i`` at step ``t`` is a hash of ``(key0, key1, t, i)`` (SplitMix64), so a
sample's spike trains are fixed by its keys (the seed and the sample's
index), a brighter repeat reuses the same draws, and pixels that cannot
fire (value 0) need no draw at all.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .network import NetworkParams

# SplitMix64 (Steele, Lea & Flood 2014): a well-mixed 64-bit hash of a counter.
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U24 = np.float32(1.0 / (1 << 24))


@njit(cache=True)
def _mix(z):
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    return z ^ (z >> np.uint64(31))


@njit(cache=True)
def _stream(key0, key1):
    """The 64-bit stream id of the draws named by two integer keys."""
    return _mix(_mix(np.uint64(key0) * _GOLDEN) ^ (np.uint64(key1) + _GOLDEN))


@njit(cache=True)
def _draw_step(prob, active, stream, t, spiking):
    """Write the inputs that spike at step ``t`` to ``spiking``; return how many.

    ``active`` lists the inputs with ``prob > 0`` in ascending order; input
    ``i`` spikes when its uniform draw (24 bits, in [0, 1)) is below ``prob[i]``.
    """
    base = stream + np.uint64(t) * np.uint64(prob.shape[0]) * _GOLDEN
    n = 0
    for i in active:
        u = np.float32(_mix(base + np.uint64(i) * _GOLDEN) >> np.uint64(40)) * _U24
        if u < prob[i]:
            spiking[n] = i
            n += 1
    return n


@njit(cache=True)
def poisson_trains(prob, steps, key0, key1):
    """One sample's input spikes ``(steps, n_input)``: input ``i`` fires with ``prob[i]``."""
    out = np.zeros((steps, prob.shape[0]), np.bool_)
    active = np.flatnonzero(prob > 0)
    spiking = np.empty(prob.shape[0], np.int64)
    stream = _stream(key0, key1)
    for t in range(steps):
        for k in range(_draw_step(prob, active, stream, t, spiking)):
            out[t, spiking[k]] = True
    return out


# --------------------------------------------------------------------------
# neuron dynamics

# the network's constants, packed as float32 in this order by neuron_constants()
(_V_REST, _DECAY, _INH_W, _V_THRESH, _V_RESET, _REFRAC, _DT, _V_REST_I, _DECAY_I, _EXC_W,
 _V_THRESH_I, _V_RESET_I, _REFRAC_I) = range(13)


def neuron_constants(p: NetworkParams) -> np.ndarray:
    """The float32 constants of :func:`step_neurons` (float32 like the TF graph's)."""
    return np.array([p.v_rest_exc, math.exp(-p.dt / p.tau_exc), p.inh_weight, p.v_thresh_exc,
                     p.v_reset_exc, p.refrac_exc, p.dt, p.v_rest_inh,
                     math.exp(-p.dt / p.tau_inh), p.exc_weight, p.v_thresh_inh,
                     p.v_reset_inh, p.refrac_inh], np.float32)


@njit(cache=True)
def add_rows(w, rows, n, scale, out):
    """``out = sum of w[rows[:n]] * scale``: the input current ``s_in @ (w * scale)``."""
    out[:] = 0
    for k in range(n):
        row = w[rows[k]]
        for j in range(out.shape[0]):
            out[j] += np.float32(row[j]) * scale


@njit(cache=True)
def step_neurons(c, one_spike, current, theta, v, ref, s, vi, refi, si, v_fired):
    """One step of both layers for one sample, in place (see network.neuron_step).

    ``current`` is the input current ``s_in @ w``; ``s`` and ``si`` hold the
    previous step's spikes on entry and this step's on return; ``v_fired``
    gets the potentials before the reset. Returns the number of excitatory
    spikes.
    """
    n = v.shape[0]
    si_total = np.float32(0)
    for j in range(n):
        si_total += si[j]
    best = 0
    for j in range(n):
        vj = c[_V_REST] + (v[j] - c[_V_REST]) * c[_DECAY]
        if not ref[j] > 0:
            vj = vj + (current[j] - c[_INH_W] * (si_total - si[j]))
        ref[j] = ref[j] - c[_DT]
        v[j] = vj
        v_fired[j] = vj
        # the over-threshold margin, kept in `current` (no longer needed)
        current[j] = vj - (c[_V_THRESH] + theta[j])
        if current[j] > current[best]:
            best = j
        # the inhibitory partner sees the excitatory spike of the last step
        vij = c[_V_REST_I] + (vi[j] - c[_V_REST_I]) * c[_DECAY_I]
        if not refi[j] > 0:
            vij = vij + c[_EXC_W] * s[j]
        refi[j] = refi[j] - c[_DT]
        if vij >= c[_V_THRESH_I]:
            si[j] = 1
            vij = c[_V_RESET_I]
            refi[j] = c[_REFRAC_I]
        else:
            si[j] = 0
        vi[j] = vij
    fired = 0
    for j in range(n):
        s[j] = 0
        if current[j] >= 0 and (not one_spike or j == best):
            s[j] = 1
            v[j] = c[_V_RESET]
            ref[j] = c[_REFRAC]
            fired += 1
    return fired


@njit(cache=True)
def reset_neurons(c, v, ref, s, vi, refi, si):
    """The state at the start of a sample (see network.initial_neuron_state)."""
    v[:] = c[_V_REST]
    vi[:] = c[_V_REST_I]
    ref[:] = 0
    s[:] = 0
    refi[:] = 0
    si[:] = 0


# --------------------------------------------------------------------------
# inference


@njit(cache=True)
def run_batch_kernel(w, theta, prob, steps, key, c, one_spike, counts, inh, inputs, exc):
    """Simulate every sample of ``prob`` (B, n_input) with fixed ``w``, ``theta``.

    Writes the excitatory spike counts ``counts`` (B, n_exc), the inhibitory
    and input spike totals per step ``inh``, ``inputs`` (B, steps) and, when
    ``exc`` has B rows, the excitatory spikes of every step ``exc`` (B, steps,
    n_exc). Sample ``b`` draws its input spikes from ``(key, b)``.
    """
    n_in, n = w.shape
    record = exc.shape[0] == prob.shape[0]
    v, ref, s = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    vi, refi, si = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    current, v_fired = np.empty(n, np.float32), np.empty(n, np.float32)
    spiking = np.empty(n_in, np.int64)
    for b in range(prob.shape[0]):
        reset_neurons(c, v, ref, s, vi, refi, si)
        active = np.flatnonzero(prob[b] > 0)
        stream = _stream(key, b)
        for t in range(steps):
            k = _draw_step(prob[b], active, stream, t, spiking)
            inputs[b, t] = k
            add_rows(w, spiking, k, np.float32(1), current)
            if step_neurons(c, one_spike, current, theta, v, ref, s, vi, refi, si, v_fired):
                for j in range(n):
                    counts[b, j] += s[j]
                    if record:
                        exc[b, t, j] = s[j]
            inh[b, t] = si.sum()
