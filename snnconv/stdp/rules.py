"""STDP learning rules, selectable by name, written as pure TensorFlow steps.

Use::

    from snnconv.stdp.rules import make_rule, RULES
    rule = make_rule("postpre", nu_post=5e-3)
    state = rule.initial_state(n_pre, n_post)
    for t in range(steps):                    # or inside a tf.while_loop
        w, state = rule.step(w, pre, post, state, v_post=v, threshold=th, t=t, seed=seed)
    w = rule.end_of_sample(w, state)
    state = rule.reset(state)                 # before the next sample

Conventions shared by every rule
--------------------------------
* ``w`` has shape ``(n_pre, n_post)``: row ``i`` holds the synapses *from*
  input ``i``, column ``j`` those *onto* post neuron ``j``. (SPAIC stores
  ``(post, pre)``; its per-post-neuron sums over axis 1 are our sums over
  axis 0, and its halving of post-neuron rows is our halving of columns.)
  Weights are float32, int32 for ``postpre_int`` (``rule.integer``).
* ``pre`` ``(n_pre,)`` and ``post`` ``(n_post,)`` are this step's 0/1 spikes
  (float32). ``v_post`` are the post neurons' potentials, ``threshold`` their
  current firing thresholds, ``t`` the step index within the sample and
  ``seed`` an int32 ``(2,)`` tensor for ``tf.random.stateless_*``. Only the
  rules that need an argument read it (and raise ``ValueError`` if it is
  missing): ``postpre_int`` needs ``threshold`` and ``seed``;
  ``exponential_wta`` needs ``v_post`` when ``wta=True`` and ``seed`` when
  ``noise > 0``.
* Order within one ``step`` (one step is ``dt`` = 1 ms):

  1. decay the traces of the previous step;
  2. set (nearest-spike traces) or add (all-spike traces) this step's spikes;
  3. update the weights with the *updated* traces: depression on pre
     spikes, ``-nu_pre * outer(s_pre, x_post)``, and potentiation on post
     spikes, ``+nu_post * outer(x_pre, s_post)``, both computed from the
     weights as they were at the start of the step, then added together;
  4. the rule's own bounds / normalisation (clamp, normalise, halve).

  So with simultaneous pre and post spikes both traces are at their spike
  value and the synapse gets ``nu_post * x_spike - nu_pre * x_spike``.
* ``step`` uses TensorFlow ops only (no Python branching on tensor values, no
  NumPy), so it runs inside ``tf.function(jit_compile=True)`` and
  ``tf.while_loop``. Parameters are Python constants fixed at construction.
* ``initial_state(n_pre, n_post)`` and ``reset(state)`` give the state at the
  start of a sample (traces zero); ``end_of_sample(w, state)`` is applied
  after the last step (identity except for ``full_online``).
* ``rule.normalizes`` is True for the rules that normalise the weights
  themselves (``nearest_online``, ``full_online``); the network then skips
  its own per-sample normalisation.

The rules
---------
``postpre``           nearest-spike traces, additive updates, hard clamp.
``weight_dependent``  as ``postpre`` with soft bounds (multiplicative).
``nearest_online``    SPAIC's nearest-online STDP: normalise every step.
``full_online``       SPAIC's full-online STDP: all-spike traces, normalise
                      once at the end of the sample.
``postpre_int``       integer-arithmetic PostPre with stochastic rounding
                      and weight halving of over-threshold neurons.
``exponential_wta``   nervos-style exponential window, winner-take-all.

Each class's docstring states its parameters, defaults and formulas.
"""
from __future__ import annotations

import math
import numbers

import tensorflow as tf

__all__ = ["RULES", "STDPRule", "PostPre", "WeightDependent", "NearestOnline", "FullOnline",
           "PostPreInt", "ExponentialWTA", "make_rule"]

# "Never spiked" for the age counters of ExponentialWTA (steps since last spike).
_NEVER = 2 ** 30


