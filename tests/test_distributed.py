"""Evaluation split across several devices equals the single-device result.

TensorFlow fixes its logical devices when it starts, so the two-device run
happens in a fresh interpreter in which the CPU is split into two logical
devices.
"""
import json
import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent("""
    import json, sys
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import numpy as np, snnconv
    from snnconv.data import bundled_dataset_path, bundled_model_path
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(bundled_model_path()), data.x_norm[:200])
    x, y = data.x_test[:90], data.y_test[:90]
    devices = [d.name for d in tf.config.list_logical_devices("CPU")]
    strategy = tf.distribute.MirroredStrategy(devices)
    out = {"replicas": strategy.num_replicas_in_sync}
    for code in ("rate", "ttfs_dyn_thresh"):
        snn = snnconv.convert(graph, spike_code=code)
        one = snnconv.evaluate(snn, x, y, num_steps=15, batch_size=45, progress=False)
        two = snnconv.evaluate(snn, x, y, num_steps=15, batch_size=45, progress=False,
                               strategy=strategy)
        out[code] = {
            "accuracy_equal": bool(np.array_equal(one.accuracy_per_step, two.accuracy_per_step)),
            "topk_equal": bool(np.array_equal(one.top_k_accuracy_per_step,
                                              two.top_k_accuracy_per_step)),
            "synops_equal": bool(np.array_equal(one.synops_per_step, two.synops_per_step)),
            "spikes_equal": all(np.array_equal(one.spikes_per_step[k], two.spikes_per_step[k])
                                for k in one.spikes_per_step),
            "predictions_equal": bool(np.array_equal(one.predictions, two.predictions)),
            "accuracy": float(one.accuracy),
        }
    print("RESULT" + json.dumps(out))
""")


def test_two_logical_devices_give_the_single_device_result():
    proc = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(l for l in proc.stdout.splitlines() if l.startswith("RESULT"))
    out = json.loads(line[len("RESULT"):])
    assert out["replicas"] == 2
    for code in ("rate", "ttfs_dyn_thresh"):
        r = out[code]
        assert r["accuracy"] > 0.8, code          # a real simulation, not an empty one
        assert r["accuracy_equal"] and r["topk_equal"] and r["synops_equal"], code
        assert r["spikes_equal"] and r["predictions_equal"], code


WORKER = textwrap.dedent("""
    import json, os, sys
    import numpy as np, tensorflow as tf
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    import snnconv
    from snnconv.data import bundled_dataset_path, bundled_model_path
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(bundled_model_path()), data.x_norm[:200])
    x, y = data.x_test[:60], data.y_test[:60]
    snn = snnconv.convert(graph)
    two = snnconv.evaluate(snn, x, y, num_steps=10, batch_size=30, progress=False,
                           strategy=strategy)
    one = snnconv.evaluate(snn, x, y, num_steps=10, batch_size=30, progress=False,
                           strategy=tf.distribute.get_strategy())
    print("RESULT" + json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "equal": bool(np.array_equal(one.accuracy_per_step, two.accuracy_per_step)
                      and np.array_equal(one.synops_per_step, two.synops_per_step)
                      and np.array_equal(one.predictions, two.predictions)
                      and all(np.array_equal(one.spikes_per_step[k], two.spikes_per_step[k])
                              for k in one.spikes_per_step)),
        "accuracy": float(two.accuracy)}))
""")


def test_two_workers_give_the_single_device_result():
    """Two local worker processes (TF_CONFIG) share every batch and both get the whole result."""
    import os
    import socket

    ports = []
    for _ in range(2):
        with socket.socket() as s:
            s.bind(("localhost", 0))
            ports.append(s.getsockname()[1])
    cluster = {"worker": [f"localhost:{p}" for p in ports]}
    procs = []
    for index in range(2):
        env = dict(os.environ, TF_CONFIG=json.dumps({"cluster": cluster,
                                                     "task": {"type": "worker", "index": index}}))
        procs.append(subprocess.Popen([sys.executable, "-c", WORKER], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    for stdout, _ in outs:
        out = json.loads(next(l for l in stdout.splitlines()
                              if l.startswith("RESULT"))[len("RESULT"):])
        assert out["replicas"] == 2 and out["equal"] and out["accuracy"] > 0.8, out
