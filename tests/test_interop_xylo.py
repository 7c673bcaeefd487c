"""snnconv's Xylo simulator against SynSense's own: Rockpool's ``XyloSim`` (rockpool
3.1.0, backed by the C++ ``xylosim`` 0.1.3), step for step and bit for bit.

Runs in the interop environment (``make test`` builds ``.venv-interop``); skipped
where ``xylosim`` or ``rockpool`` is missing. ``import rockpool.devices.xylo``
needs ``samna`` (the package index only has a stub that downloads the real one
when imported), so the chip modules are imported without running the package
``__init__`` files (:func:`xylo_sim_class`).

Compared for every sample and step: every hidden neuron's synaptic currents
(both synapses) and membrane potential, its spike count, and the output
neurons' current, potential and spike. The networks: the Xylo example
(``examples/models/mnist_xylo.keras`` quantized as ``config_templates/xylo.ini``
does, on the bundled MNIST subset) exported to ``.npz`` and loaded by
``XyloSim.from_specification(**spec)`` with the keys as written; and random
integer networks with one and two synapses, every decay shift 0..15,
saturating currents and potentials, biases, and input counts above the chip's
15 per step.
"""
from __future__ import annotations

import inspect
import os
import sys
import types
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

pytest.importorskip("xylosim.v2", reason="needs SynSense's xylosim (the interop environment: "
                                         "make .venv-interop/.installed)")
rockpool = pytest.importorskip("rockpool", reason="needs rockpool (the interop environment)")

from snnconv.simulators.xylo import encode_events, load_xylo, simulate_xylo  # noqa: E402
from snnconv.simulators.xylo.spec import SCALAR_KEYS, XyloSpec  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
EXAMPLE_MODEL = REPO / "examples" / "models" / "mnist_xylo.keras"
HI, LO = 32767, -32768
# Rockpool's chip modules: Xylo Audio 2 has its own XyloSim; Xylo IMU's serves Audio 3 too
CHIP_MODULES = {"syns61201": "syns61201", "syns63300": "syns63300", "syns65302": "syns63300"}


def xylo_sim_class(chip: str):
    """Rockpool's ``XyloSim`` for ``chip``, imported without the ``rockpool.devices.xylo``
    package ``__init__`` files (they import samna)."""
    base = Path(rockpool.__file__).parent / "devices"
    for name in ("devices", "devices.xylo", "devices.xylo.syns61300",
                 "devices.xylo.syns61201", "devices.xylo.syns63300"):
        full = f"rockpool.{name}"
        if full not in sys.modules:
            package = types.ModuleType(full)
            package.__path__ = [str(base.parent.joinpath(*name.split(".")))]
            sys.modules[full] = package
    module = __import__(f"rockpool.devices.xylo.{CHIP_MODULES[chip]}.xylo_sim",
                        fromlist=["XyloSim"])
    return module.XyloSim


def xylosim_trace(sim, events: np.ndarray, num_synapses: int) -> dict:
    """Run Rockpool's XyloSim on ``events`` (B, T, I), one sample at a time from a reset
    state, and return its recordings in snnconv's trace layout (B, T, ...)."""
    out = {k: [] for k in ("spikes", "spikes_out", "isyn", "v", "isyn_out", "v_out")}
    for sample in events:
        sim.reset_state()
        spikes_out, _, rec = sim(np.asarray(sample, int), record=True)
        isyn = [np.asarray(rec["Isyn"])]
        if num_synapses == 2:
            # the IMU/Audio 3 module does not return Isyn2; its XyloLayer records it
            isyn.append(np.asarray(rec["Isyn2"]) if "Isyn2" in rec
                        else np.array(sim._xylo_layer.rec_i_syn2).T)
        out["isyn"].append(np.stack(isyn, axis=-1))
        out["v"].append(np.asarray(rec["Vmem"]))
        out["spikes"].append(np.asarray(rec["Spikes"]))
        out["isyn_out"].append(np.asarray(rec["Isyn_out"]))
        out["v_out"].append(np.asarray(rec["Vmem_out"]))
        out["spikes_out"].append(np.asarray(spikes_out))
    return {k: np.stack(v).astype(np.int64) for k, v in out.items()}


