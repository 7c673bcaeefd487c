"""The registry of target simulators (backends).

Every backend implements :class:`~snnconv.simulators.base.Simulator` (the
contract: converting, running a batch, describing a network, saving and
loading, recordings). The registry answers which backend has a name, which
runs a given network and which loads a given file. Adding a backend means a
new module implementing the contract and one entry in :data:`SIMULATORS`.
"""
from __future__ import annotations

from pathlib import Path

from .. import choices
from ..errors import SnnconvError
from ..stdp.simulator import STDPSimulator
from .base import BatchOutput, NetworkInfo, Simulator
from .brian import Brian2Simulator
from .event import EventSimulator
from .ini import IniSimulator
from .lif import LIFSimulator
from .xylo import XyloSimulator

# name -> class; those with `configurable` are the names snnconv.choices.SIMULATORS lists.
# simulator_for asks them in this order: LIF (trained) networks are Keras models too.
SIMULATORS: dict[str, type[Simulator]] = {
    cls.name: cls for cls in (LIFSimulator, IniSimulator, XyloSimulator, Brian2Simulator, STDPSimulator,
                              EventSimulator)}


def register_simulator(cls: type[Simulator]) -> type[Simulator]:
    """Add a backend (a :class:`Simulator` subclass) to the registry.

    A ``configurable`` one can then be chosen as ``simulation.simulator`` in
    configs loaded afterwards. Usable as a class decorator.
    """
    if not (isinstance(cls, type) and issubclass(cls, Simulator)) or not cls.name:
        raise TypeError("register_simulator needs a Simulator subclass with a name")
    SIMULATORS[cls.name] = cls
    if cls.configurable and cls.name not in choices.SIMULATORS:
        choices.SIMULATORS.append(cls.name)
    return cls


def unregister_simulator(name: str) -> None:
    """Remove the backend ``name`` added by :func:`register_simulator`."""
    SIMULATORS.pop(name, None)
    if name in choices.SIMULATORS:
        choices.SIMULATORS.remove(name)


def get_simulator(name: str) -> Simulator:
    """The backend called ``name`` (case-insensitive)."""
    for key, cls in SIMULATORS.items():
        if key.lower() == str(name).lower():
            return cls()
    raise SnnconvError(f"unknown simulator {name!r}; available: {', '.join(SIMULATORS)}")


def simulator_for(net) -> Simulator:
    """The backend that runs ``net`` (a converted or trained network of any registered kind)."""
    for cls in SIMULATORS.values():
        sim = cls()
        if sim.accepts(net):
            return sim
    raise SnnconvError(f"no simulator runs a {type(net).__name__}; expected a converted "
                       "network (a Spike* keras.Model, a XyloNetwork, ...)")


def simulator_for_file(path) -> Simulator:
    """The backend that loads the network saved at ``path``."""
    path = Path(path)
    if not path.is_file():
        raise SnnconvError(f"network file {path} does not exist")
    for cls in SIMULATORS.values():
        sim = cls()
        if sim.can_load(path):
            return sim
    suffixes = sorted({c.file_suffix for c in SIMULATORS.values() if c.file_suffix})
    raise SnnconvError(f"{path}: no simulator loads this file; saved networks are "
                       f"{', '.join(suffixes)} files")


def load_network(path):
    """A saved network of any registered kind (``.keras`` SNN, Xylo or STDP ``.npz``)."""
    return simulator_for_file(path).load(path)


__all__ = ["SIMULATORS", "BatchOutput", "NetworkInfo", "Simulator", "get_simulator",
           "load_network", "register_simulator", "unregister_simulator", "simulator_for", "simulator_for_file", "Brian2Simulator",
           "EventSimulator", "IniSimulator", "LIFSimulator", "STDPSimulator", "XyloSimulator"]
