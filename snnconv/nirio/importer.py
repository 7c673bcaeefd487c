"""A NIR graph -> snnconv's IR and a Spike* model with NIR's neuron semantics.

The inverse of :mod:`snnconv.nirio.export` (the mapping is described in
:mod:`snnconv.nirio`). The chain of NIR nodes is walked from ``Input`` to
``Output``. Synapse nodes (``Affine``, ``Linear``, ``Conv2d``, pooling,
``Flatten``) become IR nodes; a neuron node (``IF``, ``LIF``) turns the IR
node before it into a spiking one (or, right after the input or other
neurons, an ``identity`` node of neurons). The walk keeps the same
bookkeeping as the export: the factor by which snnconv's signal is larger
than NIR's (a spike carries ``v_thresh/dt`` in snnconv, 1 in NIR) and the
order of a flattened map's elements.

Each neuron layer gets one threshold: a layer whose NIR thresholds differ
per neuron is rescaled to threshold 1 (its membrane divided by each
neuron's threshold), which fires identically. ``r`` (and for ``LIF``
``1/tau`` and ``v_leak``) go into the weights and bias of the layer, or
into its gain when the layer has no weights.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np

from ..errors import UnsupportedLayerError
from ..files import unique_name
from ..ir import Graph, Node
from ..shapes import conv_out_len, pair
from .common import flatten_order, ours_shape, plain, read_nir, require_nir, same_padding

SUPPORTED = ("Input", "Output", "Affine", "Linear", "Conv2d", "AvgPool2d", "SumPool2d",
             "Flatten", "IF", "LIF", "I")
_SUPPORTED_TEXT = ("Input, Output, Affine, Linear, Conv2d, AvgPool2d, SumPool2d, Flatten, "
                   "IF, LIF, and I right before Output")


@dataclasses.dataclass
class NirImport:
    """A NIR graph in snnconv's terms: what :meth:`build` turns into a Spike* model."""

    graph: Graph                    # channels last, weights in Keras's layout
    neurons: dict[str, dict]        # IR node -> its neuron dict (NIR semantics)
    dt: float
    poisson_input: bool
    input_rate: float
    metadata: dict                  # the NIR graph's metadata, as plain values
    nodes: dict[str, str]           # NIR node -> the IR node that computes it

    def build(self):
        """The Spike* Keras model (input ``(batch, time, *input_shape)``, channels last)."""
        from ..simulators.ini import build_spiking_model
        base = dict(_NIR_NEURON, dt=self.dt)
        return build_spiking_model(self.graph, base, poisson_input=self.poisson_input,
                                   input_rate=self.input_rate, spike_code="rate",
                                   layer_neurons=self.neurons)


# NIR's neuron: fires when v > v_threshold, one spike per step, resets to v_reset
_NIR_NEURON = {"model": "if", "v_thresh": 1.0, "reset": "to_value", "v_reset": 0.0,
               "threshold_mode": "strict", "tau_refrac": 0.0, "dt": 1.0, "tau_mem": None,
               "max_spikes_per_dt": 1, "v_init": 0.0}


def import_nir(graph, dt: float | None = None):
    """A NIR graph (path or ``nir.NIRGraph``) as a Spike* Keras model."""
    return from_nir(graph, dt=dt).build()


def from_nir(graph, dt: float | None = None) -> NirImport:
    """Translate a NIR graph (path or ``nir.NIRGraph``) into a :class:`NirImport`.

    ``dt`` is the step the continuous-time neurons are integrated with: by
    default the graph's metadata ``dt`` (graphs written by snnconv), else 1.
    Raises :class:`UnsupportedLayerError` naming the nodes snnconv cannot import.
    """
    nir = require_nir()
    name = "nir"
    if isinstance(graph, (str, Path)):
        name = Path(graph).stem
        graph = read_nir(graph)
    if not isinstance(graph, nir.NIRGraph):
        raise UnsupportedLayerError(f"expected a NIR graph, got {type(graph).__name__}")
    metadata = plain(dict(graph.metadata or {}))
    _check_types(graph)
    order = _chain(graph)
    step = float(dt if dt is not None else metadata.get("dt", 1.0))
    if not step > 0:
        raise UnsupportedLayerError(f"the time step dt must be positive, got {step}")
    walker = _Walker(graph, step, metadata)
    walker.run(order)
    model = str(metadata.get("model", name))
    model = model[:-4] if model.endswith("_snn") else model
    ir = Graph(walker.ir, name=model, metadata={"source": "nir"})
    # the NIR weights are used as they are: nothing is left to normalise
    ir.scales = {n.name: np.float32(1.0) for n in ir.nodes}
    return NirImport(ir, walker.neurons, step, walker.poisson, walker.input_rate, metadata,
                     walker.map)


