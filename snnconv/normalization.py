"""Data-based weight normalisation (Diehl et al. 2015; Rueckauer et al. 2017).

Every node of the graph gets a scale λ: the ANN activation that should map
to the top firing rate. For a ReLU node λ is the ``max`` or the given
``percentile`` of its positive activations on the normalisation data (one
value per layer, or per output channel with ``per_channel=True``). Weights
are then rescaled so that the SNN carries ``a / λ`` instead of ``a``:
``W ← W · λ_in / λ_out`` and ``b ← b / λ_out``.

Nodes without weights carry their input's scale on (pooling, flatten...);
when such a node has neurons (a ReLU that could not merge into a weight
layer) it gets its own λ and a ``gain`` parameter ``λ_in / λ`` that scales
its input current. Linear hidden weight nodes get λ = 1 (their output is
a current summed on, whose scale does not matter); the output node is
scaled by its positive logits, one λ for all classes (a rate readout's
argmax does not care; TTFS output neurons spike on them); a
concatenation of branches with different scales carries one scale per
channel, which the next weight layer absorbs; an ``add`` takes per-input
``coefficients`` ``λ_i / λ_add``.

``method="t_aware"`` (after Li et al. 2021) picks each ReLU node's λ for a
given number of steps ``T``: the one that minimises, over the data, the
squared error between the activation ``a`` and what ``T`` steps of IF
neurons (reset by subtraction, initial potential ``v_init`` in thresholds)
can carry: ``λ·clip(floor(T·a/λ + v_init) / T, 0, 1)``. A lower λ clips
more and quantises more finely; few steps want it lower than a percentile.
It needs two passes over the data (maxima, histograms); the logits are
scaled by the ``percentile`` as before.

Nodes trained with a :class:`snnconv.layers.QCFS` activation carry their
trained threshold (``params["qcfs"]``): it is their λ, whatever the method.

Activations are computed batch by batch and the percentile is computed
exactly (numpy's linear interpolation) in three streaming passes — maxima,
histograms, then the values in the one or two histogram bins that hold the
wanted ranks — so memory does not grow with the number of samples.
"""
from __future__ import annotations

import logging

import numpy as np

from . import defaults
from .choices import NORMALIZATION_METHODS as METHODS
from .errors import SnnconvError
from .ir import Graph, Node

log = logging.getLogger(__name__)

_BINS = 4096


def normalize(graph: Graph, x, method: str = defaults.NORMALIZATION_METHOD,
              percentile: float = defaults.PERCENTILE, batch_size: int = 500,
              per_channel: bool = defaults.PER_CHANNEL,
              num_steps: int = defaults.NORMALIZATION_STEPS,
              v_init: float = defaults.V_INIT) -> Graph:
    """Return a copy of ``graph`` with normalised weights and ``graph.scales`` filled.

    ``x`` is the normalisation data: an array of inputs (scaled as the ANN
    expects them) or a re-iterable of input batches. ``num_steps`` and
    ``v_init`` (the neurons' initial potential in thresholds) are used by
    ``method="t_aware"`` only.
    """
    if method not in METHODS:
        raise ValueError(f"normalization method must be one of {METHODS}, got {method!r}")
    if not 0 < percentile <= 100:
        raise ValueError(f"percentile must be in (0, 100], got {percentile}")
    if method == "t_aware" and int(num_steps) < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    q = 100.0 if method == "max" else float(percentile)
    maxima: dict[str, np.ndarray] = {}
    stats = activation_scales(graph, x, q, batch_size=batch_size, per_channel=per_channel,
                              maxima=maxima,
                              t_aware=(int(num_steps), float(v_init))
                              if method == "t_aware" else None)
    stats.update(qcfs_scales(graph))
    g = apply_scales(graph, stats)
    # the largest normalised activation of every measured node (above 1 after a
    # percentile): the time windows of spike_code ttfs_exact cover it
    g.metadata["activation_max"] = {
        name: float(np.max(np.asarray(m) / np.asarray(stats[name]), initial=0.0))
        for name, m in maxima.items()}
    return g


