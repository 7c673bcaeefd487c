"""Spiking network architectures built from snnconv's trainable layers."""
from .synnet import SynNet

__all__ = ["SynNet"]
