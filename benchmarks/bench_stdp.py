"""Speed of STDP training and inference (Diehl & Cook network, 784 inputs).

For 100 and 400 excitatory neurons, 350 steps of 1 ms per sample, on the
bundled MNIST subset, prints in this one run:

* seconds per training sample (one compiled call per sample: simulation and
  learning, the numba kernel; after a warm-up that compiles),
* seconds per inference sample (fixed weights, batches of 250, numba).

Targets: <= 0.03 s per training sample, <= 0.005 s per inference sample
(BindsNET 0.3.4 on 2 CPU cores: about 0.15 and 0.10 s at 100 neurons).

    python benchmarks/bench_stdp.py [--neurons 100,400] [--train 100] [--infer 1000]
        [--rule postpre]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from snnconv.data import bundled_dataset_path  # noqa: E402
from snnconv.stdp import NetworkParams, new_network, spike_counts, train  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", default="100,400")
    ap.add_argument("--train", type=int, default=100)
    ap.add_argument("--infer", type=int, default=1000)
    ap.add_argument("--rule", default="postpre")
    args = ap.parse_args()
    with np.load(bundled_dataset_path()) as d:
        x_train = d["x_norm"].astype(np.float32) / 255
        y_train = d["y_norm"]
        x_test = d["x_test"].astype(np.float32) / 255
    print(f"rule {args.rule}, 784 inputs, 350 steps per sample")
    for n in (int(v) for v in args.neurons.split(",")):
        net = new_network(NetworkParams(n_exc=n), rule=args.rule)
        train(net, x_train[:3], y_train[:3], progress=False)          # compile
        k = args.train
        net.samples_seen = 0                # count the timed samples from the start
        t0 = time.perf_counter()
        log = train(net, x_train[3:3 + k], y_train[3:3 + k], progress=False)
        per_train = (time.perf_counter() - t0) / k
        net.assigned[:] = 0
        spike_counts(net, x_test[:250])                                  # compile
        t0 = time.perf_counter()
        spike_counts(net, x_test[:args.infer], batch_size=250)
        per_infer = (time.perf_counter() - t0) / args.infer
        print(f"{n:>4} neurons: {per_train:.4f} s per training sample "
              f"({log.repeats} repeated), {per_infer:.5f} s per inference sample")


if __name__ == "__main__":
    main()
