"""snnconv: convert trained Keras models into spiking neural networks and evaluate them.

The stages, each usable on its own::

    import snnconv
    graph = snnconv.parse(keras_model)              # or a path to .keras / .h5 / .hdf5
    print(graph.summary())                          # one line per node
    graph = snnconv.normalize(graph, x_norm, method="percentile", percentile=99.9)
    snn = snnconv.convert(graph, simulator="INI", spike_code="rate")
    result = snnconv.evaluate(snn, x_test, y_test, duration=100, batch_size=100)
    result.accuracy_per_step

The public API (``help(snnconv.<name>)`` for each):

parse(model_or_path) -> Graph
    A Keras model (or a ``.keras`` / ``.h5`` / ``.hdf5`` file) as the IR graph.
load_model(path) -> keras.Model
    Safe loading: files with ``Lambda`` layers are refused, never executed.
normalize(graph, x, ...) -> Graph
    Data-based weight normalisation (max or percentile, per layer or channel).
convert(graph, simulator="INI", spike_code="rate", **cell) -> network
    The spiking network (a Keras model of Spike* layers, or a simulator's own).
evaluate(snn, x, y=None, duration=None, num_steps=None, ...) -> EvaluationResult
    Accuracy after every time step, spikes per layer, SynOps against ANN MACs.
calibrate(snn, graph, x, num_steps, method="light") -> network
    The converted rate-coded SNN calibrated layer by layer for ``num_steps``
    steps on unlabelled data (``light`` or ``advanced``).
finetune(snn, x, y, num_steps, epochs=3, ...) -> network
    The converted rate-coded SNN trained for ``num_steps`` steps with surrogate
    gradients on labelled data (hybrid conversion), from its converted weights.
EvaluationResult
    What ``evaluate`` measured (``print(result)`` for a short summary).
build_ann(graph) -> keras.Model
    The IR graph rebuilt as a plain Keras model.
load_config(path, overrides=None) -> Config; Config
    A validated INI configuration (``snnconv init`` writes a commented one).
run(config) -> RunOutcome
    The whole pipeline of ``snnconv run``: parse, normalise, convert, simulate,
    evaluate, write the run folder.
load_dataset(path, input_shape, input_scale) -> Dataset
    Test and normalisation data from an ``.npz`` file or folder.
load_snn(path) -> keras.Model
    A saved SNN (``snn.keras``) back.
export_nir(snn, path); import_nir(path)
    NIR graphs (needs the ``nir`` extra).
SynNet(n_classes, n_channels, ...) -> keras.Model
    Rockpool's SynNet for temporal signals (Xylo), trainable with ``fit``.
LIF(units, ...)
    The trainable LIF layer over ``(batch, time, features)`` SynNet is made of.
train_synnet(model, x, y, epochs=30, batch_size=64, ...) -> History
    Surrogate-gradient training of a SynNet on event inputs ``(N, T, channels)``.
to_xylo(model, chip="syns61201", quantization="global") -> XyloNetwork
    A trained SynNet quantized for a Xylo chip (``.spec``, ``.fit_report()``).
Graph, Node
    The IR: ``graph.summary()`` lists the nodes; ``print(graph)`` is short.

Submodules for trained networks: ``snnconv.audio`` (``FrontEnd``: waveforms
to Xylo's 16 event channels), ``snnconv.surrogates`` (spike functions with
surrogate gradients), ``snnconv.losses`` (losses and metrics over time).

TensorFlow is imported on first use of one of these, not by ``import snnconv``,
so that the command line starts fast.
"""
import importlib as _importlib
import os as _os

# snnconv's layers and time loop are written for Keras 3 on TensorFlow.
_os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter (CUDA probing on CPU machines) is noise here.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from snnconv import tflogs as _tflogs  # noqa: E402  (light: logging only)

# Evaluating several networks in one process retraces compiled functions by
# design; TensorFlow's warning about it would only alarm.
_tflogs.drop_retracing_warnings()

__version__ = "0.1.0"

_API = {
    "parse": ("snnconv.parsing", "parse"),
    "load_model": ("snnconv.parsing", "load_model"),
    "normalize": ("snnconv.normalization", "normalize"),
    "convert": ("snnconv.conversion", "convert"),
    "calibrate": ("snnconv.calibration", "calibrate"),
    "finetune": ("snnconv.finetuning", "finetune"),
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
    "SynNet": ("snnconv.networks", "SynNet"),
    "LIF": ("snnconv.layers.lif", "LIF"),
    "train_synnet": ("snnconv.training", "train_synnet"),
    "to_xylo": ("snnconv.simulators.xylo.from_synnet", "to_xylo"),
    "Graph": ("snnconv.ir", "Graph"),
    "Node": ("snnconv.ir", "Node"),
}

__all__ = ["__version__", *_API]


def __getattr__(name):
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'snnconv' has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__():
    """The public API and the submodules imported so far."""
    loaded = {k for k, v in globals().items()
              if not k.startswith("_") and type(v).__name__ == "module"}
    return sorted(set(__all__) | loaded)
