"""The INI simulator against Brian 2 on the same converted network: accuracy and speed.

Converts the bundled MNIST CNN (``snnconv/data/mnist_cnn.keras``, default)
with its max pooling replaced by average pooling (``max2avg_pool``, which
Brian 2 needs), and runs the same rate-coded network in the INI simulator
and in Brian 2 on the same test images for T steps. Prints the ANN's
accuracy, both SNNs' accuracies at T, their difference (target: within 1
point), spikes and SynOps per sample, the share of samples whose spike
counts per layer agree, and the seconds per sample of each simulator
(construction excluded; Brian 2 runs samples one after another).

    python benchmarks/compare_brian2.py [--model PATH] [--data NPZ] [--num 100]
        [--steps 100] [--codegen-target numpy|cython] [--batch-size 100]

Needs the brian2 extra (``pip install 'snnconv[brian2]'``, numpy < 2).
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from common import add_model_data_args, load_normalised  # noqa: E402


def timed_evaluate(net, x, y, steps, batch_size):
    start = time.perf_counter()
    result = snnconv.evaluate(net, x, y, num_steps=steps, batch_size=batch_size,
                              progress=False)
    return result, time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_data_args(ap, num=100)
    ap.add_argument("--batch-size", type=int, default=100)
    ap.add_argument("--codegen-target", default="numpy", choices=("numpy", "cython"))
    args = ap.parse_args()

    graph, x, y, ann_acc = load_normalised(args)

    start = time.perf_counter()
    ini_net = snnconv.convert(graph, simulator="INI", max2avg_pool=True, burst=1)
    ini_build = time.perf_counter() - start
    start = time.perf_counter()
    b2_net = snnconv.convert(graph, simulator="brian2", max2avg_pool=True,
                             codegen_target=args.codegen_target)
    b2_build = time.perf_counter() - start
    synapses = sum(len(s) for s in b2_net.synapses)

    ini, ini_s = timed_evaluate(ini_net, x, y, args.steps, args.batch_size)
    ini_max = snnconv.evaluate(snnconv.convert(graph, simulator="INI", burst=1), x, y,
                               num_steps=args.steps, batch_size=args.batch_size, progress=False)
    # the first Brian 2 sample generates the code; time it apart from the rest
    start = time.perf_counter()
    snnconv.evaluate(b2_net, x[:1], y[:1], num_steps=args.steps, progress=False)
    b2_first = time.perf_counter() - start
    b2, b2_s = timed_evaluate(b2_net, x, y, args.steps, args.batch_size)

    print(f"model {graph.name} (max pooling -> average pooling), {len(x)} test images, "
          f"T = {args.steps}, Brian 2 codegen target {args.codegen_target}, "
          f"{synapses:,} Brian 2 synapses")
    print(f"ANN accuracy (with max pooling): {100 * ann_acc:.2f} %; INI SNN with spiking max "
          f"pooling: {100 * ini_max.accuracy:.2f} % @T")
    print(f"{'simulator':<12}{'acc % @T':>10}{'spikes/sample':>15}{'SynOps/sample':>15}"
          f"{'s/sample':>10}{'build s':>9}")
    for name, r, secs, build in (("INI", ini, ini_s, ini_build),
                                 ("brian2", b2, b2_s, b2_build)):
        spikes = sum(v.sum() for v in r.spikes_per_step.values())
        print(f"{name:<12}{100 * r.accuracy:>10.2f}{spikes:>15,.0f}{r.synops:>15,.0f}"
              f"{secs / len(x):>10.4f}{build:>9.2f}")
    print(f"accuracy difference brian2 - INI: {100 * (b2.accuracy - ini.accuracy):+.2f} points; "
          f"predictions equal on {np.mean(b2.predictions == ini.predictions) * 100:.1f} % "
          f"of the images")
    for name in ini.spikes_per_step:
        a, b = ini.spikes_per_step[name].sum(), b2.spikes_per_step[name].sum()
        print(f"  spikes/sample {name:<12} INI {a:>12,.2f}  brian2 {b:>12,.2f}")
    print(f"Brian 2 first sample (code generation): {b2_first:.2f} s")


if __name__ == "__main__":
    main()
