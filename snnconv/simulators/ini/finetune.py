"""Fine-tuning a converted rate-coded network with surrogate gradients (hybrid conversion).

A converted network loses accuracy in very few time steps because the
deeper layers fire one or two spikes per neuron and the timing errors of
earlier layers compound; per-layer corrections (calibration) cannot undo
that. Training the spiking network itself for the number of steps it will
run can (Rathi et al. 2020, "Enabling deep spiking neural networks with
hybrid conversion and spike timing dependent backpropagation"): starting
from the converted weights and initial potentials, a few epochs of
backpropagation through time, in which each neuron's spike passes the
gradient of a surrogate (:mod:`snnconv.surrogates`) instead of the step's.

The network is trained in the Spike* layers' sequence mode (``snn(frames)``,
all ``T`` steps of a batch layer by layer): the forward pass is the one the
engine simulates step by step, so the fine-tuned network is evaluated,
saved and loaded like any converted network. Trained: every synaptic
kernel and bias and every spiking neuron's own initial potential (the
per-neuron ``v_init`` that calibration also uses); thresholds, gains and the
neuron model stay as converted.

Memory: backpropagation through ``T`` steps keeps ``T`` frames of every
layer per sample, i.e. ``batch_size * T`` frames; at T = 8 and batch 32 the
Fashion-MNIST ResNet example needs well under 1 GB.
"""
from __future__ import annotations

import dataclasses
import logging
import time

import keras
import numpy as np
import tensorflow as tf

from ... import defaults
from ...datasets import as_labels
from ...errors import ConfigError, DataError, SnnconvError
from ...layers import SpikeLayer
from ...losses import TemporalCrossEntropy
from ...neurons import IFNeuron
from ...surrogates import get_surrogate, to_config
from .calibration import _var_name, rebuild
from .engine import input_layer

log = logging.getLogger(__name__)



@dataclasses.dataclass(frozen=True)
class FinetuneHistory:
    """Per-epoch training figures of one fine-tuning run."""

    loss: tuple[float, ...]
    accuracy: tuple[float, ...]
    val_loss: tuple[float, ...] = ()
    val_accuracy: tuple[float, ...] = ()
    seconds: float = 0.0
    num_samples: int = 0
    num_steps: int = 0
    surrogate: str = ""


def check_finetunable(snn: keras.Model) -> None:
    """Refuse, in one line naming ``finetune.enabled``, a network that cannot be fine-tuned."""
    code = input_layer(snn).spike_code
    if code != "rate":
        raise ConfigError(f"finetune.enabled = true needs conversion.spike_code = rate; the "
                          f"network {snn.name!r} uses {code} (its spike times have no "
                          "surrogate gradient here); set finetune.enabled = false")
    for lay in snn.layers:
        if isinstance(lay, SpikeLayer) and lay.spiking:
            if not isinstance(lay.neuron, IFNeuron):
                raise ConfigError(f"finetune.enabled = true: layer {lay.name!r} has "
                                  f"{type(lay.neuron).__name__} neurons; fine-tuning trains "
                                  "integrate-and-fire (IF/LIF) neurons only")
            if lay.neuron.threshold_mode != "inclusive":
                raise ConfigError(f"finetune.enabled = true: layer {lay.name!r} fires on "
                                  "v > v_thresh (cell.threshold_mode = strict); the surrogate "
                                  "needs cell.threshold_mode = inclusive")


def trainable_copy(snn: keras.Model, surrogate=None) -> keras.Model:
    """A copy of ``snn`` whose spiking layers have per-neuron initial potentials and,
    with ``surrogate``, neurons that pass that surrogate's gradient (``None``: the
    plain neurons, e.g. to strip the surrogate after training)."""
    spec = None if surrogate is None else to_config(get_surrogate(surrogate))
    config = snn.get_config()
    for entry in config["layers"]:
        layer_config = entry["config"]
        neuron = layer_config.get("neuron")
        if layer_config.get("activation") == "relu" and neuron is not None:
            layer_config["initial_potentials"] = True
            neuron = {k: v for k, v in neuron.items() if k != "surrogate"}
            if spec is not None:
                neuron["surrogate"] = spec
            layer_config["neuron"] = neuron
    return rebuild(snn, config)


