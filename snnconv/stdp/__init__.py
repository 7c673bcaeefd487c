"""Unsupervised STDP networks (Diehl & Cook 2015), trained and evaluated by snnconv.

* :mod:`.rules` — the learning rules, selectable by name;
* :mod:`.network` — the network's parameters and its neuron dynamics;
* :mod:`.training` — training sample by sample, batched inference, labelling;
* :mod:`.labels` — neuron labels and the two voting schemes;
* :mod:`.model` — the trained network, saved and loaded as ``.npz``;
* :mod:`.simulator` — the ``stdp`` registry entry used by the evaluation;
* :mod:`.run` — ``snnconv run`` with ``[stdp] enabled = true``.
"""
from .labels import all_activity_scores, assign_labels, proportion_scores
from .model import STDPNetwork, load_stdp
from .network import NetworkParams
from .training import label_neurons, new_network, run_batch, spike_counts, train

__all__ = ["NetworkParams", "STDPNetwork", "all_activity_scores", "assign_labels",
           "label_neurons", "load_stdp", "new_network", "proportion_scores", "run_batch",
           "spike_counts", "train"]
