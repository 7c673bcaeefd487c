"""Time-to-first-spike (TTFS) neurons, with an optional dynamic threshold.

A TTFS neuron fires at most once per sample (Rueckauer & Liu 2018). One time
step of length ``dt`` for input current ``I`` (and, with the dynamic
threshold, the *missing impulse* ``M``):

1. integrate unless it has fired already: ``v += I * dt``;
2. threshold: ``θ = v_thresh`` or, dynamic, ``θ = v_thresh + M * dt``;
3. fire once when ``v >= θ``; then ``v = 0`` and the neuron is refractory
   for the rest of the sample;
4. output (post-synaptic potential): 1 at every step from its spike on, so
   a neuron that fired at ``t0`` has delivered ``w * (t - t0)`` to a
   synapse of weight ``w`` by time ``t`` — earlier spikes weigh more, and
   the first layer fires at ``t = v_thresh / a`` for a constant input ``a``;
5. *prospective* spike (dynamic threshold only): 1 while the neuron has not
   fired and its input current is positive — it may still fire. The next
   layer's missing impulse is its synapses applied with ``|W|`` (and no bias)
   to these, so a neuron waits for strong inputs still to come instead of
   firing early on the few that already spiked; as inputs fire the missing
   impulse shrinks and the threshold falls back to ``v_thresh``.

:func:`ttfs_step` is the pure function; :class:`TTFSNeuron` wraps it.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

from keras import ops

from .time_loop import scan_time


class TTFSParams(NamedTuple):
    v_thresh: float = 1.0
    dt: float = 1.0
    dyn_thresh: bool = False


class TTFSState(NamedTuple):
    v: object            # membrane potential
    fired: object        # 1 once the neuron has spiked
    v_fire: object       # membrane potential at the spike (for output tie-breaking)


def ttfs_step(current, missing, state: TTFSState, p: TTFSParams):
    """One step. Returns ``(psp, spikes, prospective, new_state)``."""
    idle = 1.0 - state.fired
    v = state.v + current * p.dt * idle
    threshold = p.v_thresh + missing * p.dt if p.dyn_thresh else p.v_thresh
    spikes = idle * ops.cast(v >= threshold, v.dtype)
    v_fire = ops.where(spikes > 0, v, state.v_fire)
    v = ops.where(spikes > 0, 0.0, v)
    fired = state.fired + spikes
    prospective = (1.0 - fired) * ops.cast(current > 0, v.dtype)
    return fired, spikes, prospective, TTFSState(v, fired, v_fire)


@dataclasses.dataclass(frozen=True)
class TTFSNeuron:
    """Time-to-first-spike neuron; ``dyn_thresh`` adds missing-impulse tracking."""

    v_thresh: float = 1.0
    dt: float = 1.0
    dyn_thresh: bool = False

    # a TTFS layer gets no bias while none of its inputs has spiked
    gates_bias = True
    # a step's output is the post-synaptic potential, 1 after the spike
    spike_amplitude = 1.0
    signal_is_psp = True

    def __post_init__(self):
        if self.v_thresh <= 0 or self.dt <= 0:
            raise ValueError("v_thresh and dt must be positive")

    @property
    def params(self) -> TTFSParams:
        return TTFSParams(float(self.v_thresh), float(self.dt), bool(self.dyn_thresh))

    def get_config(self) -> dict:
        return {"model": "ttfs", **dataclasses.asdict(self)}

    def initial_state(self, like) -> TTFSState:
        zeros = ops.zeros_like(like)
        return TTFSState(zeros, zeros, zeros)

    def step(self, current, state, missing=0.0):
        """``(current, state[, missing]) -> (psp, spikes, prospective, new_state)``."""
        return ttfs_step(current, missing, TTFSState(*state), self.params)

    def advance(self, current, state, missing=None):
        """The layers' uniform step: ``-> (psp, prospective, new state)``."""
        psp, _, prospective, new = ttfs_step(
            current, 0.0 if missing is None else missing, TTFSState(*state), self.params)
        return psp, prospective, new

    def events(self, psp, old_state, new_state):
        """Spikes emitted in the step from ``old_state`` to ``new_state``."""
        return new_state[1] - old_state[1]

    def readout_bonus(self, state):
        """Tie-breaker for an output layer, in [0, 0.5): the membrane potential
        (at the spike, for neurons that fired). The readout accumulates the
        PSP (whole steps since the spike), so the earliest spike still wins."""
        v = ops.where(state[1] > 0, state[2], state[0])
        return 0.25 + ops.arctan(v) / (2 * math.pi)

    def run(self, currents, missing=None):
        """Sequence mode: ``(batch, time, ...)`` -> (psp, prospective) sequences
        (prospective is None without the dynamic threshold)."""
        seq = ops.moveaxis(currents, 1, 0)
        miss = None if missing is None else ops.moveaxis(missing, 1, 0)

        def step(state, inputs):
            cur, m = inputs if miss is not None else (inputs, 0.0)
            psp, _, pro, new = ttfs_step(cur, m, TTFSState(*state), self.params)
            return new, ((psp, pro) if self.dyn_thresh else (psp,))

        xs = (seq, miss) if miss is not None else seq
        outs = [ops.moveaxis(o, 0, 1) for o in scan_time(step, self.initial_state(seq[0]), xs)]
        return outs[0], (outs[1] if len(outs) > 1 else None)
