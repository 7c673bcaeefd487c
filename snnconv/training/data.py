"""The data ``snnconv train`` reads: event counts, or waveforms made into events by the front end."""
from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from ..errors import DataError


@dataclasses.dataclass
class EventData:
    """Training and test events ``(N, T, channels)`` (float32) with integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    source: str                        # where the data came from, for the summary
    frontend: dict | None = None       # the front end that made the events, if known

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def num_channels(self) -> int:
        return int(self.x_train.shape[2])


def load_event_data(path, frontend_options: dict, num_train: int = 0,
                    num_test: int | None = None) -> EventData:
    """Events from ``path`` (None: the bundled keyword events).

    The ``.npz`` holds ``x_train``, ``y_train``, ``x_test``, ``y_test`` and
    optionally ``words`` (class names). Waveforms ``(clips, samples)`` go through
    :class:`snnconv.audio.FrontEnd` built from ``frontend_options`` (the
    file's ``sample_rate``, if it has one, must equal the front end's); events
    ``(clips, steps, channels)`` are used as they are, and a ``frontend``
    record stored with them must match ``frontend_options``.
    """
    from ..audio import FrontEnd
    from ..audio.data import bundled_keyword_events_path
    path = Path(path) if path is not None else bundled_keyword_events_path()
    arrays = _read(path)
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    if x_train.ndim != x_test.ndim or x_train.ndim not in (2, 3):
        raise DataError(f"{path}: x_train and x_test must both be waveforms (clips, samples) "
                        f"or both events (clips, steps, channels); got shapes "
                        f"{x_train.shape} and {x_test.shape}")
    front = FrontEnd(**frontend_options)
    made_by = None
    y_train = _labels(arrays["y_train"], len(x_train), path, "y_train")
    y_test = _labels(arrays["y_test"], len(x_test), path, "y_test")
    if num_train:
        x_train, y_train = x_train[:num_train], y_train[:num_train]
    if num_test:
        x_test, y_test = x_test[:num_test], y_test[:num_test]
    if x_train.ndim == 2:
        if "sample_rate" in arrays:
            rate = float(np.asarray(arrays["sample_rate"]))
            if rate != front.sample_rate:
                raise DataError(f"{path}: the waveforms are sampled at {rate:g} Hz, but "
                                f"frontend.sample_rate = {front.sample_rate:g}; set it to "
                                f"{rate:g}")
        x_train, x_test = front(x_train), front(x_test)
        made_by = front.get_config()
    elif "frontend" in arrays:
        made_by = json.loads(str(np.asarray(arrays["frontend"])))
        wanted = front.get_config()
        differ = sorted(k for k in set(made_by) | set(wanted)
                        if made_by.get(k) != wanted.get(k))
        if differ:
            raise DataError(f"{path}: its events were made by a front end that differs from "
                            "[frontend] in " + ", ".join(
                                f"{k} ({made_by.get(k)!r}, not {wanted.get(k)!r})"
                                for k in differ))
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{path}: training events {x_train.shape[1:]} and test events "
                        f"{x_test.shape[1:]} differ in steps or channels")
    if "words" in arrays:
        classes = [str(w) for w in np.asarray(arrays["words"])]
    else:
        classes = [str(i) for i in range(int(max(y_train.max(), y_test.max())) + 1)]
    for name, y in (("y_train", y_train), ("y_test", y_test)):
        if y.size and (y.min() < 0 or y.max() >= len(classes)):
            raise DataError(f"{path}: {name} holds label {int(y.max() if y.max() >= 0 else y.min())}"
                            f", but there are {len(classes)} classes (labels 0.."
                            f"{len(classes) - 1}, from 'words')")
    return EventData(np.asarray(x_train, np.float32), y_train, np.asarray(x_test, np.float32),
                     y_test, classes, str(path), made_by)


def _read(path: Path) -> dict:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing {', '.join(missing)} (expected x_train, "
                                "y_train, x_test, y_test and optionally words, sample_rate)")
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None


def _labels(y, n: int, path: Path, name: str) -> np.ndarray:
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != n:
        raise DataError(f"{path}: {name} must hold one integer label per clip ({n}), got "
                        f"shape {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer)):
        raise DataError(f"{path}: {name} must hold integer labels, got {y.dtype}")
    return y.astype(np.int64)
