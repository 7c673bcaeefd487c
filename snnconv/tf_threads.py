"""How many threads TensorFlow gives one operation (``simulation.intra_op_threads``).

TensorFlow runs a graph's independent operations side by side (its
inter-op threads) and splits each operation over its intra-op threads. A
step of the INI engine is many small operations, several of them
independent (the neurons' update of one layer next to the records of
another, the branches of a residual block): on a machine of 2 cores, one
thread per operation with two operations at a time ran it faster than
both at once for every operation, which is TensorFlow's default there
(2 cores, the graph engine, µs per sample·step, three alternating rounds
of ``benchmarks/bench_engine.py``: SNN Toolbox's digits CNN 2.4-3.1
against 5.3-5.8, the bundled CNN 9.7-12.4 against 12.2-17.1,
fashion_resnet 51.2-59.7 against 60.0-72.5; docs/benchmarks.md,
"Engines"). XLA's compiled loops, which parallelise inside one
operation, ran slower so; the engine's ``auto`` then takes the graph.

The setting is the process's, and TensorFlow takes it only before it has
run anything: ``snnconv run`` applies it at start. ``auto`` is 1 on a
machine of at most :data:`SINGLE_THREAD_MAX_CORES` cores and TensorFlow's
own choice elsewhere (not measured there) and in runs that calibrate
(:func:`for_run`); 0 is always TensorFlow's choice.
From Python, call :func:`apply_intra_op_threads` (or
``tf.config.threading.set_intra_op_parallelism_threads``) before anything
else runs TensorFlow, or set the environment variable
``TF_NUM_INTRAOP_THREADS``.
"""
from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: ``auto`` gives one thread per operation on machines with at most this many cores
SINGLE_THREAD_MAX_CORES = 2
#: TensorFlow's own environment variable for the same setting
ENV = "TF_NUM_INTRAOP_THREADS"


def available_cores() -> int:
    """The CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:       # not on Linux
        return os.cpu_count() or 1


def resolve_intra_op_threads(value) -> int:
    """``auto`` -> 1 on a machine of at most :data:`SINGLE_THREAD_MAX_CORES` cores,
    else 0 (TensorFlow's choice); an integer >= 0 as it is."""
    if isinstance(value, str):
        if value.lower() != "auto":
            raise ValueError(f"intra_op_threads must be an integer >= 0 or 'auto', "
                             f"got {value!r}")
        # the user's own TF_NUM_INTRAOP_THREADS wins over the rule
        if os.environ.get(ENV):
            return 0
        return 1 if available_cores() <= SINGLE_THREAD_MAX_CORES else 0
    if int(value) < 0:
        raise ValueError(f"intra_op_threads must be an integer >= 0 or 'auto', got {value!r}")
    return int(value)


def for_run(value, calibration_method: str = "none"):
    """What ``snnconv run`` applies for ``simulation.intra_op_threads = value``:
    ``auto`` leaves TensorFlow's choice when the run calibrates, whose passes
    over the ANN and the SNN ran slower with one thread per operation (the
    bundled CNN's light calibration, 1000 samples, T 25, two alternating
    rounds: 10.1-11.2 s against 7.5-7.9 s)."""
    if isinstance(value, str) and value.lower() == "auto" and calibration_method != "none":
        return 0
    return value


def apply_intra_op_threads(value) -> int:
    """Give TensorFlow's operations ``value`` threads each (see the module
    docstring); returns the number now in effect, 0 for TensorFlow's choice.

    After TensorFlow has run something in this process the setting cannot
    change: an explicit number then only logs a warning saying so, ``auto``
    stays silent."""
    import tensorflow as tf
    wanted = resolve_intra_op_threads(value)
    if wanted == 0 or tf.config.threading.get_intra_op_parallelism_threads() == wanted:
        return intra_op_threads()
    try:
        tf.config.threading.set_intra_op_parallelism_threads(wanted)
    except RuntimeError:
        if not isinstance(value, str):
            log.warning("simulation.intra_op_threads = %s cannot take effect: TensorFlow has "
                        "already run in this process (set it before anything uses "
                        "TensorFlow, or set the environment variable %s)", value, ENV)
    return intra_op_threads()


def intra_op_threads() -> int:
    """The threads TensorFlow gives one operation in this process, as set by
    :func:`apply_intra_op_threads` or ``TF_NUM_INTRAOP_THREADS``; 0 for its own choice."""
    import tensorflow as tf
    configured = tf.config.threading.get_intra_op_parallelism_threads()
    if configured:
        return int(configured)
    try:
        return max(int(os.environ.get(ENV, "0")), 0)
    except ValueError:
        return 0
