"""The spoken-keyword data: bundled front-end events, and raw clips from any .npz.

Users do not have the full waveform set, so the package ships the default
:class:`~snnconv.audio.FrontEnd`'s events for a class-balanced subset
(``spoken_keywords_events.npz``) and a few raw test clips
(``spoken_keywords_clips.npz``); ``examples/make_keyword_subset.py`` makes
both from the full file. The clips were synthesised with espeak-ng; see
``snnconv/data/README.md`` for the attribution.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from snnconv.audio.frontend import FrontEnd
from snnconv.errors import DataError

_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
EVENTS_FILE = "spoken_keywords_events.npz"
CLIPS_FILE = "spoken_keywords_clips.npz"


@dataclass
class KeywordEvents:
    """Event counts ``(N, T, channels)`` uint8 with labels, and the front end that made them."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    words: list[str]
    frontend: dict = field(default_factory=dict)


@dataclass
class KeywordClips:
    """Waveforms ``(N, samples)`` with labels, class names and sample rate."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    words: list[str]
    sample_rate: int


def bundled_keyword_events_path() -> Path:
    """Path of the bundled events file (``spoken_keywords_events.npz``)."""
    return _DATA_DIR / EVENTS_FILE


def bundled_keyword_clips_path() -> Path:
    """Path of the bundled raw clips (``spoken_keywords_clips.npz``)."""
    return _DATA_DIR / CLIPS_FILE


def load_keyword_events(path=None, frontend: FrontEnd | None = None) -> KeywordEvents:
    """Load keyword events (default: the bundled file).

    With ``frontend`` given, its configuration must equal the one stored in
    the file, so that events made by one front end are not fed to a model
    expecting another.
    """
    path = Path(path) if path is not None else bundled_keyword_events_path()
    d = _load(path, ("x_train", "y_train", "x_test", "y_test", "words", "frontend"))
    stored = json.loads(str(d["frontend"]))
    if frontend is not None and frontend.get_config() != stored:
        diff = sorted(k for k in set(stored) | set(frontend.get_config())
                      if stored.get(k) != frontend.get_config().get(k))
        raise DataError(f"{path}: events were made by a front end that differs in "
                        f"{', '.join(diff)}")
    for key in ("x_train", "x_test"):
        if d[key].ndim != 3:
            raise DataError(f"{path}: {key} must be (N, T, channels), got shape {d[key].shape}")
    return KeywordEvents(d["x_train"], d["y_train"], d["x_test"], d["y_test"],
                         [str(w) for w in d["words"]], stored)


def load_keyword_clips(path=None) -> KeywordClips:
    """Load waveforms from an .npz in the full keyword file's layout (default: bundled clips).

    Keys ``x_train``/``x_test`` (N, samples) int16 or float, ``y_train``,
    ``y_test``, ``words``, ``sample_rate``; e.g. ``spoken_keywords.npz``.
    """
    path = Path(path) if path is not None else bundled_keyword_clips_path()
    d = _load(path, ("x_train", "y_train", "x_test", "y_test", "words", "sample_rate"))
    for key in ("x_train", "x_test"):
        if d[key].ndim != 2:
            raise DataError(f"{path}: {key} must be (clips, samples), got shape {d[key].shape}")
        if len(d[key]) != len(d["y" + key[1:]]):
            raise DataError(f"{path}: {key} has {len(d[key])} clips but y{key[1:]} "
                            f"{len(d['y' + key[1:]])} labels")
    return KeywordClips(d["x_train"], d["y_train"], d["x_test"], d["y_test"],
                        [str(w) for w in d["words"]], int(d["sample_rate"]))


def _load(path: Path, keys) -> dict:
    if not path.is_file():
        raise DataError(f"keyword data file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in keys if k not in f.files]
            if missing:
                raise DataError(f"{path}: missing key(s) {', '.join(missing)}")
            return {k: f[k] for k in keys}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read as .npz ({exc})") from None
