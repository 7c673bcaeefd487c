"""Typed, frozen views of the configuration sections and the rules for each key.

No defaults live here: every value comes from ``config_templates/default.ini``
(overridden by the user's file). This module only knows each key's type and
allowed range, how to parse a raw string into that type, and how to write the
typed value back as a string.

Each section is a frozen dataclass whose fields are the section's keys, in
file order. A field's ``metadata["spec"]`` is a :class:`KeySpec`.
"""
from __future__ import annotations

import configparser
import dataclasses
import math
from pathlib import Path
from typing import Any, Optional

from ..choices import (BRIAN2_CODEGEN_TARGETS, CALIBRATION_METHODS,  # noqa: F401 (re-exported)
                       DISTRIBUTE_MODES, ENGINES, NORMALIZATION_METHODS, RESET_ALIASES, RESET_MODES,
                       SIMULATORS, SPIKE_CODE_ALIASES, SPIKE_CODES, STDP_RULES,
                       SURROGATES, SYNNET_OUTPUTS, THRESHOLD_MODES, TRAINING_LOSSES,
                       TRAINING_SCHEDULES, XYLO_QUANTIZATION)

# Allowed values of the config's own (file and chip) keys
DATASET_FORMATS = ("npz", "folder")
XYLO_CHIPS = ("syns61201", "syns65302", "syns63300")
XYLO_CHIP_ALIASES = {"audio2": "syns61201", "audio3": "syns65302", "imu": "syns63300"}
XYLO_WEIGHT_SHIFTS = ("auto",) + tuple(str(i) for i in range(8))
MODEL_SUFFIXES = (".keras", ".h5", ".hdf5")

_BOOL_STATES = configparser.ConfigParser.BOOLEAN_STATES


class ValueProblem(ValueError):
    """A raw value does not fit its key; the message says what is allowed."""


@dataclasses.dataclass(frozen=True)
class KeySpec:
    """How one key is parsed and checked.

    kind: ``bool``, ``int``, ``float``, ``str``, ``choice``, ``path`` or ``ints``
    (a comma-separated list of integers, e.g. layer sizes).
    ``words``: names an ``int`` key also takes (e.g. ``auto``), kept as strings.
    ``path`` keys are only type-checked here (a string); the loader resolves
    them against the config file's folder and checks existence.
    """

    kind: str
    min: Optional[float] = None
    min_inclusive: bool = True
    max: Optional[float] = None
    max_inclusive: bool = True
    choices: tuple = ()
    aliases: dict = dataclasses.field(default_factory=dict)
    optional: bool = False  # empty value allowed (str/path; int/float: empty = None)
    words: tuple = ()

    def describe(self) -> str:
        """What the key accepts, for error messages."""
        if self.kind == "bool":
            return "a boolean (true/false, yes/no, on/off, 1/0)"
        if self.kind == "choice":
            text = "one of: " + ", ".join(self.choices) + " (case-insensitive"
            if self.aliases:
                text += "; also accepted: " + ", ".join(
                    f"{a!r} meaning {c}" for a, c in self.aliases.items())
            return text + ")"
        if self.kind in ("int", "float"):
            noun = "an integer" if self.kind == "int" else "a number"
            bounds = []
            if self.min is not None:
                bounds.append(f"{'>=' if self.min_inclusive else '>'} {_fmt_num(self.min)}")
            if self.max is not None:
                bounds.append(f"{'<=' if self.max_inclusive else '<'} {_fmt_num(self.max)}")
            text = noun + (" " + " and ".join(bounds) if bounds else "")
            return text + "".join(f" or {word}" for word in self.words)
        if self.kind == "path":
            return "a path" + (" (may be empty)" if self.optional else "")
        if self.kind == "ints":
            low = f" >= {_fmt_num(self.min)}" if self.min is not None else ""
            return f"a comma-separated list of integers{low} (e.g. 63, 63, 63)"
        return "a non-empty string" if not self.optional else "a string"

    def parse(self, raw: str) -> Any:
        """Turn a raw string into the typed value or raise ValueProblem."""
        text = raw.strip()
        if text == "" and self.optional and self.kind in ("int", "float"):
            return None                                  # "not set"
        if text == "" and not (self.optional and self.kind in ("str", "path")):
            raise ValueProblem(f"is empty; expected {self.describe()}")
        if self.kind == "ints":
            try:
                values = tuple(int(v) for v in text.split(","))
            except ValueError:
                raise ValueProblem(f"expected {self.describe()}") from None
            for value in values:
                self._check_range(value)
            return values
        if self.kind == "bool":
            try:
                return _BOOL_STATES[text.lower()]
            except KeyError:
                raise ValueProblem(f"expected {self.describe()}") from None
        if self.kind == "int":
            for word in self.words:
                if text.lower() == word.lower():
                    return word
            try:
                value = int(text)
            except ValueError:
                raise ValueProblem(f"expected {self.describe()}") from None
            self._check_range(value)
            return value
        if self.kind == "float":
            try:
                value = float(text)
            except ValueError:
                raise ValueProblem(f"expected {self.describe()}") from None
            if not math.isfinite(value):
                raise ValueProblem(f"expected a finite number; {self.describe()}")
            self._check_range(value)
            return value
        if self.kind == "choice":
            low = text.lower()
            for choice in self.choices:
                if low == choice.lower():
                    return choice
            for alias, target in self.aliases.items():
                if low == alias.lower():
                    return target
            raise ValueProblem(f"expected {self.describe()}")
        return text  # str, path

    def _check_range(self, value) -> None:
        ok = True
        if self.min is not None:
            ok &= value >= self.min if self.min_inclusive else value > self.min
        if self.max is not None:
            ok &= value <= self.max if self.max_inclusive else value < self.max
        if not ok:
            raise ValueProblem(f"out of range; expected {self.describe()}")

    def format(self, value: Any) -> str:
        """Write a typed value back as the string the file would hold."""
        if value is None:
            return ""
        if self.kind == "bool":
            return "true" if value else "false"
        if self.kind == "float":
            return repr(float(value))
        if self.kind == "ints":
            return ", ".join(str(int(v)) for v in value)
        return str(value)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _key(kind: str, **kw) -> Any:
    return dataclasses.field(metadata={"spec": KeySpec(kind, **kw)})


