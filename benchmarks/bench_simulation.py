"""Speed of the compiled simulation against the ANN it was converted from.

Prints, for the bundled MNIST CNN at batch size B and T time steps, all
measured in this one run (best of several repeats, after a warm-up call):

* ANN seconds per sample (one forward pass, batch B),
* SNN seconds per sample and step (the evaluation's full compiled call:
  simulation plus per-step accuracy/spike/SynOp summaries),
* the ratio (SNN time for T steps) / (T x ANN forward time); target <= 2,

for each spike code (rate, ttfs, ttfs_dyn_thresh).

    python benchmarks/bench_simulation.py [--batch 100] [--steps 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import snnconv  # noqa: E402
from snnconv.data import bundled_dataset_path, bundled_model_path  # noqa: E402
from snnconv.datasets import load_dataset  # noqa: E402
from snnconv.simulation import simulate_batch  # noqa: E402


def best_time(fn, repeats):
    fn()                                   # warm-up: tracing and compilation
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--codes", default="rate,ttfs,ttfs_dyn_thresh")
    args = ap.parse_args()

    ann = snnconv.load_model(bundled_model_path())
    graph = snnconv.parse(ann)
    data = load_dataset(bundled_dataset_path(), graph.input_node.output_shape, 1 / 255)
    graph = snnconv.normalize(graph, data.x_norm)
    x = data.x_test[:args.batch]

    ann_s = best_time(lambda: ann.predict_on_batch(x), args.repeats * 5)
    print(f"model {graph.name}, batch {args.batch}, T = {args.steps} steps, "
          f"{os.cpu_count()} CPU cores")
    print(f"ANN forward: {ann_s / args.batch * 1e6:.2f} us per sample")
    print(f"{'spike code':<18}{'us / sample·step':>18}{'SNN(T) / (T x ANN)':>22}")
    for code in args.codes.split(","):
        snn = snnconv.convert(graph, spike_code=code)
        snn_s = best_time(lambda: simulate_batch(snn, x, args.steps), args.repeats)
        per_sample_step = snn_s / (args.batch * args.steps)
        print(f"{code:<18}{per_sample_step * 1e6:>18.2f}{snn_s / (args.steps * ann_s):>22.2f}")
    print("target for the ratio: <= 2")


if __name__ == "__main__":
    main()
