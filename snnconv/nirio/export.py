"""A converted SNN (Spike* Keras model) -> a NIR graph. The mapping is described in
:mod:`snnconv.nirio`.

The layers are walked in order. Each layer's output is a *signal*: snnconv's
frame shape and the NIR nodes whose outputs, scaled and placed, add up to it
(:class:`_Term`). A weight layer absorbs the scales of its input's terms and
writes one weight node per term (a concatenation becomes several nodes into
one neuron node); routing layers (``Concatenate``, ``Add``,
``ZeroPadding2D``) only move, scale or pad the terms; neurons sum their terms
through several edges into one node. Factors land in weights, so every
neuron node has ``r = 1``.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path

import numpy as np

from ..errors import ExportError
from ..files import atomic_path, unique_name
from .common import nir_shape, require_nir, same_padding, to_nir_layout

# features NIR cannot express that approximate=True drops or changes, with what it does
APPROXIMATIONS = {
    "reset by subtraction": "reset to 0",
    "threshold v >= v_thresh": "fires when v > v_threshold",
    "several spikes per step": "one spike per step at most (a bursting neuron, "
                               "cell.burst = k: one spike of k times its threshold, "
                               "the neuron it stands for)",
    "refractory period": "dropped",
    "initial potential v_init": "dropped (starts at 0)",
    "Poisson input": "Input expects the Poisson spikes (0/1); the first weights carry "
                     "their amplitude 1000 / (input_rate * dt)",
}
# how to avoid each of them when converting
REMEDIES = {
    "reset by subtraction": "convert with reset='zero' or 'to_value'",
    "threshold v >= v_thresh": "convert with threshold_mode='strict'",
    "several spikes per step": "convert with max_spikes_per_dt=1 and burst=1",
    "refractory period": "convert with tau_refrac=0",
    "initial potential v_init": "convert with v_init=0",
    "Poisson input": "convert with poisson_input=False",
}


AVG_POOL_NODES = ("sum", "avg")


@dataclasses.dataclass
class _Term:
    """One NIR node's contribution to an snnconv signal.

    snnconv's signal is the sum of its terms, each placed into the signal's
    frame: an image term covers channels ``c0 .. c0 + m`` of the map (all
    positions), a vector term covers the elements ``index`` (element ``j`` of
    the node's output is element ``index[j]`` of snnconv's vector). ``scale``
    (per channel of an image term, per element of a vector term) is the factor
    by which snnconv's signal is larger than the node's output: a spike's
    amplitude ``v_thresh/dt`` against NIR's 1, ``1/k²`` after a sum pooling, an
    ``Add``'s coefficient. ``pad``: zero padding of snnconv's map not yet
    applied (``((top, bottom), (left, right))``), folded into the next
    convolution. ``owned``: the node is a weight node whose output only this
    term uses, so factors may be folded into its weights.
    """

    node: str
    scale: np.ndarray
    c0: int = 0
    index: np.ndarray | None = None
    pad: tuple = ((0, 0), (0, 0))
    owned: bool = False

    def moved(self, **changes) -> "_Term":
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass
class _Signal:
    shape: tuple[int, ...]         # snnconv's frame shape (channels last)
    terms: list[_Term]


_NO_PAD = ((0, 0), (0, 0))


class _Builder:
    def __init__(self, nir, approximate: bool, avg_pool: str):
        self.nir = nir
        self.approximate = approximate
        self.avg_pool = avg_pool
        self.nodes: dict = {}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}   # expected NIR output shape per node
        self.problems: dict[str, list[str]] = {}       # feature -> layers

    def add(self, name, node, srcs, nir_out_shape):
        if name in self.nodes:
            raise ExportError(f"NIR node name {name!r} is used twice; rename the layer")
        self.nodes[name] = node
        self.shapes[name] = tuple(int(d) for d in nir_out_shape)
        for src in ([srcs] if isinstance(srcs, str) else srcs or []):
            self.edges.append((src, name))
        return name

    def unique(self, name: str) -> str:
        return unique_name(name, self.nodes)

    def problem(self, feature: str, layer: str):
        self.problems.setdefault(feature, []).append(layer)


def to_nir(snn, approximate: bool = False, avg_pool: str = "sum"):
    """The ``nir.NIRGraph`` of ``snn`` (a Spike* model or a path to a ``.keras`` SNN).

    ``avg_pool="sum"`` (default) writes average pooling as ``SumPool2d`` with
    its ``1/k²`` folded into the next weight layer (Norse, Lava, sinabs,
    SpiNNaker2 and Spyx read ``SumPool2d``); ``"avg"`` writes ``AvgPool2d``.
    Raises :class:`ExportError` for what NIR cannot express (see
    :mod:`snnconv.nirio`); ``approximate=True`` exports the approximable
    features with the approximations listed in the graph's metadata.
    """
    nir = require_nir()
    import keras

    from ..layers import (SpikeAdd, SpikeAveragePooling2D, SpikeConcatenate, SpikeConv2D,
                          SpikeDense, SpikeDepthwiseConv2D, SpikeFlatten,
                          SpikeGlobalAveragePooling2D, SpikeIdentity, SpikeInput, SpikeLayer,
                          SpikeReshape, SpikeZeroPadding2D)
    from ..simulators.ini import layer_inputs

    if avg_pool not in AVG_POOL_NODES:
        raise ExportError(f"avg_pool must be one of {AVG_POOL_NODES}, got {avg_pool!r}")
    snn = _load(snn)
    if not isinstance(snn, keras.Model):
        raise ExportError("NIR export takes a converted Spike* Keras model, got "
                          f"{type(snn).__name__}")
    b = _Builder(nir, approximate, avg_pool)
    signals: dict[str, _Signal] = {}
    raw_input = snn.layers[0].name
    first_neuron = None
    inp_layer = None
    order = layer_inputs(snn)
    consumers: dict[str, int] = {}
    for _, ins in order:
        for name in ins:
            consumers[name] = consumers.get(name, 0) + 1
    for layer, ins in order:
        if not isinstance(layer, SpikeLayer):
            continue
        where = f"layer {layer.name!r} ({type(layer).__name__})"
        if layer.spike_code != "rate":
            raise ExportError(f"{where}: spike code {layer.spike_code!r}: NIR has no "
                              "time-to-first-spike neurons; only rate-coded SNNs export to NIR")
        if isinstance(layer, SpikeInput):
            inp_layer = layer
            shape = tuple(int(d) for d in snn.inputs[0].shape[2:])
            signals[layer.name] = _input(b, layer, raw_input, shape, where)
            continue
        srcs = [signals[name] for name in ins]
        out_shape = tuple(int(d) for d in layer.output.shape[2:])
        if layer.gain is not None and not layer.spiking:
            raise ExportError(f"{where}: a gain on a layer without neurons has no NIR node")
        if not isinstance(layer, (SpikeAdd, SpikeConcatenate)) and len(srcs) != 1:
            raise ExportError(f"{where}: a layer with {len(srcs)} inputs")
        if isinstance(layer, SpikeDense):
            sig = _dense(b, layer, srcs[0], where)
        elif isinstance(layer, (SpikeConv2D, SpikeDepthwiseConv2D)):
            sig = _conv(b, layer, srcs[0], out_shape, where)
        elif isinstance(layer, SpikeAveragePooling2D):
            sig = _avg_pool(b, layer, srcs[0], out_shape, where)
        elif isinstance(layer, SpikeGlobalAveragePooling2D):
            sig = _global_avg_pool(b, layer, srcs[0], where)
        elif isinstance(layer, (SpikeFlatten, SpikeReshape)):
            if isinstance(layer, SpikeReshape) and len(layer.target_shape) != 1:
                raise ExportError(f"{where}: a reshape to {layer.target_shape}; NIR has no "
                                  "reshape node (only flattening exports)")
            sig = _flatten(b, layer, srcs[0], where)
        elif isinstance(layer, SpikeZeroPadding2D):
            sig = _zero_padding(layer, srcs[0], out_shape)
        elif isinstance(layer, SpikeConcatenate):
            sig = _concatenate(layer, srcs, out_shape, where)
        elif isinstance(layer, SpikeAdd):
            sig = _add(layer, srcs, out_shape, where)
        elif isinstance(layer, SpikeIdentity):
            sig = srcs[0]
        else:
            raise ExportError(f"{where}: {_NO_NODE.get(type(layer).__name__, 'no NIR node')}")
        if layer.spiking:
            sig = _neurons(b, layer, sig, where)
            first_neuron = first_neuron or layer.neuron
        if consumers.get(layer.name, 0) > 1:     # several readers: nothing folds into it
            sig = _Signal(sig.shape, [t.moved(owned=False) for t in sig.terms])
        signals[layer.name] = sig
    out_layer = snn.output._keras_history[0].name
    final = signals[out_layer]
    out_name = unique_name("output", b.nodes)
    srcs, output_scale = _readout(b, out_name, final, f"the output of layer {out_layer!r}")
    b.add(out_name, nir.Output(output_type=np.array(nir_shape(final.shape))), srcs,
          nir_shape(final.shape))
    _raise_problems(b)
    meta = _metadata(snn, inp_layer, first_neuron, output_scale, b)
    return _graph(b, meta)


_NO_NODE = {
    "SpikeMaxPooling2D": "spiking max pooling has no NIR node; convert with max2avg_pool=True "
                         "(config conversion.max2avg_pool = true)",
    "SpikeCropping2D": "NIR has no cropping node (Cropping1D/2D); export a network without "
                       "cropping",
    "SpikeUpSampling2D": "NIR has no up-sampling node (UpSampling1D/2D, or the spread input "
                         "of a Conv2DTranspose); export a network without them",
    "SpikePermute": "NIR has no permute node (Permute); export a network without it",
}


def export_nir(snn, path, approximate: bool = False, avg_pool: str = "sum"):
    """Write ``snn`` as the NIR file ``path`` and check that ``nir.read`` reads it back
    with type checking. Returns the graph. ``avg_pool``: see :func:`to_nir`."""
    nir = require_nir()
    graph = to_nir(snn, approximate=approximate, avg_pool=avg_pool)
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {path.parent} does not exist")
    # write beside the target and move into place only when it reads back
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
        _check_readback(nir, tmp, graph)
    return graph


# ----------------------------------------------------------------------------- layers

def _load(snn):
    if isinstance(snn, (str, os.PathLike)):
        path = Path(snn)
        if path.suffix == ".npz":
            raise ExportError(f"{path}: a Xylo specification; NIR export reads a .keras SNN")
        from ..layers.io import load_snn
        return load_snn(path)
    return snn


def _term_size(b: _Builder, t: _Term) -> int:
    return len(t.index) if t.index is not None else b.shapes[t.node][0]


def _covers_all(b: _Builder, t: _Term, shape) -> bool:
    """Whether the term's node output is snnconv's whole frame in NIR's layout."""
    if len(shape) == 3:
        return t.c0 == 0 and b.shapes[t.node] == nir_shape(shape)
    return len(t.index) == shape[0] and np.array_equal(t.index, np.arange(shape[0]))


