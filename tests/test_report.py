"""snnconv.report: reading results.h5 and redrawing the plots (no TensorFlow needed)."""
import math
import os
import subprocess
import sys
from pathlib import Path

import h5py
import matplotlib.image
import numpy as np
import pytest

from snnconv.errors import DataError
from snnconv.report import (cumulative_synops, decision_times, draw_report, plot_accuracy,
                            read_results, spikes_per_neuron)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
BASE_PLOTS = {"accuracy.png", "spikes_per_layer.png", "synops.png"}
T, DT = 20, 0.5


# 10 samples: 3 undecided (0), the others decided at steps 2, 2, 5, 5, 5, 7, 20
DECISION_STEPS = np.array([0, 2, 2, 5, 0, 5, 5, 7, 20, 0], dtype=np.int64)


def per_step_data() -> dict:
    steps = np.arange(1, T + 1)
    return {
        "accuracy_per_step": np.minimum(0.9, 0.05 * steps),
        "top_k_accuracy_per_step": np.minimum(0.99, 0.1 * steps).astype(np.float32),
        "time": steps * DT,
        "synops_per_step": np.full(T, 1000.0) + steps / 3,
    }


def write_results_h5(folder: Path, ttfs: bool = False, ann_accuracy=0.93, drop=(),
                     ann_vs_snn: bool = False) -> Path:
    """A results.h5 laid out as snnconv.results writes it, built by hand."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.h5"
    with h5py.File(path, "w") as f:
        for name, v in per_step_data().items():
            if name not in drop:
                f[name] = v
        if ttfs:
            f["decision_steps"] = DECISION_STEPS
        g = f.create_group("spikes_per_step")
        g["conv2d"] = np.full(T, 40.0)          # 800 spikes / 200 neurons = 4
        g["dense"] = np.linspace(0.0, 3.0, T)   # 30 spikes / 10 neurons = 3
        g = f.create_group("normalization")
        g["conv2d"] = np.float64(2.5)
        g["dense"] = np.array([1.0, 1.5])
        if ann_vs_snn:
            g = f.create_group("ann_vs_snn/conv2d")
            rng = np.random.default_rng(0)
            g["ann"] = rng.random(50).astype(np.float32)
            g["snn"] = g["ann"][()] * 0.9
            g.attrs["correlation"] = 0.99
        f.attrs.update(num_samples=10, num_steps=T, dt=DT, top_k=5, ann_macs=20000,
                       ann_accuracy=np.nan if ann_accuracy is None else ann_accuracy,
                       neurons_conv2d=200, neurons_dense=10)
    return path


def assert_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 50 and image.shape[1] > 50
    assert image.std() > 0          # not a blank canvas


def test_draw_report_rate_like(tmp_path):
    run = tmp_path / "run"
    write_results_h5(run)
    written = draw_report(run)
    assert {p.name for p in written} == BASE_PLOTS
    assert all(p.parent == run for p in written)
    for p in written:
        assert_png(p)
    # no temporary files are left behind
    assert sorted(p.name for p in run.iterdir()) == sorted(BASE_PLOTS | {"results.h5"})


def test_draw_report_ttfs_adds_decision_times(tmp_path):
    run = tmp_path / "run"
    write_results_h5(run, ttfs=True, ann_accuracy=None)
    written = draw_report(run)
    assert {p.name for p in written} == BASE_PLOTS | {"decision_times.png"}
    for p in written:
        assert_png(p)


def test_draw_report_out_dir_and_file_argument(tmp_path):
    h5 = write_results_h5(tmp_path / "run", ann_vs_snn=True)
    out = tmp_path / "plots" / "nested"
    written = draw_report(h5, out_dir=out)
    assert {p.name for p in written} == BASE_PLOTS | {"ann_vs_snn.png"}
    assert all(p.parent == out for p in written)
    for p in written:
        assert_png(p)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["results.h5"]


def test_redraw_replaces_existing_files(tmp_path):
    run = tmp_path / "run"
    write_results_h5(run)
    (run / "accuracy.png").write_bytes(b"stale")
    draw_report(run)
    assert_png(run / "accuracy.png")


def test_read_results_round_trip(tmp_path):
    write_results_h5(tmp_path, ttfs=True, ann_vs_snn=True)
    with h5py.File(tmp_path / "results.h5", "r") as f:
        spikes = {k: v[()] for k, v in f["spikes_per_step"].items()}
        ann = f["ann_vs_snn/conv2d/ann"][()]
    expected = {**per_step_data(), "decision_steps": DECISION_STEPS}
    r = read_results(tmp_path)              # the run folder
    assert r["path"] == tmp_path / "results.h5"
    assert read_results(tmp_path / "results.h5")["path"] == r["path"]   # or the file
    for name, v in expected.items():
        assert r[name].dtype == v.dtype
        np.testing.assert_array_equal(r[name], v)
    assert r["decision_steps"].dtype == np.int64
    assert set(r["spikes_per_step"]) == {"conv2d", "dense"}
    for k, v in spikes.items():
        np.testing.assert_array_equal(r["spikes_per_step"][k], v)
    assert r["normalization"]["conv2d"] == 2.5
    np.testing.assert_array_equal(r["normalization"]["dense"], [1.0, 1.5])
    np.testing.assert_array_equal(r["ann_vs_snn"]["conv2d"]["ann"], ann)
    assert r["ann_vs_snn"]["conv2d"]["correlation"] == 0.99
    assert r["neurons"] == {"conv2d": 200, "dense": 10}
    assert (r["num_samples"], r["num_steps"], r["dt"], r["top_k"], r["ann_macs"]) == \
        (10, T, DT, 5, 20000)
    assert type(r["num_samples"]) is int and type(r["dt"]) is float
    assert r["ann_accuracy"] == 0.93


def test_read_results_optional_parts(tmp_path):
    write_results_h5(tmp_path, ann_accuracy=None)
    r = read_results(tmp_path)
    assert r["ann_accuracy"] is None        # NaN in the file: unknown
    assert r["decision_steps"] is None
    assert r["ann_vs_snn"] == {}
    assert decision_times(r) is None


def test_missing_dataset_is_named(tmp_path):
    write_results_h5(tmp_path, drop=("accuracy_per_step",))
    with pytest.raises(DataError, match="accuracy_per_step") as e:
        read_results(tmp_path)
    assert str(tmp_path / "results.h5") in str(e.value)
    with pytest.raises(DataError, match="accuracy_per_step"):
        draw_report(tmp_path)


def test_missing_or_unreadable_file(tmp_path):
    with pytest.raises(DataError, match="holds no results.h5"):
        read_results(tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        read_results(tmp_path / "nope.h5")
    bad = tmp_path / "results.h5"
    bad.write_bytes(b"not an HDF5 file")
    with pytest.raises(DataError, match="cannot read") as e:
        draw_report(tmp_path)
    assert str(bad) in str(e.value)


def test_inconsistent_lengths_and_missing_neurons(tmp_path):
    path = write_results_h5(tmp_path)
    with h5py.File(path, "a") as f:
        del f["time"]
        f["time"] = np.arange(T - 1, dtype=np.float64)
    with pytest.raises(DataError, match="'time' has shape"):
        read_results(path)
    path = write_results_h5(tmp_path)
    with h5py.File(path, "a") as f:
        del f.attrs["neurons_dense"]
    with pytest.raises(DataError, match="neurons_dense"):
        read_results(path)


def test_spikes_per_neuron_hand_computed(tmp_path):
    write_results_h5(tmp_path)
    r = read_results(tmp_path)
    # conv2d: 20 steps × 40 spikes / 200 neurons; dense: sum(linspace(0, 3, 20)) = 30 over 10
    assert spikes_per_neuron(r) == pytest.approx({"conv2d": 4.0, "dense": 3.0}, rel=1e-12)


def test_cumulative_synops_and_decision_times(tmp_path):
    write_results_h5(tmp_path, ttfs=True)
    r = read_results(tmp_path)
    cum = cumulative_synops(r)
    steps = np.arange(1, T + 1)
    np.testing.assert_allclose(cum, 1000.0 * steps + steps * (steps + 1) / 6, rtol=1e-12)
    times, undecided = decision_times(r)
    np.testing.assert_array_equal(times, np.array([2, 2, 5, 5, 5, 7, 20]) * DT)
    assert undecided == pytest.approx(0.3)


def test_plot_accuracy_from_plain_arrays(tmp_path):
    out = plot_accuracy(np.arange(1, 6) * 1.0, [0.1, 0.5, 0.7, 0.8, 0.8],
                        [0.5, 0.9, 0.95, 1.0, 1.0], tmp_path / "acc.png", top_k=3,
                        ann_accuracy=math.nan, num_samples=5, dt=1.0)
    assert out == tmp_path / "acc.png"
    assert_png(out)
    assert [p.name for p in tmp_path.iterdir()] == ["acc.png"]


def test_no_tensorflow_import(tmp_path):
    write_results_h5(tmp_path, ttfs=True)
    code = ("import sys; from snnconv.report import draw_report; "
            f"draw_report({str(tmp_path)!r}); "
            "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
            "assert not bad, bad")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr


def test_long_run_without_decisions(tmp_path):
    """Over 100 steps the histogram bins are merged; no decided sample still draws."""
    path = write_results_h5(tmp_path, ttfs=True)
    with h5py.File(path, "a") as f:
        for name, v in per_step_data().items():
            del f[name]
            f[name] = np.resize(v, 150)
        for name in ("conv2d", "dense"):
            del f[f"spikes_per_step/{name}"]
            f[f"spikes_per_step/{name}"] = np.ones(150)
        del f["decision_steps"]
        f["decision_steps"] = np.zeros(10, dtype=np.int64)
        f.attrs["num_steps"] = 150
    times, undecided = decision_times(read_results(tmp_path))
    assert len(times) == 0 and undecided == 1.0
    for p in draw_report(tmp_path):
        assert_png(p)


def test_cli_report(tmp_path, capsys):
    from snnconv.cli import main
    write_results_h5(tmp_path, ttfs=True)
    assert main(["report", str(tmp_path)]) == 0
    assert "decision_times.png" in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "results file" in capsys.readouterr().err