def _positive(kind: str = "float") -> Any:
    return _key(kind, min=0, min_inclusive=False)


def _at_least_one() -> Any:
    return _key("int", min=1)


@dataclasses.dataclass(frozen=True)
class PathsConfig:
    """``[paths]``: all paths absolute after loading."""

    path_wd: Path = _key("path", optional=True)
    dataset_path: Optional[Path] = _key("path", optional=True)
    filename_ann: Optional[Path] = _key("path", optional=True)  # required unless [stdp] enabled
    log_dir_of_current_run: Path = _key("path", optional=True)
    runlabel: str = _key("str", optional=True)     # empty: the config file's stem
    filename_snn: str = _key("str")

    @property
    def snn_path(self) -> Path:
        """Where the converted SNN is written: ``<run dir>/<filename_snn>``."""
        return self.log_dir_of_current_run / self.filename_snn


@dataclasses.dataclass(frozen=True)
class ToolsConfig:
    """``[tools]``: which pipeline stages run."""

    evaluate_ann: bool = _key("bool")
    normalize: bool = _key("bool")
    simulate: bool = _key("bool")
    save_snn: bool = _key("bool")


@dataclasses.dataclass(frozen=True)
class InputConfig:
    """``[input]``: how samples are read and fed to the SNN."""

    dataset_format: str = _key("choice", choices=DATASET_FORMATS)
    poisson_input: bool = _key("bool")
    input_rate: float = _positive()
    input_scale: float = _positive()


@dataclasses.dataclass(frozen=True)
class NormalizationConfig:
    """``[normalization]``: data-based weight normalisation."""

    method: str = _key("choice", choices=NORMALIZATION_METHODS)
    percentile: float = _key("float", min=0, min_inclusive=False, max=100)
    num_norm_samples: int = _at_least_one()
    batch_size: int = _at_least_one()
    per_channel: bool = _key("bool")
    num_steps: int = _key("int", min=0)          # t_aware; 0: the simulation's steps


@dataclasses.dataclass(frozen=True)
class ConversionConfig:
    """``[conversion]``: how the ANN is mapped onto spiking layers."""

    spike_code: str = _key("choice", choices=SPIKE_CODES, aliases=SPIKE_CODE_ALIASES)
    max2avg_pool: bool = _key("bool")


@dataclasses.dataclass(frozen=True)
class CalibrationConfig:
    """``[calibration]``: post-conversion calibration (:mod:`snnconv.calibration`)."""

    method: str = _key("choice", choices=CALIBRATION_METHODS)
    num_samples: int = _at_least_one()
    num_steps: int = _key("int", min=0)          # 0: the simulation's steps


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """``[finetune]``: surrogate-gradient fine-tuning of the converted network
    (:func:`snnconv.finetune`), after calibration, before simulation."""

    enabled: bool = _key("bool")
    epochs: int = _at_least_one()
    num_steps: int = _key("int", min=0)          # 0: the simulation's steps
    learning_rate: float = _positive()
    surrogate: str = _key("choice", choices=SURROGATES)
    num_samples: int = _at_least_one()
    batch_size: int = _at_least_one()
    distillation: float = _key("float", min=0, max=1)
    temperature: float = _positive()
    max_shift: int = _key("int", min=0)

    def options(self) -> dict:
        """The :func:`snnconv.finetune` keyword arguments this section sets
        (the teacher, the ANN, is the pipeline's to add)."""
        return {"epochs": self.epochs, "learning_rate": self.learning_rate,
                "surrogate": self.surrogate, "batch_size": self.batch_size,
                "distillation": self.distillation, "temperature": self.temperature,
                "max_shift": self.max_shift}


