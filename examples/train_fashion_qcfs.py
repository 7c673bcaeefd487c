"""Train QCFS variants of the Fashion-MNIST example networks for snnconv.

A network trained with the QCFS activation (``snnconv.layers.QCFS``, Bu et al.
2022) in place of every ReLU converts to a rate-coded SNN that is accurate in
few time steps: each QCFS computes what ``levels`` steps of an IF neuron
compute (threshold λ, reset by subtraction, initial potential λ/2), and its
trained threshold λ is the layer's normalisation scale, so the conversion
needs no data-based normalisation. This script takes the architecture of one
of the example networks (``train_fashion_resnet.py``, ``train_fashion_vgg.py``),
puts a ``QCFS(levels)`` wherever it has a ReLU (a ``ReLU`` layer, or a layer
with ``activation="relu"``) and trains it from scratch with the same data,
seed and schedule (``mnist_training.py``)::

    python examples/train_fashion_qcfs.py --arch resnet   # -> examples/models/fashion_resnet_qcfs.keras
    python examples/train_fashion_qcfs.py --arch vgg      # -> examples/models/fashion_vgg_qcfs.keras
    python examples/train_fashion_qcfs.py --arch vgg --levels 8 --epochs 12 --out my.keras

Convert the result as any model (``snnconv.parse`` sees each QCFS as a ReLU
with its threshold); simulate it for about ``levels`` to ``4 * levels`` steps.

Fashion-MNIST: Copyright 2017 Zalando SE; MIT licence.
"""

from __future__ import annotations

import argparse
import sys

import keras

import train_fashion_resnet
import train_fashion_vgg
from mnist_training import FASHION_MNIST, REPO_ROOT, train_and_save
from snnconv.layers import QCFS

ARCHITECTURES = {"resnet": train_fashion_resnet.build_model,
                 "vgg": train_fashion_vgg.build_model}
# every QCFS threshold starts here (activations after a BatchNormalization are a
# few units at most); training moves each layer's on
INITIAL_THRESHOLD = 3.0


def qcfs_variant(model: keras.Model, levels: int,
                 initial_threshold: float = INITIAL_THRESHOLD) -> keras.Model:
    """``model``'s architecture (fresh weights) with a QCFS wherever it has a ReLU:
    a ``ReLU`` layer becomes ``QCFS`` under the same name; a layer with
    ``activation="relu"`` becomes linear and is followed by ``<name>_qcfs``."""
    inside: set[str] = set()

    def clone(layer):
        if isinstance(layer, keras.layers.ReLU):
            return QCFS(levels, initial_threshold, name=layer.name)
        config = layer.get_config()
        if config.get("activation") == "relu":
            config["activation"] = "linear"
            inside.add(layer.name)
        return layer.__class__.from_config(config)

    def call(layer, *args, **kwargs):
        out = layer(*args, **kwargs)
        if layer.name in inside:
            out = QCFS(levels, initial_threshold, name=f"{layer.name}_qcfs")(out)
        return out

    clone_ = keras.models.clone_model(model, clone_function=clone, call_function=call)
    return keras.Model(clone_.inputs, clone_.outputs, name=f"{model.name}_qcfs")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="resnet",
                   help="which example network (default: resnet)")
    p.add_argument("--levels", type=int, default=4,
                   help="QCFS quantisation levels L (default: 4)")
    args, rest = p.parse_known_args(argv)
    if "-h" in rest or "--help" in rest:
        p.print_help()
        print("\nthe training options (--data, --epochs, --out) follow:\n")
    out = REPO_ROOT / "examples" / "models" / f"fashion_{args.arch}_qcfs.keras"
    build = ARCHITECTURES[args.arch]
    return train_and_save(lambda: qcfs_variant(build(), args.levels), out,
                          f"{__doc__.splitlines()[0]} ({args.arch}, L = {args.levels})",
                          rest, dataset=FASHION_MNIST)


if __name__ == "__main__":
    sys.exit(main())
