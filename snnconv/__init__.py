"""snnconv: convert trained Keras models into spiking neural networks and evaluate them.

The stages, each usable on its own::

    import snnconv
    graph = snnconv.parse(keras_model)              # or a path to .keras / .h5
    graph = snnconv.normalize(graph, x_norm, method="percentile", percentile=99.9)
    snn = snnconv.convert(graph, simulator="INI", spike_code="rate")
    result = snnconv.evaluate(snn, x_test, y_test, duration=100, batch_size=100)
    result.accuracy_per_step

The heavy modules (TensorFlow) are imported on first use, so that the
command line starts fast.
"""
import importlib
import os

# snnconv's layers and time loop are written for Keras 3 on TensorFlow.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise here.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"

_API = {
    "parse": ("snnconv.parsing", "parse"),
    "load_model": ("snnconv.parsing", "load_model"),
    "normalize": ("snnconv.normalization", "normalize"),
    "convert": ("snnconv.conversion", "convert"),
    "evaluate": ("snnconv.evaluation", "evaluate"),
    "EvaluationResult": ("snnconv.evaluation", "EvaluationResult"),
    "build_ann": ("snnconv.ann", "build_ann"),
    "load_config": ("snnconv.config", "load_config"),
    "Config": ("snnconv.config", "Config"),
    "run": ("snnconv.pipeline", "run"),
    "load_dataset": ("snnconv.datasets", "load_dataset"),
    "load_snn": ("snnconv.layers.io", "load_snn"),
    "export_nir": ("snnconv.nirio", "export_nir"),
    "import_nir": ("snnconv.nirio", "import_nir"),
    "Graph": ("snnconv.ir", "Graph"),
    "Node": ("snnconv.ir", "Node"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'snnconv' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value
