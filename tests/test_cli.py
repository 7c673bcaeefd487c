"""Tests of the snnconv command line (no TensorFlow needed)."""
from __future__ import annotations

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from snnconv import cli
from snnconv.config import Config, template_path
from snnconv.errors import DataError

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def good_config(tmp_path) -> Path:
    write(tmp_path / "model.h5", "x")
    return write(tmp_path / "good.ini", "[paths]\nfilename_ann = model.h5\n")


@pytest.fixture
def fake_pipeline(monkeypatch):
    """Install a stand-in ``snnconv.pipeline`` that records the config it gets."""
    calls = []
    module = types.ModuleType("snnconv.pipeline")

    def run(config, check_only=False):
        calls.append(config)
        return "done"

    module.run = run
    monkeypatch.setitem(sys.modules, "snnconv.pipeline", module)
    import snnconv
    monkeypatch.setattr(snnconv, "pipeline", module, raising=False)
    return calls


def test_run_bad_config_is_one_line_error(tmp_path, capsys):
    bad = write(tmp_path / "bad.ini", "[simulation]\nsimulator = nest\n")
    assert cli.main(["run", str(bad)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("snnconv: error: ")
    assert err.count("\n") == 1
    assert "Traceback" not in err
    assert "simulation.simulator" in err and "nest" in err and "INI" in err


def test_run_missing_config(tmp_path, capsys):
    assert cli.main(["run", str(tmp_path / "nope.ini")]) == 2
    err = capsys.readouterr().err
    assert "config file not found" in err and "nope.ini" in err


def test_run_calls_pipeline_with_overrides(good_config, fake_pipeline, capsys):
    code = cli.main(["run", str(good_config), "--set", "simulation.duration=50",
                     "--set", "tools.simulate = false"])
    assert code == 0
    assert len(fake_pipeline) == 1
    config = fake_pipeline[0]
    assert isinstance(config, Config)
    assert config.simulation.duration == 50.0
    assert config.tools.simulate is False


def test_run_bad_set_option(good_config, fake_pipeline, capsys):
    assert cli.main(["run", str(good_config), "--set", "duration=50"]) == 2
    assert "section.key=value" in capsys.readouterr().err
    assert cli.main(["run", str(good_config), "--set", "simulation.durration=50"]) == 2
    assert "did you mean simulation.duration" in capsys.readouterr().err
    assert fake_pipeline == []


def test_pipeline_user_error_and_interrupt(good_config, monkeypatch, fake_pipeline, capsys):
    def fails(config):
        raise DataError("paths.dataset_path: no x_test array\nin file d.npz")

    monkeypatch.setattr(sys.modules["snnconv.pipeline"], "run", fails)
    assert cli.main(["run", str(good_config)]) == 2
    err = capsys.readouterr().err
    assert err == "snnconv: error: paths.dataset_path: no x_test array in file d.npz\n"

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(sys.modules["snnconv.pipeline"], "run", interrupted)
    assert cli.main(["run", str(good_config)]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_bugs_keep_their_traceback(good_config, monkeypatch, fake_pipeline):
    def buggy(config):
        raise ValueError("a bug")

    monkeypatch.setattr(sys.modules["snnconv.pipeline"], "run", buggy)
    with pytest.raises(ValueError, match="a bug"):
        cli.main(["run", str(good_config)])


def test_init_writes_loadable_template(tmp_path, capsys, fake_pipeline):
    target = tmp_path / "conf" / "new.ini"
    assert cli.main(["init", str(target)]) == 0
    assert str(target) in capsys.readouterr().out
    assert target.read_text(encoding="utf-8") == template_path().read_text(encoding="utf-8")

    # refuses to overwrite, then --force works
    assert cli.main(["init", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli.main(["init", str(target), "--force"]) == 0

    write(tmp_path / "conf" / "net.keras", "x")
    text = target.read_text(encoding="utf-8").replace("filename_ann =\n", "filename_ann = net.keras\n")
    target.write_text(text, encoding="utf-8")
    assert cli.main(["run", str(target)]) == 0
    assert fake_pipeline[0].paths.filename_ann == tmp_path / "conf" / "net.keras"


def test_check_prints_resolved_config(good_config, capsys):
    assert cli.main(["check", str(good_config), "--set", "cell.v_thresh=0.5"]) == 0
    out = capsys.readouterr().out
    assert "[simulation]" in out and "v_thresh = 0.5" in out
    assert f"filename_ann = {good_config.parent / 'model.h5'}" in out


def test_help_version_and_usage(capsys):
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "run" in out and "init" in out
    assert cli.main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("snnconv ") and out.strip() != "snnconv"
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert cli.main(["run"]) == 2


def test_subprocess_exit_code(tmp_path):
    bad = write(tmp_path / "bad.ini", "[simulation]\nduration = abc\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-m", "snnconv.cli", "run", str(bad)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("snnconv: error: ")
    assert "simulation.duration" in proc.stderr and "abc" in proc.stderr


def test_cli_import_is_light():
    code = ("import sys, snnconv.cli, snnconv.config; "
            "heavy = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "print(heavy); sys.exit(1 if heavy else 0)")
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --- the everyday user path (issue 16) ---------------------------------------

def test_set_paths_are_relative_to_the_current_directory(tmp_path, monkeypatch, capsys):
    conf = write(tmp_path / "conf" / "c.ini", "[paths]\nfilename_ann = ../m.keras\n")
    write(tmp_path / "m.keras", "x")
    write(tmp_path / "here" / "data" / "d.npz", "x")
    monkeypatch.chdir(tmp_path / "here")
    assert cli.main(["check", str(conf), "--set", "paths.dataset_path=data/d.npz",
                     "--set", "paths.log_dir_of_current_run=out"]) == 0
    out = capsys.readouterr().out
    assert f"dataset_path = {tmp_path / 'here' / 'data' / 'd.npz'}\n" in out
    assert f"log_dir_of_current_run = {tmp_path / 'here' / 'out'}\n" in out
    assert f"filename_ann = {tmp_path / 'm.keras'}\n" in out        # the file's: its folder


def test_two_configs_in_one_folder_get_their_own_run_folders(tmp_path, capsys):
    write(tmp_path / "m.keras", "x")
    for name in ("a.ini", "b.ini"):
        write(tmp_path / name, "[paths]\nfilename_ann = m.keras\n")
        assert cli.main(["check", str(tmp_path / name)]) == 0
        out = capsys.readouterr().out
        stem = name[:-4]
        assert f"log_dir_of_current_run = {tmp_path / 'results' / stem}\n" in out
        assert f"runlabel = {stem}\n" in out


def test_check_reports_a_missing_extra_before_any_work(tmp_path, monkeypatch, capsys,
                                                       fake_pipeline):
    from snnconv.config import extras
    monkeypatch.setattr(extras, "_installed", lambda module: False)
    cfg = write(tmp_path / "b.ini", "[paths]\nfilename_ann = m.keras\n"
                                    "[simulation]\nsimulator = brian2\n")
    write(tmp_path / "m.keras", "x")
    for command in ("check", "run"):
        assert cli.main([command, str(cfg)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "simulation.simulator = brian2" in err
        assert "pip install 'snnconv[brian2]'" in err
    assert fake_pipeline == []
    assert cli.main(["check", str(cfg), "--set", "simulation.simulator=INI"]) == 0


@pytest.mark.parametrize("name", ["demo", "ttfs", "xylo", "stdp", "compare"])
def test_init_template_writes_a_copy_that_runs_from_anywhere(tmp_path, name, capsys):
    target = tmp_path / "mine" / f"my_{name}.ini"
    assert cli.main(["init", "--template", name, str(target)]) == 0
    out = capsys.readouterr().out
    assert f"snnconv {'evaluate' if name == 'compare' else 'run'} " in out
    from snnconv.sweep import expand
    config = expand(target)[0].config
    assert config.paths.log_dir_of_current_run == tmp_path / "mine" / "results" / f"my_{name}"
    for path in (config.paths.filename_ann, config.paths.dataset_path):
        assert path is None or path.is_file()
    assert cli.main(["init", "--template", "nope", str(target)]) == 2


def test_demo_runs_the_bundled_demo_into_the_current_folder(tmp_path, monkeypatch,
                                                            fake_pipeline):
    monkeypatch.chdir(tmp_path)
    assert cli.main(["demo", "--set", "simulation.num_to_test=10"]) == 0
    config = fake_pipeline[0]
    assert config.paths.log_dir_of_current_run == tmp_path / "results" / "demo"
    assert config.paths.filename_ann.name == "mnist_cnn.keras" and \
        config.paths.filename_ann.is_file()
    assert config.simulation.num_to_test == 10 and config.simulation.duration == 25


def test_quiet_tensorflow_import_keeps_other_lines(tmp_path):
    """The filter drops TensorFlow's C++ log lines only."""
    from snnconv.tflogs import is_tf_log_line
    assert is_tf_log_line("I0000 00:00:1795995244.382881    5499 cudart_stub.cc:31] Could not "
                          "find cuda drivers on your machine, GPU will not be used.")
    assert is_tf_log_line("E0000 00:00:1795995249.491944    5499 cuda_platform.cc:52] failed "
                          "call to cuInit: INTERNAL: CUDA error (303)")
    assert is_tf_log_line("WARNING: All log messages before absl::InitializeLog() is called "
                          "are written to STDERR")
    assert is_tf_log_line("2024-01-02 10:00:00.123456: I tensorflow/core/util/port.cc:113] "
                          "oneDNN custom operations are on.")
    assert not is_tf_log_line("snnconv: error: paths.filename_ann: not found")
    assert not is_tf_log_line("F0000 00:00:1.5   1 check.cc:1] Check failed: fatal stays")
    assert not is_tf_log_line("Traceback (most recent call last):")


def test_tensorflow_python_logs_are_hidden_unless_asked_for():
    import logging

    from snnconv import tflogs
    logger = logging.getLogger("tensorflow")
    record = logger.makeRecord("tensorflow", logging.ERROR, __file__, 1,
                               "Object was never used (type TensorArray)", (), None)
    try:
        tflogs.hide_python_logs(show=False)
        assert not logger.filter(record)
        tflogs.hide_python_logs(show=True)
        assert logger.filter(record)
    finally:
        tflogs.hide_python_logs(show=True)
    retrace = logger.makeRecord("tensorflow", logging.WARNING, __file__, 1,
                                "5 out of the last 5 calls to <f> triggered tf.function "
                                "retracing.", (), None)
    import snnconv  # noqa: F401  (drops retracing warnings for API users)
    assert not logger.filter(retrace)


def test_overwrite_false_stops_before_any_work(good_config, fake_pipeline, capsys):
    (good_config.parent / "results" / "good").mkdir(parents=True)
    assert cli.main(["run", str(good_config), "--set", "output.overwrite=false"]) == 2
    err = capsys.readouterr().err
    assert "results/good exists and output.overwrite is false" in err
    assert fake_pipeline == []
