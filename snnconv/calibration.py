"""Post-conversion calibration: a converted network made accurate in few time steps.

The rate code is exact in the limit of many steps and loses accuracy in few:
each layer's spike rate after ``T`` steps misses its ANN activation by a
quantisation and a timing error, and deeper layers inherit the errors of
earlier ones. Calibration (after Li et al. 2021, "A free lunch from ANN:
towards efficient, accurate spiking neural networks calibration") measures
each layer's error on unlabelled data, layer by layer in network order with
the earlier layers already calibrated, and corrects it:

* ``light``: the error's mean per channel, through the layer's bias;
* ``advanced``: that, then the layer's weights and its neurons' initial
  membrane potentials fitted by a few gradient steps against the ANN's
  activations.

::

    graph = snnconv.normalize(snnconv.parse(model), x_norm, method="t_aware", num_steps=16,
                              v_init=0.5)
    snn = snnconv.convert(graph, v_init=0.5)
    snn = snnconv.calibrate(snn, graph, x_norm[:1000], num_steps=16, method="light")

The backend that runs the network does the work
(:meth:`snnconv.simulators.Simulator.calibrate`); the INI simulator
calibrates rate-coded networks (:mod:`snnconv.simulators.ini.calibration`,
where the method is described in full). A calibrated network saves and
loads like any other; layers whose initial potentials were fitted keep one
per neuron.
"""
from __future__ import annotations

from .choices import CALIBRATION_METHODS
from .errors import ConfigError


def calibrate(snn, graph, x, num_steps: int, method: str = "light", **options):
    """A calibrated copy of the converted network ``snn``.

    ``graph``: the normalised graph ``snn`` was converted from (its ANN gives
    the targets); ``x``: unlabelled inputs, scaled as the ANN expects them (an
    array or a re-iterable of batches; about a thousand samples is plenty);
    ``num_steps``: the number of time steps the network will run for;
    ``method``: ``"light"`` or ``"advanced"`` (``"none"`` returns ``snn``).
    ``options`` go to the backend (INI: ``batch_size``, ``iterations``,
    ``learning_rate``).
    """
    if method not in CALIBRATION_METHODS:
        raise ConfigError(f"calibration.method = {method}: expected one of "
                          f"{', '.join(CALIBRATION_METHODS)}")
    if method == "none":
        return snn
    from .simulators import simulator_for
    return simulator_for(snn).calibrate(snn, graph, x, int(num_steps), method, **options)


__all__ = ["calibrate"]
