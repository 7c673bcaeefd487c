"""The run folder a user gets: killed runs cleaned up, replaced results said, advice when
the SNN ends far below the ANN, plots in network order and readable (no TensorFlow)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from snnconv.errors import ConfigError
from snnconv.evaluation import EvaluationResult
from snnconv.report import membrane_figure, read_results, spikes_per_layer_figure
from snnconv.results import (accuracy_advice, check_run_dir, remove_stale_stages,
                             replaced_earlier, staged_run_dir, write_results)

LAYERS = ("conv_b", "conv_a", "dense")          # network order, not alphabetical


def _result(acc=0.5, steps=10) -> EvaluationResult:
    t = np.arange(1, steps + 1)
    return EvaluationResult(
        num_samples=4, num_steps=steps, dt=1.0, top_k=5,
        accuracy_per_step=np.full(steps, acc), top_k_accuracy_per_step=np.full(steps, 1.0),
        spikes_per_step={name: np.full(steps, 7932.6) for name in LAYERS},
        neurons={name: 1000 for name in LAYERS}, synops_per_step=t * 10.0, ann_macs=100,
        predictions=np.zeros(4, np.int64))


def _samples():
    rng = np.random.default_rng(0)
    return {name: {"neurons": np.arange(6), "spikes": (rng.random((2, 10, 6)) > 0.7) * 1.0,
                   "v": rng.random((2, 10, 6)).astype(np.float32), "v_thresh": 1.0}
            for name in LAYERS}


def _pairs(correlations=(0.99, 0.4, 0.95)):
    rng = np.random.default_rng(1)
    return {name: {"ann": rng.random(20).astype(np.float32),
                   "snn": rng.random(20).astype(np.float32), "correlation": r}
            for name, r in zip(LAYERS, correlations)}


def test_a_killed_run_leaves_nothing_behind_for_long(tmp_path):
    run_dir = tmp_path / "results" / "killed"
    # a run killed with SIGKILL while it was writing
    code = ("import sys, time; from snnconv.results import staged_run_dir\n"
            "with staged_run_dir(sys.argv[1]) as stage:\n"
            "    (stage / 'half.txt').write_text('x'); print(stage, flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(run_dir)], stdout=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__)
                                                                            .parents[1])))
    stage = Path(proc.stdout.readline().strip())
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert stage.is_dir() and stage.name == f".killed.partial-{proc.pid}"
    alive = tmp_path / "results" / f".killed.partial-{os.getpid()}-not-ours"
    alive.mkdir()
    with staged_run_dir(run_dir) as new:
        (new / "summary.json").write_text("{}")
    assert not stage.exists()                       # the dead process's folder is gone
    assert alive.exists()                           # a name that is not a stage stays
    assert sorted(p.name for p in run_dir.parent.iterdir()) == sorted([alive.name, "killed"])
    assert remove_stale_stages(run_dir) == []


def test_overwrite_false_stops_before_any_work_and_replacing_is_said(tmp_path):
    run_dir = tmp_path / "run"
    check_run_dir(run_dir, overwrite=False)          # nothing there yet: fine
    with staged_run_dir(run_dir) as stage:
        (stage / "a").write_text("1")
    assert not replaced_earlier(run_dir)
    with pytest.raises(ConfigError, match=r"run folder .*run exists and output\.overwrite is "
                                          r"false.*paths\.runlabel"):
        check_run_dir(run_dir, overwrite=False)
    with staged_run_dir(run_dir) as stage:
        (stage / "b").write_text("2")
    assert replaced_earlier(run_dir)
    assert [p.name for p in run_dir.iterdir()] == ["b"]


def test_far_below_the_ann_gets_advice_in_the_summary(tmp_path):
    config = "[conversion]\nspike_code = rate\n[cell]\nreset = zero\nmax_spikes_per_dt = 1\n"
    for sub in ("near", "far", "new", "old"):
        (tmp_path / sub).mkdir()
    near = write_results(tmp_path / "near", _result(0.97), 0.99, config, plot=False)
    assert "advice" not in near
    data = write_results(tmp_path / "far", _result(0.2), 0.88, config, plot=False,
                         ann_vs_snn=_pairs())
    advice = data["advice"]
    assert "20.00 %" in advice and "88.00 %" in advice and "ann_vs_snn.png" in advice
    assert "conv_a, r = 0.40" in advice and "cell.reset = subtraction" in advice
    assert "cell.burst = 4" in advice
    # a run that already bursts, or on another simulator, is not told to
    bursting = accuracy_advice({"ann_accuracy": 0.88, "snn_accuracy": 0.2},
                               config.replace("[cell]\n", "[cell]\nburst = 4\n"))
    brian = accuracy_advice({"ann_accuracy": 0.88, "snn_accuracy": 0.2},
                            config + "[simulation]\nsimulator = brian2\n")
    assert "cell.burst" not in bursting and "cell.burst" not in brian
    assert json.loads((tmp_path / "far" / "summary.json").read_text())["advice"] == advice
    ttfs = accuracy_advice({"ann_accuracy": 0.88, "snn_accuracy": 0.11},
                           "[conversion]\nspike_code = ttfs_dyn_thresh\n")
    assert "first_spike_times.png" in ttfs and "dt = 0.25" in ttfs
    assert accuracy_advice({"ann_accuracy": None, "snn_accuracy": 0.1}) is None


def test_ann_vs_snn_panels_in_network_order(tmp_path):
    for sub in ("new", "old"):
        (tmp_path / sub).mkdir()
    write_results(tmp_path / "new", _result(), 0.9, "", plot=False, ann_vs_snn=_pairs())
    assert list(read_results(tmp_path / "new")["ann_vs_snn"]) == list(LAYERS)
    # a file written before the group kept its order: read in network order all the same
    old = tmp_path / "old"
    write_results(old, _result(), 0.9, "", plot=False)
    with h5py.File(old / "results.h5", "a") as f:
        for name, p in _pairs().items():
            g = f.create_group(f"ann_vs_snn/{name}")
            g["ann"], g["snn"] = p["ann"], p["snn"]
            g.attrs["correlation"] = p["correlation"]
    with h5py.File(old / "results.h5", "r") as f:
        assert list(f["ann_vs_snn"]) == sorted(LAYERS)
    assert list(read_results(old)["ann_vs_snn"]) == list(LAYERS)


def test_spike_counts_are_written_as_the_console_writes_them(tmp_path):
    write_results(tmp_path, _result(), 0.9, "", plot=False)
    fig = spikes_per_layer_figure(read_results(tmp_path))
    title = fig.axes[0].get_title()
    assert "237,978 spikes per sample" in title and "e+" not in title   # 3 x 10 x 7932.6
    assert "(3,000 neurons)" in title


def test_membrane_legends_leave_the_traces_free(tmp_path):
    write_results(tmp_path, _result(), 0.9, "", plot=False, samples=_samples())
    fig = membrane_figure(read_results(tmp_path))
    fig.tight_layout()
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax in fig.axes:
        legend, box = ax.get_legend().get_window_extent(renderer), ax.get_window_extent(renderer)
        assert legend.x0 >= box.x1, (legend, box)   # beside the panel, not on it


def test_the_run_note_says_where_and_repeats_the_advice(tmp_path):
    from snnconv.results import run_note
    with staged_run_dir(tmp_path / "r") as stage:
        (stage / "x").write_text("1")
    assert run_note(tmp_path / "r", {}) == f"results written to {tmp_path / 'r'}"
    with staged_run_dir(tmp_path / "r") as stage:
        (stage / "x").write_text("2")
    note = run_note(tmp_path / "r", {"advice": "note: far below"})
    assert note.splitlines() == [f"results written to {tmp_path / 'r'} (replacing the results "
                                 "of an earlier run there)", "note: far below"]
