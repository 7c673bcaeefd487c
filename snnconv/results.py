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
  ``ann_vs_snn/<layer>/ann`` and ``/snn`` (normalised ANN activations and,
  for up to 2000 sample-neuron pairs, the SNN rates × spike amplitude, the
  first-spike times of the TTFS codes (NaN: none) or the values ttfs_exact's
  spikes carry; attributes ``correlation`` and, but for rates, ``snn_label``),
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
The next run of the same run directory removes the ``.partial-<pid>`` (and
``.old-<pid>``) folders of processes that no longer exist, e.g. of a run
killed with SIGKILL.

When a run's SNN accuracy ends far below the ANN's, the summary's
``advice`` says so, names the diagnostic plot and what usually helps
(:func:`accuracy_advice`).
"""
from __future__ import annotations

import configparser
import contextlib
import dataclasses
import json
import math
import os
import re
import shutil
from pathlib import Path

import numpy as np

from .errors import ConfigError, SnnconvError
from .evaluation import EvaluationResult

#: an SNN this many points (as a fraction) below the ANN gets advice in its summary
FAR_BELOW_ANN = 0.05

# run directories replaced by staged_run_dir in this process (see replaced_earlier)
_REPLACED: set = set()


@dataclasses.dataclass
class RunOutcome:
    """What :func:`snnconv.run` returns."""

    run_dir: Path | None            # None after a check-only run
    summary: dict
    ann_accuracy: float | None
    result: EvaluationResult | None  # when simulated
    snn: object                     # the converted (or trained, or loaded) network


def check_run_dir(run_dir, overwrite: bool) -> None:
    """Before any work: a :class:`ConfigError` when ``run_dir`` exists and may not be
    overwritten (``output.overwrite = false``)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not overwrite:
        raise ConfigError(f"run folder {run_dir} exists and output.overwrite is false; move it "
                          "away, set output.overwrite = true, or give this run another folder "
                          "(paths.runlabel or paths.log_dir_of_current_run)")


@contextlib.contextmanager
def staged_run_dir(run_dir: Path, overwrite: bool = True):
    """Yield a scratch folder; on success it becomes ``run_dir``, on failure it goes.

    Leftover scratch folders of dead processes for the same ``run_dir`` are
    removed first. Whether an earlier ``run_dir`` was replaced:
    :func:`replaced_earlier`.
    """
    run_dir = Path(run_dir)
    check_run_dir(run_dir, overwrite)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_stages(run_dir)
    stage = run_dir.parent / f".{run_dir.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    _REPLACED.discard(run_dir.resolve())
    if run_dir.exists():
        old = run_dir.parent / f".{run_dir.name}.old-{os.getpid()}"
        run_dir.rename(old)
        stage.rename(run_dir)
        shutil.rmtree(old, ignore_errors=True)
        _REPLACED.add(run_dir.resolve())
    else:
        stage.rename(run_dir)


def replaced_earlier(run_dir) -> bool:
    """Whether the last :func:`staged_run_dir` of ``run_dir`` in this process replaced
    an earlier run directory there."""
    return Path(run_dir).resolve() in _REPLACED


def run_note(run_dir, summary: dict) -> str:
    """The lines that end a run's output: where the results are (and whether they
    replaced an earlier run's there), and the summary's advice, if any."""
    text = f"results written to {run_dir}"
    if replaced_earlier(run_dir):
        text += " (replacing the results of an earlier run there)"
    if summary.get("advice"):
        text += "\n" + summary["advice"]
    return text


