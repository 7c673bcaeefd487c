"""dataset_format = folder: images in class subfolders, streamed, give the npz results."""
import json

import numpy as np
import pytest
import tensorflow as tf

from snnconv.cli import main
from snnconv.data import bundled_dataset_path, bundled_model_path
from snnconv.datasets import ImageFolder
from snnconv.errors import DataError


def write_images(folder, x, y):
    for i, (img, label) in enumerate(zip(x, y)):
        d = folder / f"{label}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{i:04d}.png").write_bytes(tf.io.encode_png(img).numpy())


@pytest.fixture(scope="module")
def mnist_folder(tmp_path_factory):
    """The first 60 bundled test images (sorted by class, as a folder lists them)
    in test/<class>/, and 40 normalisation images in norm/<class>/."""
    root = tmp_path_factory.mktemp("images")
    with np.load(bundled_dataset_path()) as d:
        x, y, xn, yn = d["x_test"][:60], d["y_test"][:60], d["x_norm"][:40], d["y_norm"][:40]
    write_images(root / "test", x, y)
    write_images(root / "norm", xn, yn)
    order = np.lexsort((np.arange(60), y))     # folder order: by class, then file name
    np.savez(root / "same.npz", x_test=x[order], y_test=y[order], x_norm=xn[np.lexsort((np.arange(40), yn))])
    return root


def config(tmp_path, dataset, fmt, out):
    cfg = tmp_path / f"{out}.ini"
    cfg.write_text(f"""
[paths]
filename_ann = {bundled_model_path()}
dataset_path = {dataset}
log_dir_of_current_run = {out}
[input]
dataset_format = {fmt}
input_scale = 0.00392156862745098
[normalization]
num_norm_samples = 40
batch_size = 16
[simulation]
duration = 15
num_to_test = 50
batch_size = 20
[output]
verbose = 0
plot = false
""")
    return cfg


def test_folder_run_equals_npz_run(tmp_path, mnist_folder):
    # the first 60 test images hold no 8: labels must still be the folder names
    assert not (mnist_folder / "test" / "8").exists()
    assert main(["run", str(config(tmp_path, mnist_folder, "folder", "f"))]) == 0
    assert main(["run", str(config(tmp_path, mnist_folder / "same.npz", "npz", "n"))]) == 0
    f = json.loads((tmp_path / "f" / "summary.json").read_text())
    n = json.loads((tmp_path / "n" / "summary.json").read_text())
    assert f["num_samples"] == n["num_samples"] == 50
    for key in ("ann_accuracy", "snn_accuracy", "synops_per_sample", "spikes_per_sample"):
        assert f[key] == pytest.approx(n[key], rel=1e-6), key
    assert f["normalization_scales"].keys() == n["normalization_scales"].keys()
    for name, scale in f["normalization_scales"].items():
        np.testing.assert_allclose(scale, n["normalization_scales"][name], rtol=1e-6)


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="no class subfolders"):
        ImageFolder(tmp_path, (28, 28, 1))
    (tmp_path / "3").mkdir()
    with pytest.raises(DataError, match="no image files"):
        ImageFolder(tmp_path, (28, 28, 1))
    with pytest.raises(DataError, match=r"\(height, width, 1\|3\|4\)"):
        ImageFolder(tmp_path, (784,))
