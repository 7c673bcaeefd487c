"""Exact time-to-first-spike neurons (``spike_code = ttfs_exact``, Stanojevic et al. 2023/2024).

A neuron of a layer whose time window is ``[t_min, t_max)``, ``T = t_max - t_min``
(see :mod:`snnconv.time_windows` for the windows and the algebra):

1. during its input window ``[t_min - T_in, t_min)`` it integrates its input
   current without leak (each input spike ``j`` adds ``W_ij`` per unit of
   time from its spike on; the bias is a constant current ``b / T_in``), so
   that ``V(t_min) = sum_j W_ij x_j + b``;
2. from ``t_min`` on the input currents no longer count and the potential
   rises with slope 1;
3. it fires once, when ``V >= T``, and only inside ``[t_min, t_max)``: at
   ``t = t_max - min(ReLU(V(t_min)), T)``, never when ``V(t_min) <= 0``. A
   neuron with a *ceiling* ``m < T`` (a ReLU's ``max_value``; see
   :attr:`snnconv.time_windows.TimeWindows.ceilings`) fires no earlier than
   ``t_max - m``, so its spike carries ``min(ReLU(V(t_min)), m)``;
4. its output to the next layer (post-synaptic potential) is 1 from its
   spike on, so a synapse of weight ``w`` has delivered ``w (t - t_spike)``
   by time ``t``.

:func:`ttfs_exact_fire` is the closed form the event-driven simulator uses;
:func:`ttfs_exact_step` one clocked time step of length ``dt`` (the
windows then start and end on the grid: ``k_in``, ``k_min``, ``k_max`` are
step indices; ``k_first``, the first step it may fire in, is ``k_min`` but
for a ceiling). On the grid the neuron fires in the first step at whose end
``V >= T + dt/2``: the value its spike carries is ``V(t_min)`` rounded to a
multiple of ``dt`` (``clip(round(V / dt) dt, 0, T)``), so a spike time is
off by at most ``dt / 2`` and the clocked network approaches the exact one
as ``dt`` shrinks. An output neuron (``fires=False``) only integrates: its
potential is the class score.

:class:`TTFSExactNeuron` is the thin object the Spike* layers use.
"""
from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
from keras import ops

from .time_loop import scan_time


def ttfs_exact_fire(v0, length):
    """The closed form of one layer: its potentials ``v0`` at ``t_min`` and its window
    length ``T`` -> ``(values, fired, clipped)``.

    ``values = clip(v0, 0, T)`` is what each spike carries (``t_max - t_spike``;
    0 for a neuron that does not fire), ``fired`` is 1 where ``v0 > 0`` and
    ``clipped`` is 1 where ``v0 > T`` (the neuron fires at ``t_min``).
    """
    values = ops.clip(v0, 0.0, length)
    fired = ops.cast(v0 > 0, v0.dtype)
    clipped = ops.cast(v0 > length, v0.dtype)
    return values, fired, clipped


def spike_times(values, t_max):
    """Spike times of neurons carrying ``values`` in a window ending at ``t_max``
    (``inf`` for those that do not fire)."""
    return ops.where(values > 0, t_max - values, float("inf"))


class TTFSExactParams(NamedTuple):
    dt: float = 1.0
    k_in: int = 0           # first step of the input window
    k_min: int = 1          # first step of the own window
    k_max: int = 2          # first step after it
    fires: bool = True      # False: an output neuron that only integrates
    # first step it may fire in (None: k_min); a number or one per channel (a ceiling)
    k_first: object = None


class TTFSExactState(NamedTuple):
    v: object               # membrane potential
    fired: object           # 1 once the neuron has spiked
    k: object               # the step about to be taken (a scalar)


def ttfs_exact_step(current, state: TTFSExactState, p: TTFSExactParams):
    """One clocked step. Returns ``(psp, spikes, new_state)``."""
    k = state.k
    integrating = ops.cast((k >= p.k_in) & (k < p.k_min), state.v.dtype)
    own = ops.cast((k >= p.k_min) & (k < p.k_max), state.v.dtype)
    v = state.v + current * (integrating * p.dt) + own * p.dt
    if p.fires:
        threshold = (p.k_max - p.k_min) * p.dt + 0.5 * p.dt
        if p.k_first is not None:
            own = own * ops.cast(k >= ops.convert_to_tensor(p.k_first, v.dtype), v.dtype)
        spikes = own * (1.0 - state.fired) * ops.cast(v >= threshold, v.dtype)
    else:
        spikes = ops.zeros_like(v)
    fired = state.fired + spikes
    return fired, spikes, TTFSExactState(v, fired, k + 1.0)


