"""Per-container monitor (see monitor.py). Standard library only: it runs under `python -I -S`."""
