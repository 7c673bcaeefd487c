"""Plots of a finished run, drawn from its ``results.h5`` alone.

``snnconv report RUN_DIR`` calls :func:`draw_report`, which reads the log
written by :mod:`snnconv.results` (layout in that module's docstring) and
(re)draws the run's PNG plots without simulating again. Nothing here
imports TensorFlow or Keras: the module needs only numpy, h5py and
matplotlib (Agg canvas, no pyplot, so no global backend state is touched).

The plots:

* ``accuracy.png`` — top-1 and top-k accuracy against simulated time, with
  the ANN's accuracy as a dashed line when it is known (:func:`plot_accuracy`,
  the one function that draws this plot, also for :mod:`snnconv.results`);
* ``spikes_per_layer.png`` — mean spikes per neuron of each spiking layer
  over the whole simulation of one sample (:func:`spikes_per_neuron`);
* ``synops.png`` — cumulative synaptic operations per sample against
  simulated time, with one ANN forward pass's MACs as reference;
* ``decision_times.png`` — only when the log holds ``decision_steps`` (TTFS
  codes): histogram of the time of each sample's first output spike;
* ``ann_vs_snn.png`` — only when the log holds ``ann_vs_snn`` (rate code):
  redrawn with :func:`snnconv.diagnostics.plot_ann_vs_snn`.

Every file is written under a temporary name in its final folder and then
moved into place in one step (:mod:`snnconv.files`), so a reader never sees half a PNG.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .errors import DataError
from .files import atomic_path

RESULTS_FILE = "results.h5"
#: Datasets every ``results.h5`` must hold, each of shape ``(T,)``.
REQUIRED_DATASETS = ("accuracy_per_step", "top_k_accuracy_per_step", "time", "synops_per_step")
#: File attributes every ``results.h5`` must hold.
REQUIRED_ATTRS = ("num_samples", "num_steps", "dt", "top_k")

TIME_UNIT = "unit of dt, ms by convention"
TIME_LABEL = f"simulated time ({TIME_UNIT})"


# --------------------------------------------------------------------------- reading

def results_path(path) -> Path:
    """``path`` itself, or ``path/results.h5`` when ``path`` is a folder."""
    path = Path(path)
    return path / RESULTS_FILE if path.is_dir() else path


def read_results(path) -> dict:
    """Read a ``results.h5`` (or the one in the run folder ``path``).

    Returns plain values: numpy arrays for datasets (dtype as stored), Python
    scalars for attributes, dicts for groups::

        {"path": Path, "accuracy_per_step": (T,), "top_k_accuracy_per_step": (T,),
         "time": (T,), "synops_per_step": (T,), "decision_steps": (N,) or None,
         "spikes_per_step": {layer: (T,)}, "neurons": {layer: int},
         "normalization": {node: array}, "ann_vs_snn": {layer: {"ann", "snn", "correlation"}},
         "num_samples": int, "num_steps": int, "dt": float, "top_k": int,
         "ann_macs": number (0 if absent), "ann_accuracy": float or None (NaN in the file),
         "attrs": {every file attribute, numpy scalars as Python scalars}}

    Raises :class:`DataError` naming the file and what is wrong when the file
    is missing or unreadable, or lacks a required dataset or attribute, or
    its arrays disagree in length.
    """
    import h5py

    file = results_path(path)
    if not file.exists():
        where = f"run folder {Path(path)} holds no {RESULTS_FILE}" if Path(path).is_dir() \
            else f"results file {file} does not exist"
        raise DataError(where)
    try:
        f = h5py.File(file, "r")
    except OSError as e:
        raise DataError(f"cannot read results file {file}: {e}") from None
    try:
        with f:
            return _read(f, file)
    except DataError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"cannot read results file {file}: {e}") from None


def _read(f, file: Path) -> dict:
    import h5py

    def dataset(name: str, where=f) -> np.ndarray:
        obj = where.get(name)
        if not isinstance(obj, h5py.Dataset):
            what = "is not a dataset" if obj is not None else "is missing"
            full = f"{where.name.rstrip('/')}/{name}".lstrip("/")
            raise DataError(f"results file {file}: dataset '{full}' {what}")
        return obj[()]

    def group(name: str) -> dict:
        g = f.get(name)
        if g is None:
            return {}
        if not isinstance(g, h5py.Group):
            raise DataError(f"results file {file}: '{name}' is not a group")
        return {k: dataset(k, g) for k in g}

    missing = [n for n in REQUIRED_DATASETS if not isinstance(f.get(n), h5py.Dataset)]
    if missing:
        raise DataError(f"results file {file} lacks the required dataset(s) {', '.join(missing)}")
    missing = [n for n in REQUIRED_ATTRS if n not in f.attrs]
    if missing:
        raise DataError(f"results file {file} lacks the required attribute(s) {', '.join(missing)}")

    attrs = {k: _plain(v) for k, v in f.attrs.items()}
    out: dict = {"path": file}
    for name in REQUIRED_DATASETS:
        out[name] = dataset(name)
    out["decision_steps"] = dataset("decision_steps") if "decision_steps" in f else None
    out["spikes_per_step"] = group("spikes_per_step")
    out["normalization"] = group("normalization")
    pairs = {}
    if "ann_vs_snn" in f:
        for layer, g in f["ann_vs_snn"].items():
            pairs[layer] = {"ann": dataset("ann", g), "snn": dataset("snn", g),
                            "correlation": float(g.attrs.get("correlation", math.nan))}
            if "snn_label" in g.attrs:
                pairs[layer]["snn_label"] = str(g.attrs["snn_label"])
    # in network order, as spikes_per_step is (files written before ann_vs_snn
    # tracked its order list the layers alphabetically)
    order = {name: i for i, name in enumerate(out["spikes_per_step"])}
    out["ann_vs_snn"] = dict(sorted(pairs.items(), key=lambda kv: order.get(kv[0], len(order))))
    samples = {}
    if "samples" in f:
        for layer, g in f["samples"].items():
            samples[layer] = {k: dataset(k, g) for k in g}
    out["samples"] = samples
    out["neurons"] = {k[len("neurons_"):]: int(v) for k, v in attrs.items()
                      if k.startswith("neurons_")}
    for name in REQUIRED_ATTRS:
        out[name] = attrs[name]
    out["ann_macs"] = attrs.get("ann_macs", 0)
    acc = attrs.get("ann_accuracy")
    out["ann_accuracy"] = None if acc is None or not math.isfinite(float(acc)) else acc
    out["attrs"] = attrs
    _check(out, file)
    return out


def _plain(v):
    """A numpy scalar as the Python scalar of the same value; arrays and strings as they are."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, bytes):
        return v.decode()
    return v


