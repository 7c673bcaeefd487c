"""SpikingJelly 2.0 on snnconv's converted fashion_resnet, timed per sample·step against snnconv.

Runs in its own environment (torch's CPU build)::

    python3.11 -m venv .venv-spikingjelly
    .venv-spikingjelly/bin/pip install torch==2.13.0 spikingjelly==2.0.0
    .venv-spikingjelly/bin/python benchmarks/peers/spikingjelly_resnet.py

First it runs ``benchmarks/bench_engine.py --models fashion_resnet
--export-peer`` in snnconv's environment (``--snnconv-python``, default
``.venv/bin/python``): that times ``snnconv.evaluate`` (batch 100, T 64, 300
test images) and writes the converted network, the samples and snnconv's
spike counts. Then, in this process, the same network is built from
SpikingJelly's multi-step layers (``layer.Conv2d``, ``neuron.IFNode`` with
reset by subtraction, ``v_reset=None``; the potentials start at snnconv's
``v_init``) the way SpikingJelly's own examples treat a static image: the
first convolution once, its output repeated over the T steps, everything
else over all ``T x B`` frames at once. It checks that both simulators give
the same predictions and spike counts (so the two simulate one network),
then times SpikingJelly's forward pass at the same batch and T (best of
``--repeats`` after a warm-up, ``torch.inference_mode``) and prints both
figures and their ratio. Both are measured in this one run, back to back.

The port is written for fashion_resnet's topology (a stem, four residual
blocks, global average pooling, a dense readout); the layer names are those
of ``examples/models/fashion_resnet.keras``.
"""
from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import functional, layer, neuron

REPO = Path(__file__).resolve().parents[2]
# (block, input, stride, projection): the residual blocks of fashion_resnet
BLOCKS = (("block1", "stem", 2, True), ("block2", "block1_add", 1, False),
          ("block3", "block2_add", 2, True), ("block4", "block3_add", 1, False))


