"""NIR (Neuromorphic Intermediate Representation) export and import.

NIR (PyPI ``nir``, an optional extra: ``pip install snnconv[nir]``) is the
graph format that Norse, snnTorch, Rockpool, Sinabs, Lava-DL, SpiNNaker2 and
Nengo read and write. :func:`export_nir` writes a converted SNN (a Keras
model of Spike* layers) as a NIR graph; :func:`import_nir` reads a NIR graph
back into a Spike* model that snnconv's simulators run and evaluate.

What the graph holds
--------------------

========================== ==============================================
snnconv layer              NIR nodes
========================== ==============================================
``SpikeInput``             ``Input`` (shape ``(C, H, W)`` or ``(N,)``)
``SpikeDense``             ``Affine`` (``weight (out, in)``, ``bias``)
``SpikeConv2D``            ``Conv2d`` (``weight (C_out, C_in, kH, kW)``)
``SpikeDepthwiseConv2D``   ``Conv2d`` with ``groups = C_in``
                           (``weight (C_in * multiplier, 1, kH, kW)``); with
                           nir 1.0.8, whose type check rejects ``groups > 1``,
                           the equal block-diagonal ``groups = 1`` weight and
                           ``depthwise_groups`` in the node's metadata
``SpikeAveragePooling2D``  ``SumPool2d`` (no padding); its ``1/k²`` goes into
                           the next weight layer. ``avg_pool="avg"``:
                           ``AvgPool2d``
``SpikeGlobalAverage...``  ``SumPool2d`` (or ``AvgPool2d``) over the whole
                           map + ``Flatten``
``SpikeFlatten``           ``Flatten`` (``start_dim=0``: shapes have no
                           batch dimension)
``SpikeZeroPadding2D``     no node: the padding of the next ``Conv2d``
``SpikeConcatenate``       no node: the next weight layer is split by input
                           channels into one node per branch, all feeding
                           the same node (NIR sums the edges into a node)
``SpikeAdd``               no node: its inputs' nodes all feed the next
                           node; the coefficients go into their weights, or
                           into a 1x1 ``Conv2d`` (``Affine``) named
                           ``<neurons>_in<k>`` where the input is spikes
neurons of a layer         ``IF`` (or ``LIF`` with a leak), a second node
                           named ``<layer>_if`` / ``<layer>_lif``, with
                           ``r = 1``
readout (softmax/linear)   the ``Affine`` feeds ``Output`` directly
========================== ==============================================

A ``same`` convolution whose padding is larger after than before (Keras at
stride 2 on an even map, or a ``ZeroPadding2D`` folded into it) is written
with NIR's symmetric padding of the larger side and zero taps in front of its
kernel: the windows read the same inputs.

NIR is channels-first: conv weights are transposed from Keras's
``(kH, kW, C_in, C_out)``, dense weights from ``(in, out)``, and a dense
layer after a ``Flatten`` gets its input columns reordered from the
channels-last order in which snnconv flattens to NIR's ``(C, H, W)`` order.
Shapes never include the batch dimension.

Time and neurons
----------------

The graph's time unit is snnconv's: milliseconds, with the step ``dt``
recorded in the graph's metadata. A NIR neuron is a continuous-time system;
stepped with forward Euler at step ``dt`` it reproduces snnconv's update:

* ``IF``: ``dv/dt = r * I``. Euler: ``v += dt * r * I``; snnconv:
  ``v += dt * I``. So ``r = 1``, ``v_threshold = v_thresh``. A normalisation
  gain of a neuron layer without weights goes into the weights that feed it
  (``r`` only where it varies within a channel).
* ``LIF``: ``tau dv/dt = (v_leak - v) + r * I``. Euler:
  ``v = (1 - dt/tau) v + (dt/tau) r I``; snnconv:
  ``v = exp(-dt/tau_mem) v + dt I``. So ``tau = dt / (1 - exp(-dt/tau_mem))``,
  ``v_leak = 0``, ``r = 1`` and the weights (and biases) that feed it times
  ``tau``; ``tau_mem`` itself is kept in the node's metadata.
* ``r = 1`` and a reset to 0 (``reset="zero"``) are what Norse honours: its
  ``from_nir`` ignores ``r`` and ``v_reset`` (and integrates ``IF`` as
  ``v += I``, so it runs graphs with ``dt = 1``).
* A NIR spike is 1; an snnconv spike carries ``v_thresh / dt`` (the layer's
  ``spike_amplitude``). The amplitude is moved into the weights of the next
  weight layer: ``W_nir = W * v_thresh / dt``; biases are unchanged.
* The input: ``Input`` receives the analog input, one constant current per
  time step (snnconv's default). Poisson input has no NIR node.
* The readout: snnconv's softmax or linear output layer has no neurons; its
  input current is summed over the steps and the class is the argmax of
  that sum. Exported, its ``Affine`` feeds ``Output``: the Output signal at
  each step equals snnconv's output current, and a consumer sums it over
  time (softmax is not applied; it does not change the argmax). The factor
  between snnconv's output signal and NIR's is the metadata's
  ``output_scale`` (1 for such a readout).

NIR neurons fire when ``v > v_threshold`` (strict), emit one spike per
step at most, reset to ``v_reset``, have no refractory period and start at
0. snnconv's IF neuron does all of that with ``threshold_mode="strict"``
and ``reset="to_value"`` (or ``"zero"``), the *NIR mode*
(``snnconv.convert(graph, threshold_mode="strict", reset="zero")``).
What NIR cannot express is refused with an :class:`~snnconv.errors.ExportError`
naming the layer and feature, or, with ``approximate=True`` (CLI
``--approximate``), exported as follows and listed in the metadata's
``approximations``:

=========================== ============================================
feature                     with ``approximate=True``
=========================== ============================================
reset by subtraction        reset to 0 (the residue above threshold is lost)
``v >= v_thresh`` (default) ``v > v_threshold`` (differs only when ``v``
                            lands exactly on the threshold)
``max_spikes_per_dt > 1``   one spike per step at most
refractory period           dropped
``v_init != 0``             dropped (NIR neurons start at 0)
Poisson input               ``Input`` expects the Poisson spikes (0/1;
                            probability ``x * input_rate * dt / 1000`` per
                            step); the first weights carry their amplitude
=========================== ============================================

Never exported: TTFS codes (NIR has no time-to-first-spike neuron), spiking
max pooling (convert with ``max2avg_pool``), reshapes other than flattening,
pooling with padding, zero padding before anything but a convolution, padding
larger before than after, and concatenation along an axis other than the
channels.

Exported and imported again, a chain spikes exactly as before; its weights
come back bit for bit when ``v_thresh / dt`` and the pooling windows' sizes
are powers of two (the defaults), else up to float32 rounding. Branched
graphs (several edges into a node) are not imported (see Import).

The export checks the graph before it returns: edges name existing nodes,
every shape chains (NIR's type check, and snnconv's own shapes), and
``nir.read`` of the written file succeeds with type checking.

Import
------

:func:`import_nir` accepts graphs of ``Input, Output, Affine, Linear,
Conv2d, AvgPool2d, SumPool2d, Flatten, IF, LIF`` and an ``I`` (integrator)
right before ``Output``, in a chain (one input per node, no recurrence; a
leading batch dimension of 1 on ``Input``/``Output``, as ``norse.torch.to_nir``
writes it, is dropped). It
inverts the mapping above, with NIR's semantics (strict threshold, reset to
``v_reset``, one spike per step): per-neuron ``r`` and thresholds are folded
into the weights (or a gain), ``Conv2d`` padding becomes ``same`` or a
``ZeroPadding2D`` before a ``valid`` convolution. The step ``dt`` is the
metadata's (graphs written by snnconv) or the caller's (default 1). Any other
node is refused with its name and type.
"""
from __future__ import annotations

