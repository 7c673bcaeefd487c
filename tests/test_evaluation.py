"""evaluate(): streamed inputs give the same result as arrays; bad input is refused."""
import numpy as np
import pytest
import tensorflow as tf

import snnconv
from snnconv.errors import DataError


@pytest.fixture(scope="module")
def setup(bundled):
    return snnconv.convert(bundled.graph), bundled.data.x_test[:70], bundled.data.y_test[:70]


def test_dataset_and_generator_equal_arrays(setup):
    snn, x, y = setup
    ref = snnconv.evaluate(snn, x, y, num_steps=12, batch_size=32, progress=False)
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(50)      # batches of another size
    streamed = snnconv.evaluate(snn, ds, num_steps=12, batch_size=32, progress=False)
    gen = ((x[i:i + 7], np.eye(10)[y[i:i + 7]]) for i in range(0, len(x), 7))   # one-hot
    generated = snnconv.evaluate(snn, gen, num_steps=12, batch_size=32, progress=False)
    for r in (streamed, generated):
        assert r.num_samples == 70
        np.testing.assert_array_equal(r.accuracy_per_step, ref.accuracy_per_step)
        np.testing.assert_allclose(r.synops_per_step, ref.synops_per_step, rtol=1e-6)
        np.testing.assert_array_equal(r.predictions, ref.predictions)


def test_bad_inputs_are_refused(setup):
    snn, x, y = setup
    with pytest.raises(DataError, match="70 inputs but 69 labels"):
        snnconv.evaluate(snn, x, y[:69], num_steps=3, progress=False)
    with pytest.raises(DataError, match=r"\(inputs, labels\) batches"):
        snnconv.evaluate(snn, [x[:5]], num_steps=3, progress=False)
    with pytest.raises(DataError, match="no samples"):
        snnconv.evaluate(snn, x[:0], y[:0], num_steps=3, progress=False)
    with pytest.raises(ValueError, match="exactly one of duration and num_steps"):
        snnconv.evaluate(snn, x, y, progress=False)


def test_lazy_npz_rows_equal_the_loaded_arrays(tmp_path):
    """A single .npz is read slice by slice (compressed or not), forward and backward."""
    from snnconv.datasets import load_dataset
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (37, 4, 4), dtype=np.uint8)
    y = rng.integers(0, 3, 37)
    for save in (np.savez, np.savez_compressed):
        f = tmp_path / f"{save.__name__}.npz"
        save(f, x_test=x, y_test=y, x_train=x[::-1].copy())
        eager = load_dataset(f, (4, 4, 1), 0.5)
        lazy = load_dataset(f, (4, 4, 1), 0.5, lazy=True)
        assert len(lazy.x_test) == 37 and lazy.x_test.shape == (37, 4, 4, 1)
        np.testing.assert_array_equal(lazy.y_test, eager.y_test)
        for a, b in ((10, 20), (20, 37), (0, 5), (30, 45), (3, 3)):
            np.testing.assert_array_equal(lazy.x_test[a:b], eager.x_test[a:b])
            np.testing.assert_array_equal(lazy.x_norm[a:b], eager.x_norm[a:b])
        head = lazy.x_test.limit(12)
        assert len(head) == 12
        np.testing.assert_array_equal(head[8:20], eager.x_test[8:12])


def test_top_k_breaks_ties_like_argmax():
    """All-equal scores (a network that has not spiked yet) are not a top-k hit for free."""
    from snnconv.evaluation import evaluate
    from snnconv.simulators.base import BatchOutput, NetworkInfo, Simulator

    class Flat(Simulator):
        """Scores 0 for every class at step 1; at step 2 class 1 leads, class 3 second."""
        name = "flat"

        def accepts(self, snn):
            return snn == "flat"

        def info(self, snn):
            return NetworkInfo(dt=1.0, ann_macs=0, neurons={"n": 1}, output_name="n")

        def simulate_batch(self, snn, x, steps, **options):
            b = len(x)
            score = np.zeros((b, 2, 5), np.float32)
            score[:, 1, 1], score[:, 1, 3] = 2.0, 1.0
            return BatchOutput(score, {"n": np.zeros((b, 2))}, np.zeros((b, 2)))

    import snnconv.simulators as sims
    sims.SIMULATORS["flat"] = Flat
    try:
        y = np.array([0, 1, 3, 4])
        r = evaluate("flat", np.zeros((4, 1)), y, num_steps=2, top_k=2, progress=False)
    finally:
        del sims.SIMULATORS["flat"]
    # step 1: ties everywhere -> ranks 0, 1, 3, 4 -> top-2 hits: classes 0 and 1
    # step 2: class 1 rank 0, class 3 rank 1, class 0 rank 2, class 4 rank 4
    np.testing.assert_allclose(r.top_k_accuracy_per_step, [0.5, 0.5])
    np.testing.assert_allclose(r.accuracy_per_step, [0.25, 0.25])
