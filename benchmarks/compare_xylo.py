"""Float rate-coded SNN against its Xylo quantizations, on the Xylo example.

For ``examples/models/mnist_xylo.keras`` (default) or any `.keras` model
that maps onto Xylo, prints the ANN accuracy, the float INI rate-coded
SNN's accuracy, and for each quantization (global, per_channel) the
bit-accurate Xylo simulation's accuracy and its difference to the float
SNN, all at T steps and on the same images in this one run. The target is
a difference within 2 percentage points.

    python benchmarks/compare_xylo.py [--model PATH] [--data NPZ] [--num 2000]
        [--steps 100] [--input-rate 4000] [--chip syns65302]

``--data`` takes an .npz with x_test/y_test (uint8 0..255) and x_norm or
x_train: the bundled subset (default) or ../shared/data/mnist.npz.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import snnconv  # noqa: E402
from common import add_model_data_args, load_normalised  # noqa: E402

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "models" / "mnist_xylo.keras"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_model_data_args(ap, num=2000, model=str(EXAMPLE))
    ap.add_argument("--input-rate", type=float, default=4000.0,
                    help="input events per second for a channel value of 1 (dt = 1 ms)")
    ap.add_argument("--chip", default="syns65302")
    args = ap.parse_args()

    graph, x, y, ann_acc = load_normalised(args)
    print(f"model {graph.name}, {len(x)} test images, T = {args.steps}, chip {args.chip}, "
          f"{args.input_rate * 1e-3:g} input events per step per unit")
    print(f"{'network':<26}{'acc %':>8}{'vs float SNN':>14}{'SynOps/sample':>15}")
    print(f"{'ANN':<26}{100 * ann_acc:>8.2f}")
    ini = snnconv.evaluate(snnconv.convert(graph, burst=1), x, y, num_steps=args.steps,
                           progress=False)
    print(f"{'float SNN (INI, rate)':<26}{100 * ini.accuracy:>8.2f}{'':>14}{ini.synops:>15,.0f}")
    for method in ("global", "per_channel"):
        net = snnconv.convert(graph, simulator="xylo", chip=args.chip, quantization=method,
                              input_rate=args.input_rate)
        r = snnconv.evaluate(net, x, y, num_steps=args.steps, progress=False)
        diff = 100 * (r.accuracy - ini.accuracy)
        print(f"{'Xylo, ' + method:<26}{100 * r.accuracy:>8.2f}{diff:>+14.2f}{r.synops:>15,.0f}")


if __name__ == "__main__":
    main()
