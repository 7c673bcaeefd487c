"""What NIR export and import share: the optional dependency, layouts, reading, summaries.

Light on purpose (numpy only at import time): the CLI imports it to check
for ``nir`` before TensorFlow is loaded.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import MissingDependencyError, ModelLoadError

NIR_INSTALL_HINT = "pip install 'snnconv[nir]' (or: pip install nir)"


def require_nir():
    """The ``nir`` module, or a :class:`MissingDependencyError` that says how to install it."""
    try:
        import nir
    except ImportError:
        raise MissingDependencyError(
            f"NIR export and import need the optional package 'nir': {NIR_INSTALL_HINT}") from None
    return nir


def read_nir(path):
    """Read a NIR file with NIR's type checking; errors name the file."""
    nir = require_nir()
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"NIR file {path} does not exist")
    try:
        return nir.read(path)
    except Exception as e:   # h5py, nir's asserts and type checks: all mean "not a valid graph"
        raise ModelLoadError(f"cannot read NIR file {path}: {type(e).__name__}: {e}") from None


# ----------------------------------------------------------------------------- layouts

def nir_shape(shape) -> tuple[int, ...]:
    """snnconv's frame shape (channels last) -> NIR's (channels first); None if neither
    a vector nor an image."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 1:
        return shape
    if len(shape) == 3:
        return (shape[2], shape[0], shape[1])
    return None


def ours_shape(shape) -> tuple[int, ...] | None:
    """NIR's shape (channels first) -> snnconv's (channels last); None if unsupported."""
    shape = tuple(int(d) for d in shape)
    if len(shape) == 1:
        return shape
    if len(shape) == 3:
        return (shape[1], shape[2], shape[0])
    return None


def to_nir_layout(array: np.ndarray) -> np.ndarray:
    """An (H, W, C) array as (C, H, W); vectors unchanged."""
    return np.transpose(array, (2, 0, 1)) if array.ndim == 3 else array


def to_our_layout(array: np.ndarray) -> np.ndarray:
    """A (C, H, W) array as (H, W, C); vectors unchanged."""
    return np.transpose(array, (1, 2, 0)) if array.ndim == 3 else array


def flatten_order(our_shape) -> np.ndarray:
    """For an (H, W, C) map flattened by snnconv (channels last), the index each
    element has in NIR's flattening of the same map as (C, H, W)."""
    h, w, c = our_shape
    return np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).ravel()


def same_padding(n: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """Keras/TensorFlow ``same`` padding of one axis: (before, after)."""
    k_eff = (kernel - 1) * dilation + 1
    out = -(-n // stride)
    total = max((out - 1) * stride + k_eff - n, 0)
    return total // 2, total - total // 2


# ----------------------------------------------------------------------------- metadata

def plain(value):
    """A value read from NIR metadata (numpy scalars, bytes, arrays) as plain Python."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, bytes):
        return value.decode("utf8")
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def describe_nir(graph) -> str:
    """A text summary of a NIR graph: nodes in order from the input, their types and
    output shapes, the number of edges, and the metadata."""
    order = _walk(graph)
    lines = [f"NIR graph: {len(graph.nodes)} nodes, {len(graph.edges)} edges"]
    for name in order:
        node = graph.nodes[name]
        out = (node.output_type or {}).get("output")
        shape = "?" if out is None else str(tuple(int(d) for d in np.asarray(out).ravel()))
        srcs = ", ".join(a for a, b in graph.edges if b == name) or "-"
        lines.append(f"  {name:<24} {type(node).__name__:<10} {shape:<16} <- {srcs}")
    meta = plain(dict(graph.metadata or {}))
    if meta:
        lines.append("metadata:")
        for key, value in meta.items():
            lines.append(f"  {key}: {value}")
    return "\n".join(lines)


def _walk(graph) -> list[str]:
    """Node names, breadth-first from the inputs along the edges, then any others."""
    import nir
    order = [n for n, node in graph.nodes.items() if isinstance(node, nir.Input)]
    seen = set(order)
    i = 0
    while i < len(order):
        for a, b in graph.edges:
            if a == order[i] and b not in seen:
                order.append(b)
                seen.add(b)
        i += 1
    return order + [n for n in graph.nodes if n not in seen]
