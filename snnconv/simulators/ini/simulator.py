"""The built-in INI simulator: Spike* Keras layers run by Keras/TensorFlow."""
from __future__ import annotations

from pathlib import Path

from ... import defaults
from ...choices import SPIKE_CODES
from ...errors import ConfigError, DataError
from ...ir import Graph
from ...neurons import TTFSExactNeuron
from ..base import NetworkInfo, Simulator, if_neuron_options
from .builder import build_spiking_model
from .delays import ttfs_merge_delays
from .engine import (ENGINES, input_layer, neuron_count, output_layer, simulate_batch,
                     spiking_layers, xla_pays)


# ttfs / ttfs_dyn_thresh: a branch that reaches a merge through fewer layers of
# neurons is delayed by this many v_thresh (time units) per layer it skips: about
# the time one layer adds to the median first-spike time (Fashion-MNIST ResNet
# example, dt 0.25: 0.5-0.75 per layer under ttfs, 1.5-2 under ttfs_dyn_thresh)
MERGE_DELAY = {"ttfs": 0.5, "ttfs_dyn_thresh": 2.0}


class IniSimulator(Simulator):
    name = "INI"
    spike_codes = SPIKE_CODES
    # can stop a batch once every sample has decided (TTFS output layers)
    early_stopping = True
    distributes = True
    engines = ENGINES
    saves = True
    file_suffix = ".keras"
    calibrates = ("rate",)
    finetunes = ("rate",)
    bursts = ("rate",)

    def convert(self, graph: Graph, spike_code: str = "rate", *, v_thresh: float = 1.0,
                reset: str = "subtraction", tau_refrac: float = 0.0, dt: float = 1.0,
                tau_mem: float | None = None, max_spikes_per_dt: int = 1,
                v_init: float = defaults.V_INIT, poisson_input: bool = False, input_rate: float = 1000.0,
                seed: int | None = None, max2avg_pool: bool = False,
                threshold_mode: str = "inclusive", v_reset: float = 0.0,
                burst: int | str = defaults.BURST, clip_windows: bool = False,
                merge_delay: float | None = None):
        """``burst`` (rate code): up to ``burst`` times ``max_spikes_per_dt`` spikes
        a step, each worth ``1 / burst`` of a spike of threshold ``v_thresh``:
        the neurons have the threshold ``v_thresh / burst``, ``max_spikes_per_dt
        * burst`` spikes a step and start at ``v_init / burst``, so a neuron
        carries the same values in ``burst`` times finer steps (see
        docs/low_latency.md, "Several spikes per step"). ``"auto"``:
        :data:`snnconv.defaults.AUTO_BURST` for the rate code's neurons with a reset by
        subtraction and no refractory period, 1 for the others and for nodes
        trained with QCFS (:meth:`check_burst`); 1: binary spikes, as Brian 2,
        NIR and Xylo take them.
        ``clip_windows`` (``ttfs_exact``): time windows of length 1 (the
        normalisation scale) instead of each layer's largest activation.
        ``merge_delay`` (``ttfs``, ``ttfs_dyn_thresh``): the delay, per layer of
        neurons, of a branch that reaches an ``Add`` or ``Concatenate`` through
        fewer layers than another (None: ``MERGE_DELAY[spike_code] * v_thresh``;
        0: none)."""
        spike_code = self.check_spike_code(spike_code)
        burst = self.check_burst(burst, spike_code, graph, reset, tau_refrac)
        if spike_code == "ttfs_exact":
            # exact TTFS neurons on the dt grid (their windows set the threshold; the
            # cell settings do not apply); the input is an analog current
            if poisson_input:
                raise ConfigError("spike_code ttfs_exact takes the analog input as a current; "
                                  "Poisson input does not apply")
            from .exact import build_ttfs_exact_model
            return build_ttfs_exact_model(graph, float(dt), clip_windows=clip_windows,
                                          max2avg_pool=max2avg_pool)[0]
        if spike_code == "rate":
            neuron = {"model": "if", "v_thresh": float(v_thresh) / burst, "reset": reset,
                      "tau_refrac": float(tau_refrac), "dt": float(dt),
                      "tau_mem": None if tau_mem is None else float(tau_mem),
                      "max_spikes_per_dt": int(max_spikes_per_dt) * burst,
                      "v_init": float(v_init) / burst,
                      "threshold_mode": threshold_mode, "v_reset": float(v_reset)}
            if burst > 1:
                neuron["burst"] = burst
        else:
            # TTFS neurons fire once, reset to zero and stay refractory: the
            # reset, refractory, leak and multi-spike settings do not apply.
            neuron = {"model": "ttfs", "v_thresh": float(v_thresh), "dt": float(dt),
                      "dyn_thresh": spike_code == "ttfs_dyn_thresh"}
            delay = MERGE_DELAY[spike_code] * float(v_thresh) if merge_delay is None \
                else float(merge_delay)
            graph, delays = ttfs_merge_delays(graph, delay, float(dt),
                                              spike_code == "ttfs_dyn_thresh", max2avg_pool)
            return build_spiking_model(graph, neuron, poisson_input=poisson_input,
                                       input_rate=input_rate, seed=seed, spike_code=spike_code,
                                       delays=delays)
        return build_spiking_model(graph, neuron, poisson_input=poisson_input,
                                   input_rate=input_rate, seed=seed, max2avg_pool=max2avg_pool,
                                   spike_code=spike_code)

    def options_from_config(self, config) -> dict:
        self.check_config(config)
        return if_neuron_options(config)

    def calibrate(self, snn, graph, x, num_steps, method="light", **options):
        from .calibration import calibrate
        return calibrate(snn, graph, x, num_steps, method, **options)

    def finetune(self, snn, x, y, num_steps, **options):
        from .finetune import finetune
        return finetune(snn, x, y, num_steps, **options)

    def accepts(self, snn) -> bool:
        import keras
        return isinstance(snn, keras.Model) and not hasattr(snn, "lif_layers")

    def info(self, snn) -> NetworkInfo:
        inp = input_layer(snn)

        def check_input(xb):
            if inp.poisson and (xb.min() < 0 or xb.max() > inp.spike_amplitude):
                raise DataError(
                    f"Poisson input needs values in [0, {inp.spike_amplitude:g}] "
                    f"(1000 / (input_rate * dt)); the data spans [{xb.min():g}, {xb.max():g}]")

        out = output_layer(snn)
        return NetworkInfo(dt=inp.dt, ann_macs=inp.ann_macs,
                           neurons={lay.name: neuron_count(lay) for lay in spiking_layers(snn)},
                           output_name=out.name, decides=out.spike_amplitude is not None,
                           spike_code=inp.spike_code, check_input=check_input,
                           decision_time=_readout_time(out))

    def summary_lines(self, snn) -> list[str]:
        time = _readout_time(output_layer(snn))
        if time is None:
            return []
        dt = input_layer(snn).dt
        return [f"ttfs_exact: the output is read at t = {time:g} (step {round(time / dt)} of "
                f"dt = {dt:g}); simulation.duration must reach it"]

    def simulate_batch(self, snn, x, steps, *, strategy=None, early_stopping=False,
                       engine="auto"):
        return simulate_batch(snn, x, steps, strategy, early_stopping=early_stopping,
                              engine=engine)

    def engine_used(self, snn, engine: str) -> str:
        if engine == "auto":
            return "xla" if xla_pays(snn) else "graph"
        return engine

    def run_facts(self, snn) -> dict:
        """``burst``: what ``cell.burst`` (``auto`` included) gave the neurons;
        ``intra_op_threads``: TensorFlow's threads per operation in this process
        (0: its own choice; ``simulation.intra_op_threads``)."""
        from ...tf_threads import intra_op_threads
        from .engine import spiking_layers
        return {"burst": max((getattr(lay.neuron, "burst", 1) for lay in spiking_layers(snn)),
                             default=1),
                "intra_op_threads": intra_op_threads()}

    def save(self, snn, path) -> Path:
        path = Path(self.file_name(path))
        snn.save(path)
        return path

    def can_load(self, path: Path) -> bool:
        return Path(path).suffix == self.file_suffix

    def load(self, path):
        from ...layers.io import load_snn
        return load_snn(path)

    def record_samples(self, snn, x, steps):
        from .recording import record_samples
        return record_samples(snn, x, steps)

    def diagnostics(self, graph, snn, x, steps):
        """Per layer, the ANN activation against the SNN's rate (rate code), its
        first-spike time (ttfs, ttfs_dyn_thresh; the output layer's neurons too,
        against the ANN's logits through a ReLU) or the value its spike carries
        (ttfs_exact)."""
        from ...diagnostics import EXACT_VALUE_LABEL, ann_vs_snn, ann_vs_values
        code = input_layer(snn).spike_code
        if code == "rate":
            return ann_vs_snn(graph, snn, x, steps)
        from .recording import first_spike_values
        values = first_spike_values(snn, x, steps)
        g = graph.copy()
        g.output_node.activation = "relu"          # what the TTFS output neurons receive
        values = {k: v for k, v in values.items() if k in {n.name for n in g}}
        if code == "ttfs_exact":
            return ann_vs_values(g, x, values, label=EXACT_VALUE_LABEL)
        return ann_vs_values(g, x, values, spike_times=True)


def _readout_time(out) -> float | None:
    """When a ttfs_exact output layer is read (the end of its integration window), else None."""
    neuron = out.neuron
    if isinstance(neuron, TTFSExactNeuron) and not neuron.fires:
        return neuron.window[1] * neuron.dt
    return None
