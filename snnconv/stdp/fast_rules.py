"""Training a sample with a numba kernel that only touches the synapses a step changes.

The rules of :mod:`.rules` change, in one step, only the rows of the inputs
that spiked (depression) and the columns of the neurons that spiked
(potentiation); the traces are vectors. So the kernel updates those rows
and columns with each rule's formula for one synapse, written with the same
float32 operations in the same order as the TF rule, and a training sample
at 400 neurons costs a few ms instead of a dense 784 x 400 update per step.
Where a rule touches every synapse (``nearest_online`` normalises every
step) the kernel does so too.

``postpre_int``'s stochastic rounding and ``exponential_wta``'s noise come
from ``rules.random_bits``, a hash of the seed and the synapse's index,
which the kernel computes for the updated synapses only. A rule that
:func:`fast_rule` does not know trains in the XLA graph instead; the tests
check that both paths give the same weights, thresholds and spikes for
every rule here.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from .kernels import _V_REST, _V_THRESH, add_rows, step_neurons, reset_neurons
from .network import INT_THRESHOLD_UNITS
from .rules import _NEVER, HASH_GOLDEN, HASH_MUL1, HASH_MUL2, ExponentialWTA, FullOnline, \
    NearestOnline, PostPre, PostPreInt, STDPRule, WeightDependent

POSTPRE, WEIGHT_DEPENDENT, NEAREST_ONLINE, FULL_ONLINE, EXPONENTIAL_WTA, POSTPRE_INT = range(6)

# rule parameters, packed as float32 by fast_rule(): the bounds, then per family
_W_MIN, _W_MAX = 0, 1
_NU_PRE, _NU_POST, _DECAY_PRE, _DECAY_POST, _W_NORM = 2, 3, 4, 5, 6    # trace rules
_A_UP, _A_DOWN, _TAU_UP, _TAU_DOWN, _ETA, _PAST, _UNPAIRED, _WTA = range(2, 10)  # wta
_NOISE, _NOISE_STD, _NOISE_LO, _NOISE_SPAN = range(10, 14)
_MAX_THRESHOLD = 2                                                      # postpre_int
# postpre_int's integer parameters (int64)
_I_W_MIN, _I_W_MAX, _I_NU_PRE, _I_NU_POST, _TRACE_DECAY, _SHIFT_TRACE, _SPIKE, _SHIFT = range(8)
# the network's learning constants, packed by the caller: see train_sample_kernel
_THETA_DECAY, _THETA_PLUS, _REST_DECAY, _NORMALIZE_TO, _W_SCALE = range(5)


def fast_rule(rule: STDPRule):
    """``(kind, float32 params, int64 params, float32 levels)`` of ``rule`` for
    :func:`train_sample_kernel`; None for a rule it does not know (the XLA path runs it).
    """
    levels, ints = np.zeros(0, np.float32), np.zeros(0, np.int64)
    if type(rule) is PostPreInt:
        spike = rule.trace_scale if rule.shift_trace > 0 else 1
        ints = np.array([rule.w_min, rule.w_max, rule.nu_pre, rule.nu_post, rule.trace_decay,
                         rule.shift_trace, spike, rule.shift], np.int64)
        return (POSTPRE_INT, np.array([rule.w_min, rule.w_max, rule.max_threshold], np.float32),
                ints, levels)
    if type(rule) is ExponentialWTA:
        unpaired = rule.past_window if rule.unpaired_dt is None else rule.unpaired_dt
        lo = 0.5 * math.erfc(3.0 / math.sqrt(2.0))         # as ExponentialWTA._noise
        values = [rule.w_min, rule.w_max, rule.A_up, rule.A_down, rule.tau_up, rule.tau_down,
                  rule.eta, rule.past_window, unpaired, float(rule.wta),
                  rule.noise, rule.noise / 3.0, lo, 1.0 - 2.0 * lo]
        if rule.levels is not None:
            levels = np.array(rule.levels, np.float32)
        return EXPONENTIAL_WTA, np.array(values, np.float32), ints, levels
    kinds = {PostPre: POSTPRE, WeightDependent: WEIGHT_DEPENDENT, NearestOnline: NEAREST_ONLINE,
             FullOnline: FULL_ONLINE}
    kind = kinds.get(type(rule))
    if kind is None:
        return None
    if kind in (NEAREST_ONLINE, FULL_ONLINE):
        nu_pre, nu_post, w_norm = rule.Apre, rule.Apost, rule.w_norm
    else:
        nu_pre, nu_post, w_norm = rule.nu_pre, rule.nu_post, 0.0
    values = [rule.w_min, rule.w_max, nu_pre, nu_post, math.exp(-1.0 / rule.tau_pre),
              math.exp(-1.0 / rule.tau_post), w_norm]
    return kind, np.array(values, np.float32), ints, levels


@njit(cache=True)
def _clip(x, lo, hi):
    return min(max(x, lo), hi)


# rules.random_bits, one element at a time
_M32 = np.uint64(0xFFFFFFFF)
_H1, _H2, _HG = np.uint64(HASH_MUL1), np.uint64(HASH_MUL2), np.uint64(HASH_GOLDEN)


@njit(cache=True)
def _hash32(x):
    """rules._hash32 on a uint64 holding 32 bits."""
    x = ((x ^ (x >> np.uint64(16))) * _H1) & _M32
    x = ((x ^ (x >> np.uint64(15))) * _H2) & _M32
    return x ^ (x >> np.uint64(16))


@njit(cache=True)
def _bits_key(seed0, seed1):
    """The key of rules.random_bits for the int32 seed ``(seed0, seed1)``."""
    a = _hash32(((np.uint64(seed0) & _M32) * _HG) & _M32)
    return _hash32((a + (np.uint64(seed1) & _M32)) & _M32)


@njit(cache=True)
def _bits(key, index):
    """The 32 bits of element ``index`` (flat) of rules.random_bits with key ``key``."""
    return _hash32((key + np.uint64(index) * _HG) & _M32)


@njit(cache=True)
def _synapse(kind, w, x_pre, s_pre, x_post, s_post, rp):
    """The new weight of one synapse after one step of a trace rule (as rules.py)."""
    pot = x_pre * s_post        # the entries of outer(x_pre, s_post), outer(s_pre, x_post)
    dep = s_pre * x_post
    if kind == POSTPRE:
        return _clip(w + (rp[_NU_POST] * pot - rp[_NU_PRE] * dep), rp[_W_MIN], rp[_W_MAX])
    if kind == WEIGHT_DEPENDENT:
        dw = (rp[_NU_POST] * pot * (rp[_W_MAX] - w) - rp[_NU_PRE] * dep * (w - rp[_W_MIN]))
        return _clip(w + dw, rp[_W_MIN], rp[_W_MAX])
    return (w + rp[_NU_POST] * pot) - rp[_NU_PRE] * dep     # the online rules


@njit(cache=True)
def _traces(x, spikes, decay, all_spikes):
    """Decay, then all-spike ``x * decay + s`` or nearest-spike (1 on a spike) traces."""
    for i in range(x.shape[0]):
        if all_spikes:
            x[i] = x[i] * decay + np.float32(spikes[i])
        else:
            x[i] = np.float32(1) if spikes[i] else decay * x[i]


@njit(cache=True)
def _trace_rule_step(kind, w, pre, spiking, k, post, fired, m, x_pre, x_post, rp):
    """Decay and bump the traces, then update the rows of ``spiking[:k]`` and the columns of
    ``fired[:m]`` (the only synapses with a nonzero update)."""
    _traces(x_pre, pre, rp[_DECAY_PRE], kind == FULL_ONLINE)
    _traces(x_post, post, rp[_DECAY_POST], kind == FULL_ONLINE)
    one = np.float32(1)
    n_post = w.shape[1]
    for a in range(k):
        i = spiking[a]
        for j in range(n_post):
            w[i, j] = _synapse(kind, w[i, j], x_pre[i], one, x_post[j], post[j], rp)
    zero = np.float32(0)
    for b in range(m):
        j = fired[b]
        for i in range(w.shape[0]):
            if not pre[i]:                               # the spiking rows are done
                w[i, j] = _synapse(kind, w[i, j], x_pre[i], zero, x_post[j], one, rp)


@njit(cache=True)
def _erfinv(y):
    """Inverse error function (float64): Winitzki's approximation, then Newton steps."""
    ln = math.log(1.0 - y * y)
    b = 2.0 / (math.pi * 0.147) + 0.5 * ln
    x = math.copysign(math.sqrt(math.sqrt(b * b - ln / 0.147) - b), y)
    for _ in range(3):
        x -= (math.erf(x) - y) / (2.0 / math.sqrt(math.pi) * math.exp(-x * x))
    return x


