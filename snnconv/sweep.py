"""``snnconv evaluate``: run every combination of list-valued config keys and compare them.

(Or, with ``--snn FILE ...``, evaluate saved SNNs on the config's data.)

A config key of kind number, boolean or choice may hold a comma-separated
list (``spike_code = rate, ttfs``; ``percentile = 99.0, 99.9``). Every
combination is one *setting*, run through the ordinary pipeline into its
own run directory below the sweep directory (``log_dir_of_current_run``):

* ``<sweep dir>/<setting label>/`` — a complete run directory each
  (see :mod:`snnconv.results`);
* ``comparison.csv`` / ``comparison.json`` — one row per setting;
* ``accuracy_comparison.png`` — accuracy against time for every setting.

A setting is run again unless its run directory holds a ``summary.json``
(run directories appear only when complete) and a ``sweep_key.json`` equal
to the setting's key now (:func:`setting_key`): digests of the resolved
config, of the model file's content and of the data's identity (path, size
and modification time of its file(s)), and of a saved SNN's content. So an
interrupted sweep resumes where it stopped, and a sweep run again after the
model, the data, ``duration`` or ``num_to_test`` changed runs again what
changed instead of reporting old numbers; ``force`` (``--force``) runs
everything. A setting that fails with a user-facing error is reported in its
row and does not stop the others.
"""
from __future__ import annotations

import configparser
import csv
import dataclasses
import hashlib
import io
import itertools
import json
import re
from pathlib import Path

from .config import load_config
from .config.schema import SECTIONS, key_spec
from .errors import ConfigError, SnnconvError
from .files import atomic_path, atomic_write_text

SWEEPABLE = ("int", "float", "bool", "choice")
#: what a completed setting's results were made from (see :func:`setting_key`)
KEY_FILE = "sweep_key.json"
# keys that change where results go or how they are printed, not what they are
_KEY_IGNORES = {"paths": ("log_dir_of_current_run", "runlabel", "path_wd"),
                "output": ("verbose", "overwrite", "energy_per_synop_pj", "energy_per_mac_pj")}


@dataclasses.dataclass
class Setting:
    label: str
    values: dict[str, str]          # "section.key" -> value, the swept keys only
    config: object                  # the resolved Config of this setting


def sweep_axes(config_path) -> dict[tuple[str, str], list[str]]:
    """The list-valued keys of a config file: ``{(section, key): [values]}``."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(config_path, encoding="utf-8")
    except configparser.Error as e:
        raise ConfigError(f"{config_path}: not a valid INI file: {e}") from None
    axes = {}
    for section in parser.sections():
        for key, value in parser.items(section):
            if "," not in value or section.lower() not in SECTIONS:
                continue
            try:
                spec = key_spec(section.lower(), key.lower())
            except KeyError:
                continue                       # load_config names the unknown key
            if spec.kind not in SWEEPABLE:
                raise ConfigError(f"{config_path}: {section}.{key} = {value!r}: only number, "
                                  "boolean and choice keys can hold a list of values")
            values = [v.strip() for v in value.split(",")]
            if any(not v for v in values):
                raise ConfigError(f"{config_path}: {section}.{key} = {value!r}: empty entry "
                                  "in the list")
            axes[(section.lower(), key.lower())] = values
    return axes


def expand(config_path, overrides: dict | None = None) -> list[Setting]:
    """Every combination of the list-valued keys, each validated into a Config."""
    config_path = Path(config_path)
    overrides = {s: dict(v) for s, v in (overrides or {}).items()}
    axes = {k: v for k, v in sweep_axes(config_path).items()
            if k[1] not in overrides.get(k[0], {})}
    # a list given with --set sweeps too (it replaces the file's value)
    for section, keys in overrides.items():
        for key, value in list(keys.items()):
            if "," in str(value):
                axes[(section.lower(), key.lower())] = _override_axis(section, key, str(value))
                del keys[key]
    settings = []
    for combo in itertools.product(*axes.values()):
        chosen = dict(zip(axes, combo))
        ov = {s: dict(v) for s, v in overrides.items()}
        for (section, key), value in chosen.items():
            ov.setdefault(section, {})[key] = value
        config = load_config(config_path, ov)
        values = {f"{s}.{k}": v for (s, k), v in chosen.items()}
        settings.append(Setting(_label(values), values, config))
    return settings


def _override_axis(section: str, key: str, value: str) -> list[str]:
    try:
        spec = key_spec(section.lower(), key.lower())
    except KeyError:
        return [value]                     # load_config names the unknown key
    if spec.kind not in SWEEPABLE:
        raise ConfigError(f"--set {section}.{key}={value}: only number, boolean and choice "
                          "keys can hold a list of values")
    values = [v.strip() for v in value.split(",")]
    if any(not v for v in values):
        raise ConfigError(f"--set {section}.{key}={value}: empty entry in the list")
    return values


def _label(values: dict[str, str]) -> str:
    if not values:
        return "run"
    text = "__".join(f"{k.split('.')[1]}={v}" for k, v in values.items())
    return re.sub(r"[^A-Za-z0-9_.=+-]", "_", text)


def snn_settings(config_path, snn_files, overrides: dict | None = None) -> list[Setting]:
    """One setting per saved SNN file, all on the config's data and simulation settings."""
    if sweep_axes(config_path):
        raise ConfigError(f"{config_path}: list-valued keys and --snn files cannot be combined; "
                          "sweep the conversion settings or compare saved SNNs")
    config = load_config(config_path, overrides)
    files = []
    for f in snn_files:
        f = Path(f)
        if not f.is_file():
            raise ConfigError(f"--snn {f}: file not found")
        files.append(f.resolve())
    twice = sorted({str(f) for f in files if files.count(f) > 1})
    if twice:
        raise ConfigError(f"--snn: {', '.join(twice)} given more than once")
    return [Setting(label, {"snn": str(f)}, config)
            for label, f in zip(path_labels(files), files)]


