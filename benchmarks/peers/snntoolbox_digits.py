"""SNN Toolbox 0.6's INI simulator on the digits CNN of bench_engine.py, timed per sample·step.

Runs in its own environment (SNN Toolbox needs the Keras 2 API)::

    python3.11 -m venv .venv-snntoolbox
    .venv-snntoolbox/bin/pip install snntoolbox==0.6.0 tensorflow-cpu==2.21.0 tf-keras==2.21.0
    TF_USE_LEGACY_KERAS=1 .venv-snntoolbox/bin/python benchmarks/peers/snntoolbox_digits.py

The same architecture, data and training as ``bench_engine.py``'s ``digits``
network (8x8 MNIST, conv16-avgpool-conv32-avgpool-fc64-fc10, 3 epochs,
seed 0; trained here in tf.keras, so the weights differ), converted by SNN
Toolbox (rate code) and simulated on its INI simulator, batch 32, T 50, 3
batches. Without normalisation: SNN Toolbox 0.6's writes its scales with
``json`` and fails on the float32 of today's numpy; its simulator's
per-step work (a dense Keras pass per step) does not depend on the scales. The seconds are
those spent in the simulator's ``simulate`` (every batch's time loop, with
the toolbox's per-step records), divided by samples x steps; SNN Toolbox
does all its set-up outside it.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from digits_cnn import digits_data, trained_digits_cnn  # noqa: E402

BATCH, STEPS, BATCHES = 32, 50, 3


def main() -> int:
    # SNN Toolbox 0.6 calls numpy functions numpy 2 removed
    for old, new in (("product", "prod"), ("cumproduct", "cumprod")):
        if not hasattr(np, old):
            setattr(np, old, getattr(np, new))
    import tf_keras as keras
    from snntoolbox.bin.run import main as run_toolbox
    from snntoolbox.simulation.target_simulators import INI_temporal_mean_rate_target_sim as ini

    x_train, y_train, x_test, y_test = digits_data()
    ann = trained_digits_cnn(keras, x_train, y_train, one_hot=True)   # SNN Toolbox wants one-hot

    spent = []
    original = ini.SNN.simulate

    def timed(self, **kwargs):
        start = time.perf_counter()
        out = original(self, **kwargs)
        spent.append(time.perf_counter() - start)
        return out
    ini.SNN.simulate = timed

    n = BATCH * BATCHES
    with tempfile.TemporaryDirectory() as wd:
        ann.save(f"{wd}/digits.h5")
        np.savez_compressed(f"{wd}/x_test.npz", arr_0=x_test[:n])
        np.savez_compressed(f"{wd}/y_test.npz", arr_0=np.eye(10)[y_test[:n]])
        np.savez_compressed(f"{wd}/x_norm.npz", arr_0=x_train[:1000])
        Path(f"{wd}/config").write_text(f"""[paths]
path_wd = {wd}
dataset_path = {wd}
filename_ann = digits
[tools]
evaluate_ann = True
normalize = False
[simulation]
simulator = INI
duration = {STEPS}
num_to_test = {n}
batch_size = {BATCH}
keras_backend = tensorflow
[output]
log_vars = {{}}
plot_vars = {{}}
verbose = 0
""")
        run_toolbox(f"{wd}/config")
    seconds = sum(spent[1:]) / (len(spent) - 1)      # the first batch includes tracing
    print(f"SNN Toolbox 0.6 INI, digits CNN, batch {BATCH}, T {STEPS}: "
          f"{seconds / (BATCH * STEPS):.3g} s per sample·step "
          f"(batches: {', '.join(f'{s:.2f} s' for s in spent)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
