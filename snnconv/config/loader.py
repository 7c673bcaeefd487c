"""Read, merge and validate configuration files.

The template ``config_templates/default.ini`` holds every default. The user's
file (and then any overrides) is laid over it, every value is parsed by its
:class:`~snnconv.config.schema.KeySpec`, paths are resolved against the
folder of the user's config file (override paths against the current
directory), and the result is a frozen
:class:`~snnconv.config.schema.Config`. Every problem is a one-line
:class:`~snnconv.errors.ConfigError` that names ``section.key``.
"""
from __future__ import annotations

import configparser
import difflib
import os
import re
from pathlib import Path
from typing import Any, Mapping, Optional, Union

from snnconv.errors import ConfigError
from snnconv.config.schema import (
    MODEL_SUFFIXES, SECTIONS, Config, ValueProblem, key_spec, section_keys,
)

PathLike = Union[str, "os.PathLike[str]"]

# A default-section name no real file uses, so that a [DEFAULT] section in a
# user's file is reported as unknown instead of leaking into every section.
_NO_DEFAULT_SECTION = "\x00snnconv-no-default"

_TEMPLATE_NAME = "default.ini"

# how an override's origin is written in messages (and told apart from the file's keys)
_OVERRIDE = " (override)"


def template_path() -> Path:
    """Where the commented default template lives.

    Looked up first in ``<repo>/config_templates/default.ini`` (source
    checkout or editable install), then in a copy shipped inside the package
    at ``snnconv/config/default.ini``.
    """
    package_dir = Path(__file__).resolve().parents[1]  # .../snnconv
    candidates = (
        package_dir.parent / "config_templates" / _TEMPLATE_NAME,
        Path(__file__).resolve().parent / _TEMPLATE_NAME,
    )
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "cannot find the default config template; looked in: "
        + ", ".join(str(c) for c in candidates)
        + " (is snnconv installed from a source checkout?)")


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())


def _new_parser() -> configparser.ConfigParser:
    return configparser.ConfigParser(
        interpolation=None, default_section=_NO_DEFAULT_SECTION, strict=True)


def _read_ini(path: Path, what: str) -> configparser.ConfigParser:
    parser = _new_parser()
    try:
        with open(path, encoding="utf-8") as fh:
            parser.read_file(fh, source=str(path))
    except FileNotFoundError:
        raise ConfigError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} is a folder, not a file: {path}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{what} {path} is not UTF-8 text: {exc.reason}") from None
    except configparser.Error as exc:
        raise ConfigError(f"{what} {path} is not a valid INI file: {_one_line(exc)}") from None
    return parser


def _did_you_mean(word: str, options, fmt=str) -> str:
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"; did you mean {fmt(close[0])}?" if close else ""


def _check_section(name: str, where: str) -> str:
    """Return the canonical (lower-case) section name, or raise for an unknown one."""
    low = name.strip().lower()
    if low in SECTIONS:
        return low
    raise ConfigError(
        f"{where}: unknown section [{name}]"
        + _did_you_mean(low, SECTIONS, lambda s: f"[{s}]")
        + f" (known sections: {', '.join(SECTIONS)})")


def _check_key(section: str, key: str, where: str) -> str:
    low = key.strip().lower()
    keys = section_keys(section)
    if low in keys:
        return low
    raise ConfigError(
        f"{where}: unknown key {section}.{key}"
        + _did_you_mean(low, keys, lambda k: f"{section}.{k}")
        + f" (keys of [{section}]: {', '.join(keys)})")


def _abs(raw: str, base: Path) -> Path:
    p = Path(os.path.expanduser(raw))
    if not p.is_absolute():
        p = base / p
    return Path(os.path.abspath(p))


def load_config(path: PathLike,
                overrides: Optional[Mapping[str, Mapping[str, Any]]] = None,
                require_model: bool = True) -> Config:
    """Load, merge and validate a configuration file.

    ``overrides`` (``{"simulation": {"duration": "50"}}``) is applied on top of
    the file and checked the same way. Relative paths in the file resolve
    against the config file's folder; relative paths in ``overrides`` (what
    ``--set`` gives on the command line) against the current directory, where
    whoever typed them stands. An empty ``paths.runlabel`` is the config
    file's name without its suffix. ``require_model=False``: ``paths.filename_ann``
    may be empty (``snnconv train`` makes its network; so does an STDP run).
    """
    config_path = Path(os.path.abspath(os.path.expanduser(os.fspath(path))))
    if not config_path.exists():
        raise ConfigError(f"config file not found: {config_path}")

    tpl_path = template_path()
    template = _read_ini(tpl_path, "config template")
    user = _read_ini(config_path, "config file")

    # raw[section][key] = (text, where it came from)
    raw: dict[str, dict[str, tuple[str, str]]] = {s: {} for s in SECTIONS}
    for section in template.sections():
        for key, value in template.items(section):
            raw[section.lower()][key.lower()] = (value, str(tpl_path))
    for section in user.sections():
        canon = _check_section(section, str(config_path))
        for key, value in user.items(section):
            raw[canon][_check_key(canon, key, str(config_path))] = (value, str(config_path))
    if overrides:
        where = f"{config_path}{_OVERRIDE}"
        for section, values in overrides.items():
            canon = _check_section(str(section), where)
            if not isinstance(values, Mapping):
                raise ConfigError(f"{where}: override for [{canon}] must be a mapping of key to value")
            for key, value in values.items():
                raw[canon][_check_key(canon, str(key), where)] = (_override_text(value), where)

    for section in SECTIONS:  # the template must be complete
        for key in section_keys(section):
            if key not in raw[section]:
                raise ConfigError(f"{tpl_path}: the template lacks {section}.{key} (broken install?)")

    parsed: dict[str, dict[str, Any]] = {}
    for section in SECTIONS:
        parsed[section] = {}
        for key in section_keys(section):
            text, where = raw[section][key]
            try:
                parsed[section][key] = key_spec(section, key).parse(text)
            except ValueProblem as exc:
                raise ConfigError(f"{where}: {section}.{key} = {text.strip()!r}: {exc}") from None

    _cross_check(parsed, raw)
    if not parsed["paths"]["runlabel"]:
        parsed["paths"]["runlabel"] = _runlabel_of(config_path)
    overridden = {key for key, (_, where) in raw["paths"].items() if where.endswith(_OVERRIDE)}
    _resolve_paths(parsed["paths"], raw["paths"], config_path.parent, config_path,
                   ann_required=require_model and not parsed["stdp"]["enabled"],
                   bases={key: Path.cwd() for key in overridden})

    sections = {name: cls(**parsed[name]) for name, cls in SECTIONS.items()}
    return Config(**sections, config_path=config_path)