# --------------------------------------------------------------------------
# parameter checks: each returns the cleaned value or raises ValueError
# naming the parameter


def _is_real(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _real(name, v):
    if not _is_real(v):
        raise ValueError(f"STDP parameter {name!r} must be a finite number, got {v!r}")
    return float(v)


def _positive(name, v):
    v = _real(name, v)
    if v <= 0:
        raise ValueError(f"STDP parameter {name!r} must be > 0, got {v!r}")
    return v


def _nonneg(name, v):
    v = _real(name, v)
    if v < 0:
        raise ValueError(f"STDP parameter {name!r} must be >= 0, got {v!r}")
    return v


def _int(name, v, lo=None, hi=None):
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise ValueError(f"STDP parameter {name!r} must be an integer, got {v!r}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        rng = f"[{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]"
        raise ValueError(f"STDP parameter {name!r} must lie in {rng}, got {v!r}")
    return v


def _nonneg_int(name, v):
    return _int(name, v, lo=0)


def _shift(name, v):
    return _int(name, v, lo=0, hi=30)


def _bool(name, v):
    if not isinstance(v, bool):
        raise ValueError(f"STDP parameter {name!r} must be true or false, got {v!r}")
    return v


def _negative_int(name, v):
    return _int(name, v, hi=-1)


def _optional_real(name, v):
    return None if v is None else _real(name, v)


def _levels(name, v):
    if v is None:
        return None
    if isinstance(v, (str, bytes)) or not hasattr(v, "__iter__"):
        raise ValueError(f"STDP parameter {name!r} must be a list of numbers, got {v!r}")
    out = tuple(v)
    if not out or not all(_is_real(x) for x in out):
        raise ValueError(f"STDP parameter {name!r} must be a non-empty list of finite "
                         f"numbers, got {v!r}")
    return tuple(float(x) for x in out)


# --------------------------------------------------------------------------
# small TF helpers


def _as(x, dtype):
    x = tf.convert_to_tensor(x)
    return x if x.dtype == dtype else tf.cast(x, dtype)


def _outer(a, b):
    return tf.expand_dims(a, 1) * tf.expand_dims(b, 0)


def _nearest_trace(x, s, decay):
    """Decay, then set to 1 where a spike occurred: ``s + (1 - s) * decay * x``."""
    return s + (1.0 - s) * (decay * x)


def _normalize_clamp(w, w_norm, w_min, w_max):
    """Scale each post neuron's column to ``sum |w| = w_norm``, then clamp.

    A column whose ``|w|`` sums to 0 stays 0 (the SPAIC code would give NaN).
    """
    total = tf.reduce_sum(tf.abs(w), axis=0, keepdims=True)
    return tf.clip_by_value(w_norm * tf.math.divide_no_nan(w, total), w_min, w_max)


# Counter-based random bits for postpre_int's rounding and exponential_wta's
# noise: the "lowbias32" integer hash
# (C. Wellons) of the seed and the element's flat index. Unlike TF's Philox
# stream, one element's bits can be computed alone, so the numba kernel of
# fast_rules.py draws only the synapses a step updates and gets the same
# numbers as this TF code (eagerly and under XLA).
HASH_MUL1, HASH_MUL2, HASH_GOLDEN = 0x7FEB352D, 0x846CA68B, 0x9E3779B9


def _hash32(x):
    """lowbias32 of a uint32 tensor."""
    shift = lambda v, n: tf.bitwise.right_shift(v, tf.constant(n, tf.uint32))  # noqa: E731
    x = tf.bitwise.bitwise_xor(x, shift(x, 16)) * tf.constant(HASH_MUL1, tf.uint32)
    x = tf.bitwise.bitwise_xor(x, shift(x, 15)) * tf.constant(HASH_MUL2, tf.uint32)
    return tf.bitwise.bitwise_xor(x, shift(x, 16))


def random_bits(seed, shape):
    """32 random bits (int32) per element of ``shape``, fixed by ``seed`` (int32 (2,)).

    Element ``f`` (flat index) gets ``hash(key + f * GOLDEN)`` with
    ``key = hash(hash(seed[0] * GOLDEN) + seed[1])``, all uint32 arithmetic.
    """
    golden = tf.constant(HASH_GOLDEN, tf.uint32)
    seed = tf.bitcast(_as(seed, tf.int32), tf.uint32)
    key = _hash32(_hash32(seed[0] * golden) + seed[1])
    index = tf.bitcast(tf.range(tf.reduce_prod(shape), dtype=tf.int32), tf.uint32)
    return tf.bitcast(tf.reshape(_hash32(key + index * golden), shape), tf.int32)


def _need(value, what, rule):
    if value is None:
        raise ValueError(f"STDP rule {rule!r} needs {what} in step()")
    return value


# --------------------------------------------------------------------------


class STDPRule:
    """Base class. Subclasses set ``name``, ``_spec`` and implement ``step``.

    ``_spec`` maps each parameter to ``(default, check)``; the checked values
    are in ``self.params`` and also set as attributes.
    """

    name = ""
    integer = False        # weights are int32
    normalizes = False     # the rule normalises the weights itself
    _spec: dict = {}

    def __init__(self, **params):
        unknown = sorted(set(params) - set(self._spec))
        if unknown:
            raise ValueError(f"unknown parameter(s) {', '.join(map(repr, unknown))} for STDP "
                             f"rule {self.name!r}; its parameters are "
                             f"{', '.join(sorted(self._spec))}")
        values = {}
        for key, (default, check) in self._spec.items():
            values[key] = check(key, params.get(key, default))
        self._check(values)
        self.params = values
        for key, value in values.items():
            setattr(self, key, value)

    def _check(self, p):
        """Checks between parameters (override)."""
        if "w_min" in p and "w_max" in p and not p["w_min"] < p["w_max"]:
            raise ValueError(f"STDP parameter 'w_min' ({p['w_min']!r}) must be below "
                             f"'w_max' ({p['w_max']!r})")

    @property
    def dtype(self):
        return tf.int32 if self.integer else tf.float32

    def config(self) -> dict:
        """The rule's name and all its parameter values (defaults filled in)."""
        return {"rule": self.name, **self.params}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"

    def initial_state(self, n_pre: int, n_post: int) -> tuple:
        """Traces at the start of a sample: ``(x_pre (n_pre,), x_post (n_post,))`` zeros."""
        return (tf.zeros((n_pre,), self.dtype), tf.zeros((n_post,), self.dtype))

    def reset(self, state: tuple) -> tuple:
        """The state for a new sample, with the shapes of ``state`` (traces zero)."""
        return tuple(tf.zeros_like(s) for s in state)

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        raise NotImplementedError

    def end_of_sample(self, w, state):
        """Applied once after the sample's last step (identity by default)."""
        return w


class PostPre(STDPRule):
    """Pair-based STDP with nearest-spike traces and hard bounds.

    ``x_pre = 1`` on a pre spike, else ``x_pre * exp(-dt/tau_pre)`` (same for
    ``x_post`` with ``tau_post``)::

        w += nu_post * outer(x_pre, s_post) - nu_pre * outer(s_pre, x_post)
        w  = clip(w, w_min, w_max)

    Defaults: ``nu_pre=1e-4, nu_post=1e-2, tau_pre=tau_post=20, w_min=0, w_max=1``.
    """

    name = "postpre"
    _spec = {"nu_pre": (1e-4, _nonneg), "nu_post": (1e-2, _nonneg),
             "tau_pre": (20.0, _positive), "tau_post": (20.0, _positive),
             "w_min": (0.0, _real), "w_max": (1.0, _real)}

    def _traces(self, pre, post, state):
        x_pre, x_post = state
        x_pre = _nearest_trace(x_pre, pre, math.exp(-1.0 / self.tau_pre))
        x_post = _nearest_trace(x_post, post, math.exp(-1.0 / self.tau_post))
        return x_pre, x_post

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w, pre, post = _as(w, tf.float32), _as(pre, tf.float32), _as(post, tf.float32)
        x_pre, x_post = self._traces(pre, post, state)
        dw = self.nu_post * _outer(x_pre, post) - self.nu_pre * _outer(pre, x_post)
        return tf.clip_by_value(w + dw, self.w_min, self.w_max), (x_pre, x_post)


class WeightDependent(PostPre):
    """``postpre`` with soft bounds: updates scaled by the distance to the bound.

    Same traces as ``postpre``; with ``w`` the weights at the start of the step::

        w += nu_post * outer(x_pre, s_post) * (w_max - w)
           - nu_pre  * outer(s_pre, x_post) * (w - w_min)
        w  = clip(w, w_min, w_max)

    Same parameters and defaults as ``postpre``.
    """

    name = "weight_dependent"

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w, pre, post = _as(w, tf.float32), _as(pre, tf.float32), _as(post, tf.float32)
        x_pre, x_post = self._traces(pre, post, state)
        dw = (self.nu_post * _outer(x_pre, post) * (self.w_max - w)
              - self.nu_pre * _outer(pre, x_post) * (w - self.w_min))
        return tf.clip_by_value(w + dw, self.w_min, self.w_max), (x_pre, x_post)


class NearestOnline(STDPRule):
    """SPAIC's ``nearest_online_STDP`` (Diehl & Cook 2015), in (pre, post) layout.

    Nearest-spike traces ``x = s + (1 - s) * x * exp(-1/tau)``;
    ``dw = Apost * outer(x_pre, s_post) - Apre * outer(s_pre, x_post)``;
    ``w += dw``; then, **every step**, each post neuron's column is scaled to
    ``sum_i |w[i, j]| = w_norm`` and clamped to ``[w_min, w_max]``.

    Defaults: ``Apost=1e-2, Apre=1e-4, tau_pre=tau_post=20`` (decay
    ``exp(-1/20)`` per 1 ms step), ``w_norm=78.4, w_min=0, w_max=1``.
    """

    name = "nearest_online"
    normalizes = True
    _spec = {"Apost": (1e-2, _nonneg), "Apre": (1e-4, _nonneg),
             "tau_pre": (20.0, _positive), "tau_post": (20.0, _positive),
             "w_norm": (78.4, _positive), "w_min": (0.0, _real), "w_max": (1.0, _real)}

    def _traces(self, pre, post, state):
        x_pre, x_post = state
        x_pre = _nearest_trace(x_pre, pre, math.exp(-1.0 / self.tau_pre))
        x_post = _nearest_trace(x_post, post, math.exp(-1.0 / self.tau_post))
        return x_pre, x_post

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w, pre, post = _as(w, tf.float32), _as(pre, tf.float32), _as(post, tf.float32)
        x_pre, x_post = self._traces(pre, post, state)
        w = w + self.Apost * _outer(x_pre, post) - self.Apre * _outer(pre, x_post)
        return _normalize_clamp(w, self.w_norm, self.w_min, self.w_max), (x_pre, x_post)


class FullOnline(NearestOnline):
    """SPAIC's ``full_online_STDP``: all-spike (additive) traces.

    ``x = x * exp(-1/tau) + s``; same ``dw`` as ``nearest_online``, added every
    step with no bound; normalisation to ``w_norm`` per post neuron and the
    clamp to ``[w_min, w_max]`` happen only in :meth:`end_of_sample` (SPAIC
    does both at the last step of the run). Same parameters and defaults as
    ``nearest_online``.
    """

    name = "full_online"

    def _traces(self, pre, post, state):
        x_pre, x_post = state
        return (x_pre * math.exp(-1.0 / self.tau_pre) + pre,
                x_post * math.exp(-1.0 / self.tau_post) + post)

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w, pre, post = _as(w, tf.float32), _as(pre, tf.float32), _as(post, tf.float32)
        x_pre, x_post = self._traces(pre, post, state)
        w = w + self.Apost * _outer(x_pre, post) - self.Apre * _outer(pre, x_post)
        return w, (x_pre, x_post)

    def end_of_sample(self, w, state):
        return _normalize_clamp(_as(w, tf.float32), self.w_norm, self.w_min, self.w_max)


class PostPreInt(STDPRule):
    """SPAIC's ``PostPreIntSTDP``: PostPre in integer arithmetic (int32 weights).

    Traces (int32)::

        x = (trace_decay * x) >> shift_trace          # decay
        x = trace_scale where spiked (1 if shift_trace == 0)

    Updates, with ``R(v) = (v >> shift) + (u < (v & (2**shift - 1)))`` the
    stochastic rounding of ``v / 2**shift`` (``u`` uniform in
    ``[0, 2**shift)``, drawn per synapse from ``seed``: the low ``shift`` bits
    of ``random_bits(seed, (2, n_pre, n_post))``, plane 0 for depression and
    1 for potentiation)::

        w -= s_pre[:, None]  * R(nu_pre  * x_post[None, :])   # depression
        w += s_post[None, :] * R(nu_post * x_pre[:, None])    # potentiation
        w[:, j] >>= 1 for every post neuron j with threshold[j] > max_threshold
        w = clip(w, w_min, w_max)

    Sign convention: the pre-spike term is *subtracted* (depression). The SPAIC
    code adds it although its docstring says the pre-synaptic update is
    negative; we follow the docstring and the rule's name. ``>>`` is an
    arithmetic shift (it rounds towards -inf).

    Defaults: ``trace_decay=31169, shift_trace=15, trace_scale=127, nu_pre=14,
    nu_post=141, shift=14, max_threshold=4915, w_min=0, w_max=109``.
    """

    name = "postpre_int"
    integer = True
    _spec = {"trace_decay": (31169, _nonneg_int), "shift_trace": (15, _shift),
             "trace_scale": (127, lambda n, v: _int(n, v, lo=1)),
             "nu_pre": (14, _nonneg_int), "nu_post": (141, _nonneg_int),
             "shift": (14, _shift), "max_threshold": (4915.0, _real),
             "w_min": (0, _int), "w_max": (109, _int)}

    def _check(self, p):
        super()._check(p)
        top = p["trace_scale"] if p["shift_trace"] > 0 else 1
        for key in ("trace_decay", "nu_pre", "nu_post"):
            if p[key] * top >= 2 ** 31:
                raise ValueError(f"STDP parameter {key!r} ({p[key]}) times the spike trace "
                                 f"value ({top}) overflows int32")

    def _stochastic_round(self, v, u):
        mask = (1 << self.shift) - 1
        frac = tf.bitwise.bitwise_and(v, tf.constant(mask, tf.int32))
        whole = tf.bitwise.right_shift(v, tf.constant(self.shift, tf.int32))
        return whole + tf.cast(u < frac, tf.int32)

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w = tf.convert_to_tensor(w)
        if not w.dtype.is_integer:
            raise TypeError(f"STDP rule 'postpre_int' needs integer weights, got {w.dtype.name}")
        threshold = _need(threshold, "threshold", self.name)
        seed = _need(seed, "seed", self.name)
        w = _as(w, tf.int32)
        s_pre = tf.cast(_as(pre, tf.float32) > 0, tf.int32)
        s_post = tf.cast(_as(post, tf.float32) > 0, tf.int32)
        x_pre, x_post = state
        spike_value = self.trace_scale if self.shift_trace > 0 else 1
        shift_trace = tf.constant(self.shift_trace, tf.int32)
        x_pre = tf.bitwise.right_shift(self.trace_decay * x_pre, shift_trace)
        x_post = tf.bitwise.right_shift(self.trace_decay * x_post, shift_trace)
        x_pre = tf.where(s_pre > 0, spike_value, x_pre)
        x_post = tf.where(s_post > 0, spike_value, x_post)

        shape = tf.shape(w)
        u = tf.bitwise.bitwise_and(random_bits(seed, tf.concat([[2], shape], 0)),
                                   tf.constant((1 << self.shift) - 1, tf.int32))
        dep = self._stochastic_round(tf.broadcast_to(self.nu_pre * x_post[None, :], shape), u[0])
        pot = self._stochastic_round(tf.broadcast_to(self.nu_post * x_pre[:, None], shape), u[1])
        w = w - s_pre[:, None] * dep + s_post[None, :] * pot

        halve = tf.cast(_as(threshold, tf.float32) > self.max_threshold, tf.int32)
        w = tf.bitwise.right_shift(w, tf.broadcast_to(halve[None, :], shape))
        return tf.clip_by_value(w, self.w_min, self.w_max), (x_pre, x_post)


class ExponentialWTA(STDPRule):
    """nervos-style STDP: exponential window, soft bounds, winner-take-all.

    Window, for ``dt = t_post - t_pre`` (steps)::

        STDP(dt) = A_up   * exp(-dt / tau_up)     if dt >= 0
                   A_down * exp( dt / tau_down)   if dt <  0

    The state is, per pre neuron, the age of its most recent spike in steps
    (``t - t_last_pre``; 0 on the step it spikes, ``2**30`` if it has not
    spiked in this sample), so ``t`` is not needed. On a step where post
    neuron ``j`` is *selected*, every synapse ``(i, j)`` is updated:

    * ``dt = age_i`` if pre neuron ``i`` spiked within the past window
      (``age_i <= -past_window``, i.e. this step or the 5 before by default);
    * otherwise ``dt = unpaired_dt`` (default ``past_window``, i.e. -5):
      depression ``A_down * exp(-1)`` by default. nervos draws this ``dt`` at
      random from ``{-1, -2}``; we use a fixed value so the rule is
      deterministic.
    * ``f = STDP(dt)``; ``d = w - w_min`` if ``f < 0`` else ``w_max - w``;
      ``w += eta * f * sign(d) * |d| ** 0.9``.
    * then, on the updated synapses only: with ``levels`` the weight snaps to
      the nearest level (first one on a tie); otherwise, with ``noise = h > 0``,
      ``w *= 1 + n`` with ``n`` truncated-normal noise of std ``h / 3`` cut at
      ``+-h`` (drawn from ``seed`` by inverse CDF of 24 bits of
      ``random_bits(seed, w.shape)`` per synapse; nervos uses
      ``truncnorm`` with the same bounds); levels take precedence over noise
      as in nervos. Finally ``clip(w, w_min, w_max)`` (a no-op with levels and
      the soft bounds in range; nervos clips noisy weights to [0, 1]).

    Selected post neurons: with ``wta=True`` the winner ``argmax(v_post)``
    (lowest index on a tie), only on steps where it spiked; with
    ``wta=False`` every post neuron that spiked this step. ``v_post`` should
    be the potentials the firing decision was taken on.

    Differences from nervos (which loops over Python objects): only the most
    recent pre spike in the window counts (nervos applies one update per pre
    spike found in the window), and in all-synapse mode only post neurons
    that spiked are updated (nervos updates all of them whenever the winner
    fires).

    Defaults: ``A_up=0.8, A_down=-0.3, tau_up=5, tau_down=5, eta=0.01,
    past_window=-5, unpaired_dt=None (= past_window), w_min=0, w_max=1,
    levels=None, noise=0, wta=True``.
    """

    name = "exponential_wta"
    _spec = {"A_up": (0.8, _real), "A_down": (-0.3, _real),
             "tau_up": (5.0, _positive), "tau_down": (5.0, _positive),
             "eta": (0.01, _nonneg), "past_window": (-5, _negative_int),
             "unpaired_dt": (None, _optional_real),
             "w_min": (0.0, _real), "w_max": (1.0, _real),
             "levels": (None, _levels), "noise": (0.0, _nonneg), "wta": (True, _bool)}

    def initial_state(self, n_pre: int, n_post: int) -> tuple:
        """``(age of the last pre spike (n_pre,) int32,)``, all "never"."""
        return (tf.fill((n_pre,), tf.constant(_NEVER, tf.int32)),)

    def reset(self, state: tuple) -> tuple:
        return (tf.fill(tf.shape(state[0]), tf.constant(_NEVER, tf.int32)),)

    def window(self, dt):
        """``STDP(dt)`` for a float tensor of ``dt`` values."""
        dt = _as(dt, tf.float32)
        return tf.where(dt >= 0, self.A_up * tf.exp(-dt / self.tau_up),
                        self.A_down * tf.exp(dt / self.tau_down))

    def _noise(self, shape, seed):
        h = self.noise
        lo = 0.5 * math.erfc(3.0 / math.sqrt(2.0))        # Phi(-3)
        # 24 uniform bits per synapse (random_bits: the same eagerly, under XLA and in
        # the numba kernel)
        bits = tf.bitwise.bitwise_and(random_bits(seed, shape), tf.constant(0xFFFFFF, tf.int32))
        u = (tf.cast(bits, tf.float32) + 0.5) * (1.0 / (1 << 24))
        p = lo + u * (1.0 - 2.0 * lo)
        z = math.sqrt(2.0) * tf.math.erfinv(2.0 * p - 1.0)
        return tf.clip_by_value((h / 3.0) * z, -h, h)

    def step(self, w, pre, post, state, *, v_post=None, threshold=None, t=None, seed=None):
        w, pre, post = _as(w, tf.float32), _as(pre, tf.float32), _as(post, tf.float32)
        (age,) = state
        age = tf.where(pre > 0, 0, tf.minimum(age + 1, _NEVER))

        unpaired = self.past_window if self.unpaired_dt is None else self.unpaired_dt
        dt = tf.where(age <= -self.past_window, tf.cast(age, tf.float32),
                      tf.constant(unpaired, tf.float32))
        f = self.window(dt)[:, None]                        # (n_pre, 1)

        if self.wta:
            v_post = _as(_need(v_post, "v_post (wta=True)", self.name), tf.float32)
            winner = tf.argmax(v_post, output_type=tf.int32)
            selected = tf.one_hot(winner, tf.shape(post)[0], dtype=tf.float32) * post
        else:
            selected = post
        mask = tf.broadcast_to(selected[None, :] > 0, tf.shape(w))

        d = tf.where(f < 0, w - self.w_min, self.w_max - w)
        new = w + self.eta * f * tf.sign(d) * tf.pow(tf.abs(d), 0.9)
        if self.levels is not None:
            levels = tf.constant(self.levels, tf.float32)
            idx = tf.argmin(tf.abs(new[..., None] - levels), axis=-1, output_type=tf.int32)
            new = tf.gather(levels, idx)
        elif self.noise > 0:
            seed = _need(seed, "seed (noise > 0)", self.name)
            new = new * (1.0 + self._noise(tf.shape(w), seed))
        new = tf.clip_by_value(new, self.w_min, self.w_max)
        return tf.where(mask, new, w), (age,)


_CLASSES = {cls.name: cls for cls in (PostPre, WeightDependent, NearestOnline, FullOnline,
                                      PostPreInt, ExponentialWTA)}
RULES = tuple(_CLASSES)


def make_rule(name: str, **params) -> STDPRule:
    """The STDP rule called ``name`` (one of :data:`RULES`) with ``params``.

    Raises ``ValueError`` for an unknown name (listing the allowed ones) and
    for an unknown or invalid parameter (naming it).
    """
    cls = _CLASSES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise ValueError(f"unknown STDP rule {name!r}; choose one of {', '.join(RULES)}")
    return cls(**params)
