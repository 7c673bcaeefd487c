"""Losses and metrics over time for networks whose outputs are ``(batch, time, classes)``.

A temporal network's output becomes one score per class by reducing over
time, then an ordinary classification loss applies:

* ``max``: the largest value over time (Rockpool's SynNet recipe: cross-entropy
  on the maximum of the readout membrane);
* ``mean``: the mean over time (the readout's average potential);
* ``sum``: the total over time (output spike counts).

Labels are integer classes or one-hot rows. The scores are used as logits,
scaled by ``scale`` first (a membrane potential of a few thresholds makes
a weak softmax; spike counts of tens a hard one).
"""
from __future__ import annotations

import keras
from keras import ops

REDUCTIONS = ("max", "mean", "sum")


def reduce_over_time(y_pred, over_time: str):
    if over_time == "max":
        return ops.max(y_pred, axis=1)
    if over_time == "mean":
        return ops.mean(y_pred, axis=1)
    if over_time == "sum":
        return ops.sum(y_pred, axis=1)
    raise ValueError(f"over_time must be one of {REDUCTIONS}, got {over_time!r}")


def _sparse(y_true, num_classes):
    y_true = ops.convert_to_tensor(y_true)
    if len(y_true.shape) >= 2 and y_true.shape[-1] == num_classes and num_classes > 1:
        return ops.argmax(y_true, axis=-1)
    return ops.cast(ops.reshape(y_true, (-1,)), "int32")


@keras.saving.register_keras_serializable(package="snnconv")
class TemporalCrossEntropy(keras.losses.Loss):
    """Cross-entropy of ``scale * reduce_over_time(outputs)`` as logits."""

    def __init__(self, over_time: str = "max", scale: float = 1.0, name=None, **kwargs):
        if over_time not in REDUCTIONS:
            raise ValueError(f"over_time must be one of {REDUCTIONS}, got {over_time!r}")
        super().__init__(name=name or f"{over_time}_over_time_cross_entropy", **kwargs)
        self.over_time, self.scale = over_time, float(scale)

    def call(self, y_true, y_pred):
        logits = self.scale * reduce_over_time(y_pred, self.over_time)
        labels = _sparse(y_true, logits.shape[-1])
        return keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)

    def get_config(self):
        return {**super().get_config(), "over_time": self.over_time, "scale": self.scale}


@keras.saving.register_keras_serializable(package="snnconv")
class MaxOverTimeCrossEntropy(TemporalCrossEntropy):
    """Cross-entropy on the maximum over time (of the readout membrane)."""

    def __init__(self, scale: float = 1.0, **kwargs):
        kwargs.pop("over_time", None)
        super().__init__("max", scale, **kwargs)


@keras.saving.register_keras_serializable(package="snnconv")
class MeanOverTimeCrossEntropy(TemporalCrossEntropy):
    """Cross-entropy on the mean over time (of the readout membrane)."""

    def __init__(self, scale: float = 1.0, **kwargs):
        kwargs.pop("over_time", None)
        super().__init__("mean", scale, **kwargs)


@keras.saving.register_keras_serializable(package="snnconv")
class SpikeCountCrossEntropy(TemporalCrossEntropy):
    """Cross-entropy on the output spike counts."""

    def __init__(self, scale: float = 1.0, **kwargs):
        kwargs.pop("over_time", None)
        super().__init__("sum", scale, **kwargs)


@keras.saving.register_keras_serializable(package="snnconv")
class TemporalAccuracy(keras.metrics.Metric):
    """The fraction of samples whose largest ``reduce_over_time(outputs)`` is the label's."""

    def __init__(self, over_time: str = "max", name=None, **kwargs):
        if over_time not in REDUCTIONS:
            raise ValueError(f"over_time must be one of {REDUCTIONS}, got {over_time!r}")
        super().__init__(name=name or "accuracy", **kwargs)
        self.over_time = over_time
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        scores = reduce_over_time(y_pred, self.over_time)
        labels = _sparse(y_true, scores.shape[-1])
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(scores, axis=-1), "int32"),
                                 ops.cast(labels, "int32")), "float32")
        self.correct.assign_add(ops.sum(hit))
        self.count.assign_add(ops.cast(ops.shape(hit)[0], "float32"))

    def result(self):
        return self.correct / ops.maximum(self.count, 1.0)

    def reset_state(self):
        self.correct.assign(0.0)
        self.count.assign(0.0)

    def get_config(self):
        return {**super().get_config(), "over_time": self.over_time}


LOSSES = {"max_ce": MaxOverTimeCrossEntropy, "mean_ce": MeanOverTimeCrossEntropy,
          "count_ce": SpikeCountCrossEntropy}


def get_loss(spec, scale: float = 1.0) -> keras.losses.Loss:
    """A loss from an instance or a name in :data:`LOSSES`."""
    if isinstance(spec, keras.losses.Loss):
        return spec
    try:
        return LOSSES[str(spec).lower()](scale=scale)
    except KeyError:
        raise ValueError(f"unknown loss {spec!r}; known: {', '.join(LOSSES)}") from None


__all__ = ["TemporalCrossEntropy", "MaxOverTimeCrossEntropy", "MeanOverTimeCrossEntropy",
           "SpikeCountCrossEntropy", "TemporalAccuracy", "LOSSES", "REDUCTIONS", "get_loss",
           "reduce_over_time"]