def conv(w: dict, name: str, stride: int) -> torch.nn.Module:
    """A multi-step convolution with Keras's kernel and 'same' padding (Keras pads
    a stride-2 3x3 convolution at the bottom/right only, so the padding is explicit)."""
    kernel = np.asarray(w[f"kernel/{name}"])             # (kh, kw, in, out)
    kh, kw, cin, cout = kernel.shape
    c = torch.nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=0)
    with torch.no_grad():
        c.weight.copy_(torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()))
        c.bias.copy_(torch.from_numpy(np.asarray(w[f"bias/{name}"])))
    if kh == 1:
        return layer.SeqToANNContainer(c)
    if stride == 1:
        pad = (kh // 2,) * 4
    else:                        # 'same' for even input sizes: total kh - stride, extra at the end
        total = kh - stride
        pad = (total // 2, total - total // 2) * 2
    return layer.SeqToANNContainer(torch.nn.ZeroPad2d(pad), c)


def channel(w: dict, key: str) -> torch.Tensor:
    return torch.from_numpy(np.asarray(w[key], np.float32)).view(1, 1, -1, 1, 1)


class Resnet(torch.nn.Module):
    """fashion_resnet as snnconv converts it: IF neurons after the stem, after each
    block's first convolution and after each weighted residual sum."""

    def __init__(self, w: dict):
        super().__init__()
        self.T = int(w["steps"])
        self.v_init = float(w["v_init"])
        if_node = lambda: neuron.IFNode(v_threshold=float(w["v_thresh"]), v_reset=None,  # noqa: E731
                                        step_mode="m")
        self.stem = conv(w, "stem", 1)
        self.stem_if = if_node()
        self.blocks = torch.nn.ModuleDict()
        self.coeff = {}
        for name, _, stride, proj in BLOCKS:
            mods = {"conv1": conv(w, f"{name}_conv1", stride), "if1": if_node(),
                    "conv2": conv(w, f"{name}_conv2", 1), "if_add": if_node()}
            if proj:
                mods["proj"] = conv(w, f"{name}_proj", stride)
            self.blocks[name] = torch.nn.ModuleDict(mods)
            self.coeff[name] = (channel(w, f"coefficients/{name}_add/0"),
                                channel(w, f"coefficients/{name}_add/1"))
        kernel = np.asarray(w["kernel/dense"])
        self.dense = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            self.dense.weight.copy_(torch.from_numpy(kernel.T.copy()))
            self.dense.bias.copy_(torch.from_numpy(np.asarray(w["bias/dense"])))
        functional.set_step_mode(self, "m")

    def start(self):
        functional.reset_net(self)
        for m in self.modules():
            if isinstance(m, neuron.IFNode):
                m.v = self.v_init

    def forward(self, x: torch.Tensor, counts: dict | None = None) -> torch.Tensor:
        """``x``: (B, 1, 28, 28); returns the readout (T, B, 10)."""
        self.start()
        # the static image: the first convolution once, repeated over the steps
        current = self.stem(x.unsqueeze(0))                    # (1, B, C, H, W)
        s = self.stem_if(current.expand(self.T, *current.shape[1:]))
        record = (lambda k, v: counts.__setitem__(k, v.sum(dim=(1, 2, 3, 4)))) \
            if counts is not None else (lambda k, v: None)
        record("stem", s)
        for name, _, _, proj in BLOCKS:
            b = self.blocks[name]
            s1 = b["if1"](b["conv1"](s))
            record(f"{name}_conv1", s1)
            c_main, c_skip = self.coeff[name]
            skip = b["proj"](s) if proj else s
            s = b["if_add"](c_main * b["conv2"](s1) + c_skip * skip)
            record(f"{name}_add", s)
        gap = s.mean(dim=(3, 4))                                 # (T, B, C)
        return self.dense(gap)


def export(python: str, path: Path, repeats: int) -> None:
    cmd = [python, str(REPO / "benchmarks" / "bench_engine.py"), "--models", "fashion_resnet",
           "--repeats", str(repeats), "--export-peer", str(path)]
    print("$", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, cwd=REPO)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--snnconv-python", default=str(REPO / ".venv" / "bin" / "python"))
    ap.add_argument("--export", type=Path,
                    help="an existing --export-peer file (default: run bench_engine.py now)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.export or Path(tmp) / "fashion_resnet_peer.npz"
        if args.export is None:
            export(args.snnconv_python, path, args.repeats)
        with np.load(path) as f:
            w = {k: f[k] for k in f.files}
    torch.manual_seed(0)
    net = Resnet(w).eval()
    batch, steps = int(w["batch"]), int(w["steps"])
    x = torch.from_numpy(np.ascontiguousarray(w["x"].transpose(0, 3, 1, 2)))
    n = len(x)

    # the same network: predictions and spike counts against snnconv's
    preds, spikes = [], {}
    with torch.inference_mode():
        for i in range(0, n, batch):
            counts = {}
            out = net(x[i:i + batch], counts)
            preds.append(out.sum(0).argmax(-1).numpy())
            for k, v in counts.items():
                spikes[k] = spikes.get(k, 0) + v.numpy().astype(np.float64)
    preds = np.concatenate(preds)
    same = float(np.mean(preds == w["predictions"]))
    rel = max(abs(spikes[k].sum() / n - w[f"spikes/{k}"].sum()) / max(w[f"spikes/{k}"].sum(),
                                                                      1e-30) for k in spikes)
    from importlib.metadata import version
    print(f"SpikingJelly {version('spikingjelly')}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"  same prediction as snnconv on {100 * same:.2f} % of {n} samples; accuracy "
          f"{100 * np.mean(preds == w['y']):.2f} %; largest relative difference of a layer's "
          f"spike count {rel:.2e} ({len(spikes)} layers)")

    def run_all():
        with torch.inference_mode():
            for i in range(0, n, batch):
                net(x[i:i + batch])
    run_all()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run_all()
        times.append(time.perf_counter() - start)
    sj = min(times) / (n * steps) * 1e6
    print(f"fashion_resnet, batch {batch}, T {steps}, {n} samples (µs per sample·step):")
    print(f"  Keras ANN forward  {float(w['ann_us']):8.2f} µs per sample")
    print(f"  SpikingJelly       {sj:8.2f}")
    for k in sorted(key for key in w if key.startswith("us/")):
        ours = float(w[k])
        print(f"  snnconv {k[3:]:10s} {ours:8.2f}   SpikingJelly / snnconv = {sj / ours:.2f}")
    return 0 if same >= 0.999 else 1


if __name__ == "__main__":
    raise SystemExit(main())
