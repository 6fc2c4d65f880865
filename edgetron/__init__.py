"""edgetron: an integer-only edge-AI accelerator, as golden models, RTL and a simulator."""

__version__ = "0.1.0"
