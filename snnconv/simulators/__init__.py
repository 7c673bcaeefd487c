"""Registry of target simulators.

A simulator converts a normalised IR graph into something it can run
(``convert(graph, spike_code, **options)``) and runs a batch of it
(``simulate_batch(snn, x, steps) -> BatchOutput``), recognises what it
runs (``accepts(snn)``) and describes it for the evaluation
(``describe(snn)``: time step, ANN MACs, neurons per layer, output layer).
Adding one means a new module here and one line in :data:`SIMULATORS`.
"""
from __future__ import annotations

from ..errors import SnnconvError
from .brian import Brian2Simulator
from .ini import IniSimulator
from .xylo import XyloSimulator
from ..stdp.simulator import STDPSimulator

# "stdp" runs trained STDP networks for the evaluation; it converts nothing,
# so the config's simulation.simulator does not offer it.
SIMULATORS = {"INI": IniSimulator, "xylo": XyloSimulator, "brian2": Brian2Simulator,
              "stdp": STDPSimulator}


def get_simulator(name: str):
    for key, cls in SIMULATORS.items():
        if key.lower() == str(name).lower():
            return cls()
    raise SnnconvError(f"unknown simulator {name!r}; available: {', '.join(SIMULATORS)}")


def simulator_for(snn):
    """The simulator that runs ``snn`` (a converted network of any registered kind)."""
    for cls in SIMULATORS.values():
        sim = cls()
        if sim.accepts(snn):
            return sim
    raise SnnconvError(f"no simulator runs a {type(snn).__name__}; expected a converted "
                       "network (a Spike* keras.Model or a XyloNetwork)")


__all__ = ["SIMULATORS", "get_simulator", "simulator_for", "Brian2Simulator", "IniSimulator",
           "XyloSimulator"]
