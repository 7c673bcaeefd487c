"""The spike codes snnconv knows (a light module: the config imports it without TensorFlow).

* ``rate``: the firing rate of IF neurons carries the activation;
* ``ttfs``: time to first spike, every neuron fires at most once;
* ``ttfs_dyn_thresh``: ttfs with a dynamic threshold (missing-impulse tracking).
"""

SPIKE_CODES = ("rate", "ttfs", "ttfs_dyn_thresh")
# names other tools use for the same codes
SPIKE_CODE_ALIASES = {"temporal_mean_rate": "rate"}
