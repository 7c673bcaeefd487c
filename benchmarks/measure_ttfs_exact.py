"""ttfs_exact (event-driven) against the ANN and the rate code, on one network.

Prints, all measured in this one run:

* on ``--num`` test images: the ANN's accuracy, the event-driven ttfs_exact
  network's accuracy and the share of images on which both predict the
  same class; spikes per neuron (mean over all neurons, and per layer; at
  most 1 by construction); SynOps per sample and per ANN MAC; the readout
  time and the share of activations clipped at their time window;
* the rate code (INI, dt 1) on the first ``--rate-num`` of those images for
  up to ``--rate-steps`` steps: its best accuracy and the step it first
  reaches it, and its SynOps per sample up to then ("at its best"), against
  which the ttfs_exact SynOps are compared (``--rate-num 0`` skips it).

    python benchmarks/measure_ttfs_exact.py --model M.keras --data D.npz
        [--num 10000] [--num-norm 1000] [--percentile 99.9] [--rate-num 500]
        [--rate-steps 300]

``--data``: an .npz with x_test/y_test (uint8 0..255) and x_norm or x_train
(the normalisation data is the first ``--num-norm`` of them), e.g.
../shared/data/fashion_mnist.npz or snnconv/data/fashion_subset.npz.
"""
from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from common import add_model_data_args, load_normalised  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_data_args(ap, num=10000)
    ap.add_argument("--percentile", type=float, default=99.9)
    ap.add_argument("--rate-num", type=int, default=500)
    ap.add_argument("--rate-steps", type=int, default=300)
    ap.add_argument("--batch", type=int, default=200)
    args = ap.parse_args()

    graph, x, y, ann_acc = load_normalised(args, method="percentile",
                                           percentile=args.percentile,
                                           per_channel=False)  # as the ttfs_exact template
    x = np.asarray(x, np.float32)
    ann = snnconv.load_model(args.model)
    ann_pred = ann.predict(x, batch_size=args.batch, verbose=0).argmax(axis=1)
    net = snnconv.convert(graph, simulator="event", spike_code="ttfs_exact")
    t0 = time.perf_counter()
    r = snnconv.evaluate(net, x, y, batch_size=args.batch, progress=False)
    secs = time.perf_counter() - t0
    neurons = sum(r.neurons.values())
    print(f"model {graph.name}: {len(x)} test images, normalised on {args.num_norm} images "
          f"(percentile {args.percentile:g}, one scale per layer); {len(r.neurons)} neuron layers, "
          f"{neurons:,} neurons; ANN MACs {r.ann_macs:,} per image")
    print(f"  ANN accuracy               {100 * ann_acc:8.2f} %")
    print(f"  ttfs_exact accuracy        {100 * r.accuracy:8.2f} %  "
          f"(difference {100 * (r.accuracy - ann_acc):+.2f} pp)")
    print(f"  same prediction as the ANN {100 * np.mean(r.predictions == ann_pred):8.2f} %")
    print(f"  spikes per neuron (mean)   {r.total_spikes / neurons:8.3f}   per layer: "
          + ", ".join(f"{k} {v:.2f}" for k, v in r.spikes_per_neuron.items()))
    print(f"  SynOps per image           {r.synops:12,.0f}  = {r.synops_per_ann_mac:.3f} x "
          "ANN MACs")
    print(f"  readout time               {net.windows.t_readout:8.3f}   windows "
          + ", ".join(f"{t:.3g}" for t in net.windows.lengths))
    clip = net.clipping()
    print(f"  activations clipped        {sum(net.clipped.values()):8d}    largest share of a "
          f"layer {max(clip.values(), default=0):.2g}")
    print(f"  event-driven evaluation    {secs:8.2f} s")
    if args.rate_num <= 0:
        return
    xr, yr = x[:args.rate_num], y[:args.rate_num]
    snn = snnconv.convert(graph, simulator="INI", spike_code="rate")
    rr = snnconv.evaluate(snn, xr, yr, num_steps=args.rate_steps, batch_size=100,
                          progress=False)
    best = int(np.argmax(rr.accuracy_per_step)) + 1
    rate_synops = float(rr.synops_per_step[:best].sum())
    ex_sub = float(np.mean(r.predictions[:args.rate_num] == yr))
    ann_sub = float(np.mean(ann_pred[:args.rate_num] == yr))
    within = rr.steps_to_reach(ann_sub - 0.01)
    print(f"  rate code, first {len(xr)} images (ANN {100 * ann_sub:.2f} %, ttfs_exact "
          f"{100 * ex_sub:.2f} %): best {100 * rr.accuracy_at(best):.2f} % at step {best} of "
          f"{args.rate_steps}; within 1 pt of the ANN from step "
          f"{'-' if within is None else within}")
    print(f"  rate SynOps per image up to its best step {rate_synops:14,.0f}  "
          f"= {rate_synops / r.ann_macs:.2f} x ANN MACs = {rate_synops / r.synops:.1f} x "
          "ttfs_exact's")
    if within is not None:
        w = float(rr.synops_per_step[:within].sum())
        print(f"  rate SynOps per image up to within 1 pt   {w:14,.0f}  "
              f"= {w / r.ann_macs:.2f} x ANN MACs = {w / r.synops:.1f} x ttfs_exact's")


if __name__ == "__main__":
    main()
