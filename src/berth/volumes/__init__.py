"""Named volumes (local driver); see docs/architecture.md "volumes"."""

from berth.volumes.store import Volume, VolumeStore

__all__ = ["Volume", "VolumeStore"]
