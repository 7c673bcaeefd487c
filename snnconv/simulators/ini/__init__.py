"""The INI target: converted networks as Keras models of Spike* layers, run by TensorFlow.

* :mod:`.builder` — an IR graph -> the Spike* Keras model;
* :mod:`.engine` — the compiled time loop over a batch, and readers of a Spike* model;
* :mod:`.recording` — spike trains and potentials of a few samples;
* :mod:`.simulator` — the registry entry.
"""
from .builder import build_spiking_model
from .engine import input_layer, layer_inputs, neuron_count, output_layer, simulate_batch, \
    spiking_layers
from .simulator import IniSimulator

__all__ = ["IniSimulator", "build_spiking_model", "input_layer", "layer_inputs", "neuron_count",
           "output_layer", "simulate_batch", "spiking_layers"]
