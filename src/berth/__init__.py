"""berth: a container engine built from Linux primitives."""

__version__ = "0.1.0"