def _check(r: dict, file: Path) -> None:
    t = len(np.atleast_1d(r["accuracy_per_step"]))
    arrays = {n: r[n] for n in REQUIRED_DATASETS}
    arrays.update({f"spikes_per_step/{k}": v for k, v in r["spikes_per_step"].items()})
    for name, a in arrays.items():
        if np.ndim(a) != 1 or len(a) != t:
            raise DataError(f"results file {file}: '{name}' has shape {np.shape(a)}, "
                            f"expected ({t},) like accuracy_per_step")
    if int(r["num_steps"]) != t:
        raise DataError(f"results file {file}: attribute num_steps = {r['num_steps']} "
                        f"but the per-step datasets have {t} entries")
    if not (isinstance(r["dt"], (int, float)) and r["dt"] > 0):
        raise DataError(f"results file {file}: attribute dt = {r['dt']!r} is not a positive number")
    if r["decision_steps"] is not None and np.ndim(r["decision_steps"]) != 1:
        raise DataError(f"results file {file}: 'decision_steps' has shape "
                        f"{np.shape(r['decision_steps'])}, expected (num_samples,)")
    for layer in r["spikes_per_step"]:
        if r["neurons"].get(layer, 0) <= 0:
            raise DataError(f"results file {file}: layer '{layer}' has spikes_per_step but no "
                            f"positive attribute neurons_{layer}")


# --------------------------------------------------------------------------- figures

