"""Optional packages a config needs, checked before any work (``snnconv check``, ``run``, ``evaluate``).

Only looks for the packages (``importlib.util.find_spec``); nothing heavy is
imported.
"""
from __future__ import annotations

import importlib.util

from snnconv.errors import MissingDependencyError

BRIAN2_HINT = ("install it with: pip install 'snnconv[brian2]' (Brian 2.9 needs numpy < 2, "
               "so use a separate virtual environment if TensorFlow's numpy 2 is needed "
               "elsewhere)")


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def missing_extras(config) -> list[str]:
    """One message per optional package ``config`` needs but this environment lacks."""
    missing = []
    if (not config.stdp.enabled and config.simulation.simulator == "brian2"
            and not _installed("brian2")):
        missing.append("simulation.simulator = brian2 needs the optional package 'brian2', "
                       f"which is not installed; {BRIAN2_HINT}")
    return missing


def check_extras(config) -> None:
    """Raise :class:`MissingDependencyError` naming what ``config`` needs and lacks."""
    missing = missing_extras(config)
    if missing:
        raise MissingDependencyError("; ".join(missing))
