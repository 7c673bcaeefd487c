"""Augmentation of event inputs while training: what changes between speakers and recordings.

Each training batch is transformed afresh (inside the ``tf.data`` pipeline,
so the network sees a different variant every epoch):

* ``channel_shift``: the whole pattern moves by up to this many channels up
  or down (channels falling off an edge are dropped, new ones are empty).
  Adjacent band-pass channels are a fixed frequency ratio apart, so this is
  a shift of pitch and formants, the largest difference between voices;
* ``time_shift``: the pattern moves by up to this many steps in time;
* ``gain``: every count is scaled by a factor drawn from ``[1 - gain, 1 + gain]``
  per sample and rounded stochastically (integers stay integers, the mean
  is kept), then clipped to ``max_events``: a louder or quieter recording.

Integer counts stay integer counts, as the chip needs.
"""
from __future__ import annotations

import dataclasses

import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class Augmentation:
    channel_shift: int = 1
    time_shift: int = 10
    gain: float = 0.2
    max_events: float = 15.0

    @property
    def active(self) -> bool:
        return bool(self.channel_shift or self.time_shift or self.gain)


NONE = Augmentation(0, 0, 0.0)


def _shift(x, shift, axis: int):
    """Move ``x`` (B, T, C) by ``shift[b]`` along ``axis`` (1 or 2), filling with zeros."""
    if axis == 2:
        return tf.transpose(_shift(tf.transpose(x, (0, 2, 1)), shift, 1), (0, 2, 1))
    n = tf.shape(x)[1]
    idx = tf.range(n)[None, :] - shift[:, None]                   # (B, n)
    valid = tf.cast((idx >= 0) & (idx < n), x.dtype)
    idx = tf.clip_by_value(idx, 0, n - 1)
    return tf.gather(x, idx, axis=1, batch_dims=1) * valid[:, :, None]


def augment(x, aug: Augmentation, seed):
    """One augmented variant of the batch ``x`` (B, T, C); ``seed``: a stateless seed pair."""
    batch = tf.shape(x)[0]
    seeds = tf.random.experimental.stateless_split(seed, 4)
    if aug.channel_shift:
        s = tf.random.stateless_uniform((batch,), seeds[0], -aug.channel_shift,
                                        aug.channel_shift + 1, dtype=tf.int32)
        x = _shift(x, s, 2)
    if aug.time_shift:
        s = tf.random.stateless_uniform((batch,), seeds[1], -aug.time_shift,
                                        aug.time_shift + 1, dtype=tf.int32)
        x = _shift(x, s, 1)
    if aug.gain:
        g = tf.random.stateless_uniform((batch, 1, 1), seeds[2], 1.0 - aug.gain,
                                        1.0 + aug.gain, dtype=x.dtype)
        u = tf.random.stateless_uniform(tf.shape(x), seeds[3], dtype=x.dtype)
        x = tf.minimum(tf.floor(x * g + u), aug.max_events)
    return x


def augmented_dataset(x, y, batch_size: int, aug: Augmentation, seed: int):
    """Shuffled, batched ``(x, y)`` with ``aug`` applied to every batch, anew each epoch."""
    ds = tf.data.Dataset.from_tensor_slices((x, y)).shuffle(len(x), seed=seed,
                                                            reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    if aug.active:
        counter = tf.data.Dataset.random(seed=seed).batch(2)
        ds = tf.data.Dataset.zip((ds, counter)).map(
            lambda xy, s: (augment(xy[0], aug, tf.cast(s, tf.int64) % (2 ** 31)), xy[1]),
            num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)
