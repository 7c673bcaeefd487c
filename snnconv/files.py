"""Writing files so that a reader never sees half of one, and naming them (and layers) uniquely."""
from __future__ import annotations

import contextlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside ``path``; once the block has written it
    without error it replaces ``path`` in one step (``os.replace``). On error
    the temporary file is removed and ``path`` is left as it was."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def unique_name(name: str, taken) -> str:
    """``name``, or ``name_1``, ``name_2``, ... : the first that is not in ``taken``."""
    out, i = name, 1
    while out in taken:
        out, i = f"{name}_{i}", i + 1
    return out
