"""``snnconv run``: parse -> normalise -> convert -> simulate -> evaluate, from one Config."""
from __future__ import annotations

import logging

import numpy as np

from .errors import ConfigError, DataError
from .results import RunOutcome, check_run_dir, run_note
from .tables import format_run

log = logging.getLogger(__name__)

# samples whose ANN activations and SNN rates are compared neuron by neuron
DIAGNOSTIC_SAMPLES = 10
# samples whose spike trains (and membrane potentials) are kept in results.h5
RECORDED_SAMPLES = 3


def run(config, snn_file=None, check_only: bool = False) -> RunOutcome:
    """Run the whole pipeline described by ``config`` (a :class:`snnconv.config.Config`).

    With ``snn_file`` (a saved network: ``.keras`` SNN, Xylo or STDP ``.npz``)
    nothing is normalised or converted: that network is simulated and
    evaluated on the config's data, against the config's ANN. With
    ``check_only`` the run stops after the conversion (which, for Xylo,
    checks the chip's limits and prints what the network uses of it):
    nothing is simulated or written.
    """
    if not check_only:      # output.overwrite = false: stop before any work
        check_run_dir(config.paths.log_dir_of_current_run, config.output.overwrite)
    if config.stdp.enabled:
        if config.finetune.enabled:
            raise ConfigError("finetune.enabled = true cannot be used with stdp.enabled = true: "
                              "an STDP network learns by its own rule, not by surrogate "
                              "gradients; set finetune.enabled = false")
        if snn_file is not None or check_only:
            raise ConfigError("stdp.enabled: an STDP run trains its own network; --snn and "
                              "--check do not apply")
        from .stdp.run import run_stdp
        return run_stdp(config)

    import keras

    from .evaluation import check_labels, evaluate, make_strategy
    from .normalization import normalize
    from .parsing import load_model, parse
    from .results import staged_run_dir, write_results
    from .simulators import get_simulator, simulator_for_file
    from .simulators.base import normalize_spike_code

    # the backend: the config's simulator, or the one that loads the saved network;
    # settings it cannot honour are refused before any work
    if snn_file is None:
        backend = get_simulator(config.simulation.simulator)
        options = backend.options_from_config(config)
    else:
        backend = simulator_for_file(snn_file)
        backend.check_config(config, converting=False)

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
    sim, norm = config.simulation, config.normalization
    data = None
    if tools.evaluate_ann or tools.normalize or tools.simulate:
        if config.paths.dataset_path is None:
            raise DataError("paths.dataset_path is empty, but tools.evaluate_ann, "
                            "tools.normalize or tools.simulate needs data")
        data = _open_data(config, graph.input_node.output_shape)
        x_test, y_test, n_test = data["test"]
        check_labels(y_test, graph.output_node.output_shape[-1], f"{config.paths.dataset_path}")

    ann_accuracy = None
    if tools.evaluate_ann and not check_only:
        ann_accuracy = _ann_accuracy(ann, x_test, y_test, sim.batch_size)
        say(f"ANN accuracy on {n_test} samples: {100 * ann_accuracy:.2f} %")

    if tools.normalize and snn_file is None:
        x_norm, n_norm = data["norm"]
        # with cell.burst = k a neuron's count over T steps has k * T levels
        burst = backend.check_burst(config.cell.burst, normalize_spike_code(
            config.conversion.spike_code), graph, config.cell.reset, config.cell.tau_refrac)
        levels = (norm.num_steps or sim.num_steps) * burst
        graph = normalize(graph, x_norm, method=norm.method, percentile=norm.percentile,
                          batch_size=norm.batch_size, per_channel=norm.per_channel,
                          num_steps=levels, v_init=config.cell.v_init / config.cell.v_thresh)
        say(f"normalised on {n_norm} samples ({norm.method}"
            + (f" {norm.percentile:g}" if norm.method == "percentile" else "")
            + (f", {levels} levels" if norm.method == "t_aware" else "")
            + (", per channel" if norm.per_channel else ", one scale per layer") + ")")

    if snn_file is not None:
        snn = backend.load(snn_file)
        say(f"loaded the SNN {snn_file}")
        skipped = [key for key, on in (("calibration.method", config.calibration.method != "none"),
                                       ("finetune.enabled", config.finetune.enabled)) if on]
        if skipped and not check_only:
            log.warning("%s is evaluated as it was saved: %s of the config not applied "
                        "(they apply to a network the run converts)", snn_file,
                        " and ".join(skipped))
    else:
        snn = backend.convert(graph, spike_code=config.conversion.spike_code, **options)
    calibration = {}
    if config.calibration.method != "none" and snn_file is None and not check_only:
        snn, calibration = _calibrate(config, backend, snn, graph, data, say)
    if config.finetune.enabled and snn_file is None and not check_only:
        snn, finetuned = _finetune(config, backend, snn, graph, ann, say)
        calibration.update(finetuned)
    for line in backend.summary_lines(snn):
        say(line)
    if check_only:
        return RunOutcome(None, {"fits": True, "target": backend.target(snn)}, ann_accuracy,
                          None, snn)

    run_dir = config.paths.log_dir_of_current_run
    with staged_run_dir(run_dir, overwrite=config.output.overwrite) as stage:
        if tools.save_snn and snn_file is None:
            if backend.saves:
                backend.save(snn, stage / config.paths.filename_snn)
            else:
                say(f"tools.save_snn: a {backend.name} network is rebuilt from the model, "
                    "not saved")
        result, pairs, samples = None, None, None
        if tools.simulate:
            result = evaluate(snn, x_test, y_test, num_steps=sim.num_steps,
                              batch_size=sim.batch_size, top_k=sim.top_k,
                              progress=verbose > 0, strategy=make_strategy(sim.distribute),
                              early_stopping=sim.early_stopping, simulator=backend.name,
                              engine=sim.engine if backend.engines else None)
            x_head = data["head"](max(DIAGNOSTIC_SAMPLES, RECORDED_SAMPLES))
            if snn_file is None:
                pairs = backend.diagnostics(graph, snn, x_head[:DIAGNOSTIC_SAMPLES],
                                            result.num_steps)
            samples = backend.record_samples(snn, x_head[:RECORDED_SAMPLES], result.num_steps)
        summary = write_results(stage, result, ann_accuracy, config.to_ini(),
                                scales=graph.scales, plot=config.output.plot,
                                ann_vs_snn=pairs, samples=samples,
                                extra={**_describe(config, graph, backend, snn, snn_file),
                                       **calibration})
    if verbose:
        print(format_run(summary, result))
        print(run_note(run_dir, summary))
    return RunOutcome(run_dir, summary, ann_accuracy, result, snn)


