"""The conversion defaults: one set, read by the Python API and checked against the
config template (``config/default.ini``; ``tests/test_defaults.py`` fails when the two
drift).

Chosen by measurement (``benchmarks/defaults.py``; figures in docs/low_latency.md):
neurons start at half the threshold, which rounds each neuron's spike count
instead of flooring it, so the rate code comes within a point of the ANN in
far fewer steps and is as accurate at long durations; and each channel gets
its own scale, the 99.5th percentile of its activations, so that the weakly
active channels of deep networks spike as often as the strong ones (with one
scale per layer they carry their values in too few spikes).
"""
from __future__ import annotations

# initial membrane potential of the rate-coded IF/LIF neurons, in thresholds
V_INIT = 0.5
# cell.burst: "auto" gives the rate-coded IF/LIF neurons of a backend that takes
# bursts (INI) up to AUTO_BURST spikes a step, each worth 1/AUTO_BURST (threshold
# v_thresh / AUTO_BURST): deep networks come within a point of the ANN in far
# fewer steps, with fewer SynOps until then (docs/low_latency.md, "Several spikes
# per step"). Neurons that must be binary (other backends, the TTFS codes, reset
# to a value, refractory periods, QCFS-trained nodes) keep 1.
BURST = "auto"
AUTO_BURST = 4

# snnconv.normalize
NORMALIZATION_METHOD = "percentile"
PERCENTILE = 99.5
PER_CHANNEL = True
# the duration the T-aware normalisation optimises for (method "t_aware")
NORMALIZATION_STEPS = 32

# snnconv.finetune and [finetune] (figures in docs/low_latency.md, "Fine-tuning")
FINETUNE_EPOCHS = 3
FINETUNE_BATCH_SIZE = 32
FINETUNE_LEARNING_RATE = 3e-3
FINETUNE_SURROGATE = "arctan"
# the ANN as a teacher (snnconv run's; the API's when given one): better on all
# 10,000 Fashion-MNIST test images at T 4 and 8 than the labels alone
FINETUNE_DISTILLATION = 0.5
FINETUNE_TEMPERATURE = 2.0
FINETUNE_MAX_SHIFT = 0
