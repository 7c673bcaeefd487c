"""The conversion defaults, measured: steps to within 1 point of the ANN.

For each network, the rate-coded SNN of ``snnconv.convert(snnconv.normalize(
snnconv.parse(model), x))`` — the Python API with every default, which
``snnconv run`` with the template's defaults also runs — and of candidate
settings, simulated once for ``--steps`` steps; printed: the ANN's accuracy,
the SNN's at T = 8, 16, 32, 64 and the last step, and the first step from which
it stays within 1 point of the ANN ("never" when it does not end there), and
the synaptic operations per sample until that step in ANN passes (SynOps /
the ANN's MACs).
Candidates are written ``name:key=value,key=value`` with keys of
``normalize`` (``method``, ``percentile``, ``per_channel``, ``num_steps``) and
of ``convert`` (``v_init``, ``reset``, ...)::

    python benchmarks/defaults.py                                    # the defaults only
    python benchmarks/defaults.py --models fashion_resnet \\
        --candidates "v0:v_init=0.0" "layerwise:per_channel=false"

Normalisation uses the first ``--num-cal`` training images, the accuracy the
first ``--num`` test images of ``../shared/data`` (the bundled subsets without it).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import MODELS, load, within_1pt  # noqa: E402

import snnconv  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
NORMALIZE_KEYS = ("method", "percentile", "per_channel", "num_steps")


def parse_candidate(text: str):
    name, _, body = text.partition(":")
    kwargs = {}
    for item in filter(None, body.split(",")):
        key, _, value = item.partition("=")
        low = value.lower()
        kwargs[key] = (low == "true") if low in ("true", "false") else (
            float(value) if any(c in value for c in ".e") and value[0].isdigit() else
            int(value) if value.isdigit() else value)
    norm = {k: v for k, v in kwargs.items() if k in NORMALIZE_KEYS}
    if "v_init" in kwargs:      # the T-aware scales assume the neurons' start
        norm["v_init"] = kwargs["v_init"]
    return name, norm, {k: v for k, v in kwargs.items() if k not in NORMALIZE_KEYS}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["fashion_resnet", "fashion_vgg",
                                                    "mnist_dwconcat", "mnist_cnn"])
    ap.add_argument("--model-file", nargs="*", default=[],
                    help="more networks as name=path.keras:mnist|fashion")
    ap.add_argument("--candidates", nargs="*", default=[])
    ap.add_argument("--steps", type=int, default=128)
    ap.add_argument("--num", type=int, default=1000)
    ap.add_argument("--num-cal", type=int, default=1000)
    ap.add_argument("--mnist", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--fashion", default=str(REPO.parent / "shared/data/fashion_mnist.npz"))
    args = ap.parse_args(argv)
    for spec in args.model_file:
        name, _, rest = spec.partition("=")
        path, _, which = rest.rpartition(":")
        MODELS[name] = (Path(path), which)
        args.models.append(name)
    rows = [("defaults", {}, {})] + [parse_candidate(c) for c in args.candidates]
    print(f"{'network':<18} {'setting':<22} {'ANN':>6} {'T=8':>6} {'T=16':>6} {'T=32':>6} "
          f"{'T=64':>6} {'T=' + str(args.steps):>6} {'within 1 pt':>11} {'SynOps':>8} {'s':>5}",
          flush=True)
    for name in args.models:
        path, x, y, x_cal, _ = load(name, args)
        model = snnconv.load_model(path)
        ann = float(np.mean(model.predict(x, verbose=0).argmax(1) == y))
        graph = snnconv.parse(model)
        for row, norm_kw, conv_kw in rows:
            start = time.perf_counter()
            snn = snnconv.convert(snnconv.normalize(graph, x_cal, **norm_kw), **conv_kw)
            result = snnconv.evaluate(snn, x, y, num_steps=args.steps, batch_size=100,
                                      progress=False)
            curve = result.accuracy_per_step
            reach = within_1pt(curve, ann)
            at = [curve[t - 1] for t in (8, 16, 32, 64, args.steps)]
            # the synaptic operations spent until then, in ANN forward passes
            cost = ("" if reach is None or not result.ann_macs else
                    f"{np.cumsum(result.synops_per_step)[reach - 1] / result.ann_macs:.2f}")
            print(f"{name:<18} {row:<22} {ann:6.2%} " + " ".join(f"{a:6.2%}" for a in at)
                  + f" {'never' if reach is None else reach:>11} {cost:>8} "
                  f"{time.perf_counter() - start:5.0f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
