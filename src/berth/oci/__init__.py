"""OCI data and validation (pure: no I/O)."""