@njit(cache=True)
def _wta_noise(key, index, rp):
    """ExponentialWTA._noise of one synapse (float32 like TF; erfinv in float64)."""
    bits = np.float32(_bits(key, index) & np.uint64(0xFFFFFF))
    u = (bits + np.float32(0.5)) * np.float32(1.0 / (1 << 24))
    p = rp[_NOISE_LO] + u * rp[_NOISE_SPAN]
    z = np.float32(math.sqrt(2.0)) * np.float32(_erfinv(np.float32(2) * p - np.float32(1)))
    return _clip(rp[_NOISE_STD] * z, -rp[_NOISE], rp[_NOISE])


@njit(cache=True)
def _wta_step(w, pre, post, fired, m, v_fired, age, rp, levels, window, seed0, t):
    """One step of exponential_wta (as rules.ExponentialWTA.step)."""
    for i in range(age.shape[0]):
        age[i] = 0 if pre[i] else min(age[i] + 1, _NEVER)
    if rp[_WTA] > 0:                                     # only the winner, if it fired
        winner = np.argmax(v_fired)
        if post[winner] == 0:
            return
        fired[0] = winner
        m = 1
    if m == 0:
        return
    for i in range(age.shape[0]):
        dt = np.float32(age[i]) if age[i] <= -rp[_PAST] else rp[_UNPAIRED]
        if dt >= 0:
            window[i] = rp[_A_UP] * math.exp(-dt / rp[_TAU_UP])
        else:
            window[i] = rp[_A_DOWN] * math.exp(dt / rp[_TAU_DOWN])
    power = np.float32(0.9)
    key = _bits_key(seed0, t)
    for b in range(m):
        j = fired[b]
        for i in range(w.shape[0]):
            f = window[i]
            d = w[i, j] - rp[_W_MIN] if f < 0 else rp[_W_MAX] - w[i, j]
            sign = np.float32(1) if d > 0 else (np.float32(-1) if d < 0 else np.float32(0))
            new = w[i, j] + rp[_ETA] * f * sign * abs(d) ** power
            if levels.shape[0]:                          # snap to the nearest level (first)
                best = 0
                for q in range(1, levels.shape[0]):
                    if abs(new - levels[q]) < abs(new - levels[best]):
                        best = q
                new = levels[best]
            elif rp[_NOISE] > 0:
                new = new * (np.float32(1) + _wta_noise(key, i * w.shape[1] + j, rp))
            w[i, j] = _clip(new, rp[_W_MIN], rp[_W_MAX])


