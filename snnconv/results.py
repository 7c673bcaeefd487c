"""The run directory: what a run leaves behind, written so that it is never half there.

Layout of ``<run dir>/``:

* ``config.ini`` — the fully resolved configuration;
* ``summary.json`` — headline figures (see :func:`summary`);
* ``results.h5`` — ``accuracy_per_step``, ``top_k_accuracy_per_step``,
  ``time`` (each ``(T,)``), ``synops_per_step`` ``(T,)``,
  ``decision_steps`` ``(N,)`` (TTFS codes: step of each sample's first
  output spike, 0 if none),
  ``spikes_per_step/<layer>`` ``(T,)`` (mean spikes per sample in each step),
  ``normalization/<node>`` (the scale λ of each node),
  ``ann_vs_snn/<layer>/ann`` and ``/snn`` (rate code: normalised ANN
  activations and SNN rates × spike amplitude of up to 2000 sample-neuron
  pairs, attribute ``correlation``),
  ``samples/<layer>/`` (the first few samples: ``neurons`` (n,) indices of
  the recorded neurons in the flattened layer, ``spikes`` (K, T, n) spikes
  per step, ``v`` (K, T, n) membrane potential and ``v_thresh`` for IF
  neurons, ``first_spike_steps`` (K, N) of every neuron for TTFS, 0 = never);
  file attributes hold ``config`` (the resolved config, the text of
  ``config.ini``),
  ``ann_accuracy``, ``num_samples``, ``num_steps``, ``dt``, ``top_k``,
  ``ann_macs``, ``neurons_<layer>``;
* PNG plots drawn from ``results.h5`` by :func:`snnconv.report.draw_report`
  (``accuracy.png``, ``spikes_per_layer.png``, ``synops.png``,
  ``raster.png``; ``decision_times.png`` and ``first_spike_times.png`` for
  TTFS codes; ``ann_vs_snn.png`` and ``membrane.png`` for the rate code);
* the converted SNN (``filename_snn``, ``.keras``).

Everything is first written into a hidden sibling folder, which replaces
the run directory only once complete: an interrupted run leaves the old
directory (or none) and a ``.partial`` folder, never a truncated result.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path

import numpy as np

from .errors import SnnconvError
from .evaluation import EvaluationResult


@dataclasses.dataclass
class RunOutcome:
    """What :func:`snnconv.run` returns."""

    run_dir: Path | None            # None after a check-only run
    summary: dict
    ann_accuracy: float | None
    result: EvaluationResult | None  # when simulated
    snn: object                     # the converted (or trained, or loaded) network


@contextlib.contextmanager
def staged_run_dir(run_dir: Path, overwrite: bool = True):
    """Yield a scratch folder; on success it becomes ``run_dir``, on failure it goes."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not overwrite:
        raise SnnconvError(f"run directory {run_dir} exists and output.overwrite is false")
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    if run_dir.exists():
        old = run_dir.parent / f".{run_dir.name}.old-{os.getpid()}"
        run_dir.rename(old)
        stage.rename(run_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        stage.rename(run_dir)


def summary(result: EvaluationResult | None, ann_accuracy: float | None,
            scales: dict | None = None, extra: dict | None = None) -> dict:
    """Headline figures of a run as plain JSON types."""
    out: dict = {"ann_accuracy": ann_accuracy}
    if result is not None:
        t = result.num_steps
        checkpoints = sorted({max(1, round(t * f)) for f in (0.1, 0.25, 0.5, 0.75, 1.0)})
        within = (None if ann_accuracy is None
                  else result.steps_to_reach(ann_accuracy - 0.01))
        out.update({
            "num_samples": result.num_samples,
            "num_steps": t,
            "dt": result.dt,
            "duration": t * result.dt,
            "snn_accuracy": result.accuracy,
            f"snn_top_{result.top_k}_accuracy": result.top_k_accuracy,
            "snn_accuracy_at_step": {str(s): result.accuracy_at(s) for s in checkpoints},
            "steps_to_within_1pt_of_ann": within,
            "spikes_per_sample": result.total_spikes,
            "num_neurons": int(sum(result.neurons.values())),
            "spikes_per_neuron": result.spikes_per_neuron,
            "synops_per_sample": result.synops,
            "ann_macs_per_sample": result.ann_macs,
            "synops_per_ann_mac": _finite(result.synops_per_ann_mac),
        })
        if result.decision_steps is not None:
            out["decided_fraction"] = result.decided_fraction
            out["mean_decision_time"] = result.mean_decision_time
    if scales:
        out["normalization_scales"] = {k: np.asarray(v).tolist() for k, v in scales.items()}
    if extra:
        out.update(extra)
    return out


def write_results(folder: Path, result: EvaluationResult | None, ann_accuracy: float | None,
                  config_text: str, scales: dict | None = None, plot: bool = True,
                  extra: dict | None = None, ann_vs_snn: dict | None = None,
                  samples: dict | None = None) -> dict:
    """Write config, HDF5 results, plots and summary (last) into ``folder``."""
    folder = Path(folder)
    (folder / "config.ini").write_text(config_text)
    if result is not None:
        _write_h5(folder / "results.h5", result, ann_accuracy, scales or {}, ann_vs_snn or {},
                  samples or {}, config_text)
        if plot:   # drawn from the log, exactly as `snnconv report` redraws them
            from .report import draw_report
            draw_report(folder)
    if ann_vs_snn:
        extra = {**(extra or {}), "ann_vs_snn_correlation": {
            k: _finite(v["correlation"]) for k, v in ann_vs_snn.items()}}
    data = summary(result, ann_accuracy, scales, extra)
    (folder / "summary.json").write_text(json.dumps(data, indent=2) + "\n")
    return data


def _write_h5(path: Path, r: EvaluationResult, ann_accuracy, scales, ann_vs_snn,
              samples, config_text: str) -> None:
    import h5py
    with h5py.File(path, "w") as f:
        f["accuracy_per_step"] = r.accuracy_per_step
        f["top_k_accuracy_per_step"] = r.top_k_accuracy_per_step
        f["time"] = r.time
        f["synops_per_step"] = r.synops_per_step
        if r.decision_steps is not None:
            f["decision_steps"] = r.decision_steps
        g = f.create_group("spikes_per_step", track_order=True)   # network order
        for name, v in r.spikes_per_step.items():
            g[name] = v
        g = f.create_group("normalization")
        for name, v in scales.items():
            g[name] = np.asarray(v, dtype=np.float64)
        if samples:
            g = f.create_group("samples", track_order=True)
            for layer, rec in samples.items():
                sub = g.create_group(layer)
                for key, value in rec.items():
                    sub.create_dataset(key, data=value,
                                       compression="gzip" if np.ndim(value) > 1 else None)
        for name, p in ann_vs_snn.items():
            g = f.create_group(f"ann_vs_snn/{name}")
            g["ann"], g["snn"] = p["ann"], p["snn"]
            g.attrs["correlation"] = p["correlation"]
        f.attrs["config"] = config_text      # the resolved config, as in config.ini
        f.attrs.update(num_samples=r.num_samples, num_steps=r.num_steps, dt=r.dt,
                       top_k=r.top_k, ann_macs=r.ann_macs,
                       ann_accuracy=np.nan if ann_accuracy is None else ann_accuracy)
        for name, n in r.neurons.items():
            f.attrs[f"neurons_{name}"] = n


def _finite(v: float):
    return None if v is None or not math.isfinite(v) else v