# ----------------------------------------------------------------------------- structure

def _check_types(graph):
    bad = [f"{n} ({type(node).__name__})" for n, node in graph.nodes.items()
           if type(node).__name__ not in SUPPORTED]
    if bad:
        raise UnsupportedLayerError(f"NIR graph has nodes snnconv cannot import: "
                                    f"{', '.join(bad)}; supported: {_SUPPORTED_TEXT}")


def _chain(graph) -> list[str]:
    """The node names from Input to Output; refuses anything but a chain."""
    ins = {n: [] for n in graph.nodes}
    outs = {n: [] for n in graph.nodes}
    for a, b in graph.edges:
        if a not in graph.nodes or b not in graph.nodes:
            raise UnsupportedLayerError(f"NIR edge ({a!r}, {b!r}) names a node that does "
                                        "not exist")
        outs[a].append(b)
        ins[b].append(a)
    kinds = {n: type(node).__name__ for n, node in graph.nodes.items()}
    inputs = [n for n, k in kinds.items() if k == "Input"]
    outputs = [n for n, k in kinds.items() if k == "Output"]
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedLayerError(f"NIR graph has {len(inputs)} Input and {len(outputs)} "
                                    "Output nodes; snnconv imports graphs with one of each")
    for n in graph.nodes:
        if n != inputs[0] and len(ins[n]) != 1:
            raise UnsupportedLayerError(f"NIR node {n!r} ({kinds[n]}) has {len(ins[n])} "
                                        "inputs; snnconv imports chains (one input per node, "
                                        "no recurrence)")
        if n != outputs[0] and len(outs[n]) != 1:
            raise UnsupportedLayerError(f"NIR node {n!r} ({kinds[n]}) feeds {len(outs[n])} "
                                        "nodes; snnconv imports chains")
    order = [inputs[0]]
    while order[-1] != outputs[0]:
        nxt = outs[order[-1]][0]
        if nxt in order:
            raise UnsupportedLayerError(f"NIR graph has a cycle through {nxt!r}")
        order.append(nxt)
    if len(order) != len(graph.nodes):
        rest = sorted(set(graph.nodes) - set(order))
        raise UnsupportedLayerError(f"NIR nodes not on the path from Input to Output: "
                                    f"{', '.join(rest)}")
    if len(order) < 3:
        raise UnsupportedLayerError("NIR graph has no layers between Input and Output")
    return order


# ----------------------------------------------------------------------------- the walk

@dataclasses.dataclass
class _Cursor:
    ir: str                          # the IR node producing the signal
    nshape: tuple[int, ...]          # NIR's shape of the signal
    scale: float = 1.0               # snnconv's signal = scale * NIR's signal
    order: np.ndarray | None = None  # flattened maps: NIR index of each of our elements
    pending: Node | None = None      # the IR node that neurons right after would drive