def _input(b: _Builder, layer, name: str, shape, where) -> _Signal:
    nshape = nir_shape(shape)
    if nshape is None:
        raise ExportError(f"{where}: input shape {shape}; NIR export supports vectors and "
                          "(height, width, channels) images")
    b.add(name, b.nir.Input(input_type=np.array(nshape)), None, nshape)
    scale = 1.0
    if layer.poisson:
        b.problem("Poisson input", layer.name)
        scale = float(layer.spike_amplitude)
    return _Signal(tuple(shape), [_image_or_vector(name, shape, scale)])


def _image_or_vector(node, shape, scale=1.0, owned=False) -> _Term:
    n = shape[-1]
    index = None if len(shape) == 3 else np.arange(n)
    return _Term(node, np.full(n, float(scale)), 0, index, _NO_PAD, owned)


def _part_name(b: _Builder, layer, k: int) -> str:
    return layer.name if k == 0 else b.unique(f"{layer.name}_part{k}")


def _dense(b: _Builder, layer, sig: _Signal, where) -> _Signal:
    if len(sig.shape) != 1:
        raise ExportError(f"{where}: a dense layer on a {len(sig.shape)}-D frame {sig.shape}; "
                          "NIR's Affine takes vectors (flatten first)")
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    bias = np.asarray(layer.bias.numpy(), np.float32)
    terms = []
    for k, t in enumerate(sig.terms):
        _no_pad(t, where)
        weight = kernel[t.index, :].T * t.scale[None, :]           # (units, m)
        name = _part_name(b, layer, k)
        b.add(name, b.nir.Affine(weight=weight.astype(np.float32),
                                 bias=bias if k == 0 else np.zeros_like(bias)),
              t.node, (layer.units,))
        terms.append(_image_or_vector(name, (layer.units,), owned=True))
    return _Signal((layer.units,), terms)


