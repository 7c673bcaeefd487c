"""Tests of snnconv.config: defaults, overrides, path resolution, errors, round trip."""
from __future__ import annotations

import configparser
import dataclasses
from pathlib import Path

import pytest

from snnconv import defaults
from snnconv.config import Config, load_config, template_path, write_template
from snnconv.config.schema import SECTIONS, section_keys
from snnconv.errors import ConfigError


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def model(tmp_path) -> Path:
    return write(tmp_path / "model.keras", "not really a model")


def make_config(tmp_path: Path, extra: str = "", ann: str = "model.keras") -> Path:
    return write(tmp_path / "cfg.ini", f"[paths]\nfilename_ann = {ann}\n{extra}")


def error_of(tmp_path, extra, overrides=None, ann="model.keras") -> str:
    cfg = make_config(tmp_path, extra, ann=ann)
    with pytest.raises(ConfigError) as info:
        load_config(cfg, overrides)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the template -----------------------------------------------------------

def test_template_has_exactly_the_schema_keys():
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(template_path(), encoding="utf-8")
    assert parser.sections() == list(SECTIONS)
    for section in SECTIONS:
        assert tuple(parser[section]) == section_keys(section), section


def test_template_documents_every_key():
    text = template_path().read_text(encoding="utf-8")
    for section in SECTIONS:
        for key in section_keys(section):
            assert f"# {key}:" in text, f"{section}.{key} has no comment"


def test_template_is_repo_file():
    assert template_path().parent.name == "config_templates"


# --- defaults and overrides -------------------------------------------------

def test_defaults(tmp_path, model):
    cfg = load_config(make_config(tmp_path))
    assert isinstance(cfg, Config)
    assert cfg.paths.path_wd == tmp_path
    assert cfg.paths.filename_ann == model
    assert cfg.paths.dataset_path is None
    assert cfg.paths.runlabel == "cfg"              # the config file's name
    assert cfg.paths.log_dir_of_current_run == tmp_path / "results" / "cfg"
    assert cfg.paths.filename_snn == "snn.keras"
    assert cfg.paths.snn_path == tmp_path / "results" / "cfg" / "snn.keras"
    assert dataclasses.astuple(cfg.tools) == (True, True, True, True)
    assert cfg.input.dataset_format == "npz"
    assert cfg.input.poisson_input is False
    assert cfg.input.input_rate == 1000.0 and cfg.input.input_scale == 1.0
    assert cfg.normalization.method == "percentile"
    assert cfg.normalization.percentile == defaults.PERCENTILE
    assert cfg.normalization.num_norm_samples == 10000
    assert cfg.normalization.batch_size == 500
    assert cfg.normalization.per_channel is defaults.PER_CHANNEL
    assert cfg.conversion.spike_code == "rate" and cfg.conversion.max2avg_pool is False
    sim = cfg.simulation
    assert (sim.simulator, sim.duration, sim.dt, sim.batch_size, sim.num_to_test,
            sim.top_k, sim.seed) == ("INI", 100.0, 1.0, 100, 1000, 5, 0)
    assert sim.num_steps == 100
    assert isinstance(sim.batch_size, int) and isinstance(sim.duration, float)
    cell = cfg.cell
    assert (cell.v_thresh, cell.reset, cell.tau_refrac, cell.leak, cell.tau_mem,
            cell.max_spikes_per_dt, cell.v_init) == (1.0, "subtraction", 0.0, False, 20.0, 1, 0.5)
    assert (cfg.output.verbose, cfg.output.overwrite, cfg.output.plot) == (1, True, True)
    assert cfg.config_path == tmp_path / "cfg.ini"


