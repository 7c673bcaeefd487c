"""The Brian 2 target: synapse maps, spike counts equal to the INI simulator's, refusals.

The map tests need numpy only and always run. The simulation tests need the
optional package ``brian2`` (``pip install 'snnconv[brian2]'``, which pins
numpy < 2); ``make test`` runs this file in a second environment that has it.
"""
from __future__ import annotations

import keras
import numpy as np
import pytest

import snnconv
from snnconv.errors import ConfigError, MissingDependencyError, UnsupportedLayerError
from snnconv.simulators.ini import spiking_layers
from snnconv.simulators.brian import plan_layers
from snnconv.simulators.brian.maps import node_maps

from helpers import make_conv_model, make_dense_model, normalise_on_random

try:
    import brian2  # noqa: F401
    HAVE_BRIAN2 = True
except ImportError:
    HAVE_BRIAN2 = False

needs_brian2 = pytest.mark.skipif(
    not HAVE_BRIAN2, reason="brian2 is not installed (pip install 'snnconv[brian2]', which "
    "needs numpy < 2); make test runs these tests in .venv-brian2")


# --- maps (numpy only) ---------------------------------------------------------

@pytest.mark.parametrize("layer", [
    keras.layers.Conv2D(3, 3, padding="same", strides=2, name="op"),
    keras.layers.Conv2D(3, (3, 2), dilation_rate=2, name="op"),
    keras.layers.DepthwiseConv2D(3, depth_multiplier=2, padding="same", name="op"),
    keras.layers.AveragePooling2D(3, strides=2, padding="same", name="op"),
    keras.layers.AveragePooling2D(2, name="op"),
    keras.layers.ZeroPadding2D(((1, 0), (2, 1)), name="op"),
    keras.layers.Flatten(name="op"),
])
def test_a_layers_map_computes_the_layer(layer):
    keras.utils.set_random_seed(2)
    inp = keras.Input((7, 6, 2))
    model = keras.Model(inp, layer(inp))
    node = snnconv.parse(model)["op"]
    (m,), bias = node_maps(node, [(7, 6, 2)])
    x = np.random.default_rng(0).normal(size=(7, 6, 2)).astype("float32")
    np.testing.assert_allclose(m.apply(x.ravel().astype(float)) + bias,
                               model(x[None]).numpy().ravel(), atol=1e-5)


def test_plan_folds_weightless_layers_into_the_synapses():
    graph, x = normalise_on_random(make_conv_model())
    plan = plan_layers(graph)
    assert plan.spiking == ["conv_1", "conv_2", "dense"] and plan.output_name == "readout"
    # conv_2 reads conv_1 through the average pooling: one map, no pooling layer of its own
    assert list(plan.currents["conv_2"].maps) == ["conv_1"]
    ann = snnconv.build_ann(graph, outputs=["conv_1", "conv_2"]).predict(x[:3], verbose=0)
    for k in range(3):
        cur = plan.currents["conv_2"]
        pre = np.maximum(cur.maps["conv_1"].apply(ann[0][k].ravel().astype(float))
                         + cur.const, 0)
        np.testing.assert_allclose(pre, ann[1][k].ravel(), atol=1e-5)


def test_unsupported_layers_are_refused_with_their_names():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="conv")(inp)
    x = keras.layers.MaxPooling2D(2, name="my_maxpool")(x)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    graph = snnconv.parse(keras.Model(inp, out))
    with pytest.raises(UnsupportedLayerError, match="my_maxpool"):
        plan_layers(graph)
    assert plan_layers(graph, max2avg_pool=True).sizes["my_maxpool"] == 18   # as average

    # the parser refuses hidden softmax layers already; a graph made otherwise is refused here
    graph = snnconv.parse(make_dense_model())
    graph["dense_2"].activation = "softmax"
    with pytest.raises(UnsupportedLayerError, match="dense_2"):
        plan_layers(graph)