def _conv(b: _Builder, layer, sig: _Signal, out_shape, where) -> _Signal:
    from ..layers import SpikeDepthwiseConv2D
    if len(sig.shape) != 3:
        raise ExportError(f"{where}: a convolution of a {len(sig.shape)}-D frame {sig.shape}")
    height, width, channels = sig.shape
    kernel = np.asarray(layer.kernel.numpy(), np.float64)
    kh, kw = layer.kernel_size
    bias = np.asarray(layer.bias.numpy(), np.float32)
    depthwise = isinstance(layer, SpikeDepthwiseConv2D)
    cout = out_shape[2]
    terms = []
    for k, t in enumerate(sig.terms):
        m = _term_size(b, t)
        meta = {}
        groups = 1
        if depthwise:
            mult = layer.depth_multiplier
            grouped = (kernel[:, :, t.c0:t.c0 + m, :] * t.scale[None, None, :, None]) \
                .transpose(2, 3, 0, 1).reshape(m * mult, 1, kh, kw)
            if m == channels and _types_grouped_conv(b.nir):
                weight, groups = grouped, channels
            else:
                # groups=1: output channel c*mult + i reads input channel c only
                weight = np.zeros((cout, m, kh, kw))
                for i in range(m):
                    c = t.c0 + i
                    weight[c * mult:(c + 1) * mult, i] = grouped[i * mult:(i + 1) * mult, 0]
                if m == channels:
                    meta = {"depthwise_groups": channels}
        else:
            weight = (kernel[:, :, t.c0:t.c0 + m, :] * t.scale[None, None, :, None]) \
                .transpose(3, 2, 0, 1)
        weight, padding = _conv_padding(layer, (height, width), t.pad, weight, where)
        if weight.shape[2] != weight.shape[3] and not _types_nonsquare_conv(b.nir):
            raise ExportError(f"{where}: a {weight.shape[2]}x{weight.shape[3]} kernel; this nir "
                              f"(version {getattr(b.nir, '__version__', '?')}) computes Conv2d "
                              "shapes for square kernels only, so the graph would not "
                              "type-check")
        (pt, pb), (pl, pr) = t.pad
        name = _part_name(b, layer, k)
        node = b.nir.Conv2d(input_shape=(height - pt - pb, width - pl - pr),
                            weight=np.ascontiguousarray(weight, np.float32),
                            stride=tuple(layer.strides), padding=padding,
                            dilation=tuple(layer.dilation_rate), groups=groups,
                            bias=bias if k == 0 else np.zeros_like(bias), metadata=meta)
        b.add(name, node, t.node, nir_shape(out_shape))
        terms.append(_image_or_vector(name, out_shape, owned=True))
    return _Signal(out_shape, terms)


