"""What the comparison benchmarks share: the model/data arguments, and the
ANN, its parsed and normalised graph and the test images they compare on."""
from __future__ import annotations

import time

import numpy as np

import snnconv
from snnconv.data import bundled_dataset_path, bundled_model_path
from snnconv.datasets import load_dataset


def add_model_data_args(ap, num: int, model: str | None = None):
    """``--model``, ``--data``, ``--num`` (test images), ``--steps``, ``--num-norm``."""
    ap.add_argument("--model", default=model or str(bundled_model_path()))
    ap.add_argument("--data", default=str(bundled_dataset_path()))
    ap.add_argument("--num", type=int, default=num)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--num-norm", type=int, default=1000)


def load_normalised(args, **normalize_options):
    """``(graph, x, y, ann_accuracy)``: the model parsed and normalised on
    ``--num-norm`` images (``x_norm`` of the .npz, uint8 scaled by 1/255) and
    the first ``--num`` test images with the ANN's accuracy on them."""
    ann = snnconv.load_model(args.model)
    graph = snnconv.parse(ann)
    data = load_dataset(args.data, graph.input_node.output_shape, 1 / 255)
    x, y = data.x_test[:args.num], data.y_test[:args.num]
    ann_acc = float(np.mean(ann.predict(x, verbose=0).argmax(1) == y))
    graph = snnconv.normalize(graph, data.x_norm[:args.num_norm], **normalize_options)
    return graph, x, y, ann_acc


def timed(fn, repeats):
    """``(seconds, output)``: the best of ``repeats`` calls of ``fn`` after a warm-up
    call (tracing and compilation), and the last call's output."""
    out = fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def best_time(fn, repeats):
    """The best of ``repeats`` calls of ``fn`` after a warm-up call, in seconds."""
    return timed(fn, repeats)[0]