def activation_scales(graph: Graph, x, q: float, batch_size: int = 500,
                      per_channel: bool = False, maxima: dict | None = None,
                      t_aware: tuple[int, float] | None = None) -> dict[str, np.ndarray]:
    """The ``q``-th percentile of the positive activations of every ReLU node,
    and of the output node's positive pre-activations (its logits).
    ``t_aware=(T, v_init)``: the ReLU nodes' scales are T-aware instead (see
    the module docstring).

    Returns ``{node name: scalar array or (channels,) array}``. A node that
    never activates gets 1 (nothing to scale).
    """
    from .ann import build_ann

    measured = [n.name for n in graph if n.activation == "relu"]
    out = graph.output_node
    logits = None
    if out.has_weights and out.activation != "relu":
        # Logits, one scale for all classes: TTFS outputs spike on them.
        graph = graph.copy()
        graph[out.name].activation = "linear"
        logits = out.name
        measured.append(logits)
    if not measured:
        return {}
    model = build_ann(graph, outputs=measured)
    trackers = {name: _StreamingPercentile(q) if t_aware is None or name == logits
                else _TAwareScale(*t_aware) for name in measured}

    def activations():
        n_seen = 0
        for batch in _batches(x, batch_size):
            outs = model.predict_on_batch(batch)
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            n_seen += len(batch)
            yield {name: _as_columns(np.asarray(a), per_channel and name != logits)
                   for name, a in zip(measured, outs)}
        if n_seen == 0:
            raise SnnconvError("normalisation data is empty")

    for stage in range(max(t.passes for t in trackers.values())):
        for acts in activations():
            for name, a in acts.items():
                if stage < trackers[name].passes:
                    trackers[name].feed(stage, a)
    if maxima is not None:      # each node's largest value (per channel, if so measured)
        maxima.update({name: t.max for name, t in trackers.items()})
    return {name: t.result() for name, t in trackers.items()}


def apply_scales(graph: Graph, stats: dict[str, np.ndarray]) -> Graph:
    """Rescale weights given the λ of every ReLU node (see module docstring)."""
    g = graph.copy()
    scales: dict[str, np.ndarray] = {}
    for node in g:
        ins = [scales[s] for s in node.inputs]
        if node.op == "input":
            out = np.array(1.0)
        elif node.has_weights:
            spiking = node.activation == "relu" or node is g.output_node
            out = np.asarray(stats.get(node.name, 1.0)) if spiking else np.array(1.0)
            _rescale_weights(node, _compact(ins[0], g[node.inputs[0]].output_shape), out)
        elif node.op == "add":
            out = np.asarray(stats[node.name]) if node.activation == "relu" else ins[0]
            # the parser's own coefficients (Subtract, Average) times the scale ratios
            own = node.params.get("coefficients") or [1.0] * len(ins)
            node.params["coefficients"] = [
                _compact(np.asarray(c, np.float64) * np.asarray(s) / out, node.output_shape)
                for c, s in zip(own, ins)]
        else:   # no weights: its input's scale passes through, reshaped to its layout
            src_shape = g[node.inputs[0]].output_shape
            if node.op == "concatenate":
                out = np.concatenate([np.broadcast_to(s, g[src].output_shape)
                                      for s, src in zip(ins, node.inputs)],
                                     axis=node.params["axis"])
            elif node.op in ("flatten", "reshape"):
                out = np.broadcast_to(ins[0], src_shape).reshape(node.output_shape)
            elif node.op == "identity":
                out = ins[0]
            elif node.op == "permute":
                axes = [int(d) - 1 for d in node.params["dims"]]
                out = np.transpose(np.broadcast_to(ins[0], src_shape), axes)
            else:   # pooling, zero padding: the scale must not vary across positions
                out = _channel_scale(node, ins[0], src_shape)
            if node.activation == "relu":
                # Neurons fed without weights: scale their input current by a gain.
                lam = np.asarray(stats[node.name])
                node.params["gain"] = _compact(
                    np.broadcast_to(out, node.output_shape) / lam, node.output_shape)
                out = lam
        scales[node.name] = _compact(out, node.output_shape)
    g.scales = scales
    g.metadata["normalization_scales"] = {k: np.asarray(v).tolist() for k, v in scales.items()}
    return g