def _types_grouped_conv(nir) -> bool:
    """Whether this nir's Conv2d gives a grouped convolution the right input channels
    (nir 1.0.8 takes them from ``weight.shape[1]``, which is ``C_in / groups``, so a
    graph with ``groups > 1`` fails ``nir.read``'s type check)."""
    probe = nir.Conv2d(input_shape=(1, 1), weight=np.ones((2, 1, 1, 1), np.float32), stride=1,
                       padding=0, dilation=1, groups=2, bias=np.zeros(2, np.float32))
    return int(np.asarray(probe.input_type["input"])[0]) == 2


def _types_nonsquare_conv(nir) -> bool:
    """Whether this nir's Conv2d computes the output shape of a non-square kernel
    (nir 1.0.8 takes ``weight.shape[2]`` as the kernel size of both axes)."""
    probe = nir.Conv2d(input_shape=(3, 3), weight=np.ones((1, 1, 3, 1), np.float32), stride=1,
                       padding=0, dilation=1, groups=1, bias=np.zeros(1, np.float32))
    return tuple(int(d) for d in np.asarray(probe.output_type["output"])) == (1, 1, 3)


def block_diagonal(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped convolution's ``(C_out, C_in/groups, kH, kW)`` weight as the equal
    ``groups=1`` weight ``(C_out, C_in, kH, kW)``: zero outside each group's block."""
    cout, cin_g, kh, kw = weight.shape
    per_out = cout // groups
    full = np.zeros((cout, cin_g * groups, kh, kw), weight.dtype)
    for g in range(groups):
        full[g * per_out:(g + 1) * per_out, g * cin_g:(g + 1) * cin_g] = \
            weight[g * per_out:(g + 1) * per_out]
    return full


def _conv_padding(layer, padded, pending, weight, where):
    """NIR's symmetric ``padding`` (one number per axis) for a convolution whose input was
    zero-padded by ``pending`` ((top, bottom), (left, right)) and that pads itself like
    Keras (``same``/``valid``) on the ``padded`` size; and the weight, with zero taps
    put before the kernel where the padding after exceeds the padding before (a window
    that starts ``z`` rows earlier with ``z`` zero rows in front reads the same inputs):
    ``(before, after)`` becomes ``after`` on both sides."""
    pads = []
    for axis in range(2):
        own = (0, 0) if layer.padding == "valid" else same_padding(
            padded[axis], layer.kernel_size[axis], layer.strides[axis],
            layer.dilation_rate[axis])
        pads.append((pending[axis][0] + own[0], pending[axis][1] + own[1]))
    out = []
    for axis, (before, after) in enumerate(pads):
        dilation = layer.dilation_rate[axis]
        extra = after - before
        if extra < 0 or extra % dilation:
            raise ExportError(f"{where}: zero padding {pads} ((before, after) per axis) "
                              "cannot be written as NIR's symmetric Conv2d padding")
        if extra:
            z = extra // dilation
            widths = [(0, 0)] * 4
            widths[2 + axis] = (z, 0)
            weight = np.pad(weight, widths)
        out.append(after)
    return weight, tuple(out)


def _pool_params(layer, spatial, where):
    if layer.padding == "same":
        pads = [same_padding(spatial[i], layer.pool_size[i], layer.strides[i]) for i in range(2)]
        if any(p != (0, 0) for p in pads):
            raise ExportError(f"{where}: 'same' pooling pads the map {pads}; NIR's pooling "
                              "padding counts zeros in the average, Keras's does not")
    return np.array(layer.pool_size), np.array(layer.strides), np.array([0, 0])


def _avg_pool(b: _Builder, layer, sig: _Signal, out_shape, where) -> _Signal:
    kernel, stride, padding = _pool_params(layer, sig.shape[:2], where)
    summed = b.avg_pool == "sum"
    kind = b.nir.SumPool2d if summed else b.nir.AvgPool2d
    terms = []
    for k, t in enumerate(sig.terms):
        _no_pad(t, where)
        name = _part_name(b, layer, k)
        b.add(name, kind(kernel_size=kernel, stride=stride, padding=padding), t.node,
              (_term_size(b, t),) + tuple(out_shape[:2]))
        # snnconv averages: its signal is the sum / k^2, which the next weights absorb
        scale = t.scale / float(np.prod(kernel)) if summed else t.scale
        terms.append(t.moved(node=name, scale=scale, owned=False))
    return _Signal(out_shape, terms)


def _global_avg_pool(b: _Builder, layer, sig: _Signal, where) -> _Signal:
    h, w, _ = sig.shape
    summed = b.avg_pool == "sum"
    kind = b.nir.SumPool2d if summed else b.nir.AvgPool2d
    terms = []
    for k, t in enumerate(sig.terms):
        _no_pad(t, where)
        m = _term_size(b, t)
        pool = b.add(b.unique(f"{_part_name(b, layer, k)}_pool"),
                     kind(kernel_size=np.array([h, w]), stride=np.array([h, w]),
                          padding=np.array([0, 0])), t.node, (m, 1, 1))
        name = _part_name(b, layer, k)
        b.add(name, b.nir.Flatten(input_type=np.array([m, 1, 1]), start_dim=0, end_dim=-1),
              pool, (m,))
        scale = t.scale / float(h * w) if summed else t.scale
        terms.append(_Term(name, scale, 0, np.arange(t.c0, t.c0 + m)))
    return _Signal((sig.shape[2],), terms)


def _flatten(b: _Builder, layer, sig: _Signal, where) -> _Signal:
    if len(sig.shape) == 1:
        return sig
    if len(sig.shape) != 3:
        raise ExportError(f"{where}: flattening a {len(sig.shape)}-D frame {sig.shape}")
    h, w, c = sig.shape
    ours = np.arange(h * w * c).reshape(h, w, c)
    terms = []
    for k, t in enumerate(sig.terms):
        _no_pad(t, where)
        m = _term_size(b, t)
        name = _part_name(b, layer, k)
        b.add(name, b.nir.Flatten(input_type=np.array((m, h, w)), start_dim=0, end_dim=-1),
              t.node, (m * h * w,))
        # NIR flattens (c, h, w); element j of the node's output is ours[h, w, c0 + c]
        index = ours[:, :, t.c0:t.c0 + m].transpose(2, 0, 1).ravel()
        terms.append(_Term(name, np.repeat(t.scale, h * w), 0, index))
    return _Signal((h * w * c,), terms)


def _zero_padding(layer, sig: _Signal, out_shape) -> _Signal:
    (t0, b0), (l0, r0) = layer.padding
    terms = [t.moved(pad=((t.pad[0][0] + t0, t.pad[0][1] + b0),
                          (t.pad[1][0] + l0, t.pad[1][1] + r0))) for t in sig.terms]
    return _Signal(out_shape, terms)


def _concatenate(layer, srcs: list[_Signal], out_shape, where) -> _Signal:
    if layer.axis != -1:
        raise ExportError(f"{where}: concatenation along axis {layer.axis}; NIR export "
                          "concatenates channels (the last axis) only")
    terms, offset = [], 0
    for sig in srcs:
        for t in sig.terms:
            if t.index is None:
                terms.append(t.moved(c0=t.c0 + offset))
            else:
                terms.append(t.moved(index=t.index + offset))
        offset += sig.shape[-1]
    return _Signal(out_shape, terms)


def _add(layer, srcs: list[_Signal], out_shape, where) -> _Signal:
    coefficients = layer.coefficients or [1.0] * len(srcs)
    terms = []
    for coef, sig in zip(coefficients, srcs):
        coef = np.broadcast_to(np.asarray(coef, np.float64), (out_shape[-1],))
        for t in sig.terms:
            part = coef[t.index] if t.index is not None else \
                coef[t.c0:t.c0 + len(t.scale)]
            terms.append(t.moved(scale=t.scale * part))
    return _Signal(out_shape, terms)


def _no_pad(t: _Term, where):
    if t.pad != _NO_PAD:
        raise ExportError(f"{where}: reads a zero-padded map {t.pad}; NIR has no padding "
                          "node, and snnconv folds zero padding into a following "
                          "convolution only")


def _materialize(b: _Builder, consumer: str, sig: _Signal, factor, where):
    """NIR nodes whose outputs, summed (several edges into one node), are ``factor``
    times snnconv's signal ``sig``: each term's scale times the factor is folded into
    the term's own weights when it owns them, else written as a 1x1 convolution (an
    ``Affine`` for vectors) that scales and places the term. ``factor``: None, or one
    value per channel (per element of a vector)."""
    shape = sig.shape
    n = shape[-1]
    factor = np.ones(n) if factor is None else np.asarray(factor, np.float64)
    nodes = [t.node for t in sig.terms]
    out = []
    for k, t in enumerate(sig.terms):
        _no_pad(t, where)
        m = _term_size(b, t)
        f = factor[t.index] if t.index is not None else factor[t.c0:t.c0 + m]
        need = t.scale * f
        whole = _covers_all(b, t, shape)
        if whole and np.all(need == 1) and t.node not in out:    # (one edge per pair)
            out.append(t.node)
        elif whole and t.owned and nodes.count(t.node) == 1:
            _fold_outputs(b, t.node, need)
            out.append(t.node)
        else:
            name = b.unique(f"{consumer}_in{k}" if len(sig.terms) > 1 else f"{consumer}_in")
            if len(shape) == 3:
                weight = np.zeros((n, m, 1, 1))
                weight[t.c0 + np.arange(m), np.arange(m), 0, 0] = need
                node = b.nir.Conv2d(input_shape=shape[:2], weight=weight.astype(np.float32),
                                    stride=1, padding=0, dilation=1, groups=1,
                                    bias=np.zeros(n, np.float32))
            else:
                weight = np.zeros((n, m))
                weight[t.index, np.arange(m)] = need
                node = b.nir.Affine(weight=weight.astype(np.float32), bias=np.zeros(n, np.float32))
            b.add(name, node, t.node, nir_shape(shape))
            out.append(name)
    return out


def _fold_outputs(b: _Builder, name: str, factor: np.ndarray):
    """Multiply the outputs of weight node ``name`` by ``factor`` (one per output channel)."""
    node = b.nodes[name]
    shape = (-1,) + (1,) * (np.ndim(node.weight) - 1)
    f = np.asarray(factor, np.float64)
    weight = (np.asarray(node.weight, np.float64) * f.reshape(shape)).astype(np.float32)
    bias = (np.asarray(node.bias, np.float64) * f).astype(np.float32)
    if isinstance(node, b.nir.Affine):
        new = b.nir.Affine(weight=weight, bias=bias, metadata=node.metadata)
    else:
        new = b.nir.Conv2d(input_shape=node.input_shape, weight=weight, stride=node.stride,
                           padding=node.padding, dilation=node.dilation, groups=node.groups,
                           bias=bias, metadata=node.metadata)
    b.nodes[name] = new


def _neurons(b: _Builder, layer, sig: _Signal, where) -> _Signal:
    """The layer's neurons: one ``IF``/``LIF`` node fed by every term of its current.

    The node's ``r`` is 1 (Norse ignores ``r``): snnconv's gain and, for ``LIF``,
    the ``tau`` of NIR's ``tau dv/dt = -v + r I`` go into the weights; a gain that
    differs across the positions of a channel stays in ``r``."""
    from ..neurons import IFNeuron
    neuron = layer.neuron
    if not isinstance(neuron, IFNeuron):
        raise ExportError(f"{where}: {type(neuron).__name__} neurons have no NIR node")
    for feature, present in (
            ("reset by subtraction", neuron.reset == "subtraction"),
            ("threshold v >= v_thresh", neuron.threshold_mode != "strict"),
            ("several spikes per step", neuron.max_spikes_per_dt > 1),
            ("refractory period", neuron.tau_refrac > 0),
            ("initial potential v_init", neuron.v_init != 0
             or getattr(layer, "initial_potentials", False))):
        if present:
            b.problem(feature, layer.name)
    shape = sig.shape
    nshape = nir_shape(shape)
    if nshape is None:
        raise ExportError(f"{where}: neurons on a {len(shape)}-D frame {shape}")
    gain = np.ones(shape) if layer.gain is None else \
        np.broadcast_to(np.asarray(layer.gain, np.float64), shape)
    tau = None
    if neuron.tau_mem is not None:
        tau = neuron.dt / (1.0 - math.exp(-neuron.dt / neuron.tau_mem))
    per_channel = gain.reshape(-1, shape[-1])
    if np.all(per_channel == per_channel[0]):
        factor, r = per_channel[0], np.ones(nshape)
    else:                     # a gain that varies within a channel: NIR's r carries it
        factor, r = None, to_nir_layout(gain)
    if tau is not None:
        factor = (np.ones(shape[-1]) if factor is None else factor) * tau
    name = f"{layer.name}_if" if tau is None else f"{layer.name}_lif"
    feeds = _materialize(b, name, sig, factor, where)
    v_reset = neuron.v_reset if neuron.reset == "to_value" else 0.0
    full = (lambda v: np.full(nshape, v, np.float32))
    # a bursting neuron (only exported approximately: it fires several spikes a
    # step) becomes the neuron it stands for, one spike of burst times its own
    burst = getattr(neuron, "burst", 1)
    v_threshold, amplitude = neuron.v_thresh * burst, neuron.spike_amplitude * burst
    meta = {"spike_amplitude": float(amplitude)}
    r = np.asarray(r, np.float32)
    if tau is None:
        node = b.nir.IF(r=r, v_threshold=full(v_threshold), v_reset=full(v_reset),
                        metadata=meta)
    else:
        node = b.nir.LIF(tau=full(tau), r=r, v_leak=full(0.0),
                         v_threshold=full(v_threshold), v_reset=full(v_reset),
                         metadata={**meta, "tau_mem": neuron.tau_mem})
    b.add(name, node, feeds, nshape)
    return _Signal(shape, [_image_or_vector(name, shape, amplitude)])


def _readout(b: _Builder, out_name: str, sig: _Signal, where):
    """The nodes that feed ``Output`` and the factor between snnconv's output and
    NIR's (the metadata's ``output_scale``)."""
    scales = np.concatenate([t.scale for t in sig.terms])
    nodes = [t.node for t in sig.terms]
    if all(_covers_all(b, t, sig.shape) and t.pad == _NO_PAD for t in sig.terms) \
            and np.all(scales == scales[0]) and len(set(nodes)) == len(nodes):
        return [t.node for t in sig.terms], float(scales[0])
    return _materialize(b, out_name, sig, None, where), 1.0


# ----------------------------------------------------------------------------- graph

def _raise_problems(b: _Builder):
    if not b.problems:
        return
    if b.approximate:
        return
    parts = [f"{feature} (layers {', '.join(layers)}): {REMEDIES[feature]}"
             for feature, layers in b.problems.items()]
    raise ExportError("NIR cannot express " + "; ".join(parts)
                      + "; or export with --approximate (approximate=True)")


def _metadata(snn, inp_layer, neuron, output_scale: float, b: _Builder) -> dict:
    from .. import __version__
    approximations = [f"{feature} ({', '.join(layers)}): {APPROXIMATIONS[feature]}"
                      for feature, layers in b.problems.items()]
    conversion = {}
    if neuron is not None:
        conversion = {k: v for k, v in neuron.get_config().items()
                      if v is not None and k != "model"}
    conversion.update(poisson_input=bool(inp_layer.poisson), input_rate=inp_layer.input_rate)
    if inp_layer.seed is not None:
        conversion["seed"] = int(inp_layer.seed)
    return {
        "generator": f"snnconv {__version__}",
        "model": snn.name,
        "dt": float(inp_layer.dt),
        "time_unit": "ms",
        "discretization": "forward Euler with step dt: IF v += dt*r*I; "
                          "LIF v += dt/tau*(v_leak - v + r*I); then spike if v > v_threshold "
                          "and reset to v_reset",
        "spike_code": "rate",
        "input": "poisson" if inp_layer.poisson else "analog",
        "input_description": (
            "0/1 Poisson spikes, probability x * input_rate * dt / 1000 per step"
            if inp_layer.poisson else "the analog input as a constant current every step"),
        "input_layout": "channels first (C, H, W); snnconv models take (H, W, C)",
        "readout": ("the class is the argmax of the Output signal summed over the steps "
                    "(spike counts for a spiking output layer)"),
        "output_scale": float(output_scale),
        "avg_pool": ("SumPool2d; the 1/k^2 of the average is folded into the next weights"
                     if b.avg_pool == "sum" else "AvgPool2d"),
        "ann_macs": int(inp_layer.ann_macs),
        "approximations": "; ".join(approximations) if approximations else "none",
        "conversion": conversion,
    }


def _graph(b: _Builder, metadata: dict):
    nir = b.nir
    try:
        graph = nir.NIRGraph(nodes=dict(b.nodes), edges=list(b.edges), metadata=metadata,
                             type_check=True)
    except Exception as e:
        raise ExportError(f"the NIR graph does not type-check: {type(e).__name__}: {e}") from None
    _check_graph(graph, b.nodes, b.edges, b.shapes)
    return graph


def _check_graph(graph, nodes, edges, shapes):
    """Edges name existing nodes, nothing was added, and NIR's inferred shapes are ours."""
    names = set(nodes)
    for a, c in edges:
        if a not in names or c not in names:
            raise ExportError(f"NIR edge ({a!r}, {c!r}) names a node that does not exist")
    if set(graph.nodes) != names or len(graph.edges) != len(edges):
        extra = sorted(set(graph.nodes) - names)
        raise ExportError(f"the NIR graph is not closed (NIR added nodes {extra})")
    for name, expected in shapes.items():
        got = graph.nodes[name].output_type.get("output")
        got = None if got is None else tuple(int(d) for d in np.asarray(got).ravel())
        if got != tuple(expected):
            raise ExportError(f"NIR node {name!r}: shape {got}, expected {tuple(expected)}")


def _check_readback(nir, path, graph):
    try:
        back = nir.read(path)    # type-checks the graph again
    except Exception as e:
        raise ExportError(f"the written NIR file does not read back: {type(e).__name__}: {e}") \
            from None
    if set(back.nodes) != set(graph.nodes) or \
            {tuple(e) for e in back.edges} != {tuple(e) for e in graph.edges}:
        raise ExportError("the written NIR file reads back with other nodes or edges")