def assert_bit_exact(spec: XyloSpec, sim, events: np.ndarray, what: str):
    ours = simulate_xylo(spec, events, record=True)
    theirs = xylosim_trace(sim, events, spec.num_synapses)
    for key, ref in theirs.items():
        got = np.asarray(getattr(ours, key), np.int64)
        assert got.shape == ref.shape, (what, key, got.shape, ref.shape)
        if not np.array_equal(got, ref):
            b, t, *where = np.argwhere(got != ref)[0]
            raise AssertionError(f"{what}: {key} differs first at sample {b}, step {t}, "
                                 f"index {where}: snnconv {got[(b, t, *where)]}, XyloSim "
                                 f"{ref[(b, t, *where)]}")
    return ours


def spec_kwargs(arrays) -> dict:
    """The specification's keys of an exported ``.npz``, as written, minus ``chip`` (which
    names the XyloSim module) and snnconv's host-side ``snnconv_*`` keys."""
    return {k: arrays[k] for k in arrays if not k.startswith("snnconv_") and k != "chip"}


# ----------------------------------------------------------------------------- the example

@pytest.fixture(scope="module")
def example_network(tmp_path_factory):
    """The Xylo example as config_templates/xylo.ini builds it, exported to .npz."""
    import snnconv
    from snnconv.data import bundled_dataset_path
    from snnconv.simulators.xylo import build_xylo_network
    data = snnconv.load_dataset(bundled_dataset_path(), (28, 28, 1), 1 / 255)
    graph = snnconv.normalize(snnconv.parse(EXAMPLE_MODEL), data.x_norm[:300])
    net = build_xylo_network(graph, chip="syns65302", quantization="per_channel",
                             events_per_unit=4.0)
    path = net.save(tmp_path_factory.mktemp("xylo") / "snn.npz")
    return path, data


def test_exported_npz_loads_into_xylosim_with_its_keys_as_written(example_network):
    path, _ = example_network
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    kwargs = spec_kwargs(arrays)
    # every specification key is a parameter of Rockpool's from_specification, for each chip
    # module (Audio 2's takes no **kwargs, so a key it does not know would fail there)
    for chip in ("syns61201", "syns65302"):
        params = inspect.signature(xylo_sim_class(chip).from_specification).parameters
        assert set(kwargs) <= set(params), sorted(set(kwargs) - set(params))
    assert set(kwargs) | {"chip"} == set(XyloSpec.__dataclass_fields__)
    assert str(arrays["chip"]) == "syns65302" and "dt" in SCALAR_KEYS
    sim = xylo_sim_class(str(arrays["chip"])).from_specification(**kwargs)
    assert sim.dt == pytest.approx(float(arrays["dt"]))


