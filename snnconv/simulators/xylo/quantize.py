"""Float network in Xylo's layout -> integer weights, thresholds and biases.

Every hidden neuron sees its inputs through its synaptic current in units
of (effective weight) = ``w << shift``. Scaling a neuron's incoming weights,
its bias and its threshold by one factor leaves its spikes unchanged, so
quantization picks that factor:

* ``global``: one factor for all hidden neurons (input and recurrent
  weights, biases, thresholds), its own one for the readout;
* ``per_channel``: one factor per neuron (each column of the weight
  matrices, with that neuron's bias and threshold).

The factor makes the largest weight ±127 (int8), unless a threshold or
bias would then overflow int16, in which case it is lowered until they
fit. The weight shift multiplies thresholds and biases by ``2**shift``
relative to the weights, which buys them resolution (and makes the one-LSB
minimum leak negligible); ``auto`` picks the largest shift that keeps every
threshold at most 1/8 of the int16 range, so the membrane and the summed
synaptic currents keep room for several thresholds' worth of input.
"""
from __future__ import annotations

import numpy as np

from ...choices import XYLO_QUANTIZATION as QUANTIZATION_METHODS  # noqa: F401 (network.py reads it here)
from .spec import INT16, WEIGHT_SHIFT

THRESHOLD_HEADROOM = 8       # auto shift: thresholds <= 32767 / 8
WEIGHT_MAX = 127


def _factors(w_cols: np.ndarray, threshold, bias, shift: int, per_channel: bool):
    """Scale factor(s) mapping float units to integer weight units."""
    absmax = np.abs(w_cols).max(axis=0) if per_channel else np.abs(w_cols).max()
    absmax = np.where(absmax > 0, absmax, 1.0)
    f = WEIGHT_MAX / absmax
    level = np.maximum(np.abs(threshold), np.abs(bias)) * 2.0 ** shift
    if not per_channel:
        level = level.max()
    with np.errstate(divide="ignore"):
        cap = np.where(level > 0, INT16[1] / np.maximum(level, 1e-300), np.inf)
    return np.minimum(f, cap)


def auto_shift(w_cols, threshold, bias, per_channel: bool) -> int:
    """Largest shift with every threshold <= 32767 / THRESHOLD_HEADROOM (0 if none is)."""
    best = 0
    for shift in range(WEIGHT_SHIFT[0], WEIGHT_SHIFT[1] + 1):
        f = _factors(w_cols, threshold, bias, shift, per_channel)
        if np.max(np.abs(threshold) * f * 2.0 ** shift) <= INT16[1] / THRESHOLD_HEADROOM:
            best = shift
    return best


def quantize_population(w_cols: np.ndarray, threshold: np.ndarray, bias: np.ndarray,
                        method: str, shift):
    """Quantize the incoming weights ``(pre, post)`` and per-neuron values of one population.

    Returns ``(int weights, int thresholds, int biases, shift, factors)``;
    ``factors`` per post neuron (equal under ``global``).
    """
    per_channel = method == "per_channel"
    if shift == "auto":
        shift = auto_shift(w_cols, threshold, bias, per_channel)
    shift = int(shift)
    f = np.broadcast_to(_factors(w_cols, threshold, bias, shift, per_channel),
                        threshold.shape).astype(np.float64)
    w = np.clip(np.round(w_cols * f), -128, WEIGHT_MAX).astype(np.int8)
    th = np.clip(np.round(threshold * f * 2.0 ** shift), 1, INT16[1]).astype(np.int16)
    b = np.clip(np.round(bias * f * 2.0 ** shift), *INT16).astype(np.int16)
    return w, th, b, shift, f


def relative_error(exact: np.ndarray, approx: np.ndarray) -> float:
    """RMS of the error over the RMS of the exact values (0 for an all-zero block)."""
    scale = np.sqrt(np.mean(np.square(exact))) if exact.size else 0.0
    return float(np.sqrt(np.mean(np.square(approx - exact))) / scale) if scale > 0 else 0.0
