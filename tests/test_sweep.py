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