def to_graph(snn: keras.Model, graph):
    """``graph`` (the graph ``snn`` was converted from) with the weights of ``snn``
    and, for layers with per-neuron initial potentials, those potentials as
    ``params["v_init"]`` (in units of the layer's threshold): what converts into
    the same network on another simulator (Brian 2), or again on INI."""
    out = graph.copy()
    for node in out:
        try:
            lay = snn.get_layer(node.name)
        except ValueError:
            continue
        if node.has_weights:
            node.weights["kernel"] = lay.kernel.numpy().copy()
            node.weights["bias"] = lay.bias.numpy().copy()
        if getattr(lay, "initial_potentials", False):
            node.params["v_init"] = lay.v_init.numpy() / np.float32(lay.neuron.v_thresh)
    return out


def finetune(snn: keras.Model, x, y, num_steps: int, epochs: int = defaults.FINETUNE_EPOCHS,
             batch_size: int = defaults.FINETUNE_BATCH_SIZE,
             learning_rate: float = defaults.FINETUNE_LEARNING_RATE,
             surrogate=defaults.FINETUNE_SURROGATE, loss=None, train_v_init: bool = True,
             validation_data=None, seed: int = 0, progress: bool = False,
             jit_compile: bool = True, teacher=None,
             distillation: float = defaults.FINETUNE_DISTILLATION,
             temperature: float = defaults.FINETUNE_TEMPERATURE,
             max_shift: int = defaults.FINETUNE_MAX_SHIFT):
    """Fine-tune the rate-coded ``snn`` for ``num_steps`` steps on ``(x, y)``.

    Returns ``(fine-tuned copy, FinetuneHistory)``; ``snn`` is left unchanged.
    ``loss``: a Keras loss on the output sequence ``(batch, T, classes)``;
    the default is the cross-entropy of the output averaged over time (the
    readout the evaluation takes the class from) at the temperature of the
    converted network's logits (set on the first batch, see :func:`_readout_spread`).
    The learning rate decays to zero over the run (cosine). Each epoch takes
    the samples in a new random order, in full batches (the last, partial
    batch of an epoch is left out: the order changes, so every sample is
    used). ``jit_compile``: compile the training step with XLA (about 1.6x
    faster on CPU; falls back to the plain graph where XLA cannot compile a layer).
    ``teacher``: the ANN (a Keras model) or its outputs on ``x`` (logits or
    softmax rows), distilled with the weight ``distillation`` at ``temperature``
    (:class:`_Distillation`); without a teacher, or with ``distillation`` 0,
    the labels alone.
    ``max_shift``: augmentation of image inputs ``(height, width, channels)``:
    every time a sample is drawn it is shifted by a random whole number of
    pixels, up to ``max_shift`` in each direction, zero-padded (0: none). A
    teacher that is a Keras model gives its outputs on the shifted images.
    """
    check_finetunable(snn)
    steps = int(num_steps)
    if steps < 1:
        raise ConfigError(f"finetune.num_steps = {num_steps}: expected at least 1 step")
    if int(epochs) < 1:
        raise ConfigError(f"finetune.epochs = {epochs}: expected at least 1")
    if int(batch_size) < 1:
        raise ConfigError(f"finetune batch_size = {batch_size}: expected at least 1")
    if not float(learning_rate) > 0:
        raise ConfigError(f"finetune.learning_rate = {learning_rate}: expected > 0")
    if not 0 <= float(distillation) <= 1:
        raise ConfigError(f"finetune.distillation = {distillation}: expected 0 to 1")
    if not float(temperature) > 0:
        raise ConfigError(f"finetune.temperature = {temperature}: expected > 0")
    try:
        whole = int(max_shift) == max_shift and int(max_shift) >= 0
    except (TypeError, ValueError):
        whole = False
    if not whole:
        raise ConfigError(f"finetune.max_shift = {max_shift!r}: expected a whole number "
                          "of pixels, 0 or more")
    max_shift = int(max_shift)
    try:
        spike_fn = get_surrogate(surrogate)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"finetune.surrogate = {surrogate}: {e}") from None
    x = np.asarray(x, np.float32)
    y = _labels(y, len(x))
    if len(x) == 0:
        raise DataError("fine-tuning data is empty")
    expected = tuple(snn.input_shape[2:])
    if tuple(x.shape[1:]) != expected:
        raise DataError(f"fine-tuning data: samples of shape {tuple(x.shape[1:])}, the "
                        f"network {snn.name!r} takes {expected}")
    if max_shift and (x.ndim != 4 or max_shift >= min(x.shape[1:3])):
        raise ConfigError(f"finetune.max_shift = {max_shift}: shifts need images (height, "
                          f"width, channels) larger than the shift; the samples are "
                          f"{tuple(x.shape[1:])}")
    net = trainable_copy(snn, spike_fn)
    variables = _trainable_variables(net, train_v_init)
    spread = _readout_spread(net, x[:min(len(x), 256)], steps)
    if loss is None:
        loss = TemporalCrossEntropy(over_time="mean", scale=1.0 / spread)
    targets = teach = None
    if teacher is not None and float(distillation) != 0:
        targets, probabilities = _teacher_logits(teacher, x)
        kd = _Distillation(float(distillation), float(temperature),
                           float(np.mean(np.std(targets, axis=-1))) / spread)
        if max_shift and hasattr(teacher, "predict"):
            # the teacher's outputs on the images as shifted (probabilities or
            # not, as they were on all of x)
            call = tf.function(lambda xb: teacher(xb, training=False))

            def teach(xb):
                out = np.asarray(call(xb), np.float32)
                return np.log(np.maximum(out, 1e-12)) if probabilities else out
    batch_size = min(int(batch_size), len(x))
    per_epoch = len(x) // batch_size
    schedule = keras.optimizers.schedules.CosineDecay(float(learning_rate),
                                                      decay_steps=per_epoch * int(epochs))
    optimizer = keras.optimizers.Adam(schedule)
    optimizer.build(variables)

    # the initial potentials were made non-trainable; the tape watches them explicitly
    watched = [v.value for v in variables]

    def step(xb, yb, tb):
        with tf.GradientTape() as tape:
            tape.watch(watched)
            out = net(_frames(xb, steps), training=True)
            value = loss(yb, out)
            if targets is not None:
                value = kd(value, tb, out)
        grads = tape.gradient(value, watched)
        optimizer.apply_gradients(zip(grads, variables))
        return value, _correct(out, yb)

    compiled = tf.function(step, jit_compile=True) if jit_compile else None
    plain = tf.function(step)

    def train_step(xb, yb, tb):
        nonlocal compiled
        if compiled is not None:
            try:
                return compiled(xb, yb, tb)
            except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as e:
                log.info("XLA cannot compile the fine-tuning step (%s); running it without",
                         str(e).splitlines()[0])
                compiled = None
        return plain(xb, yb, tb)

    rng = np.random.default_rng(seed)
    history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
    start = time.perf_counter()
    for epoch in range(int(epochs)):
        order = rng.permutation(len(x))
        bar = keras.utils.Progbar(per_epoch, stateful_metrics=("loss", "accuracy")) \
            if progress else None
        total = correct = 0.0
        for b in range(per_epoch):
            idx = order[b * batch_size:(b + 1) * batch_size]
            xb = _shifted(x[idx], max_shift, rng) if max_shift else x[idx]
            if teach is not None:
                tb = teach(xb)
            else:
                tb = y[idx] if targets is None else targets[idx]
            value, hits = train_step(xb, y[idx], tb)
            total += float(value) * len(idx)
            correct += float(hits)
            if bar is not None:
                seen = (b + 1) * batch_size
                bar.update(b + 1, [("loss", total / seen), ("accuracy", correct / seen)])
        seen = per_epoch * batch_size
        history["loss"].append(total / seen)
        history["accuracy"].append(correct / seen)
        if validation_data is not None:
            vl, va = sequence_loss(net, *validation_data, steps, loss, batch_size)
            history["val_loss"].append(vl)
            history["val_accuracy"].append(va)
    seconds = time.perf_counter() - start
    tuned = trainable_copy(net, None)
    return tuned, FinetuneHistory(tuple(history["loss"]), tuple(history["accuracy"]),
                                  tuple(history["val_loss"]), tuple(history["val_accuracy"]),
                                  round(seconds, 2), len(x), steps, spike_fn.name)


