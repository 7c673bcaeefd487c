"""Fine-tuning converted networks with surrogate gradients: the ANN's accuracy in few steps.

At 4 to 16 time steps a converted rate-coded network falls short of its ANN
even after calibration: the deeper layers fire one or two spikes per
neuron, and the timing errors of earlier layers compound. Training the
spiking network itself for the steps it will run closes the gap (hybrid
conversion, Rathi et al. 2020): backpropagation through time from the
converted weights, biases and initial potentials, each spike passing the
gradient of a surrogate spike function (:mod:`snnconv.surrogates`)::

    graph = snnconv.normalize(snnconv.parse(model), x_train[:1000])
    snn = snnconv.calibrate(snnconv.convert(graph), graph, x_train[:1000], num_steps=8)
    snn = snnconv.finetune(snn, x_train[:10000], y_train[:10000], num_steps=8)
    snnconv.evaluate(snn, x_test, y_test, num_steps=8)

The backend that runs the network does the work
(:meth:`snnconv.simulators.Simulator.finetune`); the INI simulator
fine-tunes rate-coded networks of IF/LIF neurons
(:mod:`snnconv.simulators.ini.finetune`, where the method is described).
A fine-tuned network is an ordinary converted network with per-neuron
initial potentials: it saves, loads and evaluates as any other.
:func:`to_graph` writes its weights and initial potentials back into the
graph it was converted from, which then converts into the same network on
Brian 2 (``snnconv.convert(to_graph(snn, graph), simulator="brian2")``).
"""
from __future__ import annotations

from . import defaults


def finetune(snn, x, y, num_steps: int, epochs: int = defaults.FINETUNE_EPOCHS,
             batch_size: int = defaults.FINETUNE_BATCH_SIZE,
             learning_rate: float = defaults.FINETUNE_LEARNING_RATE,
             surrogate=defaults.FINETUNE_SURROGATE, loss=None, **options):
    """A copy of the converted network ``snn`` fine-tuned for ``num_steps`` steps.

    ``x``, ``y``: labelled training samples (inputs scaled as the ANN expects
    them; integer labels or one-hot rows); a few thousand are enough.
    ``epochs``, ``batch_size``, ``learning_rate``: Adam's passes over them,
    samples per step and initial step size (decayed to zero, cosine).
    ``surrogate``: the spike gradient, a name of :data:`snnconv.surrogates.SURROGATES`,
    a :class:`~snnconv.surrogates.Surrogate` or its dict. ``loss``: a Keras loss on the
    output sequence ``(batch, T, classes)`` (default: cross-entropy of its mean
    over time). ``options`` go to the backend (INI: ``train_v_init``,
    ``validation_data``, ``seed``, ``progress``, ``jit_compile``, and
    ``teacher``, ``distillation``, ``temperature`` to distil the ANN: e.g.
    ``teacher=ann, distillation=0.5``).

    The figures of the run are on the result's ``finetune_history``
    (:class:`~snnconv.simulators.ini.finetune.FinetuneHistory`: loss and
    accuracy per epoch, seconds).
    """
    from .simulators import simulator_for
    tuned, history = simulator_for(snn).finetune(
        snn, x, y, int(num_steps), epochs=epochs, batch_size=batch_size,
        learning_rate=learning_rate, surrogate=surrogate, loss=loss, **options)
    tuned.finetune_history = history
    return tuned


def to_graph(snn, graph):
    """``graph`` with the weights and per-neuron initial potentials of the
    fine-tuned ``snn`` (see :func:`snnconv.simulators.ini.finetune.to_graph`)."""
    from .simulators.ini.finetune import to_graph as ini_to_graph
    return ini_to_graph(snn, graph)


__all__ = ["finetune", "to_graph"]
