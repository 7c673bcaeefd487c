"""Speed of the event-driven simulator (ttfs_exact) against the Keras ANN, and clocked INI per dt.

All measured in this one run, on the same images (best of ``--repeats``
after a warm-up):

* the Keras ANN's own ``predict`` on ``--num`` test images (batch ``--batch``);
* ``snnconv.evaluate`` of the event-driven network on the same images: the
  whole evaluation (closed-form spike times of every layer, spikes, SynOps,
  readout grid, scoring), and the ratio to the ANN (target <= 3, goal <= 1.5);
* the same ttfs_exact network clocked on the INI simulator for each ``--dts``
  on ``--ini-num`` images: milliseconds per sample, steps, accuracy and the
  share of predictions equal to the event-driven ones.

    python benchmarks/bench_event.py [--model M.keras --data D.npz] [--num 2000]
        [--batch 100] [--dts 0.5,0.2,0.1,0.05] [--ini-num 200]
"""
from __future__ import annotations

import argparse
import math
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from common import add_model_data_args, load_normalised, timed  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_data_args(ap, num=2000)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--dts", default="0.5,0.2,0.1,0.05")
    ap.add_argument("--ini-num", type=int, default=200)
    args = ap.parse_args()

    graph, x, y, ann_acc = load_normalised(args, method="percentile", percentile=99.9,
                                           per_channel=False)  # as the TTFS templates
    x = np.asarray(x, np.float32)
    ann = snnconv.load_model(args.model)
    net = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    print(f"model {graph.name}, {len(x)} images, batch {args.batch}, {os.cpu_count()} CPU "
          f"cores; ttfs_exact windows {', '.join(f'{t:.3g}' for t in net.windows.lengths)}, "
          f"readout at t = {net.windows.t_readout:.4g}")

    ann_s, probs = timed(lambda: ann.predict(x, batch_size=args.batch, verbose=0),
                             args.repeats)
    ev_s, r = timed(lambda: snnconv.evaluate(net, x, y, batch_size=args.batch,
                                                 progress=False), args.repeats)
    agree = float(np.mean(r.predictions == probs.argmax(axis=1)))
    print(f"Keras ANN predict:        {ann_s:7.3f} s  ({ann_s / len(x) * 1e6:7.1f} us/sample)"
          f"  accuracy {100 * ann_acc:.2f} %")
    print(f"event-driven evaluate:    {ev_s:7.3f} s  ({ev_s / len(x) * 1e6:7.1f} us/sample)"
          f"  accuracy {100 * r.accuracy:.2f} %, same prediction as the ANN on "
          f"{100 * agree:.2f} %")
    print(f"event / ANN:              {ev_s / ann_s:7.2f} x   (target <= 3, goal <= 1.5)")

    xi, yi = x[:args.ini_num], y[:args.ini_num]
    ref = r.predictions[:args.ini_num]
    print(f"\nttfs_exact clocked on INI, {len(xi)} images (event-driven accuracy on them "
          f"{100 * np.mean(ref == yi):.2f} %):")
    print(f"{'dt':>6}{'steps':>7}{'ms/sample':>11}{'accuracy':>10}{'= event':>9}"
          f"{'spikes/neuron':>15}")
    for dt in (float(v) for v in args.dts.split(",")):
        snn = snnconv.convert(graph, simulator="INI", spike_code="ttfs_exact", dt=dt)
        steps = math.ceil(net.windows.t_readout / dt) + len(net.windows.lengths)
        secs, ri = timed(lambda: snnconv.evaluate(snn, xi, yi, num_steps=steps,
                                                      batch_size=args.batch, progress=False),
                             max(1, args.repeats - 2))
        spn = ri.total_spikes / sum(ri.neurons.values())
        print(f"{dt:>6g}{steps:>7}{secs / len(xi) * 1e3:>11.2f}{100 * ri.accuracy:>9.2f}%"
              f"{100 * np.mean(ri.predictions == ref):>8.1f}%{spn:>15.3f}")


if __name__ == "__main__":
    main()
