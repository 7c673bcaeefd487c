"""Training an STDP network sample by sample, and running it on batches.

:func:`train` presents the training samples one at a time. Python only
loops over samples: it shows a progress bar with the running accuracy,
shows a sample again brighter when the network answered with too few
spikes, and saves a checkpoint every ``checkpoint_every`` samples and after
each epoch, from which an interrupted training resumes (the input spikes of
sample ``k`` are drawn from the seed and ``k``, so a resumed run sees what
an uninterrupted one would have).

Each sample is one compiled call that simulates all its time steps and
applies the learning rule at every step: a numba kernel that updates only
the synapses of the spiking inputs and neurons (:mod:`.fast_rules`). A rule
the kernel does not know runs in a ``tf.function`` compiled with XLA that
calls the rule's TF ``step`` (:class:`_XLATrainer`, also the reference the
tests compare the kernel with).

:func:`run_batch` simulates a batch with fixed weights and thresholds (no
learning, a numba kernel: :mod:`.kernels`) and returns the excitatory
spikes of every step.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from ..errors import DataError
from . import labels as lab
from .model import STDPNetwork
from .fast_rules import fast_rule, train_sample_kernel
from .kernels import neuron_constants, poisson_trains, run_batch_kernel
from .network import NetworkParams, initial_neuron_state, neuron_step, normalize_columns, \
    INT_THRESHOLD_UNITS
from .rules import make_rule


def new_network(params: NetworkParams, rule: str = "postpre", rule_params: dict | None = None,
                num_classes: int = 10, input_shape=(28, 28, 1), name: str = "stdp"
                ) -> STDPNetwork:
    """An untrained network: random weights in ``[0, w_init_max)``, normalised, theta 0."""
    rule_params = dict(rule_params or {})
    learner = make_rule(rule, **rule_params)     # checks the rule and its parameters
    rng = np.random.default_rng(params.seed)
    w = rng.uniform(0, params.w_init_max, (params.n_input, params.n_exc))
    if learner.integer:
        w_max = rule_params.get("w_max", 109)
        w = np.round(w * w_max).astype(np.int32)
    else:
        w = w.astype(np.float32)
        if params.w_norm > 0:
            w = w * (params.w_norm / w.sum(axis=0, keepdims=True))
    return STDPNetwork(params=params, rule=rule, rule_params=rule_params, weights=w,
                       theta=np.zeros(params.n_exc, np.float32),
                       assigned=np.full(params.n_exc, -1, np.int64),
                       proportions=np.zeros((params.n_exc, num_classes)),
                       num_classes=num_classes, input_shape=tuple(input_shape), name=name)


def _probabilities(params: NetworkParams, x, intensity: float) -> np.ndarray:
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    if x.shape[1] != params.n_input:
        raise DataError(f"samples have {x.shape[1]} values, the network {params.n_input} inputs")
    if x.size and (x.min() < 0 or x.max() > 1):
        raise DataError(f"STDP inputs must lie in [0, 1] (pixel intensity); the data spans "
                        f"[{x.min():g}, {x.max():g}] (set input.input_scale)")
    return x * np.float32(intensity * params.dt / 1000.0)


def _learning_constants(p: NetworkParams, rule):
    """``(theta decay per step, theta decay over the rest, normalise the columns?)``."""
    normalize = p.w_norm > 0 and not rule.normalizes and not rule.integer
    return math.exp(-p.dt / p.tau_theta), math.exp(-p.rest / p.tau_theta), normalize


class _XLATrainer:
    """A sample as one XLA-compiled TF loop: every rule (the reference for the fast path)."""

    def __init__(self, net: STDPNetwork):
        p = net.params
        self.rule = rule = make_rule(net.rule, **net.rule_params)
        scale = net.weight_scale
        theta_decay, rest_decay, normalize = _learning_constants(p, rule)

        @tf.function(jit_compile=True, reduce_retracing=True)
        def train_sample(w, theta, trains, key):
            state = initial_neuron_state(p, 1)
            rstate = rule.initial_state(p.n_input, p.n_exc)
            counts = tf.zeros((p.n_exc,), tf.float32)
            trains = tf.cast(trains, tf.float32)

            def body(t, w, theta, state, rstate, counts):
                s_in = trains[t][None]
                state, s, v_fired = neuron_step(p, state, s_in,
                                                tf.cast(w, tf.float32) * scale, theta[None])
                theta = theta * theta_decay + p.theta_plus * s[0]
                threshold = (p.v_thresh_exc + theta - p.v_rest_exc) * INT_THRESHOLD_UNITS \
                    if rule.integer else p.v_thresh_exc + theta
                w, rstate = rule.step(w, s_in[0], s[0], rstate, v_post=v_fired[0],
                                      threshold=threshold, t=t, seed=tf.stack([-key - 1, t]))
                return t + 1, w, theta, state, rstate, counts + s[0]

            _, w, theta, _, rstate, counts = tf.while_loop(
                lambda t, *_: t < tf.shape(trains)[0], body,
                (tf.constant(0), w, theta, state, rstate, counts))
            w = rule.end_of_sample(w, rstate)
            if normalize:
                w = normalize_columns(w, p.w_norm)
            return w, theta * rest_decay, counts

        self._train_sample = train_sample
        self.w, self.theta = tf.constant(net.weights), tf.constant(net.theta)

    def sample(self, trains: np.ndarray, key: int) -> np.ndarray:
        """Learn from one sample's input spikes ``trains`` (steps, n_input); its spike counts."""
        self.w, self.theta, counts = self._train_sample(self.w, self.theta, tf.constant(trains),
                                                        tf.constant(key, tf.int32))
        return counts.numpy()

    def state(self):
        """Copies of the weights and thresholds."""
        return self.w.numpy(), self.theta.numpy()


