"""Batch evaluation of a converted SNN: accuracy after every time step, spikes, SynOps."""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from .datasets import as_labels
from .errors import DataError


@dataclasses.dataclass
class EvaluationResult:
    """What :func:`evaluate` measured. Per-step arrays have one entry per time step."""

    num_samples: int
    num_steps: int
    dt: float
    top_k: int
    accuracy_per_step: np.ndarray          # top-1 accuracy after each step
    top_k_accuracy_per_step: np.ndarray
    spikes_per_step: dict[str, np.ndarray]  # layer -> mean spikes per sample in each step
    neurons: dict[str, int]                 # layer -> number of neurons
    synops_per_step: np.ndarray             # mean synaptic operations per sample in each step
    ann_macs: int                           # MACs of one ANN forward pass (0 if unknown)
    predictions: np.ndarray                 # class predicted after the last step, per sample
    # step (1-based) at which each sample's output layer first spiked, 0 if it
    # never did; only for networks whose output layer spikes (TTFS codes)
    decision_steps: np.ndarray | None = None
    # top-1 accuracy after the last step of other readouts the simulator offers
    # (e.g. STDP's proportion weighting): name -> accuracy
    other_accuracy: dict = dataclasses.field(default_factory=dict)

    @property
    def time(self) -> np.ndarray:
        """Simulation time at the end of each step."""
        return (np.arange(self.num_steps) + 1) * self.dt

    @property
    def accuracy(self) -> float:
        return float(self.accuracy_per_step[-1])

    @property
    def top_k_accuracy(self) -> float:
        return float(self.top_k_accuracy_per_step[-1])

    def accuracy_at(self, step: int) -> float:
        """Top-1 accuracy after ``step`` steps (1-based)."""
        return float(self.accuracy_per_step[step - 1])

    @property
    def spikes_per_neuron(self) -> dict[str, float]:
        """Mean number of spikes one neuron of each layer fires in one sample's simulation."""
        return {k: float(v.sum() / self.neurons[k]) for k, v in self.spikes_per_step.items()}

    @property
    def total_spikes(self) -> float:
        """Mean number of spikes per sample, all layers."""
        return float(sum(v.sum() for v in self.spikes_per_step.values()))

    @property
    def synops(self) -> float:
        """Mean synaptic operations per sample over the whole simulation."""
        return float(self.synops_per_step.sum())

    @property
    def synops_per_ann_mac(self) -> float:
        """SynOps of the whole simulation divided by the MACs of one ANN pass."""
        return self.synops / self.ann_macs if self.ann_macs else math.nan

    @property
    def decided_fraction(self) -> float | None:
        """Fraction of samples that decided: whose output layer spiked (ttfs,
        ttfs_dyn_thresh), or that reached the fixed readout time (ttfs_exact)."""
        if self.decision_steps is None:
            return None
        return float(np.mean(self.decision_steps > 0))

    @property
    def mean_decision_time(self) -> float | None:
        """Mean simulated time of the decision (first output spike, or the
        readout time), over samples that decided."""
        if self.decision_steps is None or not np.any(self.decision_steps > 0):
            return None
        return float(self.decision_steps[self.decision_steps > 0].mean() * self.dt)

    def __repr__(self) -> str:
        text = (f"EvaluationResult({self.num_samples} samples, {self.num_steps} steps of dt "
                f"{self.dt:g}: accuracy {100 * self.accuracy:.2f} % (top-{self.top_k} "
                f"{100 * self.top_k_accuracy:.2f} %); per sample {self.total_spikes:,.0f} spikes, "
                f"{self.synops:,.0f} SynOps")
        if self.ann_macs:
            text += f" = {self.synops_per_ann_mac:.3g} x ANN MACs"
        if self.decision_steps is not None:
            mean = self.mean_decision_time
            text += (f"; {100 * self.decided_fraction:.1f} % decided"
                     + (f", mean decision time {mean:.3g}" if mean is not None else ""))
        return text + ")"

    def __eq__(self, other) -> bool:
        """Equal when every field is equal (arrays compared by value)."""
        if not isinstance(other, EvaluationResult):
            return NotImplemented
        from .ir import values_equal
        return all(values_equal(getattr(self, f.name), getattr(other, f.name))
                   for f in dataclasses.fields(self))

    __hash__ = None

    def steps_to_reach(self, accuracy: float) -> int | None:
        """First step (1-based) from which accuracy stays >= ``accuracy``, or None."""
        below = np.nonzero(self.accuracy_per_step < accuracy)[0]
        if len(below) == 0:
            return 1
        return int(below[-1]) + 2 if below[-1] + 1 < self.num_steps else None