def _calibrate(config, backend, snn, graph, data, say):
    """The calibrated network (``[calibration]``, on the first normalisation
    samples) and what was done, for the summary."""
    import time

    cal = config.calibration
    if data is None or data.get("norm") is None:
        raise DataError(f"calibration.method = {cal.method} needs unlabelled samples: the "
                        "dataset's x_norm (or x_train) and tools.normalize, tools.simulate or "
                        "tools.evaluate_ann on; or set calibration.method = none")
    x_norm, n_norm = data["norm"]
    n = min(cal.num_samples, n_norm)
    steps = cal.num_steps or config.simulation.num_steps
    start = time.perf_counter()
    snn = backend.calibrate(snn, graph, _take(x_norm, n), steps, cal.method)
    seconds = time.perf_counter() - start
    say(f"calibrated ({cal.method}) on {n} samples for T = {steps} in {seconds:.1f} s")
    return snn, {"calibration": {"method": cal.method, "num_samples": n, "num_steps": steps,
                                 "seconds": round(seconds, 2)}}


def _finetune(config, backend, snn, graph, ann, say):
    """The fine-tuned network (``[finetune]``, on the dataset's labelled training
    split, the ANN ``ann`` as the teacher) and what was done, for the summary."""
    from .datasets import load_training_split

    ft = config.finetune
    if config.paths.dataset_path is None or config.input.dataset_format != "npz":
        raise DataError("finetune.enabled = true needs labelled training samples: "
                        "input.dataset_format = npz with x_train and y_train (or x_norm and "
                        "y_norm) in paths.dataset_path; or set finetune.enabled = false")
    x, y, key = load_training_split(config.paths.dataset_path, graph.input_node.output_shape,
                                    config.input.input_scale, ft.num_samples)
    steps = ft.num_steps or config.simulation.num_steps
    say(f"fine-tuning on {len(x)} {key} samples for T = {steps}, {ft.epochs} epochs"
        + (f", distilling the ANN (weight {ft.distillation:g})" if ft.distillation else ""))
    snn, history = backend.finetune(snn, np.asarray(x[:len(x)]), y, steps, **ft.options(),
                                    teacher=ann if ft.distillation else None,
                                    seed=config.simulation.seed,
                                    progress=config.output.verbose > 0)
    say(f"fine-tuned ({ft.surrogate}) in {history.seconds:.1f} s: training accuracy "
        f"{100 * history.accuracy[-1]:.2f} %, loss {history.loss[-1]:.4f}")
    return snn, {"finetune": {"num_samples": len(x), "num_steps": steps, **ft.options(),
                              "loss": [round(v, 5) for v in history.loss],
                              "accuracy": [round(v, 5) for v in history.accuracy],
                              "seconds": history.seconds}}


