"""``snnconv run``: parse -> normalise -> convert -> simulate -> evaluate, from one Config."""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from .errors import DataError

log = logging.getLogger(__name__)

# samples whose ANN activations and SNN rates are compared neuron by neuron
DIAGNOSTIC_SAMPLES = 10
# samples whose spike trains (and membrane potentials) are kept in results.h5
RECORDED_SAMPLES = 3


@dataclasses.dataclass
class RunOutcome:
    run_dir: Path
    summary: dict
    ann_accuracy: float | None
    result: object | None          # EvaluationResult, when simulated
    snn: object


def run(config) -> RunOutcome:
    """Run the whole pipeline described by ``config`` (a :class:`snnconv.config.Config`)."""
    import keras

    from .conversion import convert
    from .evaluation import evaluate
    from .normalization import normalize
    from .parsing import load_model, parse
    from .results import staged_run_dir, write_results

    # TensorFlow warns about re-traced predict functions when one process
    # converts several models (sweeps); that is expected here, not a problem.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    keras.utils.set_random_seed(config.simulation.seed)
    verbose = config.output.verbose
    say = print if verbose else (lambda *a, **k: None)

    ann = load_model(config.paths.filename_ann)
    graph = parse(ann)
    say(f"parsed {config.paths.filename_ann.name}: {len(graph)} nodes")
    if verbose > 1:
        say(graph.summary())

    tools = config.tools
    data = None
    if tools.evaluate_ann or tools.normalize or tools.simulate:
        if config.paths.dataset_path is None:
            raise DataError("paths.dataset_path is empty, but tools.evaluate_ann, "
                            "tools.normalize or tools.simulate needs data")
        from .datasets import load_dataset
        data = load_dataset(config.paths.dataset_path, graph.input_node.output_shape,
                            config.input.input_scale)
        n_test = min(config.simulation.num_to_test, len(data.x_test))
        x_test, y_test = data.x_test[:n_test], data.y_test[:n_test]

    ann_accuracy = None
    if tools.evaluate_ann:
        probs = ann.predict(x_test, batch_size=config.simulation.batch_size, verbose=0)
        ann_accuracy = float(np.mean(np.argmax(probs, axis=-1) == y_test))
        say(f"ANN accuracy on {n_test} samples: {100 * ann_accuracy:.2f} %")

    if tools.normalize:
        norm = config.normalization
        if data.x_norm is None:
            raise DataError(f"dataset {data.source} has no x_norm (or x_train) for "
                            "normalisation; add one or set tools.normalize = false")
        x_norm = data.x_norm[:norm.num_norm_samples]
        graph = normalize(graph, x_norm, method=norm.method, percentile=norm.percentile,
                          batch_size=norm.batch_size, per_channel=norm.per_channel)
        say(f"normalised on {len(x_norm)} samples ({norm.method}"
            + (f" {norm.percentile:g}" if norm.method == "percentile" else "") + ")")

    cell = config.cell
    snn = convert(graph, simulator=config.simulation.simulator,
                  spike_code=config.conversion.spike_code,
                  v_thresh=cell.v_thresh, reset=cell.reset, tau_refrac=cell.tau_refrac,
                  dt=config.simulation.dt, tau_mem=cell.tau_mem if cell.leak else None,
                  max_spikes_per_dt=cell.max_spikes_per_dt, v_init=cell.v_init,
                  poisson_input=config.input.poisson_input, input_rate=config.input.input_rate,
                  seed=config.simulation.seed, max2avg_pool=config.conversion.max2avg_pool)

    run_dir = config.paths.log_dir_of_current_run
    with staged_run_dir(run_dir, overwrite=config.output.overwrite) as stage:
        if tools.save_snn:
            snn.save(stage / config.paths.filename_snn)
        result, pairs, samples = None, None, None
        if tools.simulate:
            sim = config.simulation
            result = evaluate(snn, x_test, y_test, num_steps=sim.num_steps,
                              batch_size=sim.batch_size, top_k=sim.top_k,
                              progress=verbose > 0)
            if config.conversion.spike_code == "rate":
                from .diagnostics import ann_vs_snn
                pairs = ann_vs_snn(graph, snn, x_test[:DIAGNOSTIC_SAMPLES], sim.num_steps)
            from .recording import record_samples
            samples = record_samples(snn, x_test[:RECORDED_SAMPLES], sim.num_steps)
        summary = write_results(stage, result, ann_accuracy, config.to_ini(),
                                scales=graph.scales, plot=config.output.plot,
                                ann_vs_snn=pairs, samples=samples,
                                extra={"model": graph.name,
                                       "simulator": config.simulation.simulator,
                                       "spike_code": config.conversion.spike_code})
    if verbose:
        print(format_table(summary, result, config))
        print(f"results written to {run_dir}")
    return RunOutcome(run_dir, summary, ann_accuracy, result, snn)


def format_table(summary: dict, result, config) -> str:
    """The ANN-vs-SNN table printed at the end of a run."""
    rows = [f"{summary.get('model', 'model')}: simulator {config.simulation.simulator}, "
            f"spike code {config.conversion.spike_code}"]
    line = "-" * 60
    rows.append(line)

    def pct(v):
        return "n/a" if v is None else f"{100 * v:6.2f} %"

    rows.append(f"{'ANN accuracy':<36}{pct(summary.get('ann_accuracy'))}")
    if result is not None:
        rows[0] += f", {result.num_samples} samples, T = {result.num_steps} steps"
        for step, acc in summary["snn_accuracy_at_step"].items():
            rows.append(f"{'SNN accuracy at step ' + step:<36}{pct(acc)}")
        rows.append(f"{f'SNN top-{result.top_k} accuracy at step {result.num_steps}':<36}"
                    f"{pct(result.top_k_accuracy)}")
        within = summary["steps_to_within_1pt_of_ann"]
        if summary.get("ann_accuracy") is not None:
            rows.append(f"{'steps to within 1 pt of the ANN':<36}"
                        f"{'not reached' if within is None else within}")
        rows.append(f"{'spikes per sample':<36}{result.total_spikes:,.0f}")
        for name, v in result.spikes_per_neuron.items():
            rows.append(f"{'  per neuron, ' + name:<36}{v:.2f}")
        rows.append(f"{'SynOps per sample':<36}{result.synops:,.0f}")
        rows.append(f"{'ANN MACs per sample':<36}{result.ann_macs:,}")
        rows.append(f"{'SynOps / ANN MACs':<36}{result.synops_per_ann_mac:.2f}")
        if result.decision_steps is not None:
            mean = result.mean_decision_time
            rows.append(f"{'samples decided (output spiked)':<36}"
                        f"{100 * result.decided_fraction:6.2f} %")
            rows.append(f"{'mean decision time':<36}{'n/a' if mean is None else f'{mean:.1f}'}")
    rows.append(line)
    return "\n".join(rows)
