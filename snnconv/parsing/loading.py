"""Loading Keras model files safely.

Two formats are accepted: the Keras 3 ``.keras`` zip archive and the legacy
Keras 2 style HDF5 file (``.h5`` / ``.hdf5``). Before Keras sees a file its
architecture (``config.json`` inside the archive, the ``model_config``
attribute of the HDF5 file) is read as plain JSON and searched for ``Lambda``
layers: loading one of those means turning stored Python bytecode or a named
Python function back into something callable, so the file is refused outright.
Keras 3 itself also refuses Python lambdas in ``safe_mode``; the check here does
not rely on that, and also covers a ``Lambda`` that names a plain function.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterator

from snnconv.errors import ModelLoadError

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")

# Layer classes whose deserialisation turns stored text into Python code.
_CODE_LAYERS = ("Lambda",)


def _iter_layer_configs(obj: Any) -> Iterator[dict]:
    """Every dict with a ``class_name`` anywhere in a model config (nested models included)."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("class_name"), str):
                yield item
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _layer_name(cfg: dict) -> str:
    inner = cfg.get("config")
    if isinstance(inner, dict) and isinstance(inner.get("name"), str):
        return inner["name"]
    name = cfg.get("name")
    return name if isinstance(name, str) else "?"


def _refuse_code_layers(config: Any, path: Path) -> None:
    found = [_layer_name(c) for c in _iter_layer_configs(config)
             if c["class_name"] in _CODE_LAYERS]
    if found:
        names = ", ".join(repr(n) for n in sorted(found))
        raise ModelLoadError(
            f"model file {str(path)!r} contains a Lambda layer ({names}); loading it would "
            f"execute arbitrary code; snnconv refuses to load it. Replace the Lambda with "
            f"standard Keras layers and save the model again.")


def _read_keras_config(path: Path) -> Any:
    try:
        with zipfile.ZipFile(path) as archive:
            with archive.open("config.json") as fh:
                return json.loads(fh.read().decode("utf-8"))
    except KeyError:
        raise ModelLoadError(
            f"cannot read model file {str(path)!r}: the archive has no config.json "
            f"(not a Keras 3 .keras file?)") from None
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot read model file {str(path)!r}: not a valid .keras archive ({exc})") from None


def _read_h5_config(path: Path) -> Any:
    try:
        import h5py
    except ImportError:  # pragma: no cover - h5py ships with keras
        raise ModelLoadError(f"cannot read {str(path)!r}: h5py is not installed") from None
    try:
        with h5py.File(path, "r") as fh:
            raw = fh.attrs.get("model_config")
            if raw is None and "model_config" in fh:  # pragma: no cover - unusual layout
                raw = fh["model_config"][()]
    except OSError as exc:
        raise ModelLoadError(
            f"cannot read model file {str(path)!r}: not a valid HDF5 file ({exc})") from None
    if raw is None:
        raise ModelLoadError(
            f"model file {str(path)!r} holds no model architecture (model_config); "
            f"a weights-only file cannot be converted")
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    try:
        return json.loads(str(raw))
    except ValueError as exc:
        raise ModelLoadError(
            f"cannot read model file {str(path)!r}: its model_config is not valid JSON "
            f"({exc})") from None


def _layer_entries(obj: Any) -> Iterator[dict]:
    """The layer configs of a model config: the dicts in every ``layers`` list."""
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            for key, value in item.items():
                if key == "layers" and isinstance(value, list):
                    yield from (v for v in value if isinstance(v, dict) and "class_name" in v)
                stack.append(value)
        elif isinstance(item, (list, tuple)):
            stack.extend(item)


def _custom_layers(config: Any) -> list[tuple[str, str]]:
    """``(layer name, class)`` of the layers whose class is not one of Keras's own
    (nor registered in this process), so that Keras cannot rebuild them."""
    import keras

    found = []
    for c in _layer_entries(config):
        cls, registered = c["class_name"], c.get("registered_name")
        module = c.get("module", "")
        if keras.saving.get_registered_object(registered or cls) is not None:
            continue
        custom = (">" in cls or (isinstance(registered, str) and ">" in registered)
                  or ("module" in c and not (isinstance(module, str)
                                             and module.startswith("keras")))
                  or ("module" not in c and getattr(keras.layers, cls, None) is None
                      and getattr(keras.models, cls, None) is None
                      and cls not in ("Functional", "Sequential", "Model")))
        if custom:
            found.append((_layer_name(c), registered or cls))
    return found


def load_model(path: str | os.PathLike):
    """Load a ``.keras`` or legacy ``.h5`` / ``.hdf5`` file without running stored code.

    Returns the ``keras.Model``. Raises :class:`ModelLoadError` (naming the
    file) when the file is missing, has an unknown extension, cannot be read,
    contains a ``Lambda`` layer, uses a custom layer class (named with its
    layer), or Keras fails to rebuild it.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.exists():
        raise ModelLoadError(f"model file {str(path)!r} does not exist")
    if path.is_dir():
        raise ModelLoadError(
            f"model path {str(path)!r} is a directory; snnconv reads .keras and .h5 files "
            f"(TensorFlow SavedModel directories are not supported)")
    if suffix in KERAS_SUFFIXES:
        config = _read_keras_config(path)
    elif suffix in H5_SUFFIXES:
        config = _read_h5_config(path)
    else:
        raise ModelLoadError(
            f"model file {str(path)!r} has an unsupported extension {path.suffix!r}; "
            f"expected one of {', '.join(KERAS_SUFFIXES + H5_SUFFIXES)}")
    _refuse_code_layers(config, path)

    import keras  # deferred: importing TensorFlow is slow

    import snnconv.layers.qcfs  # noqa: F401 (registers the QCFS activation for loading)

    try:
        model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - anything Keras raises is a load failure
        custom = _custom_layers(config)
        if custom:
            from snnconv.parsing.common import SUPPORTED_LAYERS
            names = ", ".join(f"{name!r} ({cls})" for name, cls in custom)
            raise ModelLoadError(
                f"model file {str(path)!r} uses the custom layer class(es) {names}, which "
                f"Keras cannot rebuild without their Python code and snnconv cannot convert; "
                f"rebuild the model from Keras's own layers (supported: "
                f"{', '.join(SUPPORTED_LAYERS)})") from exc
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise ModelLoadError(
            f"cannot load model file {str(path)!r}: {type(exc).__name__}: {msg}") from exc
    if not isinstance(model, keras.Model):
        raise ModelLoadError(
            f"model file {str(path)!r} does not contain a Keras model "
            f"(got {type(model).__name__})")
    return model
