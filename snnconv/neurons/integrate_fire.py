"""Rate-coded integrate-and-fire neurons (IF, and LIF when a leak is set).

Dynamics of one time step of length ``dt`` for input current ``I``:

1. leak (only when ``tau_mem`` is set): ``v *= exp(-dt / tau_mem)``;
2. integrate, unless refractory: ``v += I * dt``;
3. fire: ``n = clip(floor(v / v_thresh), 0, max_spikes_per_dt)`` spikes, so
   a neuron fires when ``v >= v_thresh`` (``threshold_mode="inclusive"``,
   the default; with one spike per step, the count is that comparison). With ``threshold_mode="strict"`` it fires when
   ``v > v_thresh`` and ``n = clip(ceil(v / v_thresh) - 1, 1, max_spikes_per_dt)``
   where it does (the spikes that leave ``v`` above the threshold);
4. reset: by subtraction ``v -= n * v_thresh``, to zero ``v = 0``, or to a
   value ``v = v_reset`` (``reset="to_value"``) where ``n > 0``;
5. a neuron that fired ignores its input for ``round(tau_refrac / dt)``
   following steps.

``threshold_mode="strict"`` with ``reset="to_value"`` (or ``"zero"``) and one
spike per step is the integrate-and-fire neuron of NIR (see
:mod:`snnconv.nirio`).

The neuron's output signal is ``n * v_thresh / dt``: with that amplitude the
time-averaged output equals the time-averaged input current for
``0 <= I <= v_thresh / dt``, which is what makes the spike rate of a
normalised network approximate the ANN's ReLU activations whatever
``v_thresh`` and ``dt`` are.

:func:`if_step` is the pure function (tested against hand-worked traces);
:class:`IFNeuron` holds the parameters and runs it over a sequence.
"""
from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

from keras import ops

from ..choices import RESET_MODES as RESETS, THRESHOLD_MODES
from .time_loop import scan_time


class IFParams(NamedTuple):
    v_thresh: float = 1.0
    reset: str = "subtraction"
    refrac_steps: int = 0
    dt: float = 1.0
    decay: float = 1.0            # exp(-dt / tau_mem); 1.0 = no leak
    max_spikes_per_dt: int = 1
    strict: bool = False          # fire when v > v_thresh (else v >= v_thresh)
    v_reset: float = 0.0          # the potential after a spike for reset "to_value"
    spike_fn: object = None       # a surrogate (v, v_thresh, max_spikes) -> spike counts


class IFState(NamedTuple):
    v: object                     # membrane potential
    refrac: object                # refractory steps still to wait


def if_step(current, state: IFState, p: IFParams):
    """One time step. Returns ``(spike_counts, new_state)``."""
    v = state.v * p.decay if p.decay != 1.0 else state.v
    # each skipped no-op is one pass fewer over every neuron per step (the
    # engine's per-step cost on large layers is these passes)
    drive = current * p.dt if p.dt != 1.0 else current
    if p.refrac_steps > 0:
        v = v + ops.where(state.refrac > 0, 0.0, drive)
    else:
        v = v + drive
    if p.strict:
        # the comparison decides whether it fires (exactly v > v_thresh); the
        # quotient only how often, when several spikes per step are allowed
        n = ops.cast(v > p.v_thresh, v.dtype)
        if p.max_spikes_per_dt > 1:
            n = n * ops.clip(ops.ceil(v / p.v_thresh) - 1.0, 1.0, float(p.max_spikes_per_dt))
    elif p.spike_fn is not None:
        # the same counts as below, with the surrogate's gradient (fine-tuning)
        n = p.spike_fn(v, p.v_thresh, p.max_spikes_per_dt)
    elif p.max_spikes_per_dt == 1:
        # at most one spike: fires when v >= v_thresh, one comparison
        n = ops.cast(v >= p.v_thresh, v.dtype)
    else:
        n = ops.clip(ops.floor(v / p.v_thresh), 0.0, float(p.max_spikes_per_dt))
    if p.reset == "subtraction":
        v = v - (n if p.v_thresh == 1.0 else n * p.v_thresh)
    elif p.reset == "to_value":
        v = ops.where(n > 0, p.v_reset, v)
    else:
        v = ops.where(n > 0, 0.0, v)
    if p.refrac_steps > 0:
        refrac = ops.where(n > 0, float(p.refrac_steps), ops.maximum(state.refrac - 1.0, 0.0))
    else:
        refrac = state.refrac
    return n, IFState(v, refrac)


