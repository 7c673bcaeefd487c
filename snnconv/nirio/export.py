"""A converted SNN (Spike* Keras model) -> a NIR graph. The mapping is described in
:mod:`snnconv.nirio`.

The layers are walked in order. Each layer's output is a *signal*: the NIR
node that produces it, snnconv's frame shape, the factor ``scale`` by which
snnconv's signal is larger than NIR's (a spike of amplitude ``v_thresh/dt``
against NIR's 1; linear routing passes it on, weights absorb it), and, for
a flattened map, the order of its elements in NIR.
"""
from __future__ import annotations

import dataclasses
import math
import os
import tempfile
from pathlib import Path

import numpy as np

from ..errors import ExportError
from .common import flatten_order, nir_shape, require_nir, same_padding, to_nir_layout

# features NIR cannot express that approximate=True drops or changes, with what it does
APPROXIMATIONS = {
    "reset by subtraction": "reset to 0",
    "threshold v >= v_thresh": "fires when v > v_threshold",
    "several spikes per step": "one spike per step at most",
    "refractory period": "dropped",
    "initial potential v_init": "dropped (starts at 0)",
    "Poisson input": "Input expects the Poisson spikes (0/1); the first weights carry "
                     "their amplitude 1000 / (input_rate * dt)",
}
# how to avoid each of them when converting
REMEDIES = {
    "reset by subtraction": "convert with reset='zero' or 'to_value'",
    "threshold v >= v_thresh": "convert with threshold_mode='strict'",
    "several spikes per step": "convert with max_spikes_per_dt=1",
    "refractory period": "convert with tau_refrac=0",
    "initial potential v_init": "convert with v_init=0",
    "Poisson input": "convert with poisson_input=False",
}


@dataclasses.dataclass
class _Signal:
    node: str                      # NIR node producing it
    shape: tuple[int, ...]         # snnconv's frame shape (channels last)
    scale: float                   # snnconv's signal = scale * NIR's signal
    order: np.ndarray | None = None  # flattened maps: NIR index of each of our elements


class _Builder:
    def __init__(self, nir, approximate: bool):
        self.nir = nir
        self.approximate = approximate
        self.nodes: dict = {}
        self.edges: list[tuple[str, str]] = []
        self.shapes: dict[str, tuple[int, ...]] = {}   # expected NIR output shape per node
        self.problems: dict[str, list[str]] = {}       # feature -> layers

    def add(self, name, node, src: str | None, nir_out_shape):
        if name in self.nodes:
            raise ExportError(f"NIR node name {name!r} is used twice; rename the layer")
        self.nodes[name] = node
        self.shapes[name] = tuple(int(d) for d in nir_out_shape)
        if src is not None:
            self.edges.append((src, name))
        return name

    def problem(self, feature: str, layer: str):
        self.problems.setdefault(feature, []).append(layer)


def to_nir(snn, approximate: bool = False):
    """The ``nir.NIRGraph`` of ``snn`` (a Spike* model or a path to a ``.keras`` SNN).

    Raises :class:`ExportError` for what NIR cannot express (see
    :mod:`snnconv.nirio`); ``approximate=True`` exports the approximable
    features with the approximations listed in the graph's metadata.
    """
    nir = require_nir()
    import keras

    from ..layers import (SpikeAveragePooling2D, SpikeConv2D, SpikeDense,
                          SpikeDepthwiseConv2D, SpikeFlatten, SpikeGlobalAveragePooling2D,
                          SpikeIdentity, SpikeInput, SpikeLayer, SpikeReshape)
    from ..simulators.ini import layer_inputs

    snn = _load(snn)
    if not isinstance(snn, keras.Model):
        raise ExportError("NIR export takes a converted Spike* Keras model, got "
                          f"{type(snn).__name__}")
    b = _Builder(nir, approximate)
    signals: dict[str, _Signal] = {}
    raw_input = snn.layers[0].name
    first_neuron = None
    inp_layer = None
    for layer, ins in layer_inputs(snn):
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
        if len(ins) != 1:
            raise ExportError(f"{where}: a layer with {len(ins)} inputs; NIR export supports "
                              "chains of layers (no Add or Concatenate)")
        src = signals[ins[0]]
        out_shape = tuple(int(d) for d in layer.output.shape[2:])
        gain = None if layer.gain is None else np.asarray(layer.gain, np.float32)
        if gain is not None and not layer.spiking:
            raise ExportError(f"{where}: a gain on a layer without neurons has no NIR node")
        weighted = isinstance(layer, (SpikeDense, SpikeConv2D, SpikeDepthwiseConv2D))
        if isinstance(layer, SpikeDense):
            sig = _dense(b, layer, src, where)
        elif isinstance(layer, (SpikeConv2D, SpikeDepthwiseConv2D)):
            sig = _conv(b, layer, src, out_shape, where)
        elif isinstance(layer, SpikeAveragePooling2D):
            sig = _avg_pool(b, layer, src, out_shape, where)
        elif isinstance(layer, SpikeGlobalAveragePooling2D):
            sig = _global_avg_pool(b, layer, src, where)
        elif isinstance(layer, (SpikeFlatten, SpikeReshape)):
            if isinstance(layer, SpikeReshape) and len(layer.target_shape) != 1:
                raise ExportError(f"{where}: a reshape to {layer.target_shape}; NIR has no "
                                  "reshape node (only flattening exports)")
            sig = _flatten(b, layer, src, where)
        elif isinstance(layer, SpikeIdentity):
            sig = _Signal(src.node, src.shape, src.scale, src.order)
        else:
            raise ExportError(f"{where}: {_NO_NODE.get(type(layer).__name__, 'no NIR node')}")
        if layer.spiking:
            # a weight layer has absorbed the incoming scale in its weights; neurons fed
            # without weights take it (and the normalisation gain) as their r
            factor = np.float32(1.0) if weighted else np.float32(src.scale)
            if gain is not None:
                factor = factor * np.broadcast_to(gain, out_shape)
            sig = _neurons(b, layer, sig, factor, where)
            first_neuron = first_neuron or layer.neuron
        signals[layer.name] = sig
    out_layer = snn.output._keras_history[0].name
    final = signals[out_layer]
    out_name = _unique("output", b.nodes)
    b.add(out_name, nir.Output(output_type=np.array(nir_shape(final.shape))), final.node,
          nir_shape(final.shape))
    _raise_problems(b)
    meta = _metadata(snn, inp_layer, first_neuron, final, b)
    return _graph(b, meta)


