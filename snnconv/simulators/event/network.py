"""The event-driven simulator's network: a normalised IR graph with its ttfs_exact time windows.

:class:`EventNetwork` holds what the closed-form simulation needs: the
graph (numpy weights), the :class:`~snnconv.time_windows.TimeWindows`, the
fan-out of every spike source (for SynOps), the readout grid and counters
of clipped activations. It saves to one ``.npz`` file (arrays, and a JSON
description under the key ``snnconv_event_network``; no pickles).
"""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np

from ...ann import count_macs
from ...errors import ModelLoadError, SnnconvError
from ...ir import Graph, Node
from ...signed_max_pool import shift_signed_max_pools
from ...time_windows import TimeWindows, plan_windows

# the key that marks an .npz file as a saved event network
FILE_KEY = "snnconv_event_network"
FORMAT_VERSION = 1
# readout steps: the class score is sampled at this many evenly spaced times up to the readout
DEFAULT_READOUT_STEPS = 8


@dataclasses.dataclass(eq=False)
class EventNetwork:
    """A network converted for the event-driven simulator (``spike_code = ttfs_exact``)."""

    graph: Graph                    # the normalised IR (max pooling as average with max2avg_pool)
    windows: TimeWindows
    fanouts: dict                   # spike source -> fan-out map (the node's output shape)
    ann_macs: int
    readout_steps: int = DEFAULT_READOUT_STEPS
    # activations above their window (clipped), and values, per neuron node,
    # counted over every batch simulated since the network was made or loaded
    clipped: dict = dataclasses.field(default_factory=dict)
    counted: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        if int(self.readout_steps) < 1:
            raise SnnconvError(f"readout_steps must be at least 1, got {self.readout_steps}")
        self.readout_steps = int(self.readout_steps)

    @property
    def name(self) -> str:
        return f"{self.graph.name}_event"

    @property
    def spike_code(self) -> str:
        return "ttfs_exact"

    @property
    def input_shape(self) -> tuple:
        return tuple(self.graph.input_node.output_shape)

    @property
    def num_classes(self) -> int:
        return int(self.graph.output_node.output_shape[-1])

    @property
    def dt(self) -> float:
        """Spacing of the readout grid: ``readout_steps`` steps up to the readout time."""
        return self.windows.t_readout / self.readout_steps

    @property
    def neurons(self) -> dict:
        """Neuron node -> number of neurons, in graph order."""
        return {n: int(math.prod(self.graph[n].output_shape)) for n in self.windows.neurons}

    def clipping(self) -> dict:
        """Per neuron node: fraction of its activations so far clipped at its window."""
        return {n: (self.clipped.get(n, 0) / self.counted[n]) if self.counted.get(n) else 0.0
                for n in self.windows.neurons}

    def save(self, path) -> Path:
        path = Path(path)
        arrays, nodes = {}, []
        for node in self.graph:
            nodes.append({"name": node.name, "op": node.op, "inputs": list(node.inputs),
                          "output_shape": list(node.output_shape), "params": node.params,
                          "activation": node.activation,
                          "source_layers": list(node.source_layers)})
            for key, w in node.weights.items():
                arrays[f"weights/{node.name}/{key}"] = np.asarray(w)
        for name, fan in self.fanouts.items():
            arrays[f"fanout/{name}"] = np.asarray(fan, np.float32)
        for name, s in self.graph.scales.items():
            arrays[f"scales/{name}"] = np.asarray(s, np.float64)
        meta = {k: v for k, v in self.graph.metadata.items() if _json_ok(v)}
        desc = {"format": FORMAT_VERSION, "graph": self.graph.name, "nodes": nodes,
                "metadata": meta, "windows": self.windows.to_dict(),
                "ann_macs": int(self.ann_macs), "readout_steps": self.readout_steps}
        arrays[FILE_KEY] = np.array(json.dumps(desc, default=_plain))
        with open(path, "wb") as f:          # np.savez would append .npz to another suffix
            np.savez(f, **arrays)
        return path


def build_event_network(graph: Graph, clip: bool = False, max2avg_pool: bool = False,
                        readout_steps: int = DEFAULT_READOUT_STEPS,
                        activation_max: dict | None = None) -> EventNetwork:
    """The event network of a normalised graph (see :func:`snnconv.time_windows.plan_windows`;
    max pooling of a signed current is rewritten by
    :func:`snnconv.signed_max_pool.shift_signed_max_pools`)."""
    from ...synops import fanout_maps

    if max2avg_pool:
        graph = graph.copy()
        for node in graph:
            if node.op == "max_pool2d":
                node.op = "avg_pool2d"
    macs = int(sum(count_macs(graph).values()))      # the ANN's, before any rewrite
    graph, activation_max = shift_signed_max_pools(graph, clip=clip,
                                                   activation_max=activation_max)
    windows = plan_windows(graph, clip=clip, activation_max=activation_max)
    sources = [n.name for n in graph
               if n.op in ("input", "max_pool2d") or n.name in windows.neurons]
    fanouts = fanout_maps(graph, sources, through_max_pool=False)
    return EventNetwork(graph=graph, windows=windows, fanouts=fanouts,
                        ann_macs=macs, readout_steps=readout_steps)


def is_event_file(path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as f:
            return FILE_KEY in f.files
    except (OSError, ValueError):
        return False


def load_event_network(path) -> EventNetwork:
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"event network file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            desc = json.loads(str(f[FILE_KEY]))
            arrays = {k: f[k] for k in f.files if k != FILE_KEY}
    except (OSError, ValueError, KeyError) as e:
        raise ModelLoadError(f"cannot load event network {path}: {e}") from None
    if desc.get("format") != FORMAT_VERSION:
        raise ModelLoadError(f"{path}: event network format {desc.get('format')} is not "
                             f"{FORMAT_VERSION}")
    nodes = []
    for d in desc["nodes"]:
        prefix = f"weights/{d['name']}/"
        weights = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
        nodes.append(Node(d["name"], d["op"], d["inputs"], tuple(d["output_shape"]),
                          params=d["params"], weights=weights, activation=d["activation"],
                          source_layers=d["source_layers"]))
    graph = Graph(nodes, name=desc["graph"],
                  scales={k[len("scales/"):]: v for k, v in arrays.items()
                          if k.startswith("scales/")},
                  metadata=desc["metadata"])
    fanouts = {k[len("fanout/"):]: v for k, v in arrays.items() if k.startswith("fanout/")}
    return EventNetwork(graph=graph, windows=TimeWindows.from_dict(desc["windows"]),
                        fanouts=fanouts, ann_macs=int(desc["ann_macs"]),
                        readout_steps=int(desc["readout_steps"]))


def _plain(v):
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"cannot save {type(v).__name__} in an event network file")


def _json_ok(v) -> bool:
    try:
        json.dumps(v, default=_plain)
        return True
    except (TypeError, ValueError):
        return False
