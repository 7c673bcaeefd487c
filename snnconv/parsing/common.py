"""Things the parser modules share: the supported layer list and the error helper."""
from __future__ import annotations

from snnconv.choices import ACTIVATIONS
from snnconv.errors import UnsupportedLayerError

# Keras layer class names the parser accepts. Sequential and Functional stand
# for nested sub-models, which are flattened into the parent graph.
# relu6 is a relu whose node carries max_value=6
SUPPORTED_ACTIVATIONS = ACTIVATIONS + ("relu6",)
SUPPORTED_LAYERS = (
    "InputLayer", "Dense", "Conv1D", "Conv2D", "Conv2DTranspose", "DepthwiseConv2D",
    "SeparableConv2D", "AveragePooling1D", "AveragePooling2D", "MaxPooling1D", "MaxPooling2D",
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalMaxPooling1D",
    "GlobalMaxPooling2D", "Flatten", "Reshape", "Permute", "Concatenate", "Add", "Subtract",
    "Average", "Maximum", "ZeroPadding1D", "ZeroPadding2D", "Cropping1D", "Cropping2D",
    "UpSampling1D", "UpSampling2D", "BatchNormalization",
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
