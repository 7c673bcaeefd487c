"""Event-driven against dense convolution at the spike densities the rate code has.

Issue 22 asks whether propagating only the spikes (each active input adds
its kernel's weights to the outputs it reaches) beats TensorFlow's dense
convolution (oneDNN) on this CPU, layer by layer. Measured in this one run:

1. the density each spiking layer of the example networks has: the mean
   share of its neurons that spike in a step (rate code, snnconv's defaults,
   ``--num`` test images, the networks' ``bench_engine.py`` steps);
2. for the convolutions of those networks (3x3, ``same``) at batch
   ``--batch``: the dense ``tf.nn.conv2d`` and two compiled event-driven ones
   (numba, parallel over the batch) on random binary frames of each density:
   ``gather`` (stride 1 only: per input position the list of its non-zero
   channels, per output position a gather over the 3x3 neighbours' lists)
   and ``scatter`` (any stride: each non-zero input adds its kernel's
   weights to the outputs it reaches); printed, for each, the speed-up
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

# (height, width, in channels, out channels, stride): fashion_resnet's block
# convolutions at 14x14 and 7x7 and its two that halve the map, and the bundled
# CNN's second convolution (on 14x14 pooled spikes)
LAYERS = {"fashion_resnet 14x14x24->24": (14, 14, 24, 24, 1),
          "fashion_resnet 7x7x32->32": (7, 7, 32, 32, 1),
          "fashion_resnet 28x28x16->24 /2": (28, 28, 16, 24, 2),
          "fashion_resnet 14x14x24->32 /2": (14, 14, 24, 32, 2),
          "mnist_cnn 14x14x16->32": (14, 14, 16, 32, 1)}


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


@numba.njit(parallel=True, fastmath=True, cache=True)
def scatter_conv(x, w, bias, stride, pad_top, pad_left, out_h, out_w):
    """``same`` convolution of NHWC ``x`` (TensorFlow's padding ``pad_top``,
    ``pad_left``) in which each non-zero input adds its weights to the outputs it reaches."""
    n, h, wd, c_in = x.shape
    k, c_out = w.shape[0], w.shape[3]
    out = np.empty((n, out_h, out_w, c_out), np.float32)
    for b in numba.prange(n):
        # k rows and columns of margin on each side take the taps that fall outside
        acc = np.zeros((out_h + 2 * k, out_w + 2 * k, c_out), np.float32)
        for i in range(h):
            for j in range(wd):
                for c in range(c_in):
                    v = x[b, i, j, c]
                    if v == 0.0:
                        continue
                    for di in range(k):
                        t = i + pad_top - di
                        if t % stride != 0:
                            continue
                        oi = t // stride + k
                        for dj in range(k):
                            u = j + pad_left - dj
                            if u % stride != 0:
                                continue
                            oj = u // stride + k
                            for o in range(c_out):
                                acc[oi, oj, o] += v * w[di, dj, c, o]
        for oi in range(out_h):
            for oj in range(out_w):
                for o in range(c_out):
                    out[b, oi, oj, o] = acc[oi + k, oj + k, o] + bias[o]
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
    from bench_floor import shares
    for name in ("mnist_cnn", "fashion_resnet"):
        batch, steps = bench_engine.SETTINGS[name]
        ann, x_norm, x_test, y_test = bench_engine.network(name)
        snn = snnconv.convert(snnconv.normalize(snnconv.parse(ann), x_norm), burst=1)
        density = shares(snn, x_test[:num], y_test[:num], batch, steps)
        print(f"{name} (T {steps}, {num} images): share of neurons spiking per step: "
              + ", ".join(f"{k} {100 * v:.1f} %" for k, v in density.items()))


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
    print("speed-up of the event-driven convolutions over tf.nn.conv2d (dense time / "
          "event-driven time) at each density:")
    print("layer".ljust(32) + "kernel  " + "".join(f"{d:>7.2f}" for d in args.densities))
    for label, (h, wd, c_in, c_out, stride) in LAYERS.items():
        w = rng.normal(0, 0.1, (3, 3, c_in, c_out)).astype(np.float32)
        bias = rng.normal(0, 0.1, c_out).astype(np.float32)
        wt, bt = tf.constant(w), tf.constant(bias)
        out_h, out_w = -(-h // stride), -(-wd // stride)
        # TensorFlow's "same" padding: the extra row or column goes at the bottom/right
        pad_top = max((out_h - 1) * stride + 3 - h, 0) // 2
        pad_left = max((out_w - 1) * stride + 3 - wd, 0) // 2
        kernels = {"scatter": lambda x: scatter_conv(x, w, bias, stride, pad_top, pad_left,
                                                     out_h, out_w)}
        if stride == 1:
            kernels = {"gather": lambda x: event_conv(x, w, bias), **kernels}
        rows = {name: [] for name in kernels}
        worst, dense_ms = 0.0, []
        for d in args.densities:
            x = (rng.random((args.batch, h, wd, c_in)) < d).astype(np.float32)
            xt = tf.constant(x)
            dense = best(lambda: (tf.nn.conv2d(xt, wt, stride, "SAME") + bt).numpy(),
                         args.repeats)
            ref = (tf.nn.conv2d(xt, wt, stride, "SAME") + bt).numpy()
            for name, kernel in kernels.items():
                rows[name].append(dense / best(lambda: kernel(x), args.repeats))
                worst = max(worst, float(np.abs(kernel(x) - ref).max()))
            dense_ms.append(dense * 1e3)
        for i, (name, row) in enumerate(rows.items()):
            note = (f"   (dense {min(dense_ms):.2f}-{max(dense_ms):.2f} ms a call; largest "
                    f"difference {worst:.1e})") if i == len(rows) - 1 else ""
            print((label if i == 0 else "").ljust(32) + name.ljust(8)
                  + "".join(f"{r:>7.2f}" for r in row) + note)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
