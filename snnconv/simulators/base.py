"""The simulator contract: what every target simulator (backend) provides.

A backend turns a normalised IR graph into a network it can run and runs
batches of it. The pipeline, the evaluation and the sweep talk to a backend
only through :class:`Simulator`; they never test what kind of backend or
network they hold. Adding a backend is one module with a :class:`Simulator`
subclass and one entry in :data:`snnconv.simulators.SIMULATORS`.

The pieces:

* :class:`NetworkInfo` — what the evaluation needs to know of a network
  (time step, neurons per layer, output layer, ANN MACs, ...);
* :class:`BatchOutput` — what simulating one batch returns;
* :class:`Simulator` — the interface, with explicit capability flags
  (``early_stopping``, ``distributes``, ``saves``, ``needs_steps``) and
  defaults for the optional parts (recordings, diagnostics, summary lines).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, ClassVar

import numpy as np

from .. import defaults
from ..choices import SPIKE_CODE_ALIASES
from ..errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NetworkInfo:
    """What the evaluation needs to know of a converted network."""

    dt: float                       # simulated time per step
    ann_macs: int                   # MACs of one ANN forward pass (0 if unknown)
    neurons: dict                   # layer -> number of neurons, in network order
    output_name: str                # the layer whose signal is the class score
    # True when the class is decided by the output layer's first spike (TTFS
    # codes): the evaluation then records each sample's decision step
    decides: bool = False
    spike_code: str | None = None   # None for networks not made by conversion (STDP)
    # called with each batch of inputs before it is simulated; raises
    # DataError for inputs the network cannot take
    check_input: Callable[[np.ndarray], None] | None = None
    # for a network read out at one fixed time (ttfs_exact: the end of the
    # output's integration window): that time; the evaluation records the step
    # it falls in as every sample's decision step (0 if the run ends before it)
    decision_time: float | None = None
    # True for networks that run on sequences: every sample carries its own time
    # axis ((N, T, ...) inputs, e.g. event counts) and the run takes its T steps
    temporal: bool = False
    num_classes: int | None = None  # where known without running the network


@dataclasses.dataclass
class BatchOutput:
    """Per-step results of one batch (``B`` samples, ``T`` steps)."""

    readout: np.ndarray                   # (B, T, classes): score whose argmax is the class
    spikes: dict[str, np.ndarray]         # layer -> (B, T) spikes emitted per step
    synops: np.ndarray                    # (B, T) synaptic operations per step
    # other ways of reading the class after the last step: name -> (B, classes) scores
    final_scores: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)


class Simulator:
    """Base class of the target simulators; subclasses override what they have.

    Required: :attr:`name`, :attr:`spike_codes`, :meth:`accepts`,
    :meth:`info`, :meth:`simulate_batch`, and (for a backend that converts)
    :meth:`convert` and :meth:`options_from_config`.
    """

    name: ClassVar[str] = ""
    # the spike codes :meth:`convert` makes
    spike_codes: ClassVar[tuple[str, ...]] = ()
    # offered as simulation.simulator in the config (STDP networks are trained, not chosen there)
    configurable: ClassVar[bool] = True
    # can stop a batch once every sample has decided (simulate_batch(early_stopping=True))
    early_stopping: ClassVar[bool] = False
    # splits a batch across the replicas of a tf.distribute strategy
    distributes: ClassVar[bool] = False
    # the ways of running a batch that simulate_batch(engine=...) takes (simulation.engine);
    # none: one way, and the option is not passed
    engines: ClassVar[tuple[str, ...]] = ()
    # networks can be written to a file (:meth:`save`) and read back (:meth:`load`)
    saves: ClassVar[bool] = False
    # file suffix of a saved network, with the dot
    file_suffix: ClassVar[str] = ""
    # False for a backend whose simulation is not stepped in time (event-driven):
    # the evaluation then needs neither a duration nor a number of steps
    needs_steps: ClassVar[bool] = True
    # the spike codes whose networks :meth:`calibrate` calibrates (none: it refuses)
    calibrates: ClassVar[tuple[str, ...]] = ()
    # the spike codes whose networks :meth:`finetune` fine-tunes (none: it refuses)
    finetunes: ClassVar[tuple[str, ...]] = ()
    # the spike codes whose neurons take cell.burst other than 1 (none: it refuses)
    bursts: ClassVar[tuple[str, ...]] = ()

    # -- conversion ------------------------------------------------------------
    def convert(self, graph, spike_code: str = "rate", **options):
        """The network this backend runs, made from a normalised graph."""
        raise ConfigError(f"simulator {self.name} does not convert ANNs")

    def options_from_config(self, config) -> dict:
        """:meth:`convert`'s keyword options from a :class:`snnconv.config.Config`.

        Reads and validates this backend's sections and keys; a value the
        backend cannot honour is a :class:`ConfigError` naming ``section.key``.
        The base class checks the capability-related simulation keys.
        """
        self.check_config(config)
        return {}

    def check_config(self, config, converting: bool = True) -> None:
        """Refuse the ``[simulation]`` / ``[conversion]`` settings this backend cannot honour.

        ``converting``: False when a saved network is run (``--snn``): the
        conversion settings then do not apply.
        """
        sim = config.simulation
        code = normalize_spike_code(config.conversion.spike_code)
        if converting and self.spike_codes and code not in self.spike_codes:
            raise ConfigError(f"conversion.spike_code = {config.conversion.spike_code} cannot be "
                              f"used with simulation.simulator = {self.name}; "
                              f"{self._codes_text()}")
        if sim.distribute == "multi_worker" and not self.distributes:
            raise ConfigError(f"simulation.distribute = multi_worker cannot be used with "
                              f"simulation.simulator = {self.name}: it runs on one device; "
                              "set it to auto or off")
        if sim.engine != "auto" and sim.engine not in self.engines:
            raise ConfigError(f"simulation.engine = {sim.engine} cannot be used with "
                              f"simulation.simulator = {self.name}: it runs one way; "
                              "set it to auto")
        if sim.early_stopping and not self.early_stopping:
            raise ConfigError(f"simulation.early_stopping = true cannot be used with "
                              f"simulation.simulator = {self.name}: it always simulates every "
                              "step; set it to false")
        method = config.calibration.method
        if converting and method != "none" and code not in self.calibrates:
            raise ConfigError(self._no_calibration(method, code))
        if converting and config.finetune.enabled and code not in self.finetunes:
            raise ConfigError(self._no_finetuning(code))
        if converting:
            self.check_burst(config.cell.burst, code)

    def check_spike_code(self, spike_code: str) -> str:
        """``spike_code`` in its canonical name, or a ConfigError if not made here."""
        code = normalize_spike_code(spike_code)
        if code not in self.spike_codes:
            raise ConfigError(f"simulator {self.name} has no spike code {spike_code!r}; "
                              f"{self._codes_text()}")
        return code

    def check_burst(self, burst, spike_code: str, graph=None, reset: str = "subtraction",
                    tau_refrac: float = 0.0) -> int:
        """``cell.burst`` as an int >= 1, or a ConfigError where this backend's
        ``spike_code`` takes only 1 (see :attr:`bursts`).

        ``"auto"`` (the default) is :data:`snnconv.defaults.AUTO_BURST` where this
        backend's ``spike_code`` takes bursts and the neurons are the plain rate
        code's (reset by subtraction, no refractory period, no node of ``graph``
        trained with QCFS, whose neurons are exact with one spike a step), else 1.
        """
        if isinstance(burst, str) and burst.lower() == "auto":
            plain = (spike_code in self.bursts and reset == "subtraction"
                     and not tau_refrac and not _has_qcfs(graph))
            return defaults.AUTO_BURST if plain else 1
        if isinstance(burst, bool) or not _is_integer(burst) or int(burst) < 1:
            raise ConfigError(f"cell.burst = {burst}: expected an integer >= 1 or auto (1: one "
                              "spike of threshold v_thresh at a time)")
        burst = int(burst)
        if burst != 1 and not self.bursts:
            raise ConfigError(f"cell.burst = {burst} cannot be used with simulation.simulator = "
                              f"{self.name}: its neurons fire at most once per time step (or "
                              "set their spikes per step themselves); set it to 1 or auto")
        if burst != 1 and spike_code not in self.bursts:
            raise ConfigError(f"cell.burst = {burst} applies to the {', '.join(self.bursts)} "
                              f"code only; spike_code {spike_code} fires once per neuron: set "
                              "cell.burst = 1 or auto")
        return burst

    def _codes_text(self) -> str:
        codes = self.spike_codes
        return (f"it runs the {codes[0]} code only" if len(codes) == 1
                else f"available: {', '.join(codes)}")

    def calibrate(self, net, graph, x, num_steps: int, method: str = "light", **options):
        """A copy of ``net`` calibrated for ``num_steps`` steps on the inputs ``x``
        against the ANN of ``graph`` (the normalised graph it was converted from);
        see :mod:`snnconv.calibration`. Backends that cannot refuse."""
        raise ConfigError(self._no_calibration(method, None))

    def _no_calibration(self, method: str, code: str | None) -> str:
        if not self.calibrates:
            return (f"calibration.method = {method} cannot be used with simulation.simulator = "
                    f"{self.name}: it calibrates no networks; set calibration.method = none")
        return (f"calibration.method = {method} cannot be used with conversion.spike_code = "
                f"{code} on simulation.simulator = {self.name}: it calibrates "
                f"{', '.join(self.calibrates)} networks; set calibration.method = none")

    def finetune(self, net, x, y, num_steps: int, **options):
        """``(fine-tuned copy of net, FinetuneHistory)``: ``net`` trained for
        ``num_steps`` steps on the labelled samples ``(x, y)`` with surrogate
        gradients (see :func:`snnconv.finetune`). Backends that cannot refuse."""
        raise ConfigError(self._no_finetuning(None))

    def _no_finetuning(self, code: str | None) -> str:
        if not self.finetunes or code is None:
            return (f"finetune.enabled = true cannot be used with simulation.simulator = "
                    f"{self.name}: it fine-tunes no networks; set finetune.enabled = false")
        return (f"finetune.enabled = true cannot be used with conversion.spike_code = {code} "
                f"on simulation.simulator = {self.name}: it fine-tunes "
                f"{', '.join(self.finetunes)} networks; set finetune.enabled = false")

    # -- running ---------------------------------------------------------------
    def accepts(self, net) -> bool:
        """True when ``net`` is a network this backend runs."""
        raise NotImplementedError

    def info(self, net) -> NetworkInfo:
        raise NotImplementedError

    def simulate_batch(self, net, x, steps: int, *, strategy=None,
                       early_stopping: bool = False) -> BatchOutput:
        """Simulate ``steps`` steps of ``net`` on the batch ``x`` (no time axis).

        ``strategy`` is only passed to backends that :attr:`distributes`;
        ``early_stopping`` only to those that have :attr:`early_stopping`;
        ``engine`` (one of :attr:`engines`) only to those that have several.
        """
        raise NotImplementedError

    def engine_used(self, net, engine: str) -> str:
        """The engine ``simulate_batch(engine=engine)`` runs ``net`` with (``auto`` resolved)."""
        return engine

    def num_steps(self, net) -> int | None:
        """The number of steps a run of ``net`` takes when :attr:`needs_steps` is False."""
        return None

    # -- files -------------------------------------------------------------------
    def save(self, net, path) -> Path:
        """Write ``net`` to ``path`` (its suffix replaced by :attr:`file_suffix`)."""
        raise ConfigError(f"simulator {self.name}: its networks are rebuilt, not saved")

    def can_load(self, path: Path) -> bool:
        """True when the file at ``path`` is a network this backend loads."""
        return False

    def load(self, path):
        raise ConfigError(f"simulator {self.name} loads no files")

    def file_name(self, name: str) -> str:
        """``name`` with this backend's file suffix."""
        return str(Path(name).with_suffix(self.file_suffix)) if self.file_suffix else name

    # -- what a run reports --------------------------------------------------------
    def target(self, net) -> str:
        """What ``net`` runs on, in words (``snnconv run --check`` says it fits there)."""
        return f"simulator {self.name}"

    def summary_lines(self, net) -> list[str]:
        """Lines printed after the conversion (e.g. what the network uses of a chip)."""
        return []

    def run_facts(self, net) -> dict:
        """Backend-specific facts of a run for ``summary.json`` (plain JSON types)."""
        return {}

    def record_samples(self, net, x, steps: int) -> dict | None:
        """Spikes (and potentials) of a few samples for ``results.h5``, where recorded."""
        return None

    def diagnostics(self, graph, net, x, steps: int) -> dict | None:
        """Per-layer ANN-against-SNN pairs (``{layer: {"ann", "snn", "correlation"}}``)."""
        return None


