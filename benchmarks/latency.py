"""Low-latency rate conversion: accuracy against the number of time steps.

For each example network, the SNN's accuracy after T = 4, 8, 16, 32, 64, 128
steps (rate code, INI simulator, reset by subtraction) for:

* ``percentile``: the plain conversion, percentile normalisation, ``v_init`` 0;
* ``percentile v0.5``: the same with every neuron starting at half the threshold;
* ``t_aware``: the T-aware normalisation for each T (``v_init`` 0.5);
* ``light``: ``percentile v0.5`` calibrated for each T (``calibration.method = light``);
* ``t_aware+light``: ``t_aware`` calibrated for each T, light;
* ``advanced``: ``t_aware`` calibrated for each T, advanced;
* ``qcfs``: the network's QCFS-trained variant (``examples/models/<name>_qcfs.keras``,
  made by ``examples/train_fashion_qcfs.py``), no data-based normalisation, compared
  with its own ANN;
* ``qcfs+light``, ``qcfs+advanced``: that variant calibrated for each T;
* ``finetune``: ``light``, then fine-tuned for each T with surrogate gradients
  (:func:`snnconv.finetune`, its defaults unless given: ``--distillation W``,
  the ANN as a teacher with weight W; ``--epochs``, one number or one per T;
  ``--max-shift``, random shifts of the training images) on the first
  ``--num-finetune`` labelled training images; the row also gives the
  fine-tuning time.

The calibrated rows are calibrated separately for each T and simulated for T
steps; the others are simulated once for the largest T and read at each T.
Each row also gives the steps to within 1 point of the ANN (the first T of
the grid where the accuracy is within 1 point; for the uncalibrated rows, the
first step from which it stays within 1 point) and the calibration time at
T = 32. Normalisation (``--percentile``, ``--per-channel`` or ``--layerwise``;
snnconv's defaults unless given) and calibration use the first ``--num-cal``
training images, the accuracy the first ``--num`` test images. Writes ``latency.md``
(the table), ``latency.json`` and ``latency.png`` (accuracy against T) to
``--out``::

    python benchmarks/latency.py                                  # all three networks
    python benchmarks/latency.py --models fashion_resnet --steps 8 16 32 --rows light qcfs
    python benchmarks/latency.py --steps 4 8 --rows light finetune     # issue 23's rows
    python benchmarks/latency.py --percentile 99.9 --layerwise         # the former defaults
    python benchmarks/latency.py --burst 4 --rows "percentile v0.5" light   # 4 spikes a step

The full MNIST and Fashion-MNIST files are read from ``../shared/data/``
(``--mnist``, ``--fashion``); without them the bundled subsets are used.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

import snnconv
from snnconv import defaults
from snnconv.datasets import load_dataset, load_training_split

REPO = Path(__file__).resolve().parent.parent
MODELS = {   # name -> (file, data set)
    "mnist_dwconcat": (REPO / "examples/models/mnist_dwconcat.keras", "mnist"),
    "fashion_resnet": (REPO / "examples/models/fashion_resnet.keras", "fashion"),
    "fashion_vgg": (REPO / "examples/models/fashion_vgg.keras", "fashion"),
    "mnist_cnn": (REPO / "snnconv/data/mnist_cnn.keras", "mnist"),
    # made after the defaults were chosen, to check them on networks they were not tuned on
    "fashion_mobilenetv2": (REPO / "examples/models/fashion_mobilenetv2.keras", "fashion"),
    "fashion_inception": (REPO / "examples/models/fashion_inception.keras", "fashion"),
    # made after cell.burst = auto had been chosen (pre-activation blocks, dense concatenation)
    "fashion_densenet": (REPO / "examples/models/fashion_densenet.keras", "fashion"),
}
SUBSETS = {"mnist": REPO / "snnconv/data/mnist_subset.npz",
           "fashion": REPO / "snnconv/data/fashion_subset.npz"}
ROWS = ("percentile", "percentile v0.5", "t_aware", "light", "t_aware+light", "advanced",
        "qcfs", "qcfs+light", "qcfs+advanced", "finetune")
CALIBRATION = {"light": "light", "t_aware+light": "light", "advanced": "advanced",
               "qcfs+light": "light", "qcfs+advanced": "advanced", "finetune": "light"}
STEPS = (4, 8, 16, 32, 64, 128)


def load(name: str, args):
    """``(model path, x_test, y_test, x_cal)`` of a network."""
    path, which = MODELS[name]
    full = Path(getattr(args, which))
    data_path = full if full.is_file() else SUBSETS[which]
    data = load_dataset(data_path, (28, 28, 1), 1 / 255)
    x_cal = np.asarray(data.x_norm[:args.num_cal], np.float32)
    return path, np.asarray(data.x_test[:args.num], np.float32), \
        np.asarray(data.y_test[:args.num]).reshape(-1), x_cal, data_path


def accuracy_curve(snn, x, y, steps: int) -> np.ndarray:
    return snnconv.evaluate(snn, x, y, num_steps=steps, batch_size=100,
                            progress=False).accuracy_per_step


def within_1pt(curve: np.ndarray, ann: float) -> int | None:
    """The first step from which the accuracy stays within 1 point of the ANN."""
    ok = curve >= ann - 0.01
    if not ok[-1]:
        return None
    bad = np.flatnonzero(~ok)
    return int(bad[-1] + 2) if bad.size else 1


def run_row(row: str, graph, x_cal, x, y, steps, calibration_steps, train=None,
            percentile: float = defaults.PERCENTILE, per_channel: bool = defaults.PER_CHANNEL,
            teacher=None, distillation: float = defaults.FINETUNE_DISTILLATION,
            finetune_options=None, burst: int = 1):
    """``({T: accuracy}, {T: calibration (and fine-tuning) seconds}, curve or None)``
    of one row; ``train``: the labelled ``(x, y)`` the ``finetune`` row trains on,
    ``teacher``: the ANN it distils with the weight ``distillation``;
    ``finetune_options``: ``{T: more snnconv.finetune arguments}``; ``burst``: the
    neurons' ``burst`` (the T-aware scales then optimise for ``burst * T`` levels)."""
    norm = dict(percentile=percentile, per_channel=per_channel)
    if row in ("percentile", "percentile v0.5", "qcfs"):
        v_init = 0.0 if row == "percentile" else 0.5
        g = snnconv.normalize(graph, x_cal, method="percentile", **norm)
        curve = accuracy_curve(snnconv.convert(g, v_init=v_init, burst=burst), x, y,
                               max(steps))
        return {t: float(curve[t - 1]) for t in steps}, {}, curve
    acc, seconds = {}, {}
    for t in steps:
        method = "t_aware" if row in ("t_aware", "t_aware+light", "advanced") else "percentile"
        g = snnconv.normalize(graph, x_cal, method=method, num_steps=t * burst, v_init=0.5,
                              **norm)
        snn = snnconv.convert(g, v_init=0.5, burst=burst)
        calibration = CALIBRATION.get(row)
        if calibration and t in calibration_steps:
            start = time.perf_counter()
            snn = snnconv.calibrate(snn, g, x_cal, num_steps=t, method=calibration)
            if row == "finetune":
                options = (finetune_options or {}).get(t, {})
                snn = snnconv.finetune(snn, *train, num_steps=t, teacher=teacher,
                                       distillation=distillation, **options)
            seconds[t] = time.perf_counter() - start
        elif calibration:
            continue
        acc[t] = float(accuracy_curve(snn, x, y, t)[-1])
    return acc, seconds, None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mnist_dwconcat", "fashion_resnet",
                                                    "fashion_vgg"], choices=sorted(MODELS))
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    ap.add_argument("--steps", nargs="+", type=int, default=list(STEPS))
    ap.add_argument("--calibrate-up-to", type=int, default=128,
                    help="calibrated rows only for T up to this (default 128)")
    ap.add_argument("--num", type=int, default=1000, help="test images (default 1000)")
    ap.add_argument("--num-cal", type=int, default=1000,
                    help="normalisation and calibration images (default 1000)")
    ap.add_argument("--num-finetune", type=int, default=10000,
                    help="labelled training images the finetune row trains on (default 10000)")
    ap.add_argument("--distillation", type=float, default=defaults.FINETUNE_DISTILLATION,
                    help="finetune row: the weight of the ANN's outputs in the loss "
                         f"(default {defaults.FINETUNE_DISTILLATION:g}, snnconv's)")
    ap.add_argument("--epochs", type=int, nargs="+", default=[defaults.FINETUNE_EPOCHS],
                    help="finetune row: epochs, one for every T or one per --steps value "
                         f"(default {defaults.FINETUNE_EPOCHS}, snnconv's)")
    ap.add_argument("--burst", type=int, default=1,
                    help="the neurons' cell.burst: up to that many spikes a step (default 1)")
    ap.add_argument("--max-shift", type=int, default=defaults.FINETUNE_MAX_SHIFT,
                    help="finetune row: random shifts of the training images, pixels "
                         f"(default {defaults.FINETUNE_MAX_SHIFT}, snnconv's)")
    ap.add_argument("--percentile", type=float, default=defaults.PERCENTILE,
                    help=f"normalisation percentile (default {defaults.PERCENTILE})")
    scale = ap.add_mutually_exclusive_group()
    scale.add_argument("--per-channel", dest="per_channel", action="store_true",
                       default=defaults.PER_CHANNEL, help="one scale per channel"
                       + (" (the default)" if defaults.PER_CHANNEL else ""))
    scale.add_argument("--layerwise", dest="per_channel", action="store_false",
                       help="one scale per layer"
                       + ("" if defaults.PER_CHANNEL else " (the default)"))
    ap.add_argument("--mnist", default=str(REPO.parent / "shared/data/mnist.npz"))
    ap.add_argument("--fashion", default=str(REPO.parent / "shared/data/fashion_mnist.npz"))
    ap.add_argument("--out", type=Path, default=REPO / "results" / "latency")
    args = ap.parse_args(argv)
    steps = sorted(set(args.steps))
    if len(args.epochs) not in (1, len(steps)):
        ap.error(f"--epochs: one value, or one per T ({len(steps)})")
    epochs = dict(zip(steps, args.epochs * len(steps) if len(args.epochs) == 1 else
                      args.epochs))
    finetune_options = {t: {"epochs": epochs[t], "max_shift": args.max_shift} for t in steps}
    calibration_steps = [t for t in steps if t <= args.calibrate_up_to]
    args.out.mkdir(parents=True, exist_ok=True)
    results = {}
    print(f"normalisation: percentile {args.percentile}, "
          f"{'per channel' if args.per_channel else 'one scale per layer'}", flush=True)
    for name in args.models:
        path, x, y, x_cal, data_path = load(name, args)
        print(f"{name}: {len(x)} test images, {len(x_cal)} calibration images from "
              f"{data_path.name}", flush=True)
        for row in args.rows:
            model_path = path.with_name(path.stem + "_qcfs.keras") if row.startswith("qcfs") \
                else path
            if not model_path.is_file():
                print(f"  {row}: no {model_path.name}, skipped", flush=True)
                continue
            ann = snnconv.load_model(model_path)
            ann_acc = float(np.mean(ann.predict(x, verbose=0).argmax(1) == y))
            graph = snnconv.parse(ann)
            start = time.perf_counter()
            train = None
            if row == "finetune":
                xt, yt, _ = load_training_split(data_path, (28, 28, 1), 1 / 255,
                                                args.num_finetune)
                train = (np.asarray(xt[:len(xt)], np.float32), yt)
            acc, seconds, curve = run_row(row, graph, x_cal, x, y, steps, calibration_steps,
                                          train, args.percentile, args.per_channel,
                                          ann, args.distillation, finetune_options,
                                          args.burst)
            reached = [t for t in steps if t in acc and acc[t] >= ann_acc - 0.01]
            entry = {"ann": ann_acc, "accuracy": acc, "calibration_seconds": seconds,
                     "within_1pt": within_1pt(curve, ann_acc) if curve is not None
                     else (reached[0] if reached else None),
                     "seconds": time.perf_counter() - start}
            results.setdefault(name, {})[row] = entry
            print(f"  {row:16s} ANN {100 * ann_acc:5.2f}  " + "  ".join(
                f"T{t} {100 * a:5.2f}" for t, a in acc.items())
                + f"  within 1 pt: {entry['within_1pt']}"
                + "".join(f"  {'fine-tuning' if row == 'finetune' else 'calibration'} "
                          f"at T={t}: {seconds[t]:.1f} s" for t in seconds if t in (4, 8, 32)),
                flush=True)
            (args.out / "latency.json").write_text(json.dumps(results, indent=1))
    table = format_table(results, steps)
    (args.out / "latency.md").write_text(table + "\n")
    plot(results, steps, args.out / "latency.png")
    print(table)
    print(f"written to {args.out}")
    return 0


