"""Saving and loading converted SNNs."""
from __future__ import annotations

from pathlib import Path

from ..errors import ModelLoadError
from . import CUSTOM_OBJECTS


def load_snn(path):
    """Load an SNN saved with ``snn.save(path)`` (``.keras``), in Keras's safe mode."""
    import keras
    path = Path(path)
    if not path.is_file():
        raise ModelLoadError(f"SNN file {path} does not exist")
    try:
        return keras.saving.load_model(path, custom_objects=CUSTOM_OBJECTS, compile=False,
                                       safe_mode=True)
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"cannot load SNN {path}: {e}") from None
