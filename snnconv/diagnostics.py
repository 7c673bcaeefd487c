"""The standard conversion diagnostic: ANN activations against SNN spike rates.

For a few samples, every spiking layer's time-averaged output signal (its
rate times the spike amplitude) is paired, neuron by neuron, with the
activation of the same node in the normalised ANN, which it should
approximate (clipped to the highest rate a neuron can reach). A low
correlation points at the layer where the conversion loses information.
Rate code only: under the TTFS codes a neuron's output is a step, not a rate.
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


def ann_vs_values(graph: Graph, x: np.ndarray, values: dict[str, np.ndarray],
                  max_neurons: int = 2000, seed: int = 0) -> dict[str, dict[str, np.ndarray]]:
    """The normalised ANN activations of the nodes named in ``values`` on the samples
    ``x``, paired with ``values`` (what the SNN's neurons of those nodes carry, one
    array ``(samples, ...)`` per node): ``{node: {"ann", "snn", "correlation"}}``."""
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
        corr = float(np.corrcoef(a, v)[0, 1]) if a.std() > 0 and v.std() > 0 else float("nan")
        out[name] = {"ann": a.astype(np.float32), "snn": v.astype(np.float32),
                     "correlation": corr}
    return out


def plot_ann_vs_snn(pairs: dict, path) -> None:
    """One scatter per layer: ANN activation (x) against SNN rate (y), with r."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(pairs)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.2), squeeze=False)
    for ax, (name, p) in zip(axes[0], pairs.items()):
        ax.scatter(p["ann"], p["snn"], s=3, alpha=0.4)
        top = max(float(np.max(p["ann"], initial=0)), float(np.max(p["snn"], initial=0)), 1e-6)
        ax.plot([0, top], [0, top], "k--", lw=0.8)
        ax.set_title(f"{name}  r = {p['correlation']:.3f}", fontsize=9)
        ax.set_xlabel("ANN activation (normalised)")
        ax.set_ylabel("SNN rate × spike amplitude")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