class _FastTrainer:
    """A sample as one numba kernel call that touches only the synapses a step changes."""

    def __init__(self, net: STDPNetwork, rule, fast):
        p = net.params
        theta_decay, rest_decay, normalize = _learning_constants(p, rule)
        self._net_args = (neuron_constants(p), p.one_spike,
                          np.array([theta_decay, p.theta_plus, rest_decay,
                                    p.w_norm if normalize else 0.0, net.weight_scale],
                                   np.float32))
        self._rule_args = fast
        self.w = np.array(net.weights, rule.dtype.as_numpy_dtype)    # updated in place
        self.theta = np.array(net.theta, np.float32)

    def sample(self, trains: np.ndarray, key: int) -> np.ndarray:
        counts = np.zeros(self.w.shape[1], np.float32)
        # the rule's random seed is (-key - 1, step), as in the XLA path
        train_sample_kernel(self.w, self.theta, trains, *self._net_args, -key - 1,
                            *self._rule_args, counts)
        return counts

    def state(self):
        return self.w.copy(), self.theta.copy()


def _trainer(net: STDPNetwork):
    """The fast trainer where it covers the rule, else the XLA one."""
    rule = make_rule(net.rule, **net.rule_params)
    fast = fast_rule(rule)
    return _XLATrainer(net) if fast is None else _FastTrainer(net, rule, fast)


@dataclasses.dataclass
class TrainingLog:
    samples: int = 0                  # presentations in this call, repeats included
    repeats: int = 0                  # samples shown again brighter
    running_accuracy: list = dataclasses.field(default_factory=list)  # (samples seen, acc)