from .common import NIR_INSTALL_HINT, describe_nir, read_nir, require_nir


def to_nir(snn, approximate: bool = False, avg_pool: str = "sum"):
    """The NIR graph (a ``nir.NIRGraph``) of a converted SNN (a model or a ``.keras`` path).
    ``avg_pool``: ``"sum"`` (``SumPool2d``, the ``1/k²`` folded into the next weights) or
    ``"avg"`` (``AvgPool2d``)."""
    from .export import to_nir as _to_nir
    return _to_nir(snn, approximate=approximate, avg_pool=avg_pool)


def export_nir(snn, path, approximate: bool = False, avg_pool: str = "sum"):
    """Write the converted SNN ``snn`` (a Spike* model or a ``.keras`` path) to the NIR
    file ``path``; validate it and return the ``nir.NIRGraph``."""
    from .export import export_nir as _export_nir
    return _export_nir(snn, path, approximate=approximate, avg_pool=avg_pool)


def from_nir(graph, dt: float | None = None):
    """A NIR graph (a ``nir.NIRGraph`` or a path) as snnconv's IR plus neuron settings
    (a :class:`snnconv.nirio.importer.NirImport`)."""
    from .importer import from_nir as _from_nir
    return _from_nir(graph, dt=dt)


def import_nir(graph, dt: float | None = None):
    """A NIR graph (a path or a ``nir.NIRGraph``) as a Spike* Keras model with NIR's
    neuron semantics, ready for :func:`snnconv.evaluate` and ``snn.save``."""
    from .importer import import_nir as _import_nir
    return _import_nir(graph, dt=dt)


__all__ = ["export_nir", "to_nir", "import_nir", "from_nir", "read_nir", "describe_nir",
           "require_nir", "NIR_INSTALL_HINT"]
