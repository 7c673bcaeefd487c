"""Training an STDP network sample by sample, and running it on batches.

:func:`train` presents the training samples one at a time; each sample is
one compiled call (``tf.function`` with XLA) that simulates all its time
steps and applies the learning rule at every step. Python only loops over
samples: it shows a progress bar with the running accuracy, shows a sample
again brighter when the network answered with too few spikes, and saves a
checkpoint every ``checkpoint_every`` samples and after each epoch, from
which an interrupted training resumes (the input spikes of sample ``k`` are
drawn from the seed and ``k``, so a resumed run sees what an uninterrupted
one would have). The spike trains are drawn on the host with NumPy, one
array per sample: XLA's CPU random generator is far slower.

:func:`run_batch` simulates a batch with fixed weights and thresholds
(no learning) and returns the excitatory spikes of every step.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np
import tensorflow as tf

from ..errors import DataError
from . import labels as lab
from .model import STDPNetwork
from .network import NetworkParams, initial_neuron_state, input_spikes, neuron_step, \
    normalize_columns, INT_THRESHOLD_UNITS
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


class _Trainer:
    """The compiled per-sample simulation with learning."""

    def __init__(self, net: STDPNetwork):
        p = net.params
        self.params = p
        self.rule = make_rule(net.rule, **net.rule_params)
        scale = net.weight_scale
        rule = self.rule
        normalize = p.w_norm > 0 and not rule.normalizes and not rule.integer
        theta_decay = math.exp(-p.dt / p.tau_theta)
        rest_decay = math.exp(-p.rest / p.tau_theta)       # theta decays over the rest too

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
                lambda t, *_: t < p.steps, body,
                (tf.constant(0), w, theta, state, rstate, counts))
            w = rule.end_of_sample(w, rstate)
            if normalize:
                w = normalize_columns(w, p.w_norm)
            return w, theta * rest_decay, counts

        self.train_sample = train_sample


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
    trainer = _Trainer(net)
    w = tf.constant(net.weights)
    theta = tf.constant(net.theta)
    log = TrainingLog()
    window_counts, window_labels = [], []
    assigned = None
    correct = seen_pred = 0
    bar = tqdm(total=total, initial=min(net.samples_seen, total), desc="training",
               unit="sample", disable=None if progress else True, dynamic_ncols=True)

    def save():
        net.weights, net.theta = w.numpy(), theta.numpy()
        if checkpoint is not None:
            net.save(checkpoint)

    try:
        for k in range(net.samples_seen, total):
            i = k % n
            intensity = p.intensity
            # the sample's uniform draws are fixed by the seed and its index k, so a
            # resumed training, and a brighter repeat, reuse them
            uniform = np.random.default_rng([p.seed, k]).random((p.steps, p.n_input),
                                                                 dtype=np.float32)
            for attempt in range(p.max_repeats + 1):
                prob = _probabilities(p, x[i:i + 1], intensity)
                trains = uniform < prob
                w, theta, counts = trainer.train_sample(w, theta, tf.constant(trains),
                                                        tf.constant(p.seed + k, tf.int32))
                log.samples += 1
                if float(tf.reduce_sum(counts)) >= p.min_spikes or attempt == p.max_repeats:
                    break
                log.repeats += 1
                intensity += p.intensity_step
            counts = counts.numpy()
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
        net.weights, net.theta = w.numpy(), theta.numpy()
    return log


def _runner(net: STDPNetwork):
    cached = getattr(net, "_compiled", None)
    if cached is not None and cached[0] is net.weights:
        return cached[1]
    p = net.params
    w = tf.constant(net.weights.astype(np.float32) * net.weight_scale)
    theta = tf.constant(net.theta[None].astype(np.float32))

    @tf.function(reduce_retracing=True)
    def run(prob, key, steps):
        batch = tf.shape(prob)[0]
        state = initial_neuron_state(p, batch)
        exc = tf.TensorArray(tf.float32, size=steps)
        inh = tf.TensorArray(tf.float32, size=steps)
        inputs = tf.TensorArray(tf.float32, size=steps)

        def body(t, state, exc, inh, inputs):
            s_in = input_spikes(prob, key, t)
            state, s, _ = neuron_step(p, state, s_in, w, theta)
            return (t + 1, state, exc.write(t, s), inh.write(t, tf.reduce_sum(state[5], 1)),
                    inputs.write(t, tf.reduce_sum(s_in, 1)))

        _, _, exc, inh, inputs = tf.while_loop(lambda t, *_: t < steps, body,
                                               (tf.constant(0), state, exc, inh, inputs))
        return (tf.transpose(exc.stack(), [1, 0, 2]), tf.transpose(inh.stack()),
                tf.transpose(inputs.stack()))

    net._compiled = (net.weights, run)
    return run


def run_batch(net: STDPNetwork, x, steps: int | None = None, key: int | None = None):
    """Excitatory spikes ``(B, T, n_exc)``, inhibitory and input spike totals ``(B, T)``."""
    p = net.params
    steps = p.steps if steps is None else int(steps)
    prob = _probabilities(p, x, p.intensity)
    key = p.seed if key is None else key
    exc, inh, inputs = _runner(net)(tf.constant(prob), tf.constant(int(key), tf.int32),
                                    tf.constant(steps))
    return exc.numpy(), inh.numpy(), inputs.numpy()


def spike_counts(net: STDPNetwork, x, batch_size: int = 250) -> np.ndarray:
    """Excitatory spike counts per sample over a whole presentation ``(N, n_exc)``."""
    out = []
    for start in range(0, len(x), batch_size):
        exc, _, _ = run_batch(net, x[start:start + batch_size], key=net.params.seed + start)
        out.append(exc.sum(axis=1))
    return np.concatenate(out) if out else np.zeros((0, net.params.n_exc))


def label_neurons(net: STDPNetwork, x, y, batch_size: int = 250) -> None:
    """Assign every neuron its class from its responses to labelled samples ``x``."""
    counts = spike_counts(net, x, batch_size)
    net.assigned, net.proportions = lab.assign_labels(counts, np.asarray(y).reshape(-1),
                                                      net.num_classes)

