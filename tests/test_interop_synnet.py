"""snnconv's SynNet against Rockpool's, and its Xylo export against SynSense's XyloSim.

Runs in the interop environment (``make test`` builds ``.venv-interop`` with
rockpool 3.1.0, torch 2.13.0 CPU and xylosim 0.1.3); skipped elsewhere.

* The same weights and time constants in ``rockpool.nn.networks.SynNet`` and in
  ``snnconv.SynNet(delay=False)`` (Rockpool trains without Xylo's delay) give the
  same spikes, membrane potentials and synaptic currents in every layer, on
  random spike-count input, to 1e-5.
* A trained ``snnconv.SynNet`` quantized with ``to_xylo`` and exported as
  ``snnconv train`` writes it runs bit for bit the same in Rockpool's
  ``XyloSim`` (Xylo Audio 2) as in snnconv's integer simulation: every hidden
  and output current, potential and spike of every step.
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

torch = pytest.importorskip("torch", reason="needs torch (the interop environment)")
pytest.importorskip("rockpool", reason="needs rockpool (the interop environment)")
pytest.importorskip("xylosim.v2", reason="needs xylosim (the interop environment)")

import snnconv  # noqa: E402
from test_interop_xylo import assert_bit_exact, spec_kwargs, xylo_sim_class  # noqa: E402

ARCH = dict(size_hidden_layers=[12, 9, 7], time_constants_per_layer=[3, 2, 2],
            tau_syn_base=0.02, tau_mem=0.02, tau_syn_out=0.02, dt=0.01)


def rockpool_synnet(output: str, **extra):
    from rockpool.nn.networks import SynNet
    return SynNet(n_classes=4, n_channels=6, output=output, **ARCH, **extra)


@pytest.mark.parametrize("output", ["vmem", "spikes"])
def test_same_weights_give_rockpools_dynamics(output):
    extra = {} if output == "vmem" else {"threshold_out": 0.8}
    ours = snnconv.SynNet(4, 6, output=output, delay=False, **ARCH, **extra)
    theirs = rockpool_synnet(output, **extra)
    modules = dict(theirs.seq.named_children()) if hasattr(theirs.seq, "named_children") \
        else theirs.seq.modules()
    names = [(f"{i}_linear", f"{i}_neurons") for i in range(3)] + [("out_linear",
                                                                        "out_neurons")]
    rng = np.random.default_rng(0)
    for layer, (linear, neurons) in zip(ours.lif_layers, names):
        w = rng.normal(0, 1.2, layer.kernel.shape[:2]).astype(np.float32)
        layer.kernel.assign(w[:, :, None])
        modules[linear].weight.data = torch.tensor(w)
        # the time constants are Rockpool's own (quantized to bit shifts alike)
        np.testing.assert_allclose(layer.tau_syn.numpy()[:, 0],
                                   np.broadcast_to(modules[neurons].tau_syn.detach().numpy()
                                                   .reshape(-1), (layer.units,)), rtol=1e-6)
        np.testing.assert_allclose(layer.tau_mem.numpy(), float(modules[neurons].tau_mem),
                                   rtol=1e-6)
    x = rng.poisson(1.0, (3, 60, 6)).astype(np.float32)
    _, _, rec = theirs.evolve(torch.tensor(x), record=True)
    got = ours.record(x)
    total = 0
    for layer, (_, neurons) in zip(ours.lif_layers, names):
        ref = {k: rec[neurons][k].detach().numpy() for k in ("spikes", "vmem", "isyn")}
        mine = got[layer.name]
        last = layer is ours.lif_layers[-1]
        if not (last and output == "vmem"):
            np.testing.assert_array_equal(mine["spikes"], ref["spikes"], err_msg=layer.name)
            total += ref["spikes"].sum()
        # states equal within float32 rounding relative to their range (the two
        # sum the synaptic inputs in different orders; seen: 4.7e-5 on a range of 18)
        for key in ("vmem", "isyn"):
            scale = max(1.0, float(np.abs(ref[key]).max()))
            np.testing.assert_allclose(mine[key], ref[key], atol=1e-5 * scale, rtol=1e-5,
                                       err_msg=f"{layer.name} {key}")
    assert total > 50                      # the comparison exercises spiking and resets


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A SynNet trained briefly on the bundled keyword events, exported for Xylo Audio 2."""
    import keras
    from snnconv.audio.data import load_keyword_events
    data = load_keyword_events()
    keras.utils.set_random_seed(0)
    net = snnconv.SynNet(8, 16, [20, 16], [3, 3], tau_syn_base=0.02, tau_mem=0.02,
                         tau_syn_out=0.02, dt=0.01, output="vmem")
    snnconv.train_synnet(net, data.x_train[:256], data.y_train[:256], epochs=2, verbose=0)
    xylo = snnconv.to_xylo(net, chip="syns61201")
    path = xylo.save(tmp_path_factory.mktemp("synnet") / "xylo.npz")
    return path, data


def test_trained_synnet_is_bit_exact_in_xylosim(trained):
    from snnconv.simulators.xylo import load_xylo
    path, data = trained
    net = load_xylo(path)
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    sim = xylo_sim_class("syns61201").from_specification(**spec_kwargs(arrays))
    events = data.x_test[:6].astype(int)
    ours = assert_bit_exact(net.spec, sim, events, "trained SynNet")
    assert ours.spikes.sum() > 100 and np.abs(ours.v_out).max() > 0


def float_layout(net):
    """The SynNet's float matrices in Xylo's layout, built here independently."""
    ws = [layer.kernel.numpy()[:, :, 0].astype(np.float64) for layer in net.lif_layers]
    sizes = [w.shape[1] for w in ws[:-1]]
    n, edges = sum(sizes), np.cumsum([0] + sizes)
    w_in, w_rec, w_out = np.zeros((ws[0].shape[0], n)), np.zeros((n, n)), np.zeros((n, 4))
    w_in[:, :sizes[0]] = ws[0]
    for i in range(1, len(sizes)):
        w_rec[edges[i - 1]:edges[i], edges[i]:edges[i + 1]] = ws[i]
    w_out[edges[-2]:] = ws[-1]
    return w_in, w_rec, w_out, np.ones(n), np.full(4, 0.8)


@pytest.mark.parametrize("method", ["global", "per_channel"])
def test_quantization_is_rockpools(method):
    from rockpool.transform.quantize_methods import channel_quantize, global_quantize
    net = snnconv.SynNet(4, 6, output="spikes", threshold_out=0.8, **ARCH)
    w_in, w_rec, w_out, th, th_out = float_layout(net)
    dashes = {k: np.ones(n) for k, n in (("dash_mem", 28), ("dash_syn", 28),
                                          ("dash_syn_2", 28), ("dash_mem_out", 4),
                                          ("dash_syn_out", 4))}
    reference = (global_quantize if method == "global" else channel_quantize)(
        weights_in=w_in, weights_rec=w_rec, weights_out=w_out, threshold=th,
        threshold_out=th_out, **dashes)
    spec = snnconv.to_xylo(net, quantization=method).spec
    for key in ("weights_in", "weights_rec", "weights_out", "threshold", "threshold_out"):
        ref = np.asarray(reference[key])
        ref = ref[..., 0] if ref.ndim == 3 else ref
        np.testing.assert_array_equal(np.asarray(getattr(spec, key)), ref, err_msg=key)
