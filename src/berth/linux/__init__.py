"""The only code that calls the kernel directly (ctypes on libc). Standard library only: hot path."""
