"""Helpers shared by test modules (pytest puts this folder on sys.path)."""
from snnconv.data import bundled_dataset_path, bundled_model_path


def write_bundled_config(path, num_norm_samples, simulation: dict, extra: str = ""):
    """A config for the bundled CNN and MNIST subset, results in ``out/`` beside it.

    ``simulation`` holds the [simulation] keys; ``extra`` is appended verbatim.
    """
    sim = "\n".join(f"{k} = {v}" for k, v in simulation.items())
    path.write_text(f"""
[paths]
filename_ann = {bundled_model_path()}
dataset_path = {bundled_dataset_path()}
log_dir_of_current_run = out
[input]
input_scale = 0.00392156862745098
[normalization]
num_norm_samples = {num_norm_samples}
[simulation]
{sim}
[output]
verbose = 0
{extra}
""")
    return path
