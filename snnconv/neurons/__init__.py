"""Neuron models: pure step functions plus thin objects the Spike* layers use.

A neuron model is a small class with ``get_config()``, ``run(currents)``
(the whole time loop of a batch, compiled with the caller's graph) and a
``spike_amplitude``. Layers create one from a plain dict with
:func:`make_neuron`, so a converted network serializes as JSON and a new
neuron model is one new module registered here.
"""
from .integrate_fire import IFNeuron, IFParams, IFState, if_step
from .ttfs import TTFSNeuron, TTFSParams, TTFSState, ttfs_step
from .ttfs_exact import (TTFSExactNeuron, TTFSExactParams, TTFSExactState, ttfs_exact_fire,
                         ttfs_exact_step)

NEURON_MODELS = {"if": IFNeuron, "ttfs": TTFSNeuron, "ttfs_exact": TTFSExactNeuron}


def make_neuron(config: dict | None):
    """Build a neuron object from ``{"model": name, **params}``."""
    if config is None:
        return None
    config = dict(config)
    model = config.pop("model", "if")
    try:
        cls = NEURON_MODELS[model]
    except KeyError:
        raise ValueError(
            f"unknown neuron model {model!r}; known: {', '.join(NEURON_MODELS)}") from None
    return cls(**config)


__all__ = ["IFNeuron", "IFParams", "IFState", "if_step", "TTFSNeuron", "TTFSParams",
           "TTFSState", "ttfs_step", "TTFSExactNeuron", "TTFSExactParams", "TTFSExactState",
           "ttfs_exact_fire", "ttfs_exact_step", "make_neuron", "NEURON_MODELS"]
