"""The QCFS activation: train an ANN that converts to a rate-coded SNN in few steps.

Quantisation-clip-floor-shift (Bu et al., ICLR 2022, "Optimal ANN-SNN
conversion for high-accuracy and ultra-low-latency spiking neural networks")
replaces ReLU during training by what ``L`` steps of an integrate-and-fire
neuron compute::

    h(x) = λ · clip(floor(x · L / λ + 1/2) / L, 0, 1)

with a trainable threshold ``λ`` (one per layer). An IF neuron with threshold
``λ``, reset by subtraction and initial potential ``λ/2``, driven by the
constant current ``x`` for ``L`` steps, fires exactly ``L · h(x) / λ`` times;
over other numbers of steps the expected error is still zero. The converter
recognises the layer (:mod:`snnconv.parsing`): its ``λ`` becomes the layer's
normalisation scale (no data needed) and its neurons start at half the
threshold (:mod:`snnconv.simulators.ini.builder`).

Training: ``floor`` passes gradients straight through, so inside ``(0, λ)``
``dh/dx = 1`` and ``dh/dλ = (h - x) / λ`` (the quantisation error), above it
``dh/dλ = 1``. Use it where the model had a ReLU::

    x = keras.layers.Conv2D(16, 3)(x)
    x = snnconv.layers.QCFS(levels=4)(x)

``snnconv.layers`` must be imported before loading a saved model that holds
it (``snnconv.load_model`` does so).
"""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="snnconv")
class QCFS(keras.layers.Layer):
    """``λ · clip(floor(x · levels / λ + 1/2) / levels, 0, 1)`` with a trainable ``λ``.

    ``levels``: the number of quantisation steps ``L`` (> 0); ``initial_threshold``:
    ``λ`` before training (the weight ``threshold`` holds the trained value).
    """

    def __init__(self, levels: int = 4, initial_threshold: float = 4.0, **kwargs):
        super().__init__(**kwargs)
        if int(levels) < 1:
            raise ValueError(f"QCFS {self.name!r}: levels must be at least 1, got {levels}")
        if not float(initial_threshold) > 0:
            raise ValueError(f"QCFS {self.name!r}: initial_threshold must be positive, "
                             f"got {initial_threshold}")
        self.levels = int(levels)
        self.initial_threshold = float(initial_threshold)

    def build(self, input_shape):
        self.threshold = self.add_weight(
            name="threshold", shape=(), trainable=True,
            initializer=keras.initializers.Constant(self.initial_threshold))
        self.built = True

    def call(self, x):
        lam = ops.maximum(ops.cast(self.threshold, x.dtype), 1e-6)
        u = x * (self.levels / lam) + 0.5
        floored = u + ops.stop_gradient(ops.floor(u) - u)     # straight through
        return lam * ops.clip(floored / self.levels, 0.0, 1.0)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "levels": self.levels,
                "initial_threshold": self.initial_threshold}