@dataclasses.dataclass(frozen=True)
class SimulationConfig:
    """``[simulation]``: the time-stepped run of the SNN."""

    simulator: str = _key("choice", choices=SIMULATORS)
    duration: float = _positive()
    dt: float = _positive()
    batch_size: int = _at_least_one()
    num_to_test: int = _at_least_one()
    top_k: int = _at_least_one()
    early_stopping: bool = _key("bool")
    seed: int = _key("int")
    distribute: str = _key("choice", choices=DISTRIBUTE_MODES)
    engine: str = _key("choice", choices=ENGINES)
    intra_op_threads: Any = _key("int", min=0, words=("auto",))

    @property
    def num_steps(self) -> int:
        """Number of time steps, ``duration / dt`` (checked whole at load)."""
        return int(round(self.duration / self.dt))


@dataclasses.dataclass(frozen=True)
class CellConfig:
    """``[cell]``: the integrate-and-fire neuron."""

    v_thresh: float = _positive()
    reset: str = _key("choice", choices=RESET_MODES, aliases=RESET_ALIASES)
    tau_refrac: float = _key("float", min=0)
    leak: bool = _key("bool")
    tau_mem: float = _positive()
    max_spikes_per_dt: int = _at_least_one()
    burst: Any = _key("int", min=1, words=("auto",))
    v_init: float = _key("float")
    threshold_mode: str = _key("choice", choices=THRESHOLD_MODES)
    v_reset: float = _key("float")


@dataclasses.dataclass(frozen=True)
class OutputConfig:
    """``[output]``: logging and files."""

    verbose: int = _key("int", min=0, max=3)      # 3: TensorFlow's logs too
    overwrite: bool = _key("bool")
    plot: bool = _key("bool")
    energy_per_synop_pj: float = _key("float", min=0)
    energy_per_mac_pj: float = _key("float", min=0)


@dataclasses.dataclass(frozen=True)
class XyloConfig:
    """``[xylo]``: quantization and chip for ``simulation.simulator = xylo``."""

    chip: str = _key("choice", choices=XYLO_CHIPS, aliases=XYLO_CHIP_ALIASES)
    quantization: str = _key("choice", choices=XYLO_QUANTIZATION)
    weight_shift: str = _key("choice", choices=XYLO_WEIGHT_SHIFTS)
    tau_syn: float = _positive()


@dataclasses.dataclass(frozen=True)
class Brian2Config:
    """``[brian2]``: Brian 2 settings for ``simulation.simulator = brian2``."""

    codegen_target: str = _key("choice", choices=BRIAN2_CODEGEN_TARGETS)


@dataclasses.dataclass(frozen=True)
class StdpConfig:
    """``[stdp]``: an unsupervised STDP network (Diehl & Cook 2015) trained instead of converted."""

    enabled: bool = _key("bool")
    rule: str = _key("choice", choices=STDP_RULES)
    rule_params: str = _key("str", optional=True)
    n_exc: int = _at_least_one()
    time_per_sample: float = _positive()
    rest: float = _key("float", min=0)
    intensity: float = _positive()
    exc_weight: float = _key("float", min=0)
    inh_weight: float = _key("float", min=0)
    theta_plus: float = _key("float", min=0)
    tau_theta: float = _positive()
    refrac_exc: float = _key("float", min=0)
    refrac_inh: float = _key("float", min=0)
    w_norm: float = _key("float", min=0)
    one_spike: bool = _key("bool")
    min_spikes: int = _key("int", min=0)
    epochs: int = _at_least_one()
    num_train: int = _at_least_one()
    num_label_samples: int = _at_least_one()
    checkpoint_every: int = _at_least_one()


