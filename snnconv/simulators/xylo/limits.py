"""The Xylo chips' resource limits, and the check of a mapped network against them."""
from __future__ import annotations

import dataclasses

import numpy as np

from ...errors import SnnconvError

INPUT_CHANNELS = 16


@dataclasses.dataclass(frozen=True)
class Chip:
    part: str                      # part number, the key in CHIPS
    name: str                      # product name, for messages
    hidden: int                    # hidden neurons
    outputs: int                   # output neurons
    synapses: int                  # synapses per hidden neuron
    fanout: int                    # outgoing connections per hidden neuron
    input_reach: int | None        # input reaches the first k hidden neurons (None: all)
    output_reach: int | None       # output reads the last k hidden neurons (None: all)


CHIPS = {
    "syns61201": Chip("syns61201", "Xylo Audio 2", 1000, 8, 2, 64, None, None),
    "syns65302": Chip("syns65302", "Xylo Audio 3", 992, 32, 1, 1024, 128, 128),
    "syns63300": Chip("syns63300", "Xylo IMU", 496, 16, 1, 512, 128, 128),
}
CHIP_ALIASES = {"audio2": "syns61201", "xylo_audio2": "syns61201",
                "audio3": "syns65302", "xylo_audio3": "syns65302",
                "imu": "syns63300", "xylo_imu": "syns63300"}


class XyloLimitError(SnnconvError):
    """The network does not fit the chip; the message lists every violated limit."""

    def __init__(self, chip: Chip, violations: list[str]):
        self.chip = chip
        self.violations = list(violations)
        lines = "\n".join(f"  - {v}" for v in violations)
        super().__init__(f"the network does not fit {chip.name} ({chip.part}):\n{lines}")


def get_chip(name: str) -> Chip:
    key = CHIP_ALIASES.get(str(name).lower(), str(name).lower())
    if key not in CHIPS:
        raise SnnconvError(f"unknown Xylo chip {name!r}; known: {', '.join(CHIPS)} "
                           f"(or {', '.join(CHIP_ALIASES)})")
    return CHIPS[key]


def _n(x: int) -> str:
    """1200 -> '1 200' (thin grouping keeps large counts readable in messages)."""
    return f"{int(x):,}".replace(",", " ")


def size_violations(chip: Chip, layers: list[tuple[str, int]], num_inputs: int,
                    num_outputs: int, output_name: str, synapses: int = 1) -> list[str]:
    """Limits that depend only on the layer sizes (checked before any weight is built)."""
    out = []
    where = ", ".join(f"{name}: {_n(size)}" for name, size in layers)
    total = sum(size for _, size in layers)
    if not layers:
        out.append("hidden layers: 0; Xylo's inputs reach hidden neurons only, so the "
                   "network needs at least one hidden (ReLU) layer before its readout")
    if total > chip.hidden:
        out.append(f"hidden neurons: {_n(total)} > {_n(chip.hidden)} on {chip.name} "
                   f"(layers {where})")
    if num_outputs > chip.outputs:
        out.append(f"output neurons: {_n(num_outputs)} > {_n(chip.outputs)} on {chip.name} "
                   f"(layer {output_name})")
    if num_inputs > INPUT_CHANNELS:
        out.append(f"input channels: {_n(num_inputs)} > {INPUT_CHANNELS} on {chip.name} "
                   "(the input features the first hidden layer reads)")
    if synapses > chip.synapses:
        out.append(f"synapses per hidden neuron: {synapses} > {chip.synapses} on {chip.name}")
    if layers and chip.input_reach is not None and layers[0][1] > chip.input_reach:
        out.append(f"input reaches the first {chip.input_reach} hidden neurons on {chip.name}, "
                   f"but the first hidden layer {layers[0][0]} has {_n(layers[0][1])}")
    if layers and chip.output_reach is not None and layers[-1][1] > chip.output_reach:
        out.append(f"the readout reads the last {chip.output_reach} hidden neurons on "
                   f"{chip.name}, but the last hidden layer {layers[-1][0]} has "
                   f"{_n(layers[-1][1])}")
    return out


def fanout(weights_rec: np.ndarray, weights_out: np.ndarray) -> np.ndarray:
    """Outgoing connections (non-zero weights, any synapse) of every hidden neuron."""
    rec = np.asarray(weights_rec) != 0
    if rec.ndim == 3:
        rec = rec.any(axis=2)
    return rec.sum(axis=1) + (np.asarray(weights_out) != 0).sum(axis=1)


def fanout_violations(chip: Chip, layers: list[tuple[str, int]], fan: np.ndarray) -> list[str]:
    out, start = [], 0
    worst = []
    for name, size in layers:
        layer_max = int(fan[start:start + size].max()) if size else 0
        if layer_max > chip.fanout:
            worst.append(f"{name}: {_n(layer_max)}")
        start += size
    if worst:
        out.append(f"fan-out per hidden neuron: {_n(int(fan.max()))} > {_n(chip.fanout)} on "
                   f"{chip.name} (largest per layer: {', '.join(worst)})")
    return out