def test_config_is_frozen(tmp_path, model):
    cfg = load_config(make_config(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.simulation.duration = 5.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.paths = None


def test_user_values_override(tmp_path, model):
    cfg = load_config(make_config(tmp_path, """
[simulation]
simulator = ini
duration = 50
dt = 0.5
seed = -3
[tools]
normalize = no
simulate = Off
[cell]
reset = Reset to zero
leak = 1
[conversion]
spike_code = temporal_mean_rate
[normalization]
method = MAX
percentile = 100
[output]
verbose = 0
"""))
    assert cfg.simulation.simulator == "INI"
    assert cfg.simulation.duration == 50.0 and cfg.simulation.dt == 0.5
    assert cfg.simulation.num_steps == 100
    assert cfg.simulation.seed == -3
    assert cfg.tools.normalize is False and cfg.tools.simulate is False
    assert cfg.tools.evaluate_ann is True
    assert cfg.cell.reset == "zero" and cfg.cell.leak is True
    assert cfg.conversion.spike_code == "rate"
    assert cfg.normalization.method == "max" and cfg.normalization.percentile == 100.0
    assert cfg.output.verbose == 0


def test_reset_by_subtraction_alias(tmp_path, model):
    cfg = load_config(make_config(tmp_path, "[cell]\nreset = reset BY subtraction\n"))
    assert cfg.cell.reset == "subtraction"


def test_overrides_dict(tmp_path, model):
    cfg = load_config(make_config(tmp_path, "[simulation]\nduration = 20\n"),
                      {"simulation": {"duration": "50", "batch_size": 7},
                       "tools": {"save_snn": False}})
    assert cfg.simulation.duration == 50.0
    assert cfg.simulation.batch_size == 7
    assert cfg.tools.save_snn is False


def test_override_errors_are_checked_too(tmp_path, model):
    cfg = make_config(tmp_path)
    with pytest.raises(ConfigError, match=r"simulation\.dt = '-1'.*> 0"):
        load_config(cfg, {"simulation": {"dt": "-1"}})
    with pytest.raises(ConfigError, match=r"simulation\.durration.*did you mean simulation\.duration"):
        load_config(cfg, {"simulation": {"durration": "5"}})


# --- paths ------------------------------------------------------------------

def test_relative_paths_resolve_against_config_folder(tmp_path, monkeypatch):
    conf_dir = tmp_path / "project" / "conf"
    write(conf_dir / "models" / "net.h5", "x")
    write(conf_dir / "data" / "d.npz", "x")
    cfg_file = write(conf_dir / "c.ini", """
[paths]
filename_ann = models/net.h5
dataset_path = data/d.npz
path_wd = work
runlabel = r1
""")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    cfg = load_config("../project/conf/c.ini")
    assert cfg.config_path == cfg_file
    assert cfg.paths.filename_ann == conf_dir / "models" / "net.h5"
    assert cfg.paths.dataset_path == conf_dir / "data" / "d.npz"
    assert cfg.paths.path_wd == conf_dir / "work"
    assert cfg.paths.log_dir_of_current_run == conf_dir / "work" / "results" / "r1"
    for p in (cfg.paths.filename_ann, cfg.paths.path_wd, cfg.paths.log_dir_of_current_run):
        assert p.is_absolute()


def test_explicit_log_dir_and_dataset_folder(tmp_path, model):
    (tmp_path / "data").mkdir()
    cfg = load_config(make_config(tmp_path, "dataset_path = data\nlog_dir_of_current_run = out/run\n"))
    assert cfg.paths.dataset_path == tmp_path / "data"
    assert cfg.paths.log_dir_of_current_run == tmp_path / "out" / "run"


def test_missing_model_file_shows_resolved_path(tmp_path):
    message = error_of(tmp_path, "", ann="nets/missing.keras")
    assert "paths.filename_ann" in message
    assert "'nets/missing.keras'" in message
    assert str(tmp_path / "nets" / "missing.keras") in message


def test_missing_required_model(tmp_path):
    message = error_of(tmp_path, "", ann="")
    assert "paths.filename_ann is required" in message and str(tmp_path / "cfg.ini") in message


def test_model_suffix(tmp_path):
    write(tmp_path / "model.pt", "x")
    message = error_of(tmp_path, "", ann="model.pt")
    assert "paths.filename_ann" in message and ".keras" in message and ".h5" in message


def test_missing_dataset(tmp_path, model):
    message = error_of(tmp_path, "dataset_path = nope.npz\n")
    assert "paths.dataset_path" in message and str(tmp_path / "nope.npz") in message


def test_runlabel_must_be_a_name(tmp_path, model):
    message = error_of(tmp_path, "runlabel = a/b\n")
    assert "paths.runlabel" in message and "'a/b'" in message


# --- errors -----------------------------------------------------------------

def test_unknown_section(tmp_path, model):
    message = error_of(tmp_path, "[simulaton]\nduration = 5\n")
    assert "[simulaton]" in message
    assert "did you mean [simulation]" in message
    assert ("paths, tools, input, normalization, conversion, calibration, finetune, "
            "simulation, cell, output") in message
    assert str(tmp_path / "cfg.ini") in message


def test_default_section_is_unknown(tmp_path, model):
    message = error_of(tmp_path, "[DEFAULT]\nseed = 1\n")
    assert "unknown section [DEFAULT]" in message


def test_unknown_key(tmp_path, model):
    message = error_of(tmp_path, "[cell]\nv_tresh = 1\n")
    assert "cell.v_tresh" in message
    assert "did you mean cell.v_thresh" in message


def test_wrong_type(tmp_path, model):
    message = error_of(tmp_path, "[simulation]\nduration = abc\n")
    assert "simulation.duration" in message and "'abc'" in message and "number > 0" in message


def test_wrong_int(tmp_path, model):
    message = error_of(tmp_path, "[simulation]\nbatch_size = 2.5\n")
    assert "simulation.batch_size" in message and "'2.5'" in message and "integer >= 1" in message


def test_wrong_bool(tmp_path, model):
    message = error_of(tmp_path, "[tools]\nsimulate = maybe\n")
    assert "tools.simulate" in message and "'maybe'" in message and "true/false" in message


@pytest.mark.parametrize("section,key,value,allowed", [
    ("simulation", "dt", "-1", "> 0"),
    ("normalization", "percentile", "120", "<= 100"),
    ("normalization", "percentile", "0", "> 0"),
    ("output", "verbose", "4", "<= 3"),
    ("cell", "tau_refrac", "-0.5", ">= 0"),
    ("simulation", "duration", "nan", "> 0"),
])
def test_out_of_range(tmp_path, model, section, key, value, allowed):
    message = error_of(tmp_path, f"[{section}]\n{key} = {value}\n")
    assert f"{section}.{key}" in message and repr(value) in message and allowed in message


def test_bad_choice(tmp_path, model):
    message = error_of(tmp_path, "[simulation]\nsimulator = nest\n")
    assert "simulation.simulator" in message and "'nest'" in message and "one of: INI" in message
    message = error_of(tmp_path, "[conversion]\nspike_code = ttfs_corrective\n")
    assert "conversion.spike_code" in message and "ttfs_dyn_thresh" in message and "temporal_mean_rate" in message


def test_duration_not_multiple_of_dt(tmp_path, model):
    message = error_of(tmp_path, "[simulation]\nduration = 10\ndt = 3\n")
    assert "simulation.duration" in message and "simulation.dt" in message and "whole number" in message
    message = error_of(tmp_path, "[simulation]\nduration = 0.5\ndt = 1\n")
    assert "simulation.duration" in message


def test_duration_dt_float_tolerance(tmp_path, model):
    cfg = load_config(make_config(tmp_path, "[simulation]\nduration = 0.3\ndt = 0.1\n"))
    assert cfg.simulation.num_steps == 3


def test_config_file_missing(tmp_path):
    with pytest.raises(ConfigError, match="config file not found") as info:
        load_config(tmp_path / "absent.ini")
    assert str(tmp_path / "absent.ini") in str(info.value)


@pytest.mark.parametrize("text", ["no section header\n", "[paths]\nthis line has no equals\n",
                                  "[paths]\nrunlabel = a\nrunlabel = b\n"])
def test_config_file_not_ini(tmp_path, text):
    cfg = write(tmp_path / "bad.ini", text)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert "not a valid INI file" in message and str(cfg) in message and "\n" not in message


# --- round trip and template ------------------------------------------------

def test_to_ini_round_trip(tmp_path, model):
    (tmp_path / "d").mkdir()
    cfg = load_config(make_config(tmp_path, """dataset_path = d
[simulation]
dt = 0.1
duration = 0.3
[cell]
reset = Reset to zero
v_init = 0.1
[normalization]
percentile = 99.99
"""))
    text = cfg.to_ini()
    for section in SECTIONS:
        for key in section_keys(section):
            assert f"\n{key} =" in text
    other = write(tmp_path / "elsewhere" / "resolved.ini", text)
    again = load_config(other)
    assert again == cfg
    assert again.to_ini().split("\n", 2)[2] == text.split("\n", 2)[2]


def test_to_ini_round_trip_defaults(tmp_path, model):
    cfg = load_config(make_config(tmp_path))
    again = load_config(write(tmp_path / "sub" / "r.ini", cfg.to_ini()))
    assert again == cfg
    assert again.paths.path_wd == tmp_path


def test_write_template_and_load(tmp_path, model):
    target = tmp_path / "new" / "my.ini"
    written = write_template(target)
    assert written == target
    assert target.read_text(encoding="utf-8") == template_path().read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match="paths.filename_ann"):
        load_config(target)  # the template leaves the model unset
    text = target.read_text(encoding="utf-8").replace(
        "filename_ann =\n", f"filename_ann = {model}\n")
    target.write_text(text, encoding="utf-8")
    cfg = load_config(target)
    assert cfg.paths.filename_ann == model
    assert cfg.paths.path_wd == target.parent


def test_write_template_refuses_overwrite(tmp_path):
    target = write(tmp_path / "x.ini", "keep me")
    with pytest.raises(ConfigError, match="already exists"):
        write_template(target)
    assert target.read_text() == "keep me"
    write_template(target, force=True)
    assert target.read_text(encoding="utf-8") == template_path().read_text(encoding="utf-8")
