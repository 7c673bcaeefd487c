"""Build the compact MNIST subset that ships with snnconv.

Writes ``snnconv/data/mnist_subset.npz`` (``np.savez_compressed``) with exactly
four arrays:

* ``x_test``  uint8 (2000, 28, 28, 1) -- the first 2000 MNIST test images
* ``y_test``  uint8 (2000,)           -- their labels
* ``x_norm``  uint8 (1000, 28, 28, 1) -- 1000 training images, picked by a
  seeded random choice without replacement (``--seed``, default 0), kept in
  ascending training-set index order; used for data-based normalisation
* ``y_norm``  uint8 (1000,)           -- their labels

The source is the full MNIST file in the Keras ``mnist.npz`` layout (keys
``x_train``, ``y_train``, ``x_test``, ``y_test``). Nothing is downloaded.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.

Usage (from the repository root)::

    python examples/make_mnist_subset.py
    python examples/make_mnist_subset.py --data /path/to/mnist.npz --out out.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = REPO_ROOT.parent / "shared" / "data" / "mnist.npz"
DEFAULT_OUT = REPO_ROOT / "snnconv" / "data" / "mnist_subset.npz"

N_TEST = 2000
N_NORM = 1000


def build_subset(data_path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Return the four subset arrays built from the full MNIST file."""
    with np.load(data_path) as d:
        x_train, y_train = d["x_train"], d["y_train"]
        x_test, y_test = d["x_test"], d["y_test"]

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(x_train.shape[0], size=N_NORM, replace=False))

    def as_images(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(np.uint8).reshape(-1, 28, 28, 1))

    def as_labels(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(np.uint8).reshape(-1))

    return {
        "x_test": as_images(x_test[:N_TEST]),
        "y_test": as_labels(y_test[:N_TEST]),
        "x_norm": as_images(x_train[idx]),
        "y_norm": as_labels(y_train[idx]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA,
                   help=f"full MNIST .npz (default: {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT,
                   help=f"output .npz (default: {DEFAULT_OUT})")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for choosing the x_norm training images (default 0)")
    args = p.parse_args(argv)

    if not args.data.is_file():
        print(f"error: full MNIST file not found: {args.data}", file=sys.stderr)
        return 1

    arrays = build_subset(args.data, seed=args.seed)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)

    for k, v in arrays.items():
        print(f"{k}: shape={v.shape} dtype={v.dtype}")
    print("x_norm label counts:", np.bincount(arrays["y_norm"], minlength=10).tolist())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
