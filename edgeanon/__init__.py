"""edgeanon: on-device face anonymization for NVIDIA Jetson (and any Linux box)."""

__version__ = "0.1.0"
