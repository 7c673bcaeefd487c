"""The plain-text tables printed at the end of a run: one row format, one percentage format."""
from __future__ import annotations

# the line above and below a table
RULE = "-" * 60
LABEL_WIDTH = 36


def pct(v) -> str:
    """A fraction as a percentage (``0.9895`` -> `` 98.95 %``); ``n/a`` for None."""
    return "n/a" if v is None else f"{100 * v:6.2f} %"


def row(label: str, value) -> str:
    """One ``label  value`` row."""
    return f"{label:<{LABEL_WIDTH}}{value}"


def format_run(summary: dict, result) -> str:
    """The ANN-vs-SNN table printed at the end of a run."""
    rows = [f"{summary.get('model', 'model')}: simulator {summary.get('simulator')}, "
            f"spike code {summary.get('spike_code')}", RULE,
            row("ANN accuracy", pct(summary.get("ann_accuracy")))]
    if result is not None:
        rows[0] += f", {result.num_samples} samples, T = {result.num_steps} steps"
        for step, acc in summary["snn_accuracy_at_step"].items():
            rows.append(row(f"SNN accuracy at step {step}", pct(acc)))
        rows.append(row(f"SNN top-{result.top_k} accuracy at step {result.num_steps}",
                        pct(result.top_k_accuracy)))
        within = summary["steps_to_within_1pt_of_ann"]
        if summary.get("ann_accuracy") is not None:
            rows.append(row("steps to within 1 pt of the ANN",
                            "not reached" if within is None else within))
        rows.append(row("spikes per sample", f"{result.total_spikes:,.0f}"))
        for name, v in result.spikes_per_neuron.items():
            rows.append(row(f"  per neuron, {name}", f"{v:.2f}"))
        rows.append(row("SynOps per sample", f"{result.synops:,.0f}"))
        rows.append(row("ANN MACs per sample", f"{result.ann_macs:,}"))
        rows.append(row("SynOps / ANN MACs", f"{result.synops_per_ann_mac:.2f}"))
        if result.decision_steps is not None:
            mean = result.mean_decision_time
            rows.append(row("samples decided", pct(result.decided_fraction)))
            rows.append(row("mean decision time", "n/a" if mean is None else f"{mean:.1f}"))
    rows.append(RULE)
    return "\n".join(rows)