def evaluate(snn, x, y=None, duration: float | None = None, num_steps: int | None = None,
             batch_size: int = 100, top_k: int = 5, progress: bool = True,
             simulator: str | None = None, strategy=None,
             early_stopping: bool = False, engine: str | None = None) -> EvaluationResult:
    """Simulate ``snn`` on ``x`` batch by batch and score it against the labels ``y``.

    ``snn``: a converted network (a Spike* ``keras.Model`` or a
    :class:`~snnconv.simulators.xylo.XyloNetwork`); the simulator that runs
    it is found from its kind unless ``simulator`` names one.

    ``x`` and ``y``: arrays of inputs and labels (integers or one-hot rows),
    or ``y=None`` and ``x`` any iterable of ``(inputs, labels)`` batches — a
    ``tf.data.Dataset`` or a generator — consumed one batch at a time, so
    memory does not grow with the number of samples. Give the simulated
    time as ``duration`` (in the unit of the network's ``dt``) or as
    ``num_steps``.

    ``strategy``: a ``tf.distribute.Strategy`` whose replicas share every
    batch. By default one is made when several GPUs are visible
    (``MirroredStrategy``); the results equal a single-device run.

    ``early_stopping``: stop simulating a batch once every sample in it has
    decided (networks whose class is the first output spike, i.e. the TTFS
    codes, on simulators that support it); later steps keep the decided
    scores and count no spikes or synaptic operations. Ignored otherwise.

    ``engine``: how the simulator runs a batch, one of its ``engines`` (INI:
    ``auto``, ``graph``, ``xla``; see :func:`snnconv.simulators.ini.simulate_batch`);
    None: its default. The engines give the same results up to float rounding.
    """
    from .simulators import get_simulator, simulator_for

    sim = simulator_for(snn) if simulator is None else get_simulator(simulator)
    info = sim.info(snn)
    if info.temporal:
        return _evaluate_temporal(sim, info, snn, x, y, batch_size, top_k, progress)
    if not sim.needs_steps:
        steps = sim.num_steps(snn)
    elif (duration is None) == (num_steps is None):
        raise ValueError("give exactly one of duration and num_steps")
    else:
        steps = _steps_for(duration, info.dt) if num_steps is None else int(num_steps)
    options = {}
    if sim.distributes:
        options["strategy"] = default_strategy() if strategy is None else strategy
    if sim.early_stopping and early_stopping:
        options["early_stopping"] = True
    if engine is not None:
        if engine not in sim.engines:
            raise ValueError(f"engine {engine!r}: simulator {sim.name} runs "
                             + (f"one of {sim.engines}" if sim.engines else "one engine only"
                                + "; leave engine unset"))
        options["engine"] = engine
    totals = _Totals(steps, info.neurons)
    decisions = []
    other: dict[str, int] = {}
    out_name = info.output_name
    total = len(x) if y is not None and hasattr(x, "__len__") else None
    bar = _progress(total, progress)
    for xb, yb in _batches(x, y, batch_size, *_expected(snn)):
        if info.check_input is not None:
            info.check_input(xb)
        out = sim.simulate_batch(snn, xb, steps, **options)
        totals.add(out, yb, top_k)
        for name, final in out.final_scores.items():
            other[name] = other.get(name, 0) + int(np.sum(final.argmax(axis=1) == yb))
        if info.decision_time is not None:        # read out at one fixed time
            step = math.ceil(info.decision_time / info.dt - 1e-6)
            decisions.append(np.full(len(xb), step if step <= steps else 0))
        elif info.decides and out_name in out.spikes:
            fired = out.spikes[out_name] > 0
            decisions.append(np.where(fired.any(axis=1), fired.argmax(axis=1) + 1, 0))
        bar.update(len(xb))
        bar.set_postfix(acc=f"{totals.correct[-1] / totals.n:.4f}")
    bar.close()
    if totals.n == 0:
        raise DataError("no samples to evaluate")
    result = totals.result(info, top_k)
    result.decision_steps = np.concatenate(decisions) if decisions else None
    result.other_accuracy = {k: v / totals.n for k, v in other.items()}
    return result