def path_labels(files: list[Path]) -> list[str]:
    """Distinct run-folder names for files: the file's stem, preceded by as many of its
    folders as it takes to tell the files apart (``runs/a/snn.keras`` -> ``a_snn``)."""
    def label(f: Path, depth: int) -> str:
        parts = [p for p in f.parent.parts[len(f.parent.parts) - depth:] if p not in ("/", "")]
        return re.sub(r"[^A-Za-z0-9_.=+-]", "_", "_".join(parts + [f.stem])).lstrip(".") or "snn"

    labels = [label(f, 0) for f in files]
    for depth in range(1, max((len(f.parts) for f in files), default=1) + 1):
        if len(set(labels)) == len(labels):
            break
        clash = {x for x in labels if labels.count(x) > 1}
        labels = [label(f, depth) if old in clash else old for f, old in zip(files, labels)]
    if len(set(labels)) != len(labels):      # e.g. a.keras and a.npz in one folder
        labels = [re.sub(r"[^A-Za-z0-9_.=+-]", "_", f"{x}{f.suffix}")
                  for x, f in zip(labels, files)]
    return labels


def setting_key(config, snn_file=None) -> dict:
    """What a setting's results are made from: digests of the resolved config (less
    the keys that only place or print the results), of the model file's content, of
    the data's identity, and of a saved SNN's content."""
    values = config.to_dict()
    for section, keys in _KEY_IGNORES.items():
        for key in keys:
            values[section].pop(key, None)
    text = json.dumps(values, sort_keys=True, default=str)
    paths = config.paths
    return {"config": hashlib.sha256(text.encode()).hexdigest(),
            "model": _content_digest(paths.filename_ann),
            "data": _data_digest(paths.dataset_path),
            "snn": _content_digest(snn_file)}