def if_neuron_options(config) -> dict:
    """The rate-coded IF neurons' and the input's options from ``[cell]``,
    ``[simulation]``, ``[input]`` and ``[conversion]`` (the backends that run
    those neurons take them as :meth:`Simulator.convert` keywords)."""
    cell, sim, inp = config.cell, config.simulation, config.input
    return dict(v_thresh=cell.v_thresh, reset=cell.reset, tau_refrac=cell.tau_refrac,
                dt=sim.dt, tau_mem=cell.tau_mem if cell.leak else None,
                max_spikes_per_dt=cell.max_spikes_per_dt, v_init=cell.v_init,
                burst=cell.burst, threshold_mode=cell.threshold_mode, v_reset=cell.v_reset,
                poisson_input=inp.poisson_input, input_rate=inp.input_rate, seed=sim.seed,
                max2avg_pool=config.conversion.max2avg_pool)


def _is_integer(value) -> bool:
    try:
        return float(value).is_integer()
    except (TypeError, ValueError):
        return False


def _has_qcfs(graph) -> bool:
    return graph is not None and any(node.params.get("qcfs") for node in graph.nodes)


def normalize_spike_code(code: str) -> str:
    """The canonical name of a spike code (other tools' names mapped to ours)."""
    return SPIKE_CODE_ALIASES.get(code, code)
