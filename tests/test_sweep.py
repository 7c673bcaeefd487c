"""`snnconv evaluate`: sweep expansion, comparison files, resume, failing settings."""
import json

import pytest

from snnconv import pipeline
from snnconv.cli import main
from snnconv.data import bundled_dataset_path, bundled_model_path
from snnconv.errors import ConfigError, SnnconvError
from snnconv.sweep import expand, run_sweep, sweep_axes

from helpers import write_bundled_config


def write_config(tmp_path, body):
    return write_bundled_config(tmp_path / "sweep.ini", 200, dict(
        duration=10, num_to_test=60, batch_size=30), body)


def test_expansion_is_the_cartesian_product(tmp_path):
    cfg = write_config(tmp_path, """
[cell]
reset = subtraction, zero
v_thresh = 1.0, 0.5, 0.25
""")
    assert sweep_axes(cfg) == {("cell", "reset"): ["subtraction", "zero"],
                               ("cell", "v_thresh"): ["1.0", "0.5", "0.25"]}
    settings = expand(cfg)
    assert len(settings) == 6
    pairs = {(s.config.cell.reset, s.config.cell.v_thresh) for s in settings}
    assert pairs == {(r, v) for r in ("subtraction", "zero") for v in (1.0, 0.5, 0.25)}
    assert len({s.label for s in settings}) == 6
    # a --set value replaces the list
    only = expand(cfg, {"cell": {"reset": "zero"}})
    assert {s.config.cell.reset for s in only} == {"zero"} and len(only) == 3
    # a list given with --set sweeps as well
    more = expand(cfg, {"Cell": {"reset": "zero"}, "simulation": {"duration": "10, 20"}})
    assert {(s.config.cell.v_thresh, s.config.simulation.duration) for s in more} == \
        {(v, d) for v in (1.0, 0.5, 0.25) for d in (10.0, 20.0)}
    with pytest.raises(ConfigError, match="--set paths.runlabel=a,b: only number"):
        expand(cfg, {"paths": {"runlabel": "a,b"}})


def test_bad_list_values_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="cell.v_thresh"):
        expand(write_config(tmp_path, "[cell]\nv_thresh = 1.0, -2\n"))
    cfg = write_config(tmp_path, "")
    cfg.write_text(cfg.read_text().replace("log_dir_of_current_run = out",
                                           "log_dir_of_current_run = out\nrunlabel = a, b"))
    with pytest.raises(ConfigError, match="paths.runlabel.*only number, boolean and choice"):
        expand(cfg)


def test_run_writes_comparison_and_resumes(tmp_path, monkeypatch, capsys):
    cfg = write_config(tmp_path, "[cell]\nreset = subtraction, zero\n")
    real_run = pipeline.run
    calls = []

    def interrupted_on_second(config):
        calls.append(config.cell.reset)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(config)

    monkeypatch.setattr(pipeline, "run", interrupted_on_second)
    assert main(["evaluate", str(cfg)]) == 130
    out = tmp_path / "out"
    assert (out / "reset=subtraction" / "summary.json").exists()
    assert not (out / "reset=zero").exists()          # the interrupted one left nothing

    calls.clear()
    monkeypatch.setattr(pipeline, "run", lambda c: (calls.append(c.cell.reset), real_run(c))[1])
    assert main(["evaluate", str(cfg)]) == 0
    assert calls == ["zero"]                          # the completed setting was not redone
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["setting"] for r in rows] == ["reset=subtraction", "reset=zero"]
    for r in rows:
        summary = json.loads((out / r["setting"] / "summary.json").read_text())
        assert r["snn_accuracy"] == summary["snn_accuracy"]
        assert r["synops_per_sample"] == summary["synops_per_sample"]
        assert r["snn_energy_nj"] == pytest.approx(summary["synops_per_sample"] * 0.9 / 1000)
        assert r["ann_energy_nj"] == pytest.approx(summary["ann_macs_per_sample"] * 4.6 / 1000)
        assert r["error"] is None
    assert (out / "comparison.csv").read_text().splitlines()[0].startswith("setting,")
    assert (out / "accuracy_comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_failing_setting_is_reported_and_the_others_run(tmp_path, monkeypatch):
    cfg = write_config(tmp_path, "[cell]\nv_thresh = 1.0, 0.5\n")
    real_run = pipeline.run

    def fail_half(config):
        if config.cell.v_thresh == 0.5:
            raise SnnconvError("this setting is broken")
        return real_run(config)

    monkeypatch.setattr(pipeline, "run", fail_half)
    _, rows = run_sweep(cfg)
    assert rows[0]["error"] is None and rows[0]["snn_accuracy"] is not None
    assert rows[1]["error"] == "this setting is broken" and "snn_accuracy" not in rows[1]


def test_saved_snns_are_compared_on_the_config_data(tmp_path):
    import snnconv
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(bundled_model_path()), data.x_norm[:200])
    files = []
    for code in ("rate", "ttfs"):
        snn = snnconv.convert(graph, spike_code=code)
        files.append(tmp_path / f"{code}_net.keras")
        snn.save(files[-1])
    cfg = write_config(tmp_path, "")
    assert main(["evaluate", str(cfg), "--snn", *map(str, files)]) == 0
    rows = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [r["setting"] for r in rows] == ["rate_net", "ttfs_net"]
    for row, f, code in zip(rows, files, ("rate", "ttfs")):
        direct = snnconv.evaluate(snnconv.load_snn(f), data.x_test[:60], data.y_test[:60],
                                  num_steps=10, batch_size=30, progress=False)
        assert row["snn_accuracy"] == pytest.approx(direct.accuracy)
        assert row["synops_per_sample"] == pytest.approx(direct.synops, rel=1e-6)
        summary = json.loads((tmp_path / "out" / row["setting"] / "summary.json").read_text())
        assert summary["spike_code"] == code and summary["snn_file"] == str(f.resolve())
    # list-valued keys and saved SNNs do not mix
    bad = write_config(tmp_path, "[cell]\nreset = subtraction, zero\n")
    assert main(["evaluate", str(bad), "--snn", str(files[0])]) == 2