_NO_NODE = {
    "SpikeMaxPooling2D": "spiking max pooling has no NIR node; convert with max2avg_pool=True "
                         "(config conversion.max2avg_pool = true)",
    "SpikeAdd": "NIR export supports chains of layers (no Add)",
    "SpikeConcatenate": "NIR export supports chains of layers (no Concatenate)",
    "SpikeZeroPadding2D": "NIR has no padding node (zero padding is not exported)",
}


def export_nir(snn, path, approximate: bool = False):
    """Write ``snn`` as the NIR file ``path`` and check that ``nir.read`` reads it back
    with type checking. Returns the graph."""
    nir = require_nir()
    graph = to_nir(snn, approximate=approximate)
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise ExportError(f"cannot write {path}: folder {path.parent} does not exist")
    # write beside the target and move into place only when it reads back
    fd, tmp = tempfile.mkstemp(suffix=".nir.partial", dir=path.parent)
    os.close(fd)
    try:
        nir.write(tmp, graph)
        _check_readback(nir, tmp, graph)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
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
    return _Signal(name, tuple(shape), scale)


def _dense(b: _Builder, layer, src: _Signal, where) -> _Signal:
    if len(src.shape) != 1:
        raise ExportError(f"{where}: a dense layer on a {len(src.shape)}-D frame {src.shape}; "
                          "NIR's Affine takes vectors (flatten first)")
    kernel = np.asarray(layer.kernel.numpy(), np.float32) * np.float32(src.scale)
    weight = np.empty((kernel.shape[1], kernel.shape[0]), np.float32)
    order = src.order if src.order is not None else np.arange(kernel.shape[0])
    weight[:, order] = kernel.T
    bias = np.asarray(layer.bias.numpy(), np.float32)
    b.add(layer.name, b.nir.Affine(weight=weight, bias=bias), src.node, (layer.units,))
    return _Signal(layer.name, (layer.units,), 1.0)


def _conv(b: _Builder, layer, src: _Signal, out_shape, where) -> _Signal:
    from ..layers import SpikeDepthwiseConv2D
    h, w, c = src.shape
    kernel = np.asarray(layer.kernel.numpy(), np.float32) * np.float32(src.scale)
    kh, kw = layer.kernel_size
    meta = {}
    if isinstance(layer, SpikeDepthwiseConv2D):
        m = layer.depth_multiplier
        weight = kernel.transpose(2, 3, 0, 1).reshape(c * m, 1, kh, kw)
        groups = c
        if not _types_grouped_conv(b.nir):
            weight, groups = block_diagonal(weight, c), 1
            meta = {"depthwise_groups": c}
    else:
        weight = kernel.transpose(3, 2, 0, 1)
        groups = 1
    if kh != kw and not _types_nonsquare_conv(b.nir):
        raise ExportError(f"{where}: a {kh}x{kw} kernel; this nir (version "
                          f"{getattr(b.nir, '__version__', '?')}) computes Conv2d shapes for "
                          "square kernels only, so the graph would not type-check")
    padding = _conv_padding(layer, (h, w), where)
    node = b.nir.Conv2d(input_shape=(h, w), weight=np.ascontiguousarray(weight),
                        stride=tuple(layer.strides), padding=padding,
                        dilation=tuple(layer.dilation_rate), groups=groups,
                        bias=np.asarray(layer.bias.numpy(), np.float32), metadata=meta)
    b.add(layer.name, node, src.node, nir_shape(out_shape))
    return _Signal(layer.name, out_shape, 1.0)


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


