"""The event-driven simulator (``simulation.simulator = event``, ``spike_code = ttfs_exact``).

* :mod:`.network` — :class:`EventNetwork` (the normalised graph, its time windows,
  fan-outs), saving and loading;
* :mod:`.engine` — the closed-form, layer-by-layer computation of a batch's spike times;
* :mod:`.simulator` — the registry entry.
"""
from .engine import layer_values, spike_times
from .network import EventNetwork, build_event_network, load_event_network
from .simulator import EventSimulator

__all__ = ["EventNetwork", "EventSimulator", "build_event_network", "layer_values",
           "load_event_network", "spike_times"]