def _take(x, n: int):
    """The first ``n`` samples of an array, a lazy view or an iterable of batches."""
    if hasattr(x, "limit") or hasattr(x, "__getitem__"):
        return _first(x, n)
    out, got = [], 0
    for batch in x:
        xb = np.asarray(batch[0] if isinstance(batch, tuple) else batch)[:n - got]
        out.append(xb)
        got += len(xb)
        if got >= n:
            break
    return np.concatenate(out)


def _describe(config, graph, backend, snn, snn_file) -> dict:
    """What was run, for the summary."""
    info = backend.info(snn)
    out = {"model": graph.name if snn_file is None else getattr(snn, "name", graph.name),
           "simulator": backend.name, "spike_code": info.spike_code}
    if snn_file is not None:
        out["snn_file"] = str(snn_file)
    out.update(backend.run_facts(snn))
    if backend.engines:
        out["engine"] = backend.engine_used(snn, config.simulation.engine)
    return out


def _open_data(config, input_shape) -> dict:
    """Test data ``(x, y or None, n)``, normalisation data ``(x, n)`` and ``head(k)``.

    A single ``.npz`` file is read batch by batch (:class:`snnconv.datasets.Rows`),
    an SNN Toolbox folder of ``.npz`` files in memory; an image folder is
    streamed as ``tf.data`` batches of ``(images, labels)`` (``y`` is then None).
    """
    from .datasets import ImageFolder, load_dataset

    sim, norm = config.simulation, config.normalization
    path, scale = config.paths.dataset_path, config.input.input_scale
    if config.input.dataset_format == "folder":
        folder = ImageFolder(path, input_shape, scale)
        n = min(sim.num_to_test, folder.num_test)
        n_norm = min(norm.num_norm_samples, _count_norm(folder))
        return {"test": (folder.test(n, sim.batch_size), None, n),
                "norm": (folder.norm(n_norm, norm.batch_size), n_norm),
                "head": lambda k: folder.head(min(k, n))[0]}
    data = load_dataset(path, input_shape, scale, lazy=True)   # read batch by batch
    n = min(sim.num_to_test, len(data.x_test))
    norm_data = None
    if data.x_norm is not None:
        x_norm = _first(data.x_norm, norm.num_norm_samples)
        norm_data = (x_norm, len(x_norm))
    elif config.tools.normalize:
        raise DataError(f"dataset {data.source} has no x_norm (or x_train) for "
                        "normalisation; add one or set tools.normalize = false")
    return {"test": (_first(data.x_test, n), data.y_test[:n], n), "norm": norm_data,
            "head": lambda k: data.x_test[:min(k, n)]}


def _first(x, n: int):
    """The first ``n`` samples: a lazy view for streamed data, a slice of an array."""
    return x.limit(n) if hasattr(x, "limit") else x[:n]


def _count_norm(folder) -> int:
    from .datasets import _count_images
    return _count_images(folder.norm_dir)


def _ann_accuracy(ann, x, y, batch_size: int) -> float:
    """Top-1 accuracy of the Keras ANN on arrays or on ``(x, y)`` batches."""
    batches = ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(x), batch_size)) \
        if y is not None else x
    correct = total = 0
    for xb, yb in batches:
        pred = np.argmax(ann.predict_on_batch(np.asarray(xb)), axis=-1)
        correct += int(np.sum(pred == np.asarray(yb).reshape(-1)))
        total += len(pred)
    return correct / total
