"""Keras 3 spiking layers, and the QCFS activation for training convertible ANNs.
Importing this module registers them for loading."""
from .base import SpikeLayer
from .delay import SpikeDelay
from .qcfs import QCFS
from .pooling import SpikeAveragePooling2D, SpikeGlobalAveragePooling2D, SpikeMaxPooling2D
from .routing import (SpikeAdd, SpikeConcatenate, SpikeCropping2D, SpikeFlatten, SpikeIdentity,
                      SpikeInput, SpikePermute, SpikeReshape, SpikeUpSampling2D,
                      SpikeZeroPadding2D)
from .synaptic import SpikeConv2D, SpikeDense, SpikeDepthwiseConv2D

CUSTOM_OBJECTS = {cls.__name__: cls for cls in (
    SpikeDense, SpikeConv2D, SpikeDepthwiseConv2D, SpikeAveragePooling2D, SpikeMaxPooling2D,
    SpikeGlobalAveragePooling2D, SpikeFlatten, SpikeReshape, SpikeConcatenate, SpikeAdd,
    SpikeZeroPadding2D, SpikeCropping2D, SpikeUpSampling2D, SpikePermute, SpikeIdentity,
    SpikeInput, SpikeDelay)}

# QCFS is an ANN activation (for training), not a spiking layer
__all__ = ["SpikeLayer", "CUSTOM_OBJECTS", "QCFS", *CUSTOM_OBJECTS]
