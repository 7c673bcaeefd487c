"""A trained SynNet (or any stack of LIF layers) on a Xylo chip: :func:`to_xylo`.

The chip holds one population of hidden neurons with an input matrix, a
recurrent matrix and an output matrix. A feed-forward stack maps onto it
layer after layer: the first hidden layer's weights go into ``weights_in``,
every later layer's into the block of ``weights_rec`` from the layer before
it to itself (off the diagonal), the readout's into ``weights_out`` from
the last hidden layer. On the chip every recurrent and output connection
delivers its spikes one step later; a SynNet trained with ``delay=True``
has exactly that delay, one trained without it (Rockpool's) does not and
runs differently on the chip.

Time constants become decay shifts ``dash = round(log2(tau / dt))`` (for
the bit-shift time constants a SynNet with ``quantize_time_constants``
uses, this is the shift whose decay ``1 - 2**-dash`` the network was
trained with); they must lie in 1..15. Weights and thresholds are then
quantized with Rockpool's arithmetic (:mod:`.reference_quantize`). A
membrane-output readout gets the largest threshold (32767), so it fires
only when its membrane saturates, and its weights keep their 8 bits.

The fit report checks the chip's limits (inputs, hidden neurons, outputs,
fan-out per hidden neuron, decay shifts) and names every one broken.
"""
from __future__ import annotations

import numpy as np

from ...errors import ConfigError, SnnconvError
from . import limits as L
from .network import XyloNetwork
from .reference_quantize import THRESHOLD_MAX, quantize
from .spec import DASH, XyloSpec

QUANTIZATIONS = ("global", "per_channel")


def dash_of(tau, dt: float) -> np.ndarray:
    """``round(log2(tau / dt))`` (integers; range-checked by the caller)."""
    return np.round(np.log2(np.asarray(tau, np.float64) / dt)).astype(np.int64)


def _layer_arrays(layer):
    import keras
    get = keras.ops.convert_to_numpy
    w = get(layer.kernel).astype(np.float64)
    if w.shape[2] != 1:
        raise SnnconvError(f"layer {layer.name}: {w.shape[2]} synapses per neuron; the "
                           "SynNet mapping takes one synaptic time constant per neuron")
    return dict(w=w[:, :, 0], tau_mem=get(layer.tau_mem).astype(np.float64),
                tau_syn=get(layer.tau_syn)[:, 0].astype(np.float64),
                threshold=get(layer.threshold).astype(np.float64),
                bias=get(layer.bias).astype(np.float64),
                max_spikes=int(layer.max_spikes_per_dt), delay=int(layer.delay),
                vmem=layer.output_mode == "vmem", name=layer.name)