_UNITS = np.float32(INT_THRESHOLD_UNITS)


@njit(cache=True)
def _round(v, key, index, shift):
    """PostPreInt's stochastic rounding of ``v / 2**shift`` with the bits of ``index``."""
    mask = (1 << shift) - 1
    frac = v & mask
    if frac == 0:                       # exact: no draw needed (most traces have decayed to 0)
        return v >> shift
    u = np.int64(_bits(key, index)) & mask
    return (v >> shift) + (1 if u < frac else 0)


@njit(cache=True)
def _int_synapse(w, s_pre, s_post, x_pre, x_post, halve, index, plane, key, ip):
    """The new weight of one synapse after one step of postpre_int (as rules.py)."""
    v = np.int64(w)           # (the kernel is also compiled for float weights, never run)
    if s_pre:
        v -= _round(ip[_I_NU_PRE] * x_post, key, index, ip[_SHIFT])
    if s_post:
        v += _round(ip[_I_NU_POST] * x_pre, key, plane + index, ip[_SHIFT])
    if halve:
        v >>= 1
    return min(max(v, ip[_I_W_MIN]), ip[_I_W_MAX])


@njit(cache=True)
def _int_rule_step(w, pre, spiking, k, post, theta, x_pre, x_post, halve, cols, c, rp, ip,
                   seed0, t):
    """One step of postpre_int: integer traces, then the synapses that can change.

    Those are in the rows of the spiking inputs, and there only in the
    columns ``cols`` of neurons with a nonzero trace (the integer traces
    decay to 0 within about 100 steps), that spiked, or that are over
    ``max_threshold`` (halved); and in the columns of the neurons that
    spiked or are halved.
    """
    for x, spikes in ((x_pre, pre), (x_post, post > 0)):
        for i in range(x.shape[0]):
            x[i] = ip[_SPIKE] if spikes[i] else (ip[_TRACE_DECAY] * x[i]) >> ip[_SHIFT_TRACE]
    n_pre, n_post = w.shape
    m = 0
    for j in range(n_post):
        halve[j] = ((c[_V_THRESH] + theta[j]) - c[_V_REST]) * _UNITS > rp[_MAX_THRESHOLD]
        if x_post[j] != 0 or post[j] > 0 or halve[j]:
            cols[m] = j
            m += 1
    key, plane = _bits_key(seed0, t), n_pre * n_post
    for a in range(k):
        i = spiking[a]
        for b in range(m):
            j = cols[b]
            w[i, j] = _int_synapse(w[i, j], True, post[j] > 0, x_pre[i], x_post[j], halve[j],
                                   i * n_post + j, plane, key, ip)
    for j in range(n_post):
        if post[j] > 0 or halve[j]:
            for i in range(n_pre):
                if not pre[i]:                           # the spiking rows are done
                    w[i, j] = _int_synapse(w[i, j], False, post[j] > 0, x_pre[i], x_post[j],
                                           halve[j], i * n_post + j, plane, key, ip)


