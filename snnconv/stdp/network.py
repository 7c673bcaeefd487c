"""The Diehl & Cook (2015) network: Poisson input, excitatory LIF neurons with
adaptive thresholds, one inhibitory neuron per excitatory one, STDP on the
input weights.

Per time step (``dt`` = 1 ms by default), for a batch of samples:

1. every input pixel fires with probability ``pixel · intensity · dt / 1000``
   (``intensity``: the rate of a white pixel, Hz), drawn from the seed and
   the sample's index (training) or the batch (inference), so a run is
   reproducible and a resumed training draws what an uninterrupted one
   would have;
2. excitatory neurons: ``v ← v_rest + (v − v_rest)·exp(−dt/tau)``; unless
   refractory, ``v += s_in · W − inh_weight · (inhibitory spikes of the last
   step, except the neuron's own partner)``; a neuron fires when
   ``v ≥ v_thresh + theta``; with ``one_spike`` only the one that exceeds its
   threshold most fires in a step (the others keep their potential); a
   spike resets ``v`` to ``v_reset``, starts the refractory period and (while
   learning) raises ``theta`` by ``theta_plus``; ``theta`` decays with
   ``tau_theta`` while learning and is fixed otherwise;
3. inhibitory neurons, one per excitatory neuron, integrate
   ``exc_weight ·`` (their partner's spike of the last step) the same way.

Between samples the network rests: potentials, refractory counters and
traces start the next sample at rest (a rest of ``rest`` ms without input
brings them there in the original model); ``theta`` decays over the rest.

Training runs one sample at a time (the weights change every step): one
compiled call simulates and learns a whole sample. Inference runs whole
batches with fixed weights.

:func:`neuron_step` is the step as TensorFlow ops (the XLA training path,
and the reference); :mod:`.kernels` has the same step as a numba kernel for
one sample, used by inference and the fast training path.
"""
from __future__ import annotations

import dataclasses
import math

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class NetworkParams:
    """Everything that defines the network's dynamics (times in ms, potentials in mV)."""

    n_input: int = 784
    n_exc: int = 100
    time_per_sample: float = 350.0
    rest: float = 150.0
    dt: float = 1.0
    intensity: float = 63.75          # Hz of a white pixel (255 / 4, as Diehl & Cook)
    exc_weight: float = 22.5          # excitatory -> inhibitory (one to one)
    inh_weight: float = 120.0         # inhibitory -> excitatory (all but the partner)
    v_rest_exc: float = -65.0
    v_reset_exc: float = -60.0
    v_thresh_exc: float = -52.0
    tau_exc: float = 100.0
    refrac_exc: float = 5.0
    v_rest_inh: float = -60.0
    v_reset_inh: float = -45.0
    v_thresh_inh: float = -40.0
    tau_inh: float = 10.0
    refrac_inh: float = 2.0
    theta_plus: float = 0.05
    tau_theta: float = 1e7
    one_spike: bool = True
    w_norm: float = 78.4              # each neuron's input weights sum to this (0: off)
    w_init_max: float = 0.3           # initial weights uniform in [0, w_init_max)
    min_spikes: int = 5               # show a sample again, brighter, below this many spikes
    intensity_step: float = 32.0
    max_repeats: int = 3
    seed: int = 0

    @property
    def steps(self) -> int:
        return int(round(self.time_per_sample / self.dt))


def initial_neuron_state(p: NetworkParams, batch: int):
    """``(v_exc, refrac_exc, s_exc, v_inh, refrac_inh, s_inh)``, each (batch, n_exc)."""
    n = p.n_exc
    full = lambda value: tf.fill((batch, n), tf.constant(value, tf.float32))  # noqa: E731
    zeros = tf.zeros((batch, n), tf.float32)
    return (full(p.v_rest_exc), zeros, zeros, full(p.v_rest_inh), zeros, zeros)


def neuron_step(p: NetworkParams, state, s_in, w, theta):
    """One step of both layers for the batch.

    Returns ``(state, exc spikes, exc potentials before the reset)``; the
    last is what a winner-take-all rule compares.
    """
    v, ref, s_prev, vi, refi, si_prev = state
    dt = p.dt
    v = p.v_rest_exc + (v - p.v_rest_exc) * math.exp(-dt / p.tau_exc)
    inhibition = p.inh_weight * (tf.reduce_sum(si_prev, axis=1, keepdims=True) - si_prev)
    current = tf.matmul(s_in, w) - inhibition
    v = v + tf.where(ref > 0, 0.0, current)
    ref = ref - dt
    over = v - (p.v_thresh_exc + theta)
    fire = over >= 0
    if p.one_spike:
        best = tf.one_hot(tf.argmax(over, axis=1), p.n_exc, on_value=True, off_value=False)
        fire = fire & best
    s = tf.cast(fire, tf.float32)
    v_fired = v
    v = tf.where(fire, p.v_reset_exc, v)
    ref = tf.where(fire, p.refrac_exc, ref)
    vi = p.v_rest_inh + (vi - p.v_rest_inh) * math.exp(-dt / p.tau_inh)
    vi = vi + tf.where(refi > 0, 0.0, p.exc_weight * s_prev)
    refi = refi - dt
    firei = vi >= p.v_thresh_inh
    si = tf.cast(firei, tf.float32)
    vi = tf.where(firei, p.v_reset_inh, vi)
    refi = tf.where(firei, p.refrac_inh, refi)
    return (v, ref, s, vi, refi, si), s, v_fired


# Integer rules compare a neuron's threshold with an integer limit
# (postpre_int's max_threshold); they get the threshold's height above rest
# in units of 1/INT_THRESHOLD_UNITS mV: 13 mV -> 3328, so the default limit
# 4915 is passed when the adaptive threshold has grown by 6.2 mV.
INT_THRESHOLD_UNITS = 256.0


def normalize_columns(w, target: float):
    """Scale each neuron's (column's) input weights to sum to ``target``."""
    total = tf.reduce_sum(w, axis=0, keepdims=True)
    return tf.where(total > 0, w * (target / tf.maximum(total, 1e-12)), w)