@dataclasses.dataclass(frozen=True)
class TTFSExactNeuron:
    """Clocked exact-TTFS neuron; ``window = (k_in, k_min, k_max)`` in steps of ``dt``."""

    dt: float = 1.0
    window: tuple = (0, 1, 2)
    fires: bool = True
    # first step it may fire in (a ceiling below the window): an int, one per
    # channel (a list), or None for the window's first step
    first_step: object = None

    # the output is the post-synaptic potential, 1 from the spike on
    signal_is_psp = True

    def __post_init__(self):
        window = tuple(int(k) for k in self.window)
        object.__setattr__(self, "window", window)
        if self.dt <= 0:
            raise ValueError("dt must be positive")
        if len(window) != 3 or not 0 <= window[0] < window[1] <= window[2]:
            raise ValueError(f"window must be steps (k_in, k_min, k_max) with "
                             f"0 <= k_in < k_min <= k_max, got {self.window}")
        if self.first_step is not None:
            first = np.asarray(self.first_step, np.int64)
            if np.any(first < window[1]) or np.any(first > window[2]):
                raise ValueError(f"first_step must lie in the window's steps "
                                 f"[{window[1]}, {window[2]}], got {self.first_step}")
            object.__setattr__(self, "first_step",
                               int(first) if first.ndim == 0 else first.tolist())

    @property
    def spike_amplitude(self):
        """1 for neurons that fire; None for an output neuron (it emits no spikes)."""
        return 1.0 if self.fires else None

    @property
    def params(self) -> TTFSExactParams:
        first = None if self.first_step is None else np.asarray(self.first_step, np.float32)
        return TTFSExactParams(float(self.dt), *self.window, bool(self.fires), first)

    def get_config(self) -> dict:
        config = {"model": "ttfs_exact", "dt": float(self.dt), "window": list(self.window),
                  "fires": bool(self.fires)}
        if self.first_step is not None:
            config["first_step"] = self.first_step
        return config

    def initial_state(self, like) -> TTFSExactState:
        zeros = ops.zeros_like(like)
        return TTFSExactState(zeros, zeros, ops.zeros((), dtype=zeros.dtype))

    def step(self, current, state):
        """``(current, state) -> (psp, spikes, new_state)``."""
        return ttfs_exact_step(current, TTFSExactState(*state), self.params)

    def advance(self, current, state, missing=None):
        """The layers' uniform step: ``-> (psp, prospective (None), new state)``."""
        if missing is not None:
            raise ValueError("ttfs_exact neurons have no dynamic threshold (missing impulse)")
        psp, _, new = ttfs_exact_step(current, TTFSExactState(*state), self.params)
        return psp, None, new

    def events(self, psp, old_state, new_state):
        """Spikes emitted in the step from ``old_state`` to ``new_state``."""
        return new_state[1] - old_state[1]

    def readout_bonus(self, state):
        """The class score of an output neuron: its membrane potential."""
        return state[0]

    def run(self, currents, missing=None):
        """Sequence mode: ``(batch, time, ...)`` currents -> ``(psp, None)``."""
        seq = ops.moveaxis(currents, 1, 0)

        def step(state, cur):
            psp, _, new = ttfs_exact_step(cur, TTFSExactState(*state), self.params)
            return new, (psp,)

        out = scan_time(step, self.initial_state(seq[0]), seq)
        return ops.moveaxis(out[0], 0, 1), None

    def potentials(self, currents):
        """Sequence mode: the membrane potential after every step, ``(batch, time, ...)``."""
        seq = ops.moveaxis(currents, 1, 0)

        def step(state, cur):
            _, _, new = ttfs_exact_step(cur, TTFSExactState(*state), self.params)
            return new, (new.v,)

        out = scan_time(step, self.initial_state(seq[0]), seq)
        return ops.moveaxis(out[0], 0, 1)
