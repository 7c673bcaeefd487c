"""Speed of the compiled simulation against the ANN it was converted from.

Prints, for the bundled MNIST CNN at batch size B and T time steps, all
measured in this one run (best of several repeats, after a warm-up call):

* ANN seconds per sample (one forward pass, batch B),
* SNN seconds per sample and step (the evaluation's full compiled call:
  simulation plus per-step accuracy/spike/SynOp summaries),
* the ratio (SNN time for T steps) / (T x ANN forward time); target <= 2,

for each spike code (rate, ttfs, ttfs_dyn_thresh); then, for the TTFS codes
at the settings of config_templates/ttfs.ini (dt 0.25, 160 steps), the
milliseconds per sample of a whole run over 5 batches without and with
early stopping.

    python benchmarks/bench_simulation.py [--batch 100] [--steps 100] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import snnconv  # noqa: E402
from snnconv.data import bundled_dataset_path, bundled_model_path  # noqa: E402
from snnconv.datasets import load_dataset  # noqa: E402
from snnconv.simulators.ini import simulate_batch  # noqa: E402
from common import best_time  # noqa: E402


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
        snn = snnconv.convert(graph, spike_code=code, burst=1)
        snn_s = best_time(lambda: simulate_batch(snn, x, args.steps), args.repeats)
        per_sample_step = snn_s / (args.batch * args.steps)
        print(f"{code:<18}{per_sample_step * 1e6:>18.2f}{snn_s / (args.steps * ann_s):>22.2f}")
    print("target for the ratio: <= 2")

    ttfs_codes = [c for c in args.codes.split(",") if c.startswith("ttfs")]
    if ttfs_codes:
        # a batch runs on until its last sample decides (or to the end if one
        # never does), so average over several batches
        images = data.x_test[:5 * args.batch]
        print(f"TTFS at dt 0.25, 160 steps: ms per sample over {len(images)} images "
              f"(batch {args.batch})")
        print(f"{'spike code':<18}{'full run':>12}{'early stopping':>16}")
    for code in ttfs_codes:
        snn = snnconv.convert(graph, spike_code=code, dt=0.25)

        def run_all(stop):
            for i in range(0, len(images), args.batch):
                simulate_batch(snn, images[i:i + args.batch], 160, early_stopping=stop)

        full, early = (best_time(lambda: run_all(stop), 1) / len(images) * 1e3
                       for stop in (False, True))
        print(f"{code:<18}{full:>12.2f}{early:>16.2f}")


if __name__ == "__main__":
    main()