class _FakeOutcome:
    def __init__(self, summary):
        self.summary = summary


def _fake_run(calls):
    """A pipeline.run stand-in that writes a complete run folder and records its config."""
    def run(config, **kwargs):
        calls.append(config)
        run_dir = config.paths.log_dir_of_current_run
        run_dir.mkdir(parents=True, exist_ok=True)
        summary = {"ann_accuracy": 0.5, "snn_accuracy": 0.25 * len(calls), "num_steps": 10,
                   "snn_accuracy_at_step": {}, "synops_per_sample": 1.0,
                   "ann_macs_per_sample": 1}
        (run_dir / "summary.json").write_text(json.dumps(summary))
        return _FakeOutcome(summary)
    return run


def test_resume_runs_again_what_changed(tmp_path, monkeypatch, capsys):
    model = tmp_path / "net.keras"
    model.write_bytes(bundled_model_path().read_bytes())
    cfg = tmp_path / "sweep.ini"
    cfg.write_text(f"""
[paths]
filename_ann = net.keras
dataset_path = {bundled_dataset_path()}
log_dir_of_current_run = out
[simulation]
duration = 10
num_to_test = 50
[cell]
reset = subtraction, zero
""")
    calls = []
    monkeypatch.setattr(pipeline, "run", _fake_run(calls))
    assert main(["evaluate", str(cfg)]) == 0
    assert len(calls) == 2
    assert main(["evaluate", str(cfg)]) == 0
    assert len(calls) == 2                               # all current: nothing runs
    assert "not run again" in capsys.readouterr().out

    cfg.write_text(cfg.read_text().replace("duration = 10", "duration = 20"))
    assert main(["evaluate", str(cfg)]) == 0
    assert [c.simulation.duration for c in calls[2:]] == [20.0, 20.0]
    assert "running again: config changed" in capsys.readouterr().out

    cfg.write_text(cfg.read_text().replace("num_to_test = 50", "num_to_test = 40"))
    assert main(["evaluate", str(cfg), "--set", "cell.reset=zero"]) == 0
    assert [c.simulation.num_to_test for c in calls[4:]] == [40]

    model.write_bytes(model.read_bytes() + b"\0")        # another model, same file name
    assert main(["evaluate", str(cfg)]) == 0
    assert len(calls) == 7                               # both settings, and the comparison
    assert "model file changed" in capsys.readouterr().out
    rows = json.loads((tmp_path / "out" / "comparison.json").read_text())
    assert [r["snn_accuracy"] for r in rows] == [0.25 * 6, 0.25 * 7]   # the new numbers

    assert main(["evaluate", str(cfg), "--force"]) == 0
    assert len(calls) == 9
    # a folder from before keys were recorded counts as out of date
    (tmp_path / "out" / "reset=zero" / "sweep_key.json").unlink()
    assert main(["evaluate", str(cfg)]) == 0
    assert len(calls) == 10 and calls[-1].cell.reset == "zero"


def test_saved_snns_with_one_file_name_get_distinct_folders(tmp_path):
    from snnconv.sweep import path_labels, snn_settings
    files = []
    for folder in ("runs/a", "runs/b", "old/a"):
        f = tmp_path / folder / "snn.keras"
        f.parent.mkdir(parents=True)
        f.write_text("x")
        files.append(f)
    assert path_labels(files) == ["runs_a_snn", "b_snn", "old_a_snn"]
    assert path_labels([tmp_path / "x" / "net.keras", tmp_path / "x" / "net.npz"]) == \
        ["x_net.keras", "x_net.npz"]
    cfg = write_config(tmp_path, "")
    settings = snn_settings(cfg, [str(f) for f in files[:2]])
    assert [s.label for s in settings] == ["a_snn", "b_snn"]
    with pytest.raises(ConfigError, match="given more than once"):
        snn_settings(cfg, [str(files[0]), str(files[0])])


def test_the_table_shows_what_its_header_says():
    from snnconv.sweep import format_comparison
    row = {"setting": "s", "error": None, "ann_accuracy": 0.99, "snn_accuracy_T/4": 0.5,
           "snn_accuracy_T/2": 0.75, "snn_accuracy": 0.875, "steps_to_within_1pt_of_ann": None,
           "spikes_per_neuron": 1.0, "synops_per_sample": 10.0, "synops_per_ann_mac": 1.0,
           "snn_energy_nj": 1.0, "ann_energy_nj": 1.0}
    header, line = format_comparison([row]).splitlines()
    assert header.split()[1:6] == ["ANN", "%", "SNN@T/4", "SNN@T/2", "SNN@T"]
    assert line.split()[1:5] == ["99.00", "50.00", "75.00", "87.50"]
