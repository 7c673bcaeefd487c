"""The Xylo target: quantization to SynSense Xylo chips and their bit-accurate simulation.

* :mod:`.spec` — the integer specification and its ``.npz`` file;
* :mod:`.dynamics` — the chip's integer neuron dynamics (pure step function);
* :mod:`.limits` — the chips' resources and the fit check;
* :mod:`.mapping` — a graph onto the input / recurrent / output matrices;
* :mod:`.quantize` — float weights to int8 / int16;
* :mod:`.network` — the converted network, its export and loader;
* :mod:`.encoding` — samples to input events;
* :mod:`.simulator` — the registry entry (evaluation runner).
"""
from .dynamics import XyloTrace, simulate_xylo, xylo_step
from .limits import CHIPS, Chip, XyloLimitError, get_chip
from .network import XyloNetwork, build_xylo_network, load_xylo
from .encoding import encode_events
from .simulator import XyloSimulator
from .spec import XyloSpec, XyloSpecError

__all__ = ["CHIPS", "Chip", "XyloLimitError", "XyloNetwork", "XyloSimulator", "XyloSpec",
           "XyloSpecError", "XyloTrace", "build_xylo_network", "encode_events", "get_chip",
           "load_xylo", "simulate_xylo", "xylo_step"]
