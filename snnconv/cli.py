"""The ``snnconv`` command line.

    snnconv run CONFIG [--set section.key=value ...]
    snnconv check CONFIG [--set section.key=value ...]
    snnconv train CONFIG [--set section.key=value ...]
    snnconv init PATH [--template NAME] [--force]
    snnconv demo [--set section.key=value ...]
    snnconv evaluate CONFIG [--set ...] [--snn FILE ...] [--force]
    snnconv export --format nir SNN_FILE OUT.nir [--approximate] [--avg-pool sum|avg]
    snnconv import-nir IN.nir [--out SNN.keras] [--dt DT] [--config CONFIG]

User errors (:class:`snnconv.errors.SnnconvError`) are printed as one line,
``snnconv: error: ...``, with exit status 2. Heavy modules (TensorFlow) are
imported only when ``run`` needs them, so ``--help`` stays fast. Run as a
program (``main()`` without arguments: the ``snnconv`` script), the command
line keeps TensorFlow's log messages out of its output unless
``output.verbose = 3`` or ``SNNCONV_TF_LOGS=1`` (see :mod:`snnconv.tflogs`).
Paths given with ``--set`` are relative to the current directory.
"""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from snnconv.errors import ConfigError, SnnconvError

PROG = "snnconv"


def _version() -> str:
    try:
        import snnconv
        version = getattr(snnconv, "__version__", None)
        if version:
            return str(version)
    except Exception:  # a broken package __init__ must not break --version
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version as dist_version
        try:
            return dist_version("snnconv")
        except PackageNotFoundError:
            pass
    except ImportError:
        pass
    return "unknown"


