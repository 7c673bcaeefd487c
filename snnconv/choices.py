"""The allowed values of snnconv's settings, each list in one place.

A light module (no TensorFlow): the config validates against these lists,
and the modules that implement each setting import them from here.
"""

# spike codes:
# * rate: the firing rate of IF neurons carries the activation;
# * ttfs: time to first spike, every neuron fires at most once;
# * ttfs_dyn_thresh: ttfs with a dynamic threshold (missing-impulse tracking);
# * ttfs_exact: one spike or none per neuron in per-layer time windows, the exact
#   mapping of a ReLU network (Stanojevic et al. 2023/2024).
SPIKE_CODES = ("rate", "ttfs", "ttfs_dyn_thresh", "ttfs_exact")
# names other tools use for the same codes
SPIKE_CODE_ALIASES = {"temporal_mean_rate": "rate"}

# target simulators that simulation.simulator offers (the registry,
# snnconv.simulators.SIMULATORS, holds their classes under these names); a
# list, since snnconv.simulators.register_simulator adds a new backend's name
SIMULATORS = ["INI", "xylo", "brian2", "event"]

# optional packages a simulator needs: name -> (module it imports, how to install it)
SIMULATOR_REQUIRES = {
    "brian2": ("brian2", "install it with: pip install 'snnconv[brian2]' (Brian 2.9 needs "
                         "numpy < 2, so use a separate virtual environment if TensorFlow's "
                         "numpy 2 is needed elsewhere)"),
}

# activations of IR nodes and Spike* layers
ACTIVATIONS = ("linear", "relu", "softmax")

# IF neurons
RESET_MODES = ("subtraction", "zero", "to_value")
RESET_ALIASES = {"reset by subtraction": "subtraction", "reset to zero": "zero"}
THRESHOLD_MODES = ("inclusive", "strict")

# t_aware: each layer's scale minimises the error of a T-step quantised activation
NORMALIZATION_METHODS = ("max", "percentile", "t_aware")
# post-conversion calibration (snnconv.calibration)
CALIBRATION_METHODS = ("none", "light", "advanced")
DISTRIBUTE_MODES = ("auto", "off", "multi_worker")
# how the INI simulator runs a batch (simulation.engine; snnconv.simulators.ini.engine)
ENGINES = ("auto", "graph", "xla")
XYLO_QUANTIZATION = ("global", "per_channel")
BRIAN2_CODEGEN_TARGETS = ("numpy", "cython")
STDP_RULES = ("postpre", "weight_dependent", "nearest_online", "full_online", "postpre_int",
              "exponential_wta")

# trained networks (snnconv train): surrogate spike functions (snnconv.surrogates),
# SynNet readouts, losses over time (snnconv.losses; auto: max_ce for a membrane
# readout, count_ce for a spiking one) and learning-rate schedules
SURROGATES = ("periodic_exponential", "step_pwl", "fast_sigmoid", "arctan", "straight_through")
SYNNET_OUTPUTS = ("vmem", "spikes")
TRAINING_LOSSES = ("auto", "max_ce", "mean_ce", "count_ce")
TRAINING_SCHEDULES = ("cosine", "constant")
