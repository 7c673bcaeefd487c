"""The conversion defaults: one set, read by the Python API and checked against the
config template (``config/default.ini``; ``tests/test_defaults.py`` fails when the two
drift).

Chosen by measurement (``benchmarks/defaults.py``; figures in docs/low_latency.md):
neurons start at half the threshold, which rounds each neuron's spike count
instead of flooring it, so the rate code comes within a point of the ANN in
far fewer steps and is as accurate at long durations.
"""
from __future__ import annotations

# initial membrane potential of the rate-coded IF/LIF neurons, in thresholds
V_INIT = 0.5

# snnconv.normalize
NORMALIZATION_METHOD = "percentile"
PERCENTILE = 99.9
PER_CHANNEL = False
# the duration the T-aware normalisation optimises for (method "t_aware")
NORMALIZATION_STEPS = 32

# snnconv.finetune and [finetune] (figures in docs/low_latency.md, "Fine-tuning")
FINETUNE_EPOCHS = 3
FINETUNE_BATCH_SIZE = 32
FINETUNE_LEARNING_RATE = 3e-3
FINETUNE_SURROGATE = "arctan"