def parse_set_options(items: Optional[Sequence[str]]) -> dict[str, dict[str, str]]:
    """Turn ``["simulation.duration=50", ...]`` into ``{"simulation": {"duration": "50"}}``."""
    overrides: dict[str, dict[str, str]] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        section, dot, key = name.strip().partition(".")
        if not sep or not dot or not section or not key:
            raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. simulation.duration=50")
        overrides.setdefault(section.strip(), {})[key.strip()] = value.strip()
    return overrides


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Convert a trained Keras model into a spiking neural network and simulate it.",
        epilog="Start with 'snnconv init my.ini', set paths.filename_ann in it, then 'snnconv run my.ini'.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    set_help = ("override one config value, e.g. --set simulation.duration=50; "
                "may be given several times; a relative path is relative to the current "
                "directory (those in the config file are relative to its folder)")

    p_run = sub.add_parser("run", help="convert (and evaluate, normalise, simulate) as the config says",
                           description="Load CONFIG and run the conversion pipeline.")
    p_run.add_argument("config", metavar="CONFIG", help="the INI config file")
    p_run.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE",
                       default=[], help=set_help)
    p_run.add_argument("--check", action="store_true",
                       help="convert only and report whether the network fits the target "
                            "(for simulator xylo: the chip's limits and the quantization "
                            "error); simulate and write nothing. Exit status 2 if it "
                            "does not fit")

    p_train = sub.add_parser(
        "train", help="train a SynNet on event or audio data and deploy it to Xylo",
        description="Train the SynNet of CONFIG's [synnet] on paths.dataset_path (events, or "
                    "waveforms made into events by [frontend]) as [training] says, quantize "
                    "it for the Xylo chip of [xylo], and write the run folder: the model "
                    "(synnet.keras), the Xylo specification (xylo.npz), the history per "
                    "epoch, plots and the float / quantized / chip accuracy table. "
                    "'snnconv init --template synnet FILE' writes a start. An interrupted "
                    "training resumes when the same command runs again.")
    p_train.add_argument("config", metavar="CONFIG", help="the INI config file")
    p_train.add_argument("--set", dest="overrides", action="append",
                         metavar="SECTION.KEY=VALUE", default=[], help=set_help)

    p_check = sub.add_parser("check", help="validate a config and print it fully resolved",
                             description="Load and validate CONFIG, then print every setting "
                                         "with defaults filled in and paths made absolute.")
    p_check.add_argument("config", metavar="CONFIG", help="the INI config file")
    p_check.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE",
                         default=[], help=set_help)

    p_eval = sub.add_parser(
        "evaluate", help="run every combination of list-valued keys and compare them",
        description="Run CONFIG once per combination of its list-valued keys (e.g. "
                    "'spike_code = rate, ttfs'; 'percentile = 99.0, 99.9') on the same data, "
                    "each into its own run folder below paths.log_dir_of_current_run, and "
                    "write a comparison table (CSV, JSON) and plot there. A setting whose "
                    "results are complete and were made from the same resolved config, model "
                    "file and data is not run again; one whose config, model or data changed "
                    "is.")
    p_eval.add_argument("config", metavar="CONFIG", help="the INI config file")
    p_eval.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE",
                        default=[], help=set_help + "; a comma-separated list sweeps its values")
    p_eval.add_argument("--snn", nargs="+", default=[], metavar="FILE",
                        help="compare these saved SNNs (.keras, or Xylo .npz) on CONFIG's data and "
                             "simulation settings instead of sweeping CONFIG")
    p_eval.add_argument("--force", action="store_true",
                        help="run every setting again, even those whose results are current")

    p_report = sub.add_parser("report", help="(re)draw the plots of a run folder from its log",
                              description="Redraw the PNG plots of RUN_DIR from its results.h5, "
                                          "without simulating again.")
    p_report.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (holds results.h5)")

    p_export = sub.add_parser(
        "export", help="write a converted SNN (.keras) in another format (NIR)",
        description="Write the saved SNN SNN_FILE (a .keras file from 'snnconv run') as a NIR "
                    "graph. NIR neurons fire when v > v_threshold and reset to v_reset, one "
                    "spike per step: convert with a strict threshold and reset to zero, or pass "
                    "--approximate. Needs the 'nir' package (pip install 'snnconv[nir]').")
    p_export.add_argument("--format", required=True, choices=["nir"],
                          help="the output format (nir)")
    p_export.add_argument("snn_file", metavar="SNN_FILE", help="the saved SNN (.keras)")
    p_export.add_argument("out", metavar="OUT", help="the file to write (e.g. snn.nir)")
    p_export.add_argument("--avg-pool", choices=["sum", "avg"], default="sum",
                          help="average pooling as NIR SumPool2d with its 1/k^2 folded into the "
                               "next layer's weights (sum, the default: read by Norse, Lava, "
                               "sinabs, SpiNNaker2, Spyx) or as AvgPool2d (avg: snnTorch)")
    p_export.add_argument("--approximate", action="store_true",
                          help="export what NIR cannot express exactly (reset by subtraction, "
                               "v >= threshold, several spikes per step, refractory period, "
                               "v_init, Poisson input) approximately; the approximations are "
                               "listed in the graph's metadata")

    p_import = sub.add_parser(
        "import-nir", help="read a NIR graph as a Spike* SNN: summarize, save, evaluate",
        description="Read the NIR graph IN, print its nodes and the Spike* layers it becomes "
                    "(with NIR's neurons: v > v_threshold, reset to v_reset), and save it "
                    "with --out as a .keras SNN that 'snnconv evaluate CONFIG --snn FILE' "
                    "evaluates. With --config the saved SNN is evaluated on CONFIG's data right "
                    "away. Needs the 'nir' package (pip install 'snnconv[nir]').")
    p_import.add_argument("nir_file", metavar="IN", help="the NIR file")
    p_import.add_argument("--out", metavar="FILE",
                          help="save the SNN here (.keras); default with --config: IN with "
                               "the suffix .keras")
    p_import.add_argument("--dt", type=float, default=None,
                          help="time step the NIR neurons are integrated with (default: the "
                               "graph's metadata dt, else 1)")
    p_import.add_argument("--config", metavar="CONFIG",
                          help="evaluate the SNN on this config's data and simulation settings "
                               "(as 'snnconv evaluate CONFIG --snn FILE')")
    p_import.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE",
                          default=[], help=set_help + " (with --config)")

    from snnconv.config.templates import TEMPLATES
    p_init = sub.add_parser(
        "init", help="write a config template (default: every key, commented) to PATH",
        description="Write a config template to PATH. Templates: " + "; ".join(
            f"{name}: {what}" for name, what in TEMPLATES.items())
        + ". The bundled model and data are named by absolute paths, and results go to "
          "results/<PATH's name>/ beside PATH.")
    p_init.add_argument("path", metavar="PATH", help="config file to create")
    p_init.add_argument("--template", choices=list(TEMPLATES), default="default",
                        help="which template (default: default)")
    p_init.add_argument("--force", action="store_true", help="overwrite PATH if it exists")

    p_demo = sub.add_parser(
        "demo", help="run the bundled demo (MNIST CNN, rate-coded SNN); results in ./results/demo",
        description="Convert the bundled MNIST CNN into a rate-coded SNN and evaluate it on the "
                    "bundled MNIST test images, as 'snnconv run' with the demo template "
                    "('snnconv init --template demo FILE' writes it). Results go to "
                    "results/demo/ in the current directory.")
    p_demo.add_argument("--set", dest="overrides", action="append", metavar="SECTION.KEY=VALUE",
                        default=[], help=set_help)
    return parser


