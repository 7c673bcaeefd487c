"""Peak memory of an evaluation does not grow with the number of samples.

Evaluates the bundled CNN (rate code) on 1 000 and on 10 000 MNIST test
images, each in a fresh process, and prints both peak resident set sizes
and their difference, for two sources:

* ``npy``: a memory-mapped ``.npy`` file, batches passed as a generator
  (the Python API's streaming);
* ``npz``: a compressed ``.npz`` file read by ``load_dataset(..., lazy=True)``,
  which is what ``snnconv run`` does with an ``.npz`` dataset.

The 10 000 images come from ``../shared/data/mnist.npz`` when present,
else from the bundled 2 000 repeated.

    python benchmarks/bench_memory.py [--steps 20]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import os, resource, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np, snnconv
from snnconv.data import bundled_dataset_path, bundled_model_path
folder, n, steps, source = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
snn = snnconv.convert(snnconv.normalize(snnconv.parse(bundled_model_path()), data.x_norm))
if source == "npy":
    x = np.load(f"{folder}/x.npy", mmap_mode="r")
    y = np.load(f"{folder}/y.npy", mmap_mode="r")
    batches = ((x[i:i + 100].astype(np.float32) / 255, y[i:i + 100]) for i in range(0, n, 100))
    r = snnconv.evaluate(snn, batches, num_steps=steps, batch_size=100, progress=False)
else:
    test = snnconv.load_dataset(f"{folder}/data.npz", (28, 28, 1), 1 / 255, lazy=True)
    r = snnconv.evaluate(snn, test.x_test.limit(n), test.y_test[:n], num_steps=steps,
                         batch_size=100, progress=False)
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"RESULT {r.num_samples} {r.accuracy:.4f} {peak_mib:.1f}")
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args()
    full = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist.npz"
    with tempfile.TemporaryDirectory() as tmp:
        if full.exists():
            with np.load(full) as d:
                x, y = d["x_test"], d["y_test"]
            source = str(full)
        else:
            from snnconv.data import bundled_dataset_path
            with np.load(bundled_dataset_path()) as d:
                x, y = np.tile(d["x_test"], (5, 1, 1, 1)), np.tile(d["y_test"], 5)
            source = "bundled subset x5"
        np.save(f"{tmp}/x.npy", x.reshape(-1, 28, 28, 1)[:10000])
        np.save(f"{tmp}/y.npy", y[:10000])
        np.savez_compressed(f"{tmp}/data.npz", x_test=x[:10000], y_test=y[:10000])
        print(f"data: {source}; T = {args.steps} steps; rate code; batches of 100")
        for kind in ("npy", "npz"):
            peaks = {}
            for n in (1000, 10000):
                out = subprocess.run([sys.executable, "-c", CHILD, tmp, str(n), str(args.steps),
                                      kind], capture_output=True, text=True, check=True).stdout
                _, samples, acc, peak = next(line for line in out.splitlines()
                                             if line.startswith("RESULT")).split()
                peaks[n] = float(peak)
                print(f"{kind}: {samples:>6} samples: accuracy {float(acc):.4f}, "
                      f"peak RSS {peak} MiB")
            print(f"{kind}: difference 10 000 - 1 000: {peaks[10000] - peaks[1000]:+.1f} MiB")


if __name__ == "__main__":
    main()
