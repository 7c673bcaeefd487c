"""A converted network for Xylo: the integer specification plus what feeds and reads it.

:func:`build_xylo_network` maps a normalised graph (see :mod:`.mapping`),
turns time constants into decay shifts, folds the input encoding and the
synaptic filter's gain into the weights, quantizes (see :mod:`.quantize`)
and checks the chip's limits. :class:`XyloNetwork` saves to the ``.npz``
specification (Rockpool's key names) with a few ``snnconv_*`` keys added,
and :func:`load_xylo` reads it back, or reads a bare specification.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from ...errors import ConfigError, SnnconvError
from . import limits as L
from .mapping import build_float_network, plan
from .quantize import QUANTIZATION_METHODS, quantize_population, relative_error
from .spec import DASH, XyloSpec, XyloSpecError

INPUT_ENCODINGS = ("sigma_delta", "poisson")
READOUTS = ("charge", "vmem", "spikes")
EXTRA_PREFIX = "snnconv_"


@dataclasses.dataclass
class XyloNetwork:
    """What the Xylo simulator runs.

    ``input_map``: the host preprocessing ``(raw features, channels)`` that
    turns a raw sample into input channel values (None: the raw sample,
    flattened, is the channel values). ``events_per_unit``: input events
    per step for a channel value of 1; values become event counts per step
    by ``encoding`` (``sigma_delta``: deterministic accumulate-and-fire;
    ``poisson``: Poisson counts, drawn from ``seed``). ``dt``: the time step
    in the config's unit (``spec.dt`` is the same step in seconds).
    """

    spec: XyloSpec
    layers: list[tuple[str, int]]
    output_name: str
    input_shape: tuple[int, ...]
    input_map: np.ndarray | None = None
    events_per_unit: float = 1.0
    encoding: str = "sigma_delta"
    seed: int = 0
    dt: float = 1.0
    ann_macs: int = 0
    quantization: str = ""
    quantization_error: dict = dataclasses.field(default_factory=dict)
    name: str = "xylo"
    # temporal: the inputs are event counts (N, T, channels) fed step by step (a trained
    # SynNet), not static samples that the encoder turns into events
    temporal: bool = False
    # the class score: "charge" (output spikes so far + membrane / threshold), "vmem"
    # (the largest output membrane so far, in float units: / output_scale) or "spikes"
    readout: str = "charge"
    output_scale: np.ndarray | None = None     # integer units per float unit, per output
    hidden_scale: np.ndarray | None = None     # the same per hidden neuron (from to_xylo)

    def __post_init__(self):
        if self.encoding not in INPUT_ENCODINGS:
            raise SnnconvError(f"unknown input encoding {self.encoding!r}; "
                               f"available: {', '.join(INPUT_ENCODINGS)}")
        if self.readout not in READOUTS:
            raise SnnconvError(f"unknown readout {self.readout!r}; available: "
                               f"{', '.join(READOUTS)}")
        if sum(size for _, size in self.layers) != self.spec.num_hidden:
            raise SnnconvError(f"layer sizes {self.layers} do not add up to the "
                               f"{self.spec.num_hidden} hidden neurons of the specification")

    @property
    def chip(self) -> L.Chip:
        return L.get_chip(self.spec.chip)

    def fit_report(self) -> str:
        """What the network uses of the chip, one line per resource."""
        chip, s = self.chip, self.spec
        fan = L.fanout(s.weights_rec, s.weights_out)
        rows = [f"{self.name} on {chip.name} ({chip.part})",
                f"  input channels      {s.num_inputs:>6} / {L.INPUT_CHANNELS}",
                f"  hidden neurons      {s.num_hidden:>6} / {chip.hidden}   ("
                + ", ".join(f"{n}: {k}" for n, k in self.layers) + ")",
                f"  output neurons      {s.num_outputs:>6} / {chip.outputs}",
                f"  max fan-out         {int(fan.max()):>6} / {chip.fanout}",
                f"  synapses per neuron {s.num_synapses:>6} / {chip.synapses}",
                f"  weight shifts       in {s.weight_shift_in}, rec {s.weight_shift_rec}, "
                f"out {s.weight_shift_out}"]
        if self.quantization_error:
            rows.append(f"  quantization ({self.quantization}), relative RMS error:")
            for layer, err in self.quantization_error.items():
                rows.append(f"    {layer:<18} weights {err['weights']:.4f}  bias "
                            f"{err['bias']:.4f}  threshold {err['threshold']:.4f}")
        return "\n".join(rows)

    def save(self, path) -> Path:
        """Write the ``.npz`` specification; loads back with :func:`load_xylo`."""
        path = Path(path)
        if path.suffix != ".npz":
            raise SnnconvError(f"{path}: a Xylo network is saved as a .npz file")
        extra = {
            "layer_names": np.array([n for n, _ in self.layers]),
            "layer_sizes": np.array([k for _, k in self.layers], np.int64),
            "output_name": np.array(self.output_name),
            "input_shape": np.array(self.input_shape, np.int64),
            "events_per_unit": np.array(self.events_per_unit),
            "encoding": np.array(self.encoding), "seed": np.array(self.seed),
            "time_step": np.array(self.dt), "ann_macs": np.array(self.ann_macs),
            "quantization": np.array(self.quantization), "name": np.array(self.name),
            "temporal": np.array(self.temporal), "readout": np.array(self.readout),
        }
        for key in ("output_scale", "hidden_scale"):
            if getattr(self, key) is not None:
                extra[key] = np.asarray(getattr(self, key), np.float64)
        if self.input_map is not None:
            extra["input_map"] = self.input_map.astype(np.float32)
        return self.spec.save(path, **{EXTRA_PREFIX + k: v for k, v in extra.items()})


def load_xylo(path) -> XyloNetwork:
    """A network from an ``.npz`` specification written by :meth:`XyloNetwork.save`.

    A bare specification (Rockpool's keys only) loads too: one hidden layer,
    the input channels fed directly, sigma-delta encoding of one event per
    unit, ``dt`` in milliseconds.
    """
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as e:
        raise SnnconvError(f"{path}: cannot read a Xylo specification: {e}") from None
    try:
        spec = XyloSpec.from_arrays(arrays)
    except XyloSpecError as e:
        raise SnnconvError(f"{path}: {e}") from None
    x = {k[len(EXTRA_PREFIX):]: v for k, v in arrays.items() if k.startswith(EXTRA_PREFIX)}
    if "layer_names" in x:
        layers = [(str(n), int(k)) for n, k in zip(x["layer_names"], x["layer_sizes"])]
    else:
        layers = [("hidden", spec.num_hidden)]
    return XyloNetwork(
        spec=spec, layers=layers, output_name=str(x.get("output_name", "output")),
        input_shape=tuple(int(d) for d in x.get("input_shape", (spec.num_inputs,))),
        input_map=x.get("input_map"),
        events_per_unit=float(x.get("events_per_unit", 1.0)),
        encoding=str(x.get("encoding", "sigma_delta")), seed=int(x.get("seed", 0)),
        dt=float(x.get("time_step", spec.dt * 1e3)), ann_macs=int(x.get("ann_macs", 0)),
        quantization=str(x.get("quantization", "")), name=str(x.get("name", path.stem)),
        temporal=bool(x.get("temporal", False)), readout=str(x.get("readout", "charge")),
        output_scale=x.get("output_scale"), hidden_scale=x.get("hidden_scale"))


def dash_for(tau, dt: float, key: str) -> np.ndarray:
    """Decay shift(s) ``round(log2(tau / dt))`` for time constant(s) ``tau``."""
    tau = np.asarray(tau, np.float64)
    if np.any(tau <= dt):
        raise ConfigError(f"{key} = {_show(tau)} must exceed the time step dt = {dt:g} "
                          "(a decay of dt or faster discards the input)")
    dash = np.round(np.log2(tau / dt)).astype(np.int64)
    if np.any(dash > DASH[1]):
        raise ConfigError(f"{key} = {_show(tau)} is longer than Xylo's slowest decay, "
                          f"2**{DASH[1]} dt = {dt * 2 ** DASH[1]:g}")
    return np.maximum(dash, 1)


def _show(x: np.ndarray) -> str:
    return f"{float(x):g}" if x.ndim == 0 else f"[{x.min():g} .. {x.max():g}]"


def build_xylo_network(graph, *, chip: str = "syns65302", quantization: str = "global",
                       weight_shift="auto", v_thresh: float = 1.0, dt: float = 1.0,
                       tau_mem=None, tau_syn=None, events_per_unit: float = 1.0,
                       encoding: str = "sigma_delta", seed: int = 0,
                       max2avg_pool: bool = False, check: bool = True) -> XyloNetwork:
    """Map, quantize and check ``graph`` for ``chip``.

    ``tau_mem``: membrane time constant(s) (scalar or one per hidden
    neuron); None = the slowest decay the chip has (``dash_mem = 15``, the
    closest to the rate code's non-leaky neuron). ``tau_syn``: synaptic time
    constant(s); None = ``2 dt`` (``dash_syn = 1``). The synaptic filter with
    shift ``d`` passes ``2**d - 1`` times the charge of one input, so the
    weights are divided by that; the input weights are also divided by
    ``events_per_unit``. ``weight_shift``: 0..7 or ``"auto"``.
    ``check=False`` skips the limits check (for inspecting a misfit).
    """
    from ...ann import count_macs

    target = L.get_chip(chip)
    if quantization not in QUANTIZATION_METHODS:
        raise ConfigError(f"xylo.quantization = {quantization!r}; allowed: "
                          f"{', '.join(QUANTIZATION_METHODS)}")
    p = plan(graph, max2avg_pool)
    if check:
        problems = L.size_violations(target, p.layers, p.num_inputs, p.num_outputs,
                                     p.output_name)
        if problems:
            raise L.XyloLimitError(target, problems)
    elif not p.hidden:
        raise L.XyloLimitError(target, L.size_violations(target, [], 0, 0, p.output_name))
    net = build_float_network(p, max2avg_pool)
    n, o = net.w_rec.shape[0], net.w_out.shape[1]
    dash_syn = np.broadcast_to(dash_for(2 * dt if tau_syn is None else tau_syn, dt,
                                        "xylo.tau_syn"), (n,))
    dash_mem = (np.full(n, DASH[1]) if tau_mem is None
                else np.broadcast_to(dash_for(tau_mem, dt, "cell.tau_mem"), (n,)))
    dash_syn_out = np.full(o, dash_syn.max() if np.ndim(tau_syn) else dash_syn[0])
    dash_mem_out = np.full(o, dash_mem.max() if np.ndim(tau_mem) else dash_mem[0])
    gain = 2.0 ** dash_syn - 1.0
    gain_out = 2.0 ** dash_syn_out - 1.0
    w_in = net.w_in / (events_per_unit * gain)
    w_rec = net.w_rec / gain
    w_out = net.w_out / gain_out
    threshold = np.full(n, float(v_thresh))
    threshold_out = np.full(o, float(v_thresh))

    w_hid, th, b, shift, f = quantize_population(np.concatenate([w_in, w_rec]), threshold,
                                                 net.bias, quantization, weight_shift)
    w_o, th_o, b_o, shift_o, f_o = quantize_population(w_out, threshold_out, net.bias_out,
                                                       quantization, weight_shift)
    spec = XyloSpec(weights_in=w_hid[:len(w_in)], weights_rec=w_hid[len(w_in):],
                    weights_out=w_o, dash_mem=dash_mem, dash_syn=dash_syn,
                    dash_mem_out=dash_mem_out, dash_syn_out=dash_syn_out, threshold=th,
                    threshold_out=th_o, bias=b, bias_out=b_o, weight_shift_in=shift,
                    weight_shift_rec=shift, weight_shift_out=shift_o, dt=dt * 1e-3,
                    chip=target.part)
    if check:
        problems = L.fanout_violations(target, net.layers,
                                       L.fanout(spec.weights_rec, spec.weights_out))
        if problems:
            raise L.XyloLimitError(target, problems)

    errors = {}
    exact_hid = np.concatenate([w_in, w_rec])
    for name, cols in net.layer_slices().items():
        errors[name] = _errors(exact_hid[:, cols], w_hid[:, cols], f[cols], net.bias[cols],
                               b[cols], threshold[cols], th[cols], shift)
    errors[net.output_name] = _errors(w_out, w_o, f_o, net.bias_out, b_o, threshold_out,
                                      th_o, shift_o)
    input_map = net.input_map
    if input_map is not None and input_map.shape[0] == input_map.shape[1] \
            and np.array_equal(input_map, np.eye(len(input_map))):
        input_map = None
    return XyloNetwork(spec=spec, layers=net.layers, output_name=net.output_name,
                       input_shape=tuple(graph.input_node.output_shape), input_map=input_map,
                       events_per_unit=float(events_per_unit), encoding=encoding,
                       seed=int(seed), dt=float(dt),
                       ann_macs=int(sum(count_macs(graph).values())),
                       quantization=quantization, quantization_error=errors,
                       name=f"{graph.name}_xylo")


def _errors(w, w_int, f, bias, b_int, threshold, th_int, shift) -> dict:
    """Relative RMS errors of one layer's quantized weights, biases and thresholds."""
    # only the connections the layer has (its block), not the zeros around it
    mask = np.any(w != 0, axis=1)
    units = f * 2.0 ** shift
    return {"weights": relative_error(w[mask], w_int[mask] / f),
            "bias": relative_error(bias, b_int / units),
            "threshold": relative_error(threshold, th_int / units)}


__all__ = ["XyloNetwork", "build_xylo_network", "load_xylo", "INPUT_ENCODINGS",
           "QUANTIZATION_METHODS"]
