"""``snnconv run`` with ``[stdp] enabled = true``: train, label and evaluate an STDP network.

The training checkpoint lives beside the run folder
(``.<run folder name>.stdp-checkpoint.npz``) while training, so that running
the same config again after an interruption resumes; it is removed once the
run folder is complete.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, SnnconvError

NETWORK_FILE = "stdp.npz"


def params_from_config(config, n_input: int):
    from .network import NetworkParams
    s = config.stdp
    return NetworkParams(
        n_input=n_input, n_exc=s.n_exc, time_per_sample=s.time_per_sample, rest=s.rest,
        dt=config.simulation.dt, intensity=s.intensity, exc_weight=s.exc_weight,
        inh_weight=s.inh_weight, theta_plus=s.theta_plus, tau_theta=s.tau_theta,
        refrac_exc=s.refrac_exc, refrac_inh=s.refrac_inh, one_spike=s.one_spike,
        w_norm=s.w_norm, min_spikes=s.min_spikes, seed=config.simulation.seed)


def parse_rule_params(text: str) -> dict:
    """``"nu_pre=1e-4; wta=false"`` -> ``{"nu_pre": 1e-4, "wta": False}``."""
    out = {}
    for item in (text or "").split(";"):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"stdp.rule_params: {item!r} is not name=value")
        value = value.strip()
        low = value.lower()
        if low in ("true", "false"):
            parsed = low == "true"
        elif value.startswith("[") and value.endswith("]"):
            try:
                parsed = [float(v) for v in value[1:-1].split(",") if v.strip()]
            except ValueError:
                raise ConfigError(f"stdp.rule_params: {item!r}: a list of numbers expected")
        else:
            try:
                parsed = int(value) if value.lstrip("+-").isdigit() else float(value)
            except ValueError:
                raise ConfigError(f"stdp.rule_params: {item!r}: the value is not a number "
                                  "or true/false") from None
        out[name.strip()] = parsed
    return out


def load_training_data(path, scale: float):
    """``(x_train, y_train, x_test, y_test)`` from an ``.npz``: x_train/y_train or x_norm/y_norm."""
    try:
        with np.load(path, allow_pickle=False) as z:
            files = set(z.files)
            pair = next(((a, b) for a, b in (("x_train", "y_train"), ("x_norm", "y_norm"))
                         if a in files and b in files), None)
            if pair is None or "x_test" not in files or "y_test" not in files:
                raise DataError(f"dataset {path}: STDP training needs x_train and y_train (or "
                                "x_norm and y_norm) and x_test and y_test")
            arrays = [z[pair[0]], z[pair[1]], z["x_test"], z["y_test"]]
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read dataset {path}: {e}") from None
    from ..evaluation import as_labels
    x_train, y_train, x_test, y_test = arrays
    return (x_train.astype(np.float32) * scale, as_labels(y_train),
            x_test.astype(np.float32) * scale, as_labels(y_test))


def checkpoint_path(run_dir: Path) -> Path:
    return run_dir.parent / f".{run_dir.name}.stdp-checkpoint.npz"


def run_stdp(config):
    from ..evaluation import evaluate
    from ..results import RunOutcome, staged_run_dir, write_results
    from .model import load_stdp
    from .training import label_neurons, new_network, train

    if config.input.dataset_format != "npz":
        raise ConfigError("input.dataset_format = folder: STDP training reads an .npz file")
    if config.paths.dataset_path is None or not Path(config.paths.dataset_path).is_file():
        raise DataError("paths.dataset_path must be an .npz file with the training and test "
                        "data for an STDP run")
    verbose = config.output.verbose
    say = print if verbose else (lambda *a, **k: None)
    s, sim = config.stdp, config.simulation
    x_train, y_train, x_test, y_test = load_training_data(config.paths.dataset_path,
                                                          config.input.input_scale)
    x_train, y_train = x_train[:s.num_train], y_train[:s.num_train]
    x_test, y_test = x_test[:sim.num_to_test], y_test[:sim.num_to_test]
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    params = params_from_config(config, int(np.prod(x_train.shape[1:])))
    rule_params = parse_rule_params(s.rule_params)
    try:
        fresh = new_network(params, s.rule, rule_params, num_classes, x_train.shape[1:],
                            name=f"stdp_{s.rule}_{s.n_exc}")
    except ValueError as e:
        raise ConfigError(f"stdp.rule / stdp.rule_params: {e}") from None

    run_dir = config.paths.log_dir_of_current_run
    ckpt = checkpoint_path(run_dir)
    net = fresh
    if ckpt.exists():
        old = load_stdp(ckpt)
        if (old.params, old.rule, old.rule_params) != (fresh.params, fresh.rule,
                                                       fresh.rule_params):
            raise SnnconvError(f"{ckpt} is a training checkpoint made with other [stdp] "
                               "settings; delete it to start again")
        net = old
        say(f"resuming the training from {ckpt} ({net.samples_seen} samples done)")
    say(f"training {net.name}: {params.n_exc} excitatory neurons, rule {s.rule}, "
        f"{len(x_train)} samples x {s.epochs} epoch(s), {params.steps} steps each")
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    log = train(net, x_train, y_train, epochs=s.epochs, checkpoint=ckpt,
                checkpoint_every=s.checkpoint_every, progress=verbose > 0)
    train_s = time.perf_counter() - t0
    n_label = min(s.num_label_samples, len(x_train))
    label_neurons(net, x_train[-n_label:], y_train[-n_label:])
    say(f"labelled the neurons on {n_label} training samples "
        f"({int(np.sum(net.assigned >= 0))} of {params.n_exc} neurons fired)")
    result = evaluate(net, x_test, y_test, num_steps=params.steps, batch_size=sim.batch_size,
                      top_k=sim.top_k, progress=verbose > 0)
    extra = {"model": net.name, "simulator": "stdp", "stdp_rule": s.rule,
             "stdp_rule_params": rule_params,
             "accuracy_all_activity": result.accuracy,
             "accuracy_proportion_weighting": result.other_accuracy.get("proportion"),
             "training_samples": len(x_train) * s.epochs,
             "training_presentations": log.samples,
             "training_seconds_this_run": train_s,
             "neurons_labelled": int(np.sum(net.assigned >= 0))}
    with staged_run_dir(run_dir, overwrite=config.output.overwrite) as stage:
        net.save(stage / NETWORK_FILE)
        summary = write_results(stage, result, None, config.to_ini(), plot=config.output.plot,
                                extra=extra)
        if config.output.plot:
            plot_receptive_fields(net, stage / "receptive_fields.png")
    ckpt.unlink(missing_ok=True)
    if verbose:
        print(format_stdp_table(net, result, extra))
        print(f"results written to {run_dir}")
    return RunOutcome(run_dir, summary, None, result, net)


def format_stdp_table(net, result, extra) -> str:
    line = "-" * 60
    pa = extra["accuracy_proportion_weighting"]
    rows = [f"{net.name}: STDP ({net.rule}), {result.num_samples} samples, "
            f"T = {result.num_steps} steps", line,
            f"{'accuracy, all-activity vote':<36}{100 * result.accuracy:6.2f} %",
            f"{'accuracy, proportion weighting':<36}"
            + ("n/a" if pa is None else f"{100 * pa:6.2f} %"),
            f"{'neurons labelled':<36}{extra['neurons_labelled']} / {net.params.n_exc}",
            f"{'spikes per sample':<36}{result.total_spikes:,.1f}",
            f"{'SynOps per sample':<36}{result.synops:,.0f}",
            f"{'training time (this run)':<36}{extra['training_seconds_this_run']:.1f} s",
            line]
    return "\n".join(rows)


def plot_receptive_fields(net, path: Path) -> Path:
    """The input weights of every excitatory neuron as an image, with its label."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shape = tuple(net.input_shape)
    side = shape[:2] if len(shape) >= 2 else (1, shape[0])
    n = net.params.n_exc
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 0.9, rows * 0.95), squeeze=False)
    w = net.weights.astype(np.float64)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = w[:, i].reshape(side + (-1,)).mean(axis=-1)
        ax.imshow(img, cmap="hot_r", vmin=0)
        label = int(net.assigned[i])
        ax.set_title(str(label) if label >= 0 else "-", fontsize=6, pad=1)
    fig.suptitle(f"{net.name}: input weights per excitatory neuron (title: label)", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path