def to_xylo(model, chip: str = "syns61201", quantization: str = "global",
            check: bool = True) -> XyloNetwork:
    """The Xylo network of a trained ``model`` (a :class:`~snnconv.networks.SynNet`).

    ``chip``: a part number or alias (``syns61201`` = Xylo Audio 2, the
    default; see :data:`snnconv.simulators.xylo.CHIPS`). ``quantization``:
    ``global`` (one scale for the hidden population, one for the readout)
    or ``per_channel`` (one per neuron). Returns a :class:`XyloNetwork`
    that the ``xylo`` simulator runs on event inputs ``(N, T, channels)``:
    ``.spec`` holds the keys ``XyloSim.from_specification`` takes,
    ``.fit_report()`` what the network uses of the chip. ``check=False``
    skips the limits (to inspect a misfit); a violation otherwise is a
    :class:`~snnconv.simulators.xylo.XyloLimitError` naming every broken limit.
    """
    target = L.get_chip(chip)
    if quantization not in QUANTIZATIONS:
        raise ConfigError(f"xylo.quantization = {quantization!r}; allowed: "
                          f"{', '.join(QUANTIZATIONS)}")
    layers = getattr(model, "lif_layers", None)
    if not layers or len(layers) < 2:
        raise SnnconvError("to_xylo needs a network of LIF layers with at least one hidden "
                           "layer and a readout (a snnconv.SynNet)")
    dt = float(model.dt)
    arrays = [_layer_arrays(layer) for layer in layers]
    hidden, out = arrays[:-1], arrays[-1]
    sizes = [(a["name"], a["w"].shape[1]) for a in hidden]
    n_in = hidden[0]["w"].shape[0]
    n_out = out["w"].shape[1]

    problems = []
    if check:
        problems += L.size_violations(target, sizes, n_in, n_out, out["name"])
    dashes = {}
    for a in arrays:
        for key in ("tau_mem", "tau_syn"):
            d = dash_of(a[key], dt)
            bad = (d < 1) | (d > DASH[1])
            if np.any(bad):
                problems.append(f"{a['name']}.{key}: decay shifts round(log2(tau/dt)) must lie "
                                f"in 1..{DASH[1]} (tau from {dt * 2 ** 0.5:g} to "
                                f"{dt * 2 ** 15.5:g} s at dt = {dt:g} s); "
                                f"{int(bad.sum())} neuron(s) have {sorted(set(d[bad].tolist()))}")
            dashes[(a["name"], key)] = np.clip(d, 0, DASH[1])
    for a in arrays:
        if np.any(a["bias"] != 0):
            problems.append(f"{a['name']}: biases are not mapped (SynNet has none)")
        if a is not hidden[0] and a["delay"] != 1:
            problems.append(f"{a['name']}: trained without Xylo's one-step delay (delay=0); "
                            "the chip delays it by one step (train with delay=True), or "
                            "pass check=False to map it anyway")
    if hidden[0]["delay"] != 0:
        problems.append(f"{hidden[0]['name']}: the chip's input reaches the first hidden "
                        "layer in the same step, but this layer delays it")
    if any(a["vmem"] for a in hidden):
        problems.append("hidden layers must spike (output='spikes')")
    if check and problems:
        raise L.XyloLimitError(target, problems)

    n = sum(k for _, k in sizes)
    w_in = np.zeros((n_in, n))
    w_rec = np.zeros((n, n))
    w_out = np.zeros((n, n_out))
    bounds = np.cumsum([0] + [k for _, k in sizes])
    w_in[:, bounds[0]:bounds[1]] = hidden[0]["w"]
    for i in range(1, len(hidden)):
        w_rec[bounds[i - 1]:bounds[i], bounds[i]:bounds[i + 1]] = hidden[i]["w"]
    w_out[bounds[-2]:bounds[-1]] = out["w"]
    threshold = np.concatenate([a["threshold"] for a in hidden])
    per_channel = quantization == "per_channel"
    w_hid, th, f = quantize(np.concatenate([w_in, w_rec]), threshold, per_channel)
    vmem = out["vmem"]
    w_o, th_o, f_o = quantize(w_out, out["threshold"], per_channel,
                              threshold_int=THRESHOLD_MAX if vmem else None)
    hid_dash = lambda key: np.concatenate([dashes[(a["name"], key)] for a in hidden])  # noqa: E731
    spec = XyloSpec(weights_in=w_hid[:n_in], weights_rec=w_hid[n_in:], weights_out=w_o,
                    dash_mem=hid_dash("tau_mem"), dash_syn=hid_dash("tau_syn"),
                    dash_mem_out=dashes[(out["name"], "tau_mem")],
                    dash_syn_out=dashes[(out["name"], "tau_syn")], threshold=th,
                    threshold_out=th_o, dt=dt, chip=target.part)
    if check:
        fan = L.fanout_violations(target, sizes, L.fanout(spec.weights_rec, spec.weights_out))
        spikes = [f"{a['name']}: max_spikes_per_dt = {a['max_spikes']}, but the chip's "
                  f"hidden neurons fire up to 31 per step" for a in hidden
                  if a["max_spikes"] != 31]
        if not vmem and out["max_spikes"] != 1:
            spikes.append(f"{out['name']}: max_spikes_per_dt = {out['max_spikes']}, but the "
                          "chip's output neurons fire at most 1 per step")
        if fan or spikes:
            raise L.XyloLimitError(target, fan + spikes)

    exact = np.concatenate([w_in, w_rec])
    errors = {}
    for i, (name, _) in enumerate(sizes):
        cols = slice(bounds[i], bounds[i + 1])
        errors[name] = _errors(exact[:, cols], w_hid[:, cols], f[cols], threshold[cols],
                               th[cols], vmem=False)
    errors[out["name"]] = _errors(w_out, w_o, f_o, out["threshold"], th_o, vmem)
    return XyloNetwork(spec=spec, layers=sizes, output_name=out["name"],
                       input_shape=(n_in,), dt=dt, quantization=quantization,
                       quantization_error=errors, name=f"{model.name}_xylo", temporal=True,
                       readout="vmem" if vmem else "spikes",
                       output_scale=f_o.astype(np.float64),
                       hidden_scale=np.asarray(f, np.float64))


def dequantized(model, xylo: XyloNetwork):
    """A float copy of ``model`` with the weights and thresholds of ``xylo`` (its
    :func:`to_xylo` network) divided back by their scales: the quantization's effect
    alone, without the chip's integer dynamics."""
    spec = xylo.spec
    copy = type(model).from_config(model.get_config())
    copy.set_weights(model.get_weights())
    hidden, out = copy.lif_layers[:-1], copy.lif_layers[-1]
    w_all = np.concatenate([spec.weights_in, spec.weights_rec]).astype(np.float64)
    w_all = w_all.reshape(w_all.shape[0], spec.num_hidden, -1)[:, :, 0]
    n_in = spec.num_inputs
    start = 0
    rows = slice(0, n_in)
    for layer in hidden:
        cols = slice(start, start + layer.units)
        f = np.asarray(xylo.hidden_scale, np.float64)[cols]
        layer.kernel.assign((w_all[rows, cols] / f)[:, :, None])
        layer.threshold.assign(spec.threshold[cols] / f)
        rows = slice(n_in + cols.start, n_in + cols.stop)
        start = cols.stop
    f_o = np.asarray(xylo.output_scale, np.float64)
    out.kernel.assign((spec.weights_out[rows.start - n_in:rows.stop - n_in] / f_o)[:, :, None])
    if out.output_mode == "spikes":
        out.threshold.assign(spec.threshold_out / f_o)
    return copy


def _errors(w, w_int, f, threshold, th_int, vmem) -> dict:
    from .quantize import relative_error
    mask = np.any(w != 0, axis=1)
    return {"weights": relative_error(w[mask], w_int[mask] / f),
            "bias": 0.0,
            "threshold": 0.0 if vmem else relative_error(threshold, th_int / f)}
