"""``train_synnet``: fit a temporal spiking network with backpropagation through time.

The recipe (its defaults in :data:`DEFAULTS`, chosen by measurement with
``benchmarks/train_synnet.py`` on the spoken keywords):

* Adam at a constant learning rate of 1e-3 (``schedule="cosine"`` decays it
  along a cosine to 5 % of its start over the whole run);
* cross-entropy on the maximum over time of the readout membrane for
  ``output="vmem"`` networks, on the output spike counts for spiking ones
  (:mod:`snnconv.losses`);
* inputs as they are: event counts per step (the chip's input); batch
  augmentation (:mod:`.augment`) is available but off by default, as it
  lowered test accuracy on the keywords.

Checkpoints: with ``checkpoint_dir`` the state after every finished epoch
(weights, optimizer, epoch) is kept there (``keras.callbacks.BackupAndRestore``),
and the per-epoch history in ``history.csv`` beside it; a run that was
interrupted (Ctrl-C, a killed process) resumes from the last finished epoch
when called again with the same folder. The folder's backup is removed once
training completes.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..choices import TRAINING_SCHEDULES
from ..errors import DataError
from ..evaluation import as_labels, check_labels
from ..losses import TemporalAccuracy, get_loss
from .augment import augmented_dataset

DEFAULTS = {"epochs": 30, "batch_size": 64, "learning_rate": 1e-3, "schedule": "constant",
            "final_learning_rate_fraction": 0.05}
SCHEDULES = TRAINING_SCHEDULES
# measured on the shipped front end's keyword events (30 epochs, batch 64, one seed):
# lr 1e-3 constant, no augmentation 83.5 % float / 84.0 % chip; lr 1e-3 cosine with
# Augmentation(1, 10, 0.2) 72.3 %; lr 3e-3 cosine with it 77.9 %. So none by default.
DEFAULT_AUGMENTATION = None


def check_events(x, n_channels: int, where: str = "inputs") -> np.ndarray:
    """``x`` as float32 ``(N, T, n_channels)``, or a one-line :class:`DataError`."""
    x = np.asarray(x)
    if x.ndim != 3:
        raise DataError(f"{where} must be (samples, time steps, channels), got shape {x.shape}")
    if x.shape[2] != n_channels:
        raise DataError(f"{where} have {x.shape[2]} channels, but the network has "
                        f"{n_channels} input channels")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{where} are empty (shape {x.shape})")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        raise DataError(f"{where} hold {int(np.sum(~np.isfinite(x)))} NaN or infinite values")
    return x


def _labels(y, n: int, n_classes: int, where: str) -> np.ndarray:
    labels = as_labels(y)
    if len(labels) != n:
        raise DataError(f"{where}: {n} inputs but {len(labels)} labels")
    check_labels(labels, n_classes, where)
    return labels


def default_loss(model):
    """Max-over-time cross-entropy for a membrane readout, spike counts otherwise."""
    return get_loss("max_ce" if getattr(model, "output_mode", "vmem") == "vmem" else "count_ce")


def train_synnet(model, x, y, epochs: int = DEFAULTS["epochs"],
                 batch_size: int = DEFAULTS["batch_size"],
                 learning_rate: float = DEFAULTS["learning_rate"], validation_data=None,
                 validation_split: float = 0.0, loss=None,
                 schedule: str = DEFAULTS["schedule"], seed: int | None = None,
                 augmentation="default", checkpoint_dir=None, callbacks=(), verbose="auto"):
    """Train ``model`` (a SynNet, or any Keras model over ``(batch, time, channels)``)
    on event inputs ``x`` ``(N, T, channels)`` and integer labels ``y``.

    ``validation_data``: ``(x_val, y_val)``, or ``validation_split`` (a
    fraction of ``x`` held out from the end, as Keras does). ``loss``: a
    ``keras.losses.Loss`` or a name of :data:`snnconv.losses.LOSSES` (None:
    :func:`default_loss`). ``seed``: seeds weight-free randomness (shuffling,
    dropout, noise) via ``keras.utils.set_random_seed``. ``augmentation``: an
    :class:`~snnconv.training.augment.Augmentation` of the training batches
    (``"default"``: :data:`DEFAULT_AUGMENTATION`; None: the data as it is).
    ``verbose``: Keras's
    (``"auto"``: a progress bar per epoch on a terminal, a line per epoch
    otherwise). Returns the Keras ``History``; the model is trained in place.
    """
    import keras

    n_channels = int(getattr(model, "n_channels", np.shape(x)[-1]))
    n_classes = int(getattr(model, "n_classes", 0)) or None
    x = check_events(x, n_channels)
    y = _labels(y, len(x), n_classes, "labels")
    if validation_data is not None:
        xv, yv = validation_data
        xv = check_events(xv, n_channels, "validation inputs")
        validation_data = (xv, _labels(yv, len(xv), n_classes, "validation labels"))
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    if int(epochs) < 1 or int(batch_size) < 1 or not learning_rate > 0:
        raise ValueError("epochs and batch_size must be >= 1 and learning_rate > 0")
    if seed is not None:
        keras.utils.set_random_seed(int(seed))
    if not 0.0 <= validation_split < 1.0:
        raise ValueError(f"validation_split must be in [0, 1), got {validation_split!r}")
    n_fit = len(x) - int(len(x) * validation_split)
    if validation_split and validation_data is None:      # held out from the end, as Keras
        validation_data = (x[n_fit:], y[n_fit:])
    x, y = x[:n_fit], y[:n_fit]
    steps = int(epochs) * math.ceil(n_fit / int(batch_size))
    rate = (keras.optimizers.schedules.CosineDecay(
        learning_rate, steps, alpha=DEFAULTS["final_learning_rate_fraction"])
        if schedule == "cosine" else learning_rate)
    loss = default_loss(model) if loss is None else get_loss(loss)
    over_time = getattr(loss, "over_time", "max")
    model.compile(optimizer=keras.optimizers.Adam(rate), loss=loss,
                  metrics=[TemporalAccuracy(over_time)])
    extra = []
    if checkpoint_dir is not None:
        folder = Path(checkpoint_dir)
        folder.mkdir(parents=True, exist_ok=True)
        # first, so that an epoch's checkpoint is written before any other callback runs
        extra += [keras.callbacks.BackupAndRestore(str(folder / "backup")),
                  keras.callbacks.CSVLogger(str(folder / "history.csv"), append=True)]
    extra += list(callbacks)
    if isinstance(augmentation, str) and augmentation == "default":
        augmentation = DEFAULT_AUGMENTATION
    if augmentation is not None and augmentation.active:  # None or NONE: the data as it is
        train_data = augmented_dataset(x, y, int(batch_size), augmentation,
                                       0 if seed is None else int(seed))
        return model.fit(train_data, epochs=int(epochs), validation_data=validation_data,
                         callbacks=extra, verbose=verbose, shuffle=False)
    return model.fit(x, y, batch_size=int(batch_size), epochs=int(epochs),
                     validation_data=validation_data, callbacks=extra, verbose=verbose)