def test_ttfs_and_multiple_spikes_per_step_are_refused():
    graph, _ = normalise_on_random(make_dense_model())
    with pytest.raises(snnconv.errors.SnnconvError, match="rate code only"):
        snnconv.convert(graph, simulator="brian2", spike_code="ttfs")
    with pytest.raises(ConfigError, match="max_spikes_per_dt"):
        snnconv.convert(graph, simulator="brian2", max_spikes_per_dt=2)


@pytest.mark.skipif(HAVE_BRIAN2, reason="checks the message shown when brian2 is missing")
def test_missing_brian2_says_how_to_install_it(tmp_path):
    graph, _ = normalise_on_random(make_dense_model())
    with pytest.raises(MissingDependencyError, match=r"pip install 'snnconv\[brian2\]'"):
        snnconv.convert(graph, simulator="brian2")


@pytest.mark.skipif(HAVE_BRIAN2, reason="checks the message shown when brian2 is missing")
def test_cli_without_brian2_exits_2_with_the_install_hint(tmp_path, capsys):
    from helpers import write_bundled_config
    from snnconv.cli import main
    cfg = write_bundled_config(tmp_path / "c.ini", 20, {"simulator": "brian2", "num_to_test": 5,
                                                       "duration": 5})
    assert main(["run", str(cfg)]) == 2
    assert "snnconv[brian2]" in capsys.readouterr().err


