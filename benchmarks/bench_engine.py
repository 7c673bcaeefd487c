"""The INI engine's speed per sample·step, plain TF graph against XLA, and against the ANN.

For each network, at its batch size B and T steps, measured in this one run
(best of ``--repeats`` calls after a warm-up call that traces and compiles):

* ANN: seconds per sample of one Keras forward pass at batch B;
* for each engine (``graph``: the compiled TF loop; ``xla``: the same loop
  compiled by XLA): seconds per sample·step of ``snnconv.evaluate`` on
  ``--batches`` batches (simulation and the per-step accuracy, spike and
  SynOp records), and ``SNN(T) / (T x ANN)``, the simulation's cost in ANN
  forward passes (issue 22's goal: <= 0.6);
* the engines' agreement: predictions equal on what share of the samples,
  and the largest relative difference of a layer's spike count.

Networks:

* ``digits``: SNN Toolbox's digits CNN (8x8 input, conv16-avgpool-conv32-avgpool-fc64-fc10),
  trained here for 3 epochs (seed 0) on MNIST downsampled to 8x8
  (``../shared/data/mnist.npz``, else the bundled subset), batch 32, T 50;
* ``mnist_cnn``: the bundled CNN, batch 100, T 100;
* ``fashion_resnet``: ``examples/models/fashion_resnet.keras``, batch 100, T 64.

``--export-peer FILE`` (fashion_resnet only) also writes the converted
network's weights, the timed samples, this run's predictions, spike counts
and timings to FILE (.npz), for ``benchmarks/peers/spikingjelly_resnet.py``,
which simulates the same network in SpikingJelly and compares.

    python benchmarks/bench_engine.py [--models digits mnist_cnn fashion_resnet]
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from snnconv.data import bundled_dataset_path, bundled_model_path  # noqa: E402
from snnconv.datasets import load_dataset  # noqa: E402
from common import best_time  # noqa: E402
from digits_cnn import digits_data, trained_digits_cnn  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
# name: (batch, steps)
SETTINGS = {"digits": (32, 50), "mnist_cnn": (100, 100), "fashion_resnet": (100, 64)}


def digits_network():
    """``(ann, x_norm, x_test, y_test)`` of the 8x8 digits CNN (:mod:`digits_cnn`)."""
    import keras
    x_train, y_train, x_test, y_test = digits_data(bundled_dataset_path())
    return trained_digits_cnn(keras, x_train, y_train), x_train[:1000], x_test, y_test


def network(name: str):
    if name == "digits":
        return digits_network()
    if name == "mnist_cnn":
        path, data_path = bundled_model_path(), bundled_dataset_path()
    else:
        path = REPO / "examples" / "models" / f"{name}.keras"
        full = SHARED / "fashion_mnist.npz"
        data_path = full if full.is_file() else REPO / "snnconv/data/fashion_subset.npz"
    data = load_dataset(data_path, (28, 28, 1), 1 / 255)
    return (snnconv.load_model(path), np.asarray(data.x_norm[:1000], np.float32),
            np.asarray(data.x_test[:1000], np.float32), np.asarray(data.y_test[:1000]).reshape(-1))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--engines", nargs="+", default=["graph", "xla"])
    ap.add_argument("--batches", type=int, default=3, help="batches per timed call (default 3)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--burst", default="1",
                    help="the neurons' cell.burst (default 1: binary spikes, as SNN Toolbox's "
                         "and SpikingJelly's neurons fire them and as the figures in "
                         "docs/benchmarks.md were measured; snnconv's default is auto)")
    ap.add_argument("--export-peer", type=Path, metavar="FILE",
                    help="fashion_resnet: write the network, samples and figures for the "
                         "SpikingJelly peer script to FILE (.npz)")
    args = ap.parse_args(argv)
    if args.export_peer and args.models != ["fashion_resnet"]:
        ap.error("--export-peer needs --models fashion_resnet")
    print(f"{os.cpu_count()} CPU cores; best of {args.repeats} after a warm-up call")
    for name in args.models:
        batch, steps = SETTINGS[name]
        ann, x_norm, x_test, y_test = network(name)
        graph = snnconv.normalize(snnconv.parse(ann), x_norm)
        snn = snnconv.convert(graph, burst=args.burst if args.burst == "auto"
                              else int(args.burst))
        x = x_test[:batch * args.batches]
        y = y_test[:len(x)]
        ann_s = best_time(lambda: ann.predict_on_batch(x[:batch]), args.repeats * 5) / batch
        print(f"{name}: batch {batch}, T {steps}, {len(x)} samples; ANN forward "
              f"{ann_s * 1e6:.2f} us per sample")
        results, timings = {}, {}
        for engine in args.engines:
            start = time.perf_counter()
            first = snnconv.evaluate(snn, x, y, num_steps=steps, batch_size=batch,
                                     progress=False, engine=engine)
            warm = time.perf_counter() - start
            seconds = best_time(lambda: snnconv.evaluate(
                snn, x, y, num_steps=steps, batch_size=batch, progress=False, engine=engine),
                args.repeats)
            results[engine] = first
            per = seconds / (len(x) * steps)
            timings[engine] = per
            print(f"  {engine:6s} {per * 1e6:8.2f} us per sample·step   SNN(T) / (T x ANN) "
                  f"{per / ann_s:5.2f}   first call {warm:.1f} s   accuracy "
                  f"{100 * first.accuracy:.2f} %", flush=True)
        ref = results[args.engines[0]]
        for engine in args.engines[1:]:
            other = results[engine]
            same = float(np.mean(ref.predictions == other.predictions))
            rel = max(abs(float(ref.spikes_per_step[k].sum() - other.spikes_per_step[k].sum()))
                      / max(float(ref.spikes_per_step[k].sum()), 1e-30)
                      for k in ref.spikes_per_step)
            print(f"  {engine} vs {args.engines[0]}: same prediction on {100 * same:.2f} % of "
                  f"the samples; largest relative difference of a layer's spike count {rel:.2e}")
        if args.export_peer:
            export_peer(args.export_peer, snn, x, y, results[args.engines[0]], timings, ann_s,
                        batch, steps)
            print(f"  written {args.export_peer}")
    return 0


def export_peer(path: Path, snn, x, y, result, timings: dict, ann_s: float, batch: int,
                steps: int) -> None:
    """The converted network and this run's figures, for a peer simulator's script:
    ``kernel/NAME``, ``bias/NAME`` (Keras layout), ``coefficients/NAME/i`` of each
    weighted sum, the spiking neurons' common ``v_init`` and ``v_thresh``, the samples
    ``x``, ``y``, snnconv's ``predictions`` and ``spikes/NAME`` (mean spikes per
    sample in each step), and ``us/ENGINE`` (µs per sample·step), ``ann_us``."""
    from snnconv.layers import SpikeLayer
    from snnconv.neurons import IFNeuron
    arrays = {"x": x, "y": y, "predictions": result.predictions, "batch": batch,
              "steps": steps, "ann_us": ann_s * 1e6}
    neurons = set()
    for lay in snn.layers:
        if hasattr(lay, "kernel"):
            arrays[f"kernel/{lay.name}"] = lay.kernel.numpy()
            arrays[f"bias/{lay.name}"] = lay.bias.numpy()
        for i, c in enumerate(getattr(lay, "coefficients", None) or ()):
            arrays[f"coefficients/{lay.name}/{i}"] = np.asarray(c, np.float32)
        if isinstance(lay, SpikeLayer) and lay.spiking:
            n = lay.neuron
            # what the peer's IF neuron is: reset by subtraction, one spike a step, no leak
            if not (isinstance(n, IFNeuron) and n.reset == "subtraction" and n.tau_mem is None
                    and n.max_spikes_per_dt == 1 and n.threshold_mode == "inclusive"
                    and n.dt == 1.0 and not n.tau_refrac
                    and getattr(lay, "gain", None) is None):
                raise SystemExit(f"--export-peer: layer {lay.name} is not a plain IF layer")
            neurons.add((float(n.v_init), float(n.v_thresh)))
    if len(neurons) != 1:
        raise SystemExit(f"--export-peer: the spiking layers differ in v_init/v_thresh {neurons}")
    arrays["v_init"], arrays["v_thresh"] = neurons.pop()
    for name, per_step in result.spikes_per_step.items():
        arrays[f"spikes/{name}"] = per_step
    for engine, per in timings.items():
        arrays[f"us/{engine}"] = per * 1e6
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)


if __name__ == "__main__":
    raise SystemExit(main())