def _prepare_tensorflow(args: argparse.Namespace, verbose: int = 0) -> None:
    """Before TensorFlow loads: keep its log messages out, when this process is the program."""
    if getattr(args, "whole_process", False):
        from snnconv import tflogs
        show = tflogs.show_requested(verbose)
        tflogs.hide_python_logs(show)
        tflogs.import_tensorflow_quietly(show)


def _run_config(args: argparse.Namespace, config) -> int:
    from snnconv.config.extras import check_extras
    from snnconv.results import check_run_dir
    check_extras(config)
    check_run_dir(config.paths.log_dir_of_current_run, config.output.overwrite)
    _prepare_tensorflow(args, config.output.verbose)
    if getattr(args, "whole_process", False):
        # the process is snnconv's: set before anything runs TensorFlow (it takes
        # the setting only then); main(argv) called from Python leaves it alone
        from snnconv.tf_threads import apply_intra_op_threads, for_run
        apply_intra_op_threads(for_run(config.simulation.intra_op_threads,
                                       config.calibration.method))
    from snnconv import pipeline  # heavy (TensorFlow): imported only here
    outcome = pipeline.run(config)
    if config.output.verbose == 0 and getattr(outcome, "run_dir", None) is not None:
        # verbose 0 is "errors and results only": the pipeline printed nothing
        from snnconv.results import run_note
        if config.stdp.enabled:
            from snnconv.stdp.run import format_stdp_table
            print(format_stdp_table(outcome.snn, outcome.result, outcome.summary))
        else:
            from snnconv.tables import format_run
            print(format_run(outcome.summary, outcome.result))
        print(run_note(outcome.run_dir, outcome.summary))
    return 0