@njit(cache=True)
def _clip_all(w, lo, hi):
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            w[i, j] = _clip(w[i, j], lo, hi)


@njit(cache=True)
def _column_sums(w, absolute):
    total = np.zeros(w.shape[1], np.float32)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            total[j] += abs(w[i, j]) if absolute else w[i, j]
    return total


@njit(cache=True)
def normalize_clamp(w, w_norm, lo, hi):
    """rules._normalize_clamp in place: columns to ``sum |w| = w_norm``, then clamp."""
    total = _column_sums(w, True)
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            q = w[i, j] / total[j] if total[j] != 0 else np.float32(0)
            w[i, j] = _clip(w_norm * q, lo, hi)


@njit(cache=True)
def normalize_columns(w, target):
    """network.normalize_columns in place: columns with a positive sum to sum to ``target``."""
    total = _column_sums(w, False)
    scale = np.ones(w.shape[1], np.float32)
    for j in range(w.shape[1]):
        if total[j] > 0:
            scale[j] = target / max(total[j], np.float32(1e-12))
    for i in range(w.shape[0]):
        for j in range(w.shape[1]):
            if total[j] > 0:
                w[i, j] = w[i, j] * scale[j]


@njit(cache=True)
def train_sample_kernel(w, theta, trains, c, one_spike, lc, seed0, kind, rp, ip, levels,
                        counts):
    """Simulate one sample and learn, in place on ``w`` (n_input, n_exc) and ``theta``.

    ``trains`` (steps, n_input) are the input spikes, ``c`` the network's
    constants (kernels.neuron_constants), ``lc`` the learning constants
    (theta decay per step, theta_plus, theta decay over the rest, the
    per-sample column normalisation target or 0, the factor from stored
    weights to membrane units), ``seed0`` the first int32 of the rule's
    random seed (the second is the step), ``kind``, ``rp``, ``ip``,
    ``levels`` the rule (fast_rule). ``w`` is int32 for postpre_int, else
    float32. Adds the excitatory spikes to ``counts``. Same order as the XLA
    path: neurons, theta, rule, and after the last step the rule's end of
    sample, the normalisation and the rest's theta decay.
    """
    n_in, n = w.shape
    v, ref, s = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    vi, refi, si = np.empty(n, np.float32), np.empty(n, np.float32), np.empty(n, np.float32)
    current, v_fired = np.empty(n, np.float32), np.empty(n, np.float32)
    reset_neurons(c, v, ref, s, vi, refi, si)
    x_pre, x_post = np.zeros(n_in, np.float32), np.zeros(n, np.float32)
    xi_pre, xi_post = np.zeros(n_in, np.int64), np.zeros(n, np.int64)   # postpre_int
    halve, cols = np.zeros(n, np.bool_), np.empty(n, np.int64)
    age = np.full(n_in, _NEVER, np.int32)
    window = np.empty(n_in, np.float32)
    spiking, fired = np.empty(n_in, np.int64), np.empty(n, np.int64)
    for t in range(trains.shape[0]):
        pre = trains[t]
        k = 0
        for i in range(n_in):
            if pre[i]:
                spiking[k] = i
                k += 1
        add_rows(w, spiking, k, lc[_W_SCALE], current)
        step_neurons(c, one_spike, current, theta, v, ref, s, vi, refi, si, v_fired)
        m = 0
        for j in range(n):
            theta[j] = theta[j] * lc[_THETA_DECAY] + lc[_THETA_PLUS] * s[j]
            if s[j] > 0:
                fired[m] = j
                m += 1
                counts[j] += 1
        if kind == EXPONENTIAL_WTA:
            _wta_step(w, pre, s, fired, m, v_fired, age, rp, levels, window, seed0, t)
            continue
        if kind == POSTPRE_INT:
            _int_rule_step(w, pre, spiking, k, s, theta, xi_pre, xi_post, halve, cols, c, rp,
                           ip, seed0, t)
        else:
            _trace_rule_step(kind, w, pre, spiking, k, s, fired, m, x_pre, x_post, rp)
        if kind == NEAREST_ONLINE:
            normalize_clamp(w, rp[_W_NORM], rp[_W_MIN], rp[_W_MAX])
        elif t == 0 and kind != FULL_ONLINE:
            # the TF rules clamp every synapse every step; after the first step only
            # the synapses updated since can lie outside the bounds
            _clip_all(w, rp[_W_MIN], rp[_W_MAX])
    if kind == FULL_ONLINE:
        normalize_clamp(w, rp[_W_NORM], rp[_W_MIN], rp[_W_MAX])
    elif lc[_NORMALIZE_TO] > 0:
        normalize_columns(w, lc[_NORMALIZE_TO])
    for j in range(n):
        theta[j] = theta[j] * lc[_REST_DECAY]
