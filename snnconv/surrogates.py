"""Surrogate spike functions: a hard spike forward, a smooth gradient backward.

Every surrogate computes the same forward pass, the number of spikes a
neuron emits in one step::

    n = floor(v / θ)  where v >= θ, else 0;   n = min(n, max_spikes)

(with ``max_spikes = 1`` this is the Heaviside step ``v >= θ``). They
differ only in the gradient that stands in for the step's, which is zero
almost everywhere:

======================  ============================================  ======================
name                    ∂n/∂v                                         ∂n/∂θ
======================  ============================================  ======================
``step_pwl``            ``1/θ`` where ``v >= θ - window``, else 0     ``-v/θ²`` there
``periodic_exponential`` ``pdf`` (below)                              ``-pdf · v/θ``
``fast_sigmoid``        ``1 / (1 + slope·|v - θ|)²`` (SuperSpike)     ``-∂n/∂v``
``arctan``              ``(α/2) / (1 + (π/2 · α · (v - θ))²)``        ``-∂n/∂v``
``straight_through``    ``1/θ``                                       ``-v/θ²``
======================  ============================================  ======================

``periodic_exponential`` (Rockpool's default for SynNet) has a bump of
width ``window`` at every multiple of the threshold, so that each further
spike of a multi-spike neuron gets a gradient too: with ``vs = v - θ/2``,
``k = min(floor(vs/θ), max_spikes - 1)``, ``vn = vs`` where ``v < θ`` else
``vs - k·θ``, ``pdf = exp(-|vn - θ/2| / window) / θ``.

``step_pwl`` and ``periodic_exponential`` are Rockpool's, ``fast_sigmoid``
and ``arctan`` snnTorch's and SpikingJelly's single-spike ones. A surrogate
is a small serializable object; :func:`get_surrogate` accepts one, its
name, or its ``get_config()``-style dict.
"""
from __future__ import annotations

import math

import keras
from keras import ops

__all__ = ["Surrogate", "StepPWL", "PeriodicExponential", "FastSigmoid", "Arctan",
           "StraightThrough", "SURROGATES", "get_surrogate", "spike_count", "to_config"]


def spike_count(v, threshold, max_spikes):
    """The forward pass every surrogate shares (no gradient of its own)."""
    n = ops.where(v >= threshold, ops.floor(v / threshold), ops.zeros_like(v))
    return ops.minimum(n, ops.cast(max_spikes, v.dtype))


class Surrogate:
    """Base class: ``surrogate(v, threshold, max_spikes=1)`` -> spikes per step.

    Subclasses define :meth:`grads`, the pair ``(∂n/∂v, ∂n/∂θ)`` at ``v``.
    ``threshold`` broadcasts against ``v``; its gradient comes back summed to
    its own shape, so a per-neuron threshold variable trains as one would expect.
    """

    name = ""

    def __call__(self, v, threshold, max_spikes=1):
        v = ops.convert_to_tensor(v)
        threshold = ops.broadcast_to(ops.cast(threshold, v.dtype), ops.shape(v))
        max_spikes = float(max_spikes)

        @ops.custom_gradient
        def fire(v, threshold):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                dv, dth = self.grads(v, threshold, max_spikes)
                return upstream * dv, upstream * dth
            return self.forward(v, threshold, max_spikes), grad

        return fire(v, threshold)

    def forward(self, v, threshold, max_spikes):
        """The spikes per step: :func:`spike_count` for every surrogate here."""
        return spike_count(v, threshold, max_spikes)

    def grads(self, v, threshold, max_spikes):
        raise NotImplementedError

    def get_config(self) -> dict:
        return {}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def __eq__(self, other):
        return type(self) is type(other) and self.get_config() == other.get_config()

    def __hash__(self):
        return hash((type(self).__name__, tuple(sorted(self.get_config().items()))))


class _Windowed(Surrogate):
    def __init__(self, window: float = 0.5):
        if not window > 0:
            raise ValueError(f"window must be > 0, got {window!r}")
        self.window = float(window)

    def get_config(self):
        return {"window": self.window}