def sequence_loss(snn: keras.Model, x, y, num_steps: int, loss, batch_size: int = 100):
    """``(mean loss, accuracy)`` of ``snn`` run in sequence mode for ``num_steps`` steps."""
    x = np.asarray(x, np.float32)
    y = _labels(y, len(x))
    total = correct = 0.0
    for i in range(0, len(x), batch_size):
        out = snn(_frames(x[i:i + batch_size], int(num_steps)), training=False)
        yb = y[i:i + batch_size]
        total += float(loss(yb, out)) * len(yb)
        correct += float(_correct(out, yb))
    return total / len(x), correct / len(x)


def _frames(xb, steps: int):
    """The input frames: the (analog) sample at every step."""
    xb = tf.convert_to_tensor(xb)
    return tf.repeat(xb[:, None], steps, axis=1)


def _correct(out, yb):
    pred = tf.argmax(tf.reduce_sum(out, axis=1), axis=-1, output_type=tf.int32)
    return tf.reduce_sum(tf.cast(tf.equal(pred, tf.cast(yb, tf.int32)), tf.float32))


def _labels(y, n: int) -> np.ndarray:
    y = as_labels(np.asarray(y))
    if len(y) != n:
        raise DataError(f"fine-tuning data: {n} samples but {len(y)} labels")
    return y.astype(np.int32)


