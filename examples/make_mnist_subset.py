"""Build the compact MNIST (or Fashion-MNIST) subset that ships with snnconv.

Writes ``snnconv/data/mnist_subset.npz`` (``np.savez_compressed``) with exactly
four arrays:

* ``x_test``  uint8 (2000, 28, 28, 1) -- the first 2000 MNIST test images
* ``y_test``  uint8 (2000,)           -- their labels
* ``x_norm``  uint8 (1000, 28, 28, 1) -- 1000 training images, picked by a
  seeded random choice without replacement (``--seed``, default 0), kept in
  ascending training-set index order; used for data-based normalisation
* ``y_norm``  uint8 (1000,)           -- their labels

With ``--dataset fashion`` it writes ``snnconv/data/fashion_subset.npz`` instead,
the same four keys from Fashion-MNIST (``../shared/data/fashion_mnist.npz``):
the first 1000 test images and 500 training images (same seeded choice).

The source is a full file in the Keras ``mnist.npz`` layout (keys
``x_train``, ``y_train``, ``x_test``, ``y_test``). Nothing is downloaded.

MNIST by Y. LeCun, C. Cortes, C. J. C. Burges; licence CC BY-SA 3.0.
Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.

Usage (from the repository root)::

    python examples/make_mnist_subset.py
    python examples/make_mnist_subset.py --dataset fashion
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

# --dataset NAME -> (default --data, default --out, test images, training images)
DATASETS = {
    "mnist": (DEFAULT_DATA, DEFAULT_OUT, N_TEST, N_NORM),
    "fashion": (REPO_ROOT.parent / "shared" / "data" / "fashion_mnist.npz",
                REPO_ROOT / "snnconv" / "data" / "fashion_subset.npz", 1000, 500),
}


def build_subset(data_path: Path, seed: int = 0, n_test: int = N_TEST,
                 n_norm: int = N_NORM) -> dict[str, np.ndarray]:
    """Return the four subset arrays built from a full (Fashion-)MNIST file."""
    with np.load(data_path) as d:
        x_train, y_train = d["x_train"], d["y_train"]
        x_test, y_test = d["x_test"], d["y_test"]

    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(x_train.shape[0], size=n_norm, replace=False))

    def as_images(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(np.uint8).reshape(-1, 28, 28, 1))

    def as_labels(a: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(a.astype(np.uint8).reshape(-1))

    return {
        "x_test": as_images(x_test[:n_test]),
        "y_test": as_labels(y_test[:n_test]),
        "x_norm": as_images(x_train[idx]),
        "y_norm": as_labels(y_train[idx]),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist",
                   help="mnist (2000 test + 1000 training images) or fashion "
                        "(1000 + 500); sets the defaults of --data and --out")
    p.add_argument("--data", type=Path, default=None,
                   help=f"full .npz (default: {DEFAULT_DATA}, or "
                        f"{DATASETS['fashion'][0]} with --dataset fashion)")
    p.add_argument("--out", type=Path, default=None,
                   help=f"output .npz (default: {DEFAULT_OUT}, or "
                        f"{DATASETS['fashion'][1]} with --dataset fashion)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed for choosing the x_norm training images (default 0)")
    args = p.parse_args(argv)
    default_data, default_out, n_test, n_norm = DATASETS[args.dataset]
    if args.data is None:
        args.data = default_data
    if args.out is None:
        args.out = default_out

    if not args.data.is_file():
        print(f"error: full {args.dataset} file not found: {args.data}", file=sys.stderr)
        return 1

    arrays = build_subset(args.data, seed=args.seed, n_test=n_test, n_norm=n_norm)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)

    for k, v in arrays.items():
        print(f"{k}: shape={v.shape} dtype={v.dtype}")
    print("x_norm label counts:", np.bincount(arrays["y_norm"], minlength=10).tolist())
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