@dataclasses.dataclass(frozen=True)
class FrontendConfig:
    """``[frontend]``: waveforms to event counts (:class:`snnconv.audio.FrontEnd`) for
    ``snnconv train``; also the time step of the trained network."""

    sample_rate: float = _positive()
    dt: float = _positive()
    num_channels: int = _at_least_one()
    f_min: float = _positive()
    f_max: float = _positive()
    q: float = _positive()
    order: int = _key("int", min=1, max=8)
    gain: float = _positive()
    normalize: bool = _key("bool")
    max_events_per_step: int = _key("int", min=1, max=255)

    def options(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class SynnetConfig:
    """``[synnet]``: the SynNet architecture ``snnconv train`` trains (times in seconds)."""

    size_hidden_layers: tuple = _key("ints", min=1)
    time_constants_per_layer: tuple = _key("ints", min=1)
    tau_syn_base: float = _positive()
    tau_mem: float = _positive()
    tau_syn_out: float = _positive()
    quantize_time_constants: bool = _key("bool")
    train_time_constants: bool = _key("bool")
    threshold: float = _positive()
    threshold_out: Optional[float] = _key("float", min=0, min_inclusive=False, optional=True)
    train_threshold: bool = _key("bool")
    max_spikes_per_dt: int = _at_least_one()
    max_spikes_per_dt_out: int = _at_least_one()
    p_dropout: float = _key("float", min=0, max=1, max_inclusive=False)
    output: str = _key("choice", choices=SYNNET_OUTPUTS)
    delay: bool = _key("bool")
    surrogate: str = _key("choice", choices=SURROGATES)
    noise_std: float = _key("float", min=0)

    def options(self) -> dict:
        """The :class:`snnconv.SynNet` keyword arguments this section sets."""
        values = dataclasses.asdict(self)
        values["size_hidden_layers"] = list(self.size_hidden_layers)
        values["time_constants_per_layer"] = list(self.time_constants_per_layer)
        return values


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: how ``snnconv train`` fits the network (:func:`snnconv.train_synnet`)."""

    epochs: int = _at_least_one()
    batch_size: int = _at_least_one()
    learning_rate: float = _positive()
    schedule: str = _key("choice", choices=TRAINING_SCHEDULES)
    loss: str = _key("choice", choices=TRAINING_LOSSES)
    seed: int = _key("int")
    validation_split: float = _key("float", min=0, max=1, max_inclusive=False)
    num_train: int = _key("int", min=0)          # 0: every training sample


# Section name -> dataclass, in file order.
SECTIONS: dict[str, type] = {
    "paths": PathsConfig,
    "tools": ToolsConfig,
    "input": InputConfig,
    "normalization": NormalizationConfig,
    "conversion": ConversionConfig,
    "calibration": CalibrationConfig,
    "finetune": FinetuneConfig,
    "simulation": SimulationConfig,
    "cell": CellConfig,
    "output": OutputConfig,
    "xylo": XyloConfig,
    "brian2": Brian2Config,
    "stdp": StdpConfig,
    "frontend": FrontendConfig,
    "synnet": SynnetConfig,
    "training": TrainingConfig,
}


def section_keys(section: str) -> tuple[str, ...]:
    """The keys of a section, in file order."""
    return tuple(f.name for f in dataclasses.fields(SECTIONS[section]))


def key_spec(section: str, key: str) -> KeySpec:
    for f in dataclasses.fields(SECTIONS[section]):
        if f.name == key:
            return f.metadata["spec"]
    raise KeyError(f"{section}.{key}")


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole validated configuration.

    ``config_path`` records where it was loaded from; it is not part of
    equality, so a config written with :meth:`to_ini` and loaded again from
    another place compares equal.
    """

    paths: PathsConfig
    tools: ToolsConfig
    input: InputConfig
    normalization: NormalizationConfig
    conversion: ConversionConfig
    calibration: CalibrationConfig
    finetune: FinetuneConfig
    simulation: SimulationConfig
    cell: CellConfig
    output: OutputConfig
    xylo: XyloConfig
    brian2: Brian2Config
    stdp: StdpConfig
    frontend: FrontendConfig
    synnet: SynnetConfig
    training: TrainingConfig
    config_path: Optional[Path] = dataclasses.field(default=None, compare=False)

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """``{section: {key: typed value}}`` for every key."""
        return {name: dataclasses.asdict(getattr(self, name)) for name in SECTIONS}

    def to_ini(self) -> str:
        """The fully resolved configuration as INI text (every key, absolute paths)."""
        lines = ["# snnconv configuration, fully resolved"]
        if self.config_path is not None:
            lines.append(f"# loaded from: {self.config_path}")
        for name in SECTIONS:
            lines.append("")
            lines.append(f"[{name}]")
            section = getattr(self, name)
            for f in dataclasses.fields(section):
                text = f.metadata["spec"].format(getattr(section, f.name))
                lines.append(f"{f.name} = {text}".rstrip())
        return "\n".join(lines) + "\n"