def spikes_per_neuron(results: dict) -> dict[str, float]:
    """Mean spikes one neuron of each layer fires in one sample's whole simulation:
    ``sum(spikes_per_step[layer]) / neurons[layer]``."""
    return {k: float(np.sum(v) / results["neurons"][k])
            for k, v in results["spikes_per_step"].items()}


def cumulative_synops(results: dict) -> np.ndarray:
    """SynOps per sample accumulated up to the end of each step, ``(T,)``."""
    return np.cumsum(np.asarray(results["synops_per_step"], dtype=np.float64))


def decision_times(results: dict) -> tuple[np.ndarray, float] | None:
    """``(times of decided samples, undecided fraction)``, or None without ``decision_steps``.

    A sample's decision time is ``decision_steps * dt`` (end of the step of
    its first output spike); samples with code 0 never decided.
    """
    steps = results.get("decision_steps")
    if steps is None:
        return None
    steps = np.asarray(steps)
    decided = steps > 0
    undecided = float(np.mean(~decided)) if steps.size else 0.0
    return steps[decided].astype(np.float64) * float(results["dt"]), undecided


def _figure(figsize=(6, 4)):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _replace_atomically(path: Path, write) -> Path:
    """Call ``write(temp_path)``, then move the temp file onto ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    return _replace_atomically(path, lambda tmp: fig.savefig(tmp, dpi=100, format="png"))


def plot_accuracy(time, accuracy, top_k_accuracy, path, *, top_k: int = 5,
                  ann_accuracy: float | None = None, num_samples: int | None = None,
                  dt: float | None = None) -> Path:
    """Top-1 and top-k accuracy (fractions, drawn in %) against simulated time.

    ``time``, ``accuracy``, ``top_k_accuracy`` are ``(T,)`` arrays; the ANN's
    top-1 accuracy is drawn as a dashed line unless it is None or NaN.
    ``num_samples`` and ``dt``, when given, go in the title. Writes ``path``
    atomically and returns it.
    """
    time = np.asarray(time, dtype=np.float64)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(time, 100 * np.asarray(accuracy, dtype=np.float64), label="SNN top-1")
    ax.plot(time, 100 * np.asarray(top_k_accuracy, dtype=np.float64),
            label=f"SNN top-{top_k}", alpha=0.6)
    if ann_accuracy is not None and math.isfinite(ann_accuracy):
        ax.axhline(100 * ann_accuracy, color="k", linestyle="--",
                   label=f"ANN top-1 ({100 * ann_accuracy:.2f} %)")
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("accuracy (%)")
    parts = []
    if num_samples is not None:
        parts.append(f"{num_samples} samples")
    if dt is not None:
        parts.append(f"dt = {dt:g}")
    if len(accuracy):
        parts.append(f"final top-1 {100 * float(accuracy[-1]):.2f} %")
    ax.set_title(", ".join(parts))
    ax.set_ylim(-2, 102)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, Path(path))


def plot_spikes_per_layer(results: dict, path) -> Path:
    """Bar chart of :func:`spikes_per_neuron`, one bar per spiking layer."""
    return _save(spikes_per_layer_figure(results), Path(path))


def spikes_per_layer_figure(results: dict):
    """The figure of :func:`plot_spikes_per_layer` (counts written as the console does)."""
    per_neuron = spikes_per_neuron(results)
    # results.py writes the layers in network order (an order-tracking group)
    names = list(per_neuron)
    values = [per_neuron[k] for k in names]
    fig = _figure((max(6.0, 0.6 * len(names) + 2), 4.5))
    ax = fig.add_subplot()
    if names:
        bars = ax.bar(range(len(names)), values, color="tab:blue")
        ax.bar_label(bars, fmt="%.3g", fontsize=8, padding=2)
        ax.set_xticks(range(len(names)), names, rotation=30 if len(names) > 3 else 0,
                      ha="right" if len(names) > 3 else "center", fontsize=8)
        ax.margins(y=0.12)
    else:
        ax.text(0.5, 0.5, "no spiking layers logged", ha="center", va="center",
                transform=ax.transAxes)
    total = sum(float(np.sum(v)) for v in results["spikes_per_step"].values())
    neurons = sum(results["neurons"].get(k, 0) for k in names)
    duration = results["num_steps"] * results["dt"]
    ax.set_xlabel("spiking layer")
    ax.set_ylabel("spikes per neuron per sample")
    title = f"Mean spikes per neuron over the whole run (duration {duration:g})"
    if neurons:
        title += (f"\n{total:,.0f} spikes per sample in all, "
                  f"{total / neurons:.3g} per neuron ({neurons:,} neurons)")
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return fig


def plot_synops(results: dict, path) -> Path:
    """Cumulative SynOps per sample against simulated time, ANN MACs as reference."""
    cum = cumulative_synops(results)
    macs = float(results.get("ann_macs") or 0)
    fig = _figure()
    ax = fig.add_subplot()
    ax.plot(results["time"], cum, label="SNN SynOps (cumulative)")
    title = f"SynOps per sample: {cum[-1]:,.0f}" if len(cum) else "SynOps per sample"
    if macs > 0:
        ax.axhline(macs, color="k", linestyle="--", label=f"ANN MACs, one pass ({macs:,.0f})")
        if len(cum):
            title += f" = {cum[-1] / macs:.4g} × ANN MACs"
    ax.set_xlabel(TIME_LABEL)
    ax.set_ylabel("synaptic operations per sample")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
    ax.set_title(title, fontsize=10)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return _save(fig, Path(path))


def plot_decision_times(results: dict, path) -> Path:
    """Histogram of decision times of the samples that decided (TTFS codes)."""
    from matplotlib.ticker import MaxNLocator

    times, undecided = decision_times(results)
    dt, steps = float(results["dt"]), int(results["num_steps"])
    n = len(results["decision_steps"])
    fig = _figure()
    ax = fig.add_subplot()
    if steps <= 100:      # one bin per time step, centred on the end of the step
        bins = (np.arange(steps + 1) + 0.5) * dt
    else:
        bins = np.linspace(0.5 * dt, (steps + 0.5) * dt, 51)
    if len(times):
        ax.hist(times, bins=bins, color="tab:orange", edgecolor="k", linewidth=0.4)
        mean = float(times.mean())
        ax.axvline(mean, color="k", linestyle="--", label=f"mean {mean:.4g}")
        ax.legend(loc="upper right")
    else:
        ax.text(0.5, 0.5, "no sample decided", ha="center", va="center",
                transform=ax.transAxes)
    ax.set_xlim(0, (steps + 1) * dt)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"decision time: first output spike ({TIME_UNIT})")
    ax.set_ylabel("samples")
    ax.set_title(f"{len(times)} of {n} samples decided; undecided: {100 * undecided:.1f} %",
                 fontsize=10)
    ax.grid(alpha=0.3)
    return _save(fig, Path(path))


def _plot_ann_vs_snn(results: dict, path: Path) -> Path:
    from .diagnostics import plot_ann_vs_snn
    return _replace_atomically(path, lambda tmp: plot_ann_vs_snn(results["ann_vs_snn"], tmp))


def draw_report(run_dir, out_dir=None) -> list[Path]:
    """(Re)draw the plots of a run from its ``results.h5`` into ``out_dir``
    (default: the run folder itself). Returns the paths written.

    ``run_dir`` is a run folder or a ``results.h5`` file. See the module
    docstring for the plots; ``decision_times.png`` only when the log holds
    ``decision_steps``, ``ann_vs_snn.png`` only when it holds ``ann_vs_snn``.
    """
    r = read_results(run_dir)
    out = Path(out_dir) if out_dir is not None else r["path"].parent
    out.mkdir(parents=True, exist_ok=True)
    written = [
        plot_accuracy(r["time"], r["accuracy_per_step"], r["top_k_accuracy_per_step"],
                      out / "accuracy.png", top_k=r["top_k"], ann_accuracy=r["ann_accuracy"],
                      num_samples=r["num_samples"], dt=r["dt"]),
        plot_spikes_per_layer(r, out / "spikes_per_layer.png"),
        plot_synops(r, out / "synops.png"),
    ]
    if r["decision_steps"] is not None:
        written.append(plot_decision_times(r, out / "decision_times.png"))
    if r["ann_vs_snn"]:
        written.append(_plot_ann_vs_snn(r, out / "ann_vs_snn.png"))
    if r["samples"]:
        written.append(plot_raster(r, out / "raster.png"))
        if any("v" in rec for rec in r["samples"].values()):
            written.append(plot_membrane(r, out / "membrane.png"))
        if any("first_spike_steps" in rec for rec in r["samples"].values()):
            written.append(plot_first_spike_times(r, out / "first_spike_times.png"))
    return written


def plot_raster(results: dict, path) -> Path:
    """Spike raster of the first recorded sample: one panel per layer."""
    samples = results["samples"]
    dt = float(results["dt"])
    fig = _figure((7.0, 1.8 * len(samples) + 0.8))
    for i, (layer, rec) in enumerate(samples.items()):
        ax = fig.add_subplot(len(samples), 1, i + 1)
        spikes = np.asarray(rec["spikes"])[0]                 # (T, n)
        t, j = np.nonzero(spikes > 0)
        ax.scatter((t + 1) * dt, j, s=4, marker="|", color="k")
        ax.set_xlim(0, spikes.shape[0] * dt)
        ax.set_ylim(-1, spikes.shape[1])
        ax.set_ylabel(f"{layer}\nneuron", fontsize=8)
        if i == len(samples) - 1:
            ax.set_xlabel("simulated time (unit of dt)")
    fig.suptitle(f"spikes of {spikes.shape[1]} recorded neurons per layer, first sample",
                 fontsize=10)
    return _save(fig, Path(path))


def plot_membrane(results: dict, path, traces: int = 4) -> Path:
    """Membrane potential of a few recorded IF neurons of the first sample."""
    return _save(membrane_figure(results, traces), Path(path))


def membrane_figure(results: dict, traces: int = 4):
    """The figure of :func:`plot_membrane`; each panel's legend sits beside it, off the traces."""
    layers = {k: v for k, v in results["samples"].items() if "v" in v}
    dt = float(results["dt"])
    fig = _figure((8.2, 1.9 * len(layers) + 0.8))
    for i, (layer, rec) in enumerate(layers.items()):
        ax = fig.add_subplot(len(layers), 1, i + 1)
        v = np.asarray(rec["v"])[0]                           # (T, n)
        spikes = np.asarray(rec["spikes"])[0]
        busiest = np.argsort(-spikes.sum(axis=0))[:traces]    # neurons that do fire
        t = (np.arange(v.shape[0]) + 1) * dt
        for j in busiest:
            ax.plot(t, v[:, j], lw=0.8, label=f"neuron {int(rec['neurons'][j])}")
        ax.axhline(float(rec["v_thresh"]), color="k", ls="--", lw=0.8, label="v_thresh")
        ax.set_ylabel(f"{layer}\nv", fontsize=8)
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
        if i == len(layers) - 1:
            ax.set_xlabel("simulated time (unit of dt)")
    fig.suptitle("membrane potential after each step (after reset), first sample",
                 fontsize=10)
    return fig


def plot_first_spike_times(results: dict, path) -> Path:
    """TTFS: distribution of every neuron's first-spike time, per layer."""
    layers = {k: v for k, v in results["samples"].items() if "first_spike_steps" in v}
    dt = float(results["dt"])
    fig = _figure((7.0, 4.0))
    ax = fig.add_subplot()
    for layer, rec in layers.items():
        steps = np.asarray(rec["first_spike_steps"]).reshape(-1)
        fired = steps[steps > 0]
        silent = 100 * (1 - len(fired) / max(len(steps), 1))
        ax.hist(fired * dt, bins=np.arange(0, int(results["num_steps"]) + 2) * dt,
                histtype="step", label=f"{layer} ({silent:.0f} % never fire)")
    ax.set_xlabel("first-spike time (unit of dt)")
    ax.set_ylabel("neurons")
    ax.set_yscale("log")
    ax.legend(fontsize=7)
    ax.set_title(f"first-spike times of all neurons, {len(next(iter(layers.values()))['first_spike_steps'])} samples",
                 fontsize=10)
    return _save(fig, Path(path))
