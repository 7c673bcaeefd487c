"""End to end: config -> run directory, on the bundled MNIST CNN and subset."""
import json

import h5py
import numpy as np
import pytest

import snnconv
from snnconv.cli import main
from snnconv.data import bundled_dataset_path, bundled_model_path
from snnconv.layers.io import load_snn

from helpers import write_bundled_config


def write_config(tmp_path, extra=""):
    return write_bundled_config(tmp_path / "run.ini", 300, dict(
        duration=40, batch_size=100, num_to_test=200, top_k=3), extra)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = write_config(tmp)
    assert main(["run", str(cfg)]) == 0
    return tmp / "out"


def test_run_writes_complete_results(demo_run):
    summary = json.loads((demo_run / "summary.json").read_text())
    assert {"config.ini", "summary.json", "results.h5", "accuracy.png", "snn.keras",
            "spikes_per_layer.png", "synops.png", "raster.png", "membrane.png",
            "ann_vs_snn.png"} == {p.name for p in demo_run.iterdir()}
    assert summary["num_samples"] == 200 and summary["num_steps"] == 40
    # the rate-coded SNN of this CNN is close to the ANN after 40 steps
    assert summary["ann_accuracy"] > 0.97
    assert summary["snn_accuracy"] >= summary["ann_accuracy"] - 0.02
    with h5py.File(demo_run / "results.h5") as f:
        acc = f["accuracy_per_step"][:]
        assert acc.shape == (40,)
        assert acc[-1] == pytest.approx(summary["snn_accuracy"])
        assert np.all(f["top_k_accuracy_per_step"][:] >= acc)
        assert list(f["spikes_per_step"]) == ["conv1", "conv2"]       # network order
        assert f.attrs["config"] == (demo_run / "config.ini").read_text()
        assert f["samples/conv1/spikes"].shape == (3, 40, 64)
        assert f["samples/conv2/v"].shape == (3, 40, 64)
        assert f["normalization/conv1"][()] == pytest.approx(
            summary["normalization_scales"]["conv1"])
        # the conversion diagnostic: SNN rates track the normalised ANN activations
        for layer in ("conv1", "conv2"):
            g = f[f"ann_vs_snn/{layer}"]
            a, r = g["ann"][:], g["snn"][:]
            assert len(a) == len(r) > 100
            assert g.attrs["correlation"] == pytest.approx(np.corrcoef(a, r)[0, 1])
            assert g.attrs["correlation"] > 0.98
            assert np.abs(r - np.clip(a, 0, 1)).mean() < 0.03
    assert (demo_run / "ann_vs_snn.png").read_bytes()[:4] == b"\x89PNG"
    assert set(summary["ann_vs_snn_correlation"]) == {"conv1", "conv2"}
    # the resolved config loads again and names the same model
    again = snnconv.load_config(demo_run / "config.ini")
    assert again.paths.filename_ann == bundled_model_path()


def test_saved_snn_reloads_and_reproduces_the_run(demo_run):
    snn = load_snn(demo_run / "snn.keras")
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    r = snnconv.evaluate(snn, data.x_test[:200], data.y_test[:200], duration=40,
                         batch_size=100, top_k=3, progress=False)
    with h5py.File(demo_run / "results.h5") as f:
        np.testing.assert_array_equal(r.accuracy_per_step, f["accuracy_per_step"][:])
        np.testing.assert_allclose(r.synops_per_step, f["synops_per_step"][:], rtol=1e-6)


def test_interrupted_run_leaves_no_result(tmp_path, monkeypatch):
    import snnconv.evaluation

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(snnconv.evaluation, "evaluate", boom)
    cfg = write_config(tmp_path)
    assert main(["run", str(cfg)]) == 130
    assert not (tmp_path / "out").exists()
    assert not any(p.name.startswith(".out.partial") for p in tmp_path.iterdir())


def test_missing_dataset_is_a_clear_error(tmp_path, capsys):
    cfg = write_config(tmp_path)
    text = cfg.read_text().replace(f"dataset_path = {bundled_dataset_path()}",
                                   "dataset_path =")
    cfg.write_text(text)
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "paths.dataset_path" in err and "Traceback" not in err


def test_python_api_matches_issue_example():
    ann = snnconv.load_model(bundled_model_path())
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.parse(ann)
    graph = snnconv.normalize(graph, data.x_norm[:200], method="percentile", percentile=99.9)
    # neurons starting at rest, one spike a step (the defaults, half the threshold
    # and up to four spikes of a quarter a step, are accurate from the first
    # steps), so the curve rises visibly
    snn = snnconv.convert(graph, simulator="INI", spike_code="rate", v_init=0.0, burst=1)
    result = snnconv.evaluate(snn, data.x_test[:100], data.y_test[:100], duration=30,
                              batch_size=50, progress=False)
    assert result.accuracy_per_step.shape == (30,)
    ann_acc = np.mean(ann.predict(data.x_test[:100], verbose=0).argmax(1) == data.y_test[:100])
    assert result.accuracy >= ann_acc - 0.03
    # accuracy after step 1 is far below the end: the curve is really per step
    assert result.accuracy_per_step[0] < result.accuracy - 0.2


def test_shipped_ttfs_template_decides_early_and_close_to_the_ann(tmp_path):
    """config_templates/ttfs.ini (dynamic threshold, dt 0.25, early stopping) on
    200 bundled images: close to the ANN, at most one spike per neuron, and
    fewer synaptic operations than the ANN has MACs."""
    from snnconv.config import template_path
    template = template_path().parent / "ttfs.ini"
    out = tmp_path / "ttfs"
    assert main(["run", str(template), "--set", "simulation.num_to_test=200",
                 "--set", "normalization.num_norm_samples=300",
                 "--set", f"paths.log_dir_of_current_run={out}",
                 "--set", "output.verbose=0", "--set", "output.plot=false"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["num_steps"] == 160 and summary["dt"] == 0.25
    assert summary["snn_accuracy"] >= summary["ann_accuracy"] - 0.02
    assert max(summary["spikes_per_neuron"].values()) <= 1.0
    assert summary["synops_per_sample"] < summary["ann_macs_per_sample"]
    with h5py.File(out / "results.h5") as f:
        decisions = f["decision_steps"][:]
    assert (decisions > 0).mean() > 0.95
    # the run stopped early (how exactly is tested in test_ttfs.py)
    assert "early_stopping = true" in (out / "config.ini").read_text()