def test_example_network_is_bit_exact_in_xylosim(example_network):
    path, data = example_network
    net = load_xylo(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    sim = xylo_sim_class(net.spec.chip).from_specification(**spec_kwargs(arrays))
    events = encode_events(net, data.x_test[:3], 60)
    assert events.max() > 0
    ours = assert_bit_exact(net.spec, sim, events, "Xylo example")
    assert ours.spikes.sum() > 0 and ours.spikes_out.sum() > 0    # it is not a silent network


# ----------------------------------------------------------------------------- random networks

def random_spec(rng, n_syn: int, regime: str, n_in=4, n_hid=6, n_out=3) -> XyloSpec:
    """A random integer network; ``regime`` picks what it exercises."""
    w = lambda *s: rng.integers(-128, 128, s)   # noqa: E731
    dash = lambda n: rng.integers(0, 16, n)     # noqa: E731 (0 included)
    if regime == "small":          # small weights, fast decays: no saturation
        w = lambda *s: rng.integers(-20, 21, s)   # noqa: E731
        shifts = (0, 0, 0)
        threshold = lambda n: rng.integers(20, 400, n)   # noqa: E731
        bias = lambda n: rng.integers(-5, 6, n)          # noqa: E731
        dash = lambda n: rng.integers(0, 4, n)           # noqa: E731
    elif regime == "saturating":   # large shifted weights and biases
        shifts = tuple(int(s) for s in rng.integers(5, 8, 3))
        threshold = lambda n: rng.integers(1, HI + 1, n)   # noqa: E731
        bias = lambda n: rng.integers(LO, HI + 1, n)       # noqa: E731
    elif regime == "pinned":       # dash_mem 0 with strongly negative drive: V = -32768
        shifts = (7, 7, 7)
        threshold = lambda n: rng.integers(1, 2000, n)     # noqa: E731
        bias = lambda n: rng.integers(LO, -8000, n)        # noqa: E731
        dash = lambda n: np.where(rng.random(n) < 0.7, 0, rng.integers(0, 16, n))  # noqa: E731
    else:                          # anything
        shifts = tuple(int(s) for s in rng.integers(0, 8, 3))
        threshold = lambda n: rng.integers(1, 5000, n)     # noqa: E731
        bias = lambda n: rng.integers(-300, 301, n)        # noqa: E731
    syn = (n_syn,) if n_syn == 2 else ()
    spec = XyloSpec(weights_in=w(n_in, n_hid, *syn), weights_rec=w(n_hid, n_hid, *syn),
                    weights_out=w(n_hid, n_out), dash_mem=dash(n_hid), dash_syn=dash(n_hid),
                    dash_syn_2=dash(n_hid), dash_mem_out=dash(n_out), dash_syn_out=dash(n_out),
                    threshold=threshold(n_hid), threshold_out=threshold(n_out),
                    bias=bias(n_hid), bias_out=bias(n_out), weight_shift_in=shifts[0],
                    weight_shift_rec=shifts[1], weight_shift_out=shifts[2],
                    chip="syns61201" if n_syn == 2 else "syns65302")
    if regime == "pinned":         # make sure input keeps pushing some neurons down
        spec.weights_in[:, :2] = -128
    return spec


REGIMES = ("small", "mixed", "saturating", "pinned")
SEEDS = range(4)


@pytest.mark.parametrize("n_syn", [1, 2])
def test_random_integer_networks_are_bit_exact_in_xylosim(n_syn):
    """4 regimes x 4 seeds per synapse count: 32 networks in all, each run on 2 samples of
    40 steps with input counts 0..40 (the chip clamps at 15)."""
    seen = dict(saturated=0, pinned=0, clamped=0, dash_zero=0, spiked=0)
    tried = 0
    for regime in REGIMES:
        for seed in SEEDS:
            rng = np.random.default_rng(1000 * n_syn + 100 * REGIMES.index(regime) + seed)
            spec = random_spec(rng, n_syn, regime)
            counts = rng.integers(0, 41, (2, 40, spec.num_inputs))
            events = np.where(rng.random(counts.shape) < 0.4, counts, 0)
            sim = xylo_sim_class(spec.chip).from_specification(
                **{k: v for k, v in spec.to_dict().items() if k != "chip"})
            ours = assert_bit_exact(spec, sim, events, f"{regime} network, seed {seed}, "
                                                       f"{n_syn} synapse(s)")
            tried += 1
            seen["saturated"] += int(np.any(ours.isyn >= HI) or np.any(ours.v >= HI)
                                     or np.any(ours.isyn <= LO + 1))
            pinned = (ours.v == LO) & (spec.dash_mem == 0)
            seen["pinned"] += int(np.any(pinned[:, 1:] & pinned[:, :-1]))
            seen["clamped"] += int(np.any(events > 15))
            seen["dash_zero"] += int(np.any(spec.dash_mem == 0) and np.any(spec.dash_syn == 0))
            seen["spiked"] += int(ours.spikes.sum() > 0)
    assert tried == len(REGIMES) * len(SEEDS)
    # the networks exercise what they are meant to
    assert all(count > 0 for count in seen.values()), seen