@dataclasses.dataclass(frozen=True)
class IFNeuron:
    """Integrate-and-fire neuron model; leaky when ``tau_mem`` is given."""

    v_thresh: float = 1.0
    reset: str = "subtraction"
    tau_refrac: float = 0.0
    dt: float = 1.0
    tau_mem: float | None = None
    max_spikes_per_dt: int = 1
    v_init: float = 0.0
    threshold_mode: str = "inclusive"
    v_reset: float = 0.0
    # a surrogate spike function (its config dict, see snnconv.surrogates): the
    # spikes are unchanged, their gradient is the surrogate's (for fine-tuning)
    surrogate: dict | None = None
    # cell.burst: the neuron stands for one of threshold v_thresh * burst whose
    # spikes it splits in burst parts (its other values are already divided);
    # it changes nothing in the simulation, and tells an exporter to a target
    # with one spike a step which neuron to approximate it by
    burst: int = 1

    def __post_init__(self):
        if self.reset not in RESETS:
            raise ValueError(f"reset must be one of {RESETS}, got {self.reset!r}")
        if self.threshold_mode not in THRESHOLD_MODES:
            raise ValueError(f"threshold_mode must be one of {THRESHOLD_MODES}, "
                             f"got {self.threshold_mode!r}")
        if self.v_thresh <= 0 or self.dt <= 0:
            raise ValueError("v_thresh and dt must be positive")
        if self.tau_mem is not None and self.tau_mem <= 0:
            raise ValueError("tau_mem must be positive (or None for no leak)")
        if self.max_spikes_per_dt < 1:
            raise ValueError("max_spikes_per_dt must be at least 1")
        if self.burst < 1 or self.max_spikes_per_dt % self.burst:
            raise ValueError(f"burst must be at least 1 and divide max_spikes_per_dt "
                             f"({self.max_spikes_per_dt}), got {self.burst}")
        if self.surrogate is not None:
            if self.threshold_mode != "inclusive":
                raise ValueError("a surrogate spike function needs threshold_mode "
                                 f"'inclusive', got {self.threshold_mode!r}")
            from ..surrogates import get_surrogate, to_config
            object.__setattr__(self, "surrogate", to_config(get_surrogate(self.surrogate)))

    @property
    def params(self) -> IFParams:
        decay = 1.0 if self.tau_mem is None else math.exp(-self.dt / self.tau_mem)
        spike_fn = None
        if self.surrogate is not None:
            from ..surrogates import get_surrogate
            spike_fn = get_surrogate(self.surrogate)
        return IFParams(float(self.v_thresh), self.reset,
                        int(round(self.tau_refrac / self.dt)), float(self.dt),
                        decay, int(self.max_spikes_per_dt),
                        self.threshold_mode == "strict", float(self.v_reset), spike_fn)

    # the output signal is spike counts (times the amplitude), not a post-synaptic potential
    signal_is_psp = False

    @property
    def spike_amplitude(self) -> float:
        """Value of one spike in the output signal (see module docstring)."""
        return self.v_thresh / self.dt

    def events(self, counts, old_state, new_state):
        """Spikes emitted in one step: the step's output in spikes."""
        return counts

    def readout_bonus(self, state):
        """Added to an output layer's accumulated signal: nothing (the count decides)."""
        return 0.0

    def get_config(self) -> dict:
        config = {"model": "if", **dataclasses.asdict(self)}
        for key, default in (("surrogate", None), ("burst", 1)):
            if config[key] == default:    # absent: configs saved before it read the same
                del config[key]
        return config

    def initial_state(self, like, v0=None) -> IFState:
        """The state before the first step: ``v = v_init`` everywhere, or ``v0``
        (per-neuron initial potentials, broadcast to ``like``) when given."""
        v = ops.zeros_like(like) + (self.v_init if v0 is None else v0)
        return IFState(v, ops.zeros_like(like))

    def step(self, current, state: IFState):
        """One time step: ``(current, state) -> (spike counts, new state)``."""
        return if_step(current, IFState(*state), self.params)

    def advance(self, current, state, missing=None):
        """The layers' uniform step: ``-> (spike counts, prospective, new state)``.
        Rate-coded neurons track no prospective spikes."""
        if missing is not None:
            raise ValueError("IF neurons have no dynamic threshold (missing impulse)")
        n, new = if_step(current, IFState(*state), self.params)
        return n, None, new

    def run(self, currents, return_potentials: bool = False, v0=None):
        """Simulate a batch: ``currents`` is ``(batch, time, ...)``; ``v0``: per-neuron
        initial potentials (see :meth:`initial_state`).

        Returns the spike counts per step, same shape (and the membrane
        potential after each step when asked). The loop over time is a
        ``tf.while_loop`` (:func:`scan_time`), so it compiles into the caller's graph.
        """
        p = self.params
        seq = ops.moveaxis(currents, 1, 0)           # time-major for the loop

        def step(state, current):
            n, new = if_step(current, IFState(*state), p)
            return new, ((n, new.v) if return_potentials else (n,))

        out = scan_time(step, self.initial_state(seq[0], v0), seq)
        out = tuple(ops.moveaxis(o, 0, 1) for o in out)
        return out if return_potentials else out[0]
