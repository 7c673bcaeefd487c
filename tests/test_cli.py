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
