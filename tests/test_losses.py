"""Losses and metrics over time against a direct numpy computation."""
import keras
import numpy as np
import pytest

from snnconv import losses as L

RNG = np.random.default_rng(0)
Y_PRED = RNG.normal(0, 2, (5, 7, 3)).astype(np.float32)
Y = np.array([0, 2, 1, 1, 0])


def cross_entropy(logits, y):
    z = logits - logits.max(axis=1, keepdims=True)
    return np.mean(np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(y)), y])


@pytest.mark.parametrize("loss, reduce", [(L.MaxOverTimeCrossEntropy(), np.max),
                                          (L.MeanOverTimeCrossEntropy(), np.mean),
                                          (L.SpikeCountCrossEntropy(scale=0.5), np.sum)])
def test_cross_entropy_over_time(loss, reduce):
    scale = loss.scale
    expected = cross_entropy(scale * reduce(Y_PRED, axis=1), Y)
    assert float(loss(Y, Y_PRED)) == pytest.approx(expected, rel=1e-5)
    one_hot = np.eye(3)[Y]
    assert float(loss(one_hot, Y_PRED)) == pytest.approx(expected, rel=1e-5)
    again = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(again) is type(loss) and again.scale == scale


def test_temporal_accuracy():
    metric = L.TemporalAccuracy("max")
    metric.update_state(Y, Y_PRED)
    assert float(metric.result()) == pytest.approx(np.mean(Y_PRED.max(axis=1).argmax(1) == Y))
    with pytest.raises(ValueError, match="unknown loss"):
        L.get_loss("hinge")
