"""Event-driven against dense convolution at the spike densities the rate code has.

Issue 22 asks whether propagating only the spikes (each active input adds
its kernel's weights to the outputs it reaches) beats TensorFlow's dense
convolution (oneDNN) on this CPU, layer by layer. Measured in this one run:

1. the density each spiking layer of the example networks has: the mean
   share of its neurons that spike in a step (rate code, snnconv's defaults,
   ``--num`` test images, the networks' ``bench_engine.py`` steps);
2. for the convolutions of those networks (3x3, ``same``, stride 1) at batch
   ``--batch``: the dense ``tf.nn.conv2d`` and a compiled event-driven one
   (numba, parallel over the batch: per input position the list of its
   non-zero channels, per output position a gather over the 3x3 neighbours'
   lists) on random binary frames of each density; printed, the speed-up
   (dense time / event-driven time; > 1: event-driven is faster) and the
   largest difference from the dense result, and the dense call's time.

    python benchmarks/bench_sparse_conv.py [--batch 100] [--densities 0.02 0.05 0.1 0.15 0.2 0.3]
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numba  # noqa: E402
import numpy as np  # noqa: E402

# (height, width, in channels, out channels): fashion_resnet's block convolutions
# at 14x14 and 7x7, and the bundled CNN's second convolution (on 14x14 pooled spikes)
LAYERS = {"fashion_resnet 14x14x24->24": (14, 14, 24, 24),
          "fashion_resnet 7x7x32->32": (7, 7, 32, 32),
          "mnist_cnn 14x14x16->32": (14, 14, 16, 32)}


@numba.njit(parallel=True, cache=True)
def event_conv(x, w, bias):
    """``same``, stride-1 convolution of NHWC ``x`` touching only its non-zero values."""
    n, h, wd, c_in = x.shape
    k, c_out = w.shape[0], w.shape[3]
    pad = k // 2
    out = np.empty((n, h, wd, c_out), np.float32)
    for b in numba.prange(n):
        active = np.empty((h, wd, c_in), np.int32)
        count = np.zeros((h, wd), np.int32)
        for i in range(h):
            for j in range(wd):
                m = 0
                for c in range(c_in):
                    if x[b, i, j, c] != 0.0:
                        active[i, j, m] = c
                        m += 1
                count[i, j] = m
        acc = np.empty(c_out, np.float32)
        for oi in range(h):
            for oj in range(wd):
                acc[:] = bias
                for di in range(k):
                    ii = oi + di - pad
                    if ii < 0 or ii >= h:
                        continue
                    for dj in range(k):
                        jj = oj + dj - pad
                        if jj < 0 or jj >= wd:
                            continue
                        for q in range(count[ii, jj]):
                            c = active[ii, jj, q]
                            v = x[b, ii, jj, c]
                            for o in range(c_out):
                                acc[o] += v * w[di, dj, c, o]
                out[b, oi, oj, :] = acc
    return out


def best(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def densities(num: int) -> None:
    import bench_engine
    import snnconv
    from snnconv.simulators.ini.engine import spiking_layers
    for name in ("mnist_cnn", "fashion_resnet"):
        batch, steps = bench_engine.SETTINGS[name]
        ann, x_norm, x_test, y_test = bench_engine.network(name)
        snn = snnconv.convert(snnconv.normalize(snnconv.parse(ann), x_norm), burst=1)
        result = snnconv.evaluate(snn, x_test[:num], y_test[:num], num_steps=steps,
                                  batch_size=batch, progress=False)
        shares = {lay.name: result.spikes_per_neuron[lay.name] / steps
                  for lay in spiking_layers(snn) if lay.name in result.spikes_per_neuron}
        print(f"{name} (T {steps}, {num} images): share of neurons spiking per step: "
              + ", ".join(f"{k} {100 * v:.1f} %" for k, v in shares.items()))


def main(argv=None) -> int:
    import tensorflow as tf
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--densities", type=float, nargs="+",
                    default=[0.02, 0.05, 0.1, 0.15, 0.2, 0.3])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--num", type=int, default=100,
                    help="test images for the measured densities (0: skip them)")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores, numba {numba.__version__} with "
          f"{numba.get_num_threads()} threads, batch {args.batch}")
    if args.num:
        densities(args.num)
    rng = np.random.default_rng(0)
    print("speed-up of the event-driven convolution over tf.nn.conv2d (dense time / "
          "event-driven time) at each density:")
    print("layer".ljust(30) + "".join(f"{d:>8.2f}" for d in args.densities))
    for label, (h, wd, c_in, c_out) in LAYERS.items():
        w = rng.normal(0, 0.1, (3, 3, c_in, c_out)).astype(np.float32)
        bias = rng.normal(0, 0.1, c_out).astype(np.float32)
        wt, bt = tf.constant(w), tf.constant(bias)
        row, worst, dense_ms = [], 0.0, []
        for d in args.densities:
            x = (rng.random((args.batch, h, wd, c_in)) < d).astype(np.float32)
            xt = tf.constant(x)
            dense = best(lambda: (tf.nn.conv2d(xt, wt, 1, "SAME") + bt).numpy(), args.repeats)
            event = best(lambda: event_conv(x, w, bias), args.repeats)
            ref = (tf.nn.conv2d(xt, wt, 1, "SAME") + bt).numpy()
            worst = max(worst, float(np.abs(event_conv(x, w, bias) - ref).max()))
            row.append(dense / event)
            dense_ms.append(dense * 1e3)
        print(label.ljust(30) + "".join(f"{r:>8.2f}" for r in row)
              + f"   (dense {min(dense_ms):.2f}-{max(dense_ms):.2f} ms a call; "
              f"largest difference {worst:.1e})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