@keras.saving.register_keras_serializable(package="snnconv")
class StepPWL(_Windowed):
    """Rockpool's piece-wise linear surrogate: gradient ``1/θ`` from ``θ - window`` up."""

    name = "step_pwl"

    def grads(self, v, threshold, max_spikes):
        mask = ops.cast(v >= threshold - self.window, v.dtype)
        return mask / threshold, -mask * v / ops.square(threshold)


@keras.saving.register_keras_serializable(package="snnconv")
class PeriodicExponential(_Windowed):
    """Rockpool's periodic exponential surrogate: a bump at every multiple of ``θ``."""

    name = "periodic_exponential"

    def grads(self, v, threshold, max_spikes):
        vs = v - threshold / 2
        k = ops.minimum(ops.floor(vs / threshold), max_spikes - 1)
        vn = ops.where(v < threshold, vs, vs - k * threshold)
        pdf = ops.exp(-ops.abs(vn - threshold / 2) / self.window) / threshold
        return pdf, -pdf * v / threshold


@keras.saving.register_keras_serializable(package="snnconv")
class FastSigmoid(Surrogate):
    """SuperSpike / snnTorch's fast sigmoid: ``1 / (1 + slope |v - θ|)²``."""

    name = "fast_sigmoid"

    def __init__(self, slope: float = 25.0):
        if not slope > 0:
            raise ValueError(f"slope must be > 0, got {slope!r}")
        self.slope = float(slope)

    def grads(self, v, threshold, max_spikes):
        d = 1.0 / ops.square(1.0 + self.slope * ops.abs(v - threshold))
        return d, -d

    def get_config(self):
        return {"slope": self.slope}


@keras.saving.register_keras_serializable(package="snnconv")
class Arctan(Surrogate):
    """The arctan surrogate (snnTorch, SpikingJelly): ``(α/2) / (1 + (π/2 · α (v - θ))²)``."""

    name = "arctan"

    def __init__(self, alpha: float = 2.0):
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha!r}")
        self.alpha = float(alpha)

    def grads(self, v, threshold, max_spikes):
        x = math.pi / 2 * self.alpha * (v - threshold)
        d = (self.alpha / 2) / (1.0 + ops.square(x))
        return d, -d

    def get_config(self):
        return {"alpha": self.alpha}


@keras.saving.register_keras_serializable(package="snnconv")
class StraightThrough(Surrogate):
    """The gradient of ``v / θ`` everywhere (the spike count's linear trend)."""

    name = "straight_through"

    def grads(self, v, threshold, max_spikes):
        return ops.ones_like(v) / threshold, -v / ops.square(threshold)


SURROGATES = {cls.name: cls for cls in (StepPWL, PeriodicExponential, FastSigmoid, Arctan,
                                       StraightThrough)}


def get_surrogate(spec) -> Surrogate:
    """A surrogate from an instance, a name (``"step_pwl"``, ``"StepPWL"``, ...) or a
    dict ``{"name": ..., **parameters}`` (also Keras's ``{"class_name", "config"}``)."""
    if isinstance(spec, Surrogate):
        return spec
    if isinstance(spec, dict):
        spec = dict(spec)
        if "class_name" in spec:
            name, params = spec["class_name"], dict(spec.get("config") or {})
        else:
            name, params = spec.pop("name", None), spec
        return _lookup(name)(**params)
    if isinstance(spec, str):
        return _lookup(spec)()
    raise TypeError(f"a surrogate is a Surrogate, a name or a dict, not {type(spec).__name__}")


def _lookup(name) -> type[Surrogate]:
    key = str(name).lower()
    for cls in SURROGATES.values():
        if key in (cls.name, cls.__name__.lower()):
            return cls
    raise ValueError(f"unknown surrogate {name!r}; known: {', '.join(SURROGATES)}")


def to_config(surrogate: Surrogate) -> dict:
    """The plain dict :func:`get_surrogate` reads back (for layer configs)."""
    return {"name": surrogate.name, **surrogate.get_config()}
