"""A new user's walk, scripted: the installed ``snnconv`` run in subprocesses from a folder
outside the repository. ``init`` a template -> edit -> ``check`` -> ``run`` two configs ->
``evaluate`` a sweep -> change the model -> sweep again; the folders and numbers checked,
not only the exit codes. Also: what a wheel ships."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from snnconv.data import bundled_model_path

REPO = Path(__file__).resolve().parents[1]
SNNCONV = Path(sys.executable).parent / "snnconv"      # the installed console script
SMALL = {"num_to_test = 2000": "num_to_test = 40", "duration = 25": "duration = 10",
         "num_norm_samples = 1000": "num_norm_samples = 50", "batch_size = 100": "batch_size = 40"}

pytestmark = pytest.mark.skipif(not SNNCONV.exists(), reason="snnconv is not installed here")


def snnconv(cwd: Path, *args, ok=True) -> str:
    """Run the installed snnconv; stdout and stderr together, in the order written."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "TF_CPP_MIN_LOG_LEVEL", "SNNCONV_TF_LOGS")}
    proc = subprocess.run([str(SNNCONV), *args], cwd=cwd, env=env, text=True, timeout=600,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if ok:
        assert proc.returncode == 0, proc.stdout
    return proc.stdout


def edit(path: Path, replacements: dict) -> None:
    text = path.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def pct(value: float) -> str:
    return f"{100 * value:6.2f} %"


def test_new_user_walk(tmp_path):
    home = tmp_path / "work"
    home.mkdir()
    assert REPO not in home.parents

    # init -> edit -> check
    out = snnconv(home, "init", "--template", "demo", "first.ini")
    assert "first.ini" in out
    first = home / "first.ini"
    edit(first, SMALL)
    resolved = snnconv(home, "check", "first.ini")
    assert f"log_dir_of_current_run = {home / 'results' / 'first'}\n" in resolved
    ann_path = Path(re.search(r"^filename_ann = (.+)$", resolved, re.M).group(1))
    assert ann_path.is_file() and ann_path.name == "mnist_cnn.keras"

    # run: the first line is snnconv's own (no TensorFlow start-up lines before it)
    out = snnconv(home, "run", "first.ini")
    assert out.startswith("parsed mnist_cnn.keras: "), out[:500]
    assert "cuInit" not in out and "absl" not in out and "cuda" not in out.lower()
    summary = json.loads((home / "results" / "first" / "summary.json").read_text())
    assert summary["ann_accuracy"] >= 0.9 and summary["num_samples"] == 40
    assert f"{'SNN accuracy at step 10':<36}{pct(summary['snn_accuracy'])}" in out
    assert f"results written to {home / 'results' / 'first'}" in out

    # a second config in the same folder: its own run folder; verbose 0 still prints results
    second = home / "second.ini"
    second.write_text(first.read_text() + "\n[cell]\nreset = zero\n[output]\nverbose = 0\n")
    out = snnconv(home, "run", "second.ini")
    second_summary = json.loads((home / "results" / "second" / "summary.json").read_text())
    assert out.startswith("mnist_cnn: simulator INI, spike code rate, 40 samples"), out[:500]
    assert f"{'SNN accuracy at step 10':<36}{pct(second_summary['snn_accuracy'])}" in out
    assert json.loads((home / "results" / "first" / "summary.json").read_text()) == summary
    assert "reset = zero" in (home / "results" / "second" / "config.ini").read_text()

    # a sweep on a model of the user's own
    shutil.copy(bundled_model_path(), home / "net.keras")
    snnconv(home, "init", "--template", "compare", "sweep.ini")
    sweep = home / "sweep.ini"
    edit(sweep, {"percentile = 99.0, 99.9": "percentile = 99.9",
                 "spike_code = rate, ttfs, ttfs_dyn_thresh": "spike_code = rate",
                 "num_to_test = 1000": "num_to_test = 40", "duration = 100": "duration = 10",
                 "num_norm_samples = 1000": "num_norm_samples = 50",
                 "verbose = 0": "verbose = 1"})
    sweep.write_text(re.sub(r"^filename_ann = .*$", "filename_ann = net.keras",
                            sweep.read_text(), flags=re.M))
    out = snnconv(home, "evaluate", "sweep.ini")
    folder = home / "results" / "sweep"
    rows = json.loads((folder / "comparison.json").read_text())
    assert [r["setting"] for r in rows] == ["reset=subtraction", "reset=zero"]
    for row in rows:
        s = json.loads((folder / row["setting"] / "summary.json").read_text())
        assert row["snn_accuracy"] == s["snn_accuracy"] and s["num_samples"] == 40
        assert row["ann_accuracy"] == summary["ann_accuracy"]          # the same model
    assert "SNN@T/4" in out and "SNN@T/2" in out

    # another model under the same file name: the sweep runs again, with its numbers
    _cripple(home / "net.keras")
    out = snnconv(home, "evaluate", "sweep.ini")
    assert out.count("running again: model file changed") == 2, out
    assert "replacing the results of an earlier run there" in out
    again = json.loads((folder / "comparison.json").read_text())
    for row in again:
        s = json.loads((folder / row["setting"] / "summary.json").read_text())
        assert row["snn_accuracy"] == s["snn_accuracy"] and row["ann_accuracy"] == \
            s["ann_accuracy"]
        assert row["ann_accuracy"] < summary["ann_accuracy"] - 0.2      # the crippled model's
    # and with nothing changed, nothing runs
    out = snnconv(home, "evaluate", "sweep.ini")
    assert out.count("not run again") == 2


def _cripple(path: Path) -> None:
    """Overwrite the model with one that cannot tell classes 0..4 apart from the rest."""
    import keras
    model = keras.saving.load_model(path, compile=False)
    kernel, bias = model.layers[-1].get_weights()
    kernel[:, :5] = 0.0
    bias[:5] = -100.0
    model.layers[-1].set_weights([kernel, bias])
    model.save(path)


def test_a_wheel_ships_every_template_and_what_they_name(tmp_path):
    wheels = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--no-build-isolation", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=300, cwd=tmp_path)
    if build.returncode != 0:
        pytest.skip(f"cannot build a wheel here: {build.stderr[-300:]}")
    wheel = next(wheels.glob("snnconv-*.whl"))
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        z.extractall(site)
    for name in ("default", "demo", "ttfs", "xylo", "stdp", "compare", "synnet"):
        assert f"snnconv/config/{name}.ini" in names
    assert {"snnconv/config/mnist_xylo.keras", "snnconv/data/mnist_cnn.keras",
            "snnconv/data/mnist_subset.npz", "snnconv/data/spoken_keywords_events.npz"} <= names
    # what `snnconv init --template NAME` writes from the wheel loads, naming files in it
    code = r"""
import sys, snnconv
from pathlib import Path
from snnconv.config import TEMPLATES, demo_config, load_config, write_template
from snnconv.sweep import expand
site = Path(sys.argv[1])
assert Path(snnconv.__file__).resolve().is_relative_to(site), snnconv.__file__
for name in TEMPLATES:
    written = write_template(f"{name}.ini", template=name)
    if name == "default":       # every key, filename_ann for the user to set
        assert "filename_ann =" in written.read_text().splitlines()
        continue
    if name == "synnet":        # snnconv train makes its network: no model file
        cfg = load_config(written, require_model=False)
    else:
        cfg = expand(written)[0].config          # compare.ini is a sweep
        assert len(expand(written)) == (12 if name == "compare" else 1)
    for p in (cfg.paths.filename_ann, cfg.paths.dataset_path):
        assert p is None or (p.is_file() and p.resolve().is_relative_to(site)), (name, p)
    assert cfg.paths.log_dir_of_current_run == Path.cwd() / "results" / name
assert demo_config().paths.log_dir_of_current_run == Path.cwd() / "results" / "demo"
print("ok")
"""
    env = dict(os.environ, PYTHONPATH=str(site))
    proc = subprocess.run([sys.executable, "-c", code, str(site.resolve())], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
