"""``simulation.intra_op_threads``: TensorFlow's threads per operation (snnconv.tf_threads)."""
from __future__ import annotations

import json
import logging
import subprocess
import sys

import pytest

import snnconv
from helpers import make_branched_model, normalise_on_random
from snnconv import tf_threads


@pytest.mark.parametrize("cores,expected", [(1, 1), (2, 1), (3, 0), (16, 0)])
def test_auto_is_one_thread_on_at_most_two_cores(monkeypatch, cores, expected):
    monkeypatch.delenv(tf_threads.ENV, raising=False)
    monkeypatch.setattr(tf_threads, "available_cores", lambda: cores)
    assert tf_threads.resolve_intra_op_threads("auto") == expected
    assert tf_threads.resolve_intra_op_threads("AUTO") == expected


def test_a_run_that_calibrates_keeps_tensorflows_choice_under_auto():
    assert tf_threads.for_run("auto", "light") == 0
    assert tf_threads.for_run("auto", "none") == "auto"
    assert tf_threads.for_run(1, "light") == 1          # an explicit value stays


def test_the_users_environment_variable_wins_over_auto(monkeypatch):
    monkeypatch.setattr(tf_threads, "available_cores", lambda: 2)
    monkeypatch.setenv(tf_threads.ENV, "2")
    assert tf_threads.resolve_intra_op_threads("auto") == 0
    assert tf_threads.resolve_intra_op_threads(1) == 1


@pytest.mark.parametrize("bad", [-1, "many"])
def test_other_values_are_refused_saying_what_is_allowed(bad):
    with pytest.raises(ValueError, match="integer >= 0 or 'auto'"):
        tf_threads.resolve_intra_op_threads(bad)


def test_too_late_an_explicit_value_warns_and_auto_stays_silent(caplog, monkeypatch):
    import tensorflow as tf
    tf.constant(1.0) + 1.0                        # TensorFlow has run in this process
    now = tf_threads.intra_op_threads()
    wanted = 1 if now != 1 else 2
    monkeypatch.setattr(tf_threads, "available_cores", lambda: 2)
    monkeypatch.delenv(tf_threads.ENV, raising=False)
    with caplog.at_level(logging.WARNING, logger="snnconv.tf_threads"):
        assert tf_threads.apply_intra_op_threads("auto") == now
    assert not caplog.records
    with caplog.at_level(logging.WARNING, logger="snnconv.tf_threads"):
        assert tf_threads.apply_intra_op_threads(wanted) == now
    assert "cannot take effect" in caplog.text and tf_threads.ENV in caplog.text


def test_a_fresh_process_takes_the_setting():
    code = ("from snnconv import tf_threads; import tensorflow as tf; "
            "print(tf_threads.apply_intra_op_threads(1), "
            "tf.config.threading.get_intra_op_parallelism_threads())")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[-2:] == ["1", "1"]


def test_engine_auto_takes_the_graph_with_one_thread_per_operation(monkeypatch):
    from snnconv.simulators.ini import engine
    graph, _ = normalise_on_random(make_branched_model(), n=16)
    snn = snnconv.convert(graph)
    monkeypatch.setattr(tf_threads, "intra_op_threads", lambda: 0)
    assert engine.xla_pays.__wrapped__(snn)         # a small network: xla by default
    monkeypatch.setattr(tf_threads, "intra_op_threads", lambda: 1)
    assert not engine.xla_pays.__wrapped__(snn)


def test_snnconv_run_applies_it_at_start_and_records_it(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "snnconv.cli", "demo",
         "--set", f"paths.log_dir_of_current_run={out}",
         "--set", "simulation.num_to_test=20", "--set", "simulation.batch_size=20",
         "--set", "simulation.duration=3", "--set", "normalization.num_norm_samples=50",
         "--set", "simulation.intra_op_threads=1", "--set", "output.plot=false"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["intra_op_threads"] == 1
