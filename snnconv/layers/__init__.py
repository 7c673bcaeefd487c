"""Keras 3 spiking layers. Importing this module registers them for loading."""
from .base import SpikeLayer
from .delay import SpikeDelay
from .pooling import SpikeAveragePooling2D, SpikeGlobalAveragePooling2D, SpikeMaxPooling2D
from .routing import (SpikeAdd, SpikeConcatenate, SpikeFlatten, SpikeIdentity, SpikeInput,
                      SpikeReshape, SpikeZeroPadding2D)
from .synaptic import SpikeConv2D, SpikeDense, SpikeDepthwiseConv2D

CUSTOM_OBJECTS = {cls.__name__: cls for cls in (
    SpikeDense, SpikeConv2D, SpikeDepthwiseConv2D, SpikeAveragePooling2D, SpikeMaxPooling2D,
    SpikeGlobalAveragePooling2D, SpikeFlatten, SpikeReshape, SpikeConcatenate, SpikeAdd,
    SpikeZeroPadding2D, SpikeIdentity, SpikeInput, SpikeDelay)}

__all__ = ["SpikeLayer", "CUSTOM_OBJECTS", *CUSTOM_OBJECTS]