def _runlabel_of(config_path: Path) -> str:
    """The default run label: the config file's name without its suffix, as a plain name."""
    label = re.sub(r"[^A-Za-z0-9_.+=-]", "_", config_path.stem).strip(".")
    return label or "run"


def _override_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _resolve_paths(values: dict[str, Any], raw: dict[str, tuple[str, str]], base: Path,
                   config_path: Path, ann_required: bool = True,
                   bases: Optional[Mapping[str, Path]] = None) -> None:
    """Make the paths absolute: against ``base`` (the config's folder), or for
    a key in ``bases`` (those given as overrides) against the folder given there."""
    bases = bases or {}

    def bad(key: str, problem: str) -> ConfigError:
        text, where = raw[key]
        return ConfigError(f"{where}: paths.{key} = {text.strip()!r}: {problem}")

    def base_of(key: str) -> Path:
        return bases.get(key, base)

    # runlabel and filename_snn are single names, not paths.
    for key in ("runlabel", "filename_snn"):
        name = values[key]
        if "/" in name or "\\" in name or name in (".", ".."):
            raise bad(key, "expected a plain name without folder separators")

    wd = values["path_wd"]
    values["path_wd"] = _abs(wd, base_of("path_wd")) if wd else base
    if values["path_wd"].exists() and not values["path_wd"].is_dir():
        raise bad("path_wd", f"expected a folder, but {values['path_wd']} is a file")

    ann = values["filename_ann"]
    if not ann and not ann_required:          # an STDP run trains its own network
        values["filename_ann"] = None
    elif not ann:
        raise ConfigError(
            f"{config_path}: paths.filename_ann is required but not set; expected the path of "
            f"the Keras model file to convert ({' or '.join(MODEL_SUFFIXES)})")
    if ann:
        _resolve_ann(values, ann, base_of("filename_ann"), bad)
    _resolve_rest(values, base_of, bad)


def _resolve_ann(values, ann, base, bad) -> None:
    ann_path = _abs(ann, base)
    if ann_path.suffix.lower() not in MODEL_SUFFIXES:
        raise bad("filename_ann", f"expected a Keras model file ending in {' or '.join(MODEL_SUFFIXES)}")
    if not ann_path.is_file():
        raise bad("filename_ann", f"model file not found: {ann_path}")
    values["filename_ann"] = ann_path


def _resolve_rest(values, base_of, bad) -> None:
    data = values["dataset_path"]
    if data:
        data_path = _abs(data, base_of("dataset_path"))
        if not data_path.exists():
            raise bad("dataset_path", f"not found: {data_path} (expected a .npz file or a folder)")
        if data_path.is_file() and data_path.suffix.lower() != ".npz":
            raise bad("dataset_path", f"expected a .npz file or a folder, got {data_path}")
        values["dataset_path"] = data_path
    else:
        values["dataset_path"] = None

    log_dir = values["log_dir_of_current_run"]
    if log_dir:
        values["log_dir_of_current_run"] = _abs(log_dir, base_of("log_dir_of_current_run"))
    else:
        values["log_dir_of_current_run"] = values["path_wd"] / "results" / values["runlabel"]
    if values["log_dir_of_current_run"].is_file():
        raise bad("log_dir_of_current_run",
                  f"expected a folder, but {values['log_dir_of_current_run']} is a file")


def _cross_check(parsed: dict[str, dict[str, Any]], raw: dict[str, dict[str, tuple[str, str]]]) -> None:
    sim = parsed["simulation"]
    steps = sim["duration"] / sim["dt"]
    if abs(steps - round(steps)) > 1e-6 or round(steps) < 1:
        _, where = raw["simulation"]["duration"]
        raise ConfigError(
            f"{where}: simulation.duration = {sim['duration']!r} with simulation.dt = {sim['dt']!r} "
            f"gives {steps:g} steps; expected duration / dt to be a whole number >= 1")
