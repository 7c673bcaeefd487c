"""The Brian 2 target: the rate-coded converted network as Brian 2 neuron groups and synapses.

* :mod:`.maps` — the graph folded into sparse synapse maps between layers with
  neurons (numpy only; no Brian 2 needed);
* :mod:`.network` — the Brian 2 ``Network`` built from those maps, run sample by sample;
* :mod:`.simulator` — the registry entry.

Brian 2 itself is optional (``pip install 'snnconv[brian2]'``) and imported
only when a network is built.
"""
from .maps import LayerPlan, SparseMap, plan_layers
from .network import BRIAN2_INSTALL_HINT, Brian2Network, build_brian2_network, require_brian2
from .simulator import Brian2Simulator

__all__ = ["BRIAN2_INSTALL_HINT", "Brian2Network", "Brian2Simulator", "LayerPlan", "SparseMap",
           "build_brian2_network", "plan_layers", "require_brian2"]