def train(net: STDPNetwork, x, y, epochs: int = 1, *, checkpoint=None,
          checkpoint_every: int = 1000, update_interval: int = 250,
          progress: bool = True) -> TrainingLog:
    """Train ``net`` in place on ``x`` (values in [0, 1]) for ``epochs`` passes.

    ``y`` is used only for the running accuracy shown while training (labels
    are assigned from the last ``update_interval`` samples' responses and
    predict the next ones). With ``checkpoint`` (a path) the network is saved
    there every ``checkpoint_every`` samples and after each epoch; training
    continues from ``net.samples_seen``, so passing a loaded checkpoint
    resumes it.
    """
    from tqdm.auto import tqdm

    p = net.params
    x = np.asarray(x)
    y = np.asarray(y).reshape(-1)
    n = len(x)
    if n == 0:
        raise DataError("no training samples")
    total = epochs * n
    trainer = _trainer(net)
    log = TrainingLog()
    window_counts, window_labels = [], []
    assigned = None
    correct = seen_pred = 0
    bar = tqdm(total=total, initial=min(net.samples_seen, total), desc="training",
               unit="sample", disable=None if progress else True, dynamic_ncols=True)

    def save():
        net.weights, net.theta = trainer.state()
        if checkpoint is not None:
            net.save(checkpoint)

    try:
        for k in range(net.samples_seen, total):
            i = k % n
            intensity = p.intensity
            for attempt in range(p.max_repeats + 1):
                prob = _probabilities(p, x[i:i + 1], intensity)
                # the draws are fixed by the seed and the index k, so a resumed
                # training, and a brighter repeat, reuse them
                trains = poisson_trains(prob[0], p.steps, p.seed, k)
                counts = trainer.sample(trains, p.seed + k)
                log.samples += 1
                if counts.sum() >= p.min_spikes or attempt == p.max_repeats:
                    break
                log.repeats += 1
                intensity += p.intensity_step
            if assigned is not None:
                score = lab.all_activity_scores(counts[None], assigned, net.num_classes)
                correct += int(lab.predict(score)[0] == y[i])
                seen_pred += 1
            window_counts.append(counts)
            window_labels.append(y[i])
            if len(window_counts) == update_interval:
                assigned, _ = lab.assign_labels(np.array(window_counts), np.array(window_labels),
                                                net.num_classes)
                window_counts, window_labels = [], []
            net.samples_seen = k + 1
            bar.update(1)
            if seen_pred:
                acc = correct / seen_pred
                bar.set_postfix(acc=f"{acc:.3f}")
                if net.samples_seen % update_interval == 0:
                    log.running_accuracy.append((net.samples_seen, acc))
            if net.samples_seen % checkpoint_every == 0 or net.samples_seen % n == 0:
                save()
    finally:
        bar.close()
        net.weights, net.theta = trainer.state()
    return log


def _simulate(net: STDPNetwork, x, steps: int, key: int, record: bool):
    """Excitatory counts ``(B, n_exc)``, inhibitory and input totals ``(B, T)`` and, with
    ``record``, the excitatory spikes ``(B, T, n_exc)`` (else None)."""
    p = net.params
    prob = np.ascontiguousarray(_probabilities(p, x, p.intensity))
    b, n = len(prob), p.n_exc
    w = net.weights.astype(np.float32) * np.float32(net.weight_scale)
    counts = np.zeros((b, n), np.float32)
    inh, inputs = np.zeros((b, steps), np.float32), np.zeros((b, steps), np.float32)
    exc = np.zeros((b, steps, n) if record else (0, 0, 0), np.float32)
    run_batch_kernel(w, np.ascontiguousarray(net.theta, np.float32), prob, steps, key,
                     neuron_constants(p), p.one_spike, counts, inh, inputs, exc)
    return counts, inh, inputs, (exc if record else None)


def run_batch(net: STDPNetwork, x, steps: int | None = None, key: int | None = None):
    """Excitatory spikes ``(B, T, n_exc)``, inhibitory and input spike totals ``(B, T)``.

    Sample ``b`` of the batch draws its input spikes from ``key`` (default:
    the seed) and ``b``.
    """
    steps = net.params.steps if steps is None else int(steps)
    key = net.params.seed if key is None else int(key)
    _, inh, inputs, exc = _simulate(net, x, steps, key, record=True)
    return exc, inh, inputs


def spike_counts(net: STDPNetwork, x, batch_size: int = 250) -> np.ndarray:
    """Excitatory spike counts per sample over a whole presentation ``(N, n_exc)``."""
    out = []
    for start in range(0, len(x), batch_size):
        counts, *_ = _simulate(net, x[start:start + batch_size], net.params.steps,
                               net.params.seed + start, record=False)
        out.append(counts)
    return np.concatenate(out) if out else np.zeros((0, net.params.n_exc))


def label_neurons(net: STDPNetwork, x, y, batch_size: int = 250) -> None:
    """Assign every neuron its class from its responses to labelled samples ``x``."""
    counts = spike_counts(net, x, batch_size)
    net.assigned, net.proportions = lab.assign_labels(counts, np.asarray(y).reshape(-1),
                                                      net.num_classes)

