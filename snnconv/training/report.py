"""What ``snnconv train`` shows: the accuracy table, the training curves, the confusion matrices."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..report import _figure, _save

ROWS = (("float", "float (as trained)"),
        ("quantized", "quantized weights, float dynamics"),
        ("chip", "Xylo integer simulation"))


def format_table(summary: dict) -> str:
    """The float / quantized / chip-simulated accuracy table of a training run."""
    acc = summary["accuracy"]
    width = max(len(label) for _, label in ROWS)
    lines = [f"SynNet on {summary['num_test']} test samples "
             f"({summary['num_steps']} steps of {1e3 * summary['dt']:g} ms), "
             f"{summary['xylo_chip']}, {summary['xylo_quantization']} quantization",
             f"  {'network':<{width}}  accuracy  spikes/sample"]
    for key, label in ROWS:
        lines.append(f"  {label:<{width}}  {100 * acc[key]:7.2f} %  "
                     f"{summary['spikes_per_sample'][key]:12,.0f}")
    lines.append(f"  trained {summary['epochs']} epochs in {summary['train_seconds']:.0f} s "
                 f"({summary['seconds_per_epoch']:.1f} s per epoch)")
    return "\n".join(lines)


def draw_history(rows: list[dict], path: Path) -> Path | None:
    """Loss and accuracy per epoch (training, and validation where recorded)."""
    if not rows:
        return None
    fig = _figure((9, 3.5))
    epochs = [r["epoch"] + 1 for r in rows]
    for i, metric in enumerate(("loss", "accuracy")):
        ax = fig.add_subplot(1, 2, i + 1)
        for prefix, label in (("", "training"), ("val_", "validation")):
            values = [r.get(prefix + metric) for r in rows]
            if all(v is not None for v in values):
                ax.plot(epochs, values, marker=".", label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    return _save(fig, path)


def confusion(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(true class, predicted class)`` counts."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def draw_confusion(predictions: dict, labels: np.ndarray, classes: list[str],
                   path: Path) -> Path:
    """One confusion matrix per network (float, quantized, chip), side by side."""
    fig = _figure((4.2 * len(predictions), 4))
    for i, (name, pred) in enumerate(predictions.items()):
        m = confusion(pred, labels, len(classes))
        ax = fig.add_subplot(1, len(predictions), i + 1)
        ax.imshow(m, cmap="Blues")
        for (r, c), v in np.ndenumerate(m):
            if v:
                ax.text(c, r, str(v), ha="center", va="center", fontsize=7,
                        color="white" if v > m.max() / 2 else "black")
        ticks = range(len(classes))
        ax.set_xticks(ticks, classes, rotation=90, fontsize=8)
        ax.set_yticks(ticks, classes, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}: {100 * np.mean(np.asarray(pred) == labels):.1f} %")
    return _save(fig, path)
