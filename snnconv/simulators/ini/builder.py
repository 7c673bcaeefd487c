"""The INI backend's network builder: an IR graph -> a Keras model of Spike* layers.

The model takes input frames ``(batch, time, *input_shape)`` and returns the
output node's signal at every step (spikes for a ReLU output, the input
current for a softmax/linear output, which the evaluation accumulates).
Layers are named after their nodes; weights come from the (normalised)
graph; each spiking layer gets its fan-out map for SynOp counting.
"""
from __future__ import annotations

import logging

import keras
import numpy as np

from ... import layers as L
from ...ann import count_macs
from ...errors import ConfigError
from ...ir import Graph, Node
from ...synops import fanout_maps

log = logging.getLogger(__name__)


def build_spiking_model(graph: Graph, neuron: dict, poisson_input: bool = False,
                        input_rate: float = 1000.0, seed: int | None = None,
                        max2avg_pool: bool = False, spike_code: str = "rate",
                        layer_neurons: dict | None = None, delays: dict | None = None,
                        input_window: int | None = None,
                        input_gain: float | None = None) -> keras.Model:
    """Build the Spike* Keras model of ``graph`` with neurons made from ``neuron``.

    ``layer_neurons`` maps node names to neuron dicts that replace
    ``neuron`` for those nodes (an imported network whose layers have
    different thresholds). Nodes trained with a QCFS activation get IF
    neurons starting at half the threshold.

    ``delays`` maps ``(node, input node)`` to the options of a
    :class:`~snnconv.layers.SpikeDelay` (``steps``, ``mode``)
    put on that connection. ``input_window`` and ``input_gain``: the analog
    input is a current during the first ``input_window`` steps only, times
    ``input_gain`` (``ttfs_exact``).

    Under the TTFS codes the output layer gets neurons too (its softmax or
    linear activation becomes a ReLU): the class is the output neuron that
    fires first.
    """
    if not graph.scales:
        log.warning("graph %r is not normalised; converting its weights as they are",
                    graph.name)
    inp_node = graph.input_node
    dt = float(neuron.get("dt", 1.0))
    frames = keras.Input(shape=(None,) + inp_node.output_shape, name=inp_node.name)
    input_layer = L.SpikeInput(poisson=poisson_input, input_rate=input_rate, dt=dt, seed=seed,
                               ann_macs=int(sum(count_macs(graph).values())),
                               spike_code=spike_code, name=f"{inp_node.name}_spikes",
                               window=input_window, gain=input_gain)
    tensors = {inp_node.name: input_layer(frames)}
    built = {inp_node.name: input_layer}
    for node in graph:
        if node.op == "input":
            continue
        activation = node.activation
        if spike_code != "rate" and node is graph.output_node:
            activation = "relu"
        layer = _make_layer(node, (layer_neurons or {}).get(node.name) or _qcfs(node, neuron),
                            max2avg_pool, activation, spike_code)
        ins = [_delayed(tensors[s], (delays or {}).get((node.name, s)), s, node.name,
                        spike_code) for s in node.inputs]
        tensors[node.name] = layer(ins if len(ins) > 1 else ins[0])
        if node.has_weights:
            layer.kernel.assign(node.weights["kernel"])
            layer.bias.assign(node.weights["bias"])
        if layer.initial_potentials:
            layer.v_init.assign(np.broadcast_to(
                np.asarray(node.params["v_init"], np.float32) * layer.neuron.v_thresh,
                tuple(layer.v_init.shape)))
        built[node.name] = layer
    model = keras.Model(frames, tensors[graph.output_node.name], name=f"{graph.name}_snn")
    sources = [name for name, lay in built.items() if hasattr(lay, "fanout")]
    for name, fan in fanout_maps(graph, sources).items():
        built[name].fanout.assign(fan)
    return model


def _qcfs(node: Node, neuron: dict) -> dict:
    """A node trained with a QCFS activation (its scale is the trained threshold) gets
    rate-coded IF neurons that start at half the threshold: QCFS's shift."""
    if node.params.get("qcfs") and neuron.get("model") == "if":
        return {**neuron, "v_init": 0.5 * float(neuron["v_thresh"])}
    return neuron


def _delayed(tensor, options: dict | None, src: str, node: str, spike_code: str):
    """``tensor`` through a synaptic delay layer where ``options`` asks for one."""
    if not options or not options.get("steps"):
        return tensor
    return L.SpikeDelay(**options, spike_code=spike_code, name=f"{src}_to_{node}_delay")(tensor)


def _make_layer(node: Node, neuron: dict, max2avg_pool: bool, activation: str,
                spike_code: str):
    p = node.params
    common = dict(name=node.name, activation=activation, spike_code=spike_code,
                  neuron=neuron if activation == "relu" else None)
    if p.get("gain") is not None:
        common["gain"] = np.asarray(p["gain"]).tolist()
    if p.get("v_init") is not None and activation == "relu":
        # per-neuron initial potentials (a fine-tuned network's, snnconv.finetune)
        if spike_code != "rate":
            raise ConfigError(f"layer {node.name!r} has per-neuron initial potentials (a "
                              "fine-tuned network); they need conversion.spike_code = rate, "
                              f"not {spike_code}")
        common["initial_potentials"] = True
    op = node.op
    if op == "dense":
        return L.SpikeDense(node.weights["kernel"].shape[1], **common)
    conv = dict(strides=p.get("strides", (1, 1)), padding=p.get("padding", "valid"),
                dilation_rate=p.get("dilation_rate", (1, 1)))
    if op == "conv2d":
        k = node.weights["kernel"].shape
        return L.SpikeConv2D(k[3], k[:2], **conv, **common)
    if op == "depthwise_conv2d":
        k = node.weights["kernel"].shape
        return L.SpikeDepthwiseConv2D(k[:2], depth_multiplier=k[3], **conv, **common)
    if op in ("avg_pool2d", "max_pool2d"):
        cls = (L.SpikeMaxPooling2D if op == "max_pool2d" and not max2avg_pool
               else L.SpikeAveragePooling2D)
        return cls(pool_size=p["pool_size"], strides=p["strides"], padding=p["padding"],
                   **common)
    if op == "global_avg_pool2d":
        return L.SpikeGlobalAveragePooling2D(**common)
    if op == "flatten":
        return L.SpikeFlatten(**common)
    if op == "reshape":
        return L.SpikeReshape(p["target_shape"], **common)
    if op == "zero_padding2d":
        return L.SpikeZeroPadding2D(p["padding"], **common)
    if op == "cropping2d":
        return L.SpikeCropping2D(p["cropping"], **common)
    if op == "upsampling2d":
        return L.SpikeUpSampling2D(p["size"], mode=p["mode"], **common)
    if op == "permute":
        return L.SpikePermute(p["dims"], **common)
    if op == "concatenate":
        return L.SpikeConcatenate(p["axis"], **common)
    if op == "add":
        coeffs = p.get("coefficients")
        coeffs = None if coeffs is None else [np.asarray(c).tolist() for c in coeffs]
        return L.SpikeAdd(coeffs, **common)
    if op == "identity":
        return L.SpikeIdentity(**common)
    raise ValueError(f"node {node.name!r}: no spiking layer for op {op!r}")