def format_table(results: dict, steps) -> str:
    head = ("| network | method | ANN | " + " | ".join(f"T={t}" for t in steps)
            + " | steps to within 1 pt | calibration (+ fine-tuning) s, per T |")
    lines = [head, "|" + "---|" * (len(steps) + 5)]
    for name, rows in results.items():
        for row, e in rows.items():
            cells = []
            for t in steps:
                a = e["accuracy"].get(t, e["accuracy"].get(str(t)))
                cells.append("–" if a is None else f"{100 * a:.2f}")
            cal = ", ".join(f"T{t}: {float(v):.0f}" for t, v in e["calibration_seconds"].items())
            lines.append(f"| {name} | {row} | {100 * e['ann']:.2f} | " + " | ".join(cells)
                         + f" | {e['within_1pt'] or 'not reached'} | "
                         + (cal or "–") + " |")
    return "\n".join(lines)


def plot(results: dict, steps, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(results)
    if not n:
        return
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), squeeze=False)
    for ax, (name, rows) in zip(axes[0], results.items()):
        for row, e in rows.items():
            ts = [t for t in steps if t in e["accuracy"]]
            line, = ax.plot(ts, [100 * e["accuracy"][t] for t in ts], "o-", label=row)
            if row in ("percentile", "qcfs"):
                ax.axhline(100 * e["ann"], color=line.get_color(), ls="--", lw=0.8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(list(steps), [str(t) for t in steps])
        ax.set_xlabel("time steps T")
        ax.set_ylabel("accuracy (%)")
        ax.set_title(f"{name} (dashed: ANN)")
        top = max(100 * e["ann"] for e in rows.values())
        ax.set_ylim(max(0, top - 25), top + 2)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
