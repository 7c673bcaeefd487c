"""SynNet on the spoken keywords: accuracy (float, quantized, Xylo) and training speed vs Rockpool.

Rockpool's published Xylo example architecture (16 -> [63, 63, 63] -> 8, time
constants per layer [3, 7, 7] from 20 ms, tau_mem 20 ms, dt 10 ms, membrane
readout) trained by ``snnconv.train_synnet`` with its defaults, on the full
keyword set (2000 training, 800 test clips) made into events by the default
``snnconv.audio.FrontEnd``; then ``to_xylo`` with its defaults (Xylo Audio 2,
global quantization) and the integer chip simulation. With ``--rockpool``
(in the interop environment: ``.venv-interop/bin/python``) Rockpool 3.1's own
SynNet with the same architecture is trained on the same events, as its
tutorial does (Adam 1e-3, cross-entropy on the maximum over time of the
readout membrane, batch 64), and both training speeds are printed side by side
(seconds per epoch, measured in this one run).

    python benchmarks/train_synnet.py [--data ../shared/data/spoken_keywords.npz]
        [--epochs 30] [--rockpool] [--rockpool-epochs 30] [--seed 0]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARCH = dict(size_hidden_layers=[63, 63, 63], time_constants_per_layer=[3, 7, 7],
            tau_syn_base=0.02, tau_mem=0.02, tau_syn_out=0.02, dt=0.01, output="vmem")


def events(path: Path):
    from snnconv.audio import FrontEnd
    from snnconv.audio.data import load_keyword_clips
    clips = load_keyword_clips(path)
    front = FrontEnd(sample_rate=clips.sample_rate)
    return (front(clips.x_train).astype(np.float32), clips.y_train.astype(np.int64),
            front(clips.x_test).astype(np.float32), clips.y_test.astype(np.int64))


def train_snnconv(x, y, xt, yt, epochs: int, seed: int):
    import keras

    import snnconv
    from snnconv.simulators.xylo.from_synnet import dequantized
    keras.utils.set_random_seed(seed)
    net = snnconv.SynNet(8, 16, **ARCH)
    start = time.perf_counter()
    history = snnconv.train_synnet(net, x, y, epochs=epochs, seed=seed, verbose=0)
    seconds = time.perf_counter() - start
    xylo = snnconv.to_xylo(net)
    acc = {name: snnconv.evaluate(m, xt, yt, progress=False).accuracy
           for name, m in (("float", net), ("quantized", dequantized(net, xylo)),
                           ("chip", xylo))}
    return acc, seconds / epochs, history.history


def train_rockpool(x, y, xt, yt, epochs: int, seed: int):
    import torch
    from rockpool.nn.networks import SynNet
    torch.manual_seed(seed)
    net = SynNet(n_classes=8, n_channels=16, **ARCH)
    opt = torch.optim.Adam(net.parameters().astorch(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()
    xs, ys = torch.tensor(x), torch.tensor(y)
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for i in range(0, len(x), 64):
            idx = torch.tensor(order[i:i + 64])
            net.reset_state()
            out, _, _ = net(xs[idx])
            loss = loss_fn(out.max(dim=1).values, ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - start
    with torch.no_grad():
        net.reset_state()
        out, _, _ = net(torch.tensor(xt))
        acc = float((out.max(dim=1).values.argmax(dim=1).numpy() == yt).mean())
    return acc, seconds / epochs


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" /
                   "spoken_keywords.npz")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rockpool", action="store_true",
                   help="also train Rockpool's SynNet (interop environment)")
    p.add_argument("--rockpool-epochs", type=int, default=30)
    a = p.parse_args(argv)
    x, y, xt, yt = events(a.data)
    print(f"data: {a.data}: {len(x)} training, {len(xt)} test clips -> events {x.shape[1:]}")
    acc, per_epoch, hist = train_snnconv(x, y, xt, yt, a.epochs, a.seed)
    print(f"snnconv SynNet (train_synnet defaults, {a.epochs} epochs, batch 64, delay on):")
    print(f"  training accuracy (last epoch, augmented batches) "
          f"{100 * hist['accuracy'][-1]:.2f} %")
    for name, label in (("float", "float"), ("quantized", "quantized weights, float dynamics"),
                        ("chip", "Xylo Audio 2 integer simulation")):
        print(f"  test accuracy, {label:<34} {100 * acc[name]:6.2f} %")
    print(f"  chip vs float: {100 * (acc['chip'] - acc['float']):+.2f} pp")
    print(f"  seconds per epoch: {per_epoch:.2f}")
    if a.rockpool:
        r_acc, r_epoch = train_rockpool(x, y, xt, yt, a.rockpool_epochs, a.seed)
        print(f"Rockpool SynNet ({a.rockpool_epochs} epochs, Adam 1e-3, max-over-time CE, "
              f"no delay): test accuracy {100 * r_acc:.2f} %, {r_epoch:.2f} s per epoch")
        print(f"speed: snnconv {per_epoch:.2f} s/epoch, Rockpool {r_epoch:.2f} s/epoch "
              f"-> snnconv {r_epoch / per_epoch:.2f} x Rockpool's speed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
