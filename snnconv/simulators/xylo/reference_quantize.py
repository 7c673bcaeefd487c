"""Rockpool's quantization of a float Xylo network: ``global`` and ``per_channel``.

The reference arithmetic of Rockpool's ``global_quantize`` and
``channel_quantize`` (``rockpool.transform.quantize_methods``), which a
trained SynNet is deployed with:

* the hidden population (input and recurrent weights, hidden thresholds)
  is scaled by one factor ``127 / max |W|`` over both matrices (``global``)
  or one per hidden neuron, over the weights it receives (``per_channel``);
  the readout (output weights and thresholds) by its own factor(s);
* values are rounded with ``np.round`` (half to even);
* where a scaled threshold exceeds the int16 maximum 32767, the factor of
  that population (or neuron) is lowered until it fits, so the weights
  lose resolution instead of the threshold overflowing.

The last rule is why a readout threshold of ``2**15 - 1`` (Rockpool's
membrane-output SynNet) rounds every output weight to zero: the factor
becomes 1. :func:`quantize_synnet` therefore takes the readout of a
membrane-output network as a threshold of "never": its factor comes from
the output weights alone and the integer threshold is 32767.
"""
from __future__ import annotations

import numpy as np

WEIGHT_MAX = 2 ** 7 - 1        # int8 weights
THRESHOLD_MAX = 2 ** 15 - 1    # int16 thresholds


def scale_factors(w_cols: np.ndarray, threshold: np.ndarray, per_channel: bool) -> np.ndarray:
    """The factor(s) per post neuron: ``127 / max |W|``, lowered where ``θ·f > 32767``."""
    w = np.abs(np.asarray(w_cols, np.float64)).reshape(w_cols.shape[0], w_cols.shape[1], -1)
    absmax = w.max(axis=(0, 2)) if per_channel else np.full(w.shape[1], w.max())
    f = np.where(absmax > 0, WEIGHT_MAX / np.where(absmax > 0, absmax, 1.0), 1.0)
    th = np.abs(np.asarray(threshold, np.float64))
    over = th * f > THRESHOLD_MAX
    if np.any(over):
        if per_channel:
            f = np.where(over, THRESHOLD_MAX / np.where(th > 0, th, 1.0), f)
        else:
            f = np.full_like(f, min(f[0], THRESHOLD_MAX / th.max()))
    return f


def quantize(w_cols: np.ndarray, threshold: np.ndarray, per_channel: bool,
             threshold_int=None):
    """``(int weights, int thresholds, factors)`` of one population.

    ``w_cols``: ``(pre, post)`` or ``(pre, post, synapses)``; ``threshold_int``:
    fixed integer thresholds (the never-firing readout), else scaled ones.
    """
    threshold = np.asarray(threshold, np.float64)
    f = scale_factors(w_cols, threshold if threshold_int is None else np.zeros_like(threshold),
                      per_channel)
    shape = (1, -1) + (1,) * (np.ndim(w_cols) - 2)
    w = np.round(np.asarray(w_cols, np.float64) * f.reshape(shape))
    w = np.clip(w, -WEIGHT_MAX - 1, WEIGHT_MAX).astype(np.int8)
    if threshold_int is None:
        th = np.clip(np.round(threshold * f), 1, THRESHOLD_MAX)
    else:
        th = np.broadcast_to(np.asarray(threshold_int), threshold.shape)
    return w, th.astype(np.int16), f