def _content_digest(path) -> str | None:
    if path is None or not Path(path).is_file():
        return None
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _data_digest(path) -> str | None:
    """Path, size and modification time of a data file, or of every file below a folder."""
    if path is None:
        return None
    path = Path(path)
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    h = hashlib.sha256(str(path.resolve()).encode())
    for f in files:
        st = f.stat()
        h.update(f"{f.relative_to(path) if f != path else ''}:{st.st_size}:"
                 f"{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def _stale_reason(run_dir: Path, key: dict) -> str | None:
    """None when ``run_dir`` holds complete results made from ``key``; else why not."""
    if not (run_dir / "summary.json").exists():
        return "not run yet" if not run_dir.exists() else "incomplete"
    try:
        stored = json.loads((run_dir / KEY_FILE).read_text())
    except (OSError, ValueError):
        return "made without a record of its config, model and data"
    changed = [what for what in ("config", "model", "data", "snn")
               if stored.get(what) != key.get(what)]
    names = {"config": "config changed", "model": "model file changed",
             "data": "data changed", "snn": "SNN file changed"}
    return ", ".join(names[c] for c in changed) or None


def run_sweep(config_path, overrides: dict | None = None,
              snn_files=(), force: bool = False,
              before_tensorflow=None) -> tuple[Path, list[dict]]:
    """Run (or resume) every setting; write and print the comparison. Returns its rows.

    With ``snn_files`` the settings are those saved SNNs instead of the
    combinations of list-valued keys. A setting whose results are current
    (see the module docstring) is not run again, unless ``force``.
    ``before_tensorflow(verbose)`` is called once the configs are loaded and
    checked, before TensorFlow is imported (the command line keeps
    TensorFlow's log messages out there); TensorFlow is not imported at all
    when every setting is current.
    """
    from .config.extras import check_extras

    settings = (snn_settings(config_path, snn_files, overrides) if snn_files
                else expand(config_path, overrides))
    for setting in settings:
        check_extras(setting.config)
    pipeline = None                     # imported (with TensorFlow) once a setting must run

    base = settings[0].config.paths.log_dir_of_current_run
    rows = []
    for i, setting in enumerate(settings, 1):
        run_dir = base / setting.label
        verbose = setting.config.output.verbose
        if verbose:
            print(f"[{i}/{len(settings)}] {setting.label}")
        made_from = setting_key(setting.config, setting.values.get("snn"))
        stale = "--force" if force else _stale_reason(run_dir, made_from)
        error = None
        if stale is None:
            summary = json.loads((run_dir / "summary.json").read_text())
            if verbose:
                print("  already complete (same config, model and data), not run again")
        else:
            if verbose and (run_dir / "summary.json").exists():
                print(f"  running again: {stale}")
            if pipeline is None:
                if before_tensorflow is not None:
                    before_tensorflow(settings[0].config.output.verbose)
                from . import pipeline
            ov = {s: dict(v) for s, v in (overrides or {}).items()}
            for name, value in setting.values.items():
                if name != "snn":
                    section, key = name.split(".")
                    ov.setdefault(section, {})[key] = value
            ov.setdefault("paths", {})["log_dir_of_current_run"] = str(run_dir)
            try:
                saved = {"snn_file": setting.values["snn"]} if "snn" in setting.values else {}
                summary = pipeline.run(load_config(config_path, ov), **saved).summary
                atomic_write_text(run_dir / KEY_FILE, json.dumps(made_from, indent=2) + "\n")
            except SnnconvError as e:
                summary, error = {}, str(e)
                print(f"  failed: {e}")
        rows.append(comparison_row(setting, summary, error))
    write_comparison(base, rows)
    print(format_comparison(rows))
    print(f"comparison written to {base}")
    return base, rows


def comparison_row(setting: Setting, summary: dict, error: str | None) -> dict:
    cfg = setting.config
    row = {"setting": setting.label, **setting.values, "error": error}
    if not summary or "snn_accuracy" not in summary:
        return row
    steps = summary["num_steps"]
    acc = summary["snn_accuracy_at_step"]
    quarter, half = max(1, round(steps / 4)), max(1, round(steps / 2))
    synops, macs = summary["synops_per_sample"], summary["ann_macs_per_sample"]
    neurons = summary.get("num_neurons")
    row.update({
        "ann_accuracy": summary.get("ann_accuracy"),
        "snn_accuracy_T/4": acc.get(str(quarter)),
        "snn_accuracy_T/2": acc.get(str(half)),
        "snn_accuracy": summary["snn_accuracy"],
        "num_steps": steps,
        "steps_to_within_1pt_of_ann": summary.get("steps_to_within_1pt_of_ann"),
        "spikes_per_neuron": (summary["spikes_per_sample"] / neurons) if neurons else None,
        "synops_per_sample": synops,
        "synops_per_ann_mac": summary.get("synops_per_ann_mac"),
        "snn_energy_nj": synops * cfg.output.energy_per_synop_pj / 1000,
        "ann_energy_nj": macs * cfg.output.energy_per_mac_pj / 1000,
        "mean_decision_time": summary.get("mean_decision_time"),
    })
    return row


def write_comparison(folder: Path, rows: list[dict]) -> None:
    """``comparison.csv`` and ``comparison.json`` (atomically) and the accuracy plot."""
    folder.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(folder / "comparison.csv", buf.getvalue())
    atomic_write_text(folder / "comparison.json", json.dumps(rows, indent=2) + "\n")
    curves = {}
    for row in rows:
        h5 = folder / row["setting"] / "results.h5"
        if row.get("error") is None and h5.exists():
            curves[row["setting"]] = h5
    if curves:
        plot_comparison(curves, folder / "accuracy_comparison.png")


def plot_comparison(curves: dict[str, Path], path: Path) -> None:
    import h5py
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(12, 4.8))
    ann, low = None, 100.0
    styles = ["-", "--", ":", "-."]
    for i, (label, h5) in enumerate(curves.items()):
        with h5py.File(h5, "r") as f:
            t, acc = f["time"][:], 100 * f["accuracy_per_step"][:]
            ann = f.attrs.get("ann_accuracy", ann)
        for a in (ax, zoom):
            a.plot(t, acc, ls=styles[(i // 10) % len(styles)], label=label if a is ax else None)
        low = min(low, float(acc[len(acc) // 4:].min()))
    for a in (ax, zoom):
        if ann is not None and ann == ann:      # not NaN
            a.axhline(100 * ann, color="k", linestyle="--", lw=1,
                      label="ANN" if a is ax else None)
        a.set_xlabel("simulated time (unit of dt)")
        a.set_ylabel("top-1 accuracy (%)")
        a.grid(alpha=0.3)
    ax.set_title("all settings")
    zoom.set_ylim(max(0.0, low - 1.0), 100.5)
    zoom.set_title("zoom on the top")
    fig.legend(fontsize=7, loc="lower center", ncol=3)
    fig.tight_layout(rect=(0, 0.06 + 0.025 * ((len(curves) + 1) // 3), 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def format_comparison(rows: list[dict]) -> str:
    def pct(v):
        return "   -  " if v is None else f"{100 * v:6.2f}"

    def num(v, fmt):
        return "-" if v is None else format(v, fmt)

    w = max([len("setting")] + [len(r["setting"]) for r in rows]) + 2
    lines = [f"{'setting':<{w}}{'ANN %':>7}{'SNN@T/4':>8}{'SNN@T/2':>8}{'SNN@T':>7}{'to 1pt':>7}"
             f"{'spk/neur':>9}{'SynOps':>12}{'/MAC':>6}{'E SNN nJ':>10}{'E ANN nJ':>10}"]
    for r in rows:
        if r.get("error"):
            lines.append(f"{r['setting']:<{w}}  failed: {r['error']}")
            continue
        within = r.get("steps_to_within_1pt_of_ann")
        within = "never" if within is None else str(within)
        lines.append(
            f"{r['setting']:<{w}}{pct(r.get('ann_accuracy')):>7}"
            f"{pct(r.get('snn_accuracy_T/4')):>8}{pct(r.get('snn_accuracy_T/2')):>8}"
            f"{pct(r.get('snn_accuracy')):>7}{within:>7}"
            f"{num(r.get('spikes_per_neuron'), '.2f'):>9}{num(r.get('synops_per_sample'), ',.0f'):>12}"
            f"{num(r.get('synops_per_ann_mac'), '.1f'):>6}{num(r.get('snn_energy_nj'), '.0f'):>10}"
            f"{num(r.get('ann_energy_nj'), '.0f'):>10}")
    return "\n".join(lines)
