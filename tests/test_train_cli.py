"""``snnconv train``: the run folder, resuming after Ctrl-C, and one-line errors with exit 2."""
import json

import keras
import numpy as np
import pytest

from snnconv.cli import main
from snnconv.config import template_file
from snnconv.simulators.xylo import load_xylo
from snnconv.simulators.xylo.spec import XyloSpec

TINY = ["synnet.size_hidden_layers=8, 6", "synnet.time_constants_per_layer=2, 2",
        "training.num_train=64", "simulation.num_to_test=32", "simulation.batch_size=32",
        "output.verbose=0"]


def run(tmp_path, *extra, epochs=1):
    sets = TINY + [f"training.epochs={epochs}", f"paths.log_dir_of_current_run={tmp_path}/run",
                   *extra]
    args = ["train", str(template_file("synnet"))]
    for s in sets:
        args += ["--set", s]
    return main(args)


def test_train_writes_the_run_folder(tmp_path, capsys):
    assert run(tmp_path) == 0
    out = capsys.readouterr().out
    assert "Xylo integer simulation" in out and "float (as trained)" in out
    folder = tmp_path / "run"
    for name in ("config.ini", "synnet.keras", "xylo.npz", "history.csv", "summary.json",
                 "training.png", "confusion.png"):
        assert (folder / name).is_file(), name
    summary = json.loads((folder / "summary.json").read_text())
    assert set(summary["accuracy"]) == {"float", "quantized", "chip"}
    assert summary["num_train"] == 64 and summary["num_test"] == 32
    assert summary["xylo_chip"] == "syns61201" and len(summary["history"]) == 1
    net = load_xylo(folder / "xylo.npz")
    assert net.temporal and net.readout == "vmem" and net.layers == [("lif_0", 8),
                                                                      ("lif_1", 6)]
    with np.load(folder / "xylo.npz") as f:           # the bare specification reads too
        XyloSpec.from_arrays({k: f[k] for k in f.files if not k.startswith("snnconv_")})
    model = keras.saving.load_model(folder / "synnet.keras")
    assert model.size_hidden_layers == [8, 6]
    assert not list(tmp_path.glob(".run.*"))          # no checkpoint or stage left


def test_interrupted_training_resumes(tmp_path, monkeypatch, capsys):
    original = keras.callbacks.CSVLogger.on_epoch_end

    def interrupt(self, epoch, logs=None):
        original(self, epoch, logs)
        if epoch == 0:
            raise KeyboardInterrupt

    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", interrupt)
    assert run(tmp_path, epochs=2) == 130
    assert "resume" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
    assert (tmp_path / ".run.checkpoint" / "backup").exists()
    monkeypatch.setattr(keras.callbacks.CSVLogger, "on_epoch_end", original)
    assert run(tmp_path, epochs=2) == 0
    rows = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    assert not (tmp_path / ".run.checkpoint").exists()


def write_data(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("case, message", [
    ("labels", "y_train holds label 9, but there are 8 classes"),
    ("rate", "sampled at 8000 Hz, but frontend.sample_rate = 16000"),
    ("chip", "does not fit Xylo Audio 2"),
    ("missing", "paths.dataset_path = "),
    ("config", "synnet.threshold_out applies only"),
])
def test_bad_input_is_one_line_with_exit_2(tmp_path, capsys, case, message):
    words = np.array(["a", "b", "c", "d", "e", "f", "g", "h"])
    extra = []
    if case == "labels":
        x = np.zeros((4, 10, 16), np.uint8)
        path = write_data(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 9, 2]),
                          x_test=x, y_test=np.zeros(4, int), words=words)
        extra = [f"paths.dataset_path={path}"]
    elif case == "rate":
        x = np.zeros((2, 8000), np.int16)
        path = write_data(tmp_path / "d.npz", x_train=x, y_train=np.zeros(2, int), x_test=x,
                          y_test=np.zeros(2, int), words=words, sample_rate=8000)
        extra = [f"paths.dataset_path={path}"]
    elif case == "chip":
        extra = ["synnet.size_hidden_layers=600, 600"]
    elif case == "missing":
        extra = [f"paths.dataset_path={tmp_path}/none.npz"]
    else:
        extra = ["synnet.threshold_out=2.0"]
    assert run(tmp_path, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("snnconv: error:") and message in err and "\n" not in err
    assert not (tmp_path / "run").exists()
