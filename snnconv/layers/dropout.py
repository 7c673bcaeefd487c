"""``TimeStepDropout``: drop single time steps of single neurons while training."""
from __future__ import annotations

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="snnconv")
class TimeStepDropout(keras.layers.Layer):
    """Sets each ``(time step, neuron)`` entry of a ``(batch, time, features)`` sequence
    to zero with probability ``rate`` while training; the identity otherwise.

    Unlike ``keras.layers.Dropout`` the kept entries are not rescaled: they
    are spike counts, which the next layer must see as they are (Rockpool's
    ``TimeStepDropout`` does the same).
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= float(rate) < 1.0:
            raise ValueError(f"TimeStepDropout {self.name!r}: rate must be in [0, 1), "
                             f"got {rate!r}")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = keras.random.uniform(ops.shape(inputs), seed=self.seed_generator) >= self.rate
        return inputs * ops.cast(keep, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
