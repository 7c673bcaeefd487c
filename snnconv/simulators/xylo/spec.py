"""The integer specification of a network on a Xylo chip, and its ``.npz`` file.

A :class:`XyloSpec` holds exactly what the chip is configured with: three
int8 weight matrices ``[pre, post]`` (a trailing synapse axis of 2 when the
hidden neurons use two synapses), one left shift per matrix, int16
thresholds and biases, and 4-bit decay shifts. The field names are the
keys Rockpool's Xylo ``config_from_specification`` takes, so an exported
file can be deployed with Rockpool.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ...errors import SnnconvError

INT8 = (-128, 127)
INT16 = (-32768, 32767)
DASH = (0, 15)
WEIGHT_SHIFT = (0, 7)
MAX_INPUT_EVENTS = 15        # events per input channel per step the chip counts
MAX_HIDDEN_SPIKES = 31       # spikes per hidden neuron per step
MAX_OUTPUT_SPIKES = 1        # spikes per output neuron per step

# (name, per-neuron group): "hidden" arrays have one entry per hidden neuron,
# "output" ones per output neuron.
PER_NEURON = {"dash_mem": "hidden", "dash_syn": "hidden", "dash_syn_2": "hidden",
              "threshold": "hidden", "bias": "hidden", "dash_mem_out": "output",
              "dash_syn_out": "output", "threshold_out": "output", "bias_out": "output"}
ARRAY_KEYS = ("weights_in", "weights_rec", "weights_out", *PER_NEURON)
SCALAR_KEYS = ("weight_shift_in", "weight_shift_rec", "weight_shift_out", "dt", "chip")


class XyloSpecError(SnnconvError):
    """A specification holds a value the chip cannot represent."""


@dataclasses.dataclass
class XyloSpec:
    """One network as the chip holds it (all integers except ``dt`` and ``chip``).

    Per-neuron fields accept a scalar, which is broadcast. ``dash_syn_2`` is
    the second synapse's decay (used only when the weights have a synapse
    axis of 2; defaults to ``dash_syn``). ``dt`` is the time step in seconds
    (Rockpool's unit); ``chip`` the chip's part number (``syns61201``,
    ``syns65302``, ``syns63300``).
    """

    weights_in: np.ndarray
    weights_rec: np.ndarray
    weights_out: np.ndarray
    dash_mem: np.ndarray
    dash_syn: np.ndarray
    dash_mem_out: np.ndarray
    dash_syn_out: np.ndarray
    threshold: np.ndarray
    threshold_out: np.ndarray
    bias: np.ndarray = 0
    bias_out: np.ndarray = 0
    dash_syn_2: np.ndarray | None = None
    weight_shift_in: int = 0
    weight_shift_rec: int = 0
    weight_shift_out: int = 0
    dt: float = 1e-3
    chip: str = "syns65302"

    def __post_init__(self):
        w_in, w_rec, w_out = (np.asarray(getattr(self, k)) for k in
                              ("weights_in", "weights_rec", "weights_out"))
        if w_in.ndim not in (2, 3) or w_rec.ndim != w_in.ndim or w_out.ndim != 2:
            raise XyloSpecError(
                "weights_in and weights_rec must both be [pre, post] or both "
                "[pre, post, synapses], weights_out [pre, post]; got shapes "
                f"{w_in.shape}, {w_rec.shape}, {w_out.shape}")
        n_hidden = w_in.shape[1]
        if w_rec.shape[:2] != (n_hidden, n_hidden) or w_out.shape[0] != n_hidden \
                or w_rec.shape[2:] != w_in.shape[2:]:
            raise XyloSpecError(
                f"weight shapes do not agree: weights_in {w_in.shape}, weights_rec "
                f"{w_rec.shape}, weights_out {w_out.shape} (expected [in, N], [N, N], [N, out])")
        if w_in.ndim == 3 and w_in.shape[2] not in (1, 2):
            raise XyloSpecError(f"the synapse axis must be 1 or 2, got {w_in.shape[2]}")
        for key, w in (("weights_in", w_in), ("weights_rec", w_rec), ("weights_out", w_out)):
            setattr(self, key, _integers(key, w, INT8, np.int8))
        if self.dash_syn_2 is None:
            self.dash_syn_2 = self.dash_syn
        sizes = {"hidden": n_hidden, "output": w_out.shape[1]}
        for key, group in PER_NEURON.items():
            value = np.asarray(getattr(self, key))
            if value.ndim == 0:
                value = np.full(sizes[group], value)
            if value.shape != (sizes[group],):
                raise XyloSpecError(f"{key} must have one value per {group} neuron "
                                    f"({sizes[group]}), got shape {value.shape}")
            bounds = DASH if key.startswith("dash") else INT16
            if key.startswith("threshold"):
                bounds = (1, INT16[1])   # the chip's spike loop needs a positive threshold
            setattr(self, key, _integers(key, value, bounds,
                                         np.uint8 if key.startswith("dash") else np.int16))
        for key in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
            value = getattr(self, key)
            if int(value) != value or not WEIGHT_SHIFT[0] <= value <= WEIGHT_SHIFT[1]:
                raise XyloSpecError(f"{key} must be an integer in {WEIGHT_SHIFT[0]}.."
                                    f"{WEIGHT_SHIFT[1]}, got {value!r}")
            setattr(self, key, int(value))
        self.dt = float(self.dt)
        self.chip = str(self.chip)

    @property
    def num_inputs(self) -> int:
        return int(self.weights_in.shape[0])

    @property
    def num_hidden(self) -> int:
        return int(self.weights_in.shape[1])

    @property
    def num_outputs(self) -> int:
        return int(self.weights_out.shape[1])

    @property
    def num_synapses(self) -> int:
        return 1 if self.weights_in.ndim == 2 else int(self.weights_in.shape[2])

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in (*ARRAY_KEYS, *SCALAR_KEYS)}

    def save(self, path, **extra) -> Path:
        """Write the specification (plus ``extra`` arrays) as an ``.npz`` file."""
        path = Path(path)
        arrays = {k: np.asarray(v) for k, v in self.to_dict().items()}
        clash = set(extra) & set(arrays)
        if clash:
            raise ValueError(f"extra keys {sorted(clash)} clash with specification keys")
        np.savez(path, **arrays, **{k: np.asarray(v) for k, v in extra.items()})
        return path

    @classmethod
    def from_arrays(cls, arrays) -> "XyloSpec":
        """A specification from a mapping holding at least the specification's keys."""
        missing = [k for k in ("weights_in", "weights_rec", "weights_out", "dash_mem",
                               "dash_syn", "dash_mem_out", "dash_syn_out", "threshold",
                               "threshold_out") if k not in arrays]
        if missing:
            raise XyloSpecError(f"missing keys: {', '.join(missing)}")
        kw = {k: np.asarray(arrays[k]) for k in ARRAY_KEYS if k in arrays}
        for k in ("weight_shift_in", "weight_shift_rec", "weight_shift_out"):
            if k in arrays:
                kw[k] = int(np.asarray(arrays[k]))
        if "dt" in arrays:
            kw["dt"] = float(np.asarray(arrays["dt"]))
        if "chip" in arrays:
            kw["chip"] = str(np.asarray(arrays["chip"]))
        return cls(**kw)


def _integers(key, value, bounds, dtype) -> np.ndarray:
    value = np.asarray(value)
    if value.size and not np.all(np.isfinite(value.astype(np.float64))):
        raise XyloSpecError(f"{key} holds non-finite values")
    if value.size and np.any(value.astype(np.float64) != np.round(value.astype(np.float64))):
        raise XyloSpecError(f"{key} must hold integers")
    if value.size and (value.min() < bounds[0] or value.max() > bounds[1]):
        raise XyloSpecError(f"{key} must lie in {bounds[0]}..{bounds[1]}, got values in "
                            f"{int(value.min())}..{int(value.max())}")
    return value.astype(dtype)
