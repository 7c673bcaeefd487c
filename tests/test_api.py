"""The Python API as a user meets it: one-line errors for wrong inputs and labels, short
reprs, well-defined equality, a discoverable module."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import snnconv  # noqa: E402
from snnconv.data import bundled_model_path  # noqa: E402
from snnconv.errors import DataError  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def tiny():
    """A 3-class CNN on (6, 6, 1) inputs, converted; and a few samples."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((6, 6, 1)),
                              keras.layers.Conv2D(2, 3, activation="relu", name="c"),
                              keras.layers.Flatten(name="f"),
                              keras.layers.Dense(3, activation="softmax", name="o")])
    x = np.random.default_rng(0).uniform(0, 1, (8, 6, 6, 1)).astype("float32")
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    graph = snnconv.normalize(snnconv.parse(model), x)
    return snnconv.convert(graph), x, y


def _evaluate(snn, x, y=None, **kw):
    return snnconv.evaluate(snn, x, y, num_steps=3, batch_size=4, progress=False, **kw)


def test_input_shapes_are_checked_where_they_enter(tiny):
    snn, x, y = tiny
    # only the channel axis missing: added, as the command line does
    np.testing.assert_array_equal(_evaluate(snn, x[..., 0], y).predictions,
                                  _evaluate(snn, x, y).predictions)
    for bad in (x.reshape(8, 36), x[:, :5]):
        with pytest.raises(DataError) as info:
            _evaluate(snn, bad, y)
        message = str(info.value)
        assert str(bad.shape[1:]) in message and "(6, 6, 1)" in message
        assert "\n" not in message
    batches = [(x[:4].reshape(4, 36), y[:4])]
    with pytest.raises(DataError, match=r"a batch's inputs.*\(36,\).*\(6, 6, 1\)"):
        _evaluate(snn, batches)


def test_labels_outside_the_classes_are_named(tiny):
    snn, x, y = tiny
    bad = y.copy()
    bad[3] = 12
    with pytest.raises(DataError, match=r"label 12 .* 3 classes \(labels 0\.\.2\)"):
        _evaluate(snn, x, bad)
    with pytest.raises(DataError, match="label -1"):
        _evaluate(snn, [(x[:4], np.array([0, 1, -1, 2]))])


def test_an_unbatched_dataset_is_told_to_batch(tiny):
    import tensorflow as tf
    snn, x, y = tiny
    with pytest.raises(DataError, match=r"single samples.*dataset\.batch"):
        _evaluate(snn, tf.data.Dataset.from_tensor_slices((x, y)))
    batched = _evaluate(snn, tf.data.Dataset.from_tensor_slices((x, y)).batch(4))
    assert batched == _evaluate(snn, x, y)


def test_evaluation_result_repr_and_equality(tiny):
    snn, x, y = tiny
    a, b = _evaluate(snn, x, y), _evaluate(snn, x, y)
    assert a == b and not (a != b)
    other = _evaluate(snn, x[:4], y[:4])
    assert a != other and a != "a result"
    text = repr(a)
    assert len(text) < 300 and text == str(a)
    assert text.startswith("EvaluationResult(8 samples, 3 steps")
    assert f"{100 * a.accuracy:.2f} %" in text


def test_graph_repr_and_equality():
    graph = snnconv.parse(bundled_model_path())
    text = repr(graph)
    assert len(text) < 300 and "7 nodes" in text and "(28, 28, 1)" in text
    assert "summary()" in text
    assert len(str(graph.nodes[1])) < 200 and "kernel (3, 3, 1, 16)" in str(graph.nodes[1])
    copy = graph.copy()
    assert copy == graph
    copy.nodes[1].weights["kernel"][0, 0, 0, 0] += 1
    assert copy != graph
    assert graph.summary().count("\n") == len(graph)


def test_the_module_lists_its_api_without_importing_tensorflow():
    code = ("import sys, snnconv; names = dir(snnconv); "
            "assert 'tensorflow' not in sys.modules; "
            "assert {'parse', 'normalize', 'convert', 'evaluate', 'run', 'load_config', "
            "'EvaluationResult', 'Graph'} <= set(names), names; "
            "assert not {'os', 'importlib'} & set(names), names; "
            "assert all(n in snnconv.__doc__ for n in snnconv.__all__ if n != '__version__'); "
            "assert 'summary()' in snnconv.__doc__; print('ok')")
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr


def test_run_with_a_label_outside_the_classes_stops_before_the_ann(tmp_path, capsys):
    from snnconv import cli
    from snnconv.data import bundled_dataset_path
    with np.load(bundled_dataset_path()) as d:
        y = d["y_test"][:20].astype(np.int64)
        y[7] = 12
        np.savez(tmp_path / "d.npz", x_test=d["x_test"][:20], y_test=y, x_norm=d["x_norm"][:20])
    cfg = tmp_path / "c.ini"
    cfg.write_text(f"[paths]\nfilename_ann = {bundled_model_path()}\ndataset_path = d.npz\n"
                   "[simulation]\nduration = 2\n")
    assert cli.main(["run", str(cfg)]) == 2
    out, err = capsys.readouterr()
    assert "ANN accuracy" not in out and "Traceback" not in err
    assert err.count("\n") == 1
    assert "d.npz: label 12 is not a class of the network, whose output has 10 classes" in err
