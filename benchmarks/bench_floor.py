"""The dense floor under the INI engine's step: what one step's synaptic operations cost alone.

Issue 22 asks for the rate code over T steps at <= 0.6 x T forward passes of
the Keras ANN. A step of the SNN does the ANN's convolutions and products
(on spikes instead of activations) plus the neurons' update and the
records. This script measures how much of the ANN's pass the first part
alone costs, so that a ratio the engine cannot go below is a number, not a
guess. For each network, at ``bench_engine.py``'s batch size B and T steps,
in ``--rounds`` rounds one after another (the machine's speed drifts, so
the figures of one round are compared with each other):

* ``ANN``: one Keras forward pass (``predict_on_batch``) at batch B, us per sample;
* ``synapses``: every layer's synaptic operation of one step (what
  :meth:`SpikeLayer.current` computes: its convolution, dense product,
  pooling or weighted sum, with bias and coefficients) on frames of the
  shapes the step has, in one compiled loop of T steps (TensorFlow graph,
  the engine ``auto`` picks for these networks' larger maps), without
  neurons, state or records; us per sample·step, and the GFLOP/s its
  multiply-adds run at. Spiking layers' frames are random binary at the
  share of neurons that spike per step in the network (measured first, with
  the same conversion); linear layers' frames are random normal. What the
  engine computes once before its loop (an analog input's current through
  the layers it alone feeds) is left out here too;
* ``engine``: ``snnconv.evaluate`` with the graph engine (all per-step
  records included), us per sample·step;
* the ratios ``synapses / ANN`` and ``engine / ANN``: issue 22's goal is
  ``engine / ANN <= 0.6``, and no engine that runs the dense operations
  can go below ``synapses / ANN``.

It also prints the CPU instruction set oneDNN's convolutions use.

    python benchmarks/bench_floor.py [--models mnist_cnn fashion_resnet] [--rounds 3] [--burst 1]
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

import snnconv  # noqa: E402
from bench_engine import SETTINGS, network  # noqa: E402
from common import best_time  # noqa: E402


def onednn_isa() -> str:
    """The instruction set oneDNN reports (``ONEDNN_VERBOSE``), from a child process."""
    code = ("import numpy as np, tensorflow as tf; x = tf.ones((1, 8, 8, 4)); "
            "tf.nn.conv2d(x, tf.ones((3, 3, 4, 4)), 1, 'SAME').numpy()")
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=300).stdout
    found = re.search(r"onednn_verbose,.*?info,cpu,isa:(.*)", out)
    return found.group(1).strip() if found else "not reported"


def shares(snn, x, y, batch: int, steps: int) -> dict[str, float]:
    """The share of each spiking layer's neurons that spike in a step."""
    from snnconv.simulators.ini.engine import spiking_layers
    result = snnconv.evaluate(snn, x, y, num_steps=steps, batch_size=batch, progress=False,
                              engine="graph")
    return {lay.name: float(result.spikes_per_neuron[lay.name]) / steps
            for lay in spiking_layers(snn) if lay.name in result.spikes_per_neuron}


