"""Things the parser modules share: the supported layer list and the error helper."""
from __future__ import annotations

from snnconv.choices import ACTIVATIONS as SUPPORTED_ACTIVATIONS
from snnconv.errors import UnsupportedLayerError

# Keras layer class names the parser accepts. Sequential and Functional stand
# for nested sub-models, which are flattened into the parent graph.
SUPPORTED_LAYERS = (
    "InputLayer", "Dense", "Conv1D", "Conv2D", "DepthwiseConv2D", "SeparableConv2D",
    "AveragePooling2D", "MaxPooling2D", "GlobalAveragePooling2D", "Flatten",
    "Reshape", "Concatenate", "Add", "ZeroPadding2D", "BatchNormalization",
    "Activation", "ReLU", "Softmax", "Rescaling", "Normalization", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "Identity", "QCFS", "Sequential", "Functional",
)



def unsupported(layer_name: str, class_name: str, reason: str) -> UnsupportedLayerError:
    """An :class:`UnsupportedLayerError` naming the layer, its class and the reason."""
    return UnsupportedLayerError(
        f"layer {layer_name!r} ({class_name}): {reason}. "
        f"Supported layers: {', '.join(SUPPORTED_LAYERS)}; "
        f"supported activations: {', '.join(SUPPORTED_ACTIVATIONS)}")
