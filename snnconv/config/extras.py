"""Optional packages a config needs, checked before any work (``snnconv check``, ``run``, ``evaluate``).

Only looks for the packages (``importlib.util.find_spec``); nothing heavy is
imported.
"""
from __future__ import annotations

import importlib.util

from snnconv.choices import SIMULATOR_REQUIRES
from snnconv.errors import MissingDependencyError


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extras(config) -> list[str]:
    """One message per optional package ``config`` needs but this environment lacks."""
    missing = []
    sim = config.simulation.simulator
    if not config.stdp.enabled and sim in SIMULATOR_REQUIRES:
        module, hint = SIMULATOR_REQUIRES[sim]
        if not _installed(module):
            missing.append(f"simulation.simulator = {sim} needs the optional package "
                           f"{module!r}, which is not installed; {hint}")
    return missing


def check_extras(config) -> None:
    """Raise :class:`MissingDependencyError` naming what ``config`` needs and lacks."""
    missing = missing_extras(config)
    if missing:
        raise MissingDependencyError("; ".join(missing))