def synapse_loop(snn, batch: int, density: dict[str, float], seed: int = 0):
    """``(run, macs)``: a compiled function running T steps of every layer's
    synaptic operation on fixed random frames, and their multiply-adds per sample·step."""
    import tensorflow as tf
    from snnconv.layers import SpikeInput, SpikeLayer
    from snnconv.simulators.ini.engine import layer_inputs
    rng = np.random.default_rng(seed)
    order = [(lay, ins) for lay, ins in layer_inputs(snn) if isinstance(lay, SpikeLayer)]
    raw = snn.layers[0].name
    shapes = {lay.name: tuple(lay.output.shape[2:]) for lay, _ in order}
    # an analog input is a constant current: the engine computes what only it
    # feeds once, before the loop (SpikeInput, and the layers reading only it)
    analog = next(lay for lay, _ in order if isinstance(lay, SpikeInput)).spike_amplitude is None
    constant = {raw} | ({lay.name for lay, _ in order if isinstance(lay, SpikeInput)}
                        if analog else set())
    timed = []
    for lay, ins in order:
        if all(n in constant for n in ins):
            if not lay.spiking and analog:
                constant.add(lay.name)
            continue
        timed.append((lay, ins))

    def frame(name):
        lay = snn.get_layer(name)
        shape = (batch,) + shapes[name]
        if getattr(lay, "spike_amplitude", None) is not None:
            spikes = rng.random(shape) < density.get(name, 0.1)
            return (spikes * lay.spike_amplitude).astype(np.float32)
        return rng.normal(0, 1, shape).astype(np.float32)

    needed = sorted({n for _, ins in timed for n in ins})
    frames = tuple(tf.constant(frame(n)) for n in needed)
    slot = {n: i for i, n in enumerate(needed)}
    macs = sum(_macs(lay, shapes, ins) for lay, ins in timed)

    @tf.function
    def run(steps):
        def body(t, frames, acc):
            for lay, ins in timed:
                args = [frames[slot[n]] for n in ins]
                out = lay.current(args if len(args) > 1 else args[0])
                acc = acc + tf.reshape(out, [-1])[0]
            return t + 1, frames, acc
        # the frames are loop variables, so that nothing is moved out of the loop
        return tf.while_loop(lambda t, *_: t < steps, body,
                             (tf.constant(0), frames, tf.constant(0.0)))[2]

    return run, macs


def _macs(lay, shapes, ins) -> int:
    """Multiply-adds per sample of a weight layer's operation (0 for the others)."""
    if not hasattr(lay, "kernel"):
        return 0
    out = int(np.prod(shapes[lay.name]))
    k = lay.kernel.shape
    if type(lay).__name__ == "SpikeDepthwiseConv2D":
        return out * int(k[0] * k[1])
    return out * int(np.prod(k[:-1]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=["mnist_cnn", "fashion_resnet"],
                    choices=list(SETTINGS))
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--burst", default="1",
                    help="the neurons' cell.burst (default 1, as in bench_engine.py)")
    args = ap.parse_args(argv)
    print(f"{os.cpu_count()} CPU cores; oneDNN's instruction set: {onednn_isa()}")
    import tensorflow as tf
    for name in args.models:
        batch, steps = SETTINGS[name]
        ann, x_norm, x_test, y_test = network(name)
        snn = snnconv.convert(snnconv.normalize(snnconv.parse(ann), x_norm),
                              burst=args.burst if args.burst == "auto" else int(args.burst))
        x, y = x_test[:batch * 3], y_test[:batch * 3]
        density = shares(snn, x[:batch], y[:batch], batch, steps)
        run, macs = synapse_loop(snn, batch, density)
        steps_t = tf.constant(steps)
        print(f"{name}: batch {batch}, T {steps}; spiking per step "
              + ", ".join(f"{k} {100 * v:.1f} %" for k, v in density.items())
              + f"; {macs:,} multiply-adds per sample·step in the timed synapses")
        for r in range(args.rounds):
            ann_s = best_time(lambda: ann.predict_on_batch(x[:batch]), args.repeats * 5) / batch
            syn_s = best_time(lambda: run(steps_t).numpy(), args.repeats) / (batch * steps)
            eng_s = best_time(lambda: snnconv.evaluate(
                snn, x, y, num_steps=steps, batch_size=batch, progress=False,
                engine="graph"), args.repeats) / (len(x) * steps)
            print(f"  round {r + 1}: ANN {ann_s * 1e6:7.2f} us/sample   synapses "
                  f"{syn_s * 1e6:7.2f} us/sample·step ({2 * macs / syn_s / 1e9:5.0f} GFLOP/s)   "
                  f"engine {eng_s * 1e6:7.2f}   synapses / ANN {syn_s / ann_s:4.2f}   "
                  f"engine / ANN {eng_s / ann_s:4.2f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
