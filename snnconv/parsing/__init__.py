"""Reading Keras models into the IR.

``load_model(path)`` loads a ``.keras`` or legacy ``.h5`` file safely (files
with ``Lambda`` layers are refused before Keras sees them); ``parse(model or
path)`` turns a Keras model into a :class:`snnconv.ir.Graph`, folding
BatchNormalization and Activation layers and dropping Dropout.
"""
from snnconv.parsing.common import SUPPORTED_LAYERS
from snnconv.parsing.keras_parser import parse
from snnconv.parsing.loading import load_model

__all__ = ["parse", "load_model", "SUPPORTED_LAYERS"]
