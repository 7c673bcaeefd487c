"""Training spiking networks with surrogate gradients: the Python stage and ``snnconv train``.

:func:`train_synnet` fits a temporal network (a :class:`~snnconv.networks.SynNet`)
on event inputs ``(N, T, channels)``; :func:`snnconv.training.run.train`
is the whole ``snnconv train CONFIG`` stage (data, front end, training,
Xylo deployment, run folder).
"""
from .fit import DEFAULTS, train_synnet

__all__ = ["train_synnet", "DEFAULTS"]
