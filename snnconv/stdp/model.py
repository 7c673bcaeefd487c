"""A trained (or training) STDP network: parameters, weights, thresholds, label map.

Saved as one ``.npz`` (arrays plus a JSON header with the parameters and the
rule), written atomically so a checkpoint is never half-written.
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from ..errors import SnnconvError
from ..files import atomic_path
from .network import NetworkParams

FORMAT = "snnconv-stdp-1"


@dataclasses.dataclass
class STDPNetwork:
    params: NetworkParams
    rule: str
    rule_params: dict
    weights: np.ndarray              # (n_input, n_exc); int32 for integer rules
    theta: np.ndarray                # (n_exc,) adaptive threshold increase, mV
    assigned: np.ndarray             # (n_exc,) neuron labels, -1 = none
    proportions: np.ndarray          # (n_exc, num_classes)
    num_classes: int = 10
    input_shape: tuple = (28, 28, 1)
    samples_seen: int = 0            # training samples presented (for resuming)
    name: str = "stdp"

    @property
    def dt(self) -> float:
        return self.params.dt

    @property
    def integer(self) -> bool:
        return np.issubdtype(self.weights.dtype, np.integer)

    @property
    def weight_scale(self) -> float:
        """Factor from stored weights to membrane units (integer weights span their w_max)."""
        if not self.integer:
            return 1.0
        return 1.0 / float(self.rule_params.get("w_max", 109))

    @property
    def labelled(self) -> bool:
        return bool(np.any(self.assigned >= 0))

    def save(self, path) -> Path:
        path = Path(path)
        header = {"format": FORMAT, "params": dataclasses.asdict(self.params), "rule": self.rule,
                  "rule_params": self.rule_params, "num_classes": self.num_classes,
                  "input_shape": list(self.input_shape), "samples_seen": self.samples_seen,
                  "name": self.name}
        with atomic_path(path) as tmp, open(tmp, "wb") as f:
            np.savez(f, header=np.array(json.dumps(header)), weights=self.weights,
                     theta=self.theta, assigned=self.assigned, proportions=self.proportions)
        return path


def load_stdp(path) -> STDPNetwork:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            header = json.loads(str(f["header"]))
            arrays = {k: f[k] for k in ("weights", "theta", "assigned", "proportions")}
    except (OSError, ValueError, KeyError) as e:
        raise SnnconvError(f"{path}: not an snnconv STDP network file ({e})") from None
    if header.get("format") != FORMAT:
        raise SnnconvError(f"{path}: unknown STDP file format {header.get('format')!r}")
    return STDPNetwork(params=NetworkParams(**header["params"]), rule=header["rule"],
                       rule_params=header["rule_params"], num_classes=header["num_classes"],
                       input_shape=tuple(header["input_shape"]),
                       samples_seen=header["samples_seen"], name=header["name"], **arrays)


def is_stdp_file(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as f:
            return "header" in f.files and FORMAT in str(f["header"])
    except (OSError, ValueError):
        return False