class _Totals:
    """Per-step sums over the batches seen so far."""

    def __init__(self, steps: int, layers):
        self.steps = steps
        self.correct = np.zeros(steps)
        self.correct_k = np.zeros(steps)
        self.spikes = {name: np.zeros(steps) for name in layers}
        self.synops = np.zeros(steps)
        self.predictions = []
        self.n = 0

    def add(self, out, yb, top_k: int):
        score = out.readout                                   # (B, T, classes)
        check_labels(yb, score.shape[2])
        truth = np.take_along_axis(score, yb[:, None, None], axis=2)[..., 0]
        pred = score.argmax(axis=2)
        self.correct += (pred == yb[:, None]).sum(axis=0)
        # the true class's rank; ties are broken as argmax breaks them (lower index
        # first), so that all-equal scores do not count as a top-k hit
        classes = np.arange(score.shape[2])
        rank = (score > truth[..., None]).sum(axis=2) + (
            (score == truth[..., None]) & (classes < yb[:, None, None])).sum(axis=2)
        self.correct_k += (rank < top_k).sum(axis=0)
        for name, s in out.spikes.items():
            self.spikes[name] += s.sum(axis=0)
        self.synops += out.synops.sum(axis=0)
        self.predictions.append(pred[:, -1])
        self.n += len(yb)

    def result(self, info, top_k: int) -> "EvaluationResult":
        n = self.n
        return EvaluationResult(
            num_samples=n, num_steps=self.steps, dt=info.dt, top_k=top_k,
            accuracy_per_step=self.correct / n, top_k_accuracy_per_step=self.correct_k / n,
            spikes_per_step={k: v / n for k, v in self.spikes.items()},
            neurons=dict(info.neurons), synops_per_step=self.synops / n,
            ann_macs=info.ann_macs, predictions=np.concatenate(self.predictions))


def _evaluate_temporal(sim, info, snn, x, y, batch_size, top_k, progress):
    """:func:`evaluate` for networks whose inputs carry their time axis: every sample
    ``(T, channels)``, all with the same ``T``; the run takes those ``T`` steps."""
    totals = None
    total = len(x) if y is not None and hasattr(x, "__len__") else None
    bar = _progress(total, progress)
    for xb, yb in _batches(x, y, batch_size, None, info.num_classes):
        if info.check_input is not None:
            info.check_input(xb)
        if xb.ndim < 3:
            raise DataError(f"inputs must be (samples, time steps, channels) for this "
                            f"network, got a batch of shape {xb.shape}")
        if totals is None:
            totals = _Totals(int(xb.shape[1]), info.neurons)
        elif xb.shape[1] != totals.steps:
            raise DataError(f"every sample must have the same number of time steps; "
                            f"got {xb.shape[1]} after {totals.steps}")
        totals.add(sim.simulate_batch(snn, xb, totals.steps), yb, top_k)
        bar.update(len(xb))
        bar.set_postfix(acc=f"{totals.correct[-1] / totals.n:.4f}")
    bar.close()
    if totals is None:
        raise DataError("no samples to evaluate")
    return totals.result(info, top_k)


def _steps_for(duration: float, dt: float) -> int:
    steps = duration / dt
    if steps < 1 or abs(steps - round(steps)) > 1e-6 * max(1.0, steps):
        raise ValueError(f"duration {duration} is not a whole number (>= 1) of time steps "
                         f"dt = {dt}")
    return int(round(steps))


def _expected(snn) -> tuple[tuple[int, ...] | None, int | None, bool]:
    """The shape of one input sample and the number of classes of ``snn``, where known,
    and whether its simulator takes flattened samples too (all but Keras SNNs)."""
    inputs, outputs = getattr(snn, "inputs", None), getattr(snn, "outputs", None)
    keras_snn = bool(inputs and outputs)
    if keras_snn:                      # its inputs are frames (batch, time, ...)
        shape, classes = tuple(inputs[0].shape)[2:], tuple(outputs[0].shape)[-1]
    else:
        shape, classes = getattr(snn, "input_shape", None), getattr(snn, "num_classes", None)
    if shape is not None and any(d is None for d in shape):
        shape = None
    return (None if shape is None else tuple(int(d) for d in shape),
            None if classes is None else int(classes), not keras_snn)


