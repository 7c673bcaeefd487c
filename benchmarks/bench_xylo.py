"""Speed of the bit-accurate Xylo simulation.

A 16-input / 500-hidden / 8-output network (a random ReLU MLP 16 -> 500 -> 8,
normalised on random inputs and quantized for Xylo Audio 2) runs at batch
size B for T steps; printed, all measured in this one run (best of several
repeats after a warm-up call):

* Xylo seconds per sample·step (the evaluation's compiled call: input
  encoding, integer dynamics, per-step readout, spikes and SynOps),
* the same with weight shift 7, where synaptic currents saturate and the
  exact in-order delivery runs (the slow path),
* the float INI simulation of the same network, for scale.

    python benchmarks/bench_xylo.py [--batch 100] [--steps 200] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from snnconv.simulators import get_simulator  # noqa: E402

# this folder is on sys.path when a benchmark runs as a script
from common import best_time  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((16,)), keras.layers.Dense(500, activation="relu"),
                              keras.layers.Dense(8)])
    x = np.random.default_rng(0).uniform(0, 1, (args.batch, 16)).astype(np.float32)
    graph = snnconv.normalize(snnconv.parse(model), x, method="max")
    xylo = get_simulator("xylo")
    per = args.batch * args.steps
    print(f"network 16 / 500 / 8, batch {args.batch}, T = {args.steps}")
    for label, shift in (("xylo (auto weight shift)", "auto"), ("xylo, weight shift 7", 7)):
        net = xylo.convert(graph, chip="syns61201", weight_shift=shift)
        seconds = best_time(lambda: xylo.simulate_batch(net, x, args.steps), args.repeats)
        print(f"{label:<28} {seconds / per * 1e6:8.2f} µs per sample·step "
              f"({seconds:.3f} s per batch; shift {net.spec.weight_shift_rec})")
    ini = get_simulator("INI")
    snn = ini.convert(graph, burst=1)
    seconds = best_time(lambda: ini.simulate_batch(snn, x, args.steps), args.repeats)
    print(f"{'INI float rate SNN':<28} {seconds / per * 1e6:8.2f} µs per sample·step "
          f"({seconds:.3f} s per batch)")


if __name__ == "__main__":
    main()