def _trainable_variables(net: keras.Model, train_v_init: bool) -> list:
    variables = []
    for lay in net.layers:
        for v in lay.weights:
            name = _var_name(v)
            if name in ("kernel", "bias") or (name == "v_init" and train_v_init):
                v.trainable = True
                variables.append(v)
    if not variables:
        raise SnnconvError(f"network {net.name!r} has no weights to fine-tune")
    return variables


def _readout_spread(net: keras.Model, x: np.ndarray, steps: int) -> float:
    """The mean spread over classes of the time-averaged readout of ``x``. The
    loss divides the readout by it: normalisation divides the output layer's
    logits by its scale, and a softmax of such small logits would barely train."""
    out = np.asarray(net(_frames(x, steps), training=False)).mean(axis=1)
    spread = float(np.mean(np.std(out, axis=-1)))
    return spread if spread > 0 else 1.0


def _teacher_logits(teacher, x: np.ndarray) -> tuple[np.ndarray, bool]:
    """``(the teacher's logits on x, whether its outputs are probabilities)``:
    ``teacher`` is the ANN (a Keras model) or its outputs on ``x``; outputs that
    are probabilities (rows of a softmax) are turned into logits by their
    logarithm (the same softmax at any temperature)."""
    out = teacher.predict(x, batch_size=256, verbose=0) if hasattr(teacher, "predict") \
        else teacher
    out = np.asarray(out, np.float32)
    if out.shape[0] != len(x) or out.ndim != 2:
        raise DataError(f"fine-tuning teacher: outputs of shape {out.shape} for {len(x)} "
                        "samples; expected (samples, classes)")
    probabilities = bool(out.min() >= 0 and np.allclose(out.sum(axis=1), 1, atol=1e-3))
    return (np.log(np.maximum(out, 1e-12)) if probabilities else out), probabilities


def _shifted(xb: np.ndarray, max_shift: int, rng) -> np.ndarray:
    """The images ``xb`` (batch, height, width, channels), each moved by a random
    whole number of pixels, -max_shift to max_shift along each axis, zero-padded."""
    s = max_shift
    padded = np.pad(xb, ((0, 0), (s, s), (s, s), (0, 0)))
    h, w = xb.shape[1:3]
    offsets = rng.integers(0, 2 * s + 1, size=(len(xb), 2))
    return np.stack([padded[i, oy:oy + h, ox:ox + w] for i, (oy, ox) in enumerate(offsets)])


class _Distillation:
    """Knowledge distillation from the ANN (Hinton et al. 2015): the loss becomes
    ``(1 - weight) * loss + weight * T² KL(softmax(teacher / T) || softmax(student / T))``,
    the student's logits being its time-averaged readout brought to the teacher's
    spread (``scale``). The ANN's outputs were learnt from the whole training
    set, the spiking network is fine-tuned on a few thousand samples; whether
    holding it to the ANN's function pays depends on the network and T (see
    docs/low_latency.md, "Fine-tuning")."""

    def __init__(self, weight: float, temperature: float, scale: float):
        self.weight, self.temperature, self.scale = weight, temperature, scale

    def __call__(self, value, teacher_logits, out):
        t = self.temperature
        student = self.scale * tf.reduce_mean(out, axis=1) / t
        soft = tf.nn.softmax(tf.cast(teacher_logits, student.dtype) / t)
        kl = tf.reduce_mean(tf.reduce_sum(
            soft * (tf.math.log(tf.maximum(soft, 1e-12)) - tf.nn.log_softmax(student)), -1))
        return (1 - self.weight) * value + self.weight * t * t * kl
