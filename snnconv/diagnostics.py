"""The standard conversion diagnostic: ANN activations against what the SNN's neurons carry.

For a few samples, every spiking layer's output is paired, neuron by
neuron, with the activation of the same node in the normalised ANN, and
the pairs' correlation is reported per layer. A low correlation points at
the layer where the conversion loses information.

* rate code: the time-averaged output signal (rate times spike amplitude),
  which should approximate the activation (clipped to the highest rate);
* ``ttfs`` and ``ttfs_dyn_thresh``: each neuron's first-spike time, which
  should fall as the activation grows (a neuron with activation 0 should
  not fire). The correlation is Spearman's rank correlation of the
  activation with the negated spike time (never firing = latest), 1 when
  the spike order is the activation order;
* ``ttfs_exact``: the value each spike carries, ``t_max - t_spike`` (0
  without a spike): the activation itself, clipped at the time window (and
  rounded to the grid when clocked).
"""
from __future__ import annotations

import numpy as np

from .ir import Graph


def ann_vs_snn(graph: Graph, snn, x: np.ndarray, steps: int, max_neurons: int = 2000,
               seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """``{layer: {"ann": (n,), "snn": (n,), "correlation": float}}`` for the
    spiking layers of ``snn`` that are nodes of ``graph``, on the samples ``x``
    (at most ``max_neurons`` sample-neuron pairs per layer, chosen at random)."""
    import keras

    from .simulators.ini.engine import spiking_layers

    names = [lay.name for lay in spiking_layers(snn) if lay.name in {n.name for n in graph}]
    if not names:
        return {}
    frames = np.repeat(np.asarray(x, np.float32)[:, None], steps, axis=1)
    probe = keras.Model(snn.inputs, [snn.get_layer(n).output for n in names])
    snn_out = probe([frames])
    snn_out = snn_out if isinstance(snn_out, (list, tuple)) else [snn_out]
    rates = {name: np.asarray(s).mean(axis=1) for name, s in zip(names, snn_out)}
    return ann_vs_values(graph, x, rates, max_neurons, seed)


# the y label of pairs whose SNN side is first-spike times
FIRST_SPIKE_TIME = "first-spike time"
# ... and of ttfs_exact's, the value each spike carries
EXACT_VALUE_LABEL = "t_max − t_spike (0: no spike)"


def ann_vs_values(graph: Graph, x: np.ndarray, values: dict[str, np.ndarray],
                  max_neurons: int = 2000, seed: int = 0, spike_times: bool = False,
                  label: str | None = None) -> dict[str, dict[str, np.ndarray]]:
    """The normalised ANN activations of the nodes named in ``values`` on the samples
    ``x``, paired with ``values`` (what the SNN's neurons of those nodes carry, one
    array ``(samples, ...)`` per node): ``{node: {"ann", "snn", "correlation"}}``.

    ``spike_times``: ``values`` are first-spike times (NaN: no spike); the
    correlation is then the rank correlation of the activation with the
    negated time. ``label`` (``"snn_label"`` of each pair): what the values
    are, for the plot's axis.
    """
    from .ann import build_ann

    names = list(values)
    if not names:
        return {}
    ann_out = build_ann(graph, outputs=names).predict(np.asarray(x, np.float32), verbose=0)
    ann_out = ann_out if isinstance(ann_out, list) else [ann_out]
    rng = np.random.default_rng(seed)
    out = {}
    for name, a in zip(names, ann_out):
        a = np.asarray(a).reshape(-1)
        v = np.asarray(values[name], np.float64).reshape(-1)
        pick = rng.choice(a.size, size=min(max_neurons, a.size), replace=False)
        a, v = a[pick], v[pick]
        if spike_times:
            corr = _correlation(_ranks(a), _ranks(-np.where(np.isnan(v), np.inf, v)))
        else:
            corr = _correlation(a, v)
        out[name] = {"ann": a.astype(np.float32), "snn": v.astype(np.float32),
                     "correlation": corr}
        if spike_times or label:
            out[name]["snn_label"] = FIRST_SPIKE_TIME if spike_times else label
    return out


def _correlation(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks of ``v`` (0 = smallest), ties sharing their mean rank."""
    _, inverse, counts = np.unique(v, return_inverse=True, return_counts=True)
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (first + (counts - 1) / 2.0)[inverse]


def plot_ann_vs_snn(pairs: dict, path) -> None:
    """One scatter per layer: ANN activation (x) against what the SNN carries (y), with r.

    Pairs with a ``"snn_label"`` (first-spike times) are drawn without the
    diagonal; neurons that never fired sit on a line above the latest spike.
    """
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(pairs)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], pairs.items()):
        label = p.get("snn_label") or "SNN rate × spike amplitude"
        if label == FIRST_SPIKE_TIME:
            t = np.asarray(p["snn"], np.float64)
            never = np.isnan(t)
            top = float(np.max(t[~never], initial=0.0)) * 1.05 + 1e-6
            ax.scatter(p["ann"][~never], t[~never], s=3, alpha=0.4)
            ax.scatter(p["ann"][never], np.full(int(never.sum()), top), s=3, alpha=0.4,
                       color="grey", marker="x", label=f"never fired ({100 * never.mean():.0f} %)")
            ax.legend(fontsize=6, loc="upper right")
            ax.set_title(f"{name}  rank r = {p['correlation']:.3f}", fontsize=9)
            ax.set_ylabel(label)
        else:
            ax.scatter(p["ann"], p["snn"], s=3, alpha=0.4)
            top = max(float(np.max(p["ann"], initial=0)), float(np.max(p["snn"], initial=0)),
                      1e-6)
            ax.plot([0, top], [0, top], "k--", lw=0.8)
            ax.set_title(f"{name}  r = {p['correlation']:.3f}", fontsize=9)
            ax.set_ylabel(label)
        ax.set_xlabel("ANN activation (normalised)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
