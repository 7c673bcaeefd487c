"""Labelling excitatory neurons by the class they answer most, and voting with them.

``counts``: spikes per sample and neuron ``(samples, n)``. A neuron's label is
the class with its highest mean count over that class's samples; a neuron
that never fired has no label (-1) and abstains.

* all-activity: a sample's score for a class is the mean count of the
  neurons labelled with it; the class with the highest score wins;
* proportion weighting: every neuron votes for every class with its count
  times the share of its responses that went to that class (its mean
  response to the class over its summed mean responses).
"""
from __future__ import annotations

import numpy as np


def class_rates(counts: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Mean count of every neuron per class ``(num_classes, n)`` (0 for absent classes)."""
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels).reshape(-1)
    rates = np.zeros((num_classes, counts.shape[1]))
    for c in range(num_classes):
        members = labels == c
        if members.any():
            rates[c] = counts[members].mean(axis=0)
    return rates


def assign_labels(counts, labels, num_classes: int):
    """``(neuron labels (n,) with -1 for silent neurons, proportions (n, num_classes))``."""
    rates = class_rates(counts, labels, num_classes)
    total = rates.sum(axis=0)
    assigned = np.where(total > 0, rates.argmax(axis=0), -1)
    proportions = np.divide(rates, total, out=np.zeros_like(rates), where=total > 0).T
    return assigned.astype(np.int64), proportions


def all_activity_scores(counts, assigned, num_classes: int) -> np.ndarray:
    """Per sample and class, the mean count of the neurons with that label ``(..., classes)``."""
    counts = np.asarray(counts, np.float64)
    members = (np.asarray(assigned)[:, None] == np.arange(num_classes)[None]).astype(np.float64)
    n = members.sum(axis=0)
    return (counts @ members) / np.where(n > 0, n, 1.0)


def proportion_scores(counts, proportions) -> np.ndarray:
    """Per sample and class, the counts weighted by every neuron's class proportions."""
    return np.asarray(counts, np.float64) @ np.asarray(proportions, np.float64)


def predict(scores: np.ndarray) -> np.ndarray:
    return np.asarray(scores).argmax(axis=-1)
