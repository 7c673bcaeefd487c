"""Accuracy, spikes, SynOps and decision time of each spike code, on one network.

For the bundled MNIST CNN (default) or any `.keras` model with MNIST-shaped
input, prints one row per spike code (rate, ttfs, ttfs_dyn_thresh): accuracy
at the end and at its best step, spikes per neuron (max over layers), SynOps
per sample, how many times fewer SynOps than the rate code needs at its own
best accuracy, and the mean decision time of the TTFS codes. Everything is
measured in this one run, on the same images.

The rate code runs ``--steps`` steps of dt = 1. The TTFS codes carry values
in spike times, so they run with a finer step, ``--ttfs-dt`` (default 0.25),
for ``--ttfs-duration`` time units (default 40); ``--early-stopping`` stops
each batch once all its samples have decided, so their SynOps then count
only up to the decision. Times (best step, decision) are printed in time
units.

    python benchmarks/compare_codes.py [--model PATH] [--data NPZ] [--num 1000]
        [--steps 100] [--ttfs-dt 0.25] [--ttfs-duration 40] [--early-stopping]
        [--norm max|percentile] [--percentile 99.9]

``--data`` takes an .npz with x_test/y_test (uint8 0..255) and x_norm or
x_train, e.g. the bundled subset (default) or ../shared/data/mnist.npz.
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from common import add_model_data_args, load_normalised  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_data_args(ap, num=1000)
    ap.add_argument("--ttfs-dt", type=float, default=0.25)
    ap.add_argument("--ttfs-duration", type=float, default=40.0)
    ap.add_argument("--early-stopping", action="store_true")
    ap.add_argument("--norm", choices=("max", "percentile"), default="percentile")
    ap.add_argument("--percentile", type=float, default=99.9)
    ap.add_argument("--codes", default="rate,ttfs,ttfs_dyn_thresh")
    args = ap.parse_args()

    graph, x, y, ann_acc = load_normalised(args, method=args.norm, percentile=args.percentile,
                                           per_channel=False)  # as the TTFS templates
    print(f"model {graph.name}, {len(x)} test images, rate: {args.steps} steps of dt 1; "
          f"TTFS: {args.ttfs_duration:g} time units of dt {args.ttfs_dt:g}"
          + (" with early stopping" if args.early_stopping else "")
          + f"; normalisation {args.norm}"
          + (f" {args.percentile:g}" if args.norm != "max" else ""))
    print(f"ANN accuracy {100 * ann_acc:.2f} %, ANN MACs per sample "
          f"{sum(snnconv.ann.count_macs(graph).values()):,}")
    header = (f"{'code':<17}{'acc end %':>10}{'best %':>8}{'@time':>6}{'max spk/neuron':>15}"
              f"{'SynOps/sample':>15}{'rate/this':>10}{'decision t':>11}")
    print(header)
    rate_best_synops = None
    for code in args.codes.split(","):
        rate = code in ("rate", "temporal_mean_rate")
        dt = 1.0 if rate else args.ttfs_dt
        steps = args.steps if rate else int(round(args.ttfs_duration / dt))
        snn = snnconv.convert(graph, spike_code=code, dt=dt)
        r = snnconv.evaluate(snn, x, y, num_steps=steps, batch_size=100, progress=False,
                             early_stopping=args.early_stopping)
        best = int(np.argmax(r.accuracy_per_step)) + 1
        synops_best = float(r.synops_per_step[:best].sum())
        max_spikes = max(r.spikes_per_neuron.values()) if rate \
            else _max_spikes_per_neuron(snn, x[:max(10, 10000 // steps)], steps)
        if rate:
            rate_best_synops = synops_best
        ratio = f"{rate_best_synops / r.synops:.1f}" if rate_best_synops else "-"
        dec = r.mean_decision_time
        print(f"{code:<17}{100 * r.accuracy:>10.2f}{100 * r.accuracy_at(best):>8.2f}"
              f"{best * dt:>6g}"
              f"{max_spikes:>15.2f}{r.synops:>15,.0f}{ratio:>10}"
              f"{'-' if dec is None else f'{dec:.1f}':>11}")


def _max_spikes_per_neuron(snn, x, steps):
    """The most spikes any single neuron fires (TTFS: must be <= 1), from the
    layers' own PSP sequences (0 before the spike, 1 after). Sequence mode
    holds every step in memory, hence few images for long runs."""
    import keras

    from snnconv.simulators.ini import spiking_layers
    frames = np.repeat(x[:, None], steps, axis=1)
    most = 0.0
    for lay in spiking_layers(snn):
        psp = np.asarray(keras.Model(snn.inputs, lay.output)([frames]))
        psp = psp[:len(x)]                      # drop a ttfs_dyn_thresh prospective half
        rises = np.diff(np.concatenate([np.zeros_like(psp[:, :1]), psp], axis=1), axis=1)
        most = max(most, float((rises > 0).sum(axis=1).max()))
    return most


if __name__ == "__main__":
    main()