def remove_stale_stages(run_dir) -> list[Path]:
    """Remove the ``.<name>.partial-<pid>`` / ``.old-<pid>`` folders beside ``run_dir``
    whose process is gone (a killed run's); return them."""
    run_dir = Path(run_dir)
    pattern = re.compile(rf"^\.{re.escape(run_dir.name)}\.(?:partial|old)-(\d+)$")
    removed = []
    try:
        siblings = list(run_dir.parent.iterdir())
    except OSError:
        return removed
    for path in siblings:
        m = pattern.match(path.name)
        if m and path.is_dir() and not _alive(int(m.group(1))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True                     # exists (another user's), or cannot tell: keep it
    return True


def accuracy_advice(data: dict, config_text: str = "") -> str | None:
    """When the SNN's final accuracy is more than :data:`FAR_BELOW_ANN` below the ANN's:
    one paragraph that says so, names the plot to look at and what usually helps."""
    ann, snn = data.get("ann_accuracy"), data.get("snn_accuracy")
    if ann is None or snn is None or ann - snn <= FAR_BELOW_ANN:
        return None
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(config_text)
    except configparser.Error:
        pass

    def get(section, key, default=""):
        return cfg.get(section, key, fallback=default).strip()

    code = get("conversion", "spike_code", data.get("spike_code") or "rate")
    text = (f"note: the SNN's accuracy ({100 * snn:.2f} %) ends far below the ANN's "
            f"({100 * ann:.2f} %).")
    if code.startswith("ttfs"):
        text += (" Look at first_spike_times.png and decision_times.png (when each layer "
                 "fires, when the samples decide). What usually helps TTFS: a finer time "
                 "step (simulation.dt = 0.25 or 0.1 with duration = 40, as in "
                 "`snnconv init --template ttfs`), and normalization.percentile = 99.9 or "
                 "method = max.")
        return text
    corr = {k: v for k, v in (data.get("ann_vs_snn_correlation") or {}).items() if v is not None}
    text += " Look at ann_vs_snn.png: the conversion loses information at the first layer "             "whose correlation drops"
    if corr:
        worst = min(corr, key=corr.get)
        text += f" (lowest here: {worst}, r = {corr[worst]:.2f})"
    hints = []
    if get("cell", "reset") == "zero":
        hints.append("cell.reset = subtraction (reset to zero loses the charge above threshold)")
    hints.append("more time steps (simulation.duration)")
    if get("cell", "burst", "1") == "1" and code in _bursting_codes(
            get("simulation", "simulator", "INI")):
        hints.append("cell.burst = 4 (up to 4 spikes a step, each worth a quarter: deep "
                     "networks reach the ANN in far fewer steps; docs/low_latency.md)")
    hints.append("normalization.percentile = 99.99 or method = max (fewer saturated neurons)")
    if get("cell", "max_spikes_per_dt", "1") == "1":
        hints.append("cell.max_spikes_per_dt > 1 when layers saturate")
    return text + ". What usually helps: " + "; ".join(hints) + "."


def _bursting_codes(simulator: str) -> tuple[str, ...]:
    """The spike codes whose neurons take ``cell.burst`` on that simulator."""
    from .simulators import get_simulator
    try:
        return get_simulator(simulator).bursts
    except SnnconvError:
        return ()


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
    advice = accuracy_advice(data, config_text)
    if advice:
        data["advice"] = advice
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
        pairs = f.create_group("ann_vs_snn", track_order=True) if ann_vs_snn else None
        for name, p in ann_vs_snn.items():                          # network order
            g = pairs.create_group(name)
            g["ann"], g["snn"] = p["ann"], p["snn"]
            g.attrs["correlation"] = p["correlation"]
            if p.get("snn_label"):       # what the SNN side is, when not a rate
                g.attrs["snn_label"] = p["snn_label"]
        f.attrs["config"] = config_text      # the resolved config, as in config.ini
        f.attrs.update(num_samples=r.num_samples, num_steps=r.num_steps, dt=r.dt,
                       top_k=r.top_k, ann_macs=r.ann_macs,
                       ann_accuracy=np.nan if ann_accuracy is None else ann_accuracy)
        for name, n in r.neurons.items():
            f.attrs[f"neurons_{name}"] = n


def _finite(v: float):
    return None if v is None or not math.isfinite(v) else v
