"""Registry of target simulators.

A simulator converts a normalised IR graph into something it can run
(``convert(graph, spike_code, **options)``) and runs a batch of it
(``simulate_batch(snn, x, steps) -> BatchOutput``). Adding one means a new
module here and one line in :data:`SIMULATORS`.
"""
from __future__ import annotations

from ..errors import SnnconvError
from .ini import IniSimulator

SIMULATORS = {"INI": IniSimulator}


def get_simulator(name: str):
    for key, cls in SIMULATORS.items():
        if key.lower() == str(name).lower():
            return cls()
    raise SnnconvError(f"unknown simulator {name!r}; available: {', '.join(SIMULATORS)}")


__all__ = ["SIMULATORS", "get_simulator", "IniSimulator"]
