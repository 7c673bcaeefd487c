"""The trainable leaky integrate-and-fire neuron with synaptic currents: the pure step.

One time step, in Rockpool's order (and Xylo's)::

    isyn += input                      # (B, N, S): S synapses per neuron
    v    *= alpha                      # alpha = decay of the membrane
    isyn *= beta                       # beta  = decay of each synapse
    v    += sum_s isyn + bias + noise
    n     = spike_fn(v, threshold)     # spikes this step (0 .. max_spikes_per_dt)
    v    -= n * threshold              # reset by subtraction

Decays are ``exp(-dt / tau)`` or, in Xylo's bit-shift form,
``1 - 2**(-d)`` with ``d = round(tau_to_bitshift(dt, tau))`` (the chip's
``v -= v >> d``). :func:`tau_to_bitshift` and :func:`bitshift_to_tau` are
Rockpool's conversions between the two.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np
from keras import ops

DECAY_MODES = ("exp", "bitshift")


class LIFState(NamedTuple):
    isyn: object        # (B, N * S), synapse axis last
    v: object           # (B, N)


class LIFParams(NamedTuple):
    alpha: object       # (N,) membrane decay per step
    beta: object        # (N * S,) synaptic decay per step
    threshold: object   # (N,)
    bias: object        # (N,)
    synapses: int
    max_spikes: float
    spike_fn: object    # surrogate: (v, threshold, max_spikes) -> spikes
    spiking: bool       # False: integrate only (a membrane readout)


def tau_to_bitshift(dt, tau):
    """The (real-valued) shift ``d`` with ``1 - 2**-d = exp(-dt/tau)``."""
    return -np.log2(1.0 - np.exp(-dt / np.asarray(tau, np.float64)))


def bitshift_to_tau(dt, dash):
    """The time constant whose decay per step ``dt`` is ``1 - 2**-dash``."""
    return -dt / np.log(1.0 - 2.0 ** -np.asarray(dash, np.float64))


def decay(tau, dt: float, mode: str = "exp"):
    """The factor a state keeps per step (a tensor op, differentiable in ``tau``;
    the bit-shift form rounds the shift with a straight-through gradient)."""
    tau = ops.convert_to_tensor(tau)
    if mode == "exp":
        return ops.exp(-dt / tau)
    if mode != "bitshift":
        raise ValueError(f"decay mode must be one of {DECAY_MODES}, got {mode!r}")
    d = -ops.log2(1.0 - ops.exp(-dt / tau))
    d = d + ops.stop_gradient(ops.round(d) - d)
    return 1.0 - ops.power(2.0, -d)


def lif_step(state: LIFState, current, noise, p: LIFParams):
    """One step: ``current`` (B, N * S) is this step's weighted input, ``noise``
    (B, N) or None. Returns ``(new_state, spikes, v, isyn)``."""
    isyn = (state.isyn + current) * p.beta
    if p.synapses == 1:
        total = isyn
    else:
        total = ops.sum(ops.reshape(isyn, (-1, ops.shape(state.v)[1], p.synapses)), axis=2)
    v = state.v * p.alpha + total + p.bias
    if noise is not None:
        v = v + noise
    if p.spiking:
        n = p.spike_fn(v, p.threshold, p.max_spikes)
        v = v - n * p.threshold
    else:
        n = ops.zeros_like(v)
    return LIFState(isyn, v), n, v, isyn
