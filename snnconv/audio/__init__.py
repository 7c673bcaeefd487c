"""Audio input for spiking networks: a Xylo Audio style front end and keyword data."""

from snnconv.audio.frontend import FrontEnd

__all__ = ["FrontEnd"]