def check_input_shape(sample_shape, expected, where: str = "inputs", loose: bool = False):
    """The shape samples of ``sample_shape`` are to be reshaped to, or a :class:`DataError`.

    Equal shapes pass; a sample that lacks only a trailing channel axis of size
    1 (``(28, 28)`` for ``(28, 28, 1)``) gets it, as the command line's data
    loading does. ``loose``: a flattened sample (same size) passes unchanged,
    for simulators that flatten their input themselves.
    """
    sample_shape = tuple(int(d) for d in sample_shape)
    if expected is None or sample_shape == tuple(expected):
        return sample_shape
    if tuple(expected)[-1:] == (1,) and sample_shape == tuple(expected)[:-1]:
        return tuple(expected)
    if loose and math.prod(sample_shape) == math.prod(expected):
        return sample_shape
    raise DataError(f"{where} have samples of shape {sample_shape}, but the network expects "
                    f"samples of shape {tuple(expected)}; reshape them (a batch of N samples "
                    f"is an array of shape (N, {', '.join(map(str, expected))}))")


def check_labels(labels, num_classes: int | None, where: str = "labels") -> None:
    """A :class:`DataError` unless every label is a class of a ``num_classes``-class network."""
    if labels is None or num_classes is None:
        return
    labels = np.asarray(labels)
    if labels.size == 0:
        return
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        bad = low if low < 0 else high
        raise DataError(f"{where}: label {bad} is not a class of the network, whose output has "
                        f"{num_classes} classes (labels 0..{num_classes - 1})")


def _batches(x, y, batch_size, sample_shape=None, num_classes=None, loose=False):
    """``(inputs float32, integer labels)`` batches from arrays or an iterable of batches,
    checked against the network's sample shape and number of classes where known
    (``loose``: flattened samples pass too)."""
    if y is not None:
        labels = as_labels(y)
        if not hasattr(x, "__len__") or not hasattr(x, "__getitem__"):
            raise DataError("with labels y, x must be an array of inputs; to stream "
                            "(inputs, labels) batches, pass them as x and leave y out")
        if len(x) != len(labels):
            raise DataError(f"{len(x)} inputs but {len(labels)} labels")
        check_labels(labels, num_classes)
        shape = getattr(x, "shape", None)
        shape = np.shape(x[:1])[1:] if shape is None else tuple(shape)[1:]
        target = check_input_shape(shape, sample_shape, loose=loose)
        for start in range(0, len(labels), batch_size):
            xb = np.asarray(x[start:start + batch_size], np.float32)
            yield xb.reshape((len(xb),) + target), labels[start:start + batch_size]
        return
    for item in x:
        try:
            xb, yb = item
        except (TypeError, ValueError):
            raise DataError("with y=None, x must yield (inputs, labels) batches") from None
        xb, yb = np.asarray(xb, np.float32), np.asarray(yb)
        if yb.ndim == 0 or (sample_shape is not None and xb.shape == tuple(sample_shape)):
            raise DataError(f"x yields single samples (inputs of shape {xb.shape}, label of "
                            f"shape {yb.shape}), not batches: batch the dataset first, e.g. "
                            "dataset.batch(100)")
        yb = as_labels(yb)
        if len(xb) != len(yb):
            raise DataError(f"a batch has {len(xb)} inputs but {len(yb)} labels")
        check_labels(yb, num_classes, "a batch's labels")
        target = check_input_shape(xb.shape[1:], sample_shape, "a batch's inputs", loose)
        xb = xb.reshape((len(xb),) + target)
        # a batch larger than batch_size is simulated in pieces of batch_size
        for start in range(0, len(yb), batch_size):
            yield xb[start:start + batch_size], yb[start:start + batch_size]


def make_strategy(mode: str = "auto"):
    """The ``tf.distribute`` strategy for ``[simulation] distribute``.

    ``auto``: :func:`default_strategy`; ``off``: TensorFlow's default (one
    device); ``multi_worker``: ``MultiWorkerMirroredStrategy`` (cluster from
    ``TF_CONFIG``).
    """
    import tensorflow as tf
    if mode == "auto":
        return default_strategy()
    if mode == "off":
        return tf.distribute.get_strategy()
    if mode == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"unknown distribute mode {mode!r}; allowed: auto, off, multi_worker")


def default_strategy():
    """A ``MirroredStrategy`` over the GPUs when there are several, else None."""
    import tensorflow as tf
    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus]) if len(gpus) > 1 else None


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm
    # disable=None: shown on a terminal, silent in logs and CI
    return tqdm(total=total, desc="simulating", unit="sample",
                disable=None if enabled else True, dynamic_ncols=True, leave=False)