def _rescale_weights(node: Node, lam_in: np.ndarray, lam_out: np.ndarray) -> None:
    k, b = node.weights["kernel"], node.weights["bias"]
    lam_in = np.asarray(lam_in, dtype=np.float64)
    lam_out = np.asarray(lam_out, dtype=np.float64)
    if lam_in.ndim > 1:
        raise SnnconvError(
            f"cannot normalise node {node.name!r}: its input's scale varies across positions "
            "(a reshape of differently scaled branches); use per-layer normalisation")
    if node.op == "depthwise_conv2d":
        c, m = k.shape[2], k.shape[3]
        lin = lam_in.reshape(-1, 1) if lam_in.ndim else lam_in
        lout = lam_out.reshape(c, m) if lam_out.ndim else lam_out
        k = k * lin / lout
    else:
        lin = lam_in.reshape(-1, 1) if lam_in.ndim else lam_in
        k = k * lin / lam_out
    node.weights["kernel"] = k.astype(np.float32)
    node.weights["bias"] = (b / lam_out).astype(np.float32)


def _channel_scale(node: Node, scale: np.ndarray, in_shape) -> np.ndarray:
    scale = _compact(scale, in_shape)
    if scale.ndim > 1:
        raise SnnconvError(
            f"cannot normalise node {node.name!r} ({node.op}): its input's scale varies "
            "across positions; use per-layer normalisation")
    return scale


def _compact(scale, shape) -> np.ndarray:
    """Smallest form of a scale: a scalar, one value per channel, or the full shape."""
    scale = np.asarray(scale, dtype=np.float64)
    full = np.broadcast_to(scale, shape)
    if full.size == 0 or np.all(full == full.flat[0]):
        return np.array(full.flat[0] if full.size else 1.0)
    per_channel = full.reshape(-1, shape[-1])
    if np.all(per_channel == per_channel[0]):
        return per_channel[0].copy()
    return np.array(full)


def _as_columns(a: np.ndarray, per_channel: bool) -> np.ndarray:
    """Activations of a batch as ``(values, groups)``: one column per channel or one in all."""
    return a.reshape(-1, a.shape[-1]) if per_channel else a.reshape(-1, 1)


def _batches(x, batch_size):
    if hasattr(x, "shape") and hasattr(x, "__getitem__"):
        for i in range(0, len(x), batch_size):
            yield np.asarray(x[i:i + batch_size], dtype=np.float32)
    else:
        for batch in x:
            yield np.asarray(batch[0] if isinstance(batch, tuple) else batch, dtype=np.float32)