@needs_brian2
def test_cli_refuses_max_pooling_naming_the_layer(tmp_path, capsys):
    from helpers import write_bundled_config
    from snnconv.cli import main
    cfg = write_bundled_config(tmp_path / "c.ini", 20, {"simulator": "brian2", "num_to_test": 5,
                                                       "duration": 5})
    assert main(["run", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "maxpool2" in err and "max2avg_pool" in err


# --- simulation (brian2) -----------------------------------------------------

def ini_counts(snn, x, steps):
    """Spikes per neuron of every spiking layer of an INI model, for inputs x."""
    layers = spiking_layers(snn)
    probe = keras.Model(snn.inputs, [lay.output for lay in layers])
    frames = np.repeat(x[:, None], steps, axis=1)
    outs = probe([frames])
    outs = outs if isinstance(outs, (list, tuple)) else [outs]
    return {lay.name: np.rint(np.asarray(o).sum(axis=1) / lay.spike_amplitude)
            .reshape(len(x), -1) for lay, o in zip(layers, outs)}


def compare(graph, x, steps, **options):
    # Brian 2's neurons fire once a step: the INI network with burst 1 is the same
    ini = snnconv.convert(graph, simulator="INI", **{"burst": 1, **options})
    net = snnconv.convert(graph, simulator="brian2", **options)
    ref = ini_counts(ini, x, steps)
    got = [net.run_sample(s, steps, with_counts=True) for s in x]
    return ref, {name: np.stack([g["counts"][name] for g in got]) for name in ref}, ini, net


@needs_brian2
@pytest.mark.parametrize("options", [
    {},
    {"reset": "zero", "tau_refrac": 2.0, "v_thresh": 0.5},
    {"tau_mem": 20.0, "threshold_mode": "strict", "reset": "to_value", "v_reset": 0.1},
])
def test_dense_spike_counts_equal_the_ini_simulators(options):
    graph, x = normalise_on_random(make_dense_model())
    ref, got, _, _ = compare(graph, x[:6], 40, **options)
    for name in ref:
        np.testing.assert_array_equal(got[name], ref[name], err_msg=name)
    assert sum(r.sum() for r in ref.values()) > 100       # the network does spike


@needs_brian2
def test_conv_spike_counts_equal_the_ini_simulators():
    graph, x = normalise_on_random(make_conv_model())
    ref, got, _, _ = compare(graph, x[:4], 50)
    total = same = 0
    for name in ref:
        diff = np.abs(got[name] - ref[name])
        assert diff.max() <= 1, name
        total += diff.size
        same += (diff == 0).sum()
    assert same / total >= 0.99
    assert sum(r.sum() for r in ref.values()) > 100


@needs_brian2
def test_batches_through_the_evaluation_match_the_ini_simulator():
    graph, x = normalise_on_random(make_conv_model())
    y = np.arange(8) % 4
    ini = snnconv.convert(graph, simulator="INI", burst=1)
    net = snnconv.convert(graph, simulator="brian2")
    a = snnconv.evaluate(ini, x[:8], y, num_steps=30, batch_size=4)
    b = snnconv.evaluate(net, x[:8], y, num_steps=30, batch_size=3)
    assert b.neurons == a.neurons
    for name in a.spikes_per_step:
        np.testing.assert_allclose(b.spikes_per_step[name].sum(), a.spikes_per_step[name].sum(),
                                   rtol=0.01)
    np.testing.assert_allclose(b.synops_per_step.sum(), a.synops_per_step.sum(), rtol=0.01)
    np.testing.assert_allclose(b.accuracy_per_step[-5:], a.accuracy_per_step[-5:], atol=0.13)


@needs_brian2
def test_readout_accumulates_the_output_current_like_ini():
    graph, x = normalise_on_random(make_dense_model())
    ini = snnconv.convert(graph, simulator="INI", burst=1)
    net = snnconv.convert(graph, simulator="brian2")
    ref = snnconv.simulators.ini.simulate_batch(ini, x[:3], 25)
    got = snnconv.simulators.get_simulator("brian2").simulate_batch(net, x[:3], 25)
    np.testing.assert_allclose(got.readout, ref.readout, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(got.synops, ref.synops, rtol=1e-5)
    for name in ref.spikes:
        np.testing.assert_array_equal(got.spikes[name], ref.spikes[name])


@needs_brian2
def test_poisson_input_drives_the_network():
    graph, x = normalise_on_random(make_dense_model())
    net = snnconv.convert(graph, simulator="brian2", poisson_input=True, seed=3)
    out = snnconv.simulators.get_simulator("brian2").simulate_batch(net, x[:2], 50)
    assert net.input_layer_name == f"{graph.input_node.name}_spikes"
    rate = out.spikes[net.input_layer_name].mean() / graph.input_node.output_shape[0]
    assert abs(rate - x[:2].mean()) < 0.05            # one spike per step at value 1
    assert out.spikes["dense_1"].sum() > 0
    assert out.readout.shape == (2, 50, 5)


@needs_brian2
def test_pipeline_runs_brian2_from_a_config(tmp_path):
    from helpers import write_bundled_config
    cfg = write_bundled_config(
        tmp_path / "c.ini", 20, {"simulator": "brian2", "num_to_test": 4, "duration": 20,
                                 "batch_size": 2},
        extra="[conversion]\nmax2avg_pool = true\n[brian2]\ncodegen_target = numpy\n")
    outcome = snnconv.run(snnconv.load_config(cfg))
    assert outcome.summary["simulator"] == "brian2"
    assert outcome.result.num_samples == 4


@needs_brian2
def test_a_fine_tuned_network_runs_on_brian2_with_its_initial_potentials():
    """snnconv.finetune's per-neuron initial potentials and weights, carried by
    to_graph into Brian 2: the same spike counts as the INI network."""
    from snnconv.simulators.ini.finetune import to_graph
    graph, x = normalise_on_random(make_dense_model())
    y = np.arange(len(x)) % 5
    tuned = snnconv.finetune(snnconv.convert(graph, v_init=0.5, burst=1), x, y, num_steps=8,
                             epochs=2, batch_size=16, learning_rate=1e-2)
    v0 = tuned.get_layer("dense_1").v_init.numpy()
    assert np.std(v0) > 0                       # per neuron, not the single 0.5
    tuned_graph = to_graph(tuned, graph)
    net = snnconv.convert(tuned_graph, simulator="brian2", v_init=0.5)
    ref = ini_counts(tuned, x[:6], 8)
    got = [net.run_sample(s, 8, with_counts=True) for s in x[:6]]
    for name in ref:
        np.testing.assert_array_equal(np.stack([g["counts"][name] for g in got]), ref[name],
                                      err_msg=name)
    assert sum(r.sum() for r in ref.values()) > 20