def _cmd_run(args: argparse.Namespace) -> int:
    from snnconv.config import load_config
    config = load_config(args.config, parse_set_options(args.overrides))
    if not args.check:
        return _run_config(args, config)
    from snnconv.config.extras import check_extras
    check_extras(config)
    _prepare_tensorflow(args, config.output.verbose)
    from snnconv import pipeline
    outcome = pipeline.run(config, check_only=True)
    print(f"the network fits {outcome.summary['target']}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from snnconv.config import load_config
    from snnconv.results import check_run_dir
    config = load_config(args.config, parse_set_options(args.overrides), require_model=False)
    check_run_dir(config.paths.log_dir_of_current_run, config.output.overwrite)
    _prepare_tensorflow(args, config.output.verbose)
    from snnconv.training.run import checkpoint_dir, train
    try:
        outcome = train(config)
    except KeyboardInterrupt:
        ckpt = checkpoint_dir(config.paths.log_dir_of_current_run)
        if (ckpt / "backup").exists():
            print(f"{PROG}: interrupted; the last finished epoch is kept in {ckpt}: run the "
                  "same command again to resume", file=sys.stderr)
        raise
    if config.output.verbose == 0:
        from snnconv.training.report import format_table
        print(format_table(outcome.summary))
    print(f"results written to {outcome.run_dir}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from snnconv.config import demo_config
    return _run_config(args, demo_config(parse_set_options(args.overrides)))


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from snnconv.sweep import run_sweep   # loads the configs before importing TensorFlow
    run_sweep(args.config, parse_set_options(args.overrides), snn_files=args.snn,
              force=args.force,
              before_tensorflow=lambda verbose: _prepare_tensorflow(args, verbose))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from snnconv.report import draw_report
    for path in draw_report(args.run_dir):
        print(f"wrote {path}")
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from snnconv.config import load_config
    from snnconv.config.extras import check_extras
    config = load_config(args.config, parse_set_options(args.overrides))
    check_extras(config)
    sys.stdout.write(config.to_ini())
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from snnconv.errors import ModelLoadError
    from snnconv.nirio import common
    common.require_nir()                 # says how to install it, before TensorFlow loads
    if not Path(args.snn_file).is_file():
        raise ModelLoadError(f"SNN file {args.snn_file} does not exist")
    _prepare_tensorflow(args)
    from snnconv.nirio import export_nir
    graph = export_nir(args.snn_file, args.out, approximate=args.approximate,
                       avg_pool=args.avg_pool)
    print(common.describe_nir(graph))
    print(f"wrote {args.out}")
    return 0


def _cmd_import_nir(args: argparse.Namespace) -> int:
    from pathlib import Path

    from snnconv.nirio import common
    common.require_nir()
    graph = common.read_nir(args.nir_file)
    _prepare_tensorflow(args)
    print(common.describe_nir(graph))
    from snnconv.nirio import from_nir
    imported = from_nir(graph, dt=args.dt)
    print(f"as snnconv layers (dt = {imported.dt:g}, NIR neurons: v > v_thresh, "
          "reset to v_reset):")
    print(imported.graph.summary())
    out = args.out or (str(Path(args.nir_file).with_suffix(".keras")) if args.config else None)
    if out is None:
        print("(nothing saved: give --out FILE.keras to save the SNN)")
        return 0
    if Path(out).suffix != ".keras":
        raise SnnconvError(f"--out {out}: the SNN is saved as a .keras file")
    snn = imported.build()
    snn.save(out)
    print(f"wrote {out}")
    if args.config:
        from snnconv.sweep import run_sweep
        run_sweep(args.config, parse_set_options(args.overrides), snn_files=[out])
    return 0


def _cmd_init(args: argparse.Namespace) -> int:
    from snnconv.config import write_template
    written = write_template(args.path, force=args.force, template=args.template)
    if args.template == "default":
        print(f"wrote the default configuration to {written}")
        print(f"next: set paths.filename_ann in it, then run: {PROG} run {args.path}")
    else:
        command = {"compare": "evaluate", "synnet": "train"}.get(args.template, "run")
        print(f"wrote the {args.template} template to {written}")
        print(f"next: {PROG} {command} {args.path}   (results in "
              f"{written.parent / 'results' / written.stem})")
    return 0


_COMMANDS = {"run": _cmd_run, "train": _cmd_train, "evaluate": _cmd_evaluate, "report": _cmd_report,
             "check": _cmd_check, "init": _cmd_init, "demo": _cmd_demo, "export": _cmd_export,
             "import-nir": _cmd_import_nir}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status instead of exiting."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 2)
    # without argv this is the program (the snnconv script), which may keep
    # TensorFlow's messages off its stderr; called from Python it leaves that alone
    args.whole_process = argv is None
    try:
        return _COMMANDS[args.command](args)
    except SnnconvError as exc:
        message = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        print(f"{PROG}: error: {message or type(exc).__name__}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