class _Walker:
    def __init__(self, graph, dt: float, metadata: dict):
        self.graph, self.dt, self.metadata = graph, dt, metadata
        self.ir: list[Node] = []
        self.neurons: dict[str, dict] = {}
        self.map: dict[str, str] = {}
        conversion = metadata.get("conversion") or {}
        self.poisson = metadata.get("input") == "poisson"
        self.input_rate = float(conversion.get("input_rate", 1000.0))
        self.cur: _Cursor | None = None

    def run(self, order):
        nodes = self.graph.nodes
        for i, name in enumerate(order):
            node = nodes[name]
            kind = type(node).__name__
            nxt = type(nodes[order[i + 1]]).__name__ if i + 1 < len(order) else None
            getattr(self, f"_{kind.lower()}")(name, node, nxt)
            self.map[name] = self.cur.ir

    # -- helpers ---------------------------------------------------------
    def _add(self, node: Node) -> Node:
        node.name = unique_name(node.name, {n.name for n in self.ir})
        self.ir.append(node)
        return node

    def _refuse(self, name, node, why):
        raise UnsupportedLayerError(f"NIR node {name!r} ({type(node).__name__}): {why}")

    def _ours(self, array, name, node) -> np.ndarray:
        """A per-neuron NIR array of the current signal in snnconv's layout."""
        array = np.broadcast_to(np.asarray(array, np.float64), self.cur.nshape)
        if array.ndim == 3:
            return array.transpose(1, 2, 0)
        if self.cur.order is not None:
            return array[self.cur.order]
        return array

    # -- node kinds ------------------------------------------------------
    def _input(self, name, node, nxt):
        nshape = _unbatched(node.input_type["input"])
        shape = ours_shape(nshape)
        if shape is None:
            self._refuse(name, node, f"input shape {nshape}; snnconv imports vectors and "
                                     "(C, H, W) images")
        self._add(Node(name, "input", [], shape))
        scale = 1000.0 / (self.input_rate * self.dt) if self.poisson else 1.0
        self.cur = _Cursor(name, nshape, scale)

    def _affine(self, name, node, nxt):
        self._dense(name, node, np.asarray(node.bias, np.float64))

    def _linear(self, name, node, nxt):
        weight = np.asarray(node.weight)
        self._dense(name, node, np.zeros(weight.shape[0]))

    def _dense(self, name, node, bias):
        cur = self.cur
        weight = np.asarray(node.weight, np.float64)
        if weight.ndim != 2 or len(cur.nshape) != 1 or weight.shape[1] != cur.nshape[0]:
            self._refuse(name, node, f"weight {weight.shape} on an input of shape "
                                     f"{cur.nshape}; expected (out, {math.prod(cur.nshape)}) "
                                     "on a vector (flatten first)")
        if cur.order is not None:
            weight = weight[:, cur.order]
        kernel = weight.T if cur.scale == 1 else weight.T / cur.scale
        ir = self._add(Node(name, "dense", [cur.ir], (weight.shape[0],),
                            weights={"kernel": kernel.astype(np.float32),
                                     "bias": np.asarray(bias, np.float32).reshape(-1)}))
        self.cur = _Cursor(ir.name, (weight.shape[0],), 1.0, None, ir)

    def _conv2d(self, name, node, nxt):
        cur = self.cur
        weight = np.asarray(node.weight, np.float64)
        if len(cur.nshape) != 3 or weight.ndim != 4:
            self._refuse(name, node, f"weight {weight.shape} on an input of shape {cur.nshape}; "
                                     "expected a 2-D convolution of a (C, H, W) map")
        c, h, w = cur.nshape
        groups = int(np.asarray(node.groups).item())
        stride, dilation = pair(node.stride), pair(node.dilation)
        weight, groups = _regroup(node, weight, groups, c)
        cout, cin_g, kh, kw = weight.shape
        if groups == 1 and cin_g == c:
            op, kernel, params = "conv2d", weight.transpose(2, 3, 1, 0), {}
        elif groups == c and cin_g == 1 and cout % c == 0:
            m = cout // c
            op, kernel = "depthwise_conv2d", weight.reshape(c, m, kh, kw).transpose(2, 3, 0, 1)
            params = {"depth_multiplier": m}
        else:
            self._refuse(name, node, f"groups={groups} with weight {weight.shape} on {c} "
                                     "channels; snnconv imports groups=1 and depthwise "
                                     "(groups = input channels)")
        if cur.scale != 1:
            kernel = kernel / cur.scale
        src = cur.ir
        padding = _padding(node.padding)
        if padding == "same":
            if stride != (1, 1):
                self._refuse(name, node, "padding 'same' with a stride > 1 is undefined in NIR")
        elif padding == (0, 0):
            padding = "valid"
        else:
            same = [same_padding(n, k, s, d) for n, k, s, d in
                    zip((h, w), (kh, kw), stride, dilation)]
            if same == [(p, p) for p in padding]:
                padding = "same"
            else:
                (ph, pw) = padding
                h, w = h + 2 * ph, w + 2 * pw
                pad = self._add(Node(f"{name}_pad", "zero_padding2d", [src], (h, w, c),
                                     params={"padding": ((ph, ph), (pw, pw))}))
                src, padding = pad.name, "valid"
        oh, ow = (conv_out_len(n, k, s, padding, d) for n, k, s, d in
                  zip((h, w), (kh, kw), stride, dilation))
        if oh < 1 or ow < 1:
            self._refuse(name, node, f"the kernel does not fit the {h}x{w} input")
        ir = self._add(Node(name, op, [src], (oh, ow, cout),
                            params={"strides": stride, "padding": padding,
                                    "dilation_rate": dilation, **params},
                            weights={"kernel": kernel.astype(np.float32),
                                     "bias": np.asarray(node.bias, np.float32).reshape(-1)}))
        self.cur = _Cursor(ir.name, (cout, oh, ow), 1.0, None, ir)

    def _avgpool2d(self, name, node, nxt):
        self._pool(name, node, average=True)

    def _sumpool2d(self, name, node, nxt):
        self._pool(name, node, average=False)

    def _pool(self, name, node, average: bool):
        cur = self.cur
        if len(cur.nshape) != 3:
            self._refuse(name, node, f"pooling an input of shape {cur.nshape}")
        if np.any(np.asarray(node.padding)):
            self._refuse(name, node, f"padding {np.asarray(node.padding).tolist()}; snnconv "
                                     "imports pooling without padding")
        kernel, stride = pair(node.kernel_size), pair(node.stride)
        c, h, w = cur.nshape
        oh, ow = (conv_out_len(n, k, s, "valid") for n, k, s in zip((h, w), kernel, stride))
        ir = self._add(Node(name, "avg_pool2d", [cur.ir], (oh, ow, c),
                            params={"pool_size": kernel, "strides": stride, "padding": "valid"}))
        # snnconv averages; a sum is the average times the window size
        scale = cur.scale if average else cur.scale / (kernel[0] * kernel[1])
        self.cur = _Cursor(ir.name, (c, oh, ow), scale, None, ir)

    def _flatten(self, name, node, nxt):
        cur = self.cur
        dims = cur.nshape
        start, end = int(node.start_dim), int(node.end_dim)
        start, end = start % len(dims), end % len(dims)
        out = dims[:start] + (math.prod(dims[start:end + 1]),) + dims[end + 1:]
        if out != (math.prod(dims),):
            self._refuse(name, node, f"flattens {cur.nshape} to {out} (start_dim="
                                     f"{node.start_dim}, end_dim={node.end_dim}); snnconv "
                                     "imports full flattening (start_dim=0 on unbatched shapes)")
        if len(cur.nshape) == 1:
            return
        shape = ours_shape(cur.nshape)
        ir = self._add(Node(name, "flatten", [cur.ir], out))
        self.cur = _Cursor(ir.name, out, cur.scale, flatten_order(shape), ir)

    def _if(self, name, node, nxt):
        self._neurons(name, node, np.asarray(node.r, np.float64), tau=None, v_leak=None)

    def _lif(self, name, node, nxt):
        self._neurons(name, node, np.asarray(node.r, np.float64),
                      tau=np.asarray(node.tau, np.float64),
                      v_leak=np.asarray(node.v_leak, np.float64))

    def _neurons(self, name, node, r, tau, v_leak):
        cur = self.cur
        thresh = self._ours(node.v_threshold, name, node)
        if not np.all(thresh > 0):
            self._refuse(name, node, "thresholds must be positive")
        uniform = bool(np.all(thresh == thresh.flat[0]))
        theta = float(thresh.flat[0]) if uniform else 1.0
        rescale = 1.0 if uniform else theta / thresh           # membrane / each threshold
        v_reset = self._ours(node.v_reset, name, node) * rescale
        if not np.allclose(v_reset, v_reset.flat[0], rtol=1e-6, atol=1e-12):
            self._refuse(name, node, "reset potentials that differ across neurons other than "
                                     "in proportion to their thresholds")
        r = self._ours(r, name, node)
        neuron = dict(_NIR_NEURON, v_thresh=theta, v_reset=float(v_reset.flat[0]), dt=self.dt)
        extra = None
        if tau is None:
            factor = r * rescale
        else:
            tau = self._ours(tau, name, node)
            if not np.allclose(tau, tau.flat[0], rtol=1e-6):
                self._refuse(name, node, "time constants that differ across neurons; snnconv "
                                         "has one tau_mem per layer")
            alpha = self.dt / float(tau.flat[0])
            if not 0 < alpha < 1:
                self._refuse(name, node, f"tau {float(tau.flat[0]):g} must exceed dt "
                                         f"{self.dt:g} (forward Euler decays by 1 - dt/tau)")
            neuron["tau_mem"] = _tau_mem(node, self.dt, 1.0 - alpha)
            factor = r * rescale / tau
            leak = self._ours(v_leak, name, node)
            if np.any(leak != 0):
                extra = leak * rescale / tau
        target = cur.pending
        if target is None:        # neurons right after the input or other neurons
            base = name[:-3] if name.endswith("_if") else name[:-4] if name.endswith("_lif") \
                else name
            taken = {n.name for n in self.ir}
            target = self._add(Node(base if base not in taken else name, "identity", [cur.ir],
                                    ours_shape(cur.nshape)))
        self._drive(name, node, target, factor, extra)
        target.activation = "relu"
        self.neurons[target.name] = neuron
        self.cur = _Cursor(target.name, cur.nshape, theta / self.dt, cur.order, None)

    def _i(self, name, node, nxt):
        cur = self.cur
        if nxt != "Output" or cur.pending is None or not cur.pending.has_weights:
            self._refuse(name, node, "an integrator is imported only as the readout: right "
                                     "after a weight layer and before Output")
        factor = self.dt * self._ours(np.asarray(node.r, np.float64), name, node)
        self._drive(name, node, cur.pending, factor, None)
        self.cur = _Cursor(cur.pending.name, cur.nshape, 1.0, cur.order, None)

    def _output(self, name, node, nxt):
        shape = _unbatched(node.output_type["output"])
        if shape != self.cur.nshape:
            self._refuse(name, node, f"shape {shape}, but its input has shape {self.cur.nshape}")

    # -- folding a per-neuron factor into the layer that drives the neurons -------
    def _drive(self, name, node, target: Node, factor: np.ndarray, extra):
        """Make ``target``'s current ``factor * (NIR's current) + extra`` (snnconv's layout)."""
        if target.has_weights:
            per_out = _per_channel(factor)
            if per_out is not None:
                if np.any(per_out != 1):
                    kernel = target.weights["kernel"].astype(np.float64)
                    if target.op == "depthwise_conv2d":
                        kernel = kernel * per_out.reshape(kernel.shape[2:])
                    else:
                        kernel = kernel * per_out
                    target.weights["kernel"] = kernel.astype(np.float32)
                    target.weights["bias"] = (target.weights["bias"] * per_out).astype(np.float32)
            else:
                target.params["gain"] = factor.astype(np.float32)
            if extra is not None:
                shift = _per_channel(extra)
                if shift is None or per_out is None:
                    self._refuse(name, node, "a leak potential v_leak that differs across the "
                                             "positions of a channel")
                target.weights["bias"] = (target.weights["bias"] + shift).astype(np.float32)
            return
        if extra is not None:
            self._refuse(name, node, "a leak potential v_leak on neurons fed without weights")
        gain = factor / self.cur.scale
        if np.all(gain == 1):
            return
        per = _per_channel(gain)
        if per is not None and np.all(per == per[0]):
            target.params["gain"] = float(per[0])
        elif per is not None:
            target.params["gain"] = per.astype(np.float32)
        else:
            target.params["gain"] = gain.astype(np.float32)


