"""Conversion: a normalised IR graph -> the network a target simulator runs.

The thin public facade over the simulator registry; each backend builds its
own network (the INI backend: :mod:`snnconv.simulators.ini.builder`).
"""
from __future__ import annotations

from .ir import Graph


def convert(graph: Graph, simulator: str = "INI", spike_code: str = "rate", **options):
    """Convert a (normalised) graph for a target simulator.

    ``options`` are the simulator's: for ``INI`` the cell parameters
    ``v_thresh, reset, tau_refrac, dt, tau_mem (None = no leak),
    max_spikes_per_dt, v_init, threshold_mode, v_reset`` and
    ``poisson_input, input_rate, seed, max2avg_pool``
    (``threshold_mode="strict"`` with ``reset="to_value"`` or ``"zero"``
    gives NIR's neurons). Returns what the simulator runs (for ``INI`` a
    ``keras.Model``).
    """
    from .simulators import get_simulator
    return get_simulator(simulator).convert(graph, spike_code=spike_code, **options)
