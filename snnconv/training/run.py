"""``snnconv train CONFIG``: train a SynNet, deploy it to Xylo, write the run folder.

The stage, as :func:`train` (the Python form of the command):

1. the data (:mod:`.data`): events, or waveforms through the front end;
2. the SynNet of ``[synnet]`` (checked against the chip of ``[xylo]``
   before any training, so a network that cannot fit fails at once);
3. :func:`~snnconv.training.fit.train_synnet` with ``[training]``, keeping a
   checkpoint after every epoch in ``.<run folder>.checkpoint/`` beside the
   run folder: an interrupted run (Ctrl-C) leaves it there, and the same
   command resumes from the last finished epoch (a changed config starts
   afresh);
4. the test split evaluated three ways: the float network, the float
   network with the quantized weights and thresholds, and the integer chip
   simulation of the exported specification;
5. the run folder, written whole or not at all (:func:`snnconv.results.staged_run_dir`):
   ``config.ini``, ``synnet.keras``, ``xylo.npz`` (the specification:
   Rockpool's keys, plus ``snnconv_*`` keys that :func:`snnconv.simulators.xylo.load_xylo`
   reads), ``history.csv`` (loss and accuracy per epoch), ``summary.json``,
   ``training.png`` and ``confusion.png``.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError


@dataclasses.dataclass
class TrainOutcome:
    run_dir: Path
    model: object                 # the trained SynNet
    xylo: object                  # its XyloNetwork
    accuracy: dict                # "float", "quantized", "chip" -> test accuracy
    summary: dict
    data: object                  # the EventData trained and tested on


def build_synnet(config, num_classes: int, num_channels: int):
    """The SynNet of ``config.synnet`` (time step ``frontend.dt``); a bad combination
    of keys is a :class:`ConfigError` naming the section."""
    from ..networks import SynNet
    options = config.synnet.options()
    if options["output"] == "vmem":
        if options["threshold_out"] is not None:
            raise ConfigError("synnet.threshold_out applies only to synnet.output = spikes "
                              "(a membrane readout does not fire); leave it empty")
    try:
        return SynNet(num_classes, num_channels, dt=config.frontend.dt, **options)
    except ValueError as e:
        raise ConfigError(f"[synnet] / frontend.dt: {str(e).removeprefix('SynNet: ')}") from None


def checkpoint_dir(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.checkpoint"


def _prepare_checkpoint(folder: Path, config_text: str, say) -> None:
    """Keep ``folder`` when it holds an interrupted run of this very config; else
    start it afresh."""
    marker = folder / "config.ini"
    if folder.exists():
        if marker.is_file() and marker.read_text() == config_text \
                and (folder / "backup").exists():
            say(f"resuming the interrupted training in {folder}")
            return
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    marker.write_text(config_text)


def train(config, progress: bool = True) -> TrainOutcome:
    """Run ``snnconv train`` for a loaded :class:`~snnconv.config.Config`."""
    import keras

    from ..evaluation import evaluate
    from ..results import check_run_dir, staged_run_dir
    from ..simulators.xylo.from_synnet import dequantized, to_xylo
    from .data import load_event_data
    from .fit import train_synnet
    from .report import draw_confusion, draw_history, format_table

    verbose = config.output.verbose
    say = print if verbose >= 1 else (lambda *a, **k: None)
    run_dir = Path(config.paths.log_dir_of_current_run)
    check_run_dir(run_dir, config.output.overwrite)
    tr = config.training
    data = load_event_data(config.paths.dataset_path, config.frontend.options(),
                           num_train=tr.num_train, num_test=config.simulation.num_to_test)
    say(f"data: {len(data.x_train)} training and {len(data.x_test)} test samples of "
        f"{data.x_train.shape[1]} steps x {data.num_channels} channels, "
        f"{data.num_classes} classes ({data.source})")
    keras.utils.set_random_seed(tr.seed)
    model = build_synnet(config, data.num_classes, data.num_channels)
    chip, quantization = config.xylo.chip, config.xylo.quantization
    to_xylo(model, chip=chip, quantization=quantization)      # fits the chip? (before training)

    ckpt = checkpoint_dir(run_dir)
    config_text = config.to_ini()
    _prepare_checkpoint(ckpt, config_text, say)
    start = time.perf_counter()
    history = train_synnet(
        model, data.x_train, data.y_train, epochs=tr.epochs, batch_size=tr.batch_size,
        learning_rate=tr.learning_rate, validation_split=tr.validation_split,
        loss=None if tr.loss == "auto" else tr.loss, schedule=tr.schedule, seed=tr.seed,
        checkpoint_dir=ckpt, verbose=_keras_verbosity(progress, verbose))
    train_seconds = time.perf_counter() - start

    xylo = to_xylo(model, chip=chip, quantization=quantization)
    results = {}
    for name, net in (("float", model), ("quantized", dequantized(model, xylo)),
                      ("chip", xylo)):
        results[name] = evaluate(net, data.x_test, data.y_test,
                                 batch_size=config.simulation.batch_size, progress=progress)
    accuracy = {k: r.accuracy for k, r in results.items()}
    epochs = _history_rows(ckpt / "history.csv")
    summary = {
        "task": "train", "network": "SynNet", "data": data.source,
        "classes": data.classes, "num_train": int(len(data.x_train)),
        "num_test": int(len(data.x_test)), "num_steps": int(data.x_train.shape[1]),
        "dt": config.frontend.dt, "epochs": tr.epochs, "train_seconds": train_seconds,
        "seconds_per_epoch": train_seconds / max(1, len(epochs) or tr.epochs),
        "accuracy": accuracy,
        "accuracy_drop_chip_pp": 100 * (accuracy["float"] - accuracy["chip"]),
        "spikes_per_sample": {k: r.total_spikes for k, r in results.items()},
        "xylo_chip": xylo.spec.chip, "xylo_quantization": quantization,
        "fit_report": xylo.fit_report().splitlines(), "history": epochs,
        "trainable_parameters": int(sum(np.prod(w.shape) for w in model.trainable_weights)),
    }
    with staged_run_dir(run_dir, config.output.overwrite) as stage:
        (stage / "config.ini").write_text(config_text)
        model.save(stage / "synnet.keras")
        xylo.save(stage / "xylo.npz")
        if (ckpt / "history.csv").is_file():
            shutil.copy(ckpt / "history.csv", stage / "history.csv")
        (stage / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        if config.output.plot:
            draw_history(epochs, stage / "training.png")
            draw_confusion({k: r.predictions for k, r in results.items()}, data.y_test,
                           data.classes, stage / "confusion.png")
    shutil.rmtree(ckpt, ignore_errors=True)
    if verbose >= 1:
        print(format_table(summary))
    del history
    return TrainOutcome(run_dir, model, xylo, accuracy, summary, data)


def _keras_verbosity(progress: bool, verbose: int):
    """A progress bar per epoch on a terminal, one line per epoch in a log, none at 0."""
    import sys
    if verbose < 1:
        return 0
    return 1 if progress and sys.stdout.isatty() else 2


def _history_rows(path: Path) -> list[dict]:
    """The per-epoch rows of Keras's CSV log (numbers as floats)."""
    import csv
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    def number(v):
        try:
            return float(v)
        except (TypeError, ValueError):
            return None
    return [{k: (int(v) if k == "epoch" else number(v)) for k, v in row.items()
             if number(v) is not None} for row in rows]


__all__ = ["train", "TrainOutcome", "build_synnet"]