def _unbatched(shape) -> tuple[int, ...]:
    """An Input/Output shape without a leading batch dimension of 1 (Norse's ``to_nir``
    writes the shape of its sample data, ``(1, N)`` for a batch of one vector)."""
    shape = tuple(int(d) for d in np.asarray(shape).ravel())
    return shape[1:] if len(shape) in (2, 4) and shape[0] == 1 else shape


def _regroup(node, weight, groups, channels):
    """A depthwise convolution that snnconv wrote as a block-diagonal ``groups=1`` one
    (node metadata ``depthwise_groups``) back as ``groups = channels``."""
    meta = plain(dict(getattr(node, "metadata", None) or {}))
    if groups != 1 or meta.get("depthwise_groups") != channels or \
            weight.shape[1] != channels or weight.shape[0] % channels:
        return weight, groups
    per_out = weight.shape[0] // channels
    out = np.stack([weight[o, o // per_out] for o in range(weight.shape[0])])[:, None]
    from .export import block_diagonal
    if not np.array_equal(block_diagonal(out, channels), weight):
        return weight, groups          # not block-diagonal after all: a full convolution
    return out, channels


def _per_channel(array: np.ndarray) -> np.ndarray | None:
    """The one value per channel (last axis) of an array that has one, else None."""
    flat = array.reshape(-1, array.shape[-1])
    return flat[0] if np.all(flat == flat[0]) else None


def _tau_mem(node, dt: float, decay: float) -> float:
    """snnconv's ``tau_mem`` whose decay ``exp(-dt/tau_mem)`` is Euler's ``1 - dt/tau``;
    the exact value from the node's metadata when snnconv wrote it."""
    meta = plain(dict(getattr(node, "metadata", None) or {}))
    stored = meta.get("tau_mem")
    if stored is not None and abs(math.exp(-dt / float(stored)) - decay) <= 1e-6:
        return float(stored)
    return -dt / math.log(decay)


def _padding(value):
    if isinstance(value, bytes):
        value = value.decode("utf8")
    if isinstance(value, str):
        return value if value == "same" else (0, 0)
    return pair(value)