class _StreamingPercentile:
    """Exact ``q``-th percentile (numpy 'linear') of the positive values of each column.

    Stage 0 finds each column's maximum and count, stage 1 histograms the
    values into ``_BINS`` bins, stage 2 keeps only the values in the bins that
    hold the two ranks around ``q/100 * (n - 1)``.
    """

    def __init__(self, q: float):
        self.q = q
        self.max = self.count = self.hist = None
        self.kept: list[list[np.ndarray]] = []

    @property
    def passes(self) -> int:
        """Passes over the data it needs (the maximum needs one)."""
        return 1 if self.q == 100.0 else 3

    def _bin(self, a):
        top = np.where(self.max > 0, self.max, 1.0)
        return np.minimum((a / top * _BINS).astype(np.int64), _BINS - 1)

    def feed(self, stage: int, a: np.ndarray) -> None:
        a = a.astype(np.float64)
        if stage == 0:
            m, c = a.max(axis=0), (a > 0).sum(axis=0)
            self.max = m if self.max is None else np.maximum(self.max, m)
            self.count = c if self.count is None else self.count + c
            return
        idx, pos = self._bin(a), a > 0
        if stage == 1:
            if self.hist is None:
                self.hist = np.zeros((a.shape[1], _BINS), dtype=np.int64)
            flat = (np.arange(a.shape[1]) * _BINS + idx)[pos]
            self.hist += np.bincount(flat, minlength=self.hist.size).reshape(self.hist.shape)
            return
        if not self.kept:
            self._locate_ranks()
            self.kept = [[] for _ in range(a.shape[1])]
        for col in range(a.shape[1]):
            sel = pos[:, col] & (idx[:, col] >= self.lo[col]) & (idx[:, col] <= self.hi[col])
            self.kept[col].append(a[sel, col])

    def _ranks(self):
        rank = self.q / 100.0 * np.maximum(self.count - 1, 0)
        k = np.floor(rank).astype(np.int64)
        return rank, k, np.minimum(k + 1, np.maximum(self.count - 1, 0))

    def _locate_ranks(self):
        _, k, k1 = self._ranks()
        cum = np.cumsum(self.hist, axis=1)
        self.lo = np.array([np.searchsorted(cum[c], k[c], side="right") for c in range(len(k))])
        self.hi = np.array([np.searchsorted(cum[c], k1[c], side="right")
                            for c in range(len(k))])
        self.before = np.array([cum[c, self.lo[c] - 1] if self.lo[c] > 0 else 0
                                for c in range(len(k))])

    def result(self) -> np.ndarray:
        if self.q == 100.0:
            out = self.max.astype(np.float64)
        else:
            rank, k, k1 = self._ranks()
            out = np.empty(len(k))
            for c in range(len(k)):
                if self.count[c] == 0:
                    out[c] = 0.0
                    continue
                vals = np.sort(np.concatenate(self.kept[c]))
                lo, hi = vals[k[c] - self.before[c]], vals[k1[c] - self.before[c]]
                out[c] = lo + (rank[c] - k[c]) * (hi - lo)
        out = np.where(out > 0, out, 1.0)   # a silent layer/channel keeps its weights
        return np.array(out[0]) if out.size == 1 else out


class _TAwareScale(_StreamingPercentile):
    """The T-aware λ of each column (see the module docstring), from the
    histogram of its positive values (stages 0 and 1 of the percentile)."""

    passes = 2

    def __init__(self, num_steps: int, v_init: float):
        super().__init__(100.0)
        self.num_steps, self.v_init = int(num_steps), float(v_init)

    def result(self) -> np.ndarray:
        out = np.array([t_aware_scale(h, m, self.num_steps, self.v_init) if m > 0 else 1.0
                        for h, m in zip(self.hist, self.max)])
        return np.array(out[0]) if out.size == 1 else out


def t_aware_scale(hist: np.ndarray, top: float, num_steps: int, v_init: float = 0.0,
                  candidates: int = 400) -> float:
    """The λ in ``(0, top]`` (``candidates`` values) minimising the squared error
    between the values of a histogram of ``[0, top]`` (at its bin centres) and
    their ``num_steps``-step quantisation ``λ·clip(floor(T·a/λ + v_init)/T, 0, 1)``."""
    bins = len(hist)
    centres = (np.arange(bins) + 0.5) / bins * top
    lams = top * np.arange(1, candidates + 1) / candidates
    levels = np.clip(np.floor(num_steps * centres / lams[:, None] + v_init) / num_steps, 0, 1)
    err = (np.square(centres - lams[:, None] * levels) * hist).sum(axis=1)
    return float(lams[int(np.argmin(err))])


def qcfs_scales(graph: Graph) -> dict[str, np.ndarray]:
    """The trained thresholds of the nodes with a QCFS activation: their λ."""
    return {n.name: np.array(float(n.params["qcfs"]["threshold"]))
            for n in graph if n.params.get("qcfs")}