def _conv_padding(layer, spatial, where):
    if layer.padding == "valid":
        return (0, 0)
    pads = [same_padding(spatial[i], layer.kernel_size[i], layer.strides[i],
                         layer.dilation_rate[i]) for i in range(2)]
    if all(before == after for before, after in pads):
        return tuple(before for before, _ in pads)
    if tuple(layer.strides) == (1, 1):
        return "same"        # NIR's (PyTorch's) 'same' pads like Keras at stride 1
    raise ExportError(f"{where}: 'same' padding {pads} ((before, after) per axis) is "
                      "asymmetric at stride > 1; NIR's Conv2d pads both sides equally")


def _pool_params(layer, spatial, where):
    if layer.padding == "same":
        pads = [same_padding(spatial[i], layer.pool_size[i], layer.strides[i]) for i in range(2)]
        if any(p != (0, 0) for p in pads):
            raise ExportError(f"{where}: 'same' pooling pads the map {pads}; NIR's pooling "
                              "padding counts zeros in the average, Keras's does not")
    return np.array(layer.pool_size), np.array(layer.strides), np.array([0, 0])


def _avg_pool(b: _Builder, layer, src: _Signal, out_shape, where) -> _Signal:
    kernel, stride, padding = _pool_params(layer, src.shape[:2], where)
    b.add(layer.name, b.nir.AvgPool2d(kernel_size=kernel, stride=stride, padding=padding),
          src.node, nir_shape(out_shape))
    return _Signal(layer.name, out_shape, src.scale)


def _global_avg_pool(b: _Builder, layer, src: _Signal, where) -> _Signal:
    h, w, c = src.shape
    pool = b.add(f"{layer.name}_pool",
                 b.nir.AvgPool2d(kernel_size=np.array([h, w]), stride=np.array([h, w]),
                                 padding=np.array([0, 0])), src.node, (c, 1, 1))
    b.add(layer.name, b.nir.Flatten(input_type=np.array([c, 1, 1]), start_dim=0, end_dim=-1),
          pool, (c,))
    return _Signal(layer.name, (c,), src.scale)


def _flatten(b: _Builder, layer, src: _Signal, where) -> _Signal:
    if len(src.shape) == 1:
        return _Signal(src.node, src.shape, src.scale, src.order)
    if len(src.shape) != 3:
        raise ExportError(f"{where}: flattening a {len(src.shape)}-D frame {src.shape}")
    n = math.prod(src.shape)
    b.add(layer.name, b.nir.Flatten(input_type=np.array(nir_shape(src.shape)), start_dim=0,
                                    end_dim=-1), src.node, (n,))
    return _Signal(layer.name, (n,), src.scale, flatten_order(src.shape))


def _neurons(b: _Builder, layer, syn: _Signal, factor, where) -> _Signal:
    from ..neurons import IFNeuron
    neuron = layer.neuron
    if not isinstance(neuron, IFNeuron):
        raise ExportError(f"{where}: {type(neuron).__name__} neurons have no NIR node")
    for feature, present in (
            ("reset by subtraction", neuron.reset == "subtraction"),
            ("threshold v >= v_thresh", neuron.threshold_mode != "strict"),
            ("several spikes per step", neuron.max_spikes_per_dt > 1),
            ("refractory period", neuron.tau_refrac > 0),
            ("initial potential v_init", neuron.v_init != 0)):
        if present:
            b.problem(feature, layer.name)
    nshape = nir_shape(syn.shape)
    if nshape is None:
        raise ExportError(f"{where}: neurons on a {len(syn.shape)}-D frame {syn.shape}")
    v_reset = neuron.v_reset if neuron.reset == "to_value" else 0.0
    r = to_nir_layout(np.broadcast_to(np.asarray(factor, np.float32), syn.shape)).copy()
    full = (lambda v: np.full(nshape, v, np.float32))
    meta = {"spike_amplitude": float(neuron.spike_amplitude)}
    if neuron.tau_mem is None:
        name = f"{layer.name}_if"
        node = b.nir.IF(r=r, v_threshold=full(neuron.v_thresh), v_reset=full(v_reset),
                        metadata=meta)
    else:
        decay = math.exp(-neuron.dt / neuron.tau_mem)
        tau = neuron.dt / (1.0 - decay)
        name = f"{layer.name}_lif"
        node = b.nir.LIF(tau=full(tau), r=(r * np.float32(tau)).astype(np.float32),
                         v_leak=full(0.0), v_threshold=full(neuron.v_thresh),
                         v_reset=full(v_reset), metadata={**meta, "tau_mem": neuron.tau_mem})
    b.add(name, node, syn.node, nshape)
    return _Signal(name, syn.shape, float(neuron.spike_amplitude), syn.order)


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


def _metadata(snn, inp_layer, neuron, final: _Signal, b: _Builder) -> dict:
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
        "output_scale": float(final.scale),
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


def _unique(name: str, taken) -> str:
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    return out
