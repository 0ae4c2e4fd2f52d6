"""sqlite metadata: WAL, busy timeout, per-component versioned schemas, IMMEDIATE transactions."""

from berth.metadata.db import Database

__all__ = ["Database"]
